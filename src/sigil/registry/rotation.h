// registry/rotation.h: rotation policies of Kubernetes Secrets. A Secret carries its policy in
// annotations; sigil writes new values for the named keys on schedule (server/secret_rotation)
// or on demand (POST /sigil/v1/namespaces/NS/secrets/NAME/rotate, `sigil secret rotate`), as an
// ordinary update: recorded in the Secret's history, audited, seen by watchers at once.
//
//   sigil.dev/rotation-period     how often: a Go duration ("24h", "90m"), at least 5s. Required.
//   sigil.dev/rotation-keys       the data keys to regenerate, comma-separated. Required.
//   sigil.dev/rotation-generator  password (default): letters, digits and '-' with at least one
//                                 of each kind (or rotation-alphabet's characters);
//                                 alphanumeric; hex (length random bytes, hex-encoded);
//                                 base64 (length random bytes, base64-encoded); bytes (length
//                                 raw random bytes).
//   sigil.dev/rotation-length     characters (password, alphanumeric) or bytes; default 32,
//                                 8 to 4096.
//   sigil.dev/rotation-alphabet   the password generator's characters (2 to 94 distinct,
//                                 printable ASCII).
//   sigil.dev/rotated-at          written by sigil: when it last rotated (RFC 3339). The next
//                                 rotation is due one period after it (or after the Secret's
//                                 creation, before the first).
//
// A Secret whose rotation annotations are invalid is refused at write (422, the annotation
// named); so is a policy that could never be written: keys that are not valid Secret keys,
// keys whose format the Secret's type fixes (tls.crt and tls.key of kubernetes.io/tls,
// .dockerconfigjson, .dockercfg, ssh-privatekey), or values that would pass the Secret size
// limit; an immutable Secret cannot carry a policy.
#pragma once

#include <chrono>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "sigil/base/clock.h"
#include "sigil/base/result.h"
#include "sigil/base/secret_bytes.h"

namespace sigil::registry {

inline constexpr std::string_view kRotationPeriod = "sigil.dev/rotation-period";
inline constexpr std::string_view kRotationKeys = "sigil.dev/rotation-keys";
inline constexpr std::string_view kRotationGenerator = "sigil.dev/rotation-generator";
inline constexpr std::string_view kRotationLength = "sigil.dev/rotation-length";
inline constexpr std::string_view kRotationAlphabet = "sigil.dev/rotation-alphabet";
inline constexpr std::string_view kRotatedAt = "sigil.dev/rotated-at";

struct RotationPolicy {
  std::chrono::seconds period{0};
  std::vector<std::string> keys;
  std::string generator = "password";
  size_t length = 32;
  std::string alphabet;  // password generator only; "" for the default
};

// The policy in a Secret's annotations (nullopt: it has none). kInvalidArgument naming the
// annotation and what is wrong.
Result<std::optional<RotationPolicy>> RotationPolicyOf(const nlohmann::ordered_json& secret);

// When `secret` is next due under `p`: one period after sigil.dev/rotated-at, or after its
// creationTimestamp before the first rotation (now, when neither can be read).
Clock::TimePoint NextRotation(const nlohmann::ordered_json& secret, const RotationPolicy& p, Clock::TimePoint now);

// A new value for one key under `p`.
SecretBytes GenerateValue(const RotationPolicy& p);

}  // namespace sigil::registry
