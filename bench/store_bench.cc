// Hot paths of the foundations: AEAD on 1 KiB, barrier value encryption, LMDB reads, and
// durable group-commit puts with 1, 16 and 64 concurrent writers. Results and the command
// that produced them: docs/benchmarks.md.
#include <benchmark/benchmark.h>

#include <atomic>
#include <filesystem>
#include <random>

#include "sigil/barrier/barrier.h"
#include "sigil/crypto/aes.h"
#include "sigil/crypto/random.h"
#include "sigil/storage/lmdb_backend.h"
#include "sigil/storage/memory_backend.h"

namespace {

using namespace sigil;

const std::string kValue(1024, 'v');

std::string BenchDir(const char* name) {
  const char* base = std::getenv("SIGIL_BENCH_DIR");
  std::string dir = std::string(base ? base : "/tmp") + "/sigil-bench-" + name + "-" + std::to_string(::getpid());
  std::filesystem::remove_all(dir);
  return dir;
}

void BM_AesGcmSeal1KiB(benchmark::State& state) {
  SecretBytes key = crypto::RandomKey(32);
  std::string nonce = crypto::RandomBytes(12);
  for (auto _ : state) benchmark::DoNotOptimize(crypto::AesGcmSeal(key, nonce, kValue, "/registry/secrets/default/x"));
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(kValue.size()));
}
BENCHMARK(BM_AesGcmSeal1KiB);

void BM_AesGcmOpen1KiB(benchmark::State& state) {
  SecretBytes key = crypto::RandomKey(32);
  std::string nonce = crypto::RandomBytes(12);
  std::string sealed = *crypto::AesGcmSeal(key, nonce, kValue, "/registry/secrets/default/x");
  for (auto _ : state) benchmark::DoNotOptimize(crypto::AesGcmOpen(key, nonce, sealed, "/registry/secrets/default/x"));
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(kValue.size()));
}
BENCHMARK(BM_AesGcmOpen1KiB);

void BM_RandomNonce12(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(crypto::RandomNonce(12));
}
BENCHMARK(BM_RandomNonce12);

// The barrier's full value path (prefix, term, random nonce, AES-256-GCM with AAD = key).
void BM_BarrierEncryptDecrypt1KiB(benchmark::State& state) {
  ManualClock clock;
  storage::MemoryBackend backend;
  auto seal = barrier::NewDevSeal();
  auto b = std::move(barrier::Barrier::Open(&backend, seal.get(), nullptr, &clock)).value();
  for (auto _ : state) {
    std::string stored = *b->EncryptValue("/registry/secrets/default/x", kValue);
    benchmark::DoNotOptimize(b->DecryptValue("/registry/secrets/default/x", stored));
  }
}
BENCHMARK(BM_BarrierEncryptDecrypt1KiB);

struct LmdbFixture {
  std::string dir = BenchDir("lmdb");
  std::unique_ptr<storage::LmdbBackend> backend;
  static constexpr int kKeys = 10000;
  LmdbFixture() {
    storage::LmdbOptions o;
    o.dir = dir;
    backend = std::move(storage::LmdbBackend::Open(o)).value();
    for (int batch = 0; batch < kKeys / 500; ++batch) {
      storage::Txn t;
      for (int i = 0; i < 500; ++i) t.ops.push_back(storage::Op::Put(Key(batch * 500 + i), kValue));
      (void)backend->Commit(std::move(t));
    }
  }
  ~LmdbFixture() {
    backend.reset();
    std::filesystem::remove_all(dir);
  }
  static std::string Key(int i) { return "/registry/secrets/bench/s" + std::to_string(i); }
};

void BM_LmdbGet1KiB(benchmark::State& state) {
  static LmdbFixture* f = new LmdbFixture();
  std::mt19937 rng(state.thread_index());
  for (auto _ : state) benchmark::DoNotOptimize(f->backend->Get(LmdbFixture::Key(static_cast<int>(rng() % LmdbFixture::kKeys))));
}
BENCHMARK(BM_LmdbGet1KiB)->Threads(1)->Threads(2)->UseRealTime();

// A durable put: acknowledged only after the fsync of the batch that holds it. Concurrent
// writers share batches (group commit), so throughput rises with the number of writers.
void BM_LmdbGroupCommitPut1KiB(benchmark::State& state) {
  static LmdbFixture* f = new LmdbFixture();
  static std::atomic<int> next{0};
  for (auto _ : state) {
    storage::Txn t;
    t.ops.push_back(storage::Op::Put("/registry/secrets/put/s" + std::to_string(next++ % 100000), kValue));
    auto r = f->backend->Commit(std::move(t));
    if (!r.ok()) state.SkipWithError("commit failed");
  }
  state.SetItemsProcessed(state.iterations());
  if (state.thread_index() == 0) {
    state.counters["fsyncs"] = static_cast<double>(f->backend->batches_committed());
  }
}
BENCHMARK(BM_LmdbGroupCommitPut1KiB)->Threads(1)->Threads(16)->Threads(64)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
