// The kubernetes/ mount's value encoding: text is shown as it is, anything else (and text that
// looks like the marker) as the marker and base64, and every shown value takes back to its bytes.
#include "sigil/api/vault/kubernetes_mount.h"

#include <gtest/gtest.h>

#include <string>

#include "sigil/base/encoding.h"

namespace sigil::vault {
namespace {

TEST(KubernetesMountValuesTest, TextIsShownAsItIs) {
  for (std::string_view text : {"", "plain", "caf\xc3\xa9", "\xe2\x82\xac 10", "\xf0\x9f\x94\x91 key", "line\nbreak\ttab"}) {
    EXPECT_EQ(ShowValue(text), text);
  }
}

TEST(KubernetesMountValuesTest, NonTextIsMarkedAndRoundTrips) {
  const std::string_view cases[] = {
      std::string_view("\xff\x00\x01", 3),  // not UTF-8 at all, with a NUL
      "\xc0\xaf",                           // an overlong '/'
      "\xe0\x80\xaf",                       // an overlong '/' in three bytes
      "\xed\xa0\x80",                       // a UTF-16 surrogate
      "\xf4\x90\x80\x80",                   // past U+10FFFF
      "abc\xe2\x82",                        // cut short
      "\x80",                               // a lone continuation byte
      "sigil:base64:AAAA",                  // the marker itself: marked, so it reads back as text
  };
  for (std::string_view bytes : cases) {
    std::string shown = ShowValue(bytes);
    EXPECT_TRUE(shown.starts_with(kBase64Marker)) << shown;
    EXPECT_EQ(shown.substr(kBase64Marker.size()), Base64Encode(bytes));
    auto back = TakeValue(shown);
    ASSERT_TRUE(back.ok());
    EXPECT_EQ(*back, bytes);
  }
}

TEST(KubernetesMountValuesTest, TakeValueRefusesBadBase64AfterTheMarker) {
  EXPECT_EQ(TakeValue("no marker").value(), "no marker");
  EXPECT_FALSE(TakeValue("sigil:base64:%%%").ok());
  EXPECT_EQ(TakeValue("sigil:base64:").value(), "");
}

}  // namespace
}  // namespace sigil::vault
