#include "sigil/engines/transit.h"

#include "sigil/base/encoding.h"
#include "sigil/crypto/aes.h"
#include "sigil/crypto/hash.h"
#include "sigil/crypto/random.h"
#include "sigil/crypto/secretbox.h"
#include "sigil/crypto/sign.h"

namespace sigil::engines {
namespace {

constexpr std::string_view kKeyPrefix = "policy/";
constexpr size_t kKeySize = 32;
constexpr size_t kMaxBatch = 1000;
constexpr int64_t kMaxRandomBytes = 128 * 1024;
constexpr std::string_view kBackupFormat = "sigil-transit-backup/v1";

bool ValidName(std::string_view n) {
  if (n.empty() || n.size() > 128) return false;
  for (char c : n) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.') return false;
  }
  return n != "." && n != "..";
}

// A named key: its settings and every version's key material.
struct Key {
  Json doc;  // {type, latest_version, min_decryption_version, min_encryption_version, deletion_allowed,
             //  exportable, allow_plaintext_backup, versions: {"<n>": {key, hmac_key, time}}}
  int64_t revision = 0;

  std::string type() const { return doc.value("type", "aes256-gcm96"); }
  int64_t latest() const { return doc.value("latest_version", int64_t{0}); }
  Result<SecretBytes> Material(int64_t version, const char* which) const {
    auto it = doc["versions"].find(std::to_string(version));
    if (it == doc["versions"].end() || !it->contains(which) || !(*it)[which].is_string()) {
      return DataLossError("a transit key version is missing");
    }
    SIGIL_ASSIGN_OR_RETURN(SecretBytes k, Base64DecodeSecret((*it)[which].get<std::string>()));
    if (std::string_view(which) != "private_key" && k.size() != kKeySize) return DataLossError("a transit key version is damaged");
    return k;
  }
};

bool Ecdsa(std::string_view type) { return type == "ecdsa-p256" || type == "ecdsa-p384" || type == "ecdsa-p521"; }
bool Rsa(std::string_view type) { return type == "rsa-2048" || type == "rsa-3072" || type == "rsa-4096"; }
bool Symmetric(std::string_view type) { return type == "aes256-gcm96" || type == "chacha20-poly1305"; }
// Key types that sign (RSA keys both sign and encrypt).
bool Signing(std::string_view type) { return type == "ed25519" || Ecdsa(type) || Rsa(type); }
bool Encrypting(std::string_view type) { return Symmetric(type) || Rsa(type); }
bool Asymmetric(std::string_view type) { return type == "ed25519" || Ecdsa(type) || Rsa(type); }
constexpr const char* kTypes = "aes256-gcm96, chacha20-poly1305, ed25519, ecdsa-p256, ecdsa-p384, ecdsa-p521, rsa-2048, rsa-3072, rsa-4096";
// The size of one half of a JWS ECDSA signature.
size_t EcdsaFieldBytes(std::string_view type) { return type == "ecdsa-p256" ? 32 : type == "ecdsa-p384" ? 48 : 66; }

// A new version of a key of `type`: the key (symmetric) or key pair (signing), and an HMAC key.
Result<Json> NewVersion(std::string_view type, Clock* clock) {
  SecretBytes hmac = crypto::RandomKey(kKeySize);
  Json v = {{"hmac_key", Base64Encode(hmac.view())},
            {"time", std::chrono::duration_cast<std::chrono::seconds>(clock->Now().time_since_epoch()).count()}};
  if (type == "ed25519") {
    crypto::SigningKeyPair kp = crypto::NewEd25519();
    v["private_key"] = Base64Encode(kp.private_key.view());
    v["public_key"] = Base64Encode(kp.public_key);
  } else if (Ecdsa(type) || Rsa(type)) {
    Result<crypto::SigningKeyPair> made = Ecdsa(type) ? crypto::NewEcdsa(type == "ecdsa-p256"   ? "P-256"
                                                                         : type == "ecdsa-p384" ? "P-384"
                                                                                                : "P-521")
                                                      : crypto::NewRsa(std::stoi(std::string(type.substr(4))));
    SIGIL_ASSIGN_OR_RETURN(crypto::SigningKeyPair kp, std::move(made));
    v["private_key"] = Base64Encode(kp.private_key.view());
    v["public_key"] = Base64Encode(kp.public_key);
  } else {
    SecretBytes key = crypto::RandomKey(kKeySize);
    v["key"] = Base64Encode(key.view());
  }
  return v;
}

// A field holding base64 (Vault's transit takes plaintexts and inputs base64-encoded).
std::optional<SecretBytes> B64Field(const Json& body, const char* name) {
  auto it = body.find(name);
  if (it == body.end() || !it->is_string()) return std::nullopt;
  auto d = Base64DecodeSecret(it->get_ref<const std::string&>());
  if (!d.ok()) return std::nullopt;
  return std::move(d).value();
}

// A boolean field (JSON, or Go's ParseBool strings); absent or null is false.
bool Flag(const Json& body, const char* name) {
  auto it = body.find(name);
  if (it == body.end()) return false;
  if (it->is_boolean()) return it->get<bool>();
  if (it->is_string()) {
    const std::string& v = it->get_ref<const std::string&>();
    return v == "1" || v == "t" || v == "T" || v == "true" || v == "TRUE" || v == "True";
  }
  return false;
}

// auto_rotate_period in seconds: 0 (off) or at least an hour, as Vault; `current` when absent.
Result<int64_t> AutoRotatePeriod(const Json& body, int64_t current) {
  auto it = body.find("auto_rotate_period");
  if (it == body.end() || it->is_null()) return current;
  std::optional<int64_t> secs;
  if (it->is_number_integer()) secs = it->get<int64_t>();
  if (it->is_string()) {
    const std::string& t = it->get_ref<const std::string&>();
    if (t.empty()) {
      secs = 0;
    } else if (auto d = ParseGoDuration(t, int64_t{100} * 365 * 24 * 3600)) {
      secs = d->count();
    }
  }
  if (!secs || *secs < 0 || (*secs != 0 && *secs < 3600)) {
    return InvalidArgumentError("auto rotate period must be 0 to disable or at least an hour");
  }
  return *secs;
}

std::optional<int64_t> IntOf(const Json& body, const char* name) {
  auto it = body.find(name);
  if (it == body.end() || it->is_null()) return std::nullopt;
  if (it->is_number_integer()) return it->get<int64_t>();
  if (it->is_string()) {
    const std::string& s = it->get_ref<const std::string&>();
    if (!s.empty() && s.size() < 18 && s.find_first_not_of("0123456789") == std::string::npos) return std::stoll(s);
  }
  return std::nullopt;
}

class Transit final : public SecretsEngine {
 public:
  Transit(Storage storage, Clock* clock) : storage_(std::move(storage)), clock_(clock) {}

  Result<std::optional<bool>> Exists(const Request& r) override {
    // encrypt/<name> creates a missing key: that needs "create" (Vault's existence check), as
    // does keys/<name> for a new key.
    for (std::string_view prefix : {"encrypt/", "keys/"}) {
      std::string_view p = r.path;
      if (p.starts_with(prefix) && ValidName(p.substr(prefix.size()))) {
        SIGIL_ASSIGN_OR_RETURN(std::optional<Key> k, Load(p.substr(prefix.size())));
        return std::optional<bool>(k.has_value());
      }
    }
    return std::optional<bool>();
  }

  Result<Response> Handle(const Request& r) override {
    std::string_view p = r.path;
    bool write = r.op == Operation::kCreate || r.op == Operation::kUpdate;
    if (p == "keys" || p == "keys/") {
      if (r.op != Operation::kList) return Response::Error(405, "unsupported operation");
      return ListKeys();
    }
    if (p.starts_with("keys/")) return Keys(r, p.substr(5));
    if (p.starts_with("export/")) return r.op == Operation::kRead ? Export(p.substr(7)) : Response::Error(405, "unsupported operation");
    if (p.starts_with("backup/")) return r.op == Operation::kRead ? Backup(p.substr(7)) : Response::Error(405, "unsupported operation");
    if (p == "restore" || p.starts_with("restore/")) {
      return write ? Restore(r, p.size() > 8 ? p.substr(8) : std::string_view()) : Response::Error(405, "unsupported operation");
    }
    if (!write) return Response::Error(405, "unsupported operation");
    auto rest = [&](std::string_view prefix) { return p.substr(prefix.size()); };
    if (p.starts_with("encrypt/")) return Batch(r, rest("encrypt/"), &Transit::EncryptOne, true);
    if (p.starts_with("decrypt/")) return Batch(r, rest("decrypt/"), &Transit::DecryptOne, false);
    if (p.starts_with("rewrap/")) return Batch(r, rest("rewrap/"), &Transit::RewrapOne, false);
    if (p.starts_with("datakey/")) return DataKey(r, rest("datakey/"));
    if (p.starts_with("hmac/")) return HmacOrVerify(r, rest("hmac/"), false);
    if (p.starts_with("sign/")) return Sign(r, rest("sign/"));
    if (p.starts_with("verify/")) return HmacOrVerify(r, rest("verify/"), true);
    if (p == "random" || p.starts_with("random/")) return Random(r, p.size() > 7 ? p.substr(7) : std::string_view());
    if (p == "hash" || p.starts_with("hash/")) return Hash(r, p.size() > 5 ? p.substr(5) : std::string_view());
    return Response::Error(404, "no handler for route \"" + std::string(p.substr(0, 256)) + "\". route entry not found.");
  }

 private:
  using One = Result<Json> (Transit::*)(Key* key, const Json& item, const Json& request);

  Result<std::optional<Key>> Load(std::string_view name) {
    SIGIL_ASSIGN_OR_RETURN(std::optional<store::Object> o, storage_.Get(std::string(kKeyPrefix) + std::string(name)));
    if (!o) return std::optional<Key>();
    Json j = Json::parse(o->doc.view(), nullptr, false);
    if (!j.is_object() || !j.contains("versions") || !j["versions"].is_object()) return DataLossError("a transit key is damaged");
    return std::optional<Key>(Key{std::move(j), o->revision});
  }

  // Stores `k` if unchanged since it was read; false on a conflict.
  Result<bool> Store(std::string_view name, const Key& k) {
    Result<int64_t> r = storage_.Put(std::string(kKeyPrefix) + std::string(name), SecretBytes(k.doc.dump()),
                                     k.revision ? std::optional<int64_t>(k.revision) : std::nullopt);
    if (r.ok()) return true;
    if (r.error().code() == StatusCode::kAborted || r.error().code() == StatusCode::kAlreadyExists) return false;
    return r.error();
  }

  // Adds a new latest version to `k`.
  Status Rotate(Key* k) {
    int64_t next = k->latest() + 1;
    SIGIL_ASSIGN_OR_RETURN(Json v, NewVersion(k->type(), clock_));
    k->doc["versions"][std::to_string(next)] = std::move(v);
    k->doc["latest_version"] = next;
    return OkStatus();
  }

  bool RotationDue(const Key& k) const {
    int64_t period = k.doc.value("auto_rotate_period", int64_t{0});
    if (period <= 0) return false;
    auto it = k.doc["versions"].find(std::to_string(k.latest()));
    int64_t made = it == k.doc["versions"].end() ? 0 : it->value("time", int64_t{0});
    int64_t now = std::chrono::duration_cast<std::chrono::seconds>(clock_->Now().time_since_epoch()).count();
    return now - made >= period;
  }

  // The key, rotated first when its auto_rotate_period has passed since its latest version was
  // made: sigil rotates on use rather than on a timer, so no key version is ever used past its
  // period (and an idle key shows its old latest version until it is used or read).
  Result<std::optional<Key>> LoadForUse(std::string_view name) {
    for (int attempt = 0; attempt < 16; ++attempt) {
      SIGIL_ASSIGN_OR_RETURN(std::optional<Key> k, Load(name));
      if (!k || !RotationDue(*k)) return k;
      SIGIL_RETURN_IF_ERROR(Rotate(&*k));
      SIGIL_ASSIGN_OR_RETURN(bool stored, Store(name, *k));
      (void)stored;  // rotated here or by a racing request: read it again either way
    }
    return AbortedError("the key kept changing; try again");
  }

  // A new key of `type`; kInvalidArgument for what is not served.
  Result<Key> Create(const Json& body) {
    auto t = body.find("type");
    if (t != body.end() && !t->is_null() && !t->is_string()) return InvalidArgumentError("type must be a string");
    std::string type = t != body.end() && t->is_string() ? t->get<std::string>() : "aes256-gcm96";
    if (!Symmetric(type) && !Asymmetric(type)) {
      return InvalidArgumentError("key type \"" + type.substr(0, 32) + "\" is not supported by sigil (" + kTypes + ")");
    }
    if (Flag(body, "convergent_encryption")) return InvalidArgumentError("convergent encryption is not supported by sigil");
    bool derived = Flag(body, "derived");
    if (derived && !Symmetric(type)) return InvalidArgumentError("key derivation is supported by sigil only for aes256-gcm96 and chacha20-poly1305 keys");
    SIGIL_ASSIGN_OR_RETURN(int64_t period, AutoRotatePeriod(body, 0));
    SIGIL_ASSIGN_OR_RETURN(Json first, NewVersion(type, clock_));
    Key k;
    k.doc = Json{{"type", type},
                 {"latest_version", 1},
                 {"min_decryption_version", 1},
                 {"min_encryption_version", 0},
                 {"min_available_version", 0},
                 {"deletion_allowed", false},
                 {"derived", derived},
                 {"exportable", Flag(body, "exportable")},
                 {"allow_plaintext_backup", Flag(body, "allow_plaintext_backup")},
                 {"auto_rotate_period", period},
                 {"versions", {{"1", std::move(first)}}}};
    return k;
  }

  // The key `name`, made first when `create` and it does not exist (nullopt: it does not).
  // `create_only`: the caller may create the key but not use an existing one (kPermissionDenied).
  Result<std::optional<Key>> LoadOrCreate(std::string_view name, const Json& body, bool create, bool create_only = false) {
    for (int attempt = 0; attempt < 16; ++attempt) {
      SIGIL_ASSIGN_OR_RETURN(std::optional<Key> k, LoadForUse(name));
      if (k && create_only) return PermissionDeniedError("permission denied");
      if (k || !create) return k;
      SIGIL_ASSIGN_OR_RETURN(Key made, Create(body));
      SIGIL_ASSIGN_OR_RETURN(bool stored, Store(name, made));
      if (stored) continue;  // read it back with its revision
    }
    return AbortedError("the key kept changing; try again");
  }

  Result<Response> ListKeys() {
    SIGIL_ASSIGN_OR_RETURN(std::vector<std::string> names, storage_.List(std::string(kKeyPrefix)));
    if (names.empty()) return Response::NotFound();
    return Response::Ok(Json{{"keys", names}});
  }

  Result<Response> Keys(const Request& r, std::string_view rest) {
    std::string_view name = rest.substr(0, rest.find('/'));
    std::string_view action = rest.size() > name.size() ? rest.substr(name.size() + 1) : std::string_view();
    if (!ValidName(name)) return Response::Error(400, "invalid key name");
    if (action.empty()) {
      switch (r.op) {
        case Operation::kRead: {
          SIGIL_ASSIGN_OR_RETURN(std::optional<Key> k, LoadForUse(name));
          if (!k) return Response::NotFound();
          return Response::Ok(Describe(name, *k));
        }
        case Operation::kCreate:
        case Operation::kUpdate: {
          auto made = Create(r.data);
          if (!made.ok()) return Response::Error(400, made.error().message());
          SIGIL_RETURN_IF_ERROR(LoadOrCreate(name, r.data, true).status());
          return Response::NoContent();
        }
        case Operation::kDelete:
          return Modify(name, [&](Key* k) -> std::optional<Response> {
            if (!k->doc.value("deletion_allowed", false)) return Response::Error(400, "deletion is not allowed for this key");
            return std::nullopt;
          }, /*remove=*/true);
        default:
          return Response::Error(405, "unsupported operation");
      }
    }
    if (r.op != Operation::kCreate && r.op != Operation::kUpdate) return Response::Error(405, "unsupported operation");
    if (action == "rotate") {
      return Modify(name, [&](Key* k) -> std::optional<Response> {
        if (!Rotate(k).ok()) return Response::Error(500, "key generation failed");
        return std::nullopt;
      });
    }
    if (action == "trim") {
      std::optional<int64_t> min = IntOf(r.data, "min_available_version");
      if (!min || *min < 1) return Response::Error(400, "expected min_available_version to be a positive integer");
      return Modify(name, [&](Key* k) -> std::optional<Response> {
        int64_t dec = k->doc.value("min_decryption_version", int64_t{1});
        int64_t enc = k->doc.value("min_encryption_version", int64_t{0});
        if (*min > dec) return Response::Error(400, "cannot set min available version higher than min decryption version");
        if (enc != 0 && *min > enc) return Response::Error(400, "cannot set min available version higher than min encryption version");
        if (*min < k->doc.value("min_available_version", int64_t{0})) return Response::Error(400, "minimum available version cannot be decreased");
        for (int64_t v = 1; v < *min; ++v) k->doc["versions"].erase(std::to_string(v));
        k->doc["min_available_version"] = *min;
        return std::nullopt;
      });
    }
    if (action == "config") {
      return Modify(name, [&](Key* k) -> std::optional<Response> {
        if (auto it = r.data.find("deletion_allowed"); it != r.data.end() && !it->is_null()) k->doc["deletion_allowed"] = Flag(r.data, "deletion_allowed");
        // exportable and allow_plaintext_backup can be switched on, never off (as Vault: once
        // key material may have left, saying it cannot would be a lie).
        for (const char* once : {"exportable", "allow_plaintext_backup"}) {
          auto it = r.data.find(once);
          if (it == r.data.end() || it->is_null()) continue;
          if (!Flag(r.data, once) && k->doc.value(once, false)) {
            return Response::Error(400, std::string(once) == "exportable" ? "exportable key cannot be made non-exportable"
                                                                           : "plaintext backup cannot be disabled once enabled");
          }
          k->doc[once] = Flag(r.data, once);
        }
        Result<int64_t> period = AutoRotatePeriod(r.data, k->doc.value("auto_rotate_period", int64_t{0}));
        if (!period.ok()) return Response::Error(400, period.error().message());
        k->doc["auto_rotate_period"] = *period;
        std::optional<int64_t> min_dec = IntOf(r.data, "min_decryption_version");
        std::optional<int64_t> min_enc = IntOf(r.data, "min_encryption_version");
        int64_t dec = min_dec.value_or(k->doc.value("min_decryption_version", int64_t{1}));
        int64_t enc = min_enc.value_or(k->doc.value("min_encryption_version", int64_t{0}));
        if (dec < 1) dec = 1;
        if (dec > k->latest()) return Response::Error(400, "cannot set min decryption version higher than the latest version");
        if (enc < 0 || enc > k->latest()) return Response::Error(400, "cannot set min encryption version higher than the latest version");
        if (enc != 0 && enc < dec) {
          return Response::Error(400, "minimum decryption version cannot be greater than minimum encryption version");
        }
        if (dec < k->doc.value("min_available_version", int64_t{0})) {
          return Response::Error(400, "min decryption version should not be less than min available version");
        }
        k->doc["min_decryption_version"] = dec;
        k->doc["min_encryption_version"] = enc;
        return std::nullopt;
      });
    }
    return Response::Error(404, "unsupported path");
  }

  Json Describe(std::string_view name, const Key& k) const {
    Json keys = Json::object();
    bool signing = Signing(k.type());
    for (auto& [v, entry] : k.doc["versions"].items()) {
      int64_t t = entry.value("time", int64_t{0});
      if (!signing) {
        keys[v] = t;
        continue;
      }
      // Signing keys show each version's public key, as Vault does (Ed25519 raw in base64,
      // ECDSA as PEM).
      auto pub = Base64Decode(entry.value("public_key", ""));
      std::string shown = !pub.ok() ? "" : k.type() == "ed25519" ? entry.value("public_key", "") : crypto::PublicKeyPem(*pub);
      // (RSA and ECDSA: PEM.)
      keys[v] = Json{{"creation_time", FormatRfc3339(Clock::TimePoint(std::chrono::seconds(t)))}, {"name", k.type()},
                     {"public_key", shown}};
    }
    Json out = {{"allow_plaintext_backup", k.doc.value("allow_plaintext_backup", false)},
                {"auto_rotate_period", k.doc.value("auto_rotate_period", int64_t{0})},
                {"deletion_allowed", k.doc.value("deletion_allowed", false)},
                {"derived", k.doc.value("derived", false)},
                {"exportable", k.doc.value("exportable", false)},
                {"imported_key", false},
                {"keys", std::move(keys)},
                {"latest_version", k.latest()},
                {"min_available_version", k.doc.value("min_available_version", int64_t{0})},
                {"min_decryption_version", k.doc.value("min_decryption_version", int64_t{1})},
                {"min_encryption_version", k.doc.value("min_encryption_version", int64_t{0})},
                {"name", name},
                {"supports_decryption", Encrypting(k.type())},
                {"supports_derivation", Symmetric(k.type())},
                {"supports_encryption", Encrypting(k.type())},
                {"supports_signing", signing},
                {"type", k.type()}};
    if (k.doc.value("derived", false)) {
      out["kdf"] = "hkdf_sha256";
      out["convergent_encryption"] = false;
    }
    return out;
  }

  // Applies `change` to the key (or deletes it, `remove`) in a compare-on-revision write.
  Result<Response> Modify(std::string_view name, const std::function<std::optional<Response>(Key*)>& change,
                          bool remove = false) {
    for (int attempt = 0; attempt < 16; ++attempt) {
      SIGIL_ASSIGN_OR_RETURN(std::optional<Key> k, Load(name));
      if (!k) return remove ? Response::NoContent() : Response::Error(400, "key not found");
      if (std::optional<Response> refused = change(&*k)) return std::move(*refused);
      if (remove) {
        // Compared with the revision read, so a concurrent config that forbids deletion wins.
        Status st = storage_.DeleteIf(std::string(kKeyPrefix) + std::string(name), k->revision);
        if (st.ok()) return Response::NoContent();
        if (st.code() != StatusCode::kAborted) return st;
        continue;
      }
      SIGIL_ASSIGN_OR_RETURN(bool stored, Store(name, *k));
      if (stored) return Response::NoContent();
    }
    return AbortedError("the key kept changing; try again");
  }

  // The version to encrypt with: the request's key_version, else the latest, within the key's
  // minimum encryption version.
  static Result<int64_t> EncryptionVersion(const Key& k, const Json& item, const Json& request) {
    std::optional<int64_t> want = IntOf(item, "key_version");
    if (!want) want = IntOf(request, "key_version");
    int64_t v = want.value_or(0) > 0 ? *want : k.latest();
    if (v > k.latest()) return InvalidArgumentError("requested version for encryption is higher than the latest key version");
    if (v < k.doc.value("min_encryption_version", int64_t{0}) || v < k.doc.value("min_available_version", int64_t{0})) {
      return InvalidArgumentError("requested version for encryption is less than the minimum encryption key version");
    }
    return v;
  }

  // The symmetric key of `version` for `item`: a derived key's is HKDF-SHA256 of the version's
  // key with the item's context (base64) as info, as Vault's hkdf_sha256 derivation.
  static Result<SecretBytes> EncryptionKey(const Key& k, int64_t version, const Json& item) {
    SIGIL_ASSIGN_OR_RETURN(SecretBytes key, k.Material(version, "key"));
    if (!k.doc.value("derived", false)) return key;
    std::optional<SecretBytes> context = B64Field(item, "context");
    if (!context || context->empty()) {
      return InvalidArgumentError(
          "missing 'context' for key derivation; the key was created using a derived key, which means additional, "
          "per-request information must be included in order to perform operations with the key");
    }
    return crypto::HkdfSha256(key, "", context->view(), kKeySize);
  }

  static Result<std::string> PublicKeyOf(const Key& k, int64_t version) {
    auto it = k.doc["versions"].find(std::to_string(version));
    auto pub = Base64Decode(it == k.doc["versions"].end() ? "" : it->value("public_key", ""));
    if (!pub.ok() || pub->empty()) return DataLossError("a transit public key is damaged");
    return std::move(pub).value();
  }

  Result<std::string> Seal(const Key& k, int64_t version, std::string_view plaintext, const Json& item) {
    if (!Encrypting(k.type())) return InvalidArgumentError("key type " + k.type() + " does not support encryption");
    if (Rsa(k.type())) {
      SIGIL_ASSIGN_OR_RETURN(std::string pub, PublicKeyOf(k, version));
      SIGIL_ASSIGN_OR_RETURN(std::string sealed, crypto::RsaOaepEncrypt(pub, plaintext));
      return "vault:v" + std::to_string(version) + ":" + Base64Encode(sealed);
    }
    SIGIL_ASSIGN_OR_RETURN(SecretBytes key, EncryptionKey(k, version, item));
    std::string nonce = crypto::RandomNonce(crypto::kGcmNonceSize);
    std::string sealed;
    if (k.type() == "chacha20-poly1305") {
      SIGIL_ASSIGN_OR_RETURN(sealed, crypto::ChaCha20Poly1305Seal(key, nonce, plaintext, ""));
    } else {
      SIGIL_ASSIGN_OR_RETURN(sealed, crypto::AesGcmSeal(key, nonce, plaintext, ""));
    }
    return "vault:v" + std::to_string(version) + ":" + Base64Encode(nonce + sealed);
  }

  Result<std::pair<SecretBytes, int64_t>> Open(const Key& k, std::string_view ciphertext, const Json& item) {
    if (!Encrypting(k.type())) return InvalidArgumentError("key type " + k.type() + " does not support decryption");
    if (!ciphertext.starts_with("vault:v")) return InvalidArgumentError("invalid ciphertext: no prefix");
    std::string_view rest = ciphertext.substr(7);
    size_t colon = rest.find(':');
    if (colon == std::string_view::npos || colon == 0 || colon > 18) return InvalidArgumentError("invalid ciphertext: wrong number of fields");
    std::string vtext(rest.substr(0, colon));
    if (vtext.find_first_not_of("0123456789") != std::string::npos) return InvalidArgumentError("invalid ciphertext: version number could not be decoded");
    int64_t version = std::stoll(vtext);
    if (version < k.doc.value("min_decryption_version", int64_t{1})) {
      return InvalidArgumentError("ciphertext or signature version is disallowed by policy (too old)");
    }
    if (version > k.latest()) return InvalidArgumentError("invalid ciphertext: version is too new");
    auto raw = Base64Decode(rest.substr(colon + 1));
    if (raw.ok() && Rsa(k.type())) {
      SIGIL_ASSIGN_OR_RETURN(SecretBytes priv, k.Material(version, "private_key"));
      auto plain = crypto::RsaOaepDecrypt(priv, *raw);
      if (!plain.ok()) return InvalidArgumentError("failed to RSA decrypt the ciphertext: crypto/rsa: decryption error");
      return std::make_pair(std::move(plain).value(), version);
    }
    if (!raw.ok() || raw->size() < crypto::kGcmNonceSize + crypto::kGcmTagSize) {
      return InvalidArgumentError("invalid ciphertext: could not decode");
    }
    SIGIL_ASSIGN_OR_RETURN(SecretBytes key, EncryptionKey(k, version, item));
    std::string_view body(*raw);
    auto plain = k.type() == "chacha20-poly1305"
                     ? crypto::ChaCha20Poly1305Open(key, body.substr(0, crypto::kGcmNonceSize), body.substr(crypto::kGcmNonceSize), "")
                     : crypto::AesGcmOpen(key, body.substr(0, crypto::kGcmNonceSize), body.substr(crypto::kGcmNonceSize), "");
    if (!plain.ok()) return InvalidArgumentError("cipher: message authentication failed");
    return std::make_pair(std::move(plain).value(), version);
  }

  Result<Json> EncryptOne(Key* k, const Json& item, const Json& request) {
    std::optional<SecretBytes> plain = B64Field(item, "plaintext");
    if (!plain) return InvalidArgumentError("failed to base64-decode plaintext");
    SIGIL_ASSIGN_OR_RETURN(int64_t v, EncryptionVersion(*k, item, request));
    SIGIL_ASSIGN_OR_RETURN(std::string ct, Seal(*k, v, plain->view(), item));
    return Json{{"ciphertext", ct}, {"key_version", v}};
  }

  Result<Json> DecryptOne(Key* k, const Json& item, const Json&) {
    auto it = item.find("ciphertext");
    if (it == item.end() || !it->is_string()) return InvalidArgumentError("missing ciphertext to decrypt");
    SIGIL_ASSIGN_OR_RETURN(auto opened, Open(*k, it->get_ref<const std::string&>(), item));
    return Json{{"plaintext", Base64Encode(opened.first.view())}};
  }

  Result<Json> RewrapOne(Key* k, const Json& item, const Json& request) {
    auto it = item.find("ciphertext");
    if (it == item.end() || !it->is_string()) return InvalidArgumentError("missing ciphertext to decrypt");
    SIGIL_ASSIGN_OR_RETURN(auto opened, Open(*k, it->get_ref<const std::string&>(), item));
    SIGIL_ASSIGN_OR_RETURN(int64_t v, EncryptionVersion(*k, item, request));
    SIGIL_ASSIGN_OR_RETURN(std::string ct, Seal(*k, v, opened.first.view(), item));
    return Json{{"ciphertext", ct}, {"key_version", v}};
  }

  // One item, or batch_input's items (each answered on its own: an item's error is reported in
  // its result, as Vault does, and the whole request is 400 only when every item failed).
  Result<Response> Batch(const Request& r, std::string_view name, One one, bool create) {
    if (!ValidName(name)) return Response::Error(400, "invalid key name");
    if (create) {  // encrypt/<name> may create the key: only a type that encrypts
      auto t = r.data.find("type");
      if (t != r.data.end() && t->is_string() && Signing(t->get_ref<const std::string&>())) {
        return Response::Error(400, "key type " + t->get<std::string>() + " does not support encryption");
      }
    }
    auto made = LoadOrCreate(name, r.data, create, r.create_only);
    if (!made.ok() && made.error().code() == StatusCode::kPermissionDenied) return Response::Error(403, "permission denied");
    if (!made.ok() && made.error().code() == StatusCode::kInvalidArgument) return Response::Error(400, made.error().message());
    if (!made.ok()) return made.error();
    if (!*made) return Response::Error(400, "encryption key not found");
    Key& k = **made;
    auto batch = r.data.find("batch_input");
    if (batch == r.data.end() || batch->is_null()) {
      Result<Json> out = (this->*one)(&k, r.data, r.data);
      if (!out.ok()) return Response::Error(400, out.error().message());
      return Response::Ok(std::move(out).value());
    }
    if (!batch->is_array() || batch->empty() || batch->size() > kMaxBatch) {
      return Response::Error(400, "batch_input must be a list of 1 to 1000 items");
    }
    Json results = Json::array();
    size_t failed = 0;
    for (const Json& item : *batch) {
      if (!item.is_object()) {
        results.push_back(Json{{"error", "each batch item must be an object"}});
        ++failed;
        continue;
      }
      Result<Json> out = (this->*one)(&k, item, r.data);
      if (out.ok()) {
        results.push_back(std::move(out).value());
      } else {
        results.push_back(Json{{"error", out.error().message()}});
        ++failed;
      }
    }
    if (failed == batch->size()) {
      Response all = Response::Error(400, "every batch item failed");
      return all;
    }
    return Response::Ok(Json{{"batch_results", std::move(results)}});
  }

  Result<Response> DataKey(const Request& r, std::string_view rest) {
    std::string_view kind = rest.substr(0, rest.find('/'));
    std::string_view name = rest.size() > kind.size() ? rest.substr(kind.size() + 1) : std::string_view();
    if (kind != "plaintext" && kind != "wrapped") return Response::Error(400, "invalid type for data key: plaintext or wrapped");
    if (!ValidName(name)) return Response::Error(400, "invalid key name");
    int64_t bits = IntOf(r.data, "bits").value_or(256);
    if (bits != 128 && bits != 256 && bits != 512) return Response::Error(400, "invalid bits value: 128, 256 or 512");
    SIGIL_ASSIGN_OR_RETURN(std::optional<Key> k, LoadForUse(name));
    if (!k) return Response::Error(400, "encryption key not found");
    Result<int64_t> v = EncryptionVersion(*k, r.data, r.data);
    if (!v.ok()) return Response::Error(400, v.error().message());
    SecretBytes data_key = crypto::RandomKey(static_cast<size_t>(bits / 8));
    Result<std::string> ct = Seal(*k, *v, data_key.view(), r.data);
    if (!ct.ok()) {
      if (ct.error().code() == StatusCode::kInvalidArgument) return Response::Error(400, ct.error().message());
      return ct.error();
    }
    Json out = {{"ciphertext", *ct}, {"key_version", *v}};
    if (kind == "plaintext") out["plaintext"] = Base64Encode(data_key.view());
    return Response::Ok(std::move(out));
  }

  Result<Response> HmacOrVerify(const Request& r, std::string_view rest, bool verify) {
    std::string_view name = rest.substr(0, rest.find('/'));
    std::string algorithm = rest.size() > name.size() ? std::string(rest.substr(name.size() + 1))
                                                       : r.data.value("algorithm", std::string("sha2-256"));
    if (!ValidName(name)) return Response::Error(400, "invalid key name");
    SIGIL_ASSIGN_OR_RETURN(std::optional<Key> k, LoadForUse(name));
    if (!k) return Response::Error(400, "encryption key not found");
    std::optional<SecretBytes> input = B64Field(r.data, "input");
    if (!input) return Response::Error(400, "unable to decode input as base64");
    if (!verify) {
      Result<int64_t> v = EncryptionVersion(*k, r.data, r.data);
      if (!v.ok()) return Response::Error(400, v.error().message());
      SIGIL_ASSIGN_OR_RETURN(SecretBytes hk, k->Material(*v, "hmac_key"));
      auto mac = crypto::Hmac(algorithm, hk, input->view());
      if (!mac.ok()) return Response::Error(400, "unsupported algorithm " + algorithm.substr(0, 32));
      return Response::Ok(Json{{"hmac", "vault:v" + std::to_string(*v) + ":" + Base64Encode(*mac)}});
    }
    if (auto sig = r.data.find("signature"); sig != r.data.end() && sig->is_string()) {
      return VerifySignature(*k, r, rest.size() > name.size() ? std::string(rest.substr(name.size() + 1)) : "", *sig);
    }
    auto given = r.data.find("hmac");
    if (given == r.data.end() || !given->is_string()) return Response::Error(400, "neither a signature nor an HMAC was given");
    const std::string& text = given->get_ref<const std::string&>();
    if (!text.starts_with("vault:v")) return Response::Error(400, "invalid HMAC: no prefix");
    size_t colon = text.find(':', 7);
    std::string vtext = colon == std::string::npos ? "" : text.substr(7, colon - 7);
    if (vtext.empty() || vtext.size() > 18 || vtext.find_first_not_of("0123456789") != std::string::npos) {
      return Response::Error(400, "invalid HMAC: version number could not be decoded");
    }
    int64_t v = std::stoll(vtext);
    if (v < k->doc.value("min_decryption_version", int64_t{1}) || v > k->latest()) {
      return Response::Error(400, "HMAC version is disallowed by policy or does not exist");
    }
    SIGIL_ASSIGN_OR_RETURN(SecretBytes hk, k->Material(v, "hmac_key"));
    auto mac = crypto::Hmac(algorithm, hk, input->view());
    if (!mac.ok()) return Response::Error(400, "unsupported algorithm " + algorithm.substr(0, 32));
    auto want = Base64Decode(std::string_view(text).substr(colon + 1));
    bool valid = want.ok() && crypto::ConstantTimeEquals(*want, *mac);
    return Response::Ok(Json{{"valid", valid}});
  }

  // How a signature is made, from the request: the hash (path, else hash_algorithm or
  // algorithm, default sha2-256), RSA's padding (signature_algorithm pss, the default, or
  // pkcs1v15), and ECDSA's encoding (marshaling_algorithm asn1, the default, or jws).
  struct SignatureOptions {
    std::string hash;
    crypto::RsaPadding padding = crypto::RsaPadding::kPss;
    bool jws = false;
  };
  static Result<SignatureOptions> SignatureOptionsOf(const Key& k, const Request& r, std::string hash) {
    SignatureOptions o;
    o.hash = !hash.empty() ? hash : r.data.value("hash_algorithm", r.data.value("algorithm", std::string("sha2-256")));
    if (crypto::DigestEvpName(o.hash) == nullptr) return InvalidArgumentError("unsupported hash algorithm " + o.hash.substr(0, 32));
    std::string marshaling = r.data.value("marshaling_algorithm", std::string("asn1"));
    if (marshaling != "asn1" && marshaling != "jws") return InvalidArgumentError("unsupported marshaling type " + marshaling.substr(0, 16));
    o.jws = marshaling == "jws";
    if (o.jws && !Ecdsa(k.type())) return InvalidArgumentError("marshaling type jws is only supported for ECDSA keys");
    std::string algorithm = r.data.value("signature_algorithm", std::string("pss"));
    if (algorithm != "pss" && algorithm != "pkcs1v15") return InvalidArgumentError("unsupported rsa signature algorithm " + algorithm.substr(0, 16));
    o.padding = algorithm == "pss" ? crypto::RsaPadding::kPss : crypto::RsaPadding::kPkcs1v15;
    return o;
  }

  // The bytes a signature covers: Ed25519 signs the input itself; ECDSA and RSA a hash of it,
  // or the input as given when `prehashed`.
  static Result<std::string> SignedBytes(const Key& k, const Request& r, const SignatureOptions& o, std::string_view input) {
    if (k.type() == "ed25519" || r.data.value("prehashed", false)) return std::string(input);
    return crypto::Digest(o.hash, input);
  }

  Result<Response> Sign(const Request& r, std::string_view rest) {
    std::string_view name = rest.substr(0, rest.find('/'));
    std::string hash = rest.size() > name.size() ? std::string(rest.substr(name.size() + 1)) : "";
    if (!ValidName(name)) return Response::Error(400, "invalid key name");
    SIGIL_ASSIGN_OR_RETURN(std::optional<Key> k, LoadForUse(name));
    if (!k) return Response::Error(400, "signing key not found");
    if (!Signing(k->type())) return Response::Error(400, "key type " + k->type() + " does not support signing");
    Result<SignatureOptions> o = SignatureOptionsOf(*k, r, hash);
    if (!o.ok()) return Response::Error(400, o.error().message());
    std::optional<SecretBytes> input = B64Field(r.data, "input");
    if (!input) return Response::Error(400, "unable to decode input as base64");
    Result<int64_t> v = EncryptionVersion(*k, r.data, r.data);
    if (!v.ok()) return Response::Error(400, v.error().message());
    auto message = SignedBytes(*k, r, *o, input->view());
    if (!message.ok()) return Response::Error(400, "unsupported hash algorithm");
    SIGIL_ASSIGN_OR_RETURN(SecretBytes priv, k->Material(*v, "private_key"));
    Result<std::string> sig = k->type() == "ed25519" ? crypto::Ed25519Sign(priv, *message)
                              : Rsa(k->type())       ? crypto::RsaSign(priv, *message, o->hash, o->padding)
                                                     : crypto::EcdsaSign(priv, *message);
    if (!sig.ok() && sig.error().code() == StatusCode::kInvalidArgument) return Response::Error(400, "signing failed: " + sig.error().message());
    if (!sig.ok()) return sig.error();
    std::string encoded;
    if (o->jws) {
      SIGIL_ASSIGN_OR_RETURN(std::string raw, crypto::EcdsaDerToRaw(*sig, EcdsaFieldBytes(k->type())));
      encoded = Base64UrlEncode(raw);  // JWS: unpadded base64url of r || s
    } else {
      encoded = Base64Encode(*sig);
    }
    return Response::Ok(Json{{"signature", "vault:v" + std::to_string(*v) + ":" + encoded}, {"key_version", *v}});
  }

  Result<Response> VerifySignature(const Key& k, const Request& r, std::string hash, const Json& given) {
    if (!Signing(k.type())) return Response::Error(400, "key type " + k.type() + " does not support verification");
    Result<SignatureOptions> o = SignatureOptionsOf(k, r, hash);
    if (!o.ok()) return Response::Error(400, o.error().message());
    std::optional<SecretBytes> input = B64Field(r.data, "input");
    if (!input) return Response::Error(400, "unable to decode input as base64");
    const std::string& text = given.get_ref<const std::string&>();
    size_t colon = text.starts_with("vault:v") ? text.find(':', 7) : std::string::npos;
    std::string vtext = colon == std::string::npos ? "" : text.substr(7, colon - 7);
    if (vtext.empty() || vtext.size() > 18 || vtext.find_first_not_of("0123456789") != std::string::npos) {
      return Response::Error(400, "invalid signature: no prefix or version");
    }
    int64_t v = std::stoll(vtext);
    if (v < k.doc.value("min_decryption_version", int64_t{1}) || v > k.latest()) {
      return Response::Error(400, "ciphertext or signature version is disallowed by policy (too old)");
    }
    std::string_view encoded = std::string_view(text).substr(colon + 1);
    auto sig = o->jws ? Base64UrlDecode(encoded) : Base64Decode(encoded);
    if (!sig.ok()) return Response::Error(400, "invalid signature: could not decode");
    if (o->jws) {
      auto der = crypto::EcdsaRawToDer(*sig);
      if (!der.ok()) return Response::Ok(Json{{"valid", false}});
      *sig = std::move(der).value();
    }
    auto message = SignedBytes(k, r, *o, input->view());
    if (!message.ok()) return Response::Error(400, "unsupported hash algorithm");
    SIGIL_ASSIGN_OR_RETURN(std::string pub, PublicKeyOf(k, v));
    bool valid = k.type() == "ed25519" ? crypto::Ed25519Verify(pub, *message, *sig)
                 : Rsa(k.type())       ? crypto::RsaVerify(pub, *message, *sig, o->hash, o->padding)
                                       : crypto::EcdsaVerify(pub, *message, *sig);
    return Response::Ok(Json{{"valid", valid}});
  }

  // export/<kind>/<name>[/<version>]: encryption-key, signing-key and hmac-key need an
  // exportable key; public-key any asymmetric one. Formats as Vault's: symmetric and HMAC keys
  // base64, Ed25519 the base64 of its 64-byte private key (or 32-byte public key), ECDSA and
  // RSA PEM (SEC 1 / PKCS#1 private keys, SubjectPublicKeyInfo public keys).
  Result<Response> Export(std::string_view rest) {
    std::string_view kind = rest.substr(0, rest.find('/'));
    rest = rest.size() > kind.size() ? rest.substr(kind.size() + 1) : std::string_view();
    std::string_view name = rest.substr(0, rest.find('/'));
    std::string_view version = rest.size() > name.size() ? rest.substr(name.size() + 1) : std::string_view();
    if (kind != "encryption-key" && kind != "signing-key" && kind != "hmac-key" && kind != "public-key") {
      return Response::Error(400, "invalid export type");
    }
    if (!ValidName(name)) return Response::Error(400, "invalid key name");
    SIGIL_ASSIGN_OR_RETURN(std::optional<Key> k, Load(name));
    if (!k) return Response::NotFound();
    std::string type = k->type();
    if (kind != "public-key" && !k->doc.value("exportable", false)) return Response::Error(400, "private key material is not exportable");
    if (kind == "encryption-key" && !Encrypting(type)) return Response::Error(400, "encryption key not supported for type " + type);
    if (kind == "signing-key" && !Signing(type)) return Response::Error(400, "signing key not supported for type " + type);
    if (kind == "public-key" && !Asymmetric(type)) return Response::Error(400, "public key not supported for type " + type);
    std::vector<int64_t> versions;
    if (version.empty()) {
      for (auto& [v, _] : k->doc["versions"].items()) versions.push_back(std::stoll(v));
    } else if (version == "latest") {
      versions.push_back(k->latest());
    } else {
      if (version.size() > 18 || version.find_first_not_of("0123456789") != std::string_view::npos) {
        return Response::Error(400, "invalid key version");
      }
      int64_t n = std::stoll(std::string(version));
      if (!k->doc["versions"].contains(std::to_string(n))) return Response::Error(400, "version not found");
      versions.push_back(n);
    }
    Json keys = Json::object();
    for (int64_t v : versions) {
      std::string shown;
      if (kind == "hmac-key") {
        SIGIL_ASSIGN_OR_RETURN(SecretBytes m, k->Material(v, "hmac_key"));
        shown = Base64Encode(m.view());
      } else if (kind == "public-key") {
        SIGIL_ASSIGN_OR_RETURN(std::string pub, PublicKeyOf(*k, v));
        shown = type == "ed25519" ? Base64Encode(pub) : crypto::PublicKeyPem(pub);
      } else if (Symmetric(type)) {
        SIGIL_ASSIGN_OR_RETURN(SecretBytes m, k->Material(v, "key"));
        shown = Base64Encode(m.view());
      } else {
        SIGIL_ASSIGN_OR_RETURN(SecretBytes priv, k->Material(v, "private_key"));
        if (type == "ed25519") {
          shown = Base64Encode(crypto::Ed25519PrivateKey(priv).view());
        } else {
          SIGIL_ASSIGN_OR_RETURN(SecretBytes pem, crypto::PrivateKeyPem(priv));
          shown = std::string(pem.view());
        }
      }
      keys[std::to_string(v)] = std::move(shown);
    }
    return Response::Ok(Json{{"name", name}, {"type", type}, {"keys", std::move(keys)}});
  }

  // backup/<name>: the whole key (every version's material and its settings) as one base64
  // string, in sigil's own format (a Vault backup does not restore here, nor the other way).
  Result<Response> Backup(std::string_view name) {
    if (!ValidName(name)) return Response::Error(400, "invalid key name");
    SIGIL_ASSIGN_OR_RETURN(std::optional<Key> k, Load(name));
    if (!k) return Response::NotFound();
    if (!k->doc.value("exportable", false)) return Response::Error(400, "exporting is disallowed on the policy");
    if (!k->doc.value("allow_plaintext_backup", false)) return Response::Error(400, "plaintext backup is disallowed on the policy");
    std::string text = Json{{"format", kBackupFormat}, {"name", name}, {"key", k->doc}}.dump();
    std::string out = Base64Encode(text);
    internal::SecureZero(text.data(), text.size());
    return Response::Ok(Json{{"backup", std::move(out)}});
  }

  // restore[/<name>] {backup, name, force}: the key from a backup, under the path's name (else
  // the body's, else the backed-up one); an existing key is replaced only with force.
  Result<Response> Restore(const Request& r, std::string_view path_name) {
    auto b = r.data.find("backup");
    if (b == r.data.end() || !b->is_string() || b->get_ref<const std::string&>().empty()) {
      return Response::Error(400, "'backup' must be supplied");
    }
    Result<SecretBytes> text = Base64DecodeSecret(b->get_ref<const std::string&>());
    Json backup = text.ok() ? Json::parse(text->view(), nullptr, false) : Json();
    if (!backup.is_object() || backup.value("format", "") != kBackupFormat || !backup.contains("key") || !backup["key"].is_object()) {
      return Response::Error(400, "the backup is not a sigil transit key backup");
    }
    std::string name = !path_name.empty() ? std::string(path_name) : r.data.value("name", backup.value("name", std::string()));
    if (!ValidName(name)) return Response::Error(400, "invalid key name");
    Key restored{std::move(backup["key"]), 0};
    if (Status st = CheckRestored(restored); !st.ok()) return Response::Error(400, "the backup is damaged: " + st.message());
    bool force = Flag(r.data, "force");
    for (int attempt = 0; attempt < 16; ++attempt) {
      SIGIL_ASSIGN_OR_RETURN(std::optional<Key> existing, Load(name));
      if (existing && !force) return Response::Error(400, "key \"" + name + "\" already exists");
      restored.revision = existing ? existing->revision : 0;
      SIGIL_ASSIGN_OR_RETURN(bool stored, Store(name, restored));
      if (stored) return Response::NoContent();
    }
    return AbortedError("the key kept changing; try again");
  }

  // A restored key must be one this engine can use: a served type, consistent versions, and
  // the material each version of that type needs.
  static Status CheckRestored(const Key& k) {
    const Json& d = k.doc;
    if (!d.contains("type") || !d["type"].is_string()) return InvalidArgumentError("no key type");
    std::string type = d["type"].get<std::string>();
    if (!Symmetric(type) && !Asymmetric(type)) return InvalidArgumentError("unsupported key type");
    for (const char* f : {"latest_version", "min_decryption_version", "min_encryption_version"}) {
      if (!d.contains(f) || !d[f].is_number_integer() || d[f].get<int64_t>() < 0) return InvalidArgumentError(std::string("bad ") + f);
    }
    if (d["latest_version"].get<int64_t>() < 1 || !d.contains("versions") || !d["versions"].is_object() || d["versions"].empty()) {
      return InvalidArgumentError("no key versions");
    }
    for (auto& [v, entry] : d["versions"].items()) {
      if (v.empty() || v.size() > 18 || v.find_first_not_of("0123456789") != std::string::npos || std::stoll(v) < 1 ||
          std::stoll(v) > d["latest_version"].get<int64_t>() || !entry.is_object()) {
        return InvalidArgumentError("bad version " + v.substr(0, 20));
      }
      std::vector<const char*> need = {"hmac_key"};
      if (Symmetric(type)) need.push_back("key");
      if (Asymmetric(type)) {
        need.push_back("private_key");
        need.push_back("public_key");
      }
      for (const char* f : need) {
        if (!entry.contains(f) || !entry[f].is_string()) return InvalidArgumentError("version " + v + " lacks its " + f);
      }
      SIGIL_RETURN_IF_ERROR(k.Material(std::stoll(v), "hmac_key").status());
      if (Symmetric(type)) SIGIL_RETURN_IF_ERROR(k.Material(std::stoll(v), "key").status());
      if (Asymmetric(type)) {
        SIGIL_ASSIGN_OR_RETURN(SecretBytes priv, k.Material(std::stoll(v), "private_key"));
        SIGIL_ASSIGN_OR_RETURN(std::string pub, PublicKeyOf(k, std::stoll(v)));
        bool ok = type == "ed25519" ? priv.size() == 32 && pub.size() == 32
                                    : crypto::PrivateKeyPem(priv).ok() && !crypto::PublicKeyPem(pub).empty();
        if (!ok) return InvalidArgumentError("version " + v + " holds a key that does not decode");
      }
    }
    if (!d["versions"].contains(std::to_string(d["latest_version"].get<int64_t>()))) return InvalidArgumentError("the latest version is missing");
    return OkStatus();
  }

  Result<Response> Random(const Request& r, std::string_view rest) {
    int64_t n = IntOf(r.data, "bytes").value_or(32);
    std::string_view source = rest.substr(0, rest.find('/'));
    if (source == "platform" || source == "all") {
      rest = rest.size() > source.size() ? rest.substr(source.size() + 1) : std::string_view();
    }
    if (rest.find('/') != std::string_view::npos) return Response::Error(400, "unsupported random source");
    if (!rest.empty()) {
      std::string t(rest);
      if (t.empty() || t.size() > 9 || t.find_first_not_of("0123456789") != std::string::npos) {
        return Response::Error(400, "invalid number of bytes");
      }
      n = std::stoll(t);
    }
    if (n < 1 || n > kMaxRandomBytes) return Response::Error(400, "the number of bytes must be between 1 and 131072");
    std::string format = r.data.value("format", std::string("base64"));
    if (format != "base64" && format != "hex") return Response::Error(400, "unsupported encoding format " + format.substr(0, 16));
    std::string bytes = crypto::RandomBytes(static_cast<size_t>(n));
    return Response::Ok(Json{{"random_bytes", format == "hex" ? HexEncode(bytes) : Base64Encode(bytes)}});
  }

  Result<Response> Hash(const Request& r, std::string_view rest) {
    std::string algorithm = !rest.empty() ? std::string(rest) : r.data.value("algorithm", std::string("sha2-256"));
    std::optional<SecretBytes> input = B64Field(r.data, "input");
    if (!input) return Response::Error(400, "unable to decode input as base64");
    std::string format = r.data.value("format", std::string("hex"));
    if (format != "base64" && format != "hex") return Response::Error(400, "unsupported encoding format " + format.substr(0, 16));
    auto sum = crypto::Digest(algorithm, input->view());
    if (!sum.ok()) return Response::Error(400, "unsupported algorithm " + algorithm.substr(0, 32));
    return Response::Ok(Json{{"sum", format == "hex" ? HexEncode(*sum) : Base64Encode(*sum)}});
  }

  Storage storage_;
  Clock* const clock_;
};

}  // namespace

std::unique_ptr<SecretsEngine> NewTransit(const Mount& mount, Storage storage, Clock* clock) {
  (void)mount;
  return std::make_unique<Transit>(std::move(storage), clock);
}

}  // namespace sigil::engines
