#include "sigil/authz/rbac.h"

#include <gtest/gtest.h>

#include "sigil/authz/authorizer.h"
#include "sigil/storage/memory_backend.h"

namespace sigil::authz {
namespace {

using Json = nlohmann::json;

Attributes Res(const std::string& verb, const std::string& resource, const std::string& ns, const std::string& name = "",
               const std::string& sub = "", const std::string& group = "") {
  Attributes a;
  a.verb = verb;
  a.resource = resource;
  a.subresource = sub;
  a.namespace_ = ns;
  a.name = name;
  a.api_group = group;
  return a;
}
Attributes Path(const std::string& verb, const std::string& path) {
  Attributes a;
  a.resource_request = false;
  a.verb = verb;
  a.path = path;
  return a;
}

TEST(PolicyRuleTest, MatchesAsKubeApiserver) {
  PolicyRule r = PolicyRule::FromJson(Json::parse(R"({"apiGroups":[""],"resources":["secrets"],"verbs":["get"],"resourceNames":["db"]})"));
  EXPECT_TRUE(r.Allows(Res("get", "secrets", "ns", "db")));
  EXPECT_FALSE(r.Allows(Res("get", "secrets", "ns", "other")));
  EXPECT_FALSE(r.Allows(Res("list", "secrets", "ns")));     // resourceNames never grant list
  EXPECT_FALSE(r.Allows(Res("get", "secrets", "ns", "db", "versions")));  // a subresource is another resource
  EXPECT_FALSE(r.Allows(Res("get", "secrets", "ns", "db", "", "apps")));
  PolicyRule sub = PolicyRule::FromJson(Json::parse(R"({"apiGroups":["*"],"resources":["*/versions"],"verbs":["*"]})"));
  EXPECT_TRUE(sub.Allows(Res("get", "secrets", "ns", "x", "versions")));
  EXPECT_FALSE(sub.Allows(Res("get", "secrets", "ns", "x")));
  PolicyRule all = PolicyRule::FromJson(Json::parse(R"({"apiGroups":["*"],"resources":["*"],"verbs":["*"]})"));
  EXPECT_TRUE(all.Allows(Res("delete", "secrets", "ns", "x", "versions")));
  EXPECT_FALSE(all.Allows(Path("get", "/metrics")));  // resource rules never match paths
  PolicyRule urls = PolicyRule::FromJson(Json::parse(R"({"nonResourceURLs":["/healthz","/api/*"],"verbs":["get"]})"));
  EXPECT_TRUE(urls.Allows(Path("get", "/healthz")));
  EXPECT_TRUE(urls.Allows(Path("get", "/api/v1")));
  EXPECT_FALSE(urls.Allows(Path("get", "/api")));
  EXPECT_FALSE(urls.Allows(Path("post", "/healthz")));
  EXPECT_FALSE(urls.Allows(Res("get", "healthz", "")));
}

class IndexTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const Json& r : DefaultClusterRoles()) index_.Upsert(RbacIndex::Kind::kClusterRole, "", r["metadata"]["name"], r);
    for (const Json& b : DefaultClusterRoleBindings()) {
      index_.Upsert(RbacIndex::Kind::kClusterRoleBinding, "", b["metadata"]["name"], b);
    }
  }
  static Identity User(const std::string& name, std::vector<std::string> groups = {}) {
    groups.push_back("system:authenticated");
    return Identity{name, "", groups, {}, ""};
  }
  RbacIndex index_;
};

TEST_F(IndexTest, DenyByDefaultAndTheDefaultRoles) {
  Identity jane = User("jane");
  EXPECT_FALSE(index_.Allows(jane, Res("get", "secrets", "default", "x")));
  EXPECT_FALSE(index_.Allows(jane, Res("list", "namespaces", "")));
  EXPECT_TRUE(index_.Allows(jane, Path("get", "/api")));           // system:discovery
  EXPECT_TRUE(index_.Allows(jane, Res("create", "selfsubjectaccessreviews", "", "", "", "authorization.k8s.io")));
  EXPECT_FALSE(index_.Allows(jane, Res("create", "tokenreviews", "", "", "", "authentication.k8s.io")));
  Identity admin = User("root", {"system:masters"});
  EXPECT_TRUE(index_.Allows(admin, Res("delete", "secrets", "default", "x")));
  EXPECT_TRUE(index_.Allows(admin, Path("get", "/metrics")));
}

TEST_F(IndexTest, RoleBindingsAreNamespacedAndAggregationWorks) {
  index_.Upsert(RbacIndex::Kind::kRole, "team", "reader",
                Json::parse(R"({"rules":[{"apiGroups":[""],"resources":["secrets"],"verbs":["get"],"resourceNames":["db"]}]})"));
  index_.Upsert(RbacIndex::Kind::kRoleBinding, "team", "jane-reads",
                Json::parse(R"({"roleRef":{"kind":"Role","name":"reader"},"subjects":[{"kind":"User","name":"jane"}]})"));
  index_.Upsert(RbacIndex::Kind::kRoleBinding, "team", "ci-edits",
                Json::parse(R"({"roleRef":{"kind":"ClusterRole","name":"edit"},"subjects":[{"kind":"ServiceAccount","name":"ci"}]})"));
  index_.Upsert(RbacIndex::Kind::kRoleBinding, "team", "viewers",
                Json::parse(R"({"roleRef":{"kind":"ClusterRole","name":"view"},"subjects":[{"kind":"Group","name":"auditors"}]})"));
  Identity jane = User("jane");
  EXPECT_TRUE(index_.Allows(jane, Res("get", "secrets", "team", "db")));
  EXPECT_FALSE(index_.Allows(jane, Res("get", "secrets", "other", "db")));
  EXPECT_FALSE(index_.Allows(jane, Res("get", "secrets", "team", "db2")));
  Identity ci = User("system:serviceaccount:team:ci", {"system:serviceaccounts"});
  EXPECT_TRUE(index_.Allows(ci, Res("update", "secrets", "team", "x")));       // edit, aggregated
  EXPECT_TRUE(index_.Allows(ci, Res("get", "secrets", "team", "x", "versions")));
  EXPECT_FALSE(index_.Allows(ci, Res("update", "secrets", "default", "x")));
  EXPECT_FALSE(index_.Allows(User("system:serviceaccount:other:ci"), Res("get", "secrets", "team", "x")));
  Identity auditor = User("amy", {"auditors"});
  EXPECT_TRUE(index_.Allows(auditor, Res("list", "namespaces", "team")));
  EXPECT_FALSE(index_.Allows(auditor, Res("get", "secrets", "team", "x")));  // view cannot read secrets
  // A new aggregated role's rules reach admin/edit at once.
  index_.Upsert(RbacIndex::Kind::kClusterRole, "", "extra",
                Json::parse(R"({"metadata":{"labels":{"rbac.authorization.k8s.io/aggregate-to-view":"true"}},
                                "rules":[{"apiGroups":["x.io"],"resources":["widgets"],"verbs":["get"]}]})"));
  EXPECT_TRUE(index_.Allows(ci, Res("get", "widgets", "team", "w", "", "x.io")));
  index_.Remove(RbacIndex::Kind::kRoleBinding, "team", "jane-reads");
  EXPECT_FALSE(index_.Allows(jane, Res("get", "secrets", "team", "db")));
  auto rules = index_.RulesFor(User("jane"), "team");
  EXPECT_FALSE(rules.empty());  // basic-user and discovery
}

TEST(CoversTest, EscalationChecksBreakRulesIntoSimpleOnes) {
  auto rule = [](std::vector<std::string> verbs, std::vector<std::string> groups, std::vector<std::string> resources,
                 std::vector<std::string> names = {}, std::vector<std::string> urls = {}) {
    return PolicyRule{std::move(verbs), std::move(groups), std::move(resources), std::move(names), std::move(urls)};
  };
  std::vector<PolicyRule> owner = {rule({"get", "list"}, {""}, {"secrets"}), rule({"update"}, {""}, {"secrets"}, {"db"}),
                                   rule({"get"}, {}, {}, {}, {"/healthz/*"}), rule({"get"}, {"*"}, {"*/status"})};
  EXPECT_TRUE(Uncovered(owner, {rule({"get"}, {""}, {"secrets"}, {"x"})}).empty());
  EXPECT_TRUE(Uncovered(owner, {rule({"update"}, {""}, {"secrets"}, {"db"})}).empty());
  EXPECT_TRUE(Uncovered(owner, {rule({"get"}, {}, {}, {}, {"/healthz/ready"})}).empty());
  EXPECT_TRUE(Uncovered(owner, {rule({"get"}, {"apps"}, {"deployments/status"})}).empty());
  // update on every secret is more than update on "db"; "*" is only covered by "*".
  auto missing = Uncovered(owner, {rule({"get", "update"}, {""}, {"secrets"})});
  ASSERT_EQ(missing.size(), 1u);
  EXPECT_EQ(missing[0].Describe(), R"({APIGroups:[""], Resources:["secrets"], Verbs:["update"]})");
  EXPECT_EQ(Uncovered(owner, {rule({"*"}, {""}, {"secrets"})}).size(), 1u);
  EXPECT_EQ(Uncovered(owner, {rule({"get"}, {""}, {"*"})}).size(), 1u);
  EXPECT_EQ(Uncovered(owner, {rule({"get"}, {}, {}, {}, {"/metrics"})})[0].Describe(), R"({NonResourceURLs:["/metrics"], Verbs:["get"]})");
  EXPECT_EQ(Uncovered(owner, {rule({"get"}, {""}, {"secrets", "configmaps"}, {"a", "b"})}).size(), 0u + 2u);
  EXPECT_TRUE(Uncovered({rule({"*"}, {"*"}, {"*"}), rule({"*"}, {}, {}, {}, {"*"})},
                        {rule({"*"}, {"*"}, {"*"}), rule({"*"}, {}, {}, {}, {"*"})}).empty());
}

TEST(AuthorizerTest, LoadsDefaultsAndFollowsTheStore) {
  ManualClock clock;
  storage::MemoryBackend backend;
  auto seal = barrier::NewDevSeal();
  auto b = std::move(barrier::Barrier::Open(&backend, seal.get(), nullptr, &clock)).value();
  store::ObjectStore store(b.get());
  auto a = std::move(Authorizer::Open(&store)).value();
  Identity root{"root", "", {"system:masters", "system:authenticated"}, {}, ""};
  Identity jane{"jane", "", {"system:authenticated"}, {}, ""};
  EXPECT_TRUE(a->Allows(root, Res("get", "secrets", "default", "x")));
  EXPECT_FALSE(a->Allows(jane, Res("get", "secrets", "default", "x")));
  std::string binding = R"({"roleRef":{"kind":"ClusterRole","name":"edit"},"subjects":[{"kind":"User","name":"jane"}]})";
  auto rev = store.Create("/registry/rolebindings/default/jane", SecretBytes(std::string_view(binding)));
  ASSERT_TRUE(rev.ok());
  EXPECT_TRUE(a->WaitFor("/registry/rolebindings/", *rev, std::chrono::seconds(5)));
  EXPECT_FALSE(a->WaitFor("/registry/roles/", *rev, std::chrono::milliseconds(10)));  // nothing written there
  EXPECT_TRUE(a->Allows(jane, Res("get", "secrets", "default", "x")));  // the watch applied it
  auto o = store.Get("/registry/rolebindings/default/jane");
  ASSERT_TRUE(store.Delete("/registry/rolebindings/default/jane", (*o)->revision).ok());
  EXPECT_FALSE(a->Allows(jane, Res("get", "secrets", "default", "x")));
  // Reopening keeps the defaults (not created twice).
  auto again = Authorizer::Open(&store);
  ASSERT_TRUE(again.ok());
}

// A writer's own RBAC write is applied at once (no thread waits for the watch); writes older
// than what is applied, or than the watch's progress, never roll the index back.
TEST(AuthorizerTest, ObserveAppliesAWriteAtOnceAndIgnoresOlderOnes) {
  ManualClock clock;
  storage::MemoryBackend backend;
  auto seal = barrier::NewDevSeal();
  auto b = std::move(barrier::Barrier::Open(&backend, seal.get(), nullptr, &clock)).value();
  store::ObjectStore store(b.get());
  auto a = std::move(Authorizer::Open(&store)).value();
  Identity jane{"jane", "", {"system:authenticated"}, {}, ""};
  const std::string key = "/registry/rolebindings/default/jane";
  nlohmann::json binding = nlohmann::json::parse(R"({"roleRef":{"kind":"ClusterRole","name":"edit"},"subjects":[{"kind":"User","name":"jane"}]})");
  // The write will commit at the next revision; its writer observes it before the watch runs.
  int64_t next = store.CurrentRevision() + 1;
  a->Observe(key, &binding, next);
  EXPECT_TRUE(a->Allows(jane, Res("get", "secrets", "default", "x")));
  a->Observe(key, nullptr, next - 1);  // older than what is applied: ignored
  EXPECT_TRUE(a->Allows(jane, Res("get", "secrets", "default", "x")));
  auto rev = store.Create(key, SecretBytes(binding.dump()));
  ASSERT_TRUE(rev.ok());
  ASSERT_EQ(*rev, next);
  ASSERT_TRUE(a->WaitFor("/registry/rolebindings/", *rev, std::chrono::seconds(5)));
  EXPECT_TRUE(a->Allows(jane, Res("get", "secrets", "default", "x")));  // the watch's copy, applied once
  auto del = store.Delete(key, *rev);
  ASSERT_TRUE(del.ok());
  ASSERT_TRUE(a->WaitFor("/registry/rolebindings/", *del, std::chrono::seconds(5)));
  EXPECT_FALSE(a->Allows(jane, Res("get", "secrets", "default", "x")));
  a->Observe(key, &binding, *rev);  // a late Observe behind the watch's progress: ignored
  EXPECT_FALSE(a->Allows(jane, Res("get", "secrets", "default", "x")));
}

}  // namespace
}  // namespace sigil::authz
