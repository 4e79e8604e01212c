// testing/status_matchers.h: StatusIs(code) and IsOk() for Status and Result, so tests state
// the exact failure they expect (never just "not ok").
#pragma once

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "sigil/base/result.h"
#include "sigil/base/status.h"

namespace sigil::testing {

inline const Status& GetStatus(const Status& s) { return s; }
template <typename T>
Status GetStatus(const Result<T>& r) {
  return r.error();
}

MATCHER_P(StatusIs, code, "has status code " + ::testing::PrintToString(code)) {
  Status s = GetStatus(arg);
  if (s.code() != code) {
    *result_listener << "status is " << s.ToString();
    return false;
  }
  return true;
}

MATCHER(IsOk, "is OK") {
  Status s = GetStatus(arg);
  if (!s.ok()) *result_listener << "status is " << s.ToString();
  return s.ok();
}

// A fresh directory under $TMPDIR, removed when the object dies.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "sigil-test-XXXXXX").string();
    char* p = ::mkdtemp(tmpl.data());
    if (p == nullptr) std::abort();
    path_ = p;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }
  std::string Sub(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

}  // namespace sigil::testing

#define SIGIL_ASSERT_OK(expr) ASSERT_THAT((expr), ::sigil::testing::IsOk())
#define SIGIL_EXPECT_OK(expr) EXPECT_THAT((expr), ::sigil::testing::IsOk())
#define SIGIL_ASSERT_OK_AND_ASSIGN(lhs, rexpr)                  \
  auto SIGIL_STATUS_CONCAT_(sigil_t_, __LINE__) = (rexpr);      \
  ASSERT_THAT(SIGIL_STATUS_CONCAT_(sigil_t_, __LINE__), ::sigil::testing::IsOk()); \
  lhs = std::move(SIGIL_STATUS_CONCAT_(sigil_t_, __LINE__)).value()
