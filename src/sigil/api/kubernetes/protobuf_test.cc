#include "sigil/api/kubernetes/protobuf.h"

#include <gtest/gtest.h>

#include "sigil/base/encoding.h"
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
