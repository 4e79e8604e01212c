// The fault-injecting wrapper: each kind of fault, its scope (count, key prefix), recovery
// after ClearFaults, and that it is safe to arm faults while other threads use the backend.
// (The conformance suite also runs against the wrapper with no fault armed.)
#include "sigil/storage/fault_injection_backend.h"

#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <thread>

#include "sigil/storage/memory_backend.h"
#include "sigil/testing/status_matchers.h"

namespace sigil::storage {
namespace {

using ::sigil::testing::StatusIs;

Txn PutTxn(const std::string& key, const std::string& value) {
  Txn t;
  t.ops.push_back(Op::Put(key, value));
  return t;
}

class FaultInjectionBackendTest : public ::testing::Test {
 protected:
  MemoryBackend memory_;
  FaultInjectionBackend backend_{&memory_};
};

TEST_F(FaultInjectionBackendTest, ForwardsEverythingWhenNoFaultIsArmed) {
  auto r = backend_.Commit(PutTxn("/a", "1"));
  ASSERT_TRUE(r.ok()) << r.error();
  EXPECT_TRUE(r->succeeded);
  EXPECT_EQ((*backend_.Get("/a"))->value, "1");
  EXPECT_EQ(backend_.Range({"/", "", 0, false})->kvs.size(), 1u);
  EXPECT_EQ(backend_.CurrentRevision(), 1);
  SIGIL_EXPECT_OK(backend_.Health());
  EXPECT_EQ(backend_.commits_failed(), 0u);
}

TEST_F(FaultInjectionBackendTest, FailsTheNextNCommitsWithNothingApplied) {
  backend_.FailCommits(CommitFault(UnavailableError("disk on fire"), 2));
  EXPECT_THAT(backend_.Commit(PutTxn("/a", "1")), StatusIs(StatusCode::kUnavailable));
  EXPECT_THAT(backend_.Commit(PutTxn("/b", "1")), StatusIs(StatusCode::kUnavailable));
  EXPECT_FALSE(memory_.Get("/a")->has_value());
  EXPECT_FALSE(memory_.Get("/b")->has_value());
  EXPECT_EQ(memory_.CurrentRevision(), 0);
  // The third commit gets through.
  auto r = backend_.Commit(PutTxn("/c", "1"));
  ASSERT_TRUE(r.ok()) << r.error();
  EXPECT_EQ(r->revision, 1);
  EXPECT_EQ(backend_.commits_failed(), 2u);
}

TEST_F(FaultInjectionBackendTest, KeyPrefixSelectsCommitsByOpOrCompareKey) {
  backend_.FailCommits(CommitFault(ResourceExhaustedError("full"), CommitFault::kForever).Under("/registry/secrets/"));
  SIGIL_EXPECT_OK(backend_.Commit(PutTxn("/registry/namespaces/a", "1")));
  EXPECT_THAT(backend_.Commit(PutTxn("/registry/secrets/a/x", "1")), StatusIs(StatusCode::kResourceExhausted));
  Txn by_compare = PutTxn("/other", "1");
  by_compare.compares.push_back({"/registry/secrets/a/y", 0});
  EXPECT_THAT(backend_.Commit(std::move(by_compare)), StatusIs(StatusCode::kResourceExhausted));
  // kForever lasts until cleared.
  EXPECT_THAT(backend_.Commit(PutTxn("/registry/secrets/a/z", "1")), StatusIs(StatusCode::kResourceExhausted));
  backend_.ClearFaults();
  SIGIL_EXPECT_OK(backend_.Commit(PutTxn("/registry/secrets/a/x", "1")));
  EXPECT_EQ(backend_.commits_failed(), 3u);
}

TEST_F(FaultInjectionBackendTest, AfterApplyLandsButReportsTheFailure) {
  backend_.FailCommits(CommitFault(DeadlineExceededError("reply lost")).AfterApply());
  EXPECT_THAT(backend_.Commit(PutTxn("/a", "1")), StatusIs(StatusCode::kDeadlineExceeded));
  EXPECT_EQ((*memory_.Get("/a"))->value, "1");  // it landed all the same
  EXPECT_EQ(memory_.CurrentRevision(), 1);
}

TEST_F(FaultInjectionBackendTest, CommitAsyncReportsInjectedFailuresThroughItsCallback) {
  backend_.FailCommits(CommitFault(UnavailableError("x")));
  std::promise<Result<TxnResult>> failed;
  backend_.CommitAsync(PutTxn("/a", "1"), [&](Result<TxnResult> r) { failed.set_value(std::move(r)); });
  EXPECT_THAT(failed.get_future().get(), StatusIs(StatusCode::kUnavailable));
  backend_.FailCommits(CommitFault(AbortedError("y")).AfterApply());
  std::promise<Result<TxnResult>> applied;
  backend_.CommitAsync(PutTxn("/b", "1"), [&](Result<TxnResult> r) { applied.set_value(std::move(r)); });
  EXPECT_THAT(applied.get_future().get(), StatusIs(StatusCode::kAborted));
  EXPECT_FALSE(memory_.Get("/a")->has_value());
  EXPECT_TRUE(memory_.Get("/b")->has_value());
}

TEST_F(FaultInjectionBackendTest, ReadFaultsCoverGetAndOverlappingRanges) {
  SIGIL_ASSERT_OK(backend_.Commit(PutTxn("/s/a", "1")));
  SIGIL_ASSERT_OK(backend_.Commit(PutTxn("/t/a", "1")));
  backend_.FailReads(ReadFault(DataLossError("bit rot"), ReadFault::kForever).Under("/s/"));
  EXPECT_THAT(backend_.Get("/s/a"), StatusIs(StatusCode::kDataLoss));
  EXPECT_TRUE(backend_.Get("/t/a").ok());
  EXPECT_THAT(backend_.Range({"/s/", "", 0, false}), StatusIs(StatusCode::kDataLoss));
  EXPECT_THAT(backend_.Range({"/", "", 0, false}), StatusIs(StatusCode::kDataLoss));  // includes /s/
  EXPECT_TRUE(backend_.Range({"/t/", "", 0, false}).ok());
  EXPECT_EQ(backend_.reads_failed(), 3u);
  backend_.FailReads(ReadFault(UnavailableError("once")));
  EXPECT_THAT(backend_.Get("/t/a"), StatusIs(StatusCode::kUnavailable));
  EXPECT_TRUE(backend_.Get("/t/a").ok());
  // Commits are unaffected by read faults.
  SIGIL_EXPECT_OK(backend_.Commit(PutTxn("/s/b", "1")));
}

TEST_F(FaultInjectionBackendTest, DelayedReadsWaitAndClearFaultsEndsTheWait) {
  SIGIL_ASSERT_OK(backend_.Commit(PutTxn("/a", "1")));
  backend_.DelayReads(std::chrono::milliseconds(30));
  auto start = std::chrono::steady_clock::now();
  EXPECT_TRUE(backend_.Get("/a").ok());
  EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(30));
  // A read delayed by an hour is released by ClearFaults, not by time passing.
  backend_.DelayReads(std::chrono::hours(1));
  std::promise<void> reading;
  auto read = std::async(std::launch::async, [&] {
    reading.set_value();
    return backend_.Get("/a");
  });
  reading.get_future().wait();
  EXPECT_EQ(read.wait_for(std::chrono::milliseconds(20)), std::future_status::timeout);
  backend_.ClearFaults();
  auto r = read.get();
  ASSERT_TRUE(r.ok()) << r.error();
  EXPECT_EQ((*r)->value, "1");
}

TEST_F(FaultInjectionBackendTest, InjectedHealthOverridesUntilCleared) {
  backend_.SetHealth(UnavailableError("fsync failed"));
  EXPECT_THAT(backend_.Health(), StatusIs(StatusCode::kUnavailable));
  backend_.ClearFaults();
  SIGIL_EXPECT_OK(backend_.Health());
}

TEST_F(FaultInjectionBackendTest, WatchesSeeOnlyCommitsThatWereApplied) {
  std::vector<int64_t> seen;
  std::mutex mu;
  auto w = backend_.Watch("/", 0, [&](const std::vector<Event>& events) {
    std::lock_guard<std::mutex> l(mu);
    for (const Event& e : events) seen.push_back(e.kv.mod_revision);
  });
  ASSERT_TRUE(w.ok());
  backend_.FailCommits(CommitFault(UnavailableError("x")));
  EXPECT_FALSE(backend_.Commit(PutTxn("/a", "1")).ok());
  SIGIL_EXPECT_OK(backend_.Commit(PutTxn("/b", "1")));
  std::lock_guard<std::mutex> l(mu);
  EXPECT_EQ(seen, std::vector<int64_t>{1});
}

TEST_F(FaultInjectionBackendTest, CountsExactlyUnderConcurrentCommits) {
  constexpr int kThreads = 8, kEach = 50, kFailures = 37;
  backend_.FailCommits(CommitFault(UnavailableError("x"), kFailures));
  std::atomic<int> failed{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        auto r = backend_.Commit(PutTxn("/c/" + std::to_string(t) + "/" + std::to_string(i), "v"));
        if (!r.ok()) failed.fetch_add(1);
      }
    });
  }
  // Arm read faults concurrently too: the wrapper's state is shared.
  for (int i = 0; i < 100; ++i) backend_.FailReads(ReadFault(UnavailableError("r")).Under("/nothing/"));
  for (auto& t : threads) t.join();
  EXPECT_EQ(failed.load(), kFailures);
  EXPECT_EQ(backend_.commits_failed(), static_cast<uint64_t>(kFailures));
  EXPECT_EQ(memory_.CurrentRevision(), kThreads * kEach - kFailures);
}

}  // namespace
}  // namespace sigil::storage
