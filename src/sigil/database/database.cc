#include "sigil/database/database.h"

#include <algorithm>
#include <ctime>
#include <semaphore>
#include <set>

#include "sigil/base/encoding.h"
#include "sigil/base/logging.h"
#include "sigil/crypto/hash.h"
#include "sigil/crypto/random.h"
#include "sigil/database/cron.h"
#include "sigil/engines/fields.h"

namespace sigil::database {

using engines::Json;
using engines::Operation;
using engines::Request;
using engines::Response;

namespace {

constexpr int64_t kSystemMaxTtl = 768 * 3600;  // Vault's system max lease TTL (32 days)
constexpr int64_t kMinRotationPeriod = 5;      // seconds, as Vault
constexpr std::chrono::seconds kValidSlack{5};  // a user's VALID UNTIL past its lease's end, as Vault
constexpr std::string_view kDynamicKind = "database";
constexpr std::string_view kStaticKind = "database-static";
constexpr size_t kPasswordLength = 20;  // the default password (no password_policy): Vault's

// Vault's GenericNameRegex: word characters, with '-' and '.' inside.
bool ValidName(std::string_view n) {
  if (n.empty() || n.size() > 128) return false;
  auto word = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; };
  if (!word(n.front()) || !word(n.back())) return false;
  return std::all_of(n.begin(), n.end(), [&](char c) { return word(c) || c == '-' || c == '.'; });
}

// A secret held in a std::string, wiped when it goes.
struct Wiped {
  std::string s;
  Wiped() = default;
  explicit Wiped(std::string v) : s(std::move(v)) {}
  Wiped(const Wiped&) = delete;
  Wiped& operator=(const Wiped&) = delete;
  ~Wiped() { std::fill(s.begin(), s.end(), '\0'); }
};


// Vault's default user name template for PostgreSQL:
//   {{ printf "v-%s-%s-%s-%s" (.DisplayName | truncate 8) (.RoleName | truncate 8) (random 20) (unix_time) | truncate 63 }}
// with characters that have no place in an identifier replaced by '-'.
std::string MakeUsername(std::string_view display_name, std::string_view role, Clock::TimePoint now) {
  auto clean = [](std::string_view s, size_t n) {
    std::string out(s.substr(0, n));
    for (char& c : out) {
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.') c = '-';
    }
    return out;
  };
  int64_t unix = std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count();
  std::string name = "v-" + clean(display_name, 8) + "-" + clean(role, 8) + "-" +
                     std::string(crypto::RandomString(20, crypto::kAlphanumeric).view()) + "-" + std::to_string(unix);
  return name.substr(0, 63);
}

// Vault's expiration format for statements: Go's "2006-01-02 15:04:05-0700", in UTC.
std::string Expiration(Clock::TimePoint t) {
  std::time_t s = std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
  std::tm tm{};
  gmtime_r(&s, &tm);
  char buf[40];
  std::strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S+0000", &tm);
  return buf;
}

int64_t Seconds(Clock::TimePoint::duration d) { return std::chrono::duration_cast<std::chrono::seconds>(d).count(); }

Json StringArray(const std::vector<std::string>& v) { return Json(v); }

std::vector<std::string> Strings(const Json& j) {
  std::vector<std::string> out;
  if (!j.is_array()) return out;
  for (const Json& e : j) {
    if (e.is_string()) out.push_back(e.get<std::string>());
  }
  return out;
}

// Whether `role` matches an allowed_roles entry: "*", an exact name, or a glob with '*'.
using engines::GlobMatch;

bool RoleAllowed(const Json& config, std::string_view role) {
  for (const std::string& a : Strings(config.value("allowed_roles", Json::array()))) {
    if (GlobMatch(a, role)) return true;
  }
  return false;
}

// Reads a JSON document from the mount's storage.
Result<std::optional<std::pair<Json, int64_t>>> ReadDoc(engines::Storage& s, const std::string& key) {
  using Out = std::optional<std::pair<Json, int64_t>>;
  SIGIL_ASSIGN_OR_RETURN(std::optional<store::Object> o, s.Get(key));
  if (!o) return Out();
  Json j = Json::parse(o->doc.view(), nullptr, false);
  if (!j.is_object()) return DataLossError("database: the entry at " + key + " is damaged");
  return Out(std::make_pair(std::move(j), o->revision));
}

Result<int64_t> WriteDoc(engines::Storage& s, const std::string& key, const Json& doc, std::optional<int64_t> revision) {
  std::string text = doc.dump();
  SecretBytes bytes(text);
  std::fill(text.begin(), text.end(), '\0');
  return s.Put(key, bytes, revision);
}

}  // namespace

// A connection's settings as stored under config/<name>.
struct Service::Connection {
  std::string name;
  Json doc;  // {plugin_name, connection_details: {connection_url, username, password, ...}, allowed_roles,
             //  root_credentials_rotate_statements, password_policy, verify_connection, pending_password}
  int64_t revision = 0;

  ~Connection() {
    if (doc.is_object()) {
      for (const char* k : {"password", "pending_password"}) {
        Json* at = k[1] == 'a' ? (doc.contains("connection_details") ? &doc["connection_details"] : nullptr) : &doc;
        if (at && at->is_object() && at->contains(k) && (*at)[k].is_string()) {
          std::string& s = (*at)[k].get_ref<std::string&>();
          std::fill(s.begin(), s.end(), '\0');
        }
      }
    }
  }
  const Json& details() const {
    static const Json kEmpty = Json::object();
    auto it = doc.find("connection_details");
    return it != doc.end() && it->is_object() ? *it : kEmpty;
  }
  std::string url() const { return details().value("connection_url", ""); }
  std::string username() const { return details().value("username", ""); }
  std::string password() const { return details().value("password", ""); }
  bool scram() const { return details().value("password_authentication", "password") == "scram-sha-256"; }
  Pool::Options pool_options() const {
    Pool::Options o;
    int64_t open = details().value("max_open_connections", int64_t{4});
    o.max_open = static_cast<size_t>(open > 0 ? open : 4);  // as Vault: 0 means the default
    o.max_idle = static_cast<size_t>(std::max<int64_t>(0, details().value("max_idle_connections", int64_t{0})));
    o.max_lifetime = std::chrono::seconds(std::max<int64_t>(0, details().value("max_connection_lifetime", int64_t{0})));
    return o;
  }
  std::string Fingerprint() const {
    Json j = details();
    return crypto::Sha256(j.dump());
  }
};

namespace {

using Connection = Service::Connection;

Result<std::optional<Connection>> LoadConnection(engines::Storage& s, const std::string& name) {
  SIGIL_ASSIGN_OR_RETURN(auto doc, ReadDoc(s, "config/" + name));
  if (!doc) return std::optional<Connection>();
  std::optional<Connection> c(std::in_place);
  c->name = name;
  c->doc = std::move(doc->first);
  c->revision = doc->second;
  return c;
}

// The password as a statement sees it: in PostgreSQL's SCRAM form when the connection says so
// (password_authentication=scram-sha-256: the server, and its logs, never see the password).
Result<std::string> StatementPassword(Session& s, const Connection& c, const std::string& user, const std::string& password) {
  if (!c.scram()) return password;
  return s.EncryptPassword(user, password);
}

// Runs `statements` (Vault templates) in one transaction with `vars`. Error messages have the
// secrets among `vars` redacted.
Status RunStatements(Pool& pool, const std::vector<std::string>& statements, std::map<std::string, std::string, std::less<>> vars,
                     const Connection& c, const std::string& user, const std::string& password, bool keep_blocks = false,
                     const std::function<Status()>& before_commit = nullptr) {
  Wiped stmt_password;
  // One round trip: every statement in one transaction, sent together.
  Status st = pool.TransactionText([&](Session& s) -> Result<std::string> {
    if (!password.empty() && stmt_password.s.empty()) {
      SIGIL_ASSIGN_OR_RETURN(std::string p, StatementPassword(s, c, user, password));
      stmt_password.s = std::move(p);
      vars["password"] = stmt_password.s;
    }
    std::string sql;
    for (const std::string& entry : statements) {
      for (const std::string& stmt : SplitStatements(entry, keep_blocks)) {
        std::string one = RenderTemplate(stmt, vars);
        if (!sql.empty()) sql += ";\n";
        sql += one;
        std::fill(one.begin(), one.end(), '\0');
      }
    }
    if (sql.empty()) sql = "SELECT 1";
    return sql;
  }, before_commit);
  if (auto it = vars.find("password"); it != vars.end()) std::fill(it->second.begin(), it->second.end(), '\0');
  if (st.ok()) return st;
  return Status(st.code(), Redact(st.message(), {password, stmt_password.s, c.password()}));
}

// Ends the user `name`: nothing to do when it is gone; else `statements` (Vault templates) or,
// without any, its privileges revoked in every schema where it has some, then dropped.
Result<bool> UserExists(Pool& pool, const std::string& name) {
  bool exists = false;
  SIGIL_RETURN_IF_ERROR(pool.Run([&](Session& s) -> Status {
    SIGIL_ASSIGN_OR_RETURN(auto rows, s.Query("SELECT 1 FROM pg_roles WHERE rolname = $1", {name}));
    exists = !rows.empty();
    return OkStatus();
  }));
  return exists;
}

Status DropUserOnce(Pool& pool, const std::string& name, const std::vector<std::string>& statements, const Connection& c) {
  if (!statements.empty()) return RunStatements(pool, statements, {{"name", name}, {"username", name}}, c, name, "", true);
  // One round trip: a DO block finds the schemas where the user holds privileges, revokes them
  // (and the database's own, only when it holds some: a REVOKE rewrites the catalog row, which
  // concurrent revocations would fight over for nothing), and drops the user; nothing when the
  // user is gone.
  if (name.find("$sigil$") != std::string::npos) return InvalidArgumentError("a user name holding \"$sigil$\" cannot be dropped");
  std::string lit = QuoteLiteral(name);
  std::string sql =
      "DO $sigil$ DECLARE r oid; s text; BEGIN "
      "SELECT oid INTO r FROM pg_roles WHERE rolname = " + lit + "; "
      "IF r IS NULL THEN RETURN; END IF; "
      "FOR s IN SELECT DISTINCT n.nspname FROM pg_namespace n WHERE "
      "EXISTS (SELECT 1 FROM aclexplode(n.nspacl) a WHERE a.grantee = r) OR "
      "EXISTS (SELECT 1 FROM pg_class c, aclexplode(c.relacl) a WHERE c.relnamespace = n.oid AND a.grantee = r) OR "
      "EXISTS (SELECT 1 FROM pg_proc p, aclexplode(p.proacl) a WHERE p.pronamespace = n.oid AND a.grantee = r) LOOP "
      "EXECUTE format('REVOKE ALL PRIVILEGES ON ALL TABLES IN SCHEMA %I FROM %I', s, " + lit + "); "
      "EXECUTE format('REVOKE ALL PRIVILEGES ON ALL SEQUENCES IN SCHEMA %I FROM %I', s, " + lit + "); "
      "EXECUTE format('REVOKE ALL PRIVILEGES ON ALL FUNCTIONS IN SCHEMA %I FROM %I', s, " + lit + "); "
      "EXECUTE format('REVOKE ALL PRIVILEGES ON SCHEMA %I FROM %I', s, " + lit + "); "
      "END LOOP; "
      "IF EXISTS (SELECT 1 FROM pg_database d, aclexplode(d.datacl) a WHERE d.datname = current_database() AND a.grantee = r) THEN "
      "EXECUTE format('REVOKE ALL PRIVILEGES ON DATABASE %I FROM %I', current_database(), " + lit + "); END IF; "
      "EXECUTE format('DROP ROLE IF EXISTS %I', " + lit + "); "
      "END $sigil$";
  return pool.TransactionText([&](Session&) -> Result<std::string> { return sql; });
}

Status DropUser(Pool& pool, const std::string& name, const std::vector<std::string>& statements, const Connection& c) {
  if (!statements.empty()) {  // (the default drop checks in its own round trip)
    SIGIL_ASSIGN_OR_RETURN(bool exists, UserExists(pool, name));
    if (!exists) return OkStatus();
  }
  Status st = DropUserOnce(pool, name, statements, c);
  if (st.ok()) return st;
  // Gone meanwhile (another revocation of the same user won): that is success too.
  Result<bool> still = UserExists(pool, name);
  return still.ok() && !*still ? OkStatus() : st;
}

// The lease TTLs of a mount: its default and max (the system's where unset).
std::pair<int64_t, int64_t> MountTtls(const engines::Mount& m) {
  int64_t max = m.max_lease_ttl > 0 ? std::min(m.max_lease_ttl, kSystemMaxTtl) : kSystemMaxTtl;
  int64_t def = m.default_lease_ttl > 0 ? std::min(m.default_lease_ttl, max) : max;
  return {def, max};
}

std::string JobId(const std::string& mount_uuid, const std::string& role) {
  return std::string(leases::Manager::kJobIdPrefix) + "database/" + mount_uuid + "/" + role;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Static roles: rotation with a pending password first (see the header).

namespace {

// When a static role is next due after `from`: a period after it, or the schedule's next time
// after it (far in the future when the schedule names no time within five years).
Clock::TimePoint NextDue(const Json& role, Clock::TimePoint from) {
  if (std::string spec = role.value("rotation_schedule", ""); !spec.empty()) {
    Result<CronSchedule> c = CronSchedule::Parse(spec);
    std::optional<Clock::TimePoint> n = c.ok() ? c->Next(from) : std::nullopt;
    return n ? *n : from + std::chrono::hours(24 * 366 * 5);
  }
  return from + std::chrono::seconds(role.value("rotation_period", int64_t{0}));
}

Clock::TimePoint FromUnix(int64_t s) { return Clock::TimePoint(std::chrono::seconds(s)); }

struct StaticRotation {
  Clock::TimePoint next;  // when the role is due next
  bool rotated = false;
};

// Rotates the static role `name` of the mount `uuid` now (`only_if_due`: only when its period
// has passed since the last rotation). Returns when it is due next; nullopt when the role is gone.
Result<std::optional<StaticRotation>> RotateStatic(Service* svc, const std::string& uuid, const std::string& name, bool only_if_due) {
  engines::Storage storage = svc->StorageOf(uuid);
  std::string key = "static-role/" + name;
  for (int attempt = 0; attempt < 8; ++attempt) {
    SIGIL_ASSIGN_OR_RETURN(auto doc, ReadDoc(storage, key));
    if (!doc) return std::optional<StaticRotation>();
    Json role = std::move(doc->first);
    int64_t revision = doc->second;
    Clock::TimePoint now = svc->clock()->Now();
    int64_t last = role.value("last_vault_rotation_unix", int64_t{0});
    Clock::TimePoint due = NextDue(role, FromUnix(last));
    if (only_if_due && last > 0 && !role.contains("pending_password")) {
      if (due > now) return std::optional<StaticRotation>(StaticRotation{due, false});
      // A schedule's window: when the latest scheduled time (at or before now) is more than the
      // window ago, the rotation waits for the next scheduled one.
      int64_t window = role.value("rotation_window", int64_t{0});
      if (window > 0) {
        Clock::TimePoint latest = due;
        for (int i = 0; i < 1000000; ++i) {
          Clock::TimePoint n = NextDue(role, latest);
          if (n > now) break;
          latest = n;
        }
        if (now > latest + std::chrono::seconds(window)) return std::optional<StaticRotation>(StaticRotation{NextDue(role, now), false});
      }
    }
    SIGIL_ASSIGN_OR_RETURN(std::optional<Connection> c, LoadConnection(storage, role.value("db_name", "")));
    if (!c) return FailedPreconditionError("database connection \"" + role.value("db_name", "") + "\" not found");
    // Claim: the new password is stored as pending before PostgreSQL sees it (a pending one
    // from an interrupted rotation is used again, so PostgreSQL and sigil agree either way).
    if (!role.contains("pending_password")) {
      SIGIL_ASSIGN_OR_RETURN(std::string fresh, svc->NewPassword(*c));
      role["pending_password"] = std::move(fresh);
      Result<int64_t> claimed = WriteDoc(storage, key, role, revision);
      if (!claimed.ok()) {
        if (claimed.error().code() == StatusCode::kAborted) continue;  // changed meanwhile: look again
        return claimed.error();
      }
      revision = *claimed;
    }
    Wiped password(role["pending_password"].get<std::string>());
    std::string user = role.value("username", "");
    SIGIL_ASSIGN_OR_RETURN(std::shared_ptr<Pool> pool, svc->PoolFor(uuid, c->name, *c));
    std::vector<std::string> statements = Strings(role.value("rotation_statements", Json::array()));
    if (statements.empty()) statements = {"ALTER ROLE \"{{username}}\" WITH PASSWORD '{{password}}';"};
    SIGIL_RETURN_IF_ERROR(RunStatements(*pool, statements, {{"name", user}, {"username", user}}, *c, user, password.s));
    role["password"] = password.s;
    role.erase("pending_password");
    role["last_vault_rotation_unix"] = Seconds(now.time_since_epoch());
    Result<int64_t> done = WriteDoc(storage, key, role, revision);
    for (int again = 0; !done.ok() && done.error().code() == StatusCode::kAborted && again < 8; ++again) {
      // Changed since the claim (the role was edited): the rotation completes on the new record
      // as long as our password is still the pending one (else another rotation has taken over).
      SIGIL_ASSIGN_OR_RETURN(auto fresh, ReadDoc(storage, key));
      if (!fresh) return std::optional<StaticRotation>();
      if (fresh->first.value("pending_password", "") != password.s) break;
      Json next = std::move(fresh->first);
      next["password"] = password.s;
      next.erase("pending_password");
      next["last_vault_rotation_unix"] = Seconds(now.time_since_epoch());
      done = WriteDoc(storage, key, next, fresh->second);
      std::string& p = next["password"].get_ref<std::string&>();
      std::fill(p.begin(), p.end(), '\0');
    }
    std::string& stored = role["password"].get_ref<std::string&>();
    std::fill(stored.begin(), stored.end(), '\0');
    if (!done.ok()) {
      // PostgreSQL has the pending password, and so does the record: the next try completes it.
      return done.error();
    }
    log::Info("database: static role rotated", {{"role", name}, {"username", user}});
    return std::optional<StaticRotation>(StaticRotation{NextDue(role, now), true});
  }
  return AbortedError("the static role kept changing; try again");
}

Status ScheduleRotation(Service* svc, const std::string& uuid, const std::string& name, Clock::TimePoint at) {
  leases::Lease job;
  job.id = JobId(uuid, name);
  job.kind = std::string(kStaticKind);
  job.data = leases::Json{{"mount", uuid}, {"role", name}};
  job.issued = svc->clock()->Now();
  job.expires = at;
  return svc->leases()->Schedule(std::move(job));
}

// The revoker of dynamic credentials' leases.
class DynamicLeases final : public leases::Revoker {
 public:
  explicit DynamicLeases(Service* svc) : svc_(svc) {}

  Result<std::optional<Clock::TimePoint>> Revoke(const leases::Lease& lease, store::SideEffects*) override {
    // At most kParallel drops at once: each costs PostgreSQL (on the same machine, often) a
    // catalog transaction, and a storm of expiries must not starve foreground requests; a few
    // in flight still drop thousands of users a second.
    in_flight_.acquire();
    struct Release {
      std::counting_semaphore<>& s;
      ~Release() { s.release(); }
    } release{in_flight_};
    SIGIL_ASSIGN_OR_RETURN(Target t, TargetOf(lease));
    std::vector<std::string> statements = Strings(lease.data.value("revocation_statements", leases::Json::array()));
    // The role as it is now decides, as Vault (its statements may have been fixed since).
    engines::Storage storage = svc_->StorageOf(lease.data.value("mount", ""));
    SIGIL_ASSIGN_OR_RETURN(auto role, ReadDoc(storage, "role/" + lease.data.value("role", "")));
    if (role && role->first.value("db_name", "") == t.connection.name) {
      statements = Strings(role->first.value("revocation_statements", Json::array()));
    }
    SIGIL_RETURN_IF_ERROR(DropUser(*t.pool, lease.data.value("username", ""), statements, t.connection));
    return std::optional<Clock::TimePoint>();
  }

  Status Renew(const leases::Lease& lease, Clock::TimePoint expires) override {
    SIGIL_ASSIGN_OR_RETURN(Target t, TargetOf(lease));
    engines::Storage storage = svc_->StorageOf(lease.data.value("mount", ""));
    SIGIL_ASSIGN_OR_RETURN(auto role, ReadDoc(storage, "role/" + lease.data.value("role", "")));
    std::vector<std::string> statements;
    if (role) statements = Strings(role->first.value("renew_statements", Json::array()));
    if (statements.empty()) statements = {"ALTER ROLE \"{{name}}\" VALID UNTIL '{{expiration}}';"};
    std::string user = lease.data.value("username", "");
    return RunStatements(*t.pool, statements, {{"name", user}, {"username", user}, {"expiration", Expiration(expires + kValidSlack)}},
                         t.connection,
                         user, "");
  }

 private:
  struct Target {
    Connection connection;
    std::shared_ptr<Pool> pool;
  };
  Result<Target> TargetOf(const leases::Lease& lease) {
    std::string uuid = lease.data.value("mount", "");
    std::string db = lease.data.value("db_name", "");
    engines::Storage storage = svc_->StorageOf(uuid);
    SIGIL_ASSIGN_OR_RETURN(std::optional<Connection> c, LoadConnection(storage, db));
    if (!c) return FailedPreconditionError("database connection \"" + db + "\" not found (revoke-force ends the lease)");
    SIGIL_ASSIGN_OR_RETURN(std::shared_ptr<Pool> pool, svc_->PoolFor(uuid, db, *c));
    Target t;
    t.connection.name = c->name;
    t.connection.doc = std::move(c->doc);
    t.pool = std::move(pool);
    return t;
  }
  static constexpr int kParallel = 4;
  Service* svc_;
  std::counting_semaphore<> in_flight_{kParallel};
};

// Runs a static role's rotation when it is due.
class StaticRotations final : public leases::Revoker {
 public:
  explicit StaticRotations(Service* svc) : svc_(svc) {}
  Result<std::optional<Clock::TimePoint>> Revoke(const leases::Lease& job, store::SideEffects*) override {
    SIGIL_ASSIGN_OR_RETURN(std::optional<StaticRotation> r,
                           RotateStatic(svc_, job.data.value("mount", ""), job.data.value("role", ""), /*only_if_due=*/true));
    if (!r) return std::optional<Clock::TimePoint>();  // the role is gone: so is its job
    return std::optional<Clock::TimePoint>(r->next);
  }

 private:
  Service* svc_;
};

// ---------------------------------------------------------------------------------------------
// The engine.

class DatabaseEngine final : public engines::SecretsEngine {
 public:
  DatabaseEngine(Service* svc, engines::Mount mount, Caller caller)
      : svc_(svc), mount_(std::move(mount)), caller_(std::move(caller)), storage_(svc->StorageOf(mount_.uuid)) {}

  Result<std::optional<bool>> Exists(const Request& r) override {
    for (auto [prefix, key] : {std::pair<std::string_view, std::string_view>{"config/", "config/"},
                               {"roles/", "role/"},
                               {"static-roles/", "static-role/"}}) {
      std::string_view p = r.path;
      if (p.starts_with(prefix) && ValidName(p.substr(prefix.size()))) {
        SIGIL_ASSIGN_OR_RETURN(std::optional<store::Object> o, storage_.Get(std::string(key) + std::string(p.substr(prefix.size()))));
        return std::optional<bool>(o.has_value());
      }
    }
    return std::optional<bool>();
  }

  Result<Response> Handle(const Request& r) override {
    std::string_view p = r.path;
    bool write = r.op == Operation::kCreate || r.op == Operation::kUpdate;
    auto list = [&](std::string_view folder, const char* prefix) -> std::optional<Result<Response>> {
      if ((p == folder || p == std::string(folder) + "/") && (r.op == Operation::kList || (r.op == Operation::kRead && p.ends_with("/")))) {
        return engines::ListFolder(storage_, prefix);
      }
      return std::nullopt;
    };
    if (auto l = list("config", "config/")) return std::move(*l);
    if (auto l = list("roles", "role/")) return std::move(*l);
    if (auto l = list("static-roles", "static-role/")) return std::move(*l);
    auto named = [&](std::string_view prefix, std::string* name) {
      if (!p.starts_with(prefix)) return false;
      *name = std::string(p.substr(prefix.size()));
      return true;
    };
    std::string name;
    if (named("config/", &name)) return Guard(name, [&] { return Config(r, name); });
    if (named("roles/", &name)) return Guard(name, [&] { return Role(r, name); });
    if (named("static-roles/", &name)) return Guard(name, [&] { return StaticRole(r, name); });
    if (named("creds/", &name)) {
      if (r.op != Operation::kRead) return Response::Error(405, "unsupported operation");
      return Guard(name, [&] { return Creds(name); });
    }
    if (named("static-creds/", &name)) {
      if (r.op != Operation::kRead) return Response::Error(405, "unsupported operation");
      return Guard(name, [&] { return StaticCreds(name); });
    }
    if (named("reset/", &name)) {
      if (!write) return Response::Error(405, "unsupported operation");
      return Guard(name, [&] { return Reset(name); });
    }
    if (named("rotate-root/", &name)) {
      if (!write) return Response::Error(405, "unsupported operation");
      return Guard(name, [&] { return RotateRoot(name); });
    }
    if (named("rotate-role/", &name)) {
      if (!write) return Response::Error(405, "unsupported operation");
      return Guard(name, [&] { return RotateRole(name); });
    }
    return Response::Error(404, "no handler for route \"" + mount_.path + std::string(p.substr(0, 128)) + "\". route entry not found.");
  }

 private:
  template <typename F>
  Result<Response> Guard(const std::string& name, F f) {
    if (!ValidName(name)) return Response::Error(400, "invalid name \"" + name.substr(0, 64) + "\"");
    return f();
  }

  // --- config/<name> --------------------------------------------------------------------------
  Result<Response> Config(const Request& r, const std::string& name) {
    SIGIL_ASSIGN_OR_RETURN(std::optional<Connection> c, LoadConnection(storage_, name));
    switch (r.op) {
      case Operation::kRead: {
        if (!c) return Response::NotFound();
        Json details = c->details();
        details.erase("password");
        if (details.contains("connection_url")) details["connection_url"] = RedactUrl(details["connection_url"].get<std::string>());
        return Response::Ok(Json{{"allowed_roles", c->doc.value("allowed_roles", Json::array())},
                                 {"connection_details", details},
                                 {"password_policy", c->doc.value("password_policy", "")},
                                 {"plugin_name", c->doc.value("plugin_name", "")},
                                 {"plugin_version", ""},
                                 {"root_credentials_rotate_statements", c->doc.value("root_credentials_rotate_statements", Json::array())},
                                 {"skip_static_role_import_rotation", false},
                                 {"verify_connection", c->doc.value("verify_connection", true)}});
      }
      case Operation::kDelete: {
        SIGIL_RETURN_IF_ERROR(storage_.Delete("config/" + name));
        svc_->Forget(mount_.uuid, name);
        return Response::NoContent();
      }
      case Operation::kCreate:
      case Operation::kUpdate:
        return WriteConfig(r, name, std::move(c));
      default:
        return Response::Error(405, "unsupported operation");
    }
  }

  Result<Response> WriteConfig(const Request& r, const std::string& name, std::optional<Connection> existing) {
    const Json& b = r.data;
    Connection c;
    c.name = name;
    c.doc = existing ? existing->doc : Json{{"plugin_name", ""},
                                            {"connection_details", Json::object()},
                                            {"allowed_roles", Json::array()},
                                            {"root_credentials_rotate_statements", Json::array()},
                                            {"password_policy", ""},
                                            {"verify_connection", true}};
    auto bad = [](const Status& st) { return Response::Error(400, st.message()); };
    Result<std::optional<std::string>> plugin = engines::StringField(b, "plugin_name");
    if (!plugin.ok()) return bad(plugin.error());
    if (*plugin) c.doc["plugin_name"] = **plugin;
    std::string plugin_name = c.doc.value("plugin_name", "");
    if (plugin_name.empty()) return Response::Error(400, "empty plugin name");
    if (plugin_name != kPluginName) {
      return Response::Error(400, "error creating database object: plugin \"" + plugin_name.substr(0, 64) +
                                      "\" is not served by sigil (it serves " + std::string(kPluginName) + ")");
    }
    Result<std::optional<std::string>> policy = engines::StringField(b, "password_policy");
    if (!policy.ok()) return bad(policy.error());
    if (*policy) c.doc["password_policy"] = **policy;
    if (std::string policy_name = c.doc.value("password_policy", ""); !policy_name.empty()) {
      Result<std::string> sample = svc_->NewPassword(c);
      if (!sample.ok()) return Response::Error(400, "password_policy \"" + policy_name.substr(0, 64) + "\": " + sample.error().message());
      std::fill(sample->begin(), sample->end(), '\0');
    }
    for (const char* unsupported : {"username_template", "private_key", "tls_certificate", "tls_ca", "plugin_version"}) {
      auto it = b.find(unsupported);
      if (it != b.end() && !it->is_null() && !(it->is_string() && it->get_ref<const std::string&>().empty())) {
        return Response::Error(400, std::string(unsupported) + " is not supported by sigil (see docs/vault-api.md)");
      }
    }
    Result<std::optional<std::vector<std::string>>> allowed = engines::ListField(b, "allowed_roles");
    if (!allowed.ok()) return bad(allowed.error());
    if (*allowed) c.doc["allowed_roles"] = StringArray(**allowed);
    Result<std::optional<std::vector<std::string>>> root_stmts = engines::StringSliceField(b, "root_rotation_statements");
    if (!root_stmts.ok()) return bad(root_stmts.error());
    if (*root_stmts) c.doc["root_credentials_rotate_statements"] = StringArray(**root_stmts);
    Result<std::optional<bool>> verify = engines::BoolField(b, "verify_connection");
    if (!verify.ok()) return bad(verify.error());
    if (*verify) c.doc["verify_connection"] = **verify;
    // Connection details: what is given replaces what was there.
    Json& d = c.doc["connection_details"];
    for (const char* k : {"connection_url", "username", "password", "password_authentication"}) {
      Result<std::optional<std::string>> v = engines::StringField(b, k);
      if (!v.ok()) return bad(v.error());
      if (*v) d[k] = **v;
    }
    for (const char* k : {"max_open_connections", "max_idle_connections"}) {
      Result<std::optional<int64_t>> v = engines::IntField(b, k);
      if (!v.ok()) return bad(v.error());
      if (*v) {
        if (**v < -1 || **v > 1000) return Response::Error(400, std::string(k) + " must be between -1 and 1000");
        d[k] = **v;
      }
    }
    Result<std::optional<std::chrono::seconds>> lifetime = engines::DurationField(b, "max_connection_lifetime");
    if (!lifetime.ok()) return bad(lifetime.error());
    if (*lifetime) d["max_connection_lifetime"] = lifetime->value().count();
    std::string auth = d.value("password_authentication", "password");
    if (auth != "password" && auth != "scram-sha-256") {
      return Response::Error(400, "'" + auth.substr(0, 32) + "' is not a valid password authentication type");
    }
    std::string url = c.url();
    if (url.empty()) return Response::Error(400, "error creating database object: connection_url cannot be empty");
    if (Status st = CheckConnectionString(url); !st.ok()) {
      return Response::Error(400, "error creating database object: " + Redact(st.message(), {c.password()}));
    }
    std::vector<std::string> warnings;
    if (url.find("{{password}}") == std::string::npos && !c.password().empty()) {
      warnings.push_back("the password is set but connection_url has no {{password}} template: it is not used");
    }
    if (url.find("{{password}}") == std::string::npos && url.find('@') != std::string::npos && url.find(':', url.find("//") + 2) < url.find('@')) {
      warnings.push_back(
          "Password found in connection_url, use a templated url to enable root rotation and prevent read access to password information.");
    }
    if (c.doc.value("verify_connection", true)) {
      Pool probe(RenderConnectionString(url, c.username(), c.password()), Pool::Options{1, 1, std::chrono::seconds(0)});
      if (Status st = probe.Ping(); !st.ok()) {
        return Response::Error(400, "error creating database object: error verifying connection: " + Redact(st.message(), {c.password()}));
      }
    }
    Result<int64_t> w = WriteDoc(storage_, "config/" + name, c.doc, existing ? std::optional<int64_t>(existing->revision) : std::nullopt);
    if (!w.ok()) {
      if (w.error().code() == StatusCode::kAborted || w.error().code() == StatusCode::kAlreadyExists) {
        return Response::Error(409, "the connection changed meanwhile; try again");
      }
      return w.error();
    }
    svc_->Forget(mount_.uuid, name);  // the next use connects with what was written
    Response res = Response::NoContent();
    if (!warnings.empty()) {
      res = Response::Ok(Json::object());
      res.warnings = std::move(warnings);
    }
    return res;
  }

  Result<Response> Reset(const std::string& name) {
    SIGIL_ASSIGN_OR_RETURN(std::optional<Connection> c, LoadConnection(storage_, name));
    if (!c) return Response::Error(400, "unable to reset, no database connection \"" + name + "\"");
    svc_->Forget(mount_.uuid, name);
    return Response::NoContent();
  }

  Result<Response> RotateRoot(const std::string& name) {
    for (int attempt = 0; attempt < 8; ++attempt) {
      SIGIL_ASSIGN_OR_RETURN(std::optional<Connection> c, LoadConnection(storage_, name));
      if (!c) return Response::Error(400, "no configuration found for database \"" + name + "\"");
      std::string user = c->username();
      if (user.empty()) return Response::Error(400, "unable to rotate root credentials: no username in configuration");
      if (c->password().empty()) return Response::Error(400, "unable to rotate root credentials: no password in configuration");
      SIGIL_ASSIGN_OR_RETURN(std::shared_ptr<Pool> pool, svc_->PoolFor(mount_.uuid, name, *c));
      // Claim first, as a static role's rotation: the pending password is stored before
      // PostgreSQL sees it.
      Connection next;
      next.name = name;
      next.doc = c->doc;
      // A pending password left by an interrupted rotation is used again: PostgreSQL may hold it.
      if (!next.doc.contains("pending_password")) {
        Result<std::string> fresh = svc_->NewPassword(*c);
        if (!fresh.ok()) return Response::Error(400, fresh.error().message());
        next.doc["pending_password"] = std::move(*fresh);
      }
      Result<int64_t> claimed = WriteDoc(storage_, "config/" + name, next.doc, c->revision);
      if (!claimed.ok()) {
        if (claimed.error().code() == StatusCode::kAborted) continue;
        return claimed.error();
      }
      Wiped password(next.doc["pending_password"].get<std::string>());
      std::vector<std::string> statements = Strings(c->doc.value("root_credentials_rotate_statements", Json::array()));
      if (statements.empty()) statements = {"ALTER ROLE \"{{username}}\" WITH PASSWORD '{{password}}';"};
      Status st = RunStatements(*pool, statements, {{"name", user}, {"username", user}}, *c, user, password.s);
      if (!st.ok()) {
        // Refused by PostgreSQL: nothing changed there. Unknown (the connection broke): the
        // pending password stays for the next rotate-root to set again.
        if (st.code() != StatusCode::kUnavailable) {
          next.doc.erase("pending_password");
          (void)WriteDoc(storage_, "config/" + name, next.doc, *claimed);
        }
        return Response::Error(500, "failed to update user: " + st.message());
      }
      next.doc["connection_details"]["password"] = password.s;
      next.doc.erase("pending_password");
      Result<int64_t> done = WriteDoc(storage_, "config/" + name, next.doc, *claimed);
      svc_->Forget(mount_.uuid, name);
      if (!done.ok()) return done.error();
      return Response::NoContent();
    }
    return Response::Error(409, "the connection kept changing; try again");
  }

  // --- roles/<name> ---------------------------------------------------------------------------
  Result<Response> Role(const Request& r, const std::string& name) {
    SIGIL_ASSIGN_OR_RETURN(auto doc, ReadDoc(storage_, "role/" + name));
    switch (r.op) {
      case Operation::kRead: {
        if (!doc) return Response::NotFound();
        const Json& j = doc->first;
        return Response::Ok(Json{{"creation_statements", j.value("creation_statements", Json::array())},
                                 {"credential_type", "password"},
                                 {"db_name", j.value("db_name", "")},
                                 {"default_ttl", j.value("default_ttl", int64_t{0})},
                                 {"max_ttl", j.value("max_ttl", int64_t{0})},
                                 {"renew_statements", j.value("renew_statements", Json::array())},
                                 {"revocation_statements", j.value("revocation_statements", Json::array())},
                                 {"rollback_statements", j.value("rollback_statements", Json::array())}});
      }
      case Operation::kDelete:
        SIGIL_RETURN_IF_ERROR(storage_.Delete("role/" + name));
        return Response::NoContent();
      case Operation::kCreate:
      case Operation::kUpdate:
        break;
      default:
        return Response::Error(405, "unsupported operation");
    }
    SIGIL_ASSIGN_OR_RETURN(std::optional<store::Object> clash, storage_.Get("static-role/" + name));
    if (clash) return Response::Error(400, "Role and Static Role names must be unique");
    const Json& b = r.data;
    Json j = doc ? doc->first : Json{{"db_name", ""},
                                     {"creation_statements", Json::array()},
                                     {"revocation_statements", Json::array()},
                                     {"rollback_statements", Json::array()},
                                     {"renew_statements", Json::array()},
                                     {"default_ttl", 0},
                                     {"max_ttl", 0}};
    Result<std::optional<std::string>> db = engines::StringField(b, "db_name");
    if (!db.ok()) return Response::Error(400, db.error().message());
    if (*db) j["db_name"] = **db;
    if (j.value("db_name", "").empty()) return Response::Error(400, "database name is required");
    for (const char* k : {"creation_statements", "revocation_statements", "rollback_statements", "renew_statements"}) {
      Result<std::optional<std::vector<std::string>>> v = engines::StringSliceField(b, k);
      if (!v.ok()) return Response::Error(400, v.error().message());
      if (*v) j[k] = StringArray(**v);
    }
    for (const char* k : {"default_ttl", "max_ttl"}) {
      Result<std::optional<std::chrono::seconds>> v = engines::DurationField(b, k);
      if (!v.ok()) return Response::Error(400, v.error().message());
      if (*v) j[k] = v->value().count();
    }
    if (Status st = CredentialType(b); !st.ok()) return Response::Error(400, st.message());
    int64_t def = j.value("default_ttl", int64_t{0}), max = j.value("max_ttl", int64_t{0});
    if (max > 0 && def > max) return Response::Error(400, "ttl cannot be greater than max_ttl");
    Result<int64_t> w = WriteDoc(storage_, "role/" + name, j, doc ? std::optional<int64_t>(doc->second) : std::nullopt);
    if (!w.ok()) return WriteConflict(w.error());
    return Response::NoContent();
  }

  static Status CredentialType(const Json& b) {
    SIGIL_ASSIGN_OR_RETURN(std::optional<std::string> type, engines::StringField(b, "credential_type"));
    if (type && !type->empty() && *type != "password") {
      return InvalidArgumentError("credential_type \"" + type->substr(0, 32) + "\" is not supported by sigil (only \"password\")");
    }
    if (auto it = b.find("credential_config"); it != b.end() && !it->is_null() && !(it->is_object() && it->empty())) {
      return InvalidArgumentError("credential_config is not supported by sigil");
    }
    return OkStatus();
  }

  Result<Response> WriteConflict(const Status& st) {
    if (st.code() == StatusCode::kAborted || st.code() == StatusCode::kAlreadyExists) {
      return Response::Error(409, "the entry changed meanwhile; try again");
    }
    return st;
  }

  // --- creds/<name> ---------------------------------------------------------------------------
  Result<Response> Creds(const std::string& name) {
    SIGIL_ASSIGN_OR_RETURN(auto doc, ReadDoc(storage_, "role/" + name));
    if (!doc) return Response::Error(400, "unknown role: " + name);
    const Json& role = doc->first;
    std::string db = role.value("db_name", "");
    SIGIL_ASSIGN_OR_RETURN(std::optional<Connection> c, LoadConnection(storage_, db));
    if (!c) return Response::Error(500, "failed to find entry for connection with name: \"" + db + "\"");
    if (!RoleAllowed(c->doc, name)) return Response::Error(500, "\"" + name + "\" is not an allowed role");
    std::vector<std::string> creation = Strings(role.value("creation_statements", Json::array()));
    if (creation.empty()) return Response::Error(500, "empty creation statements");
    SIGIL_ASSIGN_OR_RETURN(std::shared_ptr<Pool> pool, svc_->PoolFor(mount_.uuid, db, *c));

    auto [mount_def, mount_max] = MountTtls(mount_);
    int64_t max = role.value("max_ttl", int64_t{0}) > 0 ? std::min(role.value("max_ttl", int64_t{0}), mount_max) : mount_max;
    int64_t ttl = role.value("default_ttl", int64_t{0}) > 0 ? role.value("default_ttl", int64_t{0}) : mount_def;
    ttl = std::min(ttl, max);
    Clock::TimePoint now = svc_->clock()->Now();
    std::string user = MakeUsername(caller_.display_name, name, now);
    Result<std::string> fresh = svc_->NewPassword(*c);
    if (!fresh.ok()) return Response::Error(400, fresh.error().message());
    Wiped password(std::move(*fresh));

    // The lease first: from here on the user cannot outlive it.
    leases::Lease l;
    l.id = mount_.path + "creds/" + name + "/" + std::string(crypto::RandomString(24, crypto::kAlphanumeric).view());
    l.kind = std::string(kDynamicKind);
    l.data = leases::Json{{"mount", mount_.uuid},
                          {"db_name", db},
                          {"role", name},
                          {"username", user},
                          {"revocation_statements", role.value("revocation_statements", Json::array())}};
    l.token_key = caller_.token_key;
    l.issued = now;
    l.expires = now + std::chrono::seconds(ttl);
    l.max_expires = now + std::chrono::seconds(max);
    l.renewable = true;
    // The lease commits while PostgreSQL runs the creation statements, and their transaction
    // commits only once the lease is durable: the user never exists without its lease.
    // As Vault, PostgreSQL's VALID UNTIL is 5 s after the lease's end (the lease ends it first).
    bool leased = false;
    Status made = RunStatements(*pool, creation, {{"name", user}, {"username", user}, {"expiration", Expiration(l.expires + kValidSlack)}},
                                *c, user, password.s, /*keep_blocks=*/true, [&]() -> Status {
                                  Status st = svc_->leases()->Add(l);
                                  leased = st.ok();
                                  return st;
                                });
    if (!leased) return made;  // nothing was made: no lease, and the transaction rolled back
    if (!made.ok()) {
      // The transaction rolled back; the lease goes (dropping what may exist of the user).
      if (Status st = svc_->leases()->Revoke(l.id); !st.ok()) (void)svc_->leases()->RevokeLater(l.id);
      return Response::Error(500, "failed to create the user: " + made.message());
    }
    // Its token may have been revoked meanwhile, taking the lease: then the user goes now.
    SIGIL_ASSIGN_OR_RETURN(std::optional<leases::Lease> still, svc_->leases()->Lookup(l.id));
    if (!still || still->requested) {
      (void)DropUser(*pool, user, Strings(role.value("revocation_statements", Json::array())), *c);
      return Response::Error(400, "the credentials were revoked while being made (the token was revoked)");
    }
    Response res = Response::Ok(Json{{"username", user}, {"password", password.s}});
    res.lease_id = l.id;
    res.renewable = true;
    res.lease_duration = ttl;
    return res;
  }

  // --- static-roles/<name> --------------------------------------------------------------------
  Result<Response> StaticRole(const Request& r, const std::string& name) {
    SIGIL_ASSIGN_OR_RETURN(auto doc, ReadDoc(storage_, "static-role/" + name));
    switch (r.op) {
      case Operation::kRead: {
        if (!doc) return Response::NotFound();
        return Response::Ok(StaticView(doc->first, false));
      }
      case Operation::kDelete:
        SIGIL_RETURN_IF_ERROR(svc_->leases()->Cancel(JobId(mount_.uuid, name)));
        SIGIL_RETURN_IF_ERROR(storage_.Delete("static-role/" + name));
        return Response::NoContent();
      case Operation::kCreate:
      case Operation::kUpdate:
        break;
      default:
        return Response::Error(405, "unsupported operation");
    }
    SIGIL_ASSIGN_OR_RETURN(std::optional<store::Object> clash, storage_.Get("role/" + name));
    if (clash) return Response::Error(400, "Role and Static Role names must be unique");
    const Json& b = r.data;
    Json j = doc ? doc->first : Json{{"db_name", ""}, {"username", ""}, {"rotation_statements", Json::array()}, {"rotation_period", 0}};
    Result<std::optional<std::string>> user = engines::StringField(b, "username");
    if (!user.ok()) return Response::Error(400, user.error().message());
    if (doc && *user && **user != j.value("username", "")) return Response::Error(400, "cannot update static account username");
    if (!doc) {
      if (!*user || (*user)->empty()) return Response::Error(400, "username is a required field to create a static account");
      if ((*user)->find('"') != std::string::npos || (*user)->find('\0') != std::string::npos || (*user)->size() > 63) {
        return Response::Error(400, "username must be a PostgreSQL role name (at most 63 bytes, without '\"')");
      }
      j["username"] = **user;
    }
    Result<std::optional<std::string>> db = engines::StringField(b, "db_name");
    if (!db.ok()) return Response::Error(400, db.error().message());
    if (doc && *db && **db != j.value("db_name", "")) return Response::Error(400, "cannot update static role db_name");
    if (*db) j["db_name"] = **db;
    if (j.value("db_name", "").empty()) return Response::Error(400, "database name is a required field");
    Result<std::optional<std::vector<std::string>>> stmts = engines::StringSliceField(b, "rotation_statements");
    if (!stmts.ok()) return Response::Error(400, stmts.error().message());
    if (*stmts) j["rotation_statements"] = StringArray(**stmts);
    Result<std::optional<std::chrono::seconds>> period = engines::DurationField(b, "rotation_period");
    if (!period.ok()) return Response::Error(400, period.error().message());
    Result<std::optional<std::string>> schedule = engines::StringField(b, "rotation_schedule");
    if (!schedule.ok()) return Response::Error(400, schedule.error().message());
    Result<std::optional<std::chrono::seconds>> window = engines::DurationField(b, "rotation_window");
    if (!window.ok()) return Response::Error(400, window.error().message());
    bool given_period = *period && (*period)->count() > 0, given_schedule = *schedule && !(*schedule)->empty();
    if (given_period && given_schedule) {
      return Response::Error(400, "mutually exclusive fields rotation_period and rotation_schedule were both specified; only one of them can be provided");
    }
    if (given_period) {
      if ((*period)->count() < kMinRotationPeriod) return Response::Error(400, "rotation_period must be 5 seconds or more");
      j["rotation_period"] = (*period)->count();
      j.erase("rotation_schedule");
      j.erase("rotation_window");
    }
    if (given_schedule) {
      if (Result<CronSchedule> c = CronSchedule::Parse(**schedule); !c.ok()) return Response::Error(400, c.error().message());
      j["rotation_schedule"] = **schedule;
      j["rotation_period"] = 0;
    }
    if (*window && (*window)->count() > 0) {
      if (j.value("rotation_schedule", "").empty()) return Response::Error(400, "rotation_window is invalid with use of rotation_period");
      if ((*window)->count() < 3600) return Response::Error(400, "rotation_window must be 3600 seconds or more");
      j["rotation_window"] = (*window)->count();
    }
    if (j.value("rotation_period", int64_t{0}) == 0 && j.value("rotation_schedule", "").empty()) {
      return Response::Error(400, "one of rotation_schedule or rotation_period must be provided to create a static account");
    }
    if (Status st = CredentialType(b); !st.ok()) return Response::Error(400, st.message());
    Result<std::optional<bool>> skip = engines::BoolField(b, "skip_import_rotation");
    if (!skip.ok()) return Response::Error(400, skip.error().message());
    SIGIL_ASSIGN_OR_RETURN(std::optional<Connection> c, LoadConnection(storage_, j.value("db_name", "")));
    if (!c) return Response::Error(400, "could not find database connection \"" + j.value("db_name", "") + "\"");
    if (!RoleAllowed(c->doc, name)) return Response::Error(500, "\"" + name + "\" is not an allowed role");
    Result<int64_t> w = WriteDoc(storage_, "static-role/" + name, j, doc ? std::optional<int64_t>(doc->second) : std::nullopt);
    if (!w.ok()) return WriteConflict(w.error());
    Clock::TimePoint now = svc_->clock()->Now();
    if (!doc && !skip->value_or(false)) {
      // As Vault: a new static role's password is rotated at once, so sigil holds it.
      Result<std::optional<StaticRotation>> rotated = RotateStatic(svc_, mount_.uuid, name, false);
      if (!rotated.ok()) {
        (void)storage_.Delete("static-role/" + name);
        return Response::Error(500, "error setting the static role's password: " + rotated.error().message());
      }
      SIGIL_RETURN_IF_ERROR(ScheduleRotation(svc_, mount_.uuid, name, (*rotated)->next));
      return Response::NoContent();
    }
    int64_t last = j.value("last_vault_rotation_unix", int64_t{0});
    Clock::TimePoint next = NextDue(j, last > 0 ? FromUnix(last) : now);  // (imported without rotation: from now)
    SIGIL_RETURN_IF_ERROR(ScheduleRotation(svc_, mount_.uuid, name, next));
    return Response::NoContent();
  }

  Json StaticView(const Json& j, bool with_password) const {
    Json out = Json::object();
    int64_t last = j.value("last_vault_rotation_unix", int64_t{0});
    int64_t period = j.value("rotation_period", int64_t{0});
    Clock::TimePoint now = svc_->clock()->Now();
    if (with_password) {
      out["username"] = j.value("username", "");
      out["password"] = j.value("password", "");
    } else {
      out["db_name"] = j.value("db_name", "");
      out["username"] = j.value("username", "");
      out["rotation_statements"] = j.value("rotation_statements", Json::array());
      out["credential_type"] = "password";
    }
    out["last_vault_rotation"] = last > 0 ? Json(FormatRfc3339(FromUnix(last))) : Json(nullptr);
    if (std::string schedule = j.value("rotation_schedule", ""); !schedule.empty()) {
      out["rotation_schedule"] = schedule;
      if (int64_t window = j.value("rotation_window", int64_t{0}); window > 0) out["rotation_window"] = window;
    } else {
      out["rotation_period"] = period;
    }
    if (with_password) {
      int64_t left = last > 0 ? Seconds(NextDue(j, FromUnix(last)).time_since_epoch()) - Seconds(now.time_since_epoch()) : 0;
      out["ttl"] = std::max<int64_t>(0, left);
    }
    return out;
  }

  Result<Response> StaticCreds(const std::string& name) {
    SIGIL_ASSIGN_OR_RETURN(auto doc, ReadDoc(storage_, "static-role/" + name));
    if (!doc) return Response::Error(400, "unknown role: " + name);
    if (!doc->first.contains("password")) return Response::Error(500, "the static role's password has not been set yet");
    Json data = StaticView(doc->first, true);
    std::string& stored = doc->first["password"].get_ref<std::string&>();
    std::fill(stored.begin(), stored.end(), '\0');
    return Response::Ok(std::move(data));
  }

  Result<Response> RotateRole(const std::string& name) {
    Result<std::optional<StaticRotation>> r = RotateStatic(svc_, mount_.uuid, name, false);
    if (!r.ok()) {
      if (r.error().code() == StatusCode::kInternal || r.error().code() == StatusCode::kDataLoss) return r.error();
      return Response::Error(500, "unable to finish rotating credentials; retries will continue in the background: " + r.error().message());
    }
    if (!*r) return Response::Error(400, "no static role found for role name");
    SIGIL_RETURN_IF_ERROR(ScheduleRotation(svc_, mount_.uuid, name, (*r)->next));
    return Response::NoContent();
  }

  Service* svc_;
  engines::Mount mount_;
  Caller caller_;
  engines::Storage storage_;
};

}  // namespace

// ---------------------------------------------------------------------------------------------

Service::Service(engines::MountTable* mounts, leases::Manager* leases, Clock* clock, PasswordPolicies policies)
    : mounts_(mounts), leases_(leases), clock_(clock), policies_(std::move(policies)) {
  leases_->Register(std::string(kDynamicKind), std::make_shared<DynamicLeases>(this));
  leases_->Register(std::string(kStaticKind), std::make_shared<StaticRotations>(this));
}

Service::~Service() = default;

std::unique_ptr<engines::SecretsEngine> Service::Engine(const engines::Mount& m, Caller caller) {
  return std::make_unique<DatabaseEngine>(this, m, std::move(caller));
}

Status Service::Prepare(engines::Mount* m) {
  if (m->options.is_object() && !m->options.empty()) return InvalidArgumentError("the database engine takes no options");
  m->options = nullptr;
  return OkStatus();
}

Result<std::string> Service::NewPassword(const Connection& c) {
  std::string name = c.doc.value("password_policy", "");
  if (name.empty()) return std::string(crypto::RandomPassword(kPasswordLength).view());
  if (!policies_) return FailedPreconditionError("password policies are not available");
  SIGIL_ASSIGN_OR_RETURN(SecretBytes p, policies_(name));
  std::string_view v = p.view();
  if (v.find_first_of("'\\") != std::string_view::npos || v.find('\0') != std::string_view::npos) {
    return InvalidArgumentError("password policy \"" + name.substr(0, 64) + "\" makes passwords with ' or \\, which SQL statements cannot hold");
  }
  return std::string(v);
}

engines::Storage Service::StorageOf(const std::string& mount_uuid) const {
  engines::Mount m;
  m.uuid = mount_uuid;
  return mounts_->StorageFor(m);
}

Result<std::shared_ptr<Pool>> Service::PoolFor(const std::string& mount_uuid, const std::string& name, const Connection& c) {
  std::string key = mount_uuid + "/" + name;
  std::string fingerprint = c.Fingerprint();
  std::lock_guard<std::mutex> l(mu_);
  auto it = pools_.find(key);
  if (it != pools_.end() && it->second.fingerprint == fingerprint) return it->second.pool;
  auto pool = std::make_shared<Pool>(RenderConnectionString(c.url(), c.username(), c.password()), c.pool_options());
  pools_[key] = Cached{fingerprint, pool};
  return pool;
}

Result<size_t> Service::TidyOrphans(std::vector<std::string>* problems) {
  size_t dropped = 0;
  int64_t now = Seconds(clock_->Now().time_since_epoch());
  for (const engines::Mount& m : mounts_->List()) {
    if (m.type != kMountType) continue;
    engines::Storage storage = StorageOf(m.uuid);
    // Users first, leases second: a user PostgreSQL shows has its lease already (the creation
    // commits after it), so a user missing from the leases read afterwards is an orphan.
    std::map<std::string, Json> roles;  // name -> role
    SIGIL_ASSIGN_OR_RETURN(std::vector<std::string> role_names, storage.List("role/"));
    for (const std::string& r : role_names) {
      SIGIL_ASSIGN_OR_RETURN(auto doc, ReadDoc(storage, "role/" + r));
      if (doc) roles[r] = std::move(doc->first);
    }
    SIGIL_ASSIGN_OR_RETURN(std::vector<std::string> connections, storage.List("config/"));
    std::vector<std::pair<std::string, std::string>> candidates;  // (connection, user)
    for (const std::string& cname : connections) {
      SIGIL_ASSIGN_OR_RETURN(std::optional<Connection> c, LoadConnection(storage, cname));
      if (!c) continue;
      Result<std::shared_ptr<Pool>> pool = PoolFor(m.uuid, cname, *c);
      if (!pool.ok()) continue;
      Status st = (*pool)->Run([&](Session& s) -> Status {
        SIGIL_ASSIGN_OR_RETURN(auto rows, s.Query("SELECT rolname FROM pg_roles WHERE rolname LIKE 'v-%'", {}));
        for (auto& row : rows) candidates.emplace_back(cname, row.at(0));
        return OkStatus();
      });
      if (!st.ok()) problems->push_back("database connection \"" + cname + "\" of " + m.path + ": " + st.message());
    }
    if (candidates.empty()) continue;
    std::set<std::string> leased;
    SIGIL_ASSIGN_OR_RETURN(std::vector<std::string> folders, leases_->List(m.path + "creds/"));
    for (const std::string& f : folders) {
      if (!f.ends_with("/")) continue;
      SIGIL_ASSIGN_OR_RETURN(std::vector<std::string> ids, leases_->List(m.path + "creds/" + f));
      for (const std::string& id : ids) {
        SIGIL_ASSIGN_OR_RETURN(std::optional<leases::Lease> l, leases_->Lookup(m.path + "creds/" + f + id));
        if (l) leased.insert(l->data.value("username", ""));
      }
    }
    for (const auto& [cname, user] : candidates) {
      // v-<display>-<role, 8>-<20 base62>-<unix time>, for a role of this mount on this connection.
      size_t dash = user.rfind('-');
      if (dash == std::string::npos || dash + 1 >= user.size()) continue;
      std::string_view digits = std::string_view(user).substr(dash + 1);
      if (!std::all_of(digits.begin(), digits.end(), [](char ch) { return ch >= '0' && ch <= '9'; }) || digits.size() > 12) continue;
      int64_t made = std::stoll(std::string(digits));
      if (dash < 21 || user[dash - 21] != '-') continue;
      std::string_view random = std::string_view(user).substr(dash - 20, 20);
      if (!std::all_of(random.begin(), random.end(), [](char ch) { return std::isalnum(static_cast<unsigned char>(ch)); })) continue;
      std::string_view head = std::string_view(user).substr(0, dash - 21);  // v-<display>-<role>
      const Json* role = nullptr;
      for (const auto& [rname, r] : roles) {
        if (r.value("db_name", "") == cname && head.size() > 2 + rname.substr(0, 8).size() &&
            head.ends_with("-" + rname.substr(0, 8))) {
          role = &r;
        }
      }
      if (role == nullptr || leased.count(user) || made > now - 60) continue;
      SIGIL_ASSIGN_OR_RETURN(std::optional<Connection> c, LoadConnection(storage, cname));
      if (!c) continue;
      SIGIL_ASSIGN_OR_RETURN(std::shared_ptr<Pool> pool, PoolFor(m.uuid, cname, *c));
      Status st = DropUser(*pool, user, Strings(role->value("revocation_statements", Json::array())), *c);
      if (st.ok()) {
        ++dropped;
        log::Warn("database: tidy dropped a user that no lease held", {{"mount", m.path}, {"connection", cname}, {"username", user}});
      } else {
        problems->push_back("dropping " + user + ": " + st.message());
      }
    }
  }
  return dropped;
}

void Service::ForgetMount(const std::string& mount_uuid) {
  std::vector<std::shared_ptr<Pool>> old;  // closed outside the lock
  std::lock_guard<std::mutex> l(mu_);
  for (auto it = pools_.lower_bound(mount_uuid + "/"); it != pools_.end() && it->first.starts_with(mount_uuid + "/");) {
    old.push_back(std::move(it->second.pool));
    it = pools_.erase(it);
  }
}

void Service::Forget(const std::string& mount_uuid, const std::string& name) {
  std::shared_ptr<Pool> old;  // closed outside the lock, once its last user is done
  std::lock_guard<std::mutex> l(mu_);
  auto it = pools_.find(mount_uuid + "/" + name);
  if (it == pools_.end()) return;
  old = std::move(it->second.pool);
  pools_.erase(it);
}

}  // namespace sigil::database
