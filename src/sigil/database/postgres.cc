#include "sigil/database/postgres.h"

#include <libpq-fe.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>
#include <thread>

#include "sigil/base/encoding.h"
#include "sigil/crypto/random.h"

namespace sigil::database {
namespace {

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\n' || s.front() == '\r')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\n' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

// RFC 3986 percent-encoding of everything but the unreserved characters.
std::string PercentEncode(std::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out += static_cast<char>(c);
    } else {
      char buf[4];
      std::snprintf(buf, sizeof(buf), "%%%02X", c);
      out += buf;
    }
  }
  return out;
}

// A value in a key=value connection string: single-quoted, with \ and ' escaped.
std::string QuoteConnValue(std::string_view s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\\' || c == '\'') out += '\\';
    out += c;
  }
  return out + "'";
}

bool IsUrl(std::string_view s) { return s.starts_with("postgres://") || s.starts_with("postgresql://"); }

// libpq's message without its trailing newline, or a fallback.
std::string ConnError(const pg_conn* c) {
  std::string m = c ? PQerrorMessage(c) : "";
  while (!m.empty() && (m.back() == '\n' || m.back() == ' ')) m.pop_back();
  return m.empty() ? "unknown error" : m;
}

// PostgreSQL's primary message and SQLSTATE of a failed result.
std::string ResultError(const PGresult* r, const pg_conn* c) {
  const char* primary = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : nullptr;
  const char* state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : nullptr;
  std::string m = primary ? primary : ConnError(c);
  if (state) m += std::string(" (SQLSTATE ") + state + ")";
  return m;
}

struct ResultDeleter {
  void operator()(PGresult* r) const { PQclear(r); }
};
using ResultPtr = std::unique_ptr<PGresult, ResultDeleter>;

// A failed statement: a connection failure is kUnavailable (retry later), anything the server
// refused kFailedPrecondition.
Status StatementError(const PGresult* r, const pg_conn* c) {
  if (PQstatus(c) != CONNECTION_OK) return UnavailableError("postgresql: " + ResultError(r, c));
  return FailedPreconditionError("postgresql: " + ResultError(r, c));
}

}  // namespace

std::string RenderTemplate(std::string_view tpl, const std::map<std::string, std::string, std::less<>>& vars) {
  // One pass over the template: a value is never scanned for templates itself.
  std::string out;
  size_t i = 0;
  while (i < tpl.size()) {
    size_t open = tpl.find("{{", i);
    if (open == std::string_view::npos) break;
    size_t close = tpl.find("}}", open + 2);
    if (close == std::string_view::npos) break;
    out.append(tpl.substr(i, open - i));
    auto it = vars.find(tpl.substr(open + 2, close - open - 2));
    if (it != vars.end()) {
      out += it->second;
      i = close + 2;
    } else {
      out += "{{";
      i = open + 2;
    }
  }
  out.append(tpl.substr(i));
  return out;
}

namespace {

// Whether `s` has "$$" or the word END (any case) outside single quotes.
bool HasBlock(std::string_view s) {
  if (s.find("$$") != std::string_view::npos) return true;
  bool quoted = false;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\'') quoted = !quoted;
    if (quoted || i + 3 > s.size()) continue;
    auto word = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; };
    if ((i == 0 || !word(s[i - 1])) && (i + 3 == s.size() || !word(s[i + 3])) &&
        std::toupper(static_cast<unsigned char>(s[i])) == 'E' && std::toupper(static_cast<unsigned char>(s[i + 1])) == 'N' &&
        std::toupper(static_cast<unsigned char>(s[i + 2])) == 'D') {
      return true;
    }
  }
  return false;
}

}  // namespace

std::vector<std::string> SplitStatements(std::string_view raw, bool keep_blocks) {
  std::string decoded;
  std::string_view entry = raw;
  if (Result<std::string> b = Base64Decode(Trim(raw)); b.ok() && !Trim(raw).empty()) {
    decoded = std::move(*b);
    entry = decoded;
  }
  std::vector<std::string> out;
  std::string_view t = Trim(entry);
  if (t.starts_with('[')) {
    nlohmann::json j = nlohmann::json::parse(t, nullptr, false);
    if (j.is_array() && std::all_of(j.begin(), j.end(), [](const nlohmann::json& e) { return e.is_string(); })) {
      for (const auto& e : j) {
        std::string_view v = Trim(e.get_ref<const std::string&>());
        if (!v.empty()) out.emplace_back(v);
      }
      return out;
    }
  }
  if (keep_blocks && HasBlock(entry)) {
    if (!t.empty()) out.emplace_back(t);
    return out;
  }
  size_t start = 0;
  while (start <= entry.size()) {
    size_t end = entry.find(';', start);
    if (end == std::string_view::npos) end = entry.size();
    std::string_view s = Trim(entry.substr(start, end - start));
    if (!s.empty()) out.emplace_back(s);
    start = end + 1;
  }
  return out;
}

std::string RedactUrl(std::string_view url) {
  if (!IsUrl(url)) {
    // key=value: rebuilt from libpq's own parse, with the password masked.
    char* err = nullptr;
    PQconninfoOption* opts = PQconninfoParse(std::string(url).c_str(), &err);
    if (err) PQfreemem(err);
    if (opts == nullptr) return "[unparsable connection string]";
    std::string out;
    for (PQconninfoOption* o = opts; o->keyword != nullptr; ++o) {
      if (o->val == nullptr) continue;
      std::string_view v = o->val;
      if (std::string_view(o->keyword) == "password" && v != "{{password}}") v = "xxxxx";
      if (!out.empty()) out += ' ';
      out += std::string(o->keyword) + "=" + QuoteConnValue(v);
    }
    PQconninfoFree(opts);
    return out;
  }
  size_t scheme = url.find("://") + 3;
  size_t at = url.find('@', scheme);
  size_t slash = url.find('/', scheme);
  if (at == std::string_view::npos || (slash != std::string_view::npos && slash < at)) return std::string(url);
  size_t colon = url.find(':', scheme);
  if (colon == std::string_view::npos || colon > at) return std::string(url);
  if (url.substr(colon + 1, at - colon - 1) == "{{password}}") return std::string(url);
  return std::string(url.substr(0, colon + 1)) + "xxxxx" + std::string(url.substr(at));
}

SecretBytes RenderConnectionString(std::string_view url, std::string_view username, std::string_view password) {
  bool u = IsUrl(url);
  std::string user = u ? PercentEncode(username) : QuoteConnValue(username);
  std::string pass = u ? PercentEncode(password) : QuoteConnValue(password);
  std::string out = RenderTemplate(url, {{"username", user}, {"password", pass}});
  SecretBytes s(out);
  std::fill(out.begin(), out.end(), '\0');
  std::fill(pass.begin(), pass.end(), '\0');
  return s;
}

Status CheckConnectionString(std::string_view url) {
  if (url.empty()) return InvalidArgumentError("connection_url cannot be empty");
  std::string s = RenderTemplate(url, {{"username", "u"}, {"password", "p"}});
  char* err = nullptr;
  PQconninfoOption* opts = PQconninfoParse(s.c_str(), &err);
  if (opts == nullptr) {
    std::string m = err ? err : "cannot be parsed";
    if (err) PQfreemem(err);
    while (!m.empty() && m.back() == '\n') m.pop_back();
    return InvalidArgumentError("invalid connection_url: " + m);
  }
  PQconninfoFree(opts);
  return OkStatus();
}

std::string QuoteIdentifier(std::string_view name) {
  std::string out = "\"";
  for (char c : name) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

std::string QuoteLiteral(std::string_view value) {
  std::string out = "'";
  for (char c : value) {
    if (c == '\'') out += '\'';
    out += c;
  }
  return out + "'";
}

std::string Redact(std::string message, const std::vector<std::string_view>& secrets) {
  for (std::string_view s : secrets) {
    if (s.empty()) continue;
    for (size_t at = message.find(s); at != std::string::npos; at = message.find(s, at)) {
      message.replace(at, s.size(), "[redacted]");
      at += 10;
    }
  }
  auto shares = [&](std::string_view part) {
    for (std::string_view s : secrets) {
      size_t w = std::min<size_t>(4, s.size());
      if (w == 0 || part.size() < w) continue;
      for (size_t i = 0; i + w <= s.size(); ++i) {
        if (part.find(s.substr(i, w)) != std::string_view::npos) return true;
      }
    }
    return false;
  };
  std::string out;
  for (size_t i = 0; i < message.size();) {
    char q = message[i];
    size_t end = (q == '"' || q == '\'') ? message.find(q, i + 1) : std::string::npos;
    if (end == std::string::npos) {
      out += message[i++];
      continue;
    }
    std::string_view part(message.data() + i + 1, end - i - 1);
    out += q;
    out += shares(part) ? std::string("[redacted]") : std::string(part);
    out += q;
    i = end + 1;
  }
  return out;
}

Status Session::Failed(const void* result) {
  const PGresult* r = static_cast<const PGresult*>(result);
  const char* state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : nullptr;
  const char* primary = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : nullptr;
  std::string_view s = state ? state : "", m = primary ? primary : "";
  retryable_ = s == "40001" || s == "40P01" || (s == "XX000" && m == "tuple concurrently updated");
  return StatementError(r, conn_);
}

Status Session::Exec(const std::string& sql) {
  ResultPtr r(PQexec(conn_, sql.c_str()));
  ExecStatusType st = r ? PQresultStatus(r.get()) : PGRES_FATAL_ERROR;
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) return Failed(r.get());
  retryable_ = false;
  return OkStatus();
}

Status Session::Send(const std::string& sql) {
  if (PQsendQuery(conn_, sql.c_str()) != 1) return UnavailableError("postgresql: " + ConnError(conn_));
  return OkStatus();
}

Status Session::Wait() {
  Status first;
  while (PGresult* raw = PQgetResult(conn_)) {
    ResultPtr r(raw);
    ExecStatusType st = PQresultStatus(r.get());
    if (first.ok() && st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK && st != PGRES_EMPTY_QUERY) first = Failed(r.get());
  }
  if (first.ok()) retryable_ = false;
  return first;
}

Result<std::vector<std::vector<std::string>>> Session::Query(const std::string& sql, const std::vector<std::string>& params) {
  std::vector<const char*> values;
  values.reserve(params.size());
  for (const std::string& p : params) values.push_back(p.c_str());
  ResultPtr r(PQexecParams(conn_, sql.c_str(), static_cast<int>(values.size()), nullptr, values.data(), nullptr, nullptr, 0));
  ExecStatusType st = r ? PQresultStatus(r.get()) : PGRES_FATAL_ERROR;
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) return Failed(r.get());
  retryable_ = false;
  std::vector<std::vector<std::string>> rows;
  int n = PQntuples(r.get()), cols = PQnfields(r.get());
  for (int i = 0; i < n; ++i) {
    std::vector<std::string> row;
    for (int j = 0; j < cols; ++j) row.emplace_back(PQgetvalue(r.get(), i, j), PQgetlength(r.get(), i, j));
    rows.push_back(std::move(row));
  }
  return rows;
}

Result<std::string> Session::EncryptPassword(const std::string& user, const std::string& password) {
  char* v = PQencryptPasswordConn(conn_, password.c_str(), user.c_str(), "scram-sha-256");
  if (v == nullptr) return FailedPreconditionError("postgresql: cannot compute the SCRAM verifier: " + ConnError(conn_));
  std::string out(v);
  std::memset(v, 0, out.size());
  PQfreemem(v);
  return out;
}

bool Session::healthy() const { return PQstatus(conn_) == CONNECTION_OK && PQtransactionStatus(conn_) == PQTRANS_IDLE; }

Pool::Pool(SecretBytes conninfo, Options options) : conninfo_(std::move(conninfo)), options_(options) {
  if (options_.max_open == 0) options_.max_open = 1;
  if (options_.max_idle == 0 || options_.max_idle > options_.max_open) options_.max_idle = options_.max_open;
}

Pool::~Pool() {
  std::lock_guard<std::mutex> l(mu_);
  for (Idle& i : idle_) PQfinish(i.conn);
  idle_.clear();
}

Result<pg_conn*> Pool::Connect() {
  // The connection string is expanded as "dbname" after our defaults, so what it names wins.
  std::string timeout = std::to_string(options_.connect_timeout.count());
  std::string info(conninfo_.view());
  // dbname (the whole connection string) first, so sigil's connect_timeout comes after it and
  // wins: a connection attempt never hangs a request or a revocation for longer.
  const char* keys[] = {"application_name", "dbname", "connect_timeout", nullptr};
  const char* values[] = {"sigil", info.c_str(), timeout.c_str(), nullptr};
  pg_conn* c = PQconnectdbParams(keys, values, /*expand_dbname=*/1);
  std::fill(info.begin(), info.end(), '\0');
  if (c == nullptr) return ResourceExhaustedError("postgresql: out of memory");
  if (PQstatus(c) != CONNECTION_OK) {
    std::string m = ConnError(c);
    PQfinish(c);
    return UnavailableError("postgresql: cannot connect: " + m);
  }
  // Bounds on every statement, so one stuck statement (a lock wait, a slow revocation) cannot
  // hold a request or the lease manager for long.
  std::string set = "SET statement_timeout = " + std::to_string(options_.statement_timeout.count() * 1000) +
                    "; SET lock_timeout = " + std::to_string(options_.statement_timeout.count() * 1000);
  PGresult* r = PQexec(c, set.c_str());
  bool ok = r != nullptr && PQresultStatus(r) == PGRES_COMMAND_OK;
  PQclear(r);
  if (!ok) {
    std::string m = ConnError(c);
    PQfinish(c);
    return UnavailableError("postgresql: cannot set the session's timeouts: " + m);
  }
  return c;
}

Result<pg_conn*> Pool::Acquire() {
  std::unique_lock<std::mutex> l(mu_);
  auto now = std::chrono::steady_clock::now();
  auto deadline = now + options_.wait_timeout;
  for (;;) {
    while (!idle_.empty()) {
      Idle i = idle_.front();
      idle_.pop_front();
      bool old = options_.max_lifetime.count() > 0 && std::chrono::steady_clock::now() - i.opened >= options_.max_lifetime;
      if (old || PQstatus(i.conn) != CONNECTION_OK) {
        PQfinish(i.conn);
        --open_;
        continue;
      }
      lent_[i.conn] = i.opened;
      return i.conn;
    }
    if (open_ < options_.max_open) {
      ++open_;
      l.unlock();
      Result<pg_conn*> c = Connect();
      l.lock();
      if (!c.ok()) {
        --open_;
        cv_.notify_one();
        return c.error();
      }
      lent_[*c] = std::chrono::steady_clock::now();
      return *c;
    }
    if (cv_.wait_until(l, deadline) == std::cv_status::timeout && idle_.empty() && open_ >= options_.max_open) {
      return UnavailableError("postgresql: no free connection within " + std::to_string(options_.wait_timeout.count()) +
                              " s (max_open_connections " + std::to_string(options_.max_open) + ")");
    }
  }
}

void Pool::Release(pg_conn* c, bool healthy) {
  std::lock_guard<std::mutex> l(mu_);
  auto it = lent_.find(c);
  auto opened = it != lent_.end() ? it->second : std::chrono::steady_clock::now();
  if (it != lent_.end()) lent_.erase(it);
  if (!healthy || idle_.size() >= options_.max_idle) {
    PQfinish(c);
    --open_;
  } else {
    idle_.push_back(Idle{c, opened});
  }
  cv_.notify_one();
}

Status Pool::Run(const std::function<Status(Session&)>& fn) {
  SIGIL_ASSIGN_OR_RETURN(pg_conn * c, Acquire());
  Session s(c);
  Status st = fn(s);
  Release(c, s.healthy());
  return st;
}

Status Pool::Transaction(const std::function<Status(Session&)>& fn) {
  return Run([&](Session& s) -> Status {
    for (int attempt = 1;; ++attempt) {
      SIGIL_RETURN_IF_ERROR(s.Exec("BEGIN"));
      Status st = fn(s);
      if (st.ok()) st = s.Exec("COMMIT");
      if (st.ok()) return st;
      bool again = s.retryable() && attempt < 8;
      (void)s.Exec("ROLLBACK");
      if (!again) return st;
      std::this_thread::sleep_for(std::chrono::milliseconds(attempt * 5 + static_cast<int>(crypto::RandomUint64() % 20)));
    }
  });
}

Status Pool::TransactionText(const std::function<Result<std::string>(Session&)>& build,
                             const std::function<Status()>& before_commit) {
  return Run([&](Session& s) -> Status {
    bool hooked = false;
    for (int attempt = 1;; ++attempt) {
      Result<std::string> text = build(s);
      if (!text.ok()) return text.error();
      Status st;
      if (before_commit && !hooked) {
        std::string sql = "BEGIN;\n" + *text;
        std::fill(text->begin(), text->end(), '\0');
        st = s.Send(sql);
        std::fill(sql.begin(), sql.end(), '\0');
        if (!st.ok()) return st;
        Status hook = before_commit();  // while PostgreSQL runs the statements
        hooked = true;
        st = s.Wait();
        if (!hook.ok()) {
          (void)s.Exec("ROLLBACK");
          return hook;
        }
        if (st.ok()) st = s.Exec("COMMIT");
      } else {
        std::string sql = "BEGIN;\n" + *text + ";\nCOMMIT";
        std::fill(text->begin(), text->end(), '\0');
        st = s.Exec(sql);
        std::fill(sql.begin(), sql.end(), '\0');
      }
      if (st.ok()) return st;
      bool again = s.retryable() && attempt < 8;
      (void)s.Exec("ROLLBACK");  // the failed statement left the transaction open (or nothing: a warning)
      if (!again) return st;
      std::this_thread::sleep_for(std::chrono::milliseconds(attempt * 5 + static_cast<int>(crypto::RandomUint64() % 20)));
    }
  });
}

Status Pool::Ping() {
  return Run([](Session& s) { return s.Exec("SELECT 1"); });
}

}  // namespace sigil::database
