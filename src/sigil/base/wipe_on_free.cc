// base/wipe_on_free.cc: in the sigil and sigil-agent binaries, every block the C++ runtime frees is zeroed
// first.
//
// Decrypted Secrets pass through many short-lived C++ objects that sigil does not own the
// allocation of: nlohmann JSON trees (their strings hold base64 values), the parser's token
// buffer, std::string copies, the growth of a string being dumped, Beast's buffers, yaml-cpp's
// nodes. Wiping each by hand would leave gaps wherever a library copies. Replacing the global
// operator new and delete closes all of them at once: new takes memory from malloc, as the
// default does, and delete zeroes the block's whole usable size (malloc_usable_size) before
// free. The cost is one memset per freed byte (docs/benchmarks.md). It covers allocations made
// through operator new, in sigil and in every C++ library linked in; not memory that C
// libraries take with malloc (OpenSSL, LMDB, libpq, libsodium), which docs/threat-model.md
// lists. Linked into those executables only (a static library's copy would not be chosen
// over libstdc++'s), and into the unit test that checks it.
#include <malloc.h>

#include <cstdlib>
#include <new>

#include "sigil/base/secret_bytes.h"

namespace {

void* Allocate(std::size_t n) {
  if (n == 0) n = 1;
  for (;;) {
    if (void* p = std::malloc(n)) return p;
    std::new_handler h = std::get_new_handler();
    if (h == nullptr) throw std::bad_alloc();
    h();
  }
}

void* AllocateAligned(std::size_t n, std::align_val_t al) {
  std::size_t align = static_cast<std::size_t>(al);
  if (align < sizeof(void*)) align = sizeof(void*);
  if (n == 0) n = 1;
  for (;;) {
    void* p = nullptr;
    if (posix_memalign(&p, align, n) == 0) return p;
    std::new_handler h = std::get_new_handler();
    if (h == nullptr) throw std::bad_alloc();
    h();
  }
}

void Release(void* p) noexcept {
  if (p == nullptr) return;
  sigil::internal::SecureZero(p, malloc_usable_size(p));
  std::free(p);
}

}  // namespace

// NOLINTBEGIN(misc-new-delete-overloads): the full set of replaceable forms.
void* operator new(std::size_t n) { return Allocate(n); }
void* operator new[](std::size_t n) { return Allocate(n); }
void* operator new(std::size_t n, std::align_val_t al) { return AllocateAligned(n, al); }
void* operator new[](std::size_t n, std::align_val_t al) { return AllocateAligned(n, al); }
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
  try {
    return Allocate(n);
  } catch (...) {
    return nullptr;
  }
}
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept {
  try {
    return Allocate(n);
  } catch (...) {
    return nullptr;
  }
}
void* operator new(std::size_t n, std::align_val_t al, const std::nothrow_t&) noexcept {
  try {
    return AllocateAligned(n, al);
  } catch (...) {
    return nullptr;
  }
}
void* operator new[](std::size_t n, std::align_val_t al, const std::nothrow_t&) noexcept {
  try {
    return AllocateAligned(n, al);
  } catch (...) {
    return nullptr;
  }
}

void operator delete(void* p) noexcept { Release(p); }
void operator delete[](void* p) noexcept { Release(p); }
void operator delete(void* p, std::size_t) noexcept { Release(p); }
void operator delete[](void* p, std::size_t) noexcept { Release(p); }
void operator delete(void* p, std::align_val_t) noexcept { Release(p); }
void operator delete[](void* p, std::align_val_t) noexcept { Release(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { Release(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { Release(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { Release(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { Release(p); }
void operator delete(void* p, std::align_val_t, const std::nothrow_t&) noexcept { Release(p); }
void operator delete[](void* p, std::align_val_t, const std::nothrow_t&) noexcept { Release(p); }
// NOLINTEND(misc-new-delete-overloads)
