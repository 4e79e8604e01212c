// engines/fields.h: request fields as Vault decodes them (its framework's field types), for the
// Vault face and the secrets engines: strings, booleans (Go's ParseBool), integers, durations
// (seconds or Go duration strings), comma lists and string lists.
#pragma once

#include <chrono>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sigil/base/result.h"

namespace sigil::engines {

using Json = nlohmann::ordered_json;

// The longest duration any field accepts: 100 years.
inline constexpr int64_t kMaxDurationSeconds = int64_t{100} * 365 * 24 * 3600;

// Go's strconv.ParseBool.
std::optional<bool> ParseBool(std::string_view s);
// A Go duration ("1h30m", "1.5h", "300ms" rounds down to whole seconds) or a number of seconds.
std::optional<std::chrono::seconds> ParseDuration(std::string_view s);

// Vault's glob (allowed_roles, bound service accounts): '*' matches any run of characters,
// anywhere; everything else matches itself.
bool GlobMatch(std::string_view pattern, std::string_view s);

// Field decoders. Each returns nullopt when the field is absent or null, and an error naming
// the field when it is present with the wrong type.
Result<std::optional<std::string>> StringField(const Json& body, std::string_view name);
Result<std::optional<bool>> BoolField(const Json& body, std::string_view name);
Result<std::optional<int64_t>> IntField(const Json& body, std::string_view name);
Result<std::optional<std::chrono::seconds>> DurationField(const Json& body, std::string_view name);
// A comma list (Vault's TypeCommaStringSlice): an array of strings, or one string split on ','.
Result<std::optional<std::vector<std::string>>> ListField(const Json& body, std::string_view name);
// A string list (Vault's TypeStringSlice): an array of strings, or one string as one element
// (never split: a SQL statement has commas).
Result<std::optional<std::vector<std::string>>> StringSliceField(const Json& body, std::string_view name);

}  // namespace sigil::engines
