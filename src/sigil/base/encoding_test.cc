#include "sigil/base/encoding.h"

#include <gtest/gtest.h>

#include "sigil/testing/status_matchers.h"

namespace sigil {
namespace {

using ::sigil::testing::StatusIs;

TEST(EncodingTest, Base64RoundTripAndStrictness) {
  EXPECT_EQ(Base64Encode(""), "");
  EXPECT_EQ(Base64Encode("f"), "Zg==");
  EXPECT_EQ(Base64Encode("foobar"), "Zm9vYmFy");
  EXPECT_EQ(*Base64Decode("Zm9vYg=="), "foob");
  EXPECT_EQ(*Base64Decode(""), "");
  EXPECT_THAT(Base64Decode("Zm9vYg"), StatusIs(StatusCode::kInvalidArgument));   // no padding
  EXPECT_THAT(Base64Decode("Zm9v!mFy"), StatusIs(StatusCode::kInvalidArgument));  // bad char
  EXPECT_THAT(Base64Decode("Zm9vYmFy\n"), StatusIs(StatusCode::kInvalidArgument));
  auto s = Base64DecodeSecret("c2VjcmV0");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->view(), "secret");
}

TEST(EncodingTest, Hex) {
  EXPECT_EQ(HexEncode(std::string("\x00\xff\x10", 3)), "00ff10");
  EXPECT_EQ(*HexDecode("00ff10"), std::string("\x00\xff\x10", 3));
  EXPECT_THAT(HexDecode("0"), StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(HexDecode("zz"), StatusIs(StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace sigil

namespace sigil {
namespace {

TEST(JsonDeeperThanTest, CountsBracketsOutsideStrings) {
  EXPECT_FALSE(JsonDeeperThan(R"({"a":[[1]]})", 3));
  EXPECT_TRUE(JsonDeeperThan(R"({"a":[[[1]]]})", 3));
  EXPECT_FALSE(JsonDeeperThan(R"({"a":"[[[[[[\"{{{{"})", 1));  // inside a string, escaped quote too
  EXPECT_TRUE(JsonDeeperThan(std::string(100000, '['), 64));
  EXPECT_FALSE(JsonDeeperThan("", 0));
}

}  // namespace
}  // namespace sigil
