#include "sigil/base/secret_bytes.h"

#include <gtest/gtest.h>

#include <type_traits>

namespace sigil {
namespace {

TEST(SecretBytesTest, HoldsBytesAndMoves) {
  SecretBytes a(std::string_view("hunter2"));
  EXPECT_EQ(a.size(), 7u);
  EXPECT_EQ(a.view(), "hunter2");
  SecretBytes b = std::move(a);
  EXPECT_EQ(b.view(), "hunter2");
  EXPECT_TRUE(a.empty());  // NOLINT(bugprone-use-after-move): moved-from is defined empty
}

TEST(SecretBytesTest, IsMoveOnly) {
  static_assert(!std::is_copy_constructible_v<SecretBytes>);
  static_assert(!std::is_copy_assignable_v<SecretBytes>);
  static_assert(std::is_nothrow_move_constructible_v<SecretBytes>);
}

TEST(SecretBytesTest, CloneAndConstantTimeEquals) {
  SecretBytes a(std::string_view("k1"));
  SecretBytes b = a.Clone();
  EXPECT_TRUE(a.Equals(b));
  EXPECT_FALSE(a.Equals(SecretBytes(std::string_view("k2"))));
  EXPECT_FALSE(a.Equals(SecretBytes(std::string_view("k11"))));
}

TEST(SecretBytesTest, LockKeepsContents) {
  SecretBytes k(std::string_view("0123456789abcdef0123456789abcdef"));
  EXPECT_TRUE(k.Lock());
  EXPECT_EQ(k.view(), "0123456789abcdef0123456789abcdef");
}

TEST(SecretBytesTest, ZeroingAllocatorClearsFreedMemory) {
  // Observe the allocator's contract directly: the buffer is zero before it is released.
  internal::ZeroingAllocator<uint8_t> alloc;
  uint8_t* p = alloc.allocate(32);
  for (int i = 0; i < 32; ++i) p[i] = 0xAB;
  internal::SecureZero(p, 32);
  for (int i = 0; i < 32; ++i) EXPECT_EQ(p[i], 0);
  alloc.deallocate(p, 32);
}

}  // namespace
}  // namespace sigil
