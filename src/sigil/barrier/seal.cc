#include "sigil/barrier/seal.h"

#include <fcntl.h>
#include <unistd.h>

#include "sigil/barrier/keyring.h"
#include "sigil/base/encoding.h"
#include "sigil/base/file.h"
#include "sigil/crypto/random.h"

namespace sigil::barrier {
namespace {

class DevSeal final : public Seal {
 public:
  DevSeal() : key_(crypto::RandomKey(kRootKeySize)) { key_.Lock(); }
  std::string name() const override { return "dev"; }
  Result<SecretBytes> RootKey() override {
    SecretBytes copy = key_.Clone();
    copy.Lock();
    return copy;
  }

 private:
  SecretBytes key_;
};

bool IsSpace(uint8_t c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; }

class KeyFileSeal final : public Seal {
 public:
  explicit KeyFileSeal(std::string path) : path_(std::move(path)) {}
  std::string name() const override { return "key-file " + path_; }
  Result<SecretBytes> RootKey() override {
    SIGIL_ASSIGN_OR_RETURN(SecretBytes raw, file::ReadPrivateFile(path_, 4096));
    SecretBytes key;
    if (raw.size() == kRootKeySize) {
      key = std::move(raw);
    } else {
      size_t b = 0, e = raw.size();
      while (b < e && IsSpace(raw.data()[b])) ++b;
      while (e > b && IsSpace(raw.data()[e - 1])) --e;
      auto decoded = Base64DecodeSecret(raw.view().substr(b, e - b));
      if (!decoded.ok()) {
        return InvalidArgumentError(path_ + ": key file must hold 32 raw bytes or their base64");
      }
      key = std::move(decoded).value();
    }
    if (key.size() != kRootKeySize) {
      return InvalidArgumentError(path_ + ": root key must be 32 bytes, got " + std::to_string(key.size()));
    }
    key.Lock();
    return key;
  }

 private:
  std::string path_;
};

class WrappedKeySeal final : public Seal {
 public:
  WrappedKeySeal(storage::Backend* backend, std::unique_ptr<KeyWrapper> wrapper)
      : backend_(backend), wrapper_(std::move(wrapper)) {}
  std::string name() const override { return wrapper_->name(); }
  Result<SecretBytes> RootKey() override {
    SIGIL_ASSIGN_OR_RETURN(std::optional<storage::KeyValue> stored, backend_->Get(kServiceWrappedRootKeyKey));
    if (!stored) {
      SIGIL_ASSIGN_OR_RETURN(std::optional<storage::KeyValue> keyring, backend_->Get(kKeyringStorageKey));
      if (keyring) {
        return FailedPreconditionError("this store was initialised under another seal (it has a keyring but no root key wrapped by " +
                                       wrapper_->name() + "); start it with its own seal");
      }
      SecretBytes root = crypto::RandomKey(kRootKeySize);
      root.Lock();
      SIGIL_ASSIGN_OR_RETURN(std::string blob, wrapper_->Wrap(root));
      storage::Txn txn;
      txn.compares.push_back({std::string(kServiceWrappedRootKeyKey), 0});
      txn.ops.push_back(storage::Op::Put(std::string(kServiceWrappedRootKeyKey), blob));
      SIGIL_ASSIGN_OR_RETURN(storage::TxnResult r, backend_->Commit(std::move(txn)));
      if (r.succeeded) return root;
      // Another server stored its key first: use that one.
      SIGIL_ASSIGN_OR_RETURN(stored, backend_->Get(kServiceWrappedRootKeyKey));
      if (!stored) return AbortedError("the wrapped root key vanished while starting; retry");
    }
    SIGIL_ASSIGN_OR_RETURN(SecretBytes root, wrapper_->Unwrap(stored->value));
    if (root.size() != kRootKeySize) {
      return DataLossError(wrapper_->name() + " unwrapped a root key of " + std::to_string(root.size()) + " bytes, not 32");
    }
    root.Lock();
    return root;
  }

 private:
  storage::Backend* const backend_;
  std::unique_ptr<KeyWrapper> wrapper_;
};

}  // namespace

std::unique_ptr<Seal> NewWrappedKeySeal(storage::Backend* backend, std::unique_ptr<KeyWrapper> wrapper) {
  return std::make_unique<WrappedKeySeal>(backend, std::move(wrapper));
}

std::unique_ptr<Seal> NewDevSeal() { return std::make_unique<DevSeal>(); }
std::unique_ptr<Seal> NewKeyFileSeal(std::string path) { return std::make_unique<KeyFileSeal>(std::move(path)); }

Status GenerateKeyFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return file::ErrnoStatus(errno, path);
  ::close(fd);
  SecretBytes key = crypto::RandomKey(kRootKeySize);
  std::string text = Base64Encode(key.view()) + "\n";
  Status s = file::WriteFileAtomic(path, text, 0600);
  internal::SecureZero(text.data(), text.size());
  return s;
}

}  // namespace sigil::barrier
