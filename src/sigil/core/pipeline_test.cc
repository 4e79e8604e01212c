#include "sigil/core/pipeline.h"

#include <gtest/gtest.h>

#include <fstream>
#include <condition_variable>
#include <mutex>
#include <sstream>
#include <thread>

#include "sigil/storage/memory_backend.h"
#include "sigil/testing/status_matchers.h"

namespace sigil::core {
namespace {

// Errors as a face would render them: the status and the message.
class PlainErrors : public ErrorRenderer {
 public:
  Reply Render(const Status& s, const RequestInfo&) const override {
    Reply r;
    r.status = s.code() == StatusCode::kPermissionDenied ? 403 : s.code() == StatusCode::kUnavailable ? 503 : 500;
    r.body.assign(s.message());
    return r;
  }
};

// Runs the pipeline with an executor that answers at once; returns what was answered.
std::optional<Reply> RunNow(const Pipeline& p, const RequestInfo& info, const ErrorRenderer& errors,
                            const std::function<std::optional<Reply>()>& execute) {
  std::optional<Reply> out;
  int calls = 0;
  p.Run(info, errors, [&](ReplyFn reply) { reply(execute()); },
        [&](std::optional<Reply> r) {
          out = std::move(r);
          ++calls;
        });
  EXPECT_EQ(calls, 1);
  return out;
}

class PipelineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    barrier_ = std::move(barrier::Barrier::Open(&backend_, seal_.get(), nullptr, &clock_)).value();
    store_ = std::make_unique<store::ObjectStore>(barrier_.get());
    rbac_ = std::move(authz::Authorizer::Open(store_.get())).value();
  }
  std::unique_ptr<audit::Auditor> OpenAuditor(const std::string& path, audit::Level level) {
    return std::move(audit::Auditor::Open(store_.get(), audit::Policy::Everything(level, {}), {{path, 0, false}})).value();
  }
  std::string Trail(const std::string& path) {
    std::ifstream f(path);
    std::stringstream s;
    s << f.rdbuf();
    return s.str();
  }
  static RequestInfo Get(const Identity* who, const std::string& verb) {
    RequestInfo info;
    info.method = verb == "delete" ? "DELETE" : "GET";
    info.uri = "/api/v1/namespaces/a/secrets/s";
    info.remote = "127.0.0.1:5555";
    info.caller = who;
    info.subject = who;
    info.kube = authz::Attributes{verb, true, "", "secrets", "", "a", "s", ""};
    info.mutating = verb != "get";
    return info;
  }

  ManualClock clock_;
  storage::MemoryBackend backend_;
  std::unique_ptr<barrier::Seal> seal_ = barrier::NewDevSeal();
  std::unique_ptr<barrier::Barrier> barrier_;
  std::unique_ptr<store::ObjectStore> store_;
  std::unique_ptr<authz::Authorizer> rbac_;
  testing::TempDir dir_;
  PlainErrors errors_;
  const Identity admin_{"root", "", {"system:masters", "system:authenticated"}, {}, "token"};
  const Identity nobody_{"nobody", "", {"system:authenticated"}, {}, "token"};
};

TEST_F(PipelineTest, DeniedRequestDoesNotRunAndIsAuditedAsForbidden) {
  auto auditor = OpenAuditor(dir_.path() + "/a.log", audit::Level::kMetadata);
  Pipeline p({rbac_.get(), auditor.get()});
  bool ran = false;
  auto r = RunNow(p, Get(&nobody_, "get"), errors_, [&]() -> std::optional<Reply> {
    ran = true;
    return Reply{};
  });
  ASSERT_TRUE(r.has_value());
  EXPECT_FALSE(ran);
  EXPECT_EQ(r->status, 403);
  EXPECT_EQ(std::string(r->body.data(), r->body.size()),
            "secrets \"s\" is forbidden: User \"nobody\" cannot get resource \"secrets\" in API group \"\" in the namespace \"a\"");
  std::string trail = Trail(dir_.path() + "/a.log");
  EXPECT_NE(trail.find("\"authorization.k8s.io/decision\":\"forbid\""), std::string::npos) << trail;
  EXPECT_NE(trail.find("\"code\":403"), std::string::npos) << trail;
}

TEST_F(PipelineTest, AllowedRequestRunsWithAuditIdHeader) {
  auto auditor = OpenAuditor(dir_.path() + "/a.log", audit::Level::kMetadata);
  Pipeline p({rbac_.get(), auditor.get()});
  auto r = RunNow(p, Get(&admin_, "get"), errors_, [&]() -> std::optional<Reply> {
    Reply ok;
    ok.body.assign("{}");
    return ok;
  });
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 200);
  ASSERT_EQ(r->headers.size(), 1u);
  EXPECT_EQ(r->headers[0].first, "Audit-Id");
  EXPECT_NE(Trail(dir_.path() + "/a.log").find(r->headers[0].second), std::string::npos);
}

// Fail closed: when the trail cannot be written, a change is refused before it acts.
TEST_F(PipelineTest, UnwritableTrailRefusesChangeBeforeItActs) {
  auto auditor = std::move(audit::Auditor::Open(store_.get(), audit::Policy::Everything(audit::Level::kMetadata, {}),
                                                {{"/dev/full", 0, false}}));
  ASSERT_TRUE(auditor.ok()) << auditor.error();
  Pipeline p({rbac_.get(), auditor->get()});
  bool ran = false;
  auto r = RunNow(p, Get(&admin_, "delete"), errors_, [&]() -> std::optional<Reply> {
    ran = true;
    return Reply{};
  });
  ASSERT_TRUE(r.has_value());
  EXPECT_FALSE(ran);
  EXPECT_EQ(r->status, 503);
}

TEST_F(PipelineTest, VaultFaceWithoutAPolicyStoreIsDenied) {
  Pipeline p({rbac_.get(), nullptr});
  RequestInfo info = Get(&admin_, "get");
  info.face = Face::kVault;
  bool ran = false;
  auto r = RunNow(p, info, errors_, [&]() -> std::optional<Reply> {
    ran = true;
    return Reply{};
  });
  EXPECT_FALSE(ran);
  EXPECT_EQ(r->status, 403);
}

TEST_F(PipelineTest, SensitiveBodiesAreNeverRecorded) {
  auto auditor = OpenAuditor(dir_.path() + "/a.log", audit::Level::kRequestResponse);
  Pipeline p({rbac_.get(), auditor.get()});
  RequestInfo info = Get(&admin_, "create");
  info.sensitive_body = true;
  bool asked = false;
  info.request_object = [&]() -> std::optional<Json> {
    asked = true;
    return Json{{"token", "canary-token-value"}};
  };
  auto r = RunNow(p, info, errors_, [&]() -> std::optional<Reply> {
    Reply ok;
    ok.body.assign(R"({"token":"canary-token-value"})");
    return ok;
  });
  EXPECT_FALSE(asked);
  EXPECT_EQ(Trail(dir_.path() + "/a.log").find("canary-token-value"), std::string::npos);
}

// An executor may answer later, from another thread (a write after its commit): the answer's
// audit record is written then, before the answer leaves, and it leaves exactly once.
// Regression (hostile review): a Vault-face body nested 100,000 deep, recorded at Request
// level, reached the trail's JSON writer, which recurses: the worker's stack overflowed, from an
// unauthenticated path. A body deeper than kMaxRecordedDepth is now never recorded.
TEST_F(PipelineTest, DeepBodiesAreNotRecorded) {
  std::string path = dir_.path() + "/deep.log";
  auto auditor = OpenAuditor(path, audit::Level::kRequestResponse);
  Pipeline p({nullptr, auditor.get(), nullptr});
  RequestInfo info;
  info.face = Face::kVault;
  info.method = "POST";
  info.uri = "/v1/sys/health";
  info.remote = "127.0.0.1:5555";
  info.kube.resource_request = false;
  info.kube.verb = "post";
  info.kube.path = "/v1/sys/health";
  info.vault.unauthenticated = true;
  info.mutating = true;
  info.request_object = []() -> std::optional<Json> {
    Json j = Json::array();
    Json* at = &j;
    for (int i = 0; i < 100000; ++i) {
      at->push_back(Json::array());
      at = &(*at)[0];
    }
    return Json{{"a", std::move(j)}};
  };
  std::optional<Reply> r = RunNow(p, info, errors_, [] {
    Reply ok;
    ok.status = 204;
    return std::optional<Reply>(std::move(ok));
  });
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 204);
  std::string trail = Trail(path);
  EXPECT_NE(trail.find("\"stage\":\"ResponseComplete\""), std::string::npos);
  EXPECT_EQ(trail.find("requestObject"), std::string::npos);
}

TEST_F(PipelineTest, ExecutionMayCompleteLaterOnAnotherThread) {
  auto auditor = OpenAuditor(dir_.path() + "/a.log", audit::Level::kMetadata);
  Pipeline p({rbac_.get(), auditor.get()});
  RequestInfo info = Get(&admin_, "delete");
  std::thread worker;
  std::mutex mu;
  std::condition_variable cv;
  std::optional<Reply> answer;
  int calls = 0;
  p.Run(info, errors_,
        [&](ReplyFn reply) {
          worker = std::thread([reply = std::move(reply)] {
            Reply ok;
            ok.body.assign("{}");
            reply(std::move(ok));
          });
        },
        [&](std::optional<Reply> r) {
          std::lock_guard<std::mutex> l(mu);
          answer = std::move(r);
          ++calls;
          cv.notify_all();
        });
  {
    std::unique_lock<std::mutex> l(mu);
    ASSERT_TRUE(cv.wait_for(l, std::chrono::seconds(10), [&] { return calls > 0; }));
  }
  worker.join();
  EXPECT_EQ(calls, 1);
  ASSERT_TRUE(answer.has_value());
  std::string trail = Trail(dir_.path() + "/a.log");
  EXPECT_NE(trail.find("\"stage\":\"RequestReceived\""), std::string::npos);
  EXPECT_NE(trail.find("\"stage\":\"ResponseComplete\""), std::string::npos) << trail;
}

}  // namespace
}  // namespace sigil::core
