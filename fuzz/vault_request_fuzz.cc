// Fuzzes the Vault face's request decoding (api/vault/request.h): the first byte picks the
// method, the input up to the first newline is the request target, the rest the body. Every
// input must decode to a request or a clean error (no crash, no exception); a decoded request
// has a path without the /v1/ prefix that does not end in '.', and an object body; the field
// decoders accept or refuse each member of the body without throwing.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "sigil/api/vault/request.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  static const char* kMethods[] = {"GET", "HEAD", "LIST", "PUT", "POST", "DELETE", "PATCH", "OPTIONS"};
  std::string_view in(reinterpret_cast<const char*>(data + 1), size - 1);
  size_t nl = in.find('\n');
  std::string target = "/v1/" + std::string(in.substr(0, nl));
  std::string_view body = nl == std::string_view::npos ? std::string_view() : in.substr(nl + 1);
  sigil::http::Request req;
  req.method_string(kMethods[data[0] % 8]);
  try {
    req.target(target);
  } catch (...) {
    return 0;  // Beast refuses targets with bytes HTTP cannot carry; the server never sees them
  }
  req.body().assign(body.data(), body.size());
  auto r = sigil::vault::Decode(req);
  if (!r.ok()) return 0;
  if (r->path.ends_with(".") || !r->body.is_object()) std::abort();
  for (const auto& [name, value] : r->body.items()) {
    (void)sigil::vault::StringField(r->body, name);
    (void)sigil::vault::BoolField(r->body, name);
    (void)sigil::vault::IntField(r->body, name);
    (void)sigil::vault::DurationField(r->body, name);
    (void)sigil::vault::ListField(r->body, name);
    if (value.is_string()) (void)sigil::vault::ParseDuration(value.get<std::string>());
  }
  for (const auto& [k, v] : r->query) (void)sigil::vault::ParseBool(v);
  return 0;
}
