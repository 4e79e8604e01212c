// database/postgres.h: PostgreSQL through libpq, for the database secrets engine: connection
// strings with Vault's {{username}} / {{password}} templates, Vault's statement templates, and
// a connection pool that runs statements in transactions.
//
// Error messages carry PostgreSQL's own message and SQLSTATE, never a statement (a statement
// may hold a password); callers that put secrets into statements also redact them from the
// message (Redact), since a server message may quote part of the statement.
// Thread-safe (one libpq connection is used by one thread at a time).
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sigil/base/result.h"
#include "sigil/base/secret_bytes.h"

struct pg_conn;

namespace sigil::database {

// Replaces "{{key}}" with its value for each of `vars`, literally (Vault's QueryHelper: no
// spaces inside the braces, no escaping).
std::string RenderTemplate(std::string_view tpl, const std::map<std::string, std::string, std::less<>>& vars);

// The statements in one entry of a statement list, as Vault's PostgreSQL plugin reads them
// (strutil.ParseArbitraryStringSlice): an entry that is strict base64 is decoded first; one that
// is a JSON array of strings is those strings; otherwise it is split on ';', each trimmed and
// empty ones dropped. With `keep_blocks` (creation and revocation statements), an entry with a
// block in it ("$$" or the word END outside quotes: a function or a DO block) runs whole.
std::vector<std::string> SplitStatements(std::string_view entry, bool keep_blocks = true);

// A connection URL (postgres:// or postgresql://) or key=value string with {{username}} and
// {{password}} filled in: percent-encoded in a URL, quoted in a key=value string. Never logged.
SecretBytes RenderConnectionString(std::string_view url, std::string_view username, std::string_view password);

// Whether `url` looks like something libpq can parse (a URL or key=value pairs), checked
// without connecting. kInvalidArgument with libpq's reason (the URL's password removed).
Status CheckConnectionString(std::string_view url);

// A URL with its password shown as "xxxxx" (Go's url.URL.Redacted), for reading a config back.
std::string RedactUrl(std::string_view url);

// "name" as a quoted SQL identifier.
std::string QuoteIdentifier(std::string_view name);
// 'value' as a quoted SQL string literal (standard_conforming_strings on, PostgreSQL's default).
std::string QuoteLiteral(std::string_view value);

// `message` with every occurrence of each of `secrets` (non-empty ones) replaced by "[redacted]",
// and every quoted part ("..." or '...') that shares four characters in a row with one of them
// (PostgreSQL quotes the token it stumbled on: a fragment of a password) too.
std::string Redact(std::string message, const std::vector<std::string_view>& secrets);

// One open connection, lent by a Pool.
class Session {
 public:
  explicit Session(pg_conn* c) : conn_(c) {}
  // Runs one statement without parameters; its result is discarded.
  Status Exec(const std::string& sql);
  // Sends `sql` (statements separated by ';') without waiting; Wait collects the outcome (the
  // first failure, if any). Between the two the server works while the caller does too.
  Status Send(const std::string& sql);
  Status Wait();
  // Runs a query with text parameters ($1, $2, ...); rows of text columns (NULL as "").
  Result<std::vector<std::vector<std::string>>> Query(const std::string& sql, const std::vector<std::string>& params);
  // The SCRAM-SHA-256 verifier of `password` for `user` (libpq's PQencryptPasswordConn), for
  // statements that must not show the server the password.
  Result<std::string> EncryptPassword(const std::string& user, const std::string& password);
  // Whether the connection is still usable (a broken one is not returned to the pool).
  bool healthy() const;
  // Whether the last failure is one that running the transaction again may not meet:
  // serialization failures, deadlocks, and "tuple concurrently updated" (concurrent GRANT or
  // REVOKE on one object, which PostgreSQL does not serialize).
  bool retryable() const { return retryable_; }

 private:
  Status Failed(const void* result);
  pg_conn* conn_;
  bool retryable_ = false;
};

class Pool {
 public:
  struct Options {
    size_t max_open = 4;   // connections at once (Vault's max_open_connections)
    size_t max_idle = 0;   // kept open when unused; 0: as max_open
    std::chrono::seconds max_lifetime{0};  // 0: no limit
    std::chrono::seconds connect_timeout{5};
    std::chrono::seconds wait_timeout{30};  // for a free connection
    std::chrono::seconds statement_timeout{30};  // statement_timeout and lock_timeout of each session
  };
  Pool(SecretBytes conninfo, Options options);
  ~Pool();  // closes the idle connections (every lent one must be back)
  Pool(const Pool&) = delete;
  Pool& operator=(const Pool&) = delete;

  // Runs `fn` inside BEGIN ... COMMIT on a pooled connection; an error from `fn` (or from the
  // commit) rolls back. A retryable failure (Session::retryable) runs it again, up to 8 times
  // with a growing random pause. kUnavailable when no connection can be had.
  Status Transaction(const std::function<Status(Session&)>& fn);
  // One transaction in one round trip: the SQL text `build` makes (statements separated by ';',
  // built on the connection it will run on) is sent as "BEGIN; <text>; COMMIT" in one simple
  // query; a failure rolls back (one more round trip). Retried as Transaction is.
  // With `before_commit`, the text is sent without COMMIT, `before_commit` runs while
  // PostgreSQL executes it (once, not on retries), and COMMIT follows only if both succeeded:
  // what the transaction makes exists only after what `before_commit` does (a lease's commit).
  Status TransactionText(const std::function<Result<std::string>(Session&)>& build,
                         const std::function<Status()>& before_commit = nullptr);
  // Runs `fn` on a pooled connection, outside a transaction.
  Status Run(const std::function<Status(Session&)>& fn);
  // Connects (or takes an idle connection) and runs "SELECT 1".
  Status Ping();

 private:
  Result<pg_conn*> Acquire();
  void Release(pg_conn* c, bool healthy);
  Result<pg_conn*> Connect();

  SecretBytes conninfo_;
  Options options_;
  std::mutex mu_;
  std::condition_variable cv_;
  struct Idle {
    pg_conn* conn;
    std::chrono::steady_clock::time_point opened;
  };
  std::deque<Idle> idle_;
  std::map<pg_conn*, std::chrono::steady_clock::time_point> lent_;
  size_t open_ = 0;
};

}  // namespace sigil::database
