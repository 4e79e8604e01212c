#include "sigil/kms/envelope.h"

#include <algorithm>

#include "sigil/base/encoding.h"
#include "sigil/base/logging.h"
#include "sigil/base/metrics.h"
#include "sigil/crypto/aes.h"
#include "sigil/crypto/hash.h"
#include "sigil/crypto/random.h"
#include "sigil/proto/kmsv2.pb.h"

namespace sigil::kms {
namespace {

using k8s::kmsv2::EncryptedObject;

constexpr size_t kSeedSize = 32;
constexpr size_t kInfoSize = 32;
constexpr size_t kNonceSize = 12;
constexpr size_t kKeyIdMax = 1024;
constexpr size_t kDekSourceMax = 1024;
constexpr size_t kAnnotationsMax = 32 * 1024;
constexpr auto kHealthyReuse = std::chrono::seconds(20);
constexpr auto kUnhealthyReuse = std::chrono::seconds(3);
constexpr int kTypeAesGcmKey = 0;
constexpr int kTypeSeed = 1;

// A DNS-1123 subdomain with at least two labels (k8s IsFullyQualifiedDomainName).
bool IsFqdn(std::string_view s) {
  if (s.empty() || s.size() > 253 || s.find('.') == std::string_view::npos) return false;
  size_t start = 0;
  while (start <= s.size()) {
    size_t end = s.find('.', start);
    if (end == std::string_view::npos) end = s.size();
    std::string_view label = s.substr(start, end - start);
    if (label.empty() || label.size() > 63) return false;
    auto alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
    if (!alnum(label.front()) || !alnum(label.back())) return false;
    for (char c : label) {
      if (!alnum(c) && c != '-') return false;
    }
    start = end + 1;
    if (end == s.size()) break;
  }
  return true;
}

Status ValidateKeyId(std::string_view key_id) {
  if (key_id.empty()) return InvalidArgumentError("keyID is empty");
  if (key_id.size() > kKeyIdMax) {
    return InvalidArgumentError("keyID is " + std::to_string(key_id.size()) + " bytes, which exceeds the max size of " +
                                std::to_string(kKeyIdMax));
  }
  return OkStatus();
}

Status ValidateDekSource(std::string_view source) {
  if (source.empty()) return InvalidArgumentError("failed to validate encrypted DEK source: encrypted DEK source is empty");
  if (source.size() > kDekSourceMax) {
    return InvalidArgumentError("failed to validate encrypted DEK source: encrypted DEK source is " +
                                std::to_string(source.size()) + " bytes, which exceeds the max size of " +
                                std::to_string(kDekSourceMax));
  }
  return OkStatus();
}

template <typename Map>
Status ValidateAnnotations(const Map& annotations) {
  size_t total = 0;
  for (const auto& [k, v] : annotations) {
    if (!IsFqdn(k)) {
      return InvalidArgumentError("failed to validate annotations: annotations: Invalid value: \"" + std::string(k) +
                                  "\": should be a domain with at least two segments separated by dots");
    }
    total += k.size() + v.size();
  }
  if (total > kAnnotationsMax) {
    return InvalidArgumentError("failed to validate annotations: total size of annotations is " + std::to_string(total) +
                                ", which exceeds the max size of " + std::to_string(kAnnotationsMax));
  }
  return OkStatus();
}

Status ValidateObject(const EncryptedObject& o) {
  int type = o.encrypteddeksourcetype();
  if (type != kTypeAesGcmKey && type != kTypeSeed) {
    return InvalidArgumentError("unknown encryptedDEKSourceType: " + std::to_string(type));
  }
  if (o.encrypteddata().empty()) return InvalidArgumentError("encrypted data is empty");
  SIGIL_RETURN_IF_ERROR(ValidateDekSource(o.encrypteddeksource()));
  if (Status s = ValidateKeyId(o.keyid()); !s.ok()) return InvalidArgumentError("failed to validate key id: " + s.message());
  return ValidateAnnotations(o.annotations());
}

void PutU16Prefixed(std::string_view s, std::string* out) {
  out->push_back(static_cast<char>((s.size() >> 8) & 0xff));
  out->push_back(static_cast<char>(s.size() & 0xff));
  out->append(s);
}

void PutU32(uint32_t v, std::string* out) {
  for (int i = 3; i >= 0; --i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

// The decrypt cache's key: what identifies a wrapped seed (kube-apiserver's generateCacheKey
// layout, hashed).
std::string CacheKey(int type, std::string_view wrapped, std::string_view key_id,
                     const std::map<std::string, std::string>& annotations) {
  std::string b;
  PutU32(static_cast<uint32_t>(type), &b);
  PutU16Prefixed(wrapped, &b);
  PutU16Prefixed(key_id, &b);
  if (!annotations.empty()) {
    PutU32(static_cast<uint32_t>(annotations.size()), &b);
    for (const auto& [k, v] : annotations) {  // std::map: sorted by key
      PutU16Prefixed(k, &b);
      PutU16Prefixed(v, &b);
    }
  }
  return crypto::Sha256(b);
}

// A Prometheus label value: backslash, quote and newline escaped (provider names come from
// the operator's file, but may hold anything but ':').
std::string LabelValue(std::string_view v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') out.push_back('\\');
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out.push_back(c);
  }
  return out;
}

metrics::Counter* Calls(const std::string& provider, const char* method, const char* result) {
  return metrics::Registry::Global().GetCounter(
      "sigil_kms_client_calls_total", "Calls to KMS v2 plugins by EncryptionConfiguration kms providers.",
      "provider=\"" + LabelValue(provider) + "\",method=\"" + method + "\",result=\"" + result + "\"");
}

constexpr auto kFailureMemory = std::chrono::seconds(1);

}  // namespace

struct Provider::State {
  SecretBytes seed;
  std::string key_id;
  std::string wrapped;
  std::map<std::string, std::string> annotations;
  Clock::TimePoint expires;
  std::string cache_key;
};

struct Provider::Pending {
  bool done = false;
  Status error;
  SecretBytes seed;
};

std::string KeyIdHash(std::string_view key_id) {
  if (key_id.empty()) return "";
  return "sha256:" + HexEncode(crypto::Sha256(key_id));
}

Provider::Provider(std::unique_ptr<Client> client, ProviderOptions options, Clock* clock)
    : o_(std::move(options)), prefix_("k8s:enc:kms:v2:" + o_.name + ":"), clock_(clock), client_(std::move(client)) {}

std::unique_ptr<Provider> Provider::Start(std::unique_ptr<Client> client, ProviderOptions options, Clock* clock) {
  std::unique_ptr<Provider> p(new Provider(std::move(client), std::move(options), clock));
  if (Status s = p->Probe(); !s.ok()) {
    log::Warn("kms provider: the plugin is not usable yet; retrying in the background",
              {{"provider", p->o_.name}, {"error", s.message()}});
  } else {
    log::Info("kms provider ready", {{"provider", p->o_.name}, {"key_id_hash", KeyIdHash(p->key_id())}});
  }
  p->poller_ = std::thread([raw = p.get()] { raw->Poll(); });
  return p;
}

Provider::~Provider() {
  client_->Shutdown();  // a probe stuck on a hung plugin ends now, not at its timeout
  {
    std::lock_guard<std::mutex> l(poll_mu_);
    stopping_ = true;
  }
  poll_cv_.notify_all();
  if (poller_.joinable()) poller_.join();
}

void Provider::Poll() {
  std::unique_lock<std::mutex> l(poll_mu_);
  while (!stopping_) {
    bool healthy = LastProbe().ok();
    poll_cv_.wait_for(l, healthy ? o_.poll_healthy : o_.poll_unhealthy, [this] { return stopping_ || probe_now_; });
    if (stopping_) break;
    probe_now_ = false;
    l.unlock();
    Status s = Probe();
    if (!s.ok()) log::Warn("kms provider: probe failed", {{"provider", o_.name}, {"error", s.message()}});
    SweepCache();
    l.lock();
  }
}

std::shared_ptr<const Provider::State> Provider::CurrentState() const {
  std::lock_guard<std::mutex> l(state_mu_);
  return state_;
}

void Provider::SetState(std::shared_ptr<const State> next) const {
  std::shared_ptr<const State> old;
  {
    std::lock_guard<std::mutex> l(state_mu_);
    old = std::exchange(state_, std::move(next));
  }
  // A replaced seed stays readable from memory for the cache's TTL from now (the last writes
  // with it were just before).
  if (old && old->cache_key != state_->cache_key) CacheSeed(old->cache_key, old->seed.Clone());
}

std::string Provider::key_id() const {
  auto s = CurrentState();
  return s ? s->key_id : "";
}

Status Provider::LastProbe() const {
  std::lock_guard<std::mutex> l(health_mu_);
  return probed_ ? last_probe_ : UnavailableError("kms provider " + o_.name + " has not been probed yet");
}

Status Provider::Probe() const {
  std::lock_guard<std::mutex> l(probe_mu_);
  Status s = ProbeLocked();
  std::lock_guard<std::mutex> h(health_mu_);
  last_probe_ = s;
  last_probe_at_ = clock_->MonotonicNow();
  probed_ = true;
  return s;
}

Status Provider::Health() const {
  bool stale = true;
  Status last = UnavailableError("kms provider " + o_.name + " has not been probed yet");
  {
    std::lock_guard<std::mutex> l(health_mu_);
    if (probed_) {
      auto age = clock_->MonotonicNow() - last_probe_at_;
      stale = last_probe_.ok() ? age >= kHealthyReuse : age >= kUnhealthyReuse;
      last = last_probe_;
    }
  }
  if (stale) {
    // A health check never waits for the plugin (it runs on an I/O thread and anyone may
    // ask): it has the poller probe now, and the next check sees the result.
    {
      std::lock_guard<std::mutex> l(poll_mu_);
      probe_now_ = true;
    }
    poll_cv_.notify_all();
  }
  return last;
}

Status Provider::ProbeLocked() const {
  Clock::TimePoint before = clock_->Now();
  Result<StatusResponse> st = client_->Status();
  Calls(o_.name, "Status", st.ok() ? "ok" : "error")->Inc();
  if (!st.ok()) {
    return UnavailableError("failed to perform status section of the healthz check for KMS Provider " + o_.name +
                            ", error: " + st.error().message());
  }
  std::vector<std::string> errs;
  if (st->healthz != "ok") errs.push_back("got unexpected healthz status: " + st->healthz);
  if (st->version != "v2" && st->version != "v2beta1") {
    errs.push_back("expected KMSv2 API version v2, got " + st->version.substr(0, 64));
  } else if (first_version_.empty()) {
    first_version_ = st->version;
  } else if (first_version_ != st->version) {
    errs.push_back("KMSv2 API version should not change after the initial status response version " + first_version_ +
                   ", got " + st->version);
  }
  if (Status k = ValidateKeyId(st->key_id); !k.ok()) {
    errs.push_back("got invalid KMSv2 KeyID hash \"" + KeyIdHash(st->key_id) + "\": " + k.message());
  } else {
    // Same key: the seed may be used for writes a while longer. New key: a new seed, wrapped
    // under it.
    std::shared_ptr<const State> cur = CurrentState();
    Clock::TimePoint expires = before + o_.write_seed_ttl;
    if (cur && cur->key_id == st->key_id) {
      SetState(std::make_shared<State>(
          State{cur->seed.Clone(), cur->key_id, cur->wrapped, cur->annotations, expires, cur->cache_key}));
    } else {
      SecretBytes seed = crypto::RandomKey(kSeedSize);
      Result<EncryptResponse> enc = client_->Encrypt(crypto::RandomUuid(), seed);
      Calls(o_.name, "Encrypt", enc.ok() ? "ok" : "error")->Inc();
      Status gen = enc.ok() ? OkStatus() : enc.error();
      if (gen.ok()) gen = ValidateDekSource(enc->ciphertext);
      if (gen.ok()) {
        if (Status kid = ValidateKeyId(enc->key_id); !kid.ok()) gen = InvalidArgumentError("failed to validate key id: " + kid.message());
      }
      if (gen.ok()) gen = ValidateAnnotations(enc->annotations);
      if (gen.ok() && enc->key_id != st->key_id) {
        gen = InvalidArgumentError("the plugin wrapped the seed under key ID hash \"" + KeyIdHash(enc->key_id) +
                                   "\", not the key ID its Status reported (\"" + KeyIdHash(st->key_id) + "\")");
      }
      if (!gen.ok()) {
        errs.push_back("failed to rotate DEK: " + gen.message() + " (status key ID hash \"" + KeyIdHash(st->key_id) +
                       "\", current key ID hash \"" + (cur ? KeyIdHash(cur->key_id) : std::string()) + "\")");
      } else {
        std::string key = CacheKey(kTypeSeed, enc->ciphertext, enc->key_id, enc->annotations);
        SetState(std::make_shared<State>(State{std::move(seed), enc->key_id, enc->ciphertext, enc->annotations, expires, key}));
        log::Info("kms provider: new DEK seed", {{"provider", o_.name},
                                                {"key_id_hash", KeyIdHash(st->key_id)},
                                                {"previous_key_id_hash", cur ? KeyIdHash(cur->key_id) : std::string()}});
      }
    }
  }
  if (errs.empty()) return OkStatus();
  std::string m = "kmsv2 Provider " + o_.name + " is not healthy, error: ";
  for (size_t i = 0; i < errs.size(); ++i) m += (i ? ", " : "") + errs[i];
  return UnavailableError(std::move(m));
}

Result<std::string> Provider::Encrypt(std::string_view plaintext, std::string_view aad) const {
  std::shared_ptr<const State> st = CurrentState();
  if (!st) {
    Status last = LastProbe();
    return UnavailableError("kms provider " + o_.name + " has no DEK seed yet (got unexpected nil transformer): " +
                            last.message());
  }
  Clock::TimePoint now = clock_->Now();
  if (now > st->expires) {
    return UnavailableError("kms provider " + o_.name + ": encryptedDEKSource with keyID hash \"" + KeyIdHash(st->key_id) +
                            "\" expired at " + FormatRfc3339(st->expires) + " (current time is " + FormatRfc3339(now) +
                            "): the plugin has not answered a healthy Status since");
  }
  std::string info = crypto::RandomBytes(kInfoSize);
  SIGIL_ASSIGN_OR_RETURN(SecretBytes dek, crypto::HkdfExpandSha256(st->seed, info, 32));
  std::string nonce = crypto::RandomNonce(kNonceSize);
  SIGIL_ASSIGN_OR_RETURN(std::string sealed, crypto::AesGcmSeal(dek, nonce, plaintext, aad));
  EncryptedObject o;
  o.set_encrypteddata(info + nonce + sealed);
  o.set_keyid(st->key_id);
  o.set_encrypteddeksource(st->wrapped);
  for (const auto& [k, v] : st->annotations) (*o.mutable_annotations())[k] = v;
  o.set_encrypteddeksourcetype(k8s::kmsv2::HKDF_SHA256_XNONCE_AES_GCM_SEED);
  std::string out = prefix_;
  if (!o.AppendToString(&out)) return InternalError("serialising a KMS v2 EncryptedObject failed");
  return out;
}

void Provider::CacheSeed(const std::string& cache_key, SecretBytes seed) const {
  std::lock_guard<std::mutex> l(cache_mu_);
  CacheSeedLocked(cache_key, std::move(seed));
}

void Provider::CacheSeedLocked(const std::string& cache_key, SecretBytes seed) const {
  Clock::TimePoint now = clock_->Now();
  if (cache_.size() >= o_.decrypt_cache_max && !cache_.contains(cache_key)) {
    std::erase_if(cache_, [now](const auto& kv) { return kv.second.expires <= now; });
    while (!cache_.empty() && cache_.size() >= o_.decrypt_cache_max) {
      auto oldest = std::min_element(cache_.begin(), cache_.end(),
                                     [](const auto& a, const auto& b) { return a.second.expires < b.second.expires; });
      cache_.erase(oldest);
    }
  }
  cache_[cache_key] = CachedSeed{std::move(seed), now + o_.decrypt_cache_ttl};
}

void Provider::SweepCache() const {
  Clock::TimePoint now = clock_->Now();
  std::lock_guard<std::mutex> l(cache_mu_);
  std::erase_if(cache_, [now](const auto& kv) { return kv.second.expires <= now; });
  std::erase_if(failed_, [now](const auto& kv) { return kv.second.second <= now; });
}

Result<SecretBytes> Provider::OpenSeed(const std::string& key, int type, const std::string& wrapped,
                                       const std::string& key_id, const std::map<std::string, std::string>& annotations,
                                       bool may_call_out) const {
  std::shared_ptr<Pending> mine;
  {
    std::unique_lock<std::mutex> l(cache_mu_);
    Clock::TimePoint now = clock_->Now();
    auto it = cache_.find(key);
    if (it != cache_.end() && it->second.expires > now) return it->second.seed.Clone();
    if (!may_call_out) {
      return UnavailableError("kms provider " + o_.name + ": the value's DEK seed is not in memory and is not opened on "
                              "the storage commit path; read the value again");
    }
    auto f = failed_.find(key);
    if (f != failed_.end() && f->second.second > now) return f->second.first;
    if (auto p = pending_.find(key); p != pending_.end()) {
      // Another reader is asking the plugin for this seed: wait for its answer.
      std::shared_ptr<Pending> theirs = p->second;
      cache_cv_.wait(l, [&] { return theirs->done; });
      if (!theirs->error.ok()) return theirs->error;
      return theirs->seed.Clone();
    }
    mine = std::make_shared<Pending>();
    pending_[key] = mine;
  }
  Result<SecretBytes> seed = client_->Decrypt(crypto::RandomUuid(), DecryptRequest{wrapped, key_id, annotations});
  Calls(o_.name, "Decrypt", seed.ok() ? "ok" : "error")->Inc();
  Status err = seed.ok() ? OkStatus() : Status(seed.error().code(), "failed to decrypt DEK, error: " + seed.error().message());
  if (err.ok()) {
    size_t n = seed->size();
    bool ok = type == kTypeSeed ? n >= kSeedSize : crypto::IsValidAesKeySize(n);
    if (!ok) {
      err = DataLossError(type == kTypeSeed ? "invalid seed length " + std::to_string(n) + " used for key generation"
                                            : "the plugin returned a DEK of " + std::to_string(n) + " bytes");
    }
  }
  {
    std::lock_guard<std::mutex> l(cache_mu_);
    mine->done = true;
    if (err.ok()) {
      mine->seed = seed->Clone();
      CacheSeedLocked(key, seed->Clone());
    } else {
      mine->error = err;
      failed_[key] = {err, clock_->Now() + kFailureMemory};
    }
    pending_.erase(key);
  }
  cache_cv_.notify_all();
  if (!err.ok()) return err;
  return seed;
}

Result<EncryptedObjectFields> ParseEncryptedObject(std::string_view body) {
  EncryptedObject o;
  if (!o.ParseFromArray(body.data(), static_cast<int>(body.size()))) {
    return DataLossError("the stored KMS v2 EncryptedObject does not parse");
  }
  if (Status s = ValidateObject(o); !s.ok()) return DataLossError("invalid KMS v2 EncryptedObject: " + s.message());
  EncryptedObjectFields f;
  f.type = o.encrypteddeksourcetype();
  f.data = std::move(*o.mutable_encrypteddata());
  f.key_id = std::move(*o.mutable_keyid());
  f.wrapped = std::move(*o.mutable_encrypteddeksource());
  f.annotations.insert(o.annotations().begin(), o.annotations().end());
  return f;
}

Result<SecretBytes> Provider::Decrypt(std::string_view stored, std::string_view aad, bool* stale,
                                     bool may_call_out) const {
  SIGIL_ASSIGN_OR_RETURN(EncryptedObjectFields o, ParseEncryptedObject(stored.substr(prefix_.size())));
  std::shared_ptr<const State> st = CurrentState();
  if (!st) {
    return UnavailableError("kms provider " + o_.name + " has no state yet (got unexpected nil transformer)");
  }
  int type = o.type;
  std::string key = CacheKey(type, o.wrapped, o.key_id, o.annotations);
  SecretBytes seed;
  if (key == st->cache_key) {
    seed = st->seed.Clone();  // the current seed: always at hand
  } else {
    SIGIL_ASSIGN_OR_RETURN(seed, OpenSeed(key, type, o.wrapped, o.key_id, o.annotations, may_call_out));
  }
  std::string_view data = o.data;
  SecretBytes dek;
  if (type == kTypeSeed) {
    if (data.size() < kInfoSize) return DataLossError("the stored data was shorter than the required size");
    SIGIL_ASSIGN_OR_RETURN(dek, crypto::HkdfExpandSha256(seed, data.substr(0, kInfoSize), 32));
    data.remove_prefix(kInfoSize);
  } else {
    dek = std::move(seed);
  }
  if (data.size() < kNonceSize) return DataLossError("the stored data was shorter than the required size");
  SIGIL_ASSIGN_OR_RETURN(SecretBytes plain, crypto::AesGcmOpen(dek, data.substr(0, kNonceSize), data.substr(kNonceSize), aad));
  *stale = o.key_id != st->key_id || type != kTypeSeed;
  return plain;
}

barrier::KmsFactory ProviderFactory(ProviderOptions defaults, Clock* clock) {
  return [defaults, clock](const barrier::KmsProviderConfig& c) -> Result<std::unique_ptr<barrier::Transformer>> {
    ProviderOptions o = defaults;
    o.name = c.name;
    return std::unique_ptr<barrier::Transformer>(Provider::Start(NewGrpcClient(c.socket, c.timeout), o, clock));
  };
}

}  // namespace sigil::kms
