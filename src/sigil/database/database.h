// database/database.h: Vault's database secrets engine, with its PostgreSQL plugin
// (postgresql-database-plugin), on the lease manager:
//
//   config/<name> (write, read, delete; LIST config): a connection (connection_url with
//     {{username}} / {{password}}, username, password, allowed_roles, verify_connection,
//     root_rotation_statements, password_policy, max_open_connections, max_idle_connections,
//     max_connection_lifetime, password_authentication); reset/<name>; rotate-root/<name>.
//   roles/<name> (write, read, delete; LIST roles): dynamic roles (db_name, creation_statements,
//     revocation_statements, rollback_statements, renew_statements, default_ttl, max_ttl);
//     creds/<name> (read): a new user and password with a lease.
//   static-roles/<name> (write, read, delete; LIST static-roles): an existing user whose
//     password sigil rotates every rotation_period; static-creds/<name> (read); rotate-role/<name>.
//
// Dynamic credentials: the user is created in one PostgreSQL transaction that commits only
// after its lease is durable (the lease commits while PostgreSQL runs the statements), so no
// user exists without a lease that will drop it; if the lease ended
// meanwhile (its token was revoked), the user is dropped at once. Revocation runs the role's
// revocation statements, or by default revokes the user's privileges in the schemas where it has
// any and drops it; a user that is already gone is success. Renewal runs the renew statements
// (by default ALTER ROLE ... VALID UNTIL the new expiry) before the lease moves.
//
// Static roles: a rotation first stores the new password as pending, then sets it in
// PostgreSQL, then makes it current, so a crash or a concurrent rotation (another server) never
// leaves PostgreSQL with a password sigil does not hold. Rotations are jobs on the lease
// manager's durable queue (retried with backoff while PostgreSQL is down).
//
// Connection pools live in the Service (one per mount and connection), so engines made per
// request share them. Secrets (root and user passwords) are kept in the mount's storage
// (encrypted by the barrier), returned only by creds/ and static-creds/, and redacted from every
// error message. Thread-safe.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "sigil/base/clock.h"
#include "sigil/database/postgres.h"
#include "sigil/engines/engine.h"
#include "sigil/engines/mount_table.h"
#include "sigil/leases/leases.h"

namespace sigil::database {

inline constexpr std::string_view kMountType = "database";
inline constexpr std::string_view kPluginName = "postgresql-database-plugin";

// Who asks for credentials: the token's display name (for the user name) and its store key
// (the lease is the token's: revoking the token revokes the credentials).
struct Caller {
  std::string display_name = "token";
  std::string token_key;
};

class Service {
 public:
  // Generates a password under a named password policy (sys/policies/password); kNotFound when
  // there is no such policy.
  using PasswordPolicies = std::function<Result<SecretBytes>(std::string_view name)>;
  Service(engines::MountTable* mounts, leases::Manager* leases, Clock* clock, PasswordPolicies policies = nullptr);
  ~Service();

  // The engine for a request to mount `m` by `caller`.
  std::unique_ptr<engines::SecretsEngine> Engine(const engines::Mount& m, Caller caller);
  // A database mount's options at enable and tune: none are taken.
  static Status Prepare(engines::Mount* m);

  // What the engines and revokers share (engine and revoker implementations in database.cc).
  struct Connection;
  // A new password for a user of connection `c`: under its password_policy, else Vault's default
  // (20 characters of letters, digits and '-'). A password that cannot sit in a SQL string
  // literal as Vault's templates put it (holding ' or \) is refused.
  Result<std::string> NewPassword(const Connection& c);
  Result<std::shared_ptr<Pool>> PoolFor(const std::string& mount_uuid, const std::string& name, const Connection& c);
  void Forget(const std::string& mount_uuid, const std::string& name);
  // sys/leases/tidy's part for databases: in each connection of each database mount, the users
  // named by sigil's template for one of the mount's roles on that connection ("v-<display>-
  // <role>-<20 random>-<unix time>") that no lease holds and that are over a minute old are
  // dropped (the role's revocation statements, or the default drop). Returns how many; what
  // failed is in `*problems`.
  Result<size_t> TidyOrphans(std::vector<std::string>* problems);
  // Closes every pool of a mount (it was disabled).
  void ForgetMount(const std::string& mount_uuid);
  engines::Storage StorageOf(const std::string& mount_uuid) const;
  leases::Manager* leases() const { return leases_; }
  Clock* clock() const { return clock_; }

 private:
  engines::MountTable* mounts_;
  leases::Manager* leases_;
  Clock* clock_;
  PasswordPolicies policies_;
  std::mutex mu_;
  struct Cached {
    std::string fingerprint;  // a digest of what the pool was made from
    std::shared_ptr<Pool> pool;
  };
  std::map<std::string, Cached> pools_;  // by "<mount uuid>/<connection name>"
};

}  // namespace sigil::database
