// Fuzzes the read path of the barrier: a stored value (untrusted: the store is outside the
// trust boundary) decrypted under a configuration with every provider. The first input byte
// picks the storage key, so both the keyring path and the EncryptionConfiguration path run.
#include <cstdint>
#include <memory>
#include <string_view>

#include "sigil/barrier/barrier.h"
#include "sigil/base/check.h"
#include "sigil/crypto/random.h"
#include "sigil/storage/memory_backend.h"

namespace {

struct World {
  sigil::ManualClock clock;
  sigil::storage::MemoryBackend backend;
  std::unique_ptr<sigil::barrier::Seal> seal = sigil::barrier::NewDevSeal();
  std::unique_ptr<sigil::barrier::Barrier> barrier;
  World() {
    sigil::crypto::Init();
    const char* kConfig =
        "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n"
        "  - resources: [secrets]\n    providers:\n"
        "      - aesgcm: {keys: [{name: k1, secret: MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=}]}\n"
        "      - aescbc: {keys: [{name: k2, secret: MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=}]}\n"
        "      - secretbox: {keys: [{name: k3, secret: MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=}]}\n"
        "      - identity: {}\n";
    auto config = sigil::barrier::EncryptionConfig::Parse(kConfig);
    SIGIL_CHECK(config.ok());
    auto b = sigil::barrier::Barrier::Open(&backend, seal.get(),
                                           std::shared_ptr<const sigil::barrier::EncryptionConfig>(std::move(config).value()),
                                           &clock);
    SIGIL_CHECK(b.ok());
    barrier = std::move(b).value();
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static World* world = new World();
  if (size == 0) return 0;
  std::string_view key = data[0] % 2 == 0 ? "/registry/secrets/default/fuzz" : "/sigil/kv/fuzz";
  auto r = world->barrier->DecryptValue(key, std::string_view(reinterpret_cast<const char*>(data + 1), size - 1));
  (void)r;
  return 0;
}
