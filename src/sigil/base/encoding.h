// base/encoding.h: base64 (standard alphabet, padded, strict) and hex. Thread-safe, pure.
#pragma once

#include <string>
#include <string_view>

#include "sigil/base/result.h"
#include "sigil/base/secret_bytes.h"

namespace sigil {

std::string Base64Encode(std::string_view bytes);
// Strict RFC 4648 decoding with padding; kInvalidArgument on anything else. The error message
// never contains the input.
Result<std::string> Base64Decode(std::string_view text);
// As Base64Decode, into a zeroing buffer (for key material).
Result<SecretBytes> Base64DecodeSecret(std::string_view text);

// base64url without padding (RFC 4648 section 5, as JWTs use it). Decoding is strict: '=' and
// characters outside the alphabet are errors, as is a length that no encoding produces.
std::string Base64UrlEncode(std::string_view bytes);
Result<std::string> Base64UrlDecode(std::string_view text);

std::string HexEncode(std::string_view bytes);

// Whether the JSON text nests objects and arrays deeper than `max_depth` (brackets inside
// strings do not count). A cheap scan of the raw text, so a caller can refuse a document before
// a parser or a recursive walk sees it; it does not validate the JSON.
bool JsonDeeperThan(std::string_view text, int max_depth);
Result<std::string> HexDecode(std::string_view text);

}  // namespace sigil
