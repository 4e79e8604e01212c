// The generated envelope must produce the exact bytes kube-apiserver stores: "k8s\0" then an
// Unknown with typeMeta {apiVersion, kind} and raw. Expected bytes written out by hand from the
// protobuf wire format (field 1 LEN = 0x0a, field 2 LEN = 0x12, ...).
#include <gtest/gtest.h>

#include "sigil/base/encoding.h"
#include "sigil/proto/kmsv2.pb.h"
#include "sigil/proto/runtime.pb.h"

namespace sigil {
namespace {

TEST(ProtoTest, UnknownEnvelopeWireBytes) {
  k8s::runtime::Unknown u;
  u.mutable_typemeta()->set_apiversion("v1");
  u.mutable_typemeta()->set_kind("Secret");
  u.set_raw("\x0a\x00", 2);
  std::string wire;
  ASSERT_TRUE(u.SerializeToString(&wire));
  // 0a 0c | 0a 02 "v1" | 12 06 "Secret" ; 12 02 0a 00
  EXPECT_EQ(HexEncode(wire), "0a0c0a0276311206536563726574" "12020a00");
  k8s::runtime::Unknown back;
  ASSERT_TRUE(back.ParseFromString(wire));
  EXPECT_EQ(back.typemeta().kind(), "Secret");
}

TEST(ProtoTest, KmsV2EncryptedObjectRoundTrip) {
  k8s::kmsv2::EncryptedObject o;
  o.set_encrypteddata("data");
  o.set_keyid("key-1");
  o.set_encrypteddeksource("dek");
  o.set_encrypteddeksourcetype(k8s::kmsv2::HKDF_SHA256_XNONCE_AES_GCM_SEED);
  std::string wire;
  ASSERT_TRUE(o.SerializeToString(&wire));
  EXPECT_EQ(HexEncode(wire), "0a0464617461" "12056b65792d31" "1a0364656b" "2801");
}

}  // namespace
}  // namespace sigil
