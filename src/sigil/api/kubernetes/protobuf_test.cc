#include "sigil/api/kubernetes/protobuf.h"

#include <gtest/gtest.h>

#include "sigil/base/encoding.h"
#include "sigil/proto/core.pb.h"
#include "sigil/proto/runtime.pb.h"
#include "sigil/testing/status_matchers.h"

namespace sigil::kube {
namespace {

using ::sigil::testing::StatusIs;

// The 77 bytes kubectl 1.32 sent for
//   kubectl create secret generic s1 --from-literal=user=admin --from-literal=pass='p@ss w'
// (../shared/reference/kubernetes.md section 2). Go's encoder writes empty strings explicitly.
const char kObserved[] =
    "6b387300"                                  // k8s\0
    "0a0c0a0276311206536563726574"              // typeMeta {apiVersion v1, kind Secret}
    "1235"                                      // raw, 53 bytes:
    "0a120a0273311200" "1a0022002a0032003800" "4200"  // metadata {name s1, empty fields}
    "120e0a04706173731206704073732077"          // data[pass] = "p@ss w"
    "120d0a0475736572120561646d696e"            // data[user] = "admin"
    "1a00"                                      // type ""
    "1a002200";                                 // contentEncoding, contentType

TEST(ProtobufTest, DecodesTheBodyKubectlSends) {
  std::string body = *HexDecode(kObserved);
  ASSERT_EQ(body.size(), 77u);
  auto j = DecodeProtobufObject(body, "Secret");
  ASSERT_TRUE(j.ok()) << j.error();
  EXPECT_EQ((*j)["metadata"]["name"], "s1");
  EXPECT_FALSE((*j)["metadata"].contains("namespace"));
  EXPECT_EQ((*j)["data"]["pass"], Base64Encode("p@ss w"));
  EXPECT_EQ((*j)["data"]["user"], Base64Encode("admin"));
  EXPECT_FALSE(j->contains("type"));  // empty: the server defaults it to Opaque
}

TEST(ProtobufTest, RejectsWrongKindAndGarbage) {
  std::string body = *HexDecode(kObserved);
  EXPECT_THAT(DecodeProtobufObject(body, "Namespace"), StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(DecodeProtobufObject("k8s", "Secret"), StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(DecodeProtobufObject(std::string("k8s\0\xff\xff\xff", 7), "Secret"), StatusIs(StatusCode::kInvalidArgument));
  std::string truncated = body.substr(0, 40);
  EXPECT_THAT(DecodeProtobufObject(truncated, "Secret"), StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(DecodeProtobufObject("{\"kind\":\"Secret\"}", "Secret"), StatusIs(StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace sigil::kube

namespace sigil::kube {
namespace {

// Round trip: a Secret and a Namespace built with the generated classes of our .proto files
// (upstream field numbers), wrapped as kube-apiserver wraps them, decode to the JSON a client
// would have sent.
std::string Wrap(const std::string& kind, const std::string& raw) {
  k8s::runtime::Unknown u;
  u.mutable_typemeta()->set_apiversion("v1");
  u.mutable_typemeta()->set_kind(kind);
  u.set_raw(raw);
  return std::string("k8s\0", 4) + u.SerializeAsString();
}

TEST(ProtobufTest, SecretRoundTrip) {
  k8s::core::Secret s;
  auto* m = s.mutable_metadata();
  m->set_name("db");
  m->set_namespace_("team");
  (*m->mutable_labels())["app"] = "demo";
  (*m->mutable_annotations())["note"] = "x";
  m->add_finalizers("keep");
  (*s.mutable_data())["pw"] = std::string("p\0w", 3);
  (*s.mutable_stringdata())["user"] = "admin";
  s.set_type("kubernetes.io/basic-auth");
  s.set_immutable(true);
  auto j = DecodeProtobufObject(Wrap("Secret", s.SerializeAsString()), "Secret");
  ASSERT_TRUE(j.ok()) << j.error();
  EXPECT_EQ(*j, Json::parse(R"({"apiVersion":"v1","kind":"Secret",
      "metadata":{"name":"db","namespace":"team","labels":{"app":"demo"},"annotations":{"note":"x"},"finalizers":["keep"]},
      "data":{"pw":"cAB3"},"stringData":{"user":"admin"},"type":"kubernetes.io/basic-auth","immutable":true})"))
      << j->dump();
}

TEST(ProtobufTest, NamespaceRoundTrip) {
  k8s::core::Namespace n;
  n.mutable_metadata()->set_name("team");
  (*n.mutable_metadata()->mutable_labels())["env"] = "prod";
  auto j = DecodeProtobufObject(Wrap("Namespace", n.SerializeAsString()), "Namespace");
  ASSERT_TRUE(j.ok()) << j.error();
  EXPECT_EQ((*j)["metadata"]["name"], "team");
  EXPECT_EQ((*j)["metadata"]["labels"]["env"], "prod");
  EXPECT_FALSE(DecodeProtobufObject(Wrap("Namespace", n.SerializeAsString()), "Secret").ok());
}

}  // namespace
}  // namespace sigil::kube
