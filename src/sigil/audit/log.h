// audit/log.h: the audit trail's writer. Events arrive as JSON lines (audit.k8s.io/v1 Event)
// from many request threads; one writer thread takes everything queued, appends it to each
// sink in one write (and one fdatasync for files), and then answers every waiting request:
// group commit, so auditing does not serialise the server.
//
// Hash chain: every line carries, as the last member of its "annotations" (itself the event's
// last member), "sigil.dev/audit-chain": "<previous line's hash>:<this line's hash>", where a
// line's hash is hex SHA-256 of (previous hash, "\n", the line exactly as written minus that
// member). The first line of a new trail has a previous hash of 64 zeros. Rotation (a file
// sink over max_bytes is renamed <path>.<UTC time>[.<n>] and a new file started) keeps the
// chain: the new file's first line continues from the old file's last. The first line of every
// file carries one more annotation just before the chain's, "sigil.dev/audit-trail-start":
// "genesis" or "continues <old file's name>" (or "resumes after an unreadable line" when sigil
// found the file's last line broken at start), so a file whose first lines were cut is told
// apart from one that starts a trail or continues one. VerifyChain finds the
// first edited, removed, inserted or reordered line. The chain is not keyed: it shows tampering
// by anyone who does not rewrite every later line too, so ship the trail (or its newest hash)
// off the host for protection against an attacker with write access (docs/threat-model.md).
//
// Failure: Append returns an error (kUnavailable) when no sink could write the batch; a file
// sink that failed truncates back to where the batch began, so a failed batch leaves no partial
// line and the chain continues from the last line that landed. A full disk (ENOSPC, EDQUOT,
// EFBIG) is recoverable: the next batch tries again. Any other failed write or fdatasync stops
// that file sink for good, until the log is reopened (sigil restarted): after a failed fsync the
// kernel may have dropped the batch's dirty pages and marked them clean, so a later fdatasync
// could succeed without them and a retry could acknowledge events that are not on disk. The
// LMDB store has the same policy; docs/threat-model.md "Storage and audit failures" states it
// once. Since audit is fail-closed, a log whose every sink has stopped makes the API answer 503
// until restart, and Health() reports it. Standard output is no file and never stops: a failed
// write there fails only that batch. Thread-safe.
#pragma once

#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "sigil/base/result.h"

namespace sigil::audit {

struct SinkOptions {
  std::string path;  // "-" for standard output
  int64_t max_bytes = 100 << 20;  // files: rotate when larger (0: never)
  bool fsync = true;              // files: fdatasync each batch
};

class AuditLog {
 public:
  static Result<std::unique_ptr<AuditLog>> Open(const std::vector<SinkOptions>& sinks);
  ~AuditLog();

  // Appends the lines (each one JSON object, no newline, whose last member is an "annotations"
  // object if its last member is an object at all: Auditor::Write sees to it) to every sink;
  // returns once they are written, or the error when no sink took them.
  Status Append(std::vector<std::string> lines);

  // OK while at least one sink still takes events; kUnavailable (naming the failure) once every
  // sink has stopped (see "Failure" above), until the log is reopened.
  Status Health();

  // The sinks as configured (for sys/audit).
  const std::vector<SinkOptions>& sinks() const { return options_; }

  // For tests: makes file sinks' writes (kWrite) or their fdatasync (kSync) fail with the given
  // errno until cleared (0).
  enum class FaultPoint { kWrite, kSync };
  void InjectFailureForTest(int err, FaultPoint at = FaultPoint::kWrite);

 private:
  struct Sink;
  struct Batch;
  AuditLog() = default;
  Status WriteTo(Sink* s, const std::vector<std::string>& lines, int injected_errno, FaultPoint injected_at);

  std::vector<std::unique_ptr<Sink>> sinks_;
  std::vector<SinkOptions> options_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::shared_ptr<Batch>> queue_;
  bool writing_ = false;  // a caller is writing (outside mu_)
  size_t stopped_sinks_ = 0;  // sinks that refuse events after a failure (see Sink::failed)
  Status stop_reason_;        // the last such failure
  int injected_errno_ = 0;
  FaultPoint injected_at_ = FaultPoint::kWrite;
};

// Adds the chain annotation to `line` (a JSON object whose last member is "annotations"; any
// other object gets an "annotations" member) given the previous hash; returns the line to
// write and sets *hash to its hash.
// A non-empty `trail_start` adds the trail-start annotation ("genesis", "continues <file>").
std::string ChainLine(const std::string& line, const std::string& prev_hash, std::string* hash,
                      const std::string& trail_start = "");

struct VerifyResult {
  bool ok = true;
  size_t lines = 0;
  std::string file;        // where the first problem is
  size_t line_number = 0;  // 1-based
  std::string problem;
  std::string last_hash;
  // How the first file starts: "genesis", "continues <file>" (then `continues_hash` is the
  // hash of that file's last line, which was not checked unless that file was given too), or
  // "resumes after an unreadable line" (sigil found the file's last line broken at start).
  std::string starts;
  std::string continues_hash;
};

// Checks the chain across `files` in order (oldest first). Each file's first line is checked
// against the previous file's last line. The very first line must start the trail (a genesis
// line) or say which file it continues; otherwise the trail's head was cut and that is the
// problem reported.
VerifyResult VerifyChain(const std::vector<std::string>& files);

}  // namespace sigil::audit
