#include "sigil/base/encoding.h"

#include <sodium.h>

namespace sigil {
namespace {

// Decodes into `out` (already sized to the maximum); returns the decoded length or -1.
long long DecodeInto(std::string_view text, unsigned char* out, size_t cap) {
  size_t bin_len = 0;
  const char* end = nullptr;
  if (sodium_base642bin(out, cap, text.data(), text.size(), nullptr, &bin_len, &end,
                        sodium_base64_VARIANT_ORIGINAL) != 0) {
    return -1;
  }
  if (end != text.data() + text.size()) return -1;
  return static_cast<long long>(bin_len);
}

}  // namespace

std::string Base64Encode(std::string_view bytes) {
  std::string out(sodium_base64_encoded_len(bytes.size(), sodium_base64_VARIANT_ORIGINAL), '\0');
  sodium_bin2base64(out.data(), out.size(), reinterpret_cast<const unsigned char*>(bytes.data()),
                    bytes.size(), sodium_base64_VARIANT_ORIGINAL);
  out.resize(out.size() - 1);  // drop the NUL terminator
  return out;
}

Result<std::string> Base64Decode(std::string_view text) {
  std::string out(text.size() / 4 * 3 + 3, '\0');
  long long n = DecodeInto(text, reinterpret_cast<unsigned char*>(out.data()), out.size());
  if (n < 0) return InvalidArgumentError("illegal base64 data");
  out.resize(static_cast<size_t>(n));
  return out;
}

Result<SecretBytes> Base64DecodeSecret(std::string_view text) {
  SecretBytes out(text.size() / 4 * 3 + 3);
  long long n = DecodeInto(text, out.data(), out.size());
  if (n < 0) return InvalidArgumentError("illegal base64 data");
  out.resize(static_cast<size_t>(n));
  return out;
}

std::string Base64UrlEncode(std::string_view bytes) {
  std::string s = Base64Encode(bytes);
  for (char& c : s) {
    if (c == '+') c = '-';
    if (c == '/') c = '_';
  }
  while (!s.empty() && s.back() == '=') s.pop_back();
  return s;
}

Result<std::string> Base64UrlDecode(std::string_view text) {
  if (text.size() % 4 == 1) return InvalidArgumentError("invalid base64url: bad length");
  std::string s(text);
  for (char& c : s) {
    if (c == '-') {
      c = '+';
    } else if (c == '_') {
      c = '/';
    } else if (c == '+' || c == '/' || c == '=') {
      return InvalidArgumentError("invalid base64url: character outside the alphabet");
    }
  }
  while (s.size() % 4 != 0) s += '=';
  return Base64Decode(s);
}

std::string HexEncode(std::string_view bytes) {
  std::string out(bytes.size() * 2 + 1, '\0');
  sodium_bin2hex(out.data(), out.size(), reinterpret_cast<const unsigned char*>(bytes.data()),
                 bytes.size());
  out.resize(bytes.size() * 2);
  return out;
}

Result<std::string> HexDecode(std::string_view text) {
  if (text.size() % 2 != 0) return InvalidArgumentError("hex string has odd length");
  std::string out(text.size() / 2, '\0');
  size_t n = 0;
  const char* end = nullptr;
  if (sodium_hex2bin(reinterpret_cast<unsigned char*>(out.data()), out.size(), text.data(),
                     text.size(), nullptr, &n, &end) != 0 ||
      end != text.data() + text.size()) {
    return InvalidArgumentError("illegal hex data");
  }
  out.resize(n);
  return out;
}

bool JsonDeeperThan(std::string_view text, int max_depth) {
  int depth = 0;
  bool in_string = false, escaped = false;
  for (char c : text) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      if (++depth > max_depth) return true;
    } else if (c == '}' || c == ']') {
      --depth;
    }
  }
  return false;
}

}  // namespace sigil
