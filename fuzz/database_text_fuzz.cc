// Fuzzes what the database engine reads from its callers' text (database/postgres.h): statement
// lists (base64, JSON lists, blocks, splitting), templates, connection strings (libpq's parser,
// the filled-in credentials, the masked form shown on read) and redaction. The first byte picks
// the split mode; the input is split at its first NUL into a text and a secret.
#include <cstdint>
#include <string>
#include <string_view>

#include "sigil/database/postgres.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  bool keep_blocks = data[0] & 1;
  std::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);
  std::string_view text = in.substr(0, in.find('\0'));
  std::string_view secret = text.size() < in.size() ? in.substr(text.size() + 1) : std::string_view();
  for (const std::string& s : sigil::database::SplitStatements(text, keep_blocks)) {
    (void)sigil::database::RenderTemplate(s, {{"name", std::string(secret)}, {"password", "p"}, {"expiration", "e"}}).size();
  }
  (void)sigil::database::CheckConnectionString(text);
  (void)sigil::database::RenderConnectionString(text, secret, secret).size();
  (void)sigil::database::RedactUrl(text).size();
  (void)sigil::database::Redact(std::string(text), {secret}).size();
  (void)sigil::database::QuoteIdentifier(text).size();
  return 0;
}
