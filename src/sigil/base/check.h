// base/check.h: SIGIL_CHECK for the impossible (fatal in every build), SIGIL_DCHECK for
// invariants (debug builds). Never use them on request data: untrusted input gets a Status.
#pragma once

#include <sstream>
#include <string>

namespace sigil::internal {

// Collects a message and aborts when destroyed. Used only by the macros below.
class CheckFailure {
 public:
  CheckFailure(const char* file, int line, const char* condition);
  [[noreturn]] ~CheckFailure();
  std::ostream& stream() { return stream_; }

 private:
  std::ostringstream stream_;
};

// Lets `SIGIL_CHECK(x) << "msg"` compile as a void expression.
struct Voidify {
  void operator&(std::ostream&) {}
};

}  // namespace sigil::internal

#define SIGIL_CHECK(cond)                 \
  (cond) ? (void)0                         \
         : ::sigil::internal::Voidify() &  \
               ::sigil::internal::CheckFailure(__FILE__, __LINE__, #cond).stream()

#ifdef NDEBUG
#define SIGIL_DCHECK(cond) \
  true ? (void)0 : ::sigil::internal::Voidify() & ::sigil::internal::CheckFailure(__FILE__, __LINE__, #cond).stream()
#else
#define SIGIL_DCHECK(cond) SIGIL_CHECK(cond)
#endif
