#include "sigil/kms/seal.h"

#include <nlohmann/json.hpp>

#include "sigil/base/encoding.h"
#include "sigil/crypto/random.h"

namespace sigil::kms {
namespace {

using Json = nlohmann::json;

class KmsKeyWrapper final : public barrier::KeyWrapper {
 public:
  KmsKeyWrapper(std::unique_ptr<Client> client, std::string label) : client_(std::move(client)), label_(std::move(label)) {}
  std::string name() const override { return label_; }

  Result<std::string> Wrap(const SecretBytes& key) override {
    SIGIL_ASSIGN_OR_RETURN(StatusResponse st, client_->Status());
    if (st.healthz != "ok") return UnavailableError(label_ + " is not healthy: " + st.healthz);
    SIGIL_ASSIGN_OR_RETURN(EncryptResponse enc, client_->Encrypt(crypto::RandomUuid(), key));
    if (enc.ciphertext.empty() || enc.key_id.empty()) {
      return DataLossError(label_ + " returned an empty ciphertext or key ID for the root key");
    }
    Json annotations = Json::object();
    for (const auto& [k, v] : enc.annotations) annotations[k] = Base64Encode(v);
    return Json{{"key_id", enc.key_id}, {"ciphertext", Base64Encode(enc.ciphertext)}, {"annotations", annotations}}.dump();
  }

  Result<SecretBytes> Unwrap(std::string_view blob) override {
    Json j = Json::parse(blob, nullptr, false);
    if (!j.is_object() || !j.contains("key_id") || !j["key_id"].is_string() || !j.contains("ciphertext") ||
        !j["ciphertext"].is_string()) {
      return DataLossError("the stored KMS-wrapped root key is malformed");
    }
    DecryptRequest req;
    req.key_id = j["key_id"].get<std::string>();
    auto ct = Base64Decode(j["ciphertext"].get<std::string>());
    if (!ct.ok()) return DataLossError("the stored KMS-wrapped root key is malformed");
    req.ciphertext = std::move(ct).value();
    if (j.contains("annotations") && j["annotations"].is_object()) {
      for (const auto& [k, v] : j["annotations"].items()) {
        auto d = v.is_string() ? Base64Decode(v.get<std::string>()) : Result<std::string>(DataLossError("bad"));
        if (!d.ok()) return DataLossError("the stored KMS-wrapped root key is malformed");
        req.annotations[k] = std::move(d).value();
      }
    }
    auto key = client_->Decrypt(crypto::RandomUuid(), req);
    if (!key.ok()) return key.error().WithContext(label_ + " could not unwrap the root key");
    return key;
  }

 private:
  std::unique_ptr<Client> client_;
  std::string label_;
};

}  // namespace

std::unique_ptr<barrier::KeyWrapper> NewKmsKeyWrapper(std::unique_ptr<Client> client, std::string label) {
  return std::make_unique<KmsKeyWrapper>(std::move(client), std::move(label));
}

}  // namespace sigil::kms
