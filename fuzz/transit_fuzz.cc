// Fuzzes the transit engine's parsers of client input (engines/transit.h), in process on the
// memory backend: the first byte picks the operation, the rest is the request body (JSON; when
// it is not an object, the raw text becomes the operation's main field). Restore takes a whole
// backup (base64 JSON that must be checked before it becomes a key), decrypt and verify take
// ciphertexts and signatures in Vault's "vault:v<n>:" forms (base64, base64url for JWS, RSA
// OAEP). Every input must be answered with a Response or a storage error, never a crash; and a
// restored key must then be usable without an internal error.
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>

#include "sigil/base/encoding.h"
#include "sigil/engines/transit.h"
#include "sigil/storage/memory_backend.h"

namespace {

using sigil::engines::Json;
using sigil::engines::Operation;
using sigil::engines::Request;

struct World {
  sigil::ManualClock clock;
  sigil::storage::MemoryBackend backend;
  std::unique_ptr<sigil::barrier::Seal> seal = sigil::barrier::NewDevSeal();
  std::unique_ptr<sigil::barrier::Barrier> barrier;
  std::unique_ptr<sigil::store::ObjectStore> store;
  std::unique_ptr<sigil::engines::SecretsEngine> transit;

  World() {
    barrier = std::move(sigil::barrier::Barrier::Open(&backend, seal.get(), nullptr, &clock)).value();
    store = std::make_unique<sigil::store::ObjectStore>(barrier.get());
    transit = sigil::engines::NewTransit(sigil::engines::Mount{"transit/", "transit"},
                                         sigil::engines::Storage(store.get(), "/sigil/logical/f/"), &clock);
    for (auto [name, type] : {std::pair{"aes", "aes256-gcm96"}, {"ec", "ecdsa-p256"}, {"rsa", "rsa-2048"}, {"ed", "ed25519"}}) {
      Call(Operation::kUpdate, std::string("keys/") + name, Json{{"type", type}, {"exportable", true}, {"allow_plaintext_backup", true}});
    }
    Call(Operation::kUpdate, "keys/derived", Json{{"derived", true}});
  }
  sigil::engines::Response Call(Operation op, std::string path, Json data) {
    Request r;
    r.op = op;
    r.path = std::move(path);
    r.data = std::move(data);
    auto out = transit->Handle(r);
    return out.ok() ? std::move(out).value() : sigil::engines::Response::Error(500, out.error().message());
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static World* w = new World();
  if (size < 1) return 0;
  std::string text(reinterpret_cast<const char*>(data + 1), size - 1);
  Json body = Json::parse(text, nullptr, false);
  static const struct {
    const char* path;
    const char* field;
  } kOps[] = {{"restore/copy", "backup"}, {"decrypt/aes", "ciphertext"}, {"decrypt/rsa", "ciphertext"}, {"verify/ec", "signature"},
              {"verify/rsa", "signature"}, {"verify/ed", "signature"}, {"decrypt/derived", "ciphertext"}, {"rewrap/aes", "ciphertext"},
              {"verify/aes", "hmac"}, {"sign/ec", "input"}};
  const auto& op = kOps[data[0] % (sizeof(kOps) / sizeof(kOps[0]))];
  if (!body.is_object()) body = Json{{op.field, text}, {"input", sigil::Base64Encode("fuzz")}, {"marshaling_algorithm", data[0] & 0x80 ? "jws" : "asn1"}};
  if (std::string(op.path) == "restore/copy") body["force"] = true;
  sigil::engines::Response r = w->Call(Operation::kUpdate, op.path, body);
  if (r.status == 500) std::abort();  // client input must never be an internal error
  if (std::string(op.path) == "restore/copy" && r.status == 204) {
    // A key that restore accepted must work: it was checked, not merely parsed.
    sigil::engines::Response d = w->Call(Operation::kRead, "keys/copy", Json::object());
    if (d.status != 200) std::abort();
    sigil::engines::Response e = w->Call(Operation::kRead, "export/hmac-key/copy", Json::object());
    if (e.status == 500) std::abort();
  }
  return 0;
}
