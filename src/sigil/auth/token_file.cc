#include "sigil/auth/token_file.h"

#include "sigil/base/encoding.h"
#include "sigil/base/file.h"
#include "sigil/base/logging.h"
#include "sigil/crypto/hash.h"

namespace sigil::auth {
namespace {

// One CSV record per line as Go's encoding/csv reads them (a quoted field may span lines).
// Returns false at the end of input; sets *error on a malformed record.
bool NextRecord(std::string_view text, size_t* pos, std::vector<std::string>* fields, std::string* error, int* line) {
  fields->clear();
  while (*pos < text.size() && (text[*pos] == '\n' || text[*pos] == '\r')) {  // blank lines are skipped
    if (text[*pos] == '\n') ++*line;
    ++*pos;
  }
  if (*pos >= text.size()) return false;
  std::string field;
  bool quoted = false, after_quote = false;
  for (;;) {
    if (*pos >= text.size()) {
      if (quoted) *error = "line " + std::to_string(*line) + ": extraneous or missing \" in quoted-field";
      fields->push_back(field);
      return true;
    }
    char c = text[(*pos)++];
    if (quoted) {
      if (c == '"') {
        if (*pos < text.size() && text[*pos] == '"') {
          field += '"';
          ++*pos;
        } else {
          quoted = false;
          after_quote = true;
        }
      } else {
        if (c == '\n') ++*line;
        field += c;
      }
      continue;
    }
    if (c == ',') {
      fields->push_back(field);
      field.clear();
      after_quote = false;
    } else if (c == '\n' || c == '\r') {
      if (c == '\r' && *pos < text.size() && text[*pos] == '\n') ++*pos;
      ++*line;
      fields->push_back(field);
      return true;
    } else if (c == '"' && field.empty() && !after_quote) {
      quoted = true;
    } else if (after_quote || c == '"') {
      *error = "line " + std::to_string(*line) + ": bare \" in non-quoted-field";
      fields->push_back(field);
      return true;
    } else {
      field += c;
    }
  }
}

}  // namespace

Result<TokenFile> TokenFile::Parse(std::string_view text, const std::string& path, std::vector<std::string>* warnings) {
  TokenFile tf;
  size_t pos = 0;
  int line = 1;
  std::vector<std::string> f;
  std::string error;
  while (NextRecord(text, &pos, &f, &error, &line)) {
    if (!error.empty()) return InvalidArgumentError("token file '" + path + "': " + error);
    if (f.size() < 3) {
      for (std::string& s : f) internal::SecureZero(s.data(), s.size());
      return InvalidArgumentError("token file '" + path + "' must have at least 3 columns (token, user name, user uid), found " +
                                  std::to_string(f.size()));
    }
    if (f[0].empty()) {
      warnings->push_back("token file '" + path + "': skipping a row with an empty token (before line " + std::to_string(line) + ")");
      continue;
    }
    Identity id;
    id.user = f[1];
    id.uid = f[2];
    if (f.size() >= 4 && !f[3].empty()) {
      size_t start = 0;
      for (;;) {
        size_t comma = f[3].find(',', start);
        id.groups.push_back(f[3].substr(start, comma == std::string::npos ? std::string::npos : comma - start));
        if (comma == std::string::npos) break;
        start = comma + 1;
      }
    }
    id.groups.push_back("system:authenticated");
    id.method = "token-file";
    std::string hash = HexEncode(crypto::Sha256(f[0]));
    internal::SecureZero(f[0].data(), f[0].size());
    if (tf.by_hash_.count(hash)) warnings->push_back("token file '" + path + "': a token is repeated; its last row wins (user " + id.user + ")");
    tf.by_hash_[hash] = std::move(id);
  }
  return tf;
}

Result<TokenFile> TokenFile::Load(const std::string& path) {
  SIGIL_ASSIGN_OR_RETURN(SecretBytes text, file::ReadPrivateFile(path, 16 << 20));
  std::vector<std::string> warnings;
  SIGIL_ASSIGN_OR_RETURN(TokenFile tf, Parse(text.view(), path, &warnings));
  for (const std::string& w : warnings) log::Warn(w);
  return tf;
}

std::optional<Identity> TokenFile::Lookup(std::string_view token) const {
  auto it = by_hash_.find(HexEncode(crypto::Sha256(token)));
  if (it == by_hash_.end()) return std::nullopt;
  return it->second;
}

}  // namespace sigil::auth
