// server/secret_rotation.h: scheduled rotation of Kubernetes Secrets (their policies:
// registry/rotation.h). Every Secret with a rotation policy has a job on the lease manager's
// durable queue (`sys/jobs/secret-rotation/<ns>/<name>`), due when the policy says; a watch of
// Secrets keeps the jobs in step with the annotations (made, moved, cancelled), and the job's
// run rotates the Secret through the registry (history operation "rotate", seen by watchers at
// once) and records it in the audit trail as user system:sigil:rotation.
//
// Jobs outlive restarts, so nothing is scanned at start: a Secret written while this server
// was up has its job. If the watch falls behind the store's history, every Secret is listed
// once to catch up. Thread-safe.
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
    std::optional<Clock::TimePoint> due;  // nullopt: no policy (any more)
  };
  void OnEvents(const std::vector<registry::WatchEvent>& events, const Status& error);
  void Loop();
  Status Apply(const Change& c);
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
  int64_t last_revision_ = 0;
  std::unique_ptr<registry::WatchHandle> watch_;
  std::thread worker_;
};

}  // namespace sigil::server
