#include "sigil/base/secret_bytes.h"

#include <sodium.h>
#include <sys/mman.h>

namespace sigil {

namespace internal {
void SecureZero(void* p, size_t n) {
  if (p != nullptr && n > 0) sodium_memzero(p, n);
}
}  // namespace internal

SecretBytes::~SecretBytes() { Unlock(); }

SecretBytes::SecretBytes(SecretBytes&& o) noexcept : bytes_(std::move(o.bytes_)), locked_(o.locked_) {
  o.locked_ = false;
  o.bytes_.clear();
}

SecretBytes& SecretBytes::operator=(SecretBytes&& o) noexcept {
  if (this != &o) {
    Unlock();
    bytes_ = std::move(o.bytes_);
    locked_ = o.locked_;
    o.locked_ = false;
    o.bytes_.clear();
  }
  return *this;
}

bool SecretBytes::Lock() {
  if (locked_ || bytes_.empty()) return true;
  // mlock: never swapped. MADV_DONTDUMP: excluded from core dumps (pages are shared with other
  // heap data at the edges, which is harmless: excluding more is not a leak).
  if (sodium_mlock(bytes_.data(), bytes_.size()) != 0) return false;
  locked_ = true;
  return true;
}

void SecretBytes::Unlock() {
  if (locked_ && !bytes_.empty()) {
    // sodium_munlock zeroes the region before unlocking.
    sodium_munlock(bytes_.data(), bytes_.size());
  }
  locked_ = false;
}

bool SecretBytes::Equals(const SecretBytes& other) const {
  if (size() != other.size()) return false;
  if (empty()) return true;
  return sodium_memcmp(data(), other.data(), size()) == 0;
}

}  // namespace sigil
