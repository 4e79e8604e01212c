#include "sigil/server/secret_rotation.h"

#include <sys/resource.h>
#include <unistd.h>

#include "sigil/base/logging.h"
#include "sigil/crypto/random.h"
#include "sigil/registry/rotation.h"

namespace sigil::server {
namespace {

using Json = nlohmann::ordered_json;

// When `obj` (a Secret) is due under its policy; nullopt without a (valid) policy.
std::optional<Clock::TimePoint> DueOf(const Json& obj, Clock::TimePoint now) {
  Result<std::optional<registry::RotationPolicy>> p = registry::RotationPolicyOf(obj);
  if (!p.ok() || !*p) return std::nullopt;
  return registry::NextRotation(obj, **p, now);
}

class RotationJobs final : public leases::Revoker {
 public:
  explicit RotationJobs(SecretRotations* r) : r_(r) {}
  Result<std::optional<Clock::TimePoint>> Revoke(const leases::Lease& job, store::SideEffects*) override {
    return r_->RunDue(job.data.value("namespace", ""), job.data.value("name", ""));
  }

 private:
  SecretRotations* r_;
};

// Scheduling is background work (as revocation, leases/leases.cc): nice 10.
void Background() { (void)setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), 10); }

const Identity& RotationUser() {
  static const Identity who{"system:sigil:rotation", "", {"system:sigil"}, {}, "internal"};
  return who;
}

}  // namespace

SecretRotations::SecretRotations(registry::Registry* registry, leases::Manager* leases, audit::Auditor* auditor, Clock* clock)
    : registry_(registry), leases_(leases), auditor_(auditor), clock_(clock) {}

SecretRotations::~SecretRotations() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (worker_.joinable()) worker_.join();  // the worker may be renewing the watch: it goes first
  watch_.reset();  // no callback runs after this (one that runs before only queues)
}

std::string SecretRotations::JobId(const std::string& ns, const std::string& name) {
  return std::string(leases::Manager::kJobIdPrefix) + "secret-rotation/" + ns + "/" + name;
}

Status SecretRotations::Start() {
  leases_->Register(std::string(kKind), std::make_shared<RotationJobs>(this));
  SIGIL_RETURN_IF_ERROR(Watch(registry_->CurrentRevision()));
  // Once per start, in the background, every Secret with a policy is checked for its job: a
  // change queued but not applied when the server stopped (or crashed) is not lost.
  rescan_ = true;
  worker_ = std::thread([this] { Loop(); });
  return OkStatus();
}

Status SecretRotations::Watch(int64_t after) {
  {
    std::lock_guard<std::mutex> l(mu_);
    last_revision_ = after;
    watch_lost_ = false;
  }
  SIGIL_ASSIGN_OR_RETURN(watch_, registry_->Watch(registry::Secrets(), "", after,
                                                  [this](const std::vector<registry::WatchEvent>& e, const Status& st) { OnEvents(e, st); }));
  return OkStatus();
}

void SecretRotations::OnEvents(const std::vector<registry::WatchEvent>& events, const Status& error) {
  // On the storage writer's thread: only what the annotations say goes to the worker, and only
  // for Secrets that have (or had) a policy.
  Clock::TimePoint now = clock_->Now();
  std::lock_guard<std::mutex> l(mu_);
  for (const registry::WatchEvent& e : events) {
    last_revision_ = std::max(last_revision_, e.revision);
    std::optional<Clock::TimePoint> due = e.now ? DueOf(*e.now, now) : std::nullopt;
    bool had = e.before && DueOf(*e.before, now).has_value();
    if (!due && !had) continue;
    const Json& obj = e.now ? *e.now : *e.before;
    const Json& meta = obj["metadata"];
    if (queue_.size() < kMaxQueue) {
      queue_.push_back(Change{meta.value("namespace", ""), meta.value("name", "")});
    } else {
      rescan_ = true;  // too many at once: one listing catches up with all of them
    }
  }
  if (!error.ok()) watch_lost_ = true;
  cv_.notify_all();
}

void SecretRotations::Loop() {
  Background();
  std::unique_lock<std::mutex> l(mu_);
  while (!stopping_) {
    cv_.wait_for(l, std::chrono::seconds(5), [this] { return stopping_ || !queue_.empty() || watch_lost_ || rescan_; });
    if (stopping_) break;
    if (rescan_ && !watch_lost_) {
      rescan_ = false;
      queue_.clear();  // the listing reads what the queued changes would
      l.unlock();
      if (Status st = Rescan(); !st.ok()) {
        log::Error("secret rotation: cannot list Secrets; retrying in 5 s", {{"error", st.message()}});
        l.lock();
        rescan_ = true;
        cv_.wait_for(l, std::chrono::seconds(5), [this] { return stopping_; });
        continue;
      }
      l.lock();
      continue;
    }
    if (queue_.empty() && !watch_lost_) continue;
    if (watch_lost_) {
      int64_t after = last_revision_;
      l.unlock();
      watch_.reset();
      Status st = Watch(after);
      if (st.code() == StatusCode::kOutOfRange) {  // fell behind the history: list everything once
        st = Watch(registry_->CurrentRevision());
        if (st.ok()) {
          std::lock_guard<std::mutex> g(mu_);
          rescan_ = true;
        }
      }
      if (!st.ok()) {
        log::Error("secret rotation: cannot follow Secrets; retrying in 5 s", {{"error", st.message()}});
        l.lock();
        watch_lost_ = true;
        cv_.wait_for(l, std::chrono::seconds(5), [this] { return stopping_; });
        continue;
      }
      l.lock();
      continue;
    }
    Change c = std::move(queue_.front());
    queue_.pop_front();
    l.unlock();
    if (Status st = Apply(c); !st.ok()) {
      log::Error("secret rotation: cannot schedule a Secret's rotation; all Secrets are checked again in 5 s",
                 {{"namespace", c.ns}, {"name", c.name}, {"error", st.message()}});
      l.lock();
      rescan_ = true;
      cv_.wait_for(l, std::chrono::seconds(5), [this] { return stopping_; });
      continue;
    }
    l.lock();
  }
}

Status SecretRotations::Apply(const Change& c) {
  // What the Secret says now decides (a queued change may be older than another already seen).
  std::optional<Clock::TimePoint> due;
  registry::Outcome<registry::Stored> cur = registry_->Get(registry::Secrets(), c.ns, c.name);
  if (cur.ok()) {
    due = DueOf(cur->obj, clock_->Now());
  } else if (cur.error().code != 404) {
    return UnavailableError("reading the Secret: " + cur.error().message);
  }
  return Ensure(c, due);
}

Status SecretRotations::Ensure(const Change& c, std::optional<Clock::TimePoint> due) {
  std::string id = JobId(c.ns, c.name);
  SIGIL_ASSIGN_OR_RETURN(std::optional<leases::Lease> job, leases_->Job(id));
  if (!due) return job ? leases_->Cancel(id) : OkStatus();
  if (job && job->expires == *due && job->due == *due) return OkStatus();  // already so
  leases::Lease next;
  next.id = id;
  next.kind = std::string(kKind);
  next.data = leases::Json{{"namespace", c.ns}, {"name", c.name}};
  next.issued = clock_->Now();
  next.expires = *due;
  return leases_->Schedule(std::move(next));
}

Status SecretRotations::Rescan() {
  registry::ListOptions o;
  o.limit = 500;
  Clock::TimePoint now = clock_->Now();
  for (;;) {
    registry::Outcome<registry::ListPage> page = registry_->List(registry::Secrets(), "", o);
    if (!page.ok()) return InternalError("listing Secrets: " + page.error().message);
    for (const Json& obj : page->items) {
      std::optional<Clock::TimePoint> due = DueOf(obj, now);
      if (!due) continue;
      SIGIL_RETURN_IF_ERROR(Ensure(Change{obj["metadata"].value("namespace", ""), obj["metadata"].value("name", "")}, due));
    }
    if (page->continue_token.empty()) return OkStatus();
    o.continue_token = page->continue_token;
  }
}

Result<std::optional<Clock::TimePoint>> SecretRotations::RunDue(const std::string& ns, const std::string& name) {
  using Out = std::optional<Clock::TimePoint>;
  registry::Outcome<registry::Stored> cur = registry_->Get(registry::Secrets(), ns, name);
  if (!cur.ok()) {
    if (cur.error().code == 404) return Out();  // gone: so is its job
    return UnavailableError("reading the Secret: " + cur.error().message);
  }
  Clock::TimePoint now = clock_->Now();
  std::optional<Clock::TimePoint> due = DueOf(cur->obj, now);
  if (!due) return Out();
  if (*due > now) return Out(*due);
  // Recorded before it happens, as every change (an unwritable trail stops it).
  SIGIL_RETURN_IF_ERROR(Audit(ns, name));
  registry::WriteOptions o;
  o.manager = "sigil-rotation";
  std::optional<Clock::TimePoint> next;
  registry::Outcome<registry::Written> w = registry_->RotateSecret(ns, name, o, /*only_if_due=*/true, &next);
  if (!w.ok()) {
    if (w.error().code == 404) return Out();
    if (w.error().code == 400 || w.error().code == 422) {
      // The Secret refuses the new values (its policy cannot be met): retrying cannot help. The
      // job ends; a write that fixes the Secret schedules it again.
      log::Error("secret rotation: the Secret refused its rotation; rotations stop until it is fixed",
                 {{"namespace", ns}, {"name", name}, {"error", w.error().message}});
      return Out();
    }
    return UnavailableError("rotating the Secret: " + w.error().message);
  }
  if (w->revision != 0) log::Info("secret rotation: rotated", {{"namespace", ns}, {"name", name}});
  return next;
}

Status SecretRotations::Audit(const std::string& ns, const std::string& name) {
  if (auditor_ == nullptr) return OkStatus();
  audit::Request r{&RotationUser(), "update", true, "", "secrets", "", ns, name, ""};
  audit::Decision d = auditor_->Decide(r);
  if (d.level == audit::Level::kNone) return OkStatus();
  std::string now = FormatRfc3339(clock_->Now());
  Json ev = {{"kind", "Event"},
             {"apiVersion", "audit.k8s.io/v1"},
             {"level", "Metadata"},  // never the bodies: they hold the new values
             {"auditID", crypto::RandomUuid()},
             {"stage", "RequestReceived"},
             {"requestURI", "/api/v1/namespaces/" + ns + "/secrets/" + name},
             {"verb", "update"},
             {"user", {{"username", RotationUser().user}, {"groups", RotationUser().groups}}},
             {"sourceIPs", Json::array()},
             {"objectRef", {{"resource", "secrets"}, {"namespace", ns}, {"name", name}, {"apiVersion", "v1"}}},
             {"requestReceivedTimestamp", now},
             {"stageTimestamp", now},
             {"annotations", {{"sigil.dev/rotation", "scheduled"}}}};
  return auditor_->Write({ev});
}

}  // namespace sigil::server
