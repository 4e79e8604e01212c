#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "sigil/audit/auditor.h"
#include <filesystem>

#include "sigil/storage/fault_injection_backend.h"
#include "sigil/storage/memory_backend.h"
#include "sigil/testing/status_matchers.h"

namespace sigil::audit {
namespace {

using Json = nlohmann::ordered_json;

TEST(PolicyTest, FirstMatchingRuleWinsWithKubeSemantics) {
  auto p = Policy::Parse(R"(
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
- level: None
  users: ["system:kube-proxy"]
- level: RequestResponse
  resources: [{group: "", resources: [secrets], resourceNames: [db]}]
  namespaces: [prod]
- level: Request
  userGroups: [auditors]
  verbs: [get]
  omitStages: [ResponseStarted]
- level: Metadata
  resources: [{group: rbac.authorization.k8s.io}]
- level: None
  nonResourceURLs: ["/healthz*", /version]
- level: Metadata
)");
  ASSERT_TRUE(p.ok()) << p.error().ToString();
  Identity alice{"alice", "", {"dev"}, {}, ""};
  Identity auditor{"aud", "", {"auditors"}, {}, ""};
  Identity proxy{"system:kube-proxy", "", {}, {}, ""};
  auto res = [](const Identity* u, std::string verb, std::string group, std::string resource, std::string ns, std::string name) {
    return Request{u, std::move(verb), true, std::move(group), std::move(resource), "", std::move(ns), std::move(name), ""};
  };
  EXPECT_EQ(p->Evaluate(res(&proxy, "get", "", "secrets", "prod", "db")).level, Level::kNone);
  Decision d = p->Evaluate(res(&alice, "get", "", "secrets", "prod", "db"));
  EXPECT_EQ(d.level, Level::kRequestResponse);
  EXPECT_EQ(d.omit_stages, std::set<Stage>{Stage::kRequestReceived});
  EXPECT_EQ(p->Evaluate(res(&alice, "get", "", "secrets", "dev", "db")).level, Level::kMetadata);
  d = p->Evaluate(res(&auditor, "get", "", "secrets", "dev", "x"));
  EXPECT_EQ(d.level, Level::kRequest);
  EXPECT_EQ(d.omit_stages, (std::set<Stage>{Stage::kRequestReceived, Stage::kResponseStarted}));
  EXPECT_EQ(p->Evaluate(res(&alice, "create", "rbac.authorization.k8s.io", "roles", "dev", "r")).level, Level::kMetadata);
  Request health{&alice, "get", false, "", "", "", "", "", "/healthz/ready"};
  EXPECT_EQ(p->Evaluate(health).level, Level::kNone);
  health.path = "/metrics";
  EXPECT_EQ(p->Evaluate(health).level, Level::kMetadata);

  EXPECT_FALSE(Policy::Parse("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules: [{level: Loud}]\n").ok());
  EXPECT_FALSE(Policy::Parse("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules: [{level: None, bogus: 1}]\n").ok());
  EXPECT_FALSE(Policy::Parse("apiVersion: v1\nkind: Policy\nrules: [{level: None}]\n").ok());
  EXPECT_FALSE(Policy::Parse("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules: []\n").ok());
  EXPECT_FALSE(Policy::Parse("{{{").ok());
  auto e = Policy::Parse("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules: [{level: None, omitStages: [Sometimes]}]\n");
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.error().message().find("rules[0].omitStages[0]"), std::string::npos);
}

std::vector<std::string> Lines(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> out;
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

void WriteLines(const std::string& path, const std::vector<std::string>& lines) {
  std::ofstream out(path, std::ios::trunc);
  for (const std::string& l : lines) out << l << "\n";
}

TEST(AuditLogTest, ChainDetectsEachKindOfTampering) {
  testing::TempDir dir;
  std::string path = dir.path() + "/audit.log";
  {
    auto log = std::move(AuditLog::Open({{path, 0, false}})).value();
    for (int i = 0; i < 5; ++i) ASSERT_TRUE(log->Append({Json{{"n", i}, {"annotations", Json::object()}}.dump()}).ok());
  }
  {  // a reopened log continues the chain
    auto log = std::move(AuditLog::Open({{path, 0, false}})).value();
    ASSERT_TRUE(log->Append({Json{{"n", 5}}.dump(), Json{{"n", 6}, {"big", std::string(200000, 'b')}}.dump()}).ok());
  }
  {  // also when the last line is longer than the chunk the tail is read in
    auto log = std::move(AuditLog::Open({{path, 0, false}})).value();
    ASSERT_TRUE(log->Append({Json{{"n", 7}}.dump()}).ok());
  }
  std::vector<std::string> good = Lines(path);
  ASSERT_EQ(good.size(), 8u);
  VerifyResult v = VerifyChain({path});
  EXPECT_TRUE(v.ok) << v.problem;
  EXPECT_EQ(v.lines, 8u);

  auto check = [&](std::vector<std::string> lines, size_t want_line, const std::string& want) {
    WriteLines(path, lines);
    VerifyResult r = VerifyChain({path});
    EXPECT_FALSE(r.ok);
    EXPECT_EQ(r.line_number, want_line);
    EXPECT_NE(r.problem.find(want), std::string::npos) << r.problem;
  };
  auto edited = good;
  edited[3].replace(edited[3].find("\"n\":3"), 5, "\"n\":9");
  check(edited, 4, "edited");
  auto removed = good;
  removed.erase(removed.begin() + 2);
  check(removed, 3, "removed, inserted or reordered");
  auto inserted = good;
  inserted.insert(inserted.begin() + 4, good[1]);
  check(inserted, 5, "removed, inserted or reordered");
  auto reordered = good;
  std::swap(reordered[1], reordered[2]);
  check(reordered, 2, "removed, inserted or reordered");
  auto garbage = good;
  garbage[7] = "{\"n\": 7}";
  check(garbage, 8, "not a chained audit line");
  WriteLines(path, good);
  EXPECT_TRUE(VerifyChain({path}).ok);
}

TEST(AuditLogTest, FailedBatchLeavesNoPartialLineAndRotationKeepsTheChain) {
  testing::TempDir dir;
  std::string path = dir.path() + "/audit.log";
  auto log = std::move(AuditLog::Open({{path, 600, true}})).value();
  ASSERT_TRUE(log->Append({Json{{"n", 1}}.dump()}).ok());
  log->InjectFailureForTest(ENOSPC);
  Status st = log->Append({Json{{"n", 2}}.dump()});
  EXPECT_EQ(st.code(), StatusCode::kUnavailable);
  EXPECT_NE(st.message().find("No space left"), std::string::npos);
  log->InjectFailureForTest(0);
  for (int i = 3; i < 12; ++i) ASSERT_TRUE(log->Append({Json{{"n", i}, {"pad", std::string(100, 'x')}}.dump()}).ok());
  std::vector<std::string> files;
  for (const auto& e : std::filesystem::directory_iterator(dir.path())) files.push_back(e.path().string());
  // audit.log.<time>[.n] in the order written: by time, then by n (none first, numerically:
  // .9 before .10), then the live file last. (Sorting by length first went wrong when the
  // second changed during the test: .<t1>.1 sorted after .<t2>.)
  auto order = [&path](const std::string& f) {
    if (f == path) return std::make_pair(std::string("~"), 0L);  // the live file: last
    std::string rest = f.substr(path.size() + 1);
    size_t dot = rest.find('.');
    return std::make_pair(rest.substr(0, dot), dot == std::string::npos ? 0L : std::stol(rest.substr(dot + 1)));
  };
  std::sort(files.begin(), files.end(), [&](const std::string& a, const std::string& b) { return order(a) < order(b); });
  ASSERT_GE(files.size(), 2u);
  ASSERT_EQ(files.back(), path);
  VerifyResult v = VerifyChain(files);
  EXPECT_TRUE(v.ok) << v.file << ":" << v.line_number << " " << v.problem;
  EXPECT_EQ(v.lines, 10u);  // 1 + 9; the failed batch left nothing
  // Dropping a whole rotated file breaks the chain at the next file's first line.
  if (files.size() >= 3) {
    std::vector<std::string> missing = {files[0], files[2]};
    VerifyResult m = VerifyChain(missing);
    EXPECT_FALSE(m.ok);
    EXPECT_EQ(m.line_number, 1u);
  }
}

// Regression (hostile review): `audit verify` accepted a trail whose oldest lines were cut.
// Every file's first line now says whether it starts the trail or which file it continues.
TEST(AuditLogTest, VerifyReportsACutHead) {
  testing::TempDir dir;
  std::string path = dir.path() + "/audit.log";
  auto log = std::move(AuditLog::Open({{path, 1400, true}})).value();
  for (int i = 0; i < 16; ++i) ASSERT_TRUE(log->Append({Json{{"n", i}, {"pad", std::string(100, 'x')}}.dump()}).ok());
  log.reset();
  std::vector<std::string> rotated;
  for (const auto& e : std::filesystem::directory_iterator(dir.path())) {
    if (e.path().string() != path) rotated.push_back(e.path().string());
  }
  ASSERT_FALSE(rotated.empty());
  std::sort(rotated.begin(), rotated.end());
  // The oldest file starts the trail.
  VerifyResult first = VerifyChain({rotated.front()});
  ASSERT_TRUE(first.ok) << first.problem;
  EXPECT_EQ(first.starts, "genesis");
  // The live file alone continues the newest rotated one and says so.
  VerifyResult live = VerifyChain({path});
  ASSERT_TRUE(live.ok) << live.problem;
  size_t slash = rotated.back().rfind('/');
  EXPECT_EQ(live.starts, "continues " + rotated.back().substr(slash + 1));
  EXPECT_EQ(live.continues_hash.size(), 64u);
  // Cutting the first line (or two) of either is reported at the new first line.
  for (const std::string& f : {rotated.front(), path}) {
    std::vector<std::string> lines;
    {
      std::ifstream in(f);
      for (std::string l; std::getline(in, l);) lines.push_back(l);
    }
    ASSERT_GE(lines.size(), 3u);
    for (size_t cut : {1u, 2u}) {
      std::string cut_path = dir.path() + "/cut";
      WriteLines(cut_path, std::vector<std::string>(lines.begin() + cut, lines.end()));
      VerifyResult v = VerifyChain({cut_path});
      EXPECT_FALSE(v.ok);
      EXPECT_EQ(v.line_number, 1u);
      EXPECT_NE(v.problem.find("head was cut"), std::string::npos) << v.problem;
    }
  }
  // A request cannot forge the start: an annotation of that name inside the event's own data
  // is not at the end of the line.
  std::string forged_path = dir.path() + "/forged.log";
  auto forged = std::move(AuditLog::Open({{forged_path, 0, true}})).value();
  ASSERT_TRUE(forged->Append({"{\"a\":1,\"annotations\":{}}",
                              "{\"requestObject\":{\"annotations\":{\"sigil.dev/audit-trail-start\":\"genesis\"}},\"annotations\":{}}",
                              "{\"b\":2,\"annotations\":{}}"}).ok());
  forged.reset();
  std::vector<std::string> lines;
  {
    std::ifstream in(forged_path);
    for (std::string l; std::getline(in, l);) lines.push_back(l);
  }
  ASSERT_EQ(lines.size(), 3u);
  WriteLines(forged_path, {lines[1], lines[2]});
  EXPECT_FALSE(VerifyChain({forged_path}).ok);
}

// Review: a live file whose last line was broken (a crash mid-line, an edit) used to be
// continued with a line that looked like the start of an old trail, so cutting everything
// before it passed verification.
TEST(AuditLogTest, ALineAfterABrokenTailSaysSo) {
  testing::TempDir dir;
  std::string path = dir.path() + "/audit.log";
  {
    auto log = std::move(AuditLog::Open({{path, 0, true}})).value();
    ASSERT_TRUE(log->Append({Json{{"n", 1}}.dump()}).ok());
  }
  {
    std::ofstream out(path, std::ios::app);
    out << "{\"half a line";
  }
  auto log = std::move(AuditLog::Open({{path, 0, true}})).value();
  ASSERT_TRUE(log->Append({Json{{"n", 2}}.dump()}).ok());
  log.reset();
  std::vector<std::string> lines;
  {
    std::ifstream in(path);
    for (std::string l; std::getline(in, l);) lines.push_back(l);
  }
  ASSERT_EQ(lines.size(), 3u);  // the broken line keeps a line of its own
  EXPECT_EQ(lines[1], "{\"half a line");
  EXPECT_NE(lines[2].find("\"sigil.dev/audit-trail-start\":\"resumes after an unreadable line\""), std::string::npos) << lines[2];
  EXPECT_FALSE(VerifyChain({path}).ok);  // the broken line is reported
  // Cut before the resumed line: it verifies, but says where it starts.
  std::string cut = dir.path() + "/cut.log";
  WriteLines(cut, {lines[2]});
  VerifyResult v = VerifyChain({cut});
  EXPECT_TRUE(v.ok) << v.problem;
  EXPECT_EQ(v.starts, "resumes after an unreadable line");
}

// Regression: after a failed fdatasync the log carried on, although the kernel may have
// dropped the batch's dirty pages and a later fdatasync can succeed without them (the LMDB
// store stops all writes after one). The policy (docs/threat-model.md "Storage and audit
// failures"): the sink refuses every later batch until it is reopened; a full disk stays
// recoverable.
TEST(AuditLogTest, FailedSyncStopsTheSinkUntilReopened) {
  testing::TempDir dir;
  std::string path = dir.path() + "/audit.log";
  auto log = std::move(AuditLog::Open({{path, 0, true}})).value();
  ASSERT_TRUE(log->Append({Json{{"n", 1}}.dump()}).ok());
  log->InjectFailureForTest(EIO, AuditLog::FaultPoint::kSync);
  Status st = log->Append({Json{{"n", 2}}.dump()});
  EXPECT_EQ(st.code(), StatusCode::kUnavailable);
  EXPECT_NE(st.message().find("Input/output error"), std::string::npos) << st.message();
  log->InjectFailureForTest(0);  // the disk works again; the sink must not trust it
  st = log->Append({Json{{"n", 3}}.dump()});
  EXPECT_EQ(st.code(), StatusCode::kUnavailable);
  EXPECT_EQ(log->Health().code(), StatusCode::kUnavailable);
  EXPECT_EQ(Lines(path).size(), 1u);  // the failed batch was truncated away, nothing after it
  log.reset();

  log = std::move(AuditLog::Open({{path, 0, true}})).value();  // reopening (a restart) clears it
  EXPECT_TRUE(log->Health().ok());
  ASSERT_TRUE(log->Append({Json{{"n", 4}}.dump()}).ok());
  std::vector<std::string> lines = Lines(path);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_NE(lines[0].find("\"n\":1"), std::string::npos);
  EXPECT_NE(lines[1].find("\"n\":4"), std::string::npos);
  VerifyResult v = VerifyChain({path});
  EXPECT_TRUE(v.ok) << v.problem;
}

TEST(AuditLogTest, FullDiskAtSyncOrWriteStaysRecoverable) {
  testing::TempDir dir;
  std::string path = dir.path() + "/audit.log";
  auto log = std::move(AuditLog::Open({{path, 0, true}})).value();
  ASSERT_TRUE(log->Append({Json{{"n", 1}}.dump()}).ok());
  for (auto at : {AuditLog::FaultPoint::kSync, AuditLog::FaultPoint::kWrite}) {
    for (int err : {ENOSPC, EDQUOT}) {
      log->InjectFailureForTest(err, at);
      EXPECT_EQ(log->Append({Json{{"n", 0}}.dump()}).code(), StatusCode::kUnavailable);
      EXPECT_TRUE(log->Health().ok());
    }
  }
  log->InjectFailureForTest(0);
  ASSERT_TRUE(log->Append({Json{{"n", 2}}.dump()}).ok());
  EXPECT_EQ(Lines(path).size(), 2u);
  VerifyResult v = VerifyChain({path});
  EXPECT_TRUE(v.ok) << v.problem;
}

// Any other write error stops the sink too, as any non-full commit failure stops LMDB.
TEST(AuditLogTest, FailedWriteOtherThanFullStopsTheSink) {
  testing::TempDir dir;
  std::string path = dir.path() + "/audit.log";
  auto log = std::move(AuditLog::Open({{path, 0, true}})).value();
  log->InjectFailureForTest(EIO, AuditLog::FaultPoint::kWrite);
  EXPECT_EQ(log->Append({Json{{"n", 1}}.dump()}).code(), StatusCode::kUnavailable);
  log->InjectFailureForTest(0);
  EXPECT_EQ(log->Append({Json{{"n", 2}}.dump()}).code(), StatusCode::kUnavailable);
  EXPECT_EQ(Lines(path).size(), 0u);
}

// A stopped file sink does not take standard output down with it: events still go there, and
// Append succeeds (as with any sink failing among several).
TEST(AuditLogTest, AStoppedSinkLeavesTheOthersWorking) {
  testing::TempDir dir;
  std::string path = dir.path() + "/audit.log";
  auto log = std::move(AuditLog::Open({{path, 0, true}, {"-", 0, false}})).value();
  log->InjectFailureForTest(EIO, AuditLog::FaultPoint::kSync);  // file sinks only
  ::testing::internal::CaptureStdout();
  EXPECT_TRUE(log->Append({Json{{"n", 1}}.dump()}).ok());
  log->InjectFailureForTest(0);
  EXPECT_TRUE(log->Append({Json{{"n", 2}}.dump()}).ok());
  std::string out = ::testing::internal::GetCapturedStdout();
  EXPECT_NE(out.find("\"n\":2"), std::string::npos);
  EXPECT_EQ(Lines(path).size(), 0u);  // the file took neither
  EXPECT_TRUE(log->Health().ok());   // one sink still writes
}

TEST(AuditorTest, SecretValuesBecomeKeyedHashes) {
  ManualClock clock;
  storage::MemoryBackend backend;
  auto seal = barrier::NewDevSeal();
  auto b = std::move(barrier::Barrier::Open(&backend, seal.get(), nullptr, &clock)).value();
  store::ObjectStore store(b.get());
  testing::TempDir dir;
  auto a = std::move(Auditor::Open(&store, Policy::Everything(Level::kRequestResponse, {}), {{dir.path() + "/a.log", 0, false}})).value();
  std::string h = a->Hash("hunter2");
  EXPECT_EQ(h.size(), std::string("hmac-sha256:").size() + 64);
  EXPECT_EQ(h, a->Hash("hunter2"));
  EXPECT_NE(h, a->Hash("hunter3"));
  // The same key after a restart (kept in the store).
  auto again = std::move(Auditor::Open(&store, Policy::Everything(Level::kMetadata, {}), {{dir.path() + "/b.log", 0, false}})).value();
  EXPECT_EQ(again->Hash("hunter2"), h);

  Json secret = {{"kind", "Secret"},
                 {"metadata", {{"name", "s"}, {"annotations", {{"kubectl.kubernetes.io/last-applied-configuration", "{\"data\":{\"p\":\"aHVudGVyMg==\"}}"}, {"team", "a"}}}}},
                 {"data", {{"p", "aHVudGVyMg=="}}},
                 {"stringData", {{"q", "hunter2"}}}};
  Json list = {{"kind", "SecretList"}, {"items", Json::array({secret})}};
  list = a->RedactedBody("", "secrets", "", "application/json", list).value();
  const Json& item = list["items"][0];
  EXPECT_EQ(item["data"]["p"], h);
  EXPECT_EQ(item["stringData"]["q"], h);
  EXPECT_EQ(item["metadata"]["annotations"]["team"], "a");
  EXPECT_TRUE(item["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"].get<std::string>().starts_with("hmac-sha256:"));
  Json patch = Json::array({{{"op", "add"}, {"path", "/data/p"}, {"value", "aHVudGVyMg=="}},
                            {{"op", "replace"}, {"path", "/data"}, {"value", {{"x", "aHVudGVyMg=="}}}},
                            {{"op", "add"}, {"path", "/metadata/labels/a"}, {"value", "visible"}}});
  patch = a->RedactedBody("", "secrets", "", "application/json-patch+json", patch).value();
  EXPECT_EQ(patch[0]["value"], h);
  EXPECT_EQ(patch[1]["value"]["x"], h);
  EXPECT_EQ(patch[2]["value"], "visible");
  EXPECT_EQ(list.dump().find("aHVudGVy"), std::string::npos);
  EXPECT_EQ(list.dump().find("hunter2"), std::string::npos);
}

}  // namespace
}  // namespace sigil::audit

namespace sigil::audit {
namespace {

// The audit HMAC key is read from the store at start: when that read fails, Open fails. It must
// not make a new key, which would hash the same value differently from the trail so far.
TEST(AuditorTest, UnreadableKeyFailsOpenAndKeepsTheKey) {
  ManualClock clock;
  storage::MemoryBackend memory;
  storage::FaultInjectionBackend faults(&memory);
  auto seal = barrier::NewDevSeal();
  auto b = std::move(barrier::Barrier::Open(&faults, seal.get(), nullptr, &clock)).value();
  store::ObjectStore store(b.get());
  testing::TempDir dir;
  auto first = std::move(Auditor::Open(&store, Policy::Everything(Level::kMetadata, {}), {{dir.path() + "/a.log", 0, false}})).value();
  std::string h = first->Hash("hunter2");
  faults.FailReads(storage::ReadFault(UnavailableError("disk gone")).Under("/sigil/audit/"));
  auto failed = Auditor::Open(&store, Policy::Everything(Level::kMetadata, {}), {{dir.path() + "/b.log", 0, false}});
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.error().code(), StatusCode::kUnavailable);
  faults.ClearFaults();
  auto again = std::move(Auditor::Open(&store, Policy::Everything(Level::kMetadata, {}), {{dir.path() + "/c.log", 0, false}})).value();
  EXPECT_EQ(again->Hash("hunter2"), h);
}

}  // namespace
}  // namespace sigil::audit
