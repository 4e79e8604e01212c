// auth/token_file.h: kube-apiserver's static token file (--token-auth-file): CSV rows
// token,user,uid[,"group1,group2"], read as Go's encoding/csv reads them (quoted fields,
// "" inside quotes, variable field count, at least 3 columns). Empty tokens are skipped and a
// repeated token's last row wins, each with a warning, as kube-apiserver does. Only SHA-256
// hashes of the tokens are kept in memory. The file must not be readable by group or others.
// Thread-safe after Load.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "sigil/base/identity.h"
#include "sigil/base/result.h"

namespace sigil::auth {

class TokenFile {
 public:
  static Result<TokenFile> Load(const std::string& path);
  // `text` as the file's contents; warnings (never token values) go to `warnings`.
  static Result<TokenFile> Parse(std::string_view text, const std::string& path, std::vector<std::string>* warnings);

  std::optional<Identity> Lookup(std::string_view token) const;
  size_t size() const { return by_hash_.size(); }

 private:
  std::map<std::string, Identity> by_hash_;  // hex SHA-256 of the token -> who
};

}  // namespace sigil::auth
