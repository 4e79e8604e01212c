// KMS v2 hot paths (Google Benchmark): the kms provider's per-write and per-read work (an HKDF
// expansion and AES-256-GCM, no plugin call), and a plugin round trip (sigil's own plugin over
// a unix socket and gRPC, in this process): what one seed wrap or cold read costs.
//   build/bench/sigil_kms_bench
#include <benchmark/benchmark.h>

#include <filesystem>

#include "sigil/crypto/random.h"
#include "sigil/kms/envelope.h"
#include "sigil/kms/plugin.h"
#include "sigil/storage/memory_backend.h"

namespace {

using namespace sigil;

struct World {
  std::filesystem::path dir = std::filesystem::temp_directory_path() / ("sigil-kms-bench-" + crypto::RandomUuid());
  storage::MemoryBackend backend;
  std::unique_ptr<barrier::Seal> seal = barrier::NewDevSeal();
  std::unique_ptr<barrier::Barrier> barrier;
  std::unique_ptr<store::ObjectStore> store;
  std::unique_ptr<kms::Plugin> plugin;
  std::unique_ptr<kms::Provider> provider;
  std::unique_ptr<kms::Client> client;
  World() {
    crypto::Init();
    std::filesystem::create_directories(dir);
    barrier = std::move(barrier::Barrier::Open(&backend, seal.get(), nullptr, Clock::Real())).value();
    store = std::make_unique<store::ObjectStore>(barrier.get());
    kms::Plugin::Options o;
    o.socket_path = (dir / "kms.sock").string();
    o.audit = [](const kms::PluginCall&) { return OkStatus(); };
    plugin = std::move(kms::Plugin::Start(std::move(o), store.get(), Clock::Real())).value();
    kms::ProviderOptions po;
    po.name = "bench";
    provider = kms::Provider::Start(kms::NewGrpcClient((dir / "kms.sock").string(), std::chrono::seconds(3)), po, Clock::Real());
    client = kms::NewGrpcClient((dir / "kms.sock").string(), std::chrono::seconds(3));
  }
  ~World() {
    provider.reset();
    plugin.reset();
    std::filesystem::remove_all(dir);
  }
};

World& W() {
  static World* w = new World();  // outlives the benchmarks; the process exits after them
  return *w;
}

const std::string kValue(1400, 'v');  // about a 1 KiB Secret as stored (JSON, base64 data)
constexpr std::string_view kKey = "/registry/secrets/default/bench";

void BM_KmsProviderWrite1KiB(benchmark::State& state) {
  World& w = W();
  for (auto _ : state) benchmark::DoNotOptimize(w.provider->Encrypt(kValue, kKey));
}
BENCHMARK(BM_KmsProviderWrite1KiB);

void BM_KmsProviderReadCachedSeed1KiB(benchmark::State& state) {
  World& w = W();
  std::string stored = *w.provider->Encrypt(kValue, kKey);
  bool stale = false;
  for (auto _ : state) benchmark::DoNotOptimize(w.provider->Decrypt(stored, kKey, &stale, true));
}
BENCHMARK(BM_KmsProviderReadCachedSeed1KiB);

void BM_KmsPluginEncryptRoundTrip(benchmark::State& state) {
  World& w = W();
  SecretBytes seed = crypto::RandomKey(32);
  for (auto _ : state) benchmark::DoNotOptimize(w.client->Encrypt("bench", seed));
}
BENCHMARK(BM_KmsPluginEncryptRoundTrip)->UseRealTime()->Threads(1)->Threads(4);

void BM_KmsPluginDecryptRoundTrip(benchmark::State& state) {
  World& w = W();
  SecretBytes seed = crypto::RandomKey(32);
  auto wrapped = *w.client->Encrypt("bench", seed);
  kms::DecryptRequest req{wrapped.ciphertext, wrapped.key_id, {}};
  for (auto _ : state) benchmark::DoNotOptimize(w.client->Decrypt("bench", req));
}
BENCHMARK(BM_KmsPluginDecryptRoundTrip)->UseRealTime()->Threads(1)->Threads(4);

}  // namespace

BENCHMARK_MAIN();
