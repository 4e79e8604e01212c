// base/secret_bytes.h: a byte buffer for secret material (keys, plaintext secret values).
//
// The buffer is zeroed (sodium_memzero, which the compiler cannot elide) when it is freed or
// reallocated. It cannot be printed: there is no operator<<, no implicit conversion to string,
// and a deleted formatter overload catches accidental logging at compile time. It is move-only;
// copies are explicit (Clone) so that every copy of a secret is visible in review.
// Lock() additionally keeps the pages out of swap and out of core dumps (mlock +
// MADV_DONTDUMP); used for key material. Thread safety: as a std::vector.
#pragma once

#include <cstddef>
#include <cstdint>
#include <iosfwd>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace sigil {

namespace internal {
void SecureZero(void* p, size_t n);

template <typename T>
struct ZeroingAllocator {
  using value_type = T;
  ZeroingAllocator() = default;
  template <typename U>
  ZeroingAllocator(const ZeroingAllocator<U>&) {}  // NOLINT(google-explicit-constructor)
  T* allocate(size_t n) { return std::allocator<T>().allocate(n); }
  void deallocate(T* p, size_t n) {
    SecureZero(p, n * sizeof(T));
    std::allocator<T>().deallocate(p, n);
  }
  template <typename U>
  bool operator==(const ZeroingAllocator<U>&) const { return true; }
};
}  // namespace internal

class SecretBytes {
 public:
  SecretBytes() = default;
  explicit SecretBytes(size_t n) : bytes_(n) {}
  explicit SecretBytes(std::string_view s) : bytes_(s.begin(), s.end()) {}
  SecretBytes(const uint8_t* p, size_t n) : bytes_(p, p + n) {}
  ~SecretBytes();

  SecretBytes(SecretBytes&& o) noexcept;
  SecretBytes& operator=(SecretBytes&& o) noexcept;
  SecretBytes(const SecretBytes&) = delete;
  SecretBytes& operator=(const SecretBytes&) = delete;

  SecretBytes Clone() const { return SecretBytes(data(), size()); }

  uint8_t* data() { return bytes_.data(); }
  const uint8_t* data() const { return bytes_.data(); }
  size_t size() const { return bytes_.size(); }
  bool empty() const { return bytes_.empty(); }
  void resize(size_t n) { bytes_.resize(n); }
  void clear() { bytes_.clear(); }
  void Append(std::string_view s) { bytes_.insert(bytes_.end(), s.begin(), s.end()); }

  std::span<const uint8_t> span() const { return {bytes_.data(), bytes_.size()}; }
  // A view of the bytes. The caller must not log, copy into an unzeroed buffer, or keep it
  // past the life of this object.
  std::string_view view() const {
    return {reinterpret_cast<const char*>(bytes_.data()), bytes_.size()};
  }

  // Keeps the buffer in RAM and out of core dumps until destruction. Call after the final
  // size is set; returns false if the kernel refused (RLIMIT_MEMLOCK), which callers log.
  bool Lock();

  // Constant-time equality of contents (lengths are not secret).
  bool Equals(const SecretBytes& other) const;

 private:
  void Unlock();
  std::vector<uint8_t, internal::ZeroingAllocator<uint8_t>> bytes_;
  bool locked_ = false;
};

// Deliberately undefined: printing a SecretBytes is a compile error, not a leak.
std::ostream& operator<<(std::ostream&, const SecretBytes&) = delete;

}  // namespace sigil
