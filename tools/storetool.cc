// sigil-storetool: drives the store (barrier over LMDB) directly, for tests only. It is not
// installed and not part of the product: it exists so the crash and format tests can run
// before (and independently of) the public APIs.
//
//   load   concurrent writers under a ledger, until killed (the crash test's workload)
//   dump   every key under a prefix with the SHA-256 of its value; checks each value's
//          internal checksums (exit 3 on a torn or corrupt value, 4 on a decryption error)
//   put / get          one value through the barrier (hex)
//   raw-put / raw-get  one value as stored, bypassing the barrier (hex)
//   rotate             add a keyring term
#include <fcntl.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <cstdio>
#include <random>
#include <thread>

#include "sigil/barrier/barrier.h"
#include "sigil/base/encoding.h"
#include "sigil/crypto/hash.h"
#include "sigil/crypto/random.h"
#include "sigil/kms/envelope.h"
#include "sigil/storage/lmdb_backend.h"

namespace {

using namespace sigil;

struct Opened {
  std::unique_ptr<storage::LmdbBackend> backend;
  std::unique_ptr<barrier::Seal> seal;
  std::unique_ptr<barrier::Barrier> barrier;
};

[[noreturn]] void Die(const Status& s, int code = 1) {
  std::fprintf(stderr, "storetool: %s\n", s.ToString().c_str());
  std::exit(code);
}

Opened Open(const std::string& dir, const std::string& key_file, const std::string& enc_file, bool with_barrier = true) {
  Opened o;
  storage::LmdbOptions lo;
  lo.dir = dir;
  auto b = storage::LmdbBackend::Open(lo);
  if (!b.ok()) Die(b.error());
  o.backend = std::move(b).value();
  if (!with_barrier) return o;
  std::shared_ptr<const barrier::EncryptionConfig> enc;
  if (!enc_file.empty()) {
    // kms providers wait for their plugin's first answer (the default timeout), so a put
    // through one works as soon as the plugin does.
    auto e = barrier::EncryptionConfig::LoadFile(enc_file, kms::ProviderFactory(kms::ProviderOptions{}, Clock::Real()));
    if (!e.ok()) Die(e.error());
    enc = std::move(e).value();
  }
  o.seal = barrier::NewKeyFileSeal(key_file);
  auto br = barrier::Barrier::Open(o.backend.get(), o.seal.get(), enc, Clock::Real());
  if (!br.ok()) Die(br.error());
  o.barrier = std::move(br).value();
  return o;
}

std::string Hex(std::string_view s) { return HexEncode(s); }

// A value of 8 fields that each repeat the writer, sequence and nonce and carry a random
// payload with its checksum, so that a torn or mixed value is detectable.
std::string MakeValue(int writer, uint64_t seq, std::mt19937_64& rng) {
  uint64_t nonce = rng();
  std::string v;
  for (int f = 0; f < 8; ++f) {
    size_t len = 128 + rng() % 1920;  // 256..4096 hex chars
    std::string payload(len, '\0');
    for (auto& c : payload) c = static_cast<char>(rng());
    std::string p = Hex(payload);
    v += "w=" + std::to_string(writer) + ";seq=" + std::to_string(seq) + ";nonce=" + std::to_string(nonce) +
         ";payload=" + p + ";sha=" + Hex(crypto::Sha256(p)) + "\n";
  }
  return v;
}

// Empty string if intact, else what is wrong.
std::string CheckValue(std::string_view v) {
  std::string ident;
  int fields = 0;
  while (!v.empty()) {
    size_t nl = v.find('\n');
    if (nl == std::string_view::npos) return "unterminated field";
    std::string_view line = v.substr(0, nl);
    v.remove_prefix(nl + 1);
    size_t pp = line.find(";payload="), sp = line.find(";sha=");
    if (pp == std::string_view::npos || sp == std::string_view::npos || sp < pp) return "malformed field";
    std::string_view id = line.substr(0, pp);
    std::string_view payload = line.substr(pp + 9, sp - pp - 9);
    std::string_view sha = line.substr(sp + 5);
    if (fields == 0) ident = std::string(id);
    if (id != ident) return "fields from different writes";
    if (Hex(crypto::Sha256(payload)) != sha) return "payload checksum mismatch";
    ++fields;
  }
  return fields == 8 ? "" : "expected 8 fields, got " + std::to_string(fields);
}

class Ledger {
 public:
  explicit Ledger(const std::string& path) : fd_(::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600)) {
    if (fd_ < 0) Die(InternalError("cannot open ledger " + path));
  }
  // One write(2) per line: with O_APPEND, lines from different threads never interleave.
  void Line(const std::string& s) {
    std::string l = s + "\n";
    if (::write(fd_, l.data(), l.size()) != static_cast<ssize_t>(l.size())) Die(InternalError("ledger write failed"));
  }

 private:
  int fd_;
};

int Load(const std::string& dir, const std::string& key_file, const std::string& ledger_path, int writers,
         uint64_t seed, const std::string& prefix) {
  Opened o = Open(dir, key_file, "");
  Ledger ledger(ledger_path);
  std::printf("ready\n");
  std::fflush(stdout);
  std::atomic<bool> corrupt{false};
  std::vector<std::thread> threads;
  for (int w = 0; w < writers; ++w) {
    threads.emplace_back([&, w] {
      std::mt19937_64 rng(seed * 1000003 + static_cast<uint64_t>(w) * 7919 + static_cast<uint64_t>(::getpid()));
      uint64_t seq = 0, op_count = 0;
      for (;;) {
        int k = static_cast<int>(rng() % 64);
        // Every 8th key is shared by all writers, so concurrent writes to one key happen too.
        std::string key = k % 8 == 0 ? prefix + "shared-" + std::to_string(k) : prefix + "w" + std::to_string(w) + "-" + std::to_string(k);
        int dice = static_cast<int>(rng() % 100);
        if (dice < 20) {
          auto r = o.barrier->Get(key);
          if (!r.ok()) {
            std::fprintf(stderr, "read %s: %s\n", key.c_str(), r.error().ToString().c_str());
            corrupt = true;
            std::exit(4);
          }
          if (r->has_value()) {
            std::string why = CheckValue((*r)->value.view());
            if (!why.empty()) {
              std::fprintf(stderr, "read %s: %s\n", key.c_str(), why.c_str());
              std::exit(3);
            }
          }
          continue;
        }
        barrier::BarrierTxn txn;
        std::string op, hash = "-";
        if (dice < 30) {
          op = "delete";
          txn.ops.push_back(barrier::BarrierOp::Delete(key));
        } else {
          op = "put";
          std::string v = MakeValue(w, ++seq, rng);
          hash = Hex(crypto::Sha256(v));
          if (dice < 53) {  // about a third of updates use compare-and-swap
            auto cur = o.barrier->Get(key);
            if (cur.ok()) {
              txn.compares.push_back({key, cur->has_value() ? (*cur)->mod_revision : 0});
              op = "cas";
            }
          }
          txn.ops.push_back(barrier::BarrierOp::Put(key, SecretBytes(v)));
        }
        // Each operation has a unique id (pid.writer.count) that ties its outcome to its invoke.
        std::string id = std::to_string(::getpid()) + "." + std::to_string(w) + "." + std::to_string(++op_count);
        std::string what = id + " " + op + " " + key + " " + hash;
        ledger.Line("invoke " + what);
        auto r = o.barrier->Commit(std::move(txn));
        if (!r.ok()) {
          ledger.Line("fail " + what + " " + std::string(StatusCodeName(r.error().code())));
        } else if (!r->succeeded) {
          ledger.Line("fail " + what + " CONFLICT");
        } else {
          ledger.Line("ack " + what + " " + std::to_string(r->revision));
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  return corrupt ? 3 : 0;
}

int Dump(const std::string& dir, const std::string& key_file, const std::string& enc, const std::string& prefix, bool check) {
  Opened o = Open(dir, key_file, enc);
  storage::RangeRequest req;
  req.prefix = prefix;
  auto r = o.barrier->Range(req);
  if (!r.ok()) Die(r.error(), r.error().code() == StatusCode::kDataLoss ? 4 : 1);
  std::printf("{\"revision\": %lld}\n", static_cast<long long>(o.backend->CurrentRevision()));
  int bad = 0;
  for (const barrier::Entry& e : r->entries) {
    std::string why = check ? CheckValue(e.value.view()) : "";
    if (!why.empty()) {
      std::fprintf(stderr, "corrupt value at %s: %s\n", e.key.c_str(), why.c_str());
      ++bad;
    }
    std::printf("{\"key\": \"%s\", \"sha256\": \"%s\", \"mod_revision\": %lld, \"stale\": %s}\n", e.key.c_str(),
                Hex(crypto::Sha256(e.value.view())).c_str(), static_cast<long long>(e.mod_revision), e.stale ? "true" : "false");
  }
  return bad ? 3 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  crypto::Init();
  CLI::App app{"sigil-storetool (tests only)"};
  app.require_subcommand(1);
  std::string dir, key_file, enc, ledger, key, hex, prefix = "/registry/secrets/crash/";
  int writers = 8;
  uint64_t seed = 1;
  bool no_check = false;
  auto common = [&](CLI::App* c, bool needs_key = true) {
    c->add_option("--data-dir", dir)->required();
    if (needs_key) c->add_option("--key-file", key_file)->required();
    c->add_option("--encryption-config", enc);
  };
  CLI::App* load = app.add_subcommand("load");
  common(load);
  load->add_option("--ledger", ledger)->required();
  load->add_option("--writers", writers);
  load->add_option("--seed", seed);
  load->add_option("--prefix", prefix);
  CLI::App* dump = app.add_subcommand("dump");
  common(dump);
  dump->add_option("--prefix", prefix);
  dump->add_flag("--no-check", no_check);
  CLI::App* put = app.add_subcommand("put");
  common(put);
  put->add_option("--key", key)->required();
  put->add_option("--hex", hex)->required();
  CLI::App* get = app.add_subcommand("get");
  common(get);
  get->add_option("--key", key)->required();
  CLI::App* raw_put = app.add_subcommand("raw-put");
  common(raw_put, false);
  raw_put->add_option("--key", key)->required();
  raw_put->add_option("--hex", hex)->required();
  CLI::App* raw_get = app.add_subcommand("raw-get");
  common(raw_get, false);
  raw_get->add_option("--key", key)->required();
  CLI::App* rotate = app.add_subcommand("rotate");
  common(rotate);
  CLI11_PARSE(app, argc, argv);

  if (load->parsed()) return Load(dir, key_file, ledger, writers, seed, prefix);
  if (dump->parsed()) return Dump(dir, key_file, enc, prefix, !no_check);
  if (put->parsed()) {
    Opened o = Open(dir, key_file, enc);
    auto bytes = HexDecode(hex);
    if (!bytes.ok()) Die(bytes.error());
    barrier::BarrierTxn t;
    t.ops.push_back(barrier::BarrierOp::Put(key, SecretBytes(*bytes)));
    auto r = o.barrier->Commit(std::move(t));
    if (!r.ok()) Die(r.error());
    return 0;
  }
  if (get->parsed()) {
    Opened o = Open(dir, key_file, enc);
    auto r = o.barrier->Get(key);
    if (!r.ok()) Die(r.error(), r.error().code() == StatusCode::kDataLoss ? 4 : 1);
    if (!r->has_value()) Die(NotFoundError(key));
    std::printf("%s %s\n", Hex((*r)->value.view()).c_str(), (*r)->stale ? "stale" : "current");
    return 0;
  }
  if (raw_put->parsed()) {
    Opened o = Open(dir, "", "", false);
    auto bytes = HexDecode(hex);
    if (!bytes.ok()) Die(bytes.error());
    storage::Txn t;
    t.ops.push_back(storage::Op::Put(key, *bytes));
    auto r = o.backend->Commit(std::move(t));
    if (!r.ok()) Die(r.error());
    return 0;
  }
  if (raw_get->parsed()) {
    Opened o = Open(dir, "", "", false);
    auto r = o.backend->Get(key);
    if (!r.ok()) Die(r.error());
    if (!r->has_value()) Die(NotFoundError(key));
    std::printf("%s\n", Hex((*r)->value).c_str());
    return 0;
  }
  if (rotate->parsed()) {
    Opened o = Open(dir, key_file, enc);
    auto t = o.barrier->Rotate();
    if (!t.ok()) Die(t.error());
    std::printf("%u\n", *t);
    return 0;
  }
  return 1;
}
