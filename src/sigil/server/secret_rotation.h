// server/secret_rotation.h: scheduled rotation of Kubernetes Secrets (their policies:
// registry/rotation.h). Every Secret with a rotation policy has a job on the lease manager's
// durable queue (`sys/jobs/secret-rotation/<ns>/<name>`), due when the policy says; a watch of
// Secrets keeps the jobs in step with the annotations (made, moved, cancelled), and the job's
// run rotates the Secret through the registry (history operation "rotate", seen by watchers at
// once) and records it in the audit trail as user system:sigil:rotation.
//
// Jobs outlive restarts. At each start every Secret is listed once in the background (a change
// queued when the server stopped is not lost), and again if the watch falls behind the store's
// history or a job cannot be written; each change is applied from the Secret as it is then, so
// the order of changes does not matter. Thread-safe.
#pragma once

#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "sigil/audit/auditor.h"
#include "sigil/base/clock.h"
#include "sigil/leases/leases.h"
#include "sigil/registry/registry.h"

namespace sigil::server {

class SecretRotations {
 public:
  static constexpr std::string_view kKind = "secret-rotation";
  SecretRotations(registry::Registry* registry, leases::Manager* leases, audit::Auditor* auditor, Clock* clock);
  ~SecretRotations();  // stops the watch and the worker

  // Registers the job kind and starts following Secrets from the store's current revision.
  Status Start();

  // The job id of ns/name.
  static std::string JobId(const std::string& ns, const std::string& name);
  // Runs ns/name's job: rotates it if due. Returns when it is due next (nullopt: no policy, or
  // gone). For the job runner.
  Result<std::optional<Clock::TimePoint>> RunDue(const std::string& ns, const std::string& name);

 private:
  struct Change {
    std::string ns, name;
  };
  static constexpr size_t kMaxQueue = 10000;
  void OnEvents(const std::vector<registry::WatchEvent>& events, const Status& error);
  void Loop();
  // Makes ns/name's job agree with the Secret as it is now (Ensure: with `due`).
  Status Apply(const Change& c);
  Status Ensure(const Change& c, std::optional<Clock::TimePoint> due);
  Status Rescan();
  Status Watch(int64_t after);
  Status Audit(const std::string& ns, const std::string& name);

  registry::Registry* registry_;
  leases::Manager* leases_;
  audit::Auditor* auditor_;
  Clock* clock_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Change> queue_;
  bool stopping_ = false;
  bool watch_lost_ = false;
  bool rescan_ = false;  // every Secret is to be checked (at start, after a lost watch or a failure)
  int64_t last_revision_ = 0;
  std::unique_ptr<registry::WatchHandle> watch_;
  std::thread worker_;
};

}  // namespace sigil::server
