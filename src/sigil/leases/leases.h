// leases/leases.h: leases, the lifetime of what sigil hands out (dynamic credentials, tokens
// with a TTL), and the server-side revocation that ends them.
//
// A lease is a record at /sigil/leases/id/<lease id> (encrypted by the barrier like every
// value) plus one entry in the due index, /sigil/leases/due/<20-digit unix ms>/<digest>, whose
// keys sort by the time the lease is next due: its expiry, or after a failed revocation its
// next retry. A lease made by a token also has an entry under /sigil/leases/token/<digest of
// the token's key>/<digest>, so revoking the token revokes what it made. Records, index
// entries and the write that makes the leased thing are committed together (Prepare adds them
// to the caller's transaction), so nothing is handed out without its lease.
//
// Revocation runs on the manager's own threads, never on a request's: a worker wakes every
// `poll` (or when told a lease is due sooner), reads the due index from its start up to now
// (so start-up reads nothing and memory holds no lease; a server with a million leases costs
// an index, not a load), and revokes what is due through the Revoker registered for the lease's
// kind, `parallelism` at a time. A revocation that fails is retried with exponential backoff
// (from `retry_min` up to `retry_max`), forever: a lease is never dropped while its target may
// still hold the credential, and it survives restarts and crashes because the index is in the
// store. `revoke-force` drops leases without asking the target.
//
// The same queue runs jobs: background work due at a time (a static database role's password
// rotation, a Secret's rotation policy). A job is a record like a lease, with an id under
// "sys/jobs/", that its kind's Revoker runs when due and that stays, rescheduled at the time the
// run returns, until a run returns nullopt or it is cancelled; failures back off as a lease's do.
// Jobs are invisible to the lease operations (lookup, renew, revoke, list).
//
// Several servers may run workers on one store: each lease's final commit compares the record's
// revision, so a lease is deleted once; a target may be asked twice (revokers are idempotent).
// Thread-safe.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "sigil/base/clock.h"
#include "sigil/store/object_store.h"

namespace sigil::leases {

using Json = nlohmann::ordered_json;

struct Lease {
  std::string id;    // "<mount path><request path>/<random>", e.g. database/creds/ro/9f2…
  std::string kind;  // which Revoker ends it: "token", "database", ...
  Json data = Json::object();  // what the revoker needs (never a secret value: a user name, a key)
  std::string token_key;  // the store key of the token that made it; "" when none
  Clock::TimePoint issued{}, expires{};
  std::optional<Clock::TimePoint> last_renewal;
  std::optional<Clock::TimePoint> max_expires;  // renewals never go past it
  bool renewable = false;
  bool job = false;  // a job (see above), not a lease
  // Revocation state: whether someone asked for it (revoke, revoke-prefix, the token that made
  // it revoked) rather than it expiring, failed attempts so far, the last failure's message, and
  // when it is due.
  bool requested = false;
  int attempts = 0;
  std::string last_error;
  Clock::TimePoint due{};
  int64_t revision = 0;  // of the record, as read
};

// What ends a lease of one kind.
class Revoker {
 public:
  virtual ~Revoker() = default;
  // Ends what the lease stands for (drops the database user, ...); idempotent: what is already
  // gone is success. `also` may receive store writes to commit with the lease's deletion (a
  // target inside the store). Returns nullopt when done, or, for a lease that expired (not one
  // whose revocation was `requested`), a later time to look again when the target says it is
  // not over (a token renewed through its own path).
  // For a job: runs it; a time is when to run it next.
  virtual Result<std::optional<Clock::TimePoint>> Revoke(const Lease& lease, store::SideEffects* also) = 0;
  // Moves the target's own end to `expires` before a renewal commits (a database user's
  // VALID UNTIL). An error refuses the renewal.
  virtual Status Renew(const Lease& lease, Clock::TimePoint expires) {
    (void)lease;
    (void)expires;
    return OkStatus();
  }
};

class Manager {
 public:
  struct Options {
    std::chrono::milliseconds poll{1000};
    size_t batch = 512;      // due leases read per pass
    size_t parallelism = 16;  // revocations in flight
    std::chrono::milliseconds retry_min{1000}, retry_max{std::chrono::minutes(5)};
  };
  static constexpr std::string_view kRecordPrefix = "/sigil/leases/id/";
  static constexpr std::string_view kDuePrefix = "/sigil/leases/due/";
  static constexpr std::string_view kTokenPrefix = "/sigil/leases/token/";
  static constexpr std::string_view kJobIdPrefix = "sys/jobs/";

  Manager(store::ObjectStore* store, Clock* clock, Options options);
  ~Manager();  // stops the workers

  void Register(const std::string& kind, std::shared_ptr<Revoker> revoker);
  // Starts the revocation workers (not in tests that drive RunOnce themselves).
  void Start();
  void Stop();

  // Adds to `also` the writes that make `lease` (its record, due entry and token entry), to
  // commit with the write that hands out what it leases. `lease.due` is set to its expiry.
  Status Prepare(Lease* lease, store::SideEffects* also);
  // Makes a lease on its own (for what is not written to the store).
  Status Add(Lease lease);

  Result<std::optional<Lease>> Lookup(const std::string& id);

  // Makes or replaces the job `job.id` (under kJobIdPrefix), due at `job.expires`.
  Status Schedule(Lease job);
  // Removes a job without running it (done when absent).
  Status Cancel(const std::string& id);
  // A job as stored (nullopt: none).
  Result<std::optional<Lease>> Job(const std::string& id);
  // Extends a renewable lease to now + increment (else its original TTL), never past
  // max_expires: *capped says whether that cut it. kInvalidArgument when not renewable,
  // kNotFound when there is no such lease.
  Result<Lease> Renew(const std::string& id, std::optional<std::chrono::seconds> increment, bool* capped);
  // Revokes now, on the caller's thread: asks the target, then deletes the lease. A target that
  // fails is an error and the lease stays (for the worker to retry). kNotFound when absent.
  Status Revoke(const std::string& id);
  // Makes the lease due now, for the workers (Vault's sync=false).
  Status RevokeLater(const std::string& id);
  // The target's own renewal moved its end (a token renewed through auth/token/renew): the
  // lease expires, and is due, then. kNotFound when there is no such lease.
  Status Extend(const std::string& id, Clock::TimePoint expires);
  // Every lease under `prefix` made due now; with `force`, deleted without asking the targets.
  // `prefix` is an exact lease id when one has it, else a folder ("a/b" means "a/b/"). Returns
  // how many.
  // With `sync`, each is revoked before this returns (a target that fails is an error after
  // the others are done; that lease stays for the workers).
  Result<size_t> RevokePrefix(const std::string& prefix, bool force, bool sync = false);
  // Makes every lease made by the token at `token_key` due now.
  Result<size_t> RevokeByToken(const std::string& token_key);
  // Whether the token at `token_key` made any lease that is still there.
  Result<bool> HasLeasesOf(const std::string& token_key);
  // The lease ids under `prefix` (a folder: what follows it up to the next '/', folders with a
  // trailing '/').
  Result<std::vector<std::string>> List(const std::string& prefix);
  // Removes due and token entries whose lease is gone, and gives a lease without a due entry
  // one (due now). Returns how many entries it fixed.
  Result<size_t> Tidy();

  // One pass of the worker: revokes what is due now (up to `batch`), waits for it, and returns
  // how many leases it ended (for tests and the benchmark).
  Result<size_t> RunOnce();
  // Leases ended and failed revocation attempts since start (for metrics and tests).
  size_t revoked() const { return revoked_.load(); }
  size_t failures() const { return failures_.load(); }

  static std::string Digest(std::string_view s);
  // The id of the lease of the thing stored at `key` that was made at `path`:
  // "<path>/h<digest of key>" (a token's lease, as Vault names them).
  static std::string IdFor(std::string_view path, const std::string& key);
  static std::string DueKey(Clock::TimePoint due, const std::string& id);

 private:
  Result<std::optional<Lease>> Load(const std::string& id);
  std::shared_ptr<Revoker> RevokerFor(const std::string& kind);
  SecretBytes Encode(const Lease& l) const;
  // Rewrites `l` (read at l.revision) with a new due time: index entry moved in the same commit.
  Status Reschedule(const Lease& l, Clock::TimePoint due, int attempts, std::string error);
  // Adds to `also` the move of l's due entry to `due`.
  static void MoveDue(const Lease& l, Clock::TimePoint due, store::SideEffects* also);
  // Ends one due lease: asks its revoker, then deletes it; on failure reschedules with backoff.
  // Returns whether the lease is gone.
  bool Process(const std::string& due_key, const std::string& id);
  Status Delete(const Lease& l, store::SideEffects also);
  void Loop();
  void Wake();

  store::ObjectStore* store_;
  Clock* clock_;
  Options options_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  bool wake_ = false;                  // a lease may be due before the next pass
  std::atomic<bool> stopping_flag_{false};  // stopping_, read by a pass's threads without mu_
  std::atomic<size_t> last_seen_{0};   // due entries the last pass looked at
  std::map<std::string, std::shared_ptr<Revoker>> revokers_;
  std::vector<std::thread> threads_;
  std::atomic<size_t> revoked_{0}, failures_{0};
};

}  // namespace sigil::leases
