#include "sigil/crypto/random.h"

#include <openssl/crypto.h>
#include <pthread.h>
#include <sodium.h>

#include <algorithm>
#include <atomic>
#include <cstring>

#include "sigil/base/check.h"

namespace sigil::crypto {

void Init() {
  static const bool ok = sodium_init() >= 0;
  SIGIL_CHECK(ok) << "libsodium initialisation failed";
}

void RandomFill(std::span<uint8_t> out) {
  Init();
  randombytes_buf(out.data(), out.size());
}

std::string RandomNonce(size_t n) {
  // Nonces and IVs are public once used, so they may be drawn from a per-thread buffer of OS
  // randomness instead of one getrandom(2) call each (~1 us; OpenSSL 3.0's RAND_bytes measured
  // ~1.8 us). Consumed bytes are zeroed. The buffer is discarded in a forked child, which must
  // never reuse its parent's nonces.
  struct Pool {
    uint8_t bytes[4096];
    size_t used = sizeof(bytes);
    uint64_t generation = 0;
  };
  thread_local Pool pool;
  // getpid() is a system call in current glibc, so forks are detected with an atfork counter.
  static std::atomic<uint64_t> fork_generation{1};
  static const bool registered = [] {
    pthread_atfork(nullptr, nullptr, [] { fork_generation.fetch_add(1); });
    return true;
  }();
  (void)registered;
  std::string out(n, '\0');
  if (n > sizeof(pool.bytes) / 4) {
    RandomFill({reinterpret_cast<uint8_t*>(out.data()), n});
    return out;
  }
  uint64_t generation = fork_generation.load(std::memory_order_relaxed);
  if (pool.used + n > sizeof(pool.bytes) || pool.generation != generation) {
    RandomFill({pool.bytes, sizeof(pool.bytes)});
    pool.used = 0;
    pool.generation = generation;
  }
  std::memcpy(out.data(), pool.bytes + pool.used, n);
  sodium_memzero(pool.bytes + pool.used, n);
  pool.used += n;
  return out;
}

SecretBytes RandomString(size_t n, std::string_view alphabet) {
  Init();
  SIGIL_CHECK(!alphabet.empty() && alphabet.size() <= 256) << "RandomString: bad alphabet";
  SecretBytes out(n);
  for (size_t i = 0; i < n; ++i) {
    out.data()[i] = static_cast<uint8_t>(alphabet[randombytes_uniform(static_cast<uint32_t>(alphabet.size()))]);
  }
  return out;
}

SecretBytes RandomPassword(size_t n) {
  static constexpr std::string_view kAlphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-";
  SIGIL_CHECK(n >= 4) << "RandomPassword: too short to hold every kind";
  for (;;) {
    SecretBytes p = RandomString(n, kAlphabet);
    std::string_view v = p.view();
    if (std::any_of(v.begin(), v.end(), [](char c) { return c >= 'a' && c <= 'z'; }) &&
        std::any_of(v.begin(), v.end(), [](char c) { return c >= 'A' && c <= 'Z'; }) &&
        std::any_of(v.begin(), v.end(), [](char c) { return c >= '0' && c <= '9'; }) && v.find('-') != std::string_view::npos) {
      return p;
    }
  }
}

SecretBytes RandomKey(size_t n) {
  SecretBytes k(n);
  RandomFill({k.data(), k.size()});
  return k;
}

std::string RandomBytes(size_t n) {
  std::string s(n, '\0');
  RandomFill({reinterpret_cast<uint8_t*>(s.data()), s.size()});
  return s;
}

uint64_t RandomUint64() {
  uint64_t v;
  RandomFill({reinterpret_cast<uint8_t*>(&v), sizeof(v)});
  return v;
}

std::string RandomUuid() {
  std::string b = RandomBytes(16);
  b[6] = static_cast<char>((b[6] & 0x0f) | 0x40);
  b[8] = static_cast<char>((b[8] & 0x3f) | 0x80);
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < b.size(); ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out += '-';
    out += kHex[static_cast<uint8_t>(b[i]) >> 4];
    out += kHex[static_cast<uint8_t>(b[i]) & 0xf];
  }
  return out;
}

bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  if (a.empty()) return true;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace sigil::crypto
