// base/wipe_on_free.cc: a freed block no longer holds what it held. glibc hands a block of
// the same size straight back to the next allocation (its per-thread cache), so the test frees
// a string's buffer and looks at the next allocation of that size: with the replacement, every
// byte past the allocator's own bookkeeping (the first 16) is zero; with libstdc++'s operator
// delete the canary is still there. AddressSanitizer quarantines freed blocks, so there the
// next allocation is another block and the test has nothing to look at.
#include <gtest/gtest.h>
#include <malloc.h>

#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>

namespace {

#if defined(__SANITIZE_ADDRESS__)
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif

TEST(WipeOnFreeTest, AFreedStringLeavesNothingBehind) {
  if (kSanitized) GTEST_SKIP() << "ASan quarantines freed blocks";
  const std::string canary(200, 'Q');
  auto* s = new std::string(canary);  // its buffer: one block of the size below
  const void* buffer = s->data();
  size_t usable = malloc_usable_size(const_cast<void*>(buffer));
  delete s;
  auto* again = static_cast<unsigned char*>(std::malloc(canary.size() + 1));
  ASSERT_EQ(static_cast<const void*>(again), buffer) << "the allocator did not reuse the block; nothing to check";
  size_t q = 0;
  for (size_t i = 16; i < usable; ++i) q += again[i] == 'Q';
  std::free(again);
  EXPECT_EQ(q, 0u) << "bytes of the freed string survived";
}

TEST(WipeOnFreeTest, ArraysAndAlignedBlocksWork) {
  auto arr = std::make_unique<int[]>(1000);
  arr[999] = 7;
  EXPECT_EQ(arr[999], 7);
  struct alignas(64) Wide {
    char c[64];
  };
  auto w = std::make_unique<Wide>();
  EXPECT_EQ(reinterpret_cast<uintptr_t>(w.get()) % 64, 0u);
  auto* nothrow = new (std::nothrow) char[32];
  ASSERT_NE(nothrow, nullptr);
  delete[] nothrow;
}

}  // namespace
