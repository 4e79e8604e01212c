// base/result.h: Result<T>, a value or a non-OK Status, named like std::expected.
//
// g++ 12 has std::expected only in C++23 and clang 14 (used for fuzzing) not at all, hence this
// small type. Accessing value() of an error Result is a programming error and aborts.
// Thread safety: a value type, as safe as T.
#pragma once

#include <cstdlib>
#include <type_traits>
#include <utility>
#include <variant>

#include "sigil/base/check.h"
#include "sigil/base/status.h"

namespace sigil {

template <typename T>
class [[nodiscard]] Result {
 public:
  static_assert(!std::is_same_v<std::decay_t<T>, Status>, "Result<Status> is meaningless");

  // Implicit from a value and from a (non-OK) Status, so `return value;` and
  // `return NotFoundError(...)` both work.
  Result(const T& v) : v_(std::in_place_index<0>, v) {}  // NOLINT(google-explicit-constructor)
  Result(T&& v) : v_(std::in_place_index<0>, std::move(v)) {}  // NOLINT
  Result(Status s) : v_(std::in_place_index<1>, std::move(s)) {  // NOLINT
    SIGIL_CHECK(!std::get<1>(v_).ok()) << "Result constructed from an OK Status";
  }
  template <typename U, typename = std::enable_if_t<std::is_constructible_v<T, U&&> &&
                                                    !std::is_same_v<std::decay_t<U>, T> &&
                                                    !std::is_same_v<std::decay_t<U>, Status> &&
                                                    !std::is_same_v<std::decay_t<U>, Result>>>
  Result(U&& u) : v_(std::in_place_index<0>, T(std::forward<U>(u))) {}  // NOLINT

  bool has_value() const { return v_.index() == 0; }
  bool ok() const { return has_value(); }
  explicit operator bool() const { return has_value(); }

  T& value() & {
    CheckValue();
    return std::get<0>(v_);
  }
  const T& value() const& {
    CheckValue();
    return std::get<0>(v_);
  }
  T&& value() && {
    CheckValue();
    return std::get<0>(std::move(v_));
  }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  // The error; OK status when there is a value.
  Status error() const& { return has_value() ? Status() : std::get<1>(v_); }
  Status error() && { return has_value() ? Status() : std::get<1>(std::move(v_)); }
  Status status() const { return error(); }

 private:
  void CheckValue() const {
    SIGIL_CHECK(has_value()) << "value() of an error Result: " << std::get<1>(v_).ToString();
  }
  std::variant<T, Status> v_;
};

}  // namespace sigil
