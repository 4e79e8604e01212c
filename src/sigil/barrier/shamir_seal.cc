#include "sigil/barrier/shamir_seal.h"

#include <nlohmann/json.hpp>

#include "sigil/barrier/keyring.h"
#include "sigil/barrier/seal.h"
#include "sigil/crypto/aes.h"
#include "sigil/crypto/random.h"
#include "sigil/crypto/shamir.h"

namespace sigil::barrier {
namespace {

std::string ConfigDocument(const ShamirConfig& c) {
  nlohmann::ordered_json j = {{"type", "shamir"}, {"secret_shares", c.shares}, {"secret_threshold", c.threshold}};
  return j.dump();
}

std::string Aad(std::string_view config_doc) { return std::string(kWrappedRootKeyKey) + "\n" + std::string(config_doc); }

Result<std::string> Wrap(const SecretBytes& unseal_key, const SecretBytes& root_key, std::string_view config_doc) {
  std::string nonce = crypto::RandomNonce(crypto::kGcmNonceSize);
  SIGIL_ASSIGN_OR_RETURN(std::string sealed, crypto::AesGcmSeal(unseal_key, nonce, root_key.view(), Aad(config_doc)));
  return std::string(kWrappedRootKeyPrefix) + nonce + sealed;
}

// The unseal key a set of shares stands for: the share itself when the seal has one share.
Result<SecretBytes> Combine(const std::vector<SecretBytes>& shares, int threshold) {
  if (static_cast<int>(shares.size()) < threshold) return InvalidArgumentError("not enough key shares");
  if (threshold == 1) {
    if (shares.size() != 1 || shares[0].size() != kRootKeySize) return PermissionDeniedError("Unseal failed, invalid key");
    return shares[0].Clone();
  }
  for (const SecretBytes& s : shares) {
    if (s.size() != kRootKeySize + 1) return PermissionDeniedError("Unseal failed, invalid key");
  }
  auto key = crypto::ShamirCombine(shares);
  if (!key.ok()) return PermissionDeniedError("Unseal failed, invalid key");
  return std::move(key).value();
}

Result<std::vector<SecretBytes>> NewShares(const ShamirConfig& c, SecretBytes* unseal_key) {
  *unseal_key = crypto::RandomKey(kRootKeySize);
  unseal_key->Lock();
  return crypto::ShamirSplit(*unseal_key, c.shares, c.threshold);
}

}  // namespace

Status ValidateShamirConfig(int shares, int threshold) {
  if (shares < 1) return InvalidArgumentError("secret shares must be at least one");
  if (threshold < 1) return InvalidArgumentError("secret threshold must be at least one");
  if (shares > crypto::kMaxShamirShares) return InvalidArgumentError("secret shares must be less than 256");
  if (threshold > shares) return InvalidArgumentError("secret threshold cannot be larger than secret shares");
  if (shares > 1 && threshold == 1) return InvalidArgumentError("threshold must be greater than one for multiple shares");
  if (shares == 1 && threshold != 1) return InvalidArgumentError("threshold must be one for a single share");
  return OkStatus();
}

Result<std::optional<ShamirSeal::Loaded>> ShamirSeal::Load() {
  SIGIL_ASSIGN_OR_RETURN(std::optional<storage::KeyValue> config, backend_->Get(kSealConfigKey));
  if (!config) return std::optional<Loaded>();
  Loaded out;
  out.config_doc = config->value;
  out.config_revision = config->mod_revision;
  auto j = nlohmann::json::parse(config->value, nullptr, false);
  if (j.is_discarded() || !j.is_object() || j.value("type", "") != "shamir" || !j.contains("secret_shares") ||
      !j["secret_shares"].is_number_integer() || !j.contains("secret_threshold") || !j["secret_threshold"].is_number_integer()) {
    return DataLossError(std::string(kSealConfigKey) + " is damaged");
  }
  out.config.shares = j["secret_shares"].get<int>();
  out.config.threshold = j["secret_threshold"].get<int>();
  if (!ValidateShamirConfig(out.config.shares, out.config.threshold).ok()) {
    return DataLossError(std::string(kSealConfigKey) + " is damaged");
  }
  SIGIL_ASSIGN_OR_RETURN(std::optional<storage::KeyValue> wrapped, backend_->Get(kWrappedRootKeyKey));
  if (!wrapped) return DataLossError("the seal configuration exists but the wrapped root key is missing");
  out.wrapped = wrapped->value;
  out.wrapped_revision = wrapped->mod_revision;
  return std::optional<Loaded>(std::move(out));
}

Result<std::optional<ShamirConfig>> ShamirSeal::Config() {
  SIGIL_ASSIGN_OR_RETURN(std::optional<Loaded> l, Load());
  if (!l) return std::optional<ShamirConfig>();
  return std::optional<ShamirConfig>(l->config);
}

Result<ShamirSeal::Initialized> ShamirSeal::Initialize(int shares, int threshold) {
  SIGIL_RETURN_IF_ERROR(ValidateShamirConfig(shares, threshold));
  SIGIL_ASSIGN_OR_RETURN(std::optional<storage::KeyValue> existing, backend_->Get(kSealConfigKey));
  if (existing) return FailedPreconditionError("Vault is already initialized");
  SIGIL_ASSIGN_OR_RETURN(std::optional<storage::KeyValue> keyring, backend_->Get(kKeyringStorageKey));
  if (keyring) {
    return FailedPreconditionError("this store was initialised by another seal (its keyring exists); migrating a store "
                                   "between seals is not supported");
  }
  ShamirConfig c{shares, threshold};
  Initialized out;
  SecretBytes unseal_key;
  SIGIL_ASSIGN_OR_RETURN(out.shares, NewShares(c, &unseal_key));
  out.root_key = crypto::RandomKey(kRootKeySize);
  out.root_key.Lock();
  std::string doc = ConfigDocument(c);
  SIGIL_ASSIGN_OR_RETURN(std::string wrapped, Wrap(unseal_key, out.root_key, doc));
  storage::Txn txn;
  txn.compares.push_back({std::string(kSealConfigKey), 0});
  txn.compares.push_back({std::string(kWrappedRootKeyKey), 0});
  txn.compares.push_back({std::string(kKeyringStorageKey), 0});
  txn.ops.push_back(storage::Op::Put(std::string(kSealConfigKey), doc));
  txn.ops.push_back(storage::Op::Put(std::string(kWrappedRootKeyKey), std::move(wrapped)));
  SIGIL_ASSIGN_OR_RETURN(storage::TxnResult r, backend_->Commit(std::move(txn)));
  if (!r.succeeded) return FailedPreconditionError("Vault is already initialized");
  return out;
}

Result<SecretBytes> ShamirSeal::Unwrap(const Loaded& l, const std::vector<SecretBytes>& shares) {
  SIGIL_ASSIGN_OR_RETURN(SecretBytes unseal_key, Combine(shares, l.config.threshold));
  std::string_view body = l.wrapped;
  if (!body.starts_with(kWrappedRootKeyPrefix)) return DataLossError(std::string(kWrappedRootKeyKey) + " is damaged");
  body.remove_prefix(kWrappedRootKeyPrefix.size());
  if (body.size() != crypto::kGcmNonceSize + kRootKeySize + crypto::kGcmTagSize) {
    return DataLossError(std::string(kWrappedRootKeyKey) + " is damaged");
  }
  auto root = crypto::AesGcmOpen(unseal_key, body.substr(0, crypto::kGcmNonceSize), body.substr(crypto::kGcmNonceSize),
                                 Aad(l.config_doc));
  // A wrong share and an altered config or wrapped key look the same here: authentication fails.
  if (!root.ok()) return PermissionDeniedError("Unseal failed, invalid key");
  root->Lock();
  return std::move(root).value();
}

Result<SecretBytes> ShamirSeal::RootKey(const std::vector<SecretBytes>& shares) {
  SIGIL_ASSIGN_OR_RETURN(std::optional<Loaded> l, Load());
  if (!l) return FailedPreconditionError("Vault is not initialized");
  return Unwrap(*l, shares);
}

Result<std::vector<SecretBytes>> ShamirSeal::Rekey(const std::vector<SecretBytes>& old_shares, int shares, int threshold) {
  SIGIL_RETURN_IF_ERROR(ValidateShamirConfig(shares, threshold));
  SIGIL_ASSIGN_OR_RETURN(std::optional<Loaded> l, Load());
  if (!l) return FailedPreconditionError("Vault is not initialized");
  SIGIL_ASSIGN_OR_RETURN(SecretBytes root, Unwrap(*l, old_shares));
  ShamirConfig c{shares, threshold};
  SecretBytes unseal_key;
  SIGIL_ASSIGN_OR_RETURN(std::vector<SecretBytes> out, NewShares(c, &unseal_key));
  std::string doc = ConfigDocument(c);
  SIGIL_ASSIGN_OR_RETURN(std::string wrapped, Wrap(unseal_key, root, doc));
  storage::Txn txn;
  txn.compares.push_back({std::string(kSealConfigKey), l->config_revision});
  txn.compares.push_back({std::string(kWrappedRootKeyKey), l->wrapped_revision});
  txn.ops.push_back(storage::Op::Put(std::string(kSealConfigKey), doc));
  txn.ops.push_back(storage::Op::Put(std::string(kWrappedRootKeyKey), std::move(wrapped)));
  SIGIL_ASSIGN_OR_RETURN(storage::TxnResult r, backend_->Commit(std::move(txn)));
  if (!r.succeeded) return AbortedError("the seal configuration changed during the rekey; start it again");
  return out;
}

void ShareCollector::Start(int threshold, std::string nonce) {
  Reset();
  threshold_ = threshold;
  nonce_ = std::move(nonce);
}

bool ShareCollector::Add(SecretBytes share) {
  for (const SecretBytes& s : shares_) {
    if (s.Equals(share)) return static_cast<int>(shares_.size()) >= threshold_;
  }
  share.Lock();
  shares_.push_back(std::move(share));
  return static_cast<int>(shares_.size()) >= threshold_;
}

bool ShareCollector::Has(const SecretBytes& share) const {
  for (const SecretBytes& s : shares_) {
    if (s.Equals(share)) return true;
  }
  return false;
}

void ShareCollector::Reset() {
  shares_.clear();  // SecretBytes wipe themselves
  nonce_.clear();
  threshold_ = 0;
}

}  // namespace sigil::barrier
