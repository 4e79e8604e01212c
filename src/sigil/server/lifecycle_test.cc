// Lifecycle: sealing while requests and streams are in flight, on the memory backend with the
// real Unsealed (both faces) of a dev-mode server.
#include "sigil/server/lifecycle.h"

#include <gtest/gtest.h>

#include <condition_variable>
#include <future>

#include "sigil/storage/memory_backend.h"
#include "sigil/testing/status_matchers.h"

namespace sigil::server {
namespace {

// A stream that ends when closed, running its OnClosed callback as the HTTP layer does.
class FakeStream final : public http::StreamWriter {
 public:
  bool Write(std::string) override {
    std::lock_guard l(mu_);
    return !closed_;
  }
  void Close() override {
    std::function<void()> cb;
    {
      std::lock_guard l(mu_);
      if (closed_) return;
      closed_ = true;
      cb = std::move(cb_);
    }
    if (cb) cb();
  }
  void OnClosed(std::function<void()> cb) override {
    {
      std::lock_guard l(mu_);
      if (!closed_) {
        cb_ = std::move(cb);
        return;
      }
    }
    cb();
  }
  bool closed() {
    std::lock_guard l(mu_);
    return closed_;
  }

 private:
  std::mutex mu_;
  bool closed_ = false;
  std::function<void()> cb_;
};

class LifecycleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    config_.dev = true;
    ASSERT_TRUE(config_.Validate().ok());
    Lifecycle::Options o;
    o.config = &config_;
    o.backend = &backend_;
    o.throttle = &throttle_;
    o.delay_pool = &delay_pool_;
    lifecycle_ = std::make_unique<Lifecycle>(std::move(o));
    auto started = lifecycle_->Start();
    ASSERT_TRUE(started.ok()) << started.error();
    root_ = std::string(started->root_token->view());
    unseal_key_ = std::move(started->unseal_key);
  }
  void TearDown() override {
    lifecycle_.reset();
    delay_pool_.join();
  }

  http::Request Get(const std::string& target) {
    http::Request req;
    req.method(http::Verb::get);
    req.target(target);
    req.version(11);
    req.set(boost::beast::http::field::authorization, "Bearer " + root_);
    return req;
  }

  Config config_;
  storage::MemoryBackend backend_;
  auth::FailureThrottle throttle_{Clock::Real()};
  boost::asio::thread_pool delay_pool_{1};
  std::unique_ptr<Lifecycle> lifecycle_;
  std::string root_;
  std::optional<SecretBytes> unseal_key_;
};

TEST_F(LifecycleTest, SealedRequestsGet503AndUnsealServesAgain) {
  std::promise<http::Response> first;
  lifecycle_->Dispatch(Get("/api/v1/namespaces/default/secrets"), http::RequestContext{},
                       [&](http::Response r) { first.set_value(std::move(r)); });
  EXPECT_EQ(first.get_future().get().result_int(), 200);
  ASSERT_TRUE(lifecycle_->Seal().ok());
  EXPECT_TRUE(lifecycle_->Status().sealed);
  std::promise<http::Response> sealed;
  lifecycle_->Dispatch(Get("/api/v1/namespaces/default/secrets"), http::RequestContext{},
                       [&](http::Response r) { sealed.set_value(std::move(r)); });
  http::Response res = sealed.get_future().get();
  EXPECT_EQ(res.result_int(), 503);
  EXPECT_NE(res.body().find("sealed"), std::string::npos);
  auto checks = lifecycle_->Checks();
  ASSERT_EQ(checks.size(), 2u);
  EXPECT_EQ(checks[1].first, "seal");
  SIGIL_ASSERT_OK_AND_ASSIGN(vault::SealStatus st, lifecycle_->Unseal(unseal_key_->Clone()));
  EXPECT_FALSE(st.sealed);
  std::promise<http::Response> again;
  lifecycle_->Dispatch(Get("/api/v1/namespaces/default/secrets"), http::RequestContext{},
                       [&](http::Response r) { again.set_value(std::move(r)); });
  EXPECT_EQ(again.get_future().get().result_int(), 200);
}

// Regression (review of the seal): a watch whose stream started after the seal had begun was
// never closed, so its request stayed counted, the old Unsealed (keyring included) stayed in
// memory until the client's timeout, and every unseal waited for it.
TEST_F(LifecycleTest, AStreamStartedDuringTheSealIsEndedAndTheSealCompletes) {
  std::mutex mu;
  std::condition_variable cv;
  bool entered = false, go = false;
  auto stream = std::make_shared<FakeStream>();
  http::RequestContext ctx;
  ctx.start_stream = [&](http::Response, std::chrono::seconds) -> std::shared_ptr<http::StreamWriter> {
    std::unique_lock l(mu);
    entered = true;
    cv.notify_all();
    cv.wait(l, [&] { return go; });
    return stream;
  };
  lifecycle_->Dispatch(Get("/api/v1/namespaces/default/secrets?watch=true&timeoutSeconds=3600"), ctx,
                       [](http::Response) {});
  {
    std::unique_lock l(mu);
    ASSERT_TRUE(cv.wait_for(l, std::chrono::seconds(10), [&] { return entered; }));
  }
  ASSERT_TRUE(lifecycle_->Seal().ok());  // the watch is past its start, its stream not yet open
  {
    std::lock_guard l(mu);
    go = true;
  }
  cv.notify_all();
  auto unsealed = std::async(std::launch::async, [&] { return lifecycle_->Unseal(unseal_key_->Clone()); });
  ASSERT_EQ(unsealed.wait_for(std::chrono::seconds(20)), std::future_status::ready)
      << "the sealed Unsealed was never torn down: a stream started during the seal stayed open";
  auto st = unsealed.get();
  ASSERT_TRUE(st.ok()) << st.error();
  EXPECT_FALSE(st->sealed);
  EXPECT_TRUE(stream->closed());
}

TEST_F(LifecycleTest, SealIsIdempotentAndRekeyNeedsAnUnsealedShamirServer) {
  ASSERT_TRUE(lifecycle_->Seal().ok());
  ASSERT_TRUE(lifecycle_->Seal().ok());
  EXPECT_EQ(lifecycle_->RekeyStatusNow().error().code(), StatusCode::kUnavailable);
  EXPECT_EQ(lifecycle_->Rotate().error().code(), StatusCode::kUnavailable);
  EXPECT_EQ(lifecycle_->Initialize(1, 1).error().code(), StatusCode::kFailedPrecondition);
  SIGIL_ASSERT_OK(lifecycle_->Unseal(unseal_key_->Clone()));
  SIGIL_ASSERT_OK_AND_ASSIGN(vault::KeyStatus before, lifecycle_->CurrentKey());
  SIGIL_ASSERT_OK_AND_ASSIGN(vault::KeyStatus after, lifecycle_->Rotate());
  EXPECT_EQ(after.term, before.term + 1);
}

}  // namespace
}  // namespace sigil::server
