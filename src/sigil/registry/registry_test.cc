#include "sigil/registry/registry.h"

#include "sigil/base/encoding.h"
#include "sigil/registry/rotation.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "sigil/storage/fault_injection_backend.h"
#include "sigil/storage/memory_backend.h"

namespace sigil::registry {
namespace {

class RegistryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    barrier_ = std::move(barrier::Barrier::Open(&backend_, seal_.get(), nullptr, &clock_)).value();
    store_ = std::make_unique<store::ObjectStore>(barrier_.get());
    registry_ = std::make_unique<Registry>(store_.get(), &clock_, Registry::Options{});
    ASSERT_TRUE(registry_->EnsureDefaultNamespaces().ok());
  }
  void MakeNamespace(const std::string& name) {
    auto w = registry_->CreateNamespace(registry_->NewNamespace(name, nullptr, nullptr), false);
    ASSERT_TRUE(w.ok()) << w.error().message;
  }
  static Json SecretBody(const std::string& name) {
    return Json{{"metadata", {{"name", name}}}, {"data", {{"k", "dmFsdWU="}}}};
  }
  // Every key under /registry/<plural>/<ns>/ and sigil's history for `ns`.
  std::vector<std::string> KeysIn(const std::string& ns) {
    std::vector<std::string> out;
    for (const std::string& p : {"/registry/secrets/" + ns + "/", "/registry/roles/" + ns + "/",
                                 "/registry/rolebindings/" + ns + "/", "/sigil/history/registry/secrets/" + ns + "/"}) {
      auto keys = store_->Keys(p);
      EXPECT_TRUE(keys.ok());
      if (keys.ok()) out.insert(out.end(), keys->begin(), keys->end());
    }
    return out;
  }

  ManualClock clock_;
  storage::MemoryBackend backend_;
  std::unique_ptr<barrier::Seal> seal_ = barrier::NewDevSeal();
  std::unique_ptr<barrier::Barrier> barrier_;
  std::unique_ptr<store::ObjectStore> store_;
  std::unique_ptr<Registry> registry_;
};

TEST_F(RegistryTest, CreateGetUpdateDeleteSecretWithHistory) {
  MakeNamespace("a");
  auto c = registry_->Create(Secrets(), "a", SecretBody("s"), WriteOptions{});
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->obj["metadata"]["resourceVersion"], std::to_string(c->revision));
  auto u = registry_->Update(Secrets(), "a", "s", [](const Stored& cur) -> Outcome<Json> {
    Json next = cur.obj;
    next["data"]["k"] = "b3RoZXI=";
    return next;
  }, WriteOptions{});
  ASSERT_TRUE(u.ok()) << u.error().message;
  auto versions = registry_->ListVersions("a", "s");
  ASSERT_TRUE(versions.ok() && versions->has_value());
  EXPECT_EQ((*versions)->versions.size(), 2u);
  EXPECT_EQ((*versions)->current, 2);
  auto d = registry_->Delete(Secrets(), "a", "s", Preconditions{}, WriteOptions{});
  ASSERT_TRUE(d.ok());
  auto g = registry_->Get(Secrets(), "a", "s");
  ASSERT_FALSE(g.ok());
  EXPECT_EQ(g.error().code, 404);
}

TEST_F(RegistryTest, CreateInMissingNamespaceIs404AndStoresNothing) {
  auto c = registry_->Create(Secrets(), "nope", SecretBody("s"), WriteOptions{});
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().code, 404);
  EXPECT_EQ(c.error().message, "namespaces \"nope\" not found");
  EXPECT_TRUE(KeysIn("nope").empty());
}

// The namespace race: the namespace is deleted after the create read it and before the create
// commits (here from the admission hook, which runs in between). Before the registry compared
// the namespace's revision in the create's transaction, the Secret was stored anyway: an orphan
// that a namespace made again later would inherit.
TEST_F(RegistryTest, NamespaceDeletedDuringCreateLeavesNoOrphan) {
  MakeNamespace("race");
  WriteOptions o;
  o.admit = [&](const Json&) -> std::optional<ApiError> {
    auto d = registry_->DeleteNamespace("race");
    EXPECT_TRUE(d.ok());
    return std::nullopt;
  };
  auto c = registry_->Create(Roles(), "race", Json{{"metadata", {{"name", "r"}}}, {"rules", Json::array()}}, o);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().code, 404);
  MakeNamespace("race");
  EXPECT_TRUE(KeysIn("race").empty()) << "a namespace made again inherits nothing";
}

TEST_F(RegistryTest, TerminatingNamespaceRefusesCreates) {
  MakeNamespace("t");
  // A delete that crashed after step 1 leaves the namespace Terminating.
  auto u = store_->Get("/registry/namespaces/t");
  ASSERT_TRUE(u.ok() && u->has_value());
  Json ns = Json::parse((*u)->doc.view());
  ns["status"]["phase"] = "Terminating";
  ASSERT_TRUE(store_->Update("/registry/namespaces/t", SecretBytes(ns.dump()), (*u)->revision).ok());
  auto c = registry_->Create(Secrets(), "t", SecretBody("s"), WriteOptions{});
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().code, 403);
  EXPECT_NE(c.error().message.find("because it is being terminated"), std::string::npos);
  // The next delete finishes it.
  ASSERT_TRUE(registry_->DeleteNamespace("t").ok());
  EXPECT_EQ(registry_->Get(Namespaces(), "", "t").error().code, 404);
}

TEST_F(RegistryTest, NamespaceDeleteCascadesObjectsAndHistory) {
  MakeNamespace("c");
  ASSERT_TRUE(registry_->Create(Secrets(), "c", SecretBody("s1"), WriteOptions{}).ok());
  ASSERT_TRUE(registry_->Create(Secrets(), "c", SecretBody("s2"), WriteOptions{}).ok());
  ASSERT_TRUE(registry_->Create(Roles(), "c", Json{{"metadata", {{"name", "r"}}}, {"rules", Json::array()}}, WriteOptions{}).ok());
  EXPECT_FALSE(KeysIn("c").empty());
  auto d = registry_->DeleteNamespace("c");
  ASSERT_TRUE(d.ok()) << d.error().message;
  EXPECT_EQ(d->obj["status"]["phase"], "Terminating");
  EXPECT_TRUE(KeysIn("c").empty());
}

// Writers keep creating and updating Secrets while the namespace is deleted and made again:
// whatever interleaving happens, no object or history record outlives its namespace.
TEST_F(RegistryTest, ConcurrentWritesAndNamespaceDeletesLeaveNoOrphans) {
  std::atomic<bool> stop{false};
  std::vector<std::thread> writers;
  for (int w = 0; w < 3; ++w) {
    writers.emplace_back([&, w] {
      for (int i = 0; !stop; ++i) {
        std::string name = "s" + std::to_string(w) + "-" + std::to_string(i % 5);
        auto c = registry_->Create(Secrets(), "churn", SecretBody(name), WriteOptions{});
        if (!c.ok() && c.error().code == 409) {
          (void)registry_->Update(Secrets(), "churn", name, [](const Stored& cur) -> Outcome<Json> { return cur.obj; }, WriteOptions{});
        }
      }
    });
  }
  for (int round = 0; round < 200; ++round) {
    auto made = registry_->CreateNamespace(registry_->NewNamespace("churn", nullptr, nullptr), false);
    (void)made;
    std::this_thread::yield();
    auto d = registry_->DeleteNamespace("churn");
    ASSERT_TRUE(d.ok() || d.error().code == 404) << d.error().message;
    // Between a finished delete and the next create, nothing of the old namespace is left.
    auto ns = store_->Get("/registry/namespaces/churn");
    ASSERT_TRUE(ns.ok());
    if (!ns->has_value()) {
      auto keys = KeysIn("churn");
      ASSERT_TRUE(keys.empty()) << "orphan " << keys.front() << " in round " << round;
    }
  }
  stop = true;
  for (std::thread& t : writers) t.join();
}

TEST_F(RegistryTest, CorruptStoredDocumentIsInternalErrorNotBadRequest) {
  MakeNamespace("x");
  ASSERT_TRUE(store_->Create("/registry/secrets/x/bad", SecretBytes(std::string_view("not json{"))).ok());
  auto g = registry_->Get(Secrets(), "x", "bad");
  ASSERT_FALSE(g.ok());
  EXPECT_EQ(g.error().code, 500);
  EXPECT_EQ(g.error().message, "Internal error occurred: stored object is corrupt (see server log)");
  auto l = registry_->List(Secrets(), "x", ListOptions{});
  ASSERT_FALSE(l.ok());
  EXPECT_EQ(l.error().code, 500);
}

}  // namespace
}  // namespace sigil::registry

namespace sigil::registry {
namespace {

// Storage failures reach clients through the one table (base/status_http.h), as on every path.
// The Vault face's version changes (kubernetes/ mount): older versions are amended in place;
// the version the Secret stands at takes the Secret with it, with a tombstone, in one commit.
TEST_F(RegistryTest, ChangeVersionsAmendsRecordsAndTakesTheStandingSecretWithIt) {
  MakeNamespace("a");
  ASSERT_TRUE(registry_->Create(Secrets(), "a", SecretBody("s"), WriteOptions{}).ok());
  auto set = [&](const char* v) {
    auto u = registry_->Update(Secrets(), "a", "s", [&](const Stored& cur) -> Outcome<Json> {
      Json next = cur.obj;
      next["data"]["k"] = v;
      return next;
    }, WriteOptions{});
    ASSERT_TRUE(u.ok()) << u.error().message;
  };
  set("dHdv");
  set("dGhyZWU=");
  using C = Registry::VersionChange;
  // Taking the Secret with it is asked of the caller's check, on the state the commit compares.
  int asked = 0;
  auto refuse = [&]() -> std::optional<ApiError> {
    ++asked;
    return ApiError{403, "Forbidden", "no", nullptr};
  };
  auto no = registry_->ChangeVersions("a", "s", {1, 3}, C::kSoftDelete, WriteOptions{}, refuse);
  ASSERT_FALSE(no.ok());
  EXPECT_EQ(no.error().code, 403);
  EXPECT_EQ(asked, 1);
  EXPECT_TRUE(registry_->Get(Secrets(), "a", "s").ok());
  EXPECT_TRUE(registry_->GetVersion("a", "s", 1)->value().deleted_at.empty());  // nothing changed
  ASSERT_TRUE(registry_->ChangeVersions("a", "s", {1}, C::kSoftDelete, WriteOptions{}, refuse).ok());  // 1 is not current
  EXPECT_EQ(asked, 1);
  ASSERT_TRUE(registry_->ChangeVersions("a", "s", {1}, C::kUndelete, WriteOptions{}).ok());
  auto changed = registry_->ChangeVersions("a", "s", {1, 1, 9}, C::kSoftDelete, WriteOptions{});
  ASSERT_TRUE(changed.ok());
  EXPECT_EQ(*changed, 1);  // 1 once; 9 does not exist
  EXPECT_TRUE(registry_->Get(Secrets(), "a", "s").ok());  // an older version: the Secret stays
  auto v1 = registry_->GetVersion("a", "s", 1);
  ASSERT_TRUE(v1.ok() && v1->has_value());
  EXPECT_FALSE((*v1)->deleted_at.empty());
  EXPECT_TRUE((*v1)->obj.has_value());  // kept, for undelete
  ASSERT_TRUE(registry_->ChangeVersions("a", "s", {1}, C::kUndelete, WriteOptions{}).ok());
  EXPECT_TRUE(registry_->GetVersion("a", "s", 1)->value().deleted_at.empty());

  ASSERT_TRUE(registry_->ChangeVersions("a", "s", {2, 3}, C::kDestroy, WriteOptions{}).ok());
  EXPECT_EQ(registry_->Get(Secrets(), "a", "s").error().code, 404);  // 3 was the Secret as it stood
  auto listed = registry_->ListVersions("a", "s");
  ASSERT_TRUE(listed.ok() && listed->has_value());
  const auto& vs = (*listed)->versions;
  ASSERT_EQ(vs.size(), 4u);
  EXPECT_TRUE(vs[1].destroyed && !vs[1].obj && vs[2].destroyed && !vs[2].obj);
  EXPECT_TRUE(vs[3].deleted);  // the tombstone
  EXPECT_FALSE((*listed)->current.has_value());
  // No stored record holds a destroyed value any more.
  for (int v : {2, 3}) {
    auto raw = store_->Get(store::History::KeyOf(Secrets().Key("a", "s"), v));
    ASSERT_TRUE(raw.ok() && raw->has_value());
    EXPECT_EQ((*raw)->doc.view().find("\"data\""), std::string_view::npos);
  }
  bool created = false;
  auto back = registry_->Rollback("a", "s", 2, WriteOptions{}, &created);
  ASSERT_FALSE(back.ok());
  EXPECT_NE(back.error().message.find("destroyed"), std::string::npos);

  auto names = registry_->SecretNames("a");
  ASSERT_TRUE(names.ok());
  EXPECT_EQ(*names, std::vector<std::string>{"s"});  // gone, but its history is kept
  auto gone = registry_->DeleteWithHistory("a", "s");
  ASSERT_TRUE(gone.ok());
  EXPECT_TRUE(*gone);
  EXPECT_TRUE(KeysIn("a").empty());
  EXPECT_FALSE(*registry_->DeleteWithHistory("a", "s"));
}

TEST(RegistryErrorsTest, FromStatusUsesTheOneTable) {
  EXPECT_EQ(FromStatus(ResourceExhaustedError("full")).code, 507);
  EXPECT_EQ(FromStatus(UnavailableError("down")).code, 503);
  ApiError e = FromStatus(UnimplementedError("not served"));
  EXPECT_EQ(e.code, 501);
  EXPECT_EQ(e.reason, "");
  EXPECT_FALSE(e.ToJson().contains("reason"));
  ApiError corrupt = FromStatus(DataLossError("/registry/secrets/a/b: authentication failed"));
  EXPECT_EQ(corrupt.code, 500);
  EXPECT_EQ(corrupt.message, "Internal error occurred: stored object is corrupt (see server log)");
}

}  // namespace
}  // namespace sigil::registry

namespace sigil::registry {
namespace {

// The registry over the fault-injecting backend: storage failures surface as the one table's
// errors and change nothing; an interrupted namespace delete is finished by the next one.
class RegistryFaultTest : public ::testing::Test {
 protected:
  void SetUp() override {
    barrier_ = std::move(barrier::Barrier::Open(&faults_, seal_.get(), nullptr, &clock_)).value();
    store_ = std::make_unique<store::ObjectStore>(barrier_.get());
    registry_ = std::make_unique<Registry>(store_.get(), &clock_, Registry::Options{});
    ASSERT_TRUE(registry_->CreateNamespace(registry_->NewNamespace("f", nullptr, nullptr), false).ok());
  }
  ManualClock clock_;
  storage::MemoryBackend memory_;
  storage::FaultInjectionBackend faults_{&memory_};
  std::unique_ptr<barrier::Seal> seal_ = barrier::NewDevSeal();
  std::unique_ptr<barrier::Barrier> barrier_;
  std::unique_ptr<store::ObjectStore> store_;
  std::unique_ptr<Registry> registry_;
};

TEST_F(RegistryFaultTest, FailedCommitIsAnErrorAndStoresNothing) {
  faults_.FailCommits(storage::CommitFault(UnavailableError("fsync failed")).Under("/registry/secrets/"));
  auto c = registry_->Create(Secrets(), "f", Json{{"metadata", {{"name", "s"}}}, {"data", {{"k", "dg=="}}}}, WriteOptions{});
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().code, 503);
  EXPECT_EQ(registry_->Get(Secrets(), "f", "s").error().code, 404);
  auto keys = store_->Keys("/sigil/history/registry/secrets/f/");
  ASSERT_TRUE(keys.ok());
  EXPECT_TRUE(keys->empty()) << "no version recorded for a write that did not happen";
  faults_.FailCommits(storage::CommitFault(ResourceExhaustedError("disk full")).Under("/registry/secrets/"));
  auto full = registry_->Create(Secrets(), "f", Json{{"metadata", {{"name", "s"}}}}, WriteOptions{});
  ASSERT_FALSE(full.ok());
  EXPECT_EQ(full.error().code, 507);
}

TEST_F(RegistryFaultTest, InterruptedNamespaceDeleteIsFinishedByTheNextOne) {
  ASSERT_TRUE(registry_->Create(Secrets(), "f", Json{{"metadata", {{"name", "s"}}}}, WriteOptions{}).ok());
  // The first step (Terminating) commits; the cascade's commit fails, as if the server died.
  faults_.FailCommits(storage::CommitFault(UnavailableError("fsync failed")).Under("/registry/secrets/f/"));
  auto d = registry_->DeleteNamespace("f");
  ASSERT_FALSE(d.ok());
  auto ns = registry_->Get(Namespaces(), "", "f");
  ASSERT_TRUE(ns.ok());
  EXPECT_EQ(ns->obj["status"]["phase"], "Terminating");
  EXPECT_EQ(registry_->Create(Secrets(), "f", Json{{"metadata", {{"name", "t"}}}}, WriteOptions{}).error().code, 403);
  faults_.ClearFaults();
  ASSERT_TRUE(registry_->DeleteNamespace("f").ok());
  EXPECT_EQ(registry_->Get(Namespaces(), "", "f").error().code, 404);
  EXPECT_EQ(registry_->Get(Secrets(), "f", "s").error().code, 404);
}


TEST_F(RegistryTest, RotationRewritesTheNamedKeysWhenDueAndIsRecordedAsRotate) {
  MakeNamespace("a");
  Json body = SecretBody("s");
  body["data"]["other"] = "eA==";
  body["metadata"]["annotations"] = {{"sigil.dev/rotation-period", "1h"}, {"sigil.dev/rotation-keys", "k"},
                                     {"sigil.dev/rotation-generator", "alphanumeric"}, {"sigil.dev/rotation-length", "40"}};
  ASSERT_TRUE(registry_->Create(Secrets(), "a", body, WriteOptions{}).ok());
  std::optional<Clock::TimePoint> next;
  // Not due yet: nothing is written, and the due time is an hour after creation.
  auto w = registry_->RotateSecret("a", "s", WriteOptions{}, /*only_if_due=*/true, &next);
  ASSERT_TRUE(w.ok()) << w.error().message;
  EXPECT_EQ(w->revision, 0);
  ASSERT_TRUE(next.has_value());
  clock_.Advance(std::chrono::hours(1));
  w = registry_->RotateSecret("a", "s", WriteOptions{}, true, &next);
  ASSERT_TRUE(w.ok()) << w.error().message;
  ASSERT_NE(w->revision, 0);
  std::string v = *Base64Decode(w->obj["data"]["k"].get<std::string>());
  EXPECT_EQ(v.size(), 40u);
  EXPECT_TRUE(std::all_of(v.begin(), v.end(), [](char c) { return std::isalnum(static_cast<unsigned char>(c)); }));
  EXPECT_EQ(w->obj["data"]["other"], "eA==");
  EXPECT_EQ(w->obj["metadata"]["annotations"]["sigil.dev/rotated-at"], FormatRfc3339(clock_.Now()));
  EXPECT_EQ(*next, *ParseRfc3339(FormatRfc3339(clock_.Now())) + std::chrono::hours(1));
  auto versions = registry_->ListVersions("a", "s");
  ASSERT_TRUE(versions.ok());
  ASSERT_TRUE(versions->has_value());
  EXPECT_EQ((*versions)->versions.back().operation, "rotate");
  // On demand it rotates whatever the schedule; without a policy it is refused.
  w = registry_->RotateSecret("a", "s", WriteOptions{}, false, &next);
  ASSERT_TRUE(w.ok());
  EXPECT_NE(*Base64Decode(w->obj["data"]["k"].get<std::string>()), v);
  ASSERT_TRUE(registry_->Create(Secrets(), "a", SecretBody("plain"), WriteOptions{}).ok());
  auto refused = registry_->RotateSecret("a", "plain", WriteOptions{}, false, &next);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, 400);
  EXPECT_FALSE(next.has_value());
  auto none = registry_->RotateSecret("a", "plain", WriteOptions{}, true, &next);
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(none->revision, 0);
}

TEST(RotationPolicyTest, GeneratorsMakeWhatTheyPromise) {
  RotationPolicy p;
  p.length = 12;
  for (const char* g : {"password", "hex", "base64", "bytes"}) {
    p.generator = g;
    SecretBytes v = GenerateValue(p);
    std::string_view s = v.view();
    if (p.generator == "password") {
      EXPECT_EQ(s.size(), 12u);
      EXPECT_NE(s.find('-'), std::string_view::npos);
    } else if (p.generator == "hex") {
      EXPECT_EQ(s.size(), 24u);
    } else if (p.generator == "base64") {
      EXPECT_EQ(Base64Decode(s)->size(), 12u);
    } else {
      EXPECT_EQ(s.size(), 12u);
    }
  }
  p.generator = "password";
  p.alphabet = "xy";
  SecretBytes xy = GenerateValue(p);
  EXPECT_TRUE(std::all_of(xy.view().begin(), xy.view().end(), [](char c) { return c == 'x' || c == 'y'; }));
  // Policies that could never be written are refused: a bad key, a key a type fixes, values
  // past the Secret size limit; far-future timestamps do not overflow.
  auto refused = [](Json secret) {
    auto r = RotationPolicyOf(secret);
    return r.ok() ? std::string("accepted") : r.error().message();
  };
  Json base = {{"metadata", {{"annotations", {{"sigil.dev/rotation-period", "1h"}, {"sigil.dev/rotation-keys", "a/b"}}}}}};
  EXPECT_NE(refused(base).find("rotation-keys: \"a/b\""), std::string::npos);
  base["metadata"]["annotations"]["sigil.dev/rotation-keys"] = "tls.key";
  base["type"] = "kubernetes.io/tls";
  EXPECT_NE(refused(base).find("random values would break it"), std::string::npos);
  base["type"] = "Opaque";
  EXPECT_EQ(refused(base), "accepted");
  std::string many;
  for (int i = 0; i < 200; ++i) many += (i ? ",k" : "k") + std::to_string(i);
  base["metadata"]["annotations"]["sigil.dev/rotation-keys"] = many;
  base["metadata"]["annotations"]["sigil.dev/rotation-generator"] = "hex";
  base["metadata"]["annotations"]["sigil.dev/rotation-length"] = "4096";
  EXPECT_NE(refused(base).find("would not fit"), std::string::npos);
  EXPECT_FALSE(ParseRfc3339("9999-12-31T23:59:59Z").has_value());
  // Before the first rotation, due one period after creation; after, one after rotated-at.
  Json secret = {{"metadata", {{"creationTimestamp", "2026-01-01T00:00:00Z"}}}};
  p.period = std::chrono::hours(2);
  EXPECT_EQ(FormatRfc3339(NextRotation(secret, p, Clock::TimePoint{})), "2026-01-01T02:00:00Z");
  secret["metadata"]["annotations"] = {{"sigil.dev/rotated-at", "2026-03-01T10:00:00Z"}};
  EXPECT_EQ(FormatRfc3339(NextRotation(secret, p, Clock::TimePoint{})), "2026-03-01T12:00:00Z");
}

}  // namespace
}  // namespace sigil::registry
