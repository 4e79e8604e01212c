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

bool Signing(std::string_view type) { return type == "ed25519" || type == "ecdsa-p256"; }

// A new version of a key of `type`: the key (symmetric) or key pair (signing), and an HMAC key.
Result<Json> NewVersion(std::string_view type, Clock* clock) {
  SecretBytes hmac = crypto::RandomKey(kKeySize);
  Json v = {{"hmac_key", Base64Encode(hmac.view())},
            {"time", std::chrono::duration_cast<std::chrono::seconds>(clock->Now().time_since_epoch()).count()}};
  if (type == "ed25519") {
    crypto::SigningKeyPair kp = crypto::NewEd25519();
    v["private_key"] = Base64Encode(kp.private_key.view());
    v["public_key"] = Base64Encode(kp.public_key);
  } else if (type == "ecdsa-p256") {
    SIGIL_ASSIGN_OR_RETURN(crypto::SigningKeyPair kp, crypto::NewEcdsa("P-256"));
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

  // A new key of `type`; kInvalidArgument for what is not served.
  Result<Key> Create(const Json& body) {
    auto t = body.find("type");
    if (t != body.end() && !t->is_null() && !t->is_string()) return InvalidArgumentError("type must be a string");
    std::string type = t != body.end() && t->is_string() ? t->get<std::string>() : "aes256-gcm96";
    if (type != "aes256-gcm96" && type != "chacha20-poly1305" && !Signing(type)) {
      return InvalidArgumentError("key type \"" + type.substr(0, 32) +
                                  "\" is not supported by sigil yet (aes256-gcm96, chacha20-poly1305, ed25519, ecdsa-p256)");
    }
    for (const char* unsupported : {"derived", "convergent_encryption", "exportable", "allow_plaintext_backup"}) {
      auto it = body.find(unsupported);
      if (it != body.end() && it->is_boolean() && it->get<bool>()) {
        return InvalidArgumentError(std::string("\"") + unsupported + "\" keys are not supported by sigil yet");
      }
    }
    SIGIL_ASSIGN_OR_RETURN(Json first, NewVersion(type, clock_));
    Key k;
    k.doc = Json{{"type", type}, {"latest_version", 1}, {"min_decryption_version", 1}, {"min_encryption_version", 0},
                 {"deletion_allowed", false}, {"versions", {{"1", std::move(first)}}}};
    return k;
  }

  // The key `name`, made first when `create` and it does not exist (nullopt: it does not).
  // `create_only`: the caller may create the key but not use an existing one (kPermissionDenied).
  Result<std::optional<Key>> LoadOrCreate(std::string_view name, const Json& body, bool create, bool create_only = false) {
    for (int attempt = 0; attempt < 16; ++attempt) {
      SIGIL_ASSIGN_OR_RETURN(std::optional<Key> k, Load(name));
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
          SIGIL_ASSIGN_OR_RETURN(std::optional<Key> k, Load(name));
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
        int64_t next = k->latest() + 1;
        Result<Json> v = NewVersion(k->type(), clock_);
        if (!v.ok()) return Response::Error(500, "key generation failed");
        k->doc["versions"][std::to_string(next)] = std::move(v).value();
        k->doc["latest_version"] = next;
        return std::nullopt;
      });
    }
    if (action == "config") {
      return Modify(name, [&](Key* k) -> std::optional<Response> {
        if (auto it = r.data.find("deletion_allowed"); it != r.data.end() && it->is_boolean()) k->doc["deletion_allowed"] = it->get<bool>();
        for (const char* unsupported : {"exportable", "allow_plaintext_backup"}) {
          auto it = r.data.find(unsupported);
          if (it != r.data.end() && it->is_boolean() && it->get<bool>()) {
            return Response::Error(400, std::string("\"") + unsupported + "\" is not supported by sigil yet");
          }
        }
        if (auto it = r.data.find("auto_rotate_period"); it != r.data.end() && !it->is_null() && *it != 0 && *it != "0" && *it != "") {
          return Response::Error(400, "\"auto_rotate_period\" is not supported by sigil yet");
        }
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
      keys[v] = Json{{"creation_time", FormatRfc3339(Clock::TimePoint(std::chrono::seconds(t)))}, {"name", k.type()},
                     {"public_key", shown}};
    }
    return Json{{"allow_plaintext_backup", false},
                {"auto_rotate_period", 0},
                {"deletion_allowed", k.doc.value("deletion_allowed", false)},
                {"derived", false},
                {"exportable", false},
                {"imported_key", false},
                {"keys", std::move(keys)},
                {"latest_version", k.latest()},
                {"min_available_version", 0},
                {"min_decryption_version", k.doc.value("min_decryption_version", int64_t{1})},
                {"min_encryption_version", k.doc.value("min_encryption_version", int64_t{0})},
                {"name", name},
                {"supports_decryption", !signing},
                {"supports_derivation", false},
                {"supports_encryption", !signing},
                {"supports_signing", signing},
                {"type", k.type()}};
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
    if (v < k.doc.value("min_encryption_version", int64_t{0})) {
      return InvalidArgumentError("requested version for encryption is less than the minimum encryption key version");
    }
    return v;
  }

  Result<std::string> Seal(const Key& k, int64_t version, std::string_view plaintext) {
    if (Signing(k.type())) return InvalidArgumentError("key type " + k.type() + " does not support encryption");
    SIGIL_ASSIGN_OR_RETURN(SecretBytes key, k.Material(version, "key"));
    std::string nonce = crypto::RandomNonce(crypto::kGcmNonceSize);
    std::string sealed;
    if (k.type() == "chacha20-poly1305") {
      SIGIL_ASSIGN_OR_RETURN(sealed, crypto::ChaCha20Poly1305Seal(key, nonce, plaintext, ""));
    } else {
      SIGIL_ASSIGN_OR_RETURN(sealed, crypto::AesGcmSeal(key, nonce, plaintext, ""));
    }
    return "vault:v" + std::to_string(version) + ":" + Base64Encode(nonce + sealed);
  }

  Result<std::pair<SecretBytes, int64_t>> Open(const Key& k, std::string_view ciphertext) {
    if (Signing(k.type())) return InvalidArgumentError("key type " + k.type() + " does not support decryption");
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
    if (!raw.ok() || raw->size() < crypto::kGcmNonceSize + crypto::kGcmTagSize) {
      return InvalidArgumentError("invalid ciphertext: could not decode");
    }
    SIGIL_ASSIGN_OR_RETURN(SecretBytes key, k.Material(version, "key"));
    std::string_view body(*raw);
    auto plain = k.type() == "chacha20-poly1305"
                     ? crypto::ChaCha20Poly1305Open(key, body.substr(0, crypto::kGcmNonceSize), body.substr(crypto::kGcmNonceSize), "")
                     : crypto::AesGcmOpen(key, body.substr(0, crypto::kGcmNonceSize), body.substr(crypto::kGcmNonceSize), "");
    if (!plain.ok()) return InvalidArgumentError("cipher: message authentication failed");
    return std::make_pair(std::move(plain).value(), version);
  }

  Result<Json> EncryptOne(Key* k, const Json& item, const Json& request) {
    if (item.contains("context") && !item["context"].is_null() && item["context"] != "") {
      return InvalidArgumentError("derived keys (context) are not supported by sigil yet");
    }
    std::optional<SecretBytes> plain = B64Field(item, "plaintext");
    if (!plain) return InvalidArgumentError("failed to base64-decode plaintext");
    SIGIL_ASSIGN_OR_RETURN(int64_t v, EncryptionVersion(*k, item, request));
    SIGIL_ASSIGN_OR_RETURN(std::string ct, Seal(*k, v, plain->view()));
    return Json{{"ciphertext", ct}, {"key_version", v}};
  }

  Result<Json> DecryptOne(Key* k, const Json& item, const Json&) {
    auto it = item.find("ciphertext");
    if (it == item.end() || !it->is_string()) return InvalidArgumentError("missing ciphertext to decrypt");
    SIGIL_ASSIGN_OR_RETURN(auto opened, Open(*k, it->get_ref<const std::string&>()));
    return Json{{"plaintext", Base64Encode(opened.first.view())}};
  }

  Result<Json> RewrapOne(Key* k, const Json& item, const Json& request) {
    auto it = item.find("ciphertext");
    if (it == item.end() || !it->is_string()) return InvalidArgumentError("missing ciphertext to decrypt");
    SIGIL_ASSIGN_OR_RETURN(auto opened, Open(*k, it->get_ref<const std::string&>()));
    SIGIL_ASSIGN_OR_RETURN(int64_t v, EncryptionVersion(*k, item, request));
    SIGIL_ASSIGN_OR_RETURN(std::string ct, Seal(*k, v, opened.first.view()));
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
    SIGIL_ASSIGN_OR_RETURN(std::optional<Key> k, Load(name));
    if (!k) return Response::Error(400, "encryption key not found");
    Result<int64_t> v = EncryptionVersion(*k, r.data, r.data);
    if (!v.ok()) return Response::Error(400, v.error().message());
    SecretBytes data_key = crypto::RandomKey(static_cast<size_t>(bits / 8));
    SIGIL_ASSIGN_OR_RETURN(std::string ct, Seal(*k, *v, data_key.view()));
    Json out = {{"ciphertext", ct}, {"key_version", *v}};
    if (kind == "plaintext") out["plaintext"] = Base64Encode(data_key.view());
    return Response::Ok(std::move(out));
  }

  Result<Response> HmacOrVerify(const Request& r, std::string_view rest, bool verify) {
    std::string_view name = rest.substr(0, rest.find('/'));
    std::string algorithm = rest.size() > name.size() ? std::string(rest.substr(name.size() + 1))
                                                       : r.data.value("algorithm", std::string("sha2-256"));
    if (!ValidName(name)) return Response::Error(400, "invalid key name");
    SIGIL_ASSIGN_OR_RETURN(std::optional<Key> k, Load(name));
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

  // The digest a signature covers: Ed25519 signs the input itself; ECDSA a hash of it
  // (`hash_algorithm`, default sha2-256), or the input as given when `prehashed`.
  static Result<std::string> SignedBytes(const Key& k, const Request& r, std::string hash_algorithm, std::string_view input) {
    if (k.type() == "ed25519") return std::string(input);
    if (r.data.value("prehashed", false)) return std::string(input);
    if (hash_algorithm.empty()) hash_algorithm = r.data.value("hash_algorithm", r.data.value("algorithm", std::string("sha2-256")));
    return crypto::Digest(hash_algorithm, input);
  }

  Result<Response> Sign(const Request& r, std::string_view rest) {
    std::string_view name = rest.substr(0, rest.find('/'));
    std::string hash = rest.size() > name.size() ? std::string(rest.substr(name.size() + 1)) : "";
    if (!ValidName(name)) return Response::Error(400, "invalid key name");
    SIGIL_ASSIGN_OR_RETURN(std::optional<Key> k, Load(name));
    if (!k) return Response::Error(400, "signing key not found");
    if (!Signing(k->type())) return Response::Error(400, "key type " + k->type() + " does not support signing");
    if (r.data.value("marshaling_algorithm", std::string("asn1")) != "asn1") {
      return Response::Error(400, "only the asn1 marshaling algorithm is supported by sigil");
    }
    std::optional<SecretBytes> input = B64Field(r.data, "input");
    if (!input) return Response::Error(400, "unable to decode input as base64");
    Result<int64_t> v = EncryptionVersion(*k, r.data, r.data);
    if (!v.ok()) return Response::Error(400, v.error().message());
    auto message = SignedBytes(*k, r, hash, input->view());
    if (!message.ok()) return Response::Error(400, "unsupported hash algorithm");
    SIGIL_ASSIGN_OR_RETURN(SecretBytes priv, k->Material(*v, "private_key"));
    Result<std::string> sig = k->type() == "ed25519" ? crypto::Ed25519Sign(priv, *message) : crypto::EcdsaSign(priv, *message);
    if (!sig.ok()) return sig.error();
    return Response::Ok(Json{{"signature", "vault:v" + std::to_string(*v) + ":" + Base64Encode(*sig)}, {"key_version", *v}});
  }

  Result<Response> VerifySignature(const Key& k, const Request& r, std::string hash, const Json& given) {
    if (!Signing(k.type())) return Response::Error(400, "key type " + k.type() + " does not support verification");
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
    auto sig = Base64Decode(std::string_view(text).substr(colon + 1));
    if (!sig.ok()) return Response::Error(400, "invalid signature: could not decode");
    auto message = SignedBytes(k, r, hash, input->view());
    if (!message.ok()) return Response::Error(400, "unsupported hash algorithm");
    auto it = k.doc["versions"].find(std::to_string(v));
    auto pub = Base64Decode(it == k.doc["versions"].end() ? "" : it->value("public_key", ""));
    if (!pub.ok()) return DataLossError("a transit public key is damaged");
    bool valid = k.type() == "ed25519" ? crypto::Ed25519Verify(*pub, *message, *sig) : crypto::EcdsaVerify(*pub, *message, *sig);
    return Response::Ok(Json{{"valid", valid}});
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
