// The Kubernetes face end to end, in process and without sockets: the real registry, RBAC and
// audit on the memory backend, requests handed to KubernetesApi::Serve as api/http hands them,
// watches captured by a fake stream. No sleeps.
//
// FaceHarness wires the stack as server/server.cc does, on the memory backend: MemoryBackend ->
// FaultInjectionBackend (faults_) -> LaggingWatchBackend -> Barrier (dev seal, ManualClock) ->
// ObjectStore, Registry, the RBAC Authorizer and, when options_ ask, an Auditor writing to a
// file in a temp dir. Requests reach
// the face as api/http hands them over (a beast request, the caller's Identity, a
// StreamStarter):
//
//   Reply r = Post("/api/v1/namespaces/a/secrets", SecretDoc("s"), Root());  // r.status, r.body
//   std::shared_ptr<FakeStream> w = Watch("/api/v1/namespaces/a/secrets?watch=true", Root());
//   w->WaitForEvents(pred); w->Close(); w->WaitEnded();
//
// A face plugs in through a derived fixture that starts it in StartFace() and forwards Serve()
// (KubeFaceTest; the Vault face's next). A fixture that needs other options (an audit policy,
// lagging RBAC watches) sets options_ in its constructor. This header is test code: only
// *_test.cc files include it, and scripts/check-deps.py lets *_testing.h files, like tests,
// include storage/ and testing/. Tests: api_test.cc (objects, validation, RBAC, namespaces,
// corrupt data) and api_watch_test.cc (watch, audit).
//
// Every wait is a bounded condition-variable wait for something the code under test does;
// nothing sleeps. FakeStream, FakeIo and LaggingWatchBackend are thread-safe (faces write to
// streams from storage watch callbacks).
#pragma once

#include "sigil/api/kubernetes/api.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <fstream>
#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "sigil/api/http/types.h"
#include "sigil/audit/auditor.h"
#include "sigil/authz/authorizer.h"
#include "sigil/base/clock.h"
#include "sigil/base/encoding.h"
#include "sigil/registry/registry.h"  // and through it store/ and barrier/
#include "sigil/storage/fault_injection_backend.h"
#include "sigil/storage/memory_backend.h"
#include "sigil/testing/status_matchers.h"

namespace sigil::testing {


// ================================ the harness ====================================================

using TestJson = nlohmann::json;

// The bound of every wait for something the code under test does. Only a failing test waits
// this long.
inline constexpr std::chrono::milliseconds kWait{10000};

// ---- identities -------------------------------------------------------------------------------

// Holds every right (system:masters), as the server's root token does.
inline Identity Root() {
  return Identity{"root", "", {"system:masters", "system:authenticated"}, {}, "token"};
}
// An authenticated user with no rights until a binding grants some.
inline Identity User(const std::string& name) {
  return Identity{name, "", {"system:authenticated"}, {}, "token"};
}

// ---- a backend whose watches lag ------------------------------------------------------------

// A Backend wrapper whose watches under `held` prefixes lag the commits: their events wait
// until ReleaseWatches(). The Backend contract (storage/backend.h) promises every change once
// and in order, not before Commit returns; MemoryBackend and LmdbBackend happen to publish
// before they return, which hides code that counts on a watch to see its own writes. With no
// held prefixes it only forwards. (A candidate for storage::FaultInjectionBackend.)
class LaggingWatchBackend final : public storage::Backend {
 public:
  // `inner` must outlive this object.
  LaggingWatchBackend(storage::Backend* inner, std::vector<std::string> held)
      : held_(std::move(held)), inner_(*inner) {}

  Result<std::optional<storage::KeyValue>> Get(std::string_view key) override {
    return inner_.Get(key);
  }
  Result<storage::RangeResult> Range(const storage::RangeRequest& request) override {
    return inner_.Range(request);
  }
  Result<storage::TxnResult> Commit(storage::Txn txn) override {
    return inner_.Commit(std::move(txn));
  }
  void CommitAsync(storage::Txn txn, storage::CommitCallback done) override {
    inner_.CommitAsync(std::move(txn), std::move(done));
  }
  int64_t CurrentRevision() override { return inner_.CurrentRevision(); }
  Status Health() override { return inner_.Health(); }

  Result<std::unique_ptr<storage::WatchHandle>> Watch(std::string prefix, int64_t after_revision,
                                                      storage::WatchCallback callback) override {
    bool held = false;
    for (const std::string& h : held_) held = held || prefix.starts_with(h);
    if (!held) return inner_.Watch(std::move(prefix), after_revision, std::move(callback));
    auto watcher = std::make_shared<Watcher>(Watcher{std::move(callback), true});
    auto inner = inner_.Watch(std::move(prefix), after_revision,
                              [this, watcher](const std::vector<storage::Event>& events) {
                                std::lock_guard<std::mutex> l(mu_);
                                queue_.emplace_back(watcher, events);
                              });
    if (!inner.ok()) return inner.error();
    return std::unique_ptr<storage::WatchHandle>(
        new Handle(this, watcher, std::move(inner).value()));
  }

  // Delivers every held event so far, in order, on the calling thread.
  void ReleaseWatches() {
    std::lock_guard<std::mutex> d(deliver_mu_);
    std::deque<std::pair<std::shared_ptr<Watcher>, std::vector<storage::Event>>> due;
    {
      std::lock_guard<std::mutex> l(mu_);
      due.swap(queue_);
    }
    for (auto& [w, events] : due) {
      if (w->alive) w->callback(events);
    }
  }

 private:
  struct Watcher {
    storage::WatchCallback callback;
    bool alive;  // under deliver_mu_
  };
  class Handle final : public storage::WatchHandle {
   public:
    Handle(LaggingWatchBackend* b, std::shared_ptr<Watcher> w,
           std::unique_ptr<storage::WatchHandle> inner)
        : b_(b), w_(std::move(w)), inner_(std::move(inner)) {}
    // No callback runs once this returns (the Backend contract).
    ~Handle() override {
      inner_.reset();
      std::lock_guard<std::mutex> d(b_->deliver_mu_);
      w_->alive = false;
    }

   private:
    LaggingWatchBackend* b_;
    std::shared_ptr<Watcher> w_;
    std::unique_ptr<storage::WatchHandle> inner_;
  };

  const std::vector<std::string> held_;
  storage::Backend& inner_;
  std::mutex deliver_mu_;  // held while a held event is delivered
  std::mutex mu_;
  std::deque<std::pair<std::shared_ptr<Watcher>, std::vector<storage::Event>>> queue_;
};

// ---- the fake HTTP layer's I/O thread ---------------------------------------------------------

// Runs posted tasks one at a time, in order, on its own thread: what a real server runs on a
// connection's strand (a stream's OnClosed callback). A face may close a stream while holding
// its own locks (from a watch callback), so the callback must not run inside Close().
class FakeIo {
 public:
  FakeIo() : thread_([this] { Loop(); }) {}
  // Runs what is still queued, then joins.
  ~FakeIo() {
    {
      std::lock_guard<std::mutex> l(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  FakeIo(const FakeIo&) = delete;
  FakeIo& operator=(const FakeIo&) = delete;

  void Post(std::function<void()> task) {
    {
      std::lock_guard<std::mutex> l(mu_);
      queue_.push_back(std::move(task));
    }
    cv_.notify_all();
  }
  // Waits until every task posted so far has run and been destroyed (so whatever it held is
  // released). Returns false on timeout.
  [[nodiscard]] bool Drain(std::chrono::milliseconds timeout = kWait) {
    std::unique_lock<std::mutex> l(mu_);
    return cv_.wait_for(l, timeout, [this] { return queue_.empty() && !busy_; });
  }

 private:
  void Loop() {
    std::unique_lock<std::mutex> l(mu_);
    for (;;) {
      cv_.wait(l, [this] { return stop_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stop_ and nothing left
      std::function<void()> task = std::move(queue_.front());
      queue_.pop_front();
      busy_ = true;
      l.unlock();
      task();
      task = nullptr;  // release what it captured before anyone is told it ran
      l.lock();
      busy_ = false;
      cv_.notify_all();
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;
  bool busy_ = false;
  bool stop_ = false;
  std::thread thread_;  // last: started once the rest exists
};

// ---- the fake stream --------------------------------------------------------------------------

// A streamed response (a watch) as the face sees it, keeping every chunk it writes. The
// StreamWriter contract (api/http/types.h): Write returns false once the stream has ended;
// Close ends it with the terminating chunk; the OnClosed callback runs once, on the I/O thread,
// when it ends for any reason, or at once if it has ended already.
class FakeStream final : public http::StreamWriter,
                         public std::enable_shared_from_this<FakeStream> {
 public:
  FakeStream(http::Response head, std::chrono::seconds max_duration, FakeIo* io)
      : head_(std::move(head)), max_duration_(max_duration), io_(io) {}

  bool Write(std::string chunk) override {
    {
      std::lock_guard<std::mutex> l(mu_);
      if (!on_closed_set_) wrote_before_on_closed_ = true;
      if (closing_ || ended_) {
        ++rejected_writes_;
        return false;
      }
      text_ += chunk;
    }
    cv_.notify_all();
    return true;
  }
  // The producer (or the server: time limit, shutdown) ends the stream.
  void Close() override {
    {
      std::lock_guard<std::mutex> l(mu_);
      if (closing_ || ended_) return;
      closing_ = true;
      terminated_ = true;
    }
    io_->Post([self = shared_from_this()] { self->End(); });
  }
  void OnClosed(std::function<void()> cb) override {
    {
      std::lock_guard<std::mutex> l(mu_);
      on_closed_set_ = true;
      if (!ended_) {
        on_closed_ = std::move(cb);
        return;
      }
    }
    cb();  // ended already: at once, on this thread
  }

  // A stream whose client left before the face got it (api/http hands out such a writer when
  // the connection is gone).
  static std::shared_ptr<FakeStream> Gone(http::Response head, std::chrono::seconds max_duration,
                                          FakeIo* io) {
    auto s = std::make_shared<FakeStream>(std::move(head), max_duration, io);
    s->End();
    return s;
  }

  // The client goes away (its connection drops): no terminating chunk.
  void Disconnect() {
    {
      std::lock_guard<std::mutex> l(mu_);
      if (closing_ || ended_) return;
      closing_ = true;
    }
    io_->Post([self = shared_from_this()] { self->End(); });
  }

  const http::Response& head() const { return head_; }
  std::chrono::seconds max_duration() const { return max_duration_; }

  // Every complete line written so far, parsed as JSON (one watch event per line).
  std::vector<TestJson> Events() const {
    std::lock_guard<std::mutex> l(mu_);
    return ParseLines();
  }
  // Waits until `pred` holds for the events written so far; returns the events then, or nullopt
  // on timeout (with what was written, for the failure message).
  std::optional<std::vector<TestJson>> WaitForEvents(
      const std::function<bool(const std::vector<TestJson>&)>& pred,
      std::chrono::milliseconds timeout = kWait) {
    std::unique_lock<std::mutex> l(mu_);
    std::vector<TestJson> events;
    bool ok = cv_.wait_for(l, timeout, [&] {
      events = ParseLines();
      return pred(events);
    });
    if (!ok) return std::nullopt;
    return events;
  }
  // Waits until the stream has ended and its OnClosed callback, if set by then, has run.
  [[nodiscard]] bool WaitEnded(std::chrono::milliseconds timeout = kWait) {
    std::unique_lock<std::mutex> l(mu_);
    return cv_.wait_for(l, timeout, [this] { return settled_; });
  }
  std::string text() const {
    std::lock_guard<std::mutex> l(mu_);
    return text_;
  }
  bool ended() const {
    std::lock_guard<std::mutex> l(mu_);
    return settled_;
  }
  // Whether it ended with the terminating chunk (Close), not by the client leaving.
  bool terminated() const {
    std::lock_guard<std::mutex> l(mu_);
    return terminated_;
  }
  // The contract asks for OnClosed before the first Write (else an end can go unnoticed).
  bool wrote_before_on_closed() const {
    std::lock_guard<std::mutex> l(mu_);
    return wrote_before_on_closed_;
  }
  // Writes refused because the stream had ended: a producer that keeps writing after that.
  int rejected_writes() const {
    std::lock_guard<std::mutex> l(mu_);
    return rejected_writes_;
  }

 private:
  // On the I/O thread (or, for a stream that starts ended, on the starter's).
  void End() {
    std::function<void()> cb;
    {
      std::lock_guard<std::mutex> l(mu_);
      closing_ = ended_ = true;
      cb = std::move(on_closed_);
      on_closed_ = nullptr;
    }
    if (cb) cb();  // outside the lock: the callback may take the producer's locks
    {
      std::lock_guard<std::mutex> l(mu_);
      settled_ = true;
    }
    cv_.notify_all();
  }
  std::vector<TestJson> ParseLines() const {
    std::vector<TestJson> out;
    size_t start = 0;
    for (size_t nl = text_.find('\n'); nl != std::string::npos; nl = text_.find('\n', start)) {
      out.push_back(TestJson::parse(text_.substr(start, nl - start), nullptr, false));
      start = nl + 1;
    }
    return out;
  }

  const http::Response head_;
  const std::chrono::seconds max_duration_;
  FakeIo* const io_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::string text_;
  std::function<void()> on_closed_;
  bool closing_ = false, ended_ = false, settled_ = false, terminated_ = false;
  bool on_closed_set_ = false, wrote_before_on_closed_ = false;
  int rejected_writes_ = 0;
};

// ---- replies ----------------------------------------------------------------------------------

// What a face answered: status, headers and body (parsed when it is JSON), or the stream it
// started instead.
struct Reply {
  int status = 0;
  std::string text;
  TestJson body;  // discarded (is_discarded()) when the body is not JSON
  std::vector<std::pair<std::string, std::string>> headers;
  std::shared_ptr<FakeStream> stream;  // set when the face started a stream

  // The first header of that name (case-insensitive), or "".
  std::string Header(std::string_view name) const {
    for (const auto& [k, v] : headers) {
      if (boost::beast::iequals(k, name)) return v;
    }
    return "";
  }
};

inline std::ostream& operator<<(std::ostream& os, const Reply& r) {
  return os << r.status << " " << (r.stream ? "(stream)" : r.text);
}

// ---- the fixture ------------------------------------------------------------------------------

struct FaceOptions {
  // Set: an audit trail with this policy, in a file in a temp dir (no fsync).
  std::optional<audit::Policy> audit_policy;
  // Storage watches under these key prefixes lag until backend_->ReleaseWatches()
  // (LaggingWatchBackend), e.g. kRbacPrefixes: the authorizer then sees only what the face
  // tells it.
  std::vector<std::string> lagging_watches;
};

// The storage prefixes of the RBAC objects (what authz::Authorizer watches).
inline const std::vector<std::string> kRbacPrefixes = {
    "/registry/clusterroles/", "/registry/roles/", "/registry/clusterrolebindings/",
    "/registry/rolebindings/"};

class FaceHarness : public ::testing::Test {
 protected:
  void SetUp() override {
    backend_ = std::make_unique<LaggingWatchBackend>(&faults_, options_.lagging_watches);
    auto b = barrier::Barrier::Open(backend_.get(), seal_.get(), nullptr, &clock_);
    SIGIL_ASSERT_OK(b);
    barrier_ = std::move(b).value();
    store_ = std::make_unique<store::ObjectStore>(barrier_.get());
    auto a = authz::Authorizer::Open(store_.get());
    SIGIL_ASSERT_OK(a);
    authorizer_ = std::move(a).value();
    if (options_.audit_policy) {
      auto au =
          audit::Auditor::Open(store_.get(), *options_.audit_policy, {{audit_path(), 0, false}});
      SIGIL_ASSERT_OK(au);
      auditor_ = std::move(au).value();
    }
    registry_ =
        std::make_unique<registry::Registry>(store_.get(), &clock_, registry::Registry::Options{});
    StartFace();
  }

  // Starts the face under test on the stack (registry_, authorizer_, auditor_).
  virtual void StartFace() = 0;
  // Hands one request to the face, as api/http would.
  virtual std::optional<http::Response> Serve(const http::Request& req,
                                              const http::StreamStarter& start_stream,
                                              const Identity* who) = 0;

  // One request. `who` null: no authenticated caller. A non-empty body is sent with
  // `content_type`.
  Reply Send(http::Verb verb, const std::string& target, const std::string& body,
             const std::string& content_type, const Identity* who) {
    http::Request req{verb, target, 11};
    req.set(boost::beast::http::field::host, "sigil.test");
    req.set(boost::beast::http::field::user_agent, "face-harness");
    if (!body.empty()) {
      req.set(boost::beast::http::field::content_type, content_type);
      req.body().assign(body.data(), body.size());
    }
    req.prepare_payload();
    Reply out;
    http::StreamStarter start = [this, &out](http::Response head,
                                             std::chrono::seconds max_duration) {
      out.stream = client_gone_ ? FakeStream::Gone(std::move(head), max_duration, &io_)
                                : std::make_shared<FakeStream>(std::move(head), max_duration, &io_);
      return out.stream;
    };
    std::optional<http::Response> res = Serve(req, start, who);
    if (!res) {
      EXPECT_NE(out.stream, nullptr)
          << "the face answered nothing and started no stream: " << target;
      if (out.stream) out.status = out.stream->head().result_int();
      return out;
    }
    EXPECT_EQ(out.stream, nullptr) << "the face started a stream and answered too: " << target;
    out.status = res->result_int();
    out.text.assign(res->body().data(), res->body().size());
    out.body = TestJson::parse(out.text, nullptr, false);
    for (const auto& f : *res)
      out.headers.emplace_back(std::string(f.name_string()), std::string(f.value()));
    return out;
  }

  Reply Get(const std::string& target, const Identity& who) {
    return Send(http::Verb::get, target, "", "", &who);
  }
  Reply Post(const std::string& target, const TestJson& body, const Identity& who) {
    return Send(http::Verb::post, target, body.dump(), "application/json", &who);
  }
  Reply Put(const std::string& target, const TestJson& body, const Identity& who) {
    return Send(http::Verb::put, target, body.dump(), "application/json", &who);
  }
  // `content_type`: application/merge-patch+json, application/json-patch+json, ...
  Reply Patch(const std::string& target, const TestJson& body, const std::string& content_type,
              const Identity& who) {
    return Send(http::Verb::patch, target, body.dump(), content_type, &who);
  }
  // `options`: a DeleteOptions body, or null for none.
  Reply Delete(const std::string& target, const Identity& who, const TestJson& options = nullptr) {
    return Send(http::Verb::delete_, target, options.is_null() ? "" : options.dump(),
                "application/json", &who);
  }
  // A request the face answers with a stream (a watch); null (and a test failure) otherwise.
  std::shared_ptr<FakeStream> Watch(const std::string& target, const Identity& who) {
    Reply r = Get(target, who);
    EXPECT_NE(r.stream, nullptr) << "not a stream: " << r;
    return r.stream;
  }

  std::string audit_path() const { return dir_.Sub("audit.log"); }
  // Every event in the audit trail so far, in order.
  std::vector<TestJson> AuditEvents() const {
    std::vector<TestJson> out;
    std::ifstream in(audit_path());
    for (std::string line; std::getline(in, line);)
      out.push_back(TestJson::parse(line, nullptr, false));
    return out;
  }
  std::string AuditText() const {
    std::ifstream in(audit_path());
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }

  // Members in dependency order: each is destroyed before what it uses. A derived fixture's
  // face is destroyed before all of them; io_ is drained (OnClosed callbacks release storage
  // watches) while the stack is still alive.
  FaceOptions options_;
  bool client_gone_ = false;  // streams start ended, as for a client that left at once
  ManualClock clock_;
  TempDir dir_;
  storage::MemoryBackend memory_;
  storage::FaultInjectionBackend faults_{&memory_};  // faults_.FailCommits(...) and so on
  std::unique_ptr<LaggingWatchBackend> backend_;
  std::unique_ptr<barrier::Seal> seal_ = barrier::NewDevSeal();
  std::unique_ptr<barrier::Barrier> barrier_;
  std::unique_ptr<store::ObjectStore> store_;
  std::unique_ptr<authz::Authorizer> authorizer_;
  std::unique_ptr<audit::Auditor> auditor_;
  std::unique_ptr<registry::Registry> registry_;
  FakeIo io_;
};

// ---- the Kubernetes face ----------------------------------------------------------------------

class KubeFaceTest : public FaceHarness {
 protected:
  void StartFace() override {
    kube::KubernetesApi::Options o;
    o.workers = 1;  // Serve() runs on the test thread; the pool serves only Register()ed routes
    o.authorizer = authorizer_.get();
    o.auditor = auditor_.get();  // token_reviewer and token_issuer unset
    api_ = std::make_unique<kube::KubernetesApi>(registry_.get(), &clock_, o);
    SIGIL_ASSERT_OK(api_->EnsureDefaultNamespaces());
  }
  std::optional<http::Response> Serve(const http::Request& req,
                                      const http::StreamStarter& start_stream,
                                      const Identity* who) override {
    return api_->Serve(req, start_stream, who, "127.0.0.1:40000");
  }

  // Creates a namespace as root; fails the test unless it is created.
  void MakeNamespace(const std::string& name) {
    Reply r = Post("/api/v1/namespaces", {{"metadata", {{"name", name}}}}, Root());
    ASSERT_EQ(r.status, 201) << r;
  }
  // A Secret with one value, data.k = `value_b64` (base64 already), and `labels`.
  static TestJson SecretDoc(const std::string& name, const std::string& value_b64 = "dmFsdWU=",
                            const TestJson& labels = nullptr) {
    TestJson s = {{"apiVersion", "v1"},
                  {"kind", "Secret"},
                  {"metadata", {{"name", name}}},
                  {"data", {{"k", value_b64}}}};
    if (!labels.is_null()) s["metadata"]["labels"] = labels;
    return s;
  }
  // As root: a Role `role` in `ns` with `rules`, bound to user `user` by a RoleBinding `role`.
  void GrantRole(const std::string& ns, const std::string& role, const std::string& user,
                 const TestJson& rules) {
    std::string base = "/apis/rbac.authorization.k8s.io/v1/namespaces/" + ns;
    Reply r = Post(base + "/roles", {{"metadata", {{"name", role}}}, {"rules", rules}}, Root());
    ASSERT_EQ(r.status, 201) << r;
    Bind(ns, role, user, "Role", role);
  }
  // As root: a RoleBinding `binding` in `ns` of `kind`/`role` to user `user`.
  void Bind(const std::string& ns, const std::string& binding, const std::string& user,
            const std::string& kind, const std::string& role) {
    Reply r = Post("/apis/rbac.authorization.k8s.io/v1/namespaces/" + ns + "/rolebindings",
                   BindingDoc(binding, user, kind, role), Root());
    ASSERT_EQ(r.status, 201) << r;
  }
  static TestJson BindingDoc(const std::string& binding, const std::string& user,
                             const std::string& kind, const std::string& role) {
    return {
        {"metadata", {{"name", binding}}},
        {"subjects",
         {{{"kind", "User"}, {"apiGroup", "rbac.authorization.k8s.io"}, {"name", user}}}},
        {"roleRef", {{"kind", kind}, {"apiGroup", "rbac.authorization.k8s.io"}, {"name", role}}}};
  }

  std::unique_ptr<kube::KubernetesApi> api_;
};

// ---- helpers of the tests ---------------------------------------------------------------------

inline constexpr char kSecrets[] = "/api/v1/namespaces/a/secrets";
inline constexpr char kRbac[] = "/apis/rbac.authorization.k8s.io/v1/namespaces/";

inline std::vector<std::string> Names(const TestJson& list) {
  std::vector<std::string> out;
  for (const TestJson& i : list.value("items", TestJson::array()))
    out.push_back(i["metadata"].value("name", ""));
  return out;
}

}  // namespace sigil::testing
