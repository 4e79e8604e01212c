// Leases on the memory backend with a manual clock: due leases are revoked by their kind's
// revoker and deleted; failures are retried with backoff and never dropped; renewals move the
// due time within the max; a target that is not over reschedules; nothing is loaded at start
// (a new manager over the same store carries on); revoke, revoke-prefix (force), revoke by
// token, list and tidy.
#include "sigil/leases/leases.h"

#include <gtest/gtest.h>

#include <map>
#include <set>

#include "sigil/storage/memory_backend.h"
#include "sigil/testing/status_matchers.h"

namespace sigil::leases {
namespace {

using ::sigil::testing::StatusIs;

// A target that records what it was asked to end, and fails while `failing` is set.
class FakeTarget final : public Revoker {
 public:
  Result<std::optional<Clock::TimePoint>> Revoke(const Lease& lease, store::SideEffects*) override {
    std::lock_guard<std::mutex> l(mu);
    ++calls;
    if (failing) return UnavailableError("the target is down");
    if (lease.data.contains("until") && later && !lease.requested) return std::optional<Clock::TimePoint>(*later);
    if (lease.job) {
      ++runs;
      if (runs < 3) return std::optional<Clock::TimePoint>(lease.expires + std::chrono::seconds(60));
      return std::optional<Clock::TimePoint>();
    }
    ended.insert(lease.data.value("user", ""));
    return std::optional<Clock::TimePoint>();
  }
  Status Renew(const Lease& lease, Clock::TimePoint expires) override {
    std::lock_guard<std::mutex> l(mu);
    if (refuse_renewal) return UnavailableError("the target refused");
    renewed[lease.data.value("user", "")] = expires;
    return OkStatus();
  }
  std::mutex mu;
  bool refuse_renewal = false;
  int runs = 0;
  std::map<std::string, Clock::TimePoint> renewed;
  bool failing = false;
  std::optional<Clock::TimePoint> later;
  int calls = 0;
  std::set<std::string> ended;
};

class LeasesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    barrier_ = std::move(barrier::Barrier::Open(&backend_, seal_.get(), nullptr, &clock_)).value();
    store_ = std::make_unique<store::ObjectStore>(barrier_.get());
    manager_ = NewManager();
  }
  std::unique_ptr<Manager> NewManager() {
    Manager::Options o;
    o.retry_min = std::chrono::seconds(1);
    o.retry_max = std::chrono::seconds(8);
    auto m = std::make_unique<Manager>(store_.get(), &clock_, o);
    m->Register("db", target_);
    return m;
  }
  Lease Make(const std::string& id, std::chrono::seconds ttl, const std::string& user, std::string token = "") {
    Lease l;
    l.id = id;
    l.kind = "db";
    l.data = Json{{"user", user}};
    l.token_key = std::move(token);
    l.issued = clock_.Now();
    l.expires = clock_.Now() + ttl;
    l.max_expires = clock_.Now() + std::chrono::hours(1);
    l.renewable = true;
    return l;
  }
  size_t Pass() {
    auto n = manager_->RunOnce();
    EXPECT_TRUE(n.ok());
    return n.ok() ? *n : 0;
  }

  ManualClock clock_;
  storage::MemoryBackend backend_;
  std::unique_ptr<barrier::Seal> seal_ = barrier::NewDevSeal();
  std::unique_ptr<barrier::Barrier> barrier_;
  std::unique_ptr<store::ObjectStore> store_;
  std::shared_ptr<FakeTarget> target_ = std::make_shared<FakeTarget>();
  std::unique_ptr<Manager> manager_;
};

TEST_F(LeasesTest, DueLeasesAreRevokedInExpiryOrderAndOnlyThen) {
  SIGIL_ASSERT_OK(manager_->Add(Make("database/creds/ro/a", std::chrono::seconds(10), "a")));
  SIGIL_ASSERT_OK(manager_->Add(Make("database/creds/ro/b", std::chrono::seconds(20), "b")));
  EXPECT_EQ(Pass(), 0u);
  clock_.Advance(std::chrono::seconds(10));
  EXPECT_EQ(Pass(), 1u);
  EXPECT_EQ(target_->ended, (std::set<std::string>{"a"}));
  EXPECT_FALSE(manager_->Lookup("database/creds/ro/a")->has_value());
  EXPECT_TRUE(manager_->Lookup("database/creds/ro/b")->has_value());
  clock_.Advance(std::chrono::seconds(10));
  EXPECT_EQ(Pass(), 1u);
  // Nothing is left behind: no record, no index entry.
  EXPECT_TRUE(store_->Keys("/sigil/leases/")->empty());
}

TEST_F(LeasesTest, FailuresAreRetriedWithBackoffForeverAndSurviveARestart) {
  SIGIL_ASSERT_OK(manager_->Add(Make("database/creds/ro/x", std::chrono::seconds(5), "x")));
  target_->failing = true;
  clock_.Advance(std::chrono::seconds(5));
  EXPECT_EQ(Pass(), 0u);
  auto l = manager_->Lookup("database/creds/ro/x");
  ASSERT_TRUE(l.ok() && l->has_value());
  EXPECT_EQ((*l)->attempts, 1);
  EXPECT_EQ((*l)->last_error, "the target is down");
  EXPECT_EQ(Pass(), 0u);  // not due again yet: 1 s backoff
  EXPECT_EQ(target_->calls, 1);
  for (int i = 0; i < 10; ++i) {
    clock_.Advance(std::chrono::seconds(8));  // past the longest backoff
    EXPECT_EQ(Pass(), 0u);
  }
  EXPECT_EQ(target_->calls, 11);
  EXPECT_EQ(manager_->Lookup("database/creds/ro/x")->value().attempts, 11);
  // A restart: a new manager reads nothing at start and carries on from the index.
  manager_ = NewManager();
  target_->failing = false;
  clock_.Advance(std::chrono::seconds(8));
  EXPECT_EQ(Pass(), 1u);
  EXPECT_EQ(target_->ended, (std::set<std::string>{"x"}));
}

TEST_F(LeasesTest, RenewalMovesTheDueTimeWithinTheMax) {
  Lease l = Make("database/creds/ro/r", std::chrono::seconds(60), "r");
  l.max_expires = clock_.Now() + std::chrono::seconds(100);
  SIGIL_ASSERT_OK(manager_->Add(l));
  clock_.Advance(std::chrono::seconds(50));
  bool capped = false;
  auto renewed = manager_->Renew("database/creds/ro/r", std::chrono::seconds(30), &capped);
  SIGIL_ASSERT_OK(renewed);
  EXPECT_FALSE(capped);
  clock_.Advance(std::chrono::seconds(20));  // t=70: past the first expiry, before the renewed one
  EXPECT_EQ(Pass(), 0u);
  renewed = manager_->Renew("database/creds/ro/r", std::chrono::seconds(3600), &capped);
  SIGIL_ASSERT_OK(renewed);
  EXPECT_TRUE(capped);
  EXPECT_EQ(renewed->expires, l.max_expires);
  clock_.Advance(std::chrono::seconds(30));  // t=100
  EXPECT_EQ(Pass(), 1u);
  Lease fixed = Make("database/creds/ro/fixed", std::chrono::seconds(60), "f");
  fixed.renewable = false;
  SIGIL_ASSERT_OK(manager_->Add(fixed));
  EXPECT_THAT(manager_->Renew("database/creds/ro/fixed", std::nullopt, &capped), StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(manager_->Renew("database/creds/ro/none", std::nullopt, &capped), StatusIs(StatusCode::kNotFound));
}

TEST_F(LeasesTest, ATargetThatIsNotOverReschedules) {
  Lease l = Make("auth/token/create/h1", std::chrono::seconds(10), "t");
  l.data["until"] = true;
  SIGIL_ASSERT_OK(manager_->Add(l));
  target_->later = clock_.Now() + std::chrono::seconds(60);
  clock_.Advance(std::chrono::seconds(10));
  EXPECT_EQ(Pass(), 0u);
  EXPECT_EQ(manager_->Lookup("auth/token/create/h1")->value().expires, *target_->later);
  target_->later.reset();
  clock_.Advance(std::chrono::seconds(50));
  EXPECT_EQ(Pass(), 1u);
  // Asked for (not expired), the target does not get to postpone it.
  l.id = "auth/token/create/h2";
  SIGIL_ASSERT_OK(manager_->Add(l));
  target_->later = clock_.Now() + std::chrono::hours(1);
  SIGIL_ASSERT_OK(manager_->RevokeLater("auth/token/create/h2"));
  EXPECT_TRUE(manager_->Lookup("auth/token/create/h2")->value().requested);
  EXPECT_EQ(Pass(), 1u);
}

TEST_F(LeasesTest, RevokeNowPrefixForceTokenListAndTidy) {
  SIGIL_ASSERT_OK(manager_->Add(Make("database/creds/ro/1", std::chrono::hours(1), "u1", "/sigil/auth/tokens/t1")));
  SIGIL_ASSERT_OK(manager_->Add(Make("database/creds/ro/2", std::chrono::hours(1), "u2", "/sigil/auth/tokens/t1")));
  SIGIL_ASSERT_OK(manager_->Add(Make("database/creds/rw/3", std::chrono::hours(1), "u3")));
  SIGIL_ASSERT_OK(manager_->Add(Make("other/creds/x/4", std::chrono::hours(1), "u4")));
  EXPECT_EQ(*manager_->List("database/creds/"), (std::vector<std::string>{"ro/", "rw/"}));
  EXPECT_EQ(*manager_->List("database/creds/ro/"), (std::vector<std::string>{"1", "2"}));
  EXPECT_THAT(manager_->Add(Make("database/../x", std::chrono::hours(1), "bad")), StatusIs(StatusCode::kInvalidArgument));

  SIGIL_ASSERT_OK(manager_->Revoke("database/creds/rw/3"));  // now, on this thread
  EXPECT_TRUE(target_->ended.count("u3"));
  EXPECT_THAT(manager_->Revoke("database/creds/rw/3"), StatusIs(StatusCode::kNotFound));

  EXPECT_EQ(*manager_->RevokeByToken("/sigil/auth/tokens/t1"), 2u);  // due now, for the workers
  SIGIL_ASSERT_OK(manager_->RevokeLater("database/creds/ro/1"));    // again, at the same instant: still due
  EXPECT_EQ(Pass(), 2u);
  EXPECT_TRUE(target_->ended.count("u1") && target_->ended.count("u2"));

  target_->failing = true;
  EXPECT_THAT(manager_->Revoke("other/creds/x/4"), StatusIs(StatusCode::kUnavailable));
  EXPECT_TRUE(manager_->Lookup("other/creds/x/4")->has_value());  // kept: the target still has it
  EXPECT_EQ(*manager_->RevokePrefix("other/", /*force=*/true), 1u);
  EXPECT_FALSE(manager_->Lookup("other/creds/x/4")->has_value());
  EXPECT_TRUE(store_->Keys("/sigil/leases/")->empty());

  // Tidy: an index entry without its lease goes; a lease without its due entry becomes due.
  SIGIL_ASSERT_OK(store_->Create(Manager::DueKey(clock_.Now(), "gone/1"), SecretBytes(std::string_view("gone/1"))).status());
  SIGIL_ASSERT_OK(manager_->Add(Make("database/creds/ro/5", std::chrono::hours(1), "u5")));
  auto rec = manager_->Lookup("database/creds/ro/5");
  SIGIL_ASSERT_OK(store_->Apply(store::SideEffects{{}, {}, {Manager::DueKey((*rec)->due, "database/creds/ro/5")}}).status());
  EXPECT_EQ(*manager_->Tidy(), 2u);
  target_->failing = false;
  EXPECT_EQ(Pass(), 1u);
  EXPECT_TRUE(target_->ended.count("u5"));
}

TEST_F(LeasesTest, ManyDueLeasesAreEndedInParallelPasses) {
  for (int i = 0; i < 2000; ++i) {
    SIGIL_ASSERT_OK(manager_->Add(Make("database/creds/ro/" + std::to_string(i), std::chrono::seconds(1 + i % 7), "u")));
  }
  clock_.Advance(std::chrono::seconds(10));
  size_t total = 0;
  for (int pass = 0; pass < 10 && total < 2000; ++pass) total += Pass();
  EXPECT_EQ(total, 2000u);
  EXPECT_EQ(manager_->revoked(), 2000u);
  EXPECT_TRUE(store_->Keys("/sigil/leases/")->empty());
}

}  // namespace
}  // namespace sigil::leases

namespace sigil::leases {
namespace {

// From a review: a holder could renew a lease out of a requested revocation; a prefix caught
// its siblings ("ro" took "root"); stale index entries stayed at the head of the index.
TEST_F(LeasesTest, ReviewRegressions) {
  SIGIL_ASSERT_OK(manager_->Add(Make("database/creds/ro/1", std::chrono::hours(1), "ro1")));
  SIGIL_ASSERT_OK(manager_->Add(Make("database/creds/root/1", std::chrono::hours(1), "root1")));
  SIGIL_ASSERT_OK(manager_->RevokeLater("database/creds/ro/1"));
  bool capped = false;
  EXPECT_THAT(manager_->Renew("database/creds/ro/1", std::chrono::hours(1), &capped), StatusIs(StatusCode::kInvalidArgument));
  SIGIL_ASSERT_OK(manager_->Extend("database/creds/ro/1", clock_.Now() + std::chrono::hours(5)));
  EXPECT_EQ(Pass(), 1u);  // still due now: the extension did not move it
  EXPECT_TRUE(target_->ended.count("ro1"));

  SIGIL_ASSERT_OK(manager_->Add(Make("database/creds/ro/2", std::chrono::hours(1), "ro2")));
  EXPECT_EQ(*manager_->RevokePrefix("database/creds/ro", /*force=*/false, /*sync=*/true), 1u);
  EXPECT_TRUE(target_->ended.count("ro2"));
  EXPECT_TRUE(manager_->Lookup("database/creds/root/1")->has_value());  // a sibling, not below
  EXPECT_EQ(*manager_->RevokePrefix("database/creds/root/1", /*force=*/false, /*sync=*/true), 1u);  // an exact id
  EXPECT_FALSE(manager_->Lookup("database/creds/root/1")->has_value());

  // A stale due entry (its lease rescheduled elsewhere) is removed by the pass that finds it.
  SIGIL_ASSERT_OK(manager_->Add(Make("database/creds/ro/3", std::chrono::seconds(1), "ro3")));
  auto l = manager_->Lookup("database/creds/ro/3");
  SIGIL_ASSERT_OK(store_->Create(Manager::DueKey(clock_.Now(), "database/creds/ro/3"), SecretBytes(std::string_view("database/creds/ro/3"))).status());
  EXPECT_EQ(Pass(), 0u);
  EXPECT_FALSE(store_->Get(Manager::DueKey(clock_.Now(), "database/creds/ro/3"))->has_value());
  clock_.Advance(std::chrono::seconds(1));
  EXPECT_EQ(Pass(), 1u);
  EXPECT_TRUE(store_->Keys("/sigil/leases/")->empty());
}

}  // namespace
}  // namespace sigil::leases

namespace sigil::leases {
namespace {

TEST_F(LeasesTest, RenewalAsksTheTargetFirstAndARefusalChangesNothing) {
  SIGIL_ASSERT_OK(manager_->Add(Make("database/creds/ro/r", std::chrono::seconds(10), "r")));
  bool capped = false;
  auto renewed = manager_->Renew("database/creds/ro/r", std::chrono::seconds(100), &capped);
  SIGIL_ASSERT_OK(renewed.status());
  EXPECT_EQ(target_->renewed.at("r"), clock_.Now() + std::chrono::seconds(100));
  target_->refuse_renewal = true;
  EXPECT_THAT(manager_->Renew("database/creds/ro/r", std::chrono::seconds(300), &capped).status(),
              StatusIs(StatusCode::kUnavailable));
  EXPECT_EQ(manager_->Lookup("database/creds/ro/r")->value().expires, clock_.Now() + std::chrono::seconds(100));
}

TEST_F(LeasesTest, JobsRunWhenDueAreRescheduledAndStayOutOfTheLeaseOperations) {
  Lease job;
  job.id = "sys/jobs/db/rotate/app";
  job.kind = "db";
  job.expires = clock_.Now() + std::chrono::seconds(30);
  SIGIL_ASSERT_OK(manager_->Schedule(job));
  // Not a lease: lookup, list, renew, revoke and revoke-prefix do not see it.
  EXPECT_FALSE(manager_->Lookup(job.id)->has_value());
  EXPECT_TRUE(manager_->List("")->empty());
  bool capped = false;
  EXPECT_THAT(manager_->Renew(job.id, std::nullopt, &capped).status(), StatusIs(StatusCode::kNotFound));
  EXPECT_THAT(manager_->Revoke(job.id), StatusIs(StatusCode::kNotFound));
  EXPECT_EQ(manager_->RevokePrefix("sys", true).value(), 0u);
  ASSERT_TRUE(manager_->Job(job.id)->has_value());
  // Rescheduling moves it (one due entry, not two).
  job.expires = clock_.Now() + std::chrono::seconds(10);
  SIGIL_ASSERT_OK(manager_->Schedule(job));
  clock_.Advance(std::chrono::seconds(10));
  EXPECT_EQ(Pass(), 0u);  // ran, and is due again in 60 s
  EXPECT_EQ(target_->runs, 1);
  EXPECT_EQ(Pass(), 0u);
  EXPECT_EQ(target_->runs, 1);
  clock_.Advance(std::chrono::seconds(60));
  EXPECT_EQ(Pass(), 0u);
  EXPECT_EQ(target_->runs, 2);
  // A failure backs off like a lease's, and the job stays.
  target_->failing = true;
  clock_.Advance(std::chrono::seconds(60));
  EXPECT_EQ(Pass(), 0u);
  EXPECT_EQ(manager_->Job(job.id)->value().attempts, 1);
  target_->failing = false;
  clock_.Advance(std::chrono::seconds(1));
  EXPECT_EQ(Pass(), 1u);  // the third run says it is finished
  EXPECT_FALSE(manager_->Job(job.id)->has_value());
  EXPECT_TRUE(store_->Keys("/sigil/leases/")->empty());
  // Cancel removes one without running it.
  job.expires = clock_.Now() + std::chrono::seconds(5);
  SIGIL_ASSERT_OK(manager_->Schedule(job));
  SIGIL_ASSERT_OK(manager_->Cancel(job.id));
  SIGIL_ASSERT_OK(manager_->Cancel(job.id));
  EXPECT_TRUE(store_->Keys("/sigil/leases/")->empty());
  // Only ids under sys/jobs/ are jobs.
  job.id = "database/creds/x";
  EXPECT_THAT(manager_->Schedule(job), StatusIs(StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace sigil::leases
