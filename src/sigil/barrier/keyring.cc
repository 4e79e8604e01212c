#include "sigil/barrier/keyring.h"

#include <chrono>

#include "sigil/crypto/aes.h"
#include "sigil/crypto/random.h"

namespace sigil::barrier {
namespace {

// Plaintext layout (all integers big-endian), held only in SecretBytes:
//   version u8 = 1 | active u32 | count u32 | count x (term u32 | created i64 | key[32])
constexpr uint8_t kVersion = 1;
constexpr size_t kKeySize = 32;
constexpr size_t kEntrySize = 4 + 8 + kKeySize;

void PutBE(uint64_t v, int bytes, SecretBytes* out) {
  for (int i = bytes - 1; i >= 0; --i) out->Append(std::string(1, static_cast<char>((v >> (8 * i)) & 0xff)));
}

uint64_t GetBE(const uint8_t* p, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v = (v << 8) | p[i];
  return v;
}

}  // namespace

Keyring Keyring::New(Clock* clock) {
  Keyring k;
  k.Rotate(clock);
  return k;
}

uint32_t Keyring::Rotate(Clock* clock) {
  uint32_t term = active_ + 1;
  KeyTerm t;
  t.term = term;
  t.created_unix = std::chrono::duration_cast<std::chrono::seconds>(clock->Now().time_since_epoch()).count();
  t.key = crypto::RandomKey(kKeySize);
  t.key.Lock();
  terms_[term] = std::move(t);
  active_ = term;
  return term;
}

const KeyTerm* Keyring::Term(uint32_t term) const {
  auto it = terms_.find(term);
  return it == terms_.end() ? nullptr : &it->second;
}

Keyring Keyring::Clone() const {
  Keyring k;
  k.active_ = active_;
  for (const auto& [term, t] : terms_) {
    KeyTerm c{t.term, t.created_unix, t.key.Clone()};
    c.key.Lock();
    k.terms_[term] = std::move(c);
  }
  return k;
}

Result<std::string> Keyring::Seal(const SecretBytes& root_key) const {
  SecretBytes plain;
  plain.Append(std::string(1, static_cast<char>(kVersion)));
  PutBE(active_, 4, &plain);
  PutBE(terms_.size(), 4, &plain);
  for (const auto& [term, t] : terms_) {
    PutBE(term, 4, &plain);
    PutBE(static_cast<uint64_t>(t.created_unix), 8, &plain);
    plain.Append(t.key.view());
  }
  std::string nonce = crypto::RandomNonce(crypto::kGcmNonceSize);
  SIGIL_ASSIGN_OR_RETURN(std::string sealed, crypto::AesGcmSeal(root_key, nonce, plain.view(), kKeyringStorageKey));
  return std::string(kKeyringPrefix) + nonce + sealed;
}

Result<Keyring> Keyring::Unseal(const SecretBytes& root_key, std::string_view stored) {
  if (!stored.starts_with(kKeyringPrefix)) return DataLossError("keyring has an unknown format");
  std::string_view body = stored.substr(kKeyringPrefix.size());
  if (body.size() < crypto::kGcmNonceSize + crypto::kGcmTagSize) return DataLossError("keyring is truncated");
  auto plain = crypto::AesGcmOpen(root_key, body.substr(0, crypto::kGcmNonceSize),
                                  body.substr(crypto::kGcmNonceSize), kKeyringStorageKey);
  if (!plain.ok()) {
    return DataLossError("the keyring cannot be decrypted with this root key (wrong key file, or the "
                         "keyring was altered)");
  }
  const uint8_t* p = plain->data();
  size_t n = plain->size();
  if (n < 9 || p[0] != kVersion) return DataLossError("keyring has an unsupported version");
  Keyring k;
  k.active_ = static_cast<uint32_t>(GetBE(p + 1, 4));
  uint64_t count = GetBE(p + 5, 4);
  if (count == 0 || n != 9 + count * kEntrySize) return DataLossError("keyring is malformed");
  for (uint64_t i = 0; i < count; ++i) {
    const uint8_t* e = p + 9 + i * kEntrySize;
    KeyTerm t;
    t.term = static_cast<uint32_t>(GetBE(e, 4));
    t.created_unix = static_cast<int64_t>(GetBE(e + 4, 8));
    t.key = SecretBytes(e + 12, kKeySize);
    t.key.Lock();
    k.terms_[t.term] = std::move(t);
  }
  if (k.Term(k.active_) == nullptr) return DataLossError("keyring's active term is missing");
  return k;
}

}  // namespace sigil::barrier
