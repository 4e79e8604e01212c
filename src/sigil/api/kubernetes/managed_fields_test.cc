#include "sigil/api/kubernetes/managed_fields.h"

#include <gtest/gtest.h>

namespace sigil::kube {
namespace {

Json Secret(Json data, Json labels = Json::object()) {
  Json s = {{"metadata", {{"name", "s"}, {"namespace", "default"}}}, {"type", "Opaque"}};
  if (!data.empty()) s["data"] = data;
  if (!labels.empty()) s["metadata"]["labels"] = labels;
  return s;
}

const ManagedEntry* Entry(const std::vector<ManagedEntry>& es, const std::string& m, const std::string& op) {
  for (const ManagedEntry& e : es) {
    if (e.manager == m && e.operation == op) return &e;
  }
  return nullptr;
}

TEST(FieldSetTest, RoundTripsFieldsV1) {
  Json v1 = Json::parse(R"({"f:data":{".":{},"f:a":{},"f:b.c":{}},"f:metadata":{"f:labels":{"f:app":{}}},"f:type":{}})");
  FieldSet set = FieldSetFromV1(v1);
  EXPECT_EQ(set, (FieldSet{{"data"}, {"data", "a"}, {"data", "b.c"}, {"metadata", "labels", "app"}, {"type"}}));
  EXPECT_EQ(FieldSetToV1(set), v1);
}

TEST(FieldSetTest, DropsListElementsItDoesNotModel) {
  Json v1 = Json::parse(R"({"f:metadata":{"f:ownerReferences":{"k:{\"uid\":\"x\"}":{".":{}}}},"f:type":{}})");
  EXPECT_EQ(FieldSetFromV1(v1), (FieldSet{{"type"}}));
}

TEST(RecordUpdateTest, CreatorOwnsEverythingIncludingTheMaps) {
  std::vector<ManagedEntry> es;
  RecordUpdate(&es, nullptr, Secret({{"a", "YQ=="}}, {{"app", "x"}}), "kubectl-create", "T1");
  ASSERT_EQ(es.size(), 1u);
  EXPECT_EQ(es[0].operation, "Update");
  EXPECT_EQ(es[0].time, "T1");
  EXPECT_EQ(FieldSetToV1(es[0].fields),
            Json::parse(R"({"f:data":{".":{},"f:a":{}},"f:metadata":{"f:labels":{".":{},"f:app":{}}},"f:type":{}})"));
}

TEST(RecordUpdateTest, ChangedFieldsMoveToTheWriterAndRemovedOnesLeaveEveryone) {
  std::vector<ManagedEntry> es;
  Json v1 = Secret({{"a", "YQ=="}, {"b", "Yg=="}});
  RecordUpdate(&es, nullptr, v1, "creator", "T1");
  Json v2 = Secret({{"a", "eA=="}, {"c", "Yw=="}}, {{"env", "prod"}});  // a changed, b removed, c added
  RecordUpdate(&es, &v1, v2, "editor", "T2");
  const ManagedEntry* creator = Entry(es, "creator", "Update");
  const ManagedEntry* editor = Entry(es, "editor", "Update");
  ASSERT_NE(creator, nullptr);
  ASSERT_NE(editor, nullptr);
  EXPECT_EQ(creator->fields, (FieldSet{{"data"}, {"type"}}));
  EXPECT_EQ(editor->fields, (FieldSet{{"data", "a"}, {"data", "c"}, {"metadata", "labels"}, {"metadata", "labels", "env"}}));
  EXPECT_EQ(creator->time, "T1");
}

TEST(RecordUpdateTest, AWriteThatChangesNothingAddsNoEntry) {
  std::vector<ManagedEntry> es;
  Json v1 = Secret({{"a", "YQ=="}});
  RecordUpdate(&es, nullptr, v1, "creator", "T1");
  RecordUpdate(&es, &v1, v1, "idle", "T2");
  EXPECT_EQ(es.size(), 1u);
}

TEST(ApplyTest, CreatesAndOwnsExactlyTheConfiguredFields) {
  Json cfg = Secret({{"a", "YQ=="}});
  ApplyResult r = Apply(nullptr, {}, cfg, {{"data", "a"}}, "kubectl", false, "T1");
  ASSERT_TRUE(r.conflicts.empty());
  ASSERT_EQ(r.entries.size(), 1u);
  EXPECT_EQ(r.entries[0].operation, "Apply");
  EXPECT_EQ(FieldSetToV1(r.entries[0].fields), Json::parse(R"({"f:data":{"f:a":{}}})"));
  EXPECT_EQ(r.obj["data"]["a"], "YQ==");
}

TEST(ApplyTest, SameValueIsSharedDifferentValueConflictsUnlessForced) {
  std::vector<ManagedEntry> es;
  Json live = Secret({{"a", "YQ=="}, {"b", "Yg=="}});
  RecordUpdate(&es, nullptr, live, "kubectl-create", "T1");
  // Same values: no conflict, both own.
  ApplyResult same = Apply(&live, es, Secret({{"a", "YQ=="}}), {{"data", "a"}}, "kubectl", false, "T2");
  ASSERT_TRUE(same.conflicts.empty());
  EXPECT_TRUE(Entry(same.entries, "kubectl-create", "Update")->fields.count({"data", "a"}));
  EXPECT_TRUE(Entry(same.entries, "kubectl", "Apply")->fields.count({"data", "a"}));
  // Different values: one conflict per field, nothing applied.
  ApplyResult clash = Apply(&live, es, Secret({{"a", "eA=="}, {"b", "eQ=="}}), {{"data", "a"}, {"data", "b"}}, "kubectl",
                            false, "T2");
  ASSERT_EQ(clash.conflicts.size(), 2u);
  EXPECT_EQ(clash.conflicts[0].manager_label, "\"kubectl-create\" using v1");
  ApiError e = ApplyConflictError({clash.conflicts[0]});
  EXPECT_EQ(e.code, 409);
  EXPECT_EQ(e.message, "Apply failed with 1 conflict: conflict with \"kubectl-create\" using v1: .data.a");
  EXPECT_EQ(e.ToJson()["details"]["causes"][0]["field"], ".data.a");
  EXPECT_EQ(ApplyConflictError(clash.conflicts).message,
            "Apply failed with 2 conflicts: conflicts with \"kubectl-create\" using v1:\n- .data.a\n- .data.b");
  // Forced: applied, and the other manager loses the fields.
  ApplyResult forced = Apply(&live, es, Secret({{"a", "eA=="}}), {{"data", "a"}}, "kubectl", true, "T2");
  ASSERT_TRUE(forced.conflicts.empty());
  EXPECT_EQ(forced.obj["data"]["a"], "eA==");
  EXPECT_FALSE(Entry(forced.entries, "kubectl-create", "Update")->fields.count({"data", "a"}));
}

TEST(ApplyTest, PrunesWhatTheApplierDroppedUnlessSomeoneElseOwnsIt) {
  Json cfg1 = Secret({{"a", "YQ=="}, {"b", "Yg=="}, {"c", "Yw=="}});
  ApplyResult r1 = Apply(nullptr, {}, cfg1, {{"data", "a"}, {"data", "b"}, {"data", "c"}}, "kubectl", false, "T1");
  // Someone else takes ownership of c with an update.
  Json live = r1.obj;
  Json edited = live;
  edited["data"]["c"] = "Wg==";
  std::vector<ManagedEntry> es = r1.entries;
  RecordUpdate(&es, &live, edited, "kubectl-edit", "T2");
  // The applier now only mentions a: b is pruned; c survives (kubectl-edit owns it).
  ApplyResult r2 = Apply(&edited, es, Secret({{"a", "YQ=="}}), {{"data", "a"}}, "kubectl", false, "T3");
  ASSERT_TRUE(r2.conflicts.empty());
  EXPECT_EQ(r2.obj["data"], Json::parse(R"({"a":"YQ==","c":"Wg=="})"));
  // Dropping the last key drops the map.
  ApplyResult r3 = Apply(&r2.obj, r2.entries, Secret(Json::object(), {{"x", "y"}}), {{"metadata", "labels", "x"}}, "kubectl",
                         false, "T4");
  EXPECT_EQ(r3.obj["data"], Json::parse(R"({"c":"Wg=="})"));
  EXPECT_EQ(r3.obj["metadata"]["labels"]["x"], "y");
}

TEST(ApplyTest, TwoAppliersConflictByName) {
  ApplyResult r1 = Apply(nullptr, {}, Secret({{"a", "YQ=="}}), {{"data", "a"}}, "team-a", false, "T1");
  ApplyResult r2 = Apply(&r1.obj, r1.entries, Secret({{"a", "Yg=="}}), {{"data", "a"}}, "team-b", false, "T2");
  ASSERT_EQ(r2.conflicts.size(), 1u);
  EXPECT_EQ(ApplyConflictError(r2.conflicts).message, "Apply failed with 1 conflict: conflict with \"team-a\": .data.a");
}

}  // namespace
}  // namespace sigil::kube

namespace sigil::kube {
namespace {

TEST(ParseManagedFieldsTest, WrongTypesReadAsAbsent) {
  auto es = ParseManagedFields(Json::parse(R"([{"manager":null,"operation":5,"fieldsV1":{"f:type":{}}}, 3, {"manager":"m","operation":"Apply"}])"));
  ASSERT_EQ(es.size(), 2u);
  EXPECT_EQ(es[0].manager, "");
  EXPECT_EQ(es[0].operation, "Update");
  EXPECT_EQ(es[0].fields, (FieldSet{{"type"}}));
  EXPECT_EQ(es[1].operation, "Apply");
}

}  // namespace
}  // namespace sigil::kube
