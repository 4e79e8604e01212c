#include "sigil/base/status.h"
#include "sigil/base/status_http.h"

#include <gtest/gtest.h>

#include <memory>

#include "sigil/base/result.h"
#include "sigil/testing/status_matchers.h"

namespace sigil {
namespace {

using ::sigil::testing::StatusIs;

Result<int> Half(int x) {
  if (x % 2 != 0) return InvalidArgumentError("odd");
  return x / 2;
}

Result<int> Quarter(int x) {
  SIGIL_ASSIGN_OR_RETURN(int h, Half(x));
  SIGIL_ASSIGN_OR_RETURN(int q, Half(h));
  return q;
}

Status CheckPositive(int x) {
  if (x <= 0) return OutOfRangeError("not positive");
  return OkStatus();
}

Status Both(int a, int b) {
  SIGIL_RETURN_IF_ERROR(CheckPositive(a));
  SIGIL_RETURN_IF_ERROR(CheckPositive(b));
  return OkStatus();
}

TEST(StatusTest, CodesAndMessages) {
  Status s = NotFoundError("secret default/x");
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
  EXPECT_EQ(s.ToString(), "NOT_FOUND: secret default/x");
  EXPECT_EQ(s.WithContext("get").message(), "get: secret default/x");
  EXPECT_TRUE(OkStatus().WithContext("x").ok());
}

TEST(StatusTest, ReturnIfErrorPropagatesFirstFailure) {
  SIGIL_EXPECT_OK(Both(1, 2));
  EXPECT_THAT(Both(-1, 2), StatusIs(StatusCode::kOutOfRange));
  EXPECT_THAT(Both(1, 0), StatusIs(StatusCode::kOutOfRange));
}

TEST(ResultTest, ValueAndError) {
  EXPECT_EQ(*Quarter(8), 2);
  EXPECT_THAT(Quarter(6), StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(Quarter(3), StatusIs(StatusCode::kInvalidArgument));
}

TEST(ResultTest, MoveOnlyValues) {
  Result<std::unique_ptr<int>> r = std::make_unique<int>(7);
  ASSERT_TRUE(r.has_value());
  std::unique_ptr<int> p = std::move(r).value();
  EXPECT_EQ(*p, 7);
}

TEST(ResultDeathTest, ValueOfErrorAborts) {
  Result<int> r = NotFoundError("x");
  EXPECT_DEATH((void)r.value(), "value\\(\\) of an error Result");
}

}  // namespace
}  // namespace sigil

namespace sigil {
namespace {

// The one table: every code has an HTTP status; the faces and the registry all map through it.
TEST(StatusHttpTest, OneTableForEveryCode) {
  EXPECT_EQ(HttpErrorFor(StatusCode::kNotFound).status, 404);
  EXPECT_EQ(HttpErrorFor(StatusCode::kAlreadyExists).reason, "AlreadyExists");
  EXPECT_EQ(HttpErrorFor(StatusCode::kResourceExhausted).status, 507);
  EXPECT_EQ(HttpErrorFor(StatusCode::kUnavailable).status, 503);
  EXPECT_EQ(HttpErrorFor(StatusCode::kDataLoss).status, 500);
  // 501 is not 405: MethodNotAllowed was the wrong reason for kUnimplemented.
  EXPECT_EQ(HttpErrorFor(StatusCode::kUnimplemented).status, 501);
  EXPECT_EQ(HttpErrorFor(StatusCode::kUnimplemented).reason, "");
  for (int c = 0; c <= 16; ++c) {
    HttpError e = HttpErrorFor(static_cast<StatusCode>(c));
    EXPECT_GE(e.status, 200) << c;
    EXPECT_LT(e.status, 600) << c;
  }
}

}  // namespace
}  // namespace sigil
