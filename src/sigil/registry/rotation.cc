#include "sigil/registry/rotation.h"

#include <algorithm>
#include <charconv>
#include <map>
#include <set>

#include "sigil/base/encoding.h"
#include "sigil/crypto/random.h"
#include "sigil/registry/validation.h"

namespace sigil::registry {
namespace {

using Json = nlohmann::ordered_json;

constexpr int64_t kMinPeriod = 5;
constexpr int64_t kMaxPeriod = int64_t{10} * 365 * 24 * 3600;
constexpr size_t kMinLength = 8, kMaxLength = 4096;

Status Bad(std::string_view annotation, const std::string& why) {
  return InvalidArgumentError("annotation " + std::string(annotation) + ": " + why);
}

std::string Trim(std::string_view s) {
  size_t b = s.find_first_not_of(" \t"), e = s.find_last_not_of(" \t");
  return b == std::string_view::npos ? std::string() : std::string(s.substr(b, e - b + 1));
}

}  // namespace

Result<std::optional<RotationPolicy>> RotationPolicyOf(const Json& secret) {
  using Out = std::optional<RotationPolicy>;
  const Json* ann = nullptr;
  if (secret.contains("metadata") && secret["metadata"].is_object() && secret["metadata"].contains("annotations") &&
      secret["metadata"]["annotations"].is_object()) {
    ann = &secret["metadata"]["annotations"];
  }
  auto get = [&](std::string_view k) -> std::optional<std::string> {
    if (ann == nullptr) return std::nullopt;
    auto it = ann->find(k);
    if (it == ann->end() || !it->is_string()) return std::nullopt;
    return it->get<std::string>();
  };
  std::optional<std::string> period = get(kRotationPeriod);
  if (!period) {
    for (std::string_view k : {kRotationKeys, kRotationGenerator, kRotationLength, kRotationAlphabet}) {
      if (get(k)) return Bad(k, "needs " + std::string(kRotationPeriod));
    }
    return Out();
  }
  RotationPolicy p;
  std::optional<std::chrono::seconds> d = ParseGoDuration(*period, kMaxPeriod);
  if (!d || d->count() < kMinPeriod) return Bad(kRotationPeriod, "must be a duration of at least 5s, such as \"24h\"");
  p.period = *d;
  std::string keys = get(kRotationKeys).value_or("");
  std::set<std::string> seen;
  for (size_t start = 0; start <= keys.size();) {
    size_t comma = keys.find(',', start);
    if (comma == std::string::npos) comma = keys.size();
    std::string k = Trim(std::string_view(keys).substr(start, comma - start));
    if (!k.empty() && seen.insert(k).second) p.keys.push_back(k);
    start = comma + 1;
  }
  if (p.keys.empty()) return Bad(kRotationKeys, "must name the data keys to rotate, comma-separated");
  p.generator = get(kRotationGenerator).value_or("password");
  static const std::set<std::string> kGenerators = {"password", "alphanumeric", "hex", "base64", "bytes"};
  if (!kGenerators.count(p.generator)) return Bad(kRotationGenerator, "must be one of password, alphanumeric, hex, base64, bytes");
  if (std::optional<std::string> len = get(kRotationLength)) {
    size_t n = 0;
    auto [ptr, ec] = std::from_chars(len->data(), len->data() + len->size(), n);
    if (ec != std::errc() || ptr != len->data() + len->size() || n < kMinLength || n > kMaxLength) {
      return Bad(kRotationLength, "must be a number from 8 to 4096");
    }
    p.length = n;
  }
  if (std::optional<std::string> alphabet = get(kRotationAlphabet)) {
    if (p.generator != "password") return Bad(kRotationAlphabet, "applies to the password generator only");
    std::set<char> chars(alphabet->begin(), alphabet->end());
    bool printable = std::all_of(alphabet->begin(), alphabet->end(), [](char c) { return c > 0x20 && c < 0x7f; });
    if (!printable || chars.size() != alphabet->size() || chars.size() < 2) {
      return Bad(kRotationAlphabet, "must be 2 to 94 distinct printable ASCII characters");
    }
    p.alphabet = *alphabet;
  }
  if (secret.value("immutable", false)) return Bad(kRotationPeriod, "an immutable Secret cannot be rotated");
  // Keys the policy could never write.
  static const std::map<std::string, std::set<std::string>> kTyped = {
      {"kubernetes.io/tls", {"tls.crt", "tls.key"}},
      {"kubernetes.io/dockerconfigjson", {".dockerconfigjson"}},
      {"kubernetes.io/dockercfg", {".dockercfg"}},
      {"kubernetes.io/ssh-auth", {"ssh-privatekey"}}};
  std::string type = secret.contains("type") && secret["type"].is_string() ? secret["type"].get<std::string>() : "Opaque";
  for (const std::string& k : p.keys) {
    if (std::vector<std::string> errs = IsConfigMapKey(k); !errs.empty()) return Bad(kRotationKeys, "\"" + k.substr(0, 64) + "\": " + errs[0]);
    if (auto it = kTyped.find(type); it != kTyped.end() && it->second.count(k)) {
      return Bad(kRotationKeys, "\"" + k + "\" has the format a " + type + " Secret requires; random values would break it");
    }
  }
  // Encoded, a value is at most twice its length (hex) or 4/3 of it (base64): the keys' new
  // values alone must fit in a Secret.
  size_t each = p.generator == "hex" ? 2 * p.length : p.generator == "base64" ? (p.length + 2) / 3 * 4 : p.length;
  if (each * p.keys.size() > 1024 * 1024) return Bad(kRotationLength, "the rotated values would not fit in a Secret (1 MiB)");
  return Out(std::move(p));
}

Clock::TimePoint NextRotation(const Json& secret, const RotationPolicy& p, Clock::TimePoint now) {
  const Json& meta = secret.contains("metadata") ? secret["metadata"] : Json::object();
  std::optional<Clock::TimePoint> last;
  if (meta.contains("annotations") && meta["annotations"].is_object()) {
    auto it = meta["annotations"].find(kRotatedAt);
    if (it != meta["annotations"].end() && it->is_string()) last = ParseRfc3339(it->get_ref<const std::string&>());
  }
  if (!last && meta.contains("creationTimestamp") && meta["creationTimestamp"].is_string()) {
    last = ParseRfc3339(meta["creationTimestamp"].get_ref<const std::string&>());
  }
  return last ? *last + p.period : now;
}

SecretBytes GenerateValue(const RotationPolicy& p) {
  if (p.generator == "alphanumeric") return crypto::RandomString(p.length, crypto::kAlphanumeric);
  if (p.generator == "password") {
    return p.alphabet.empty() ? crypto::RandomPassword(p.length) : crypto::RandomString(p.length, p.alphabet);
  }
  SecretBytes raw = crypto::RandomKey(p.length);
  if (p.generator == "bytes") return raw;
  std::string text = p.generator == "hex" ? HexEncode(raw.view()) : Base64Encode(raw.view());
  SecretBytes out(text);
  std::fill(text.begin(), text.end(), '\0');
  return out;
}

}  // namespace sigil::registry
