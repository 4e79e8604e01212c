// barrier/transformer.h: prefix-tagged value transformers with kube-apiserver's exact on-disk
// formats (k8s.io/apiserver pkg/storage/value; docs/formats.md):
//
//   identity   P
//   aescbc     "k8s:enc:aescbc:v1:<key>:"    IV(16) | AES-CBC(P | PKCS#7 pad)          no AAD
//   aesgcm     "k8s:enc:aesgcm:v1:<key>:"    nonce(12) | AES-GCM(P, AAD) | tag(16)
//   secretbox  "k8s:enc:secretbox:v1:<key>:" nonce(24) | tag(16) | XSalsa20(P)         no AAD
//
// The AAD passed in is the full storage key (e.g. /registry/secrets/default/db), so an AES-GCM
// value copied under another key fails to decrypt. aescbc and secretbox cannot bind the key;
// that is upstream's format and the reason sigil's own default is AES-GCM.
// Thread safety: transformers are immutable after construction and thread-safe.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "sigil/base/result.h"
#include "sigil/base/secret_bytes.h"

namespace sigil::barrier {

class Transformer {
 public:
  virtual ~Transformer() = default;
  // The prefix that marks values this transformer wrote; empty for identity.
  virtual const std::string& prefix() const = 0;
  // A short description for logs and errors ("aesgcm key1"), never key material.
  virtual std::string name() const = 0;
  virtual Result<std::string> Encrypt(std::string_view plaintext, std::string_view aad) const = 0;
  // `stored` includes the prefix. kDataLoss when the value does not authenticate or parse;
  // kUnavailable or kDeadlineExceeded when a key service needed to open it did not answer.
  // Sets *stale when the value opened but was not written with the current key (a KMS v2
  // value of an older key ID); the caller starts with *stale false. With `may_call_out` false
  // the caller cannot wait (the storage commit path delivering watch events): a transformer
  // that would have to ask a key service answers kUnavailable instead.
  virtual Result<SecretBytes> Decrypt(std::string_view stored, std::string_view aad, bool* stale,
                                      bool may_call_out) const = 0;
  // Whether the transformer can work now: a KMS provider's plugin answers and is healthy.
  virtual Status Health() const { return OkStatus(); }
};

std::unique_ptr<Transformer> NewIdentityTransformer();
// `key` must be 16, 24 or 32 bytes (kInvalidArgument otherwise).
Result<std::unique_ptr<Transformer>> NewAesCbcTransformer(std::string key_name, SecretBytes key);
Result<std::unique_ptr<Transformer>> NewAesGcmTransformer(std::string key_name, SecretBytes key);
// `key` must be 32 bytes.
Result<std::unique_ptr<Transformer>> NewSecretboxTransformer(std::string key_name, SecretBytes key);

// Every value kube-apiserver encrypts starts with this; identity refuses to read such values.
inline constexpr std::string_view kK8sEncryptedPrefix = "k8s:enc:";

}  // namespace sigil::barrier
