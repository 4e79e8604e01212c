// api/vault/auth_approle.cc: Vault's AppRole auth method (auth/<mount>/...): roles with a role
// ID and policies, secret IDs with a TTL and a use limit, login with both. Role IDs and secret
// IDs are random UUIDs (122 bits), stored only as SHA-256 digests in the mount's own storage:
//
//   role/<name>                           the role (policies, TTLs, secret-id defaults, the
//                                         role ID's digest)
//   role-id/<sha256(role_id)>             -> the role's name
//   secret-id/<role>/<sha256(secret_id)>  a secret ID: accessor, times, uses left, metadata
//   secret-id-accessor/<role>/<accessor>  -> the secret ID's digest
//
// A login with a use-limited secret ID takes one use in a compare-on-revision write (the last
// use deletes it), so two logins racing for the last use cannot both succeed.
#include <algorithm>
#include <set>

#include "sigil/api/vault/impl.h"
#include "sigil/base/encoding.h"
#include "sigil/crypto/hash.h"
#include "sigil/crypto/random.h"

namespace sigil::vault {
namespace {

std::string Digest(std::string_view v) { return HexEncode(crypto::Sha256(v)); }
int64_t UnixNow(Clock* c) { return std::chrono::duration_cast<std::chrono::seconds>(c->Now().time_since_epoch()).count(); }

bool ValidName(std::string_view n) {
  if (n.empty() || n.size() > 128 || n == "." || n == "..") return false;
  return std::all_of(n.begin(), n.end(), [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.'; });
}

Json RoleView(const Json& r) {
  Json policies = r.value("token_policies", Json::array());
  return Json{{"token_policies", policies},
              {"policies", policies},
              {"token_ttl", r.value("token_ttl", int64_t{0})},
              {"token_max_ttl", r.value("token_max_ttl", int64_t{0})},
              {"secret_id_ttl", r.value("secret_id_ttl", int64_t{0})},
              {"secret_id_num_uses", r.value("secret_id_num_uses", int64_t{0})},
              {"bind_secret_id", r.value("bind_secret_id", true)},
              {"token_type", "default"},
              {"token_bound_cidrs", Json::array()},
              {"secret_id_bound_cidrs", Json::array()}};
}

Json SecretView(const Json& s) {
  auto time = [](int64_t t) { return t == 0 ? Json("0001-01-01T00:00:00Z") : Json(FormatRfc3339(Clock::TimePoint(std::chrono::seconds(t)))); };
  return Json{{"secret_id_accessor", s.value("accessor", "")},
              {"creation_time", time(s.value("created", int64_t{0}))},
              {"last_updated_time", time(s.value("updated", int64_t{0}))},
              {"expiration_time", time(s.value("expires", int64_t{0}))},
              {"secret_id_num_uses", s.value("num_uses", int64_t{0})},
              {"secret_id_ttl", s.value("ttl", int64_t{0})},
              {"metadata", s.value("metadata", Json::object())},
              {"cidr_list", Json::array()},
              {"token_bound_cidrs", Json::array()}};
}

}  // namespace

std::optional<Reply> VaultApi::Impl::AuthAppRole(const Request& r, const engines::Mount& mount) {
  engines::Storage storage = options_.auth_mounts->StorageFor(mount);
  std::string rest = MountRest(r.path, mount);
  auto fail = [this](const Status& st) {
    if (st.code() == StatusCode::kInvalidArgument) return Error(400, st.message());
    return errors_.Render(st, core::RequestInfo{});
  };
  using Record = std::optional<std::pair<Json, int64_t>>;
  auto load = [&storage](const std::string& key) -> Result<Record> {
    SIGIL_ASSIGN_OR_RETURN(std::optional<store::Object> o, storage.Get(key));
    if (!o) return Record();
    Json j = Json::parse(o->doc.view(), nullptr, false);
    if (j.is_discarded()) return DataLossError("a stored approle record is malformed");
    return Record(std::make_pair(std::move(j), o->revision));
  };
  int64_t now = UnixNow(clock_);
  // A secret ID's record, unless expired (an expired one is deleted on sight).
  auto live_secret = [&](const std::string& role, const std::string& digest) -> Result<Record> {
    SIGIL_ASSIGN_OR_RETURN(Record s, load("secret-id/" + role + "/" + digest));
    if (!s) return s;
    int64_t expires = s->first.value("expires", int64_t{0});
    if (expires != 0 && expires <= now) {
      (void)storage.Delete("secret-id/" + role + "/" + digest);
      (void)storage.Delete("secret-id-accessor/" + role + "/" + s->first.value("accessor", ""));
      return Record();
    }
    return s;
  };

  if (rest == "role" || rest == "role/") {
    if (r.op != Operation::kList) return Error(405, "unsupported operation");
    Result<std::vector<std::string>> names = storage.List("role/");
    if (!names.ok()) return fail(names.error());
    if (names->empty()) return NotFound();
    return Envelope(Json{{"keys", *names}});
  }

  if (rest.starts_with("role/")) {
    std::string tail = rest.substr(5);
    std::string sub;
    if (size_t slash = tail.find('/'); slash != std::string::npos) {
      sub = tail.substr(slash + 1);
      tail.resize(slash);
    }
    std::string name = tail;
    if (!ValidName(name)) return Error(400, "invalid role name");
    Result<Record> role = load("role/" + name);
    if (!role.ok()) return fail(role.error());

    if (sub.empty()) {
      if (r.op == Operation::kRead) {
        if (!*role) return NotFound();
        return Envelope(RoleView((*role)->first));
      }
      if (r.op == Operation::kDelete) {
        if (!*role) return NoContent();
        (void)storage.Delete("role-id/" + (*role)->first.value("role_id_digest", ""));
        Result<std::vector<std::string>> secrets = storage.List("secret-id/" + name + "/");
        if (secrets.ok()) {
          for (const std::string& s : *secrets) (void)storage.Delete("secret-id/" + name + "/" + s);
        }
        Result<std::vector<std::string>> accessors = storage.List("secret-id-accessor/" + name + "/");
        if (accessors.ok()) {
          for (const std::string& a : *accessors) (void)storage.Delete("secret-id-accessor/" + name + "/" + a);
        }
        Status st = storage.Delete("role/" + name);
        if (!st.ok()) return fail(st);
        return NoContent();
      }
      if (r.op != Operation::kWrite) return Error(405, "unsupported operation");
      if (std::optional<Reply> no = RefuseUnsupported(r.body, {"token_bound_cidrs", "secret_id_bound_cidrs", "token_num_uses", "token_period", "token_no_default_policy", "token_explicit_max_ttl", "enable_local_secret_ids"})) return std::move(*no);
      Json doc = *role ? (*role)->first : Json::object();
      auto policies = ListField(r.body, "token_policies");
      if (policies.ok() && !*policies) policies = ListField(r.body, "policies");
      auto ttl = DurationField(r.body, "token_ttl");
      auto max = DurationField(r.body, "token_max_ttl");
      auto sid_ttl = DurationField(r.body, "secret_id_ttl");
      auto sid_uses = IntField(r.body, "secret_id_num_uses");
      auto bind = BoolField(r.body, "bind_secret_id");
      for (const Status& st : {policies.status(), ttl.status(), max.status(), sid_ttl.status(), sid_uses.status(), bind.status()}) {
        if (!st.ok()) return fail(st);
      }
      if (*bind && !**bind) return Error(400, "bind_secret_id=false is not supported by sigil: a login needs a secret ID");
      if (*sid_uses && **sid_uses < 0) return Error(400, "secret_id_num_uses cannot be negative");
      if (*policies) {
        std::set<std::string> set;
        for (const std::string& p : **policies) {
          if (!p.empty()) set.insert(authz::PolicyStore::Lower(p));
        }
        doc["token_policies"] = std::vector<std::string>(set.begin(), set.end());
      }
      if (*ttl) doc["token_ttl"] = (*ttl)->count();
      if (*max) doc["token_max_ttl"] = (*max)->count();
      if (*sid_ttl) doc["secret_id_ttl"] = (*sid_ttl)->count();
      if (*sid_uses) doc["secret_id_num_uses"] = **sid_uses;
      if (!*role) {  // a new role gets a random role ID
        std::string role_id = crypto::RandomUuid();
        doc["role_id"] = role_id;
        doc["role_id_digest"] = Digest(role_id);
        Result<int64_t> idx = storage.Put("role-id/" + Digest(role_id), SecretBytes(std::string_view(name)), std::nullopt);
        if (!idx.ok()) return fail(idx.error());
      }
      Result<int64_t> put = storage.Put("role/" + name, SecretBytes(doc.dump()), *role ? std::optional<int64_t>((*role)->second) : std::nullopt);
      if (!put.ok()) return fail(put.error());
      return NoContent();
    }

    if (!*role) return Error(400, "role \"" + name + "\" does not exist");
    Json& doc = (*role)->first;

    if (sub == "role-id") {
      if (r.op == Operation::kRead) return Envelope(Json{{"role_id", doc.value("role_id", "")}});
      if (r.op != Operation::kWrite) return Error(405, "unsupported operation");
      Result<std::optional<std::string>> id = StringField(r.body, "role_id");
      if (!id.ok()) return fail(id.error());
      if (!*id || (*id)->size() < 8) return Error(400, "missing role_id (at least 8 characters)");
      Result<Record> taken = load("role-id/" + Digest(**id));
      if (!taken.ok()) return fail(taken.error());
      if (*taken) return Error(400, "role_id already in use");
      (void)storage.Delete("role-id/" + doc.value("role_id_digest", ""));
      Result<int64_t> idx = storage.Put("role-id/" + Digest(**id), SecretBytes(std::string_view(name)), std::nullopt);
      if (!idx.ok()) return fail(idx.error());
      doc["role_id"] = **id;
      doc["role_id_digest"] = Digest(**id);
      Result<int64_t> put = storage.Put("role/" + name, SecretBytes(doc.dump()), (*role)->second);
      if (!put.ok()) return fail(put.error());
      return NoContent();
    }

    if (sub == "secret-id" || sub == "secret-id/") {
      if (r.op == Operation::kList) {
        Result<std::vector<std::string>> accessors = storage.List("secret-id-accessor/" + name + "/");
        if (!accessors.ok()) return fail(accessors.error());
        if (accessors->empty()) return NotFound();
        return Envelope(Json{{"keys", *accessors}});
      }
      if (r.op != Operation::kWrite) return Error(405, "unsupported operation");
      if (std::optional<Reply> no = RefuseUnsupported(r.body, {"cidr_list", "token_bound_cidrs"})) return std::move(*no);
      auto ttl = DurationField(r.body, "ttl");
      auto uses = IntField(r.body, "num_uses");
      auto meta = StringField(r.body, "metadata");
      for (const Status& st : {ttl.status(), uses.status(), meta.status()}) {
        if (!st.ok()) return fail(st);
      }
      Json metadata = Json::object();
      if (*meta && !(*meta)->empty()) {
        metadata = Json::parse(**meta, nullptr, false);
        if (!metadata.is_object()) return Error(400, "failed to parse metadata: a JSON object of strings is expected");
        for (const auto& [k, v] : metadata.items()) {
          if (!v.is_string()) return Error(400, "failed to parse metadata: a JSON object of strings is expected");
        }
      }
      int64_t secret_ttl = ttl->value_or(std::chrono::seconds(doc.value("secret_id_ttl", int64_t{0}))).count();
      int64_t role_ttl = doc.value("secret_id_ttl", int64_t{0});
      if (role_ttl > 0 && (secret_ttl == 0 || secret_ttl > role_ttl)) secret_ttl = role_ttl;  // the role's is the most
      int64_t num_uses = uses->value_or(doc.value("secret_id_num_uses", int64_t{0}));
      int64_t role_uses = doc.value("secret_id_num_uses", int64_t{0});
      if (num_uses < 0) return Error(400, "num_uses cannot be negative");
      if (role_uses > 0 && (num_uses == 0 || num_uses > role_uses)) num_uses = role_uses;
      std::string secret_id = crypto::RandomUuid();
      std::string accessor = crypto::RandomUuid();
      std::string digest = Digest(secret_id);
      Json s = {{"accessor", accessor}, {"created", now}, {"updated", now}, {"expires", secret_ttl > 0 ? now + secret_ttl : 0},
                {"ttl", secret_ttl}, {"num_uses", num_uses}, {"metadata", metadata}};
      Result<int64_t> a = storage.Put("secret-id-accessor/" + name + "/" + accessor, SecretBytes(std::string_view(digest)), std::nullopt);
      if (!a.ok()) return fail(a.error());
      Result<int64_t> put = storage.Put("secret-id/" + name + "/" + digest, SecretBytes(s.dump()), std::nullopt);
      if (!put.ok()) return fail(put.error());
      return Envelope(Json{{"secret_id", secret_id}, {"secret_id_accessor", accessor}, {"secret_id_ttl", secret_ttl},
                           {"secret_id_num_uses", num_uses}});
    }

    bool by_accessor = sub.starts_with("secret-id-accessor/");
    if (sub == "secret-id/lookup" || sub == "secret-id/destroy" || sub == "secret-id-accessor/lookup" ||
        sub == "secret-id-accessor/destroy") {
      if (r.op != Operation::kWrite && !(sub.ends_with("destroy") && r.op == Operation::kDelete)) return Error(405, "unsupported operation");
      Result<std::optional<std::string>> v = StringField(r.body, by_accessor ? "secret_id_accessor" : "secret_id");
      if (!v.ok()) return fail(v.error());
      if (!*v || (*v)->empty()) return Error(400, by_accessor ? "missing secret_id_accessor" : "missing secret_id");
      std::string digest;
      if (by_accessor) {
        if ((*v)->find('/') != std::string::npos) return Error(400, "invalid secret_id_accessor");
        // The index holds the digest as plain text, not JSON.
        Result<std::optional<store::Object>> idx = storage.Get("secret-id-accessor/" + name + "/" + **v);
        if (!idx.ok()) return fail(idx.error());
        if (!*idx) {
          if (sub.ends_with("destroy")) return NoContent();
          return Error(404, "failed to find accessor entry for secret_id_accessor");
        }
        digest = std::string((*idx)->doc.view());
      } else {
        digest = Digest(**v);
      }
      Result<Record> s = live_secret(name, digest);
      if (!s.ok()) return fail(s.error());
      if (sub.ends_with("destroy")) {
        if (*s) (void)storage.Delete("secret-id-accessor/" + name + "/" + (*s)->first.value("accessor", ""));
        Status st = storage.Delete("secret-id/" + name + "/" + digest);
        if (!st.ok()) return fail(st);
        return NoContent();
      }
      if (!*s) return NoContent();  // Vault answers an unknown secret ID's lookup with no data
      return Envelope(SecretView((*s)->first));
    }
    return Error(404, "unsupported path");
  }

  if (rest == "login") {
    if (r.op != Operation::kWrite) return Error(405, "unsupported operation");
    Result<std::optional<std::string>> role_id = StringField(r.body, "role_id");
    Result<std::optional<std::string>> secret_id = StringField(r.body, "secret_id");
    if (!role_id.ok()) return fail(role_id.error());
    if (!secret_id.ok()) return fail(secret_id.error());
    if (!*role_id || (*role_id)->empty()) return Error(400, "missing role_id");
    if (!*secret_id || (*secret_id)->empty()) return Error(400, "missing secret_id");
    Result<std::optional<store::Object>> idx = storage.Get("role-id/" + Digest(**role_id));
    if (!idx.ok()) return fail(idx.error());
    if (!*idx) return Error(400, "invalid role or secret ID");
    std::string name((*idx)->doc.view());
    std::string digest = Digest(**secret_id);
    Json role_doc;
    for (int attempt = 0;; ++attempt) {
      if (attempt == 8) return Error(503, "the secret ID kept changing during the login; try again");
      Result<Record> role = load("role/" + name);
      if (!role.ok()) return fail(role.error());
      if (!*role) return Error(400, "invalid role or secret ID");
      role_doc = (*role)->first;
      Result<Record> s = live_secret(name, digest);
      if (!s.ok()) return fail(s.error());
      if (!*s) return Error(400, "invalid role or secret ID");
      int64_t uses = (*s)->first.value("num_uses", int64_t{0});
      if (uses == 0) break;  // unlimited
      Status took;
      if (uses == 1) {  // the last use: the secret ID goes, its accessor with it
        // Conditional on the revision read: of two logins racing for the last use, one deletes
        // and the other sees kAborted, reads again and finds the secret ID gone.
        took = storage.DeleteIf("secret-id/" + name + "/" + digest, (*s)->second);
        if (took.ok()) (void)storage.Delete("secret-id-accessor/" + name + "/" + (*s)->first.value("accessor", ""));
      } else {
        Json next = (*s)->first;
        next["num_uses"] = uses - 1;
        next["updated"] = now;
        took = storage.Put("secret-id/" + name + "/" + digest, SecretBytes(next.dump()), (*s)->second).status();
      }
      if (took.ok()) break;
      if (took.code() != StatusCode::kAborted && took.code() != StatusCode::kNotFound) return fail(took);
    }
    return IssueLoginToken(role_doc, {{"role_name", name}}, mount.path.substr(0, mount.path.size() - 1),
                           "auth/" + mount.path + "login", mount);
  }
  return Error(404, "unsupported path");
}

}  // namespace sigil::vault
