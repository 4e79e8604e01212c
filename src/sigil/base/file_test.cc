#include "sigil/base/file.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include "sigil/testing/status_matchers.h"

namespace sigil::file {
namespace {

using ::sigil::testing::StatusIs;
using ::sigil::testing::TempDir;

TEST(FileTest, AtomicWriteReplacesAndSetsMode) {
  TempDir dir;
  std::string p = dir.Sub("f");
  SIGIL_ASSERT_OK(WriteFileAtomic(p, "one"));
  SIGIL_ASSERT_OK(WriteFileAtomic(p, "two", 0600));
  EXPECT_EQ(*ReadFile(p), "two");
  struct stat st {};
  ASSERT_EQ(::stat(p.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST(FileTest, PrivateFileRefusesGroupOrOtherAccess) {
  TempDir dir;
  std::string p = dir.Sub("key");
  SIGIL_ASSERT_OK(WriteFileAtomic(p, "k", 0600));
  EXPECT_TRUE(ReadPrivateFile(p).ok());
  ASSERT_EQ(::chmod(p.c_str(), 0644), 0);
  auto r = ReadPrivateFile(p);
  EXPECT_THAT(r, StatusIs(StatusCode::kPermissionDenied));
  EXPECT_NE(r.error().message().find("0644"), std::string::npos);
  ASSERT_EQ(::chmod(p.c_str(), 0640), 0);
  EXPECT_THAT(ReadPrivateFile(p), StatusIs(StatusCode::kPermissionDenied));
  EXPECT_THAT(ReadPrivateFile(dir.Sub("missing")), StatusIs(StatusCode::kNotFound));
  EXPECT_THAT(ReadPrivateFile(dir.path()), StatusIs(StatusCode::kPermissionDenied));
}

TEST(FileTest, MakePrivateDir) {
  TempDir dir;
  std::string p = dir.Sub("a/b");
  SIGIL_ASSERT_OK(MakePrivateDir(p));
  struct stat st {};
  ASSERT_EQ(::stat(p.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  SIGIL_ASSERT_OK(WriteFileAtomic(dir.Sub("file"), "x"));
  EXPECT_THAT(MakePrivateDir(dir.Sub("file")), StatusIs(StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace sigil::file
