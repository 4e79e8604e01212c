// The Kubernetes face in process (face_testing.h): watches and the audit trail.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "sigil/api/kubernetes/face_testing.h"

namespace sigil::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

// ---- 5. watch ----------------------------------------------------------------------------------

// An event's type and object name, as "ADDED s1".
std::vector<std::string> Summary(const std::vector<TestJson>& events) {
  std::vector<std::string> out;
  for (const TestJson& e : events) {
    out.push_back(e.value("type", "?") + " " +
                  (e.contains("object") ? e["object"]["metadata"].value("name", "") : ""));
  }
  return out;
}

// Whether some event is about the object `name`.
auto Saw(const std::string& name) {
  return [name](const std::vector<TestJson>& events) {
    for (const TestJson& e : events) {
      if (e.contains("object") && e["object"]["metadata"].value("name", "") == name) return true;
    }
    return false;
  };
}

TEST_F(KubeFaceTest, WatchSeesItsNamespaceAndEndsWhenClosed) {
  MakeNamespace("a");
  MakeNamespace("b");
  ASSERT_EQ(Post(kSecrets, SecretDoc("s1"), Root()).status, 201);
  ASSERT_EQ(Post(kSecrets, SecretDoc("s2"), Root()).status, 201);
  ASSERT_EQ(Post("/api/v1/namespaces/b/secrets", SecretDoc("t1"), Root()).status, 201);

  std::shared_ptr<FakeStream> w =
      Watch(std::string(kSecrets) + "?watch=true&resourceVersion=0", Root());
  ASSERT_NE(w, nullptr);
  EXPECT_EQ(w->head().result_int(), 200);
  EXPECT_EQ(w->head()[boost::beast::http::field::content_type], "application/json");
  auto initial = w->WaitForEvents([](const auto& e) { return e.size() >= 2; });
  ASSERT_TRUE(initial) << w->text();
  std::vector<std::string> first = Summary(*initial);
  EXPECT_EQ(std::multiset<std::string>(first.begin(), first.end()),
            (std::multiset<std::string>{"ADDED s1", "ADDED s2"}));
  EXPECT_EQ((*initial)[0]["object"]["data"]["k"], "dmFsdWU=");
  EXPECT_FALSE(w->wrote_before_on_closed());

  // A create in b, then one in a: once a's is seen, b's would have been seen before it.
  ASSERT_EQ(Post("/api/v1/namespaces/b/secrets", SecretDoc("t2"), Root()).status, 201);
  ASSERT_EQ(Post(kSecrets, SecretDoc("s3"), Root()).status, 201);
  auto later = w->WaitForEvents(Saw("s3"));
  ASSERT_TRUE(later) << w->text();
  std::vector<std::string> seen = Summary(*later);
  EXPECT_EQ(std::vector<std::string>(seen.begin() + 2, seen.end()),
            std::vector<std::string>{"ADDED s3"});

  w->Close();
  ASSERT_TRUE(w->WaitEnded());
  ASSERT_TRUE(io_.Drain());
  EXPECT_TRUE(w->terminated());
  ASSERT_EQ(Post(kSecrets, SecretDoc("s4"), Root()).status, 201);
  EXPECT_EQ(w->Events().size(), 3u) << w->text();
  EXPECT_EQ(w->rejected_writes(), 0) << "the watch kept writing to an ended stream";
  EXPECT_EQ(w.use_count(), 1)
      << "the face still holds the ended stream (its storage watch lives on)";
}

TEST_F(KubeFaceTest, WatchEndsWhenTheClientLeaves) {
  MakeNamespace("a");
  std::shared_ptr<FakeStream> w =
      Watch(std::string(kSecrets) + "?watch=true&timeoutSeconds=30", Root());
  ASSERT_NE(w, nullptr);
  EXPECT_EQ(w->max_duration(), std::chrono::seconds(30));
  ASSERT_EQ(Post(kSecrets, SecretDoc("s1"), Root()).status, 201);
  ASSERT_TRUE(w->WaitForEvents(Saw("s1"))) << w->text();

  w->Disconnect();
  ASSERT_TRUE(w->WaitEnded());
  ASSERT_TRUE(io_.Drain());
  EXPECT_FALSE(w->terminated());
  ASSERT_EQ(Post(kSecrets, SecretDoc("s2"), Root()).status, 201);
  EXPECT_EQ(w->rejected_writes(), 0);
  EXPECT_EQ(w.use_count(), 1);
}

// The client left before the face got its stream (OnClosed then runs at once): the face must
// still end the storage watch it opens.
TEST_F(KubeFaceTest, WatchWhoseClientLeftAtOnceLeavesNothingBehind) {
  MakeNamespace("a");
  ASSERT_EQ(Post(kSecrets, SecretDoc("s1"), Root()).status, 201);
  client_gone_ = true;
  std::shared_ptr<FakeStream> w = Watch(std::string(kSecrets) + "?watch=true", Root());
  client_gone_ = false;
  ASSERT_NE(w, nullptr);
  EXPECT_TRUE(w->ended());
  ASSERT_TRUE(io_.Drain());
  const int refused = w->rejected_writes();  // the initial ADDED, at most
  ASSERT_EQ(Post(kSecrets, SecretDoc("s2"), Root()).status, 201);
  EXPECT_EQ(w->rejected_writes(), refused) << "the storage watch outlived the stream";
  EXPECT_EQ(w.use_count(), 1);
}

TEST_F(KubeFaceTest, DestroyingTheApiEndsLiveWatches) {
  MakeNamespace("a");
  std::shared_ptr<FakeStream> w =
      Watch(std::string(kSecrets) + "?watch=true&resourceVersion=0", Root());
  ASSERT_NE(w, nullptr);
  std::shared_ptr<FakeStream> other = Watch("/api/v1/namespaces?watch=true", Root());
  ASSERT_NE(other, nullptr);

  api_.reset();
  ASSERT_TRUE(w->WaitEnded());
  ASSERT_TRUE(other->WaitEnded());
  ASSERT_TRUE(io_.Drain());
  EXPECT_TRUE(w->terminated()) << "the face closes its streams";
  EXPECT_EQ(w.use_count(), 1);
  EXPECT_EQ(other.use_count(), 1);
  // The storage watches are gone: a write under them reaches no stream.
  auto late =
      registry_->Create(registry::Secrets(), "a", registry::Json::parse(SecretDoc("late").dump()),
                        registry::WriteOptions{});
  ASSERT_TRUE(late.ok()) << late.error().message;
  EXPECT_EQ(w->rejected_writes(), 0);
  EXPECT_EQ(w->Events().size(), 0u) << w->text();
}

// A commit that storage refuses is a 503 and leaves nothing behind (FaultInjectionBackend).
TEST_F(KubeFaceTest, StorageFailureIsUnavailableAndStoresNothing) {
  MakeNamespace("a");
  faults_.FailCommits(
      storage::CommitFault(UnavailableError("injected: fsync failed")).Under("/registry/secrets/"));
  Reply c = Post(kSecrets, SecretDoc("s"), Root());
  EXPECT_EQ(c.status, 503) << c;
  EXPECT_EQ(c.body["reason"], "ServiceUnavailable");
  EXPECT_EQ(faults_.commits_failed(), 1u);
  faults_.ClearFaults();
  EXPECT_EQ(Get(std::string(kSecrets) + "/s", Root()).status, 404);
  EXPECT_EQ(Post(kSecrets, SecretDoc("s"), Root()).status, 201);
}

// ---- 6. audit ----------------------------------------------------------------------------------

class KubeFaceMetadataAuditTest : public KubeFaceTest {
 protected:
  KubeFaceMetadataAuditTest() {
    options_.audit_policy = audit::Policy::Everything(audit::Level::kMetadata, {});
  }
};

TEST_F(KubeFaceMetadataAuditTest, ReadIsRecordedUnderTheResponsesAuditId) {
  MakeNamespace("a");
  ASSERT_EQ(Post(kSecrets, SecretDoc("s"), Root()).status, 201);
  Reply g = Get(std::string(kSecrets) + "/s", Root());
  ASSERT_EQ(g.status, 200) << g;
  const std::string id = g.Header("Audit-Id");
  ASSERT_FALSE(id.empty()) << g;

  std::vector<TestJson> mine;
  for (const TestJson& e : AuditEvents()) {
    ASSERT_FALSE(e.is_discarded()) << AuditText();
    if (e.value("auditID", "") == id) mine.push_back(e);
  }
  ASSERT_EQ(mine.size(), 2u) << AuditText();  // RequestReceived, ResponseComplete
  EXPECT_EQ(mine[0]["stage"], "RequestReceived");
  const TestJson& done = mine[1];
  EXPECT_EQ(done["stage"], "ResponseComplete");
  EXPECT_EQ(done["level"], "Metadata");
  EXPECT_EQ(done["verb"], "get");
  EXPECT_EQ(done["requestURI"], std::string(kSecrets) + "/s");
  EXPECT_EQ(done["user"]["username"], "root");
  EXPECT_EQ(
      done["objectRef"],
      (TestJson{{"resource", "secrets"}, {"apiVersion", "v1"}, {"namespace", "a"}, {"name", "s"}}));
  EXPECT_EQ(done["responseStatus"]["code"], 200);
  EXPECT_FALSE(done.contains("responseObject")) << "Metadata level records no body";
}

// PRODUCT DEFECT (core::Pipeline::Run, streaming branch, and kube::KubernetesApi::Impl::Watch):
// a watch's response carries no Audit-Id header, so a client cannot find its watch in the trail.
// kube-apiserver sets Audit-Id on every response, watches included (filters/audit_init.go), and
// docs/kubernetes-api.md promises the header with every event.
// The watch's head carries the Audit-Id of its events: ResponseStarted when it starts, and
// ResponseComplete once it ends (here: the client leaves).
TEST_F(KubeFaceMetadataAuditTest, WatchResponseCarriesItsAuditIdAndItsEndIsRecorded) {
  MakeNamespace("a");
  std::shared_ptr<FakeStream> w = Watch(std::string(kSecrets) + "?watch=true", Root());
  ASSERT_NE(w, nullptr);
  auto it = w->head().find("Audit-Id");
  ASSERT_NE(it, w->head().end()) << w->head().base();
  const std::string id(it->value());
  bool found = false;
  for (const TestJson& e : AuditEvents()) {
    if (e.value("auditID", "") == id && e.value("stage", "") == "ResponseStarted")
      found = e.value("verb", "") == "watch";
  }
  EXPECT_TRUE(found) << AuditText();
  auto completes = [&] {
    int n = 0;
    for (const TestJson& e : AuditEvents()) {
      if (e.value("auditID", "") == id && e.value("stage", "") == "ResponseComplete") ++n;
    }
    return n;
  };
  EXPECT_EQ(completes(), 0) << "recorded complete while the watch runs";
  w->Close();
  ASSERT_TRUE(w->WaitEnded());
  EXPECT_EQ(completes(), 1) << AuditText();
}

class KubeFaceRequestResponseAuditTest : public KubeFaceTest {
 protected:
  KubeFaceRequestResponseAuditTest() {
    options_.audit_policy = audit::Policy::Everything(audit::Level::kRequestResponse, {});
  }
};

TEST_F(KubeFaceRequestResponseAuditTest, SecretValuesNeverReachTheTrail) {
  const std::string canary = "sigil-harness-canary-5c1e";
  MakeNamespace("a");
  Reply c = Post(kSecrets, SecretDoc("s", Base64Encode(canary)), Root());
  ASSERT_EQ(c.status, 201) << c;
  TestJson string_data = {{"metadata", {{"name", "t"}}}, {"stringData", {{"pw", canary}}}};
  ASSERT_EQ(Post(kSecrets, string_data, Root()).status, 201);
  ASSERT_EQ(Get(std::string(kSecrets) + "/s", Root()).status, 200);
  ASSERT_EQ(Get(kSecrets, Root()).status, 200);

  // The bodies are recorded (else this test would prove nothing), with the value as a hash.
  const std::string id = c.Header("Audit-Id");
  bool hashed = false;
  for (const TestJson& e : AuditEvents()) {
    if (e.value("auditID", "") != id || e.value("stage", "") != "ResponseComplete") continue;
    ASSERT_TRUE(e.contains("requestObject")) << e.dump();
    ASSERT_TRUE(e.contains("responseObject")) << e.dump();
    EXPECT_THAT(e["requestObject"]["data"].value("k", ""), StartsWith("hmac-sha256:"));
    EXPECT_THAT(e["responseObject"]["data"].value("k", ""), StartsWith("hmac-sha256:"));
    hashed = true;
  }
  EXPECT_TRUE(hashed) << AuditText();

  const std::string trail = AuditText();
  ASSERT_FALSE(trail.empty());
  EXPECT_EQ(trail.find(canary), std::string::npos);
  // Base64 at each alignment, without the edge characters that depend on the neighbours.
  for (const std::string pad : {"", "x", "xx"}) {
    std::string e = Base64Encode(pad + canary);
    std::string core = e.substr(4, e.size() - 8);
    EXPECT_EQ(trail.find(core), std::string::npos)
        << "base64 of the canary (" << core << ") in the trail";
  }
}

}  // namespace
}  // namespace sigil::testing
