#include "sigil/leases/leases.h"

#include <algorithm>
#include <cstdio>
#include <set>
#include <system_error>

#include <sys/resource.h>
#include <unistd.h>

#include "sigil/base/encoding.h"
#include "sigil/base/logging.h"
#include "sigil/crypto/hash.h"

namespace sigil::leases {
namespace {

int64_t Millis(Clock::TimePoint t) { return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count(); }
Clock::TimePoint FromMillis(int64_t ms) {
  return Clock::TimePoint(std::chrono::duration_cast<Clock::TimePoint::duration>(std::chrono::milliseconds(ms)));
}

std::string RecordKey(const std::string& id) { return std::string(Manager::kRecordPrefix) + id; }
std::string TokenKey(const std::string& token_key, const std::string& id) {
  return std::string(Manager::kTokenPrefix) + Manager::Digest(token_key) + "/" + Manager::Digest(id);
}

// The time encoded in a due key; nullopt for a key that is not one.
std::optional<int64_t> DueMillis(std::string_view key) {
  if (!key.starts_with(Manager::kDuePrefix)) return std::nullopt;
  std::string_view t = key.substr(Manager::kDuePrefix.size(), 20);
  if (t.size() != 20 || t.find_first_not_of("0123456789") != std::string_view::npos) return std::nullopt;
  return std::stoll(std::string(t));
}

// A lease id: a relative path without empty, "." or ".." segments or control characters.
bool ValidId(std::string_view id) {
  if (id.empty() || id.size() > 1024 || id.front() == '/' || id.back() == '/') return false;
  size_t start = 0;
  while (start <= id.size()) {
    size_t end = id.find('/', start);
    if (end == std::string_view::npos) end = id.size();
    std::string_view seg = id.substr(start, end - start);
    if (seg.empty() || seg == "." || seg == "..") return false;
    start = end + 1;
  }
  return std::none_of(id.begin(), id.end(), [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; });
}

// Revocation is background work: its threads run at a lower scheduling priority (nice 10,
// per thread on Linux), so a storm of expiries yields the CPU to foreground requests.
void Background() { (void)setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), 10); }

}  // namespace

std::string Manager::Digest(std::string_view s) { return HexEncode(crypto::Sha256(s)).substr(0, 32); }

std::string Manager::IdFor(std::string_view path, const std::string& key) {
  while (path.ends_with('/')) path.remove_suffix(1);
  return std::string(path) + "/h" + Digest(key);
}

std::string Manager::DueKey(Clock::TimePoint due, const std::string& id) {
  char t[24];
  std::snprintf(t, sizeof t, "%020lld", static_cast<long long>(std::max<int64_t>(0, Millis(due))));
  return std::string(kDuePrefix) + t + "/" + Digest(id);
}

Manager::Manager(store::ObjectStore* store, Clock* clock, Options options) : store_(store), clock_(clock), options_(options) {}

Manager::~Manager() { Stop(); }

void Manager::Register(const std::string& kind, std::shared_ptr<Revoker> revoker) {
  std::lock_guard<std::mutex> l(mu_);
  revokers_[kind] = std::move(revoker);
}

void Manager::Start() {
  std::lock_guard<std::mutex> l(mu_);
  if (!threads_.empty()) return;
  stopping_ = false;
  stopping_flag_ = false;
  threads_.emplace_back([this] {
    Background();
    Loop();
  });
}

void Manager::Stop() {
  std::vector<std::thread> threads;
  {
    std::lock_guard<std::mutex> l(mu_);
    stopping_ = true;
    stopping_flag_ = true;  // a pass in progress stops after the revocations in flight
    threads.swap(threads_);
  }
  cv_.notify_all();
  for (std::thread& t : threads) t.join();
}

SecretBytes Manager::Encode(const Lease& l) const {
  Json j = {{"id", l.id},
            {"kind", l.kind},
            {"data", l.data},
            {"token_key", l.token_key},
            {"issued", Millis(l.issued)},
            {"expires", Millis(l.expires)},
            {"last_renewal", l.last_renewal ? Json(Millis(*l.last_renewal)) : Json(nullptr)},
            {"max_expires", l.max_expires ? Json(Millis(*l.max_expires)) : Json(nullptr)},
            {"renewable", l.renewable},
            {"job", l.job},
            {"requested", l.requested},
            {"attempts", l.attempts},
            {"last_error", l.last_error},
            {"due", Millis(l.due)}};
  return SecretBytes(j.dump());
}

Result<std::optional<Lease>> Manager::Load(const std::string& id) {
  SIGIL_ASSIGN_OR_RETURN(std::optional<store::Object> o, store_->Get(RecordKey(id)));
  if (!o) return std::optional<Lease>();
  Json j = Json::parse(o->doc.view(), nullptr, false);
  if (!j.is_object() || !j.contains("id") || !j["id"].is_string() || !j.contains("due")) {
    return DataLossError("lease record " + o->key + " is malformed");
  }
  Lease l;
  l.id = j["id"].get<std::string>();
  l.kind = j.value("kind", "");
  l.data = j.value("data", Json::object());
  l.token_key = j.value("token_key", "");
  l.issued = FromMillis(j.value("issued", int64_t{0}));
  l.expires = FromMillis(j.value("expires", int64_t{0}));
  if (j.contains("last_renewal") && j["last_renewal"].is_number_integer()) l.last_renewal = FromMillis(j["last_renewal"].get<int64_t>());
  if (j.contains("max_expires") && j["max_expires"].is_number_integer()) l.max_expires = FromMillis(j["max_expires"].get<int64_t>());
  l.renewable = j.value("renewable", false);
  l.job = j.value("job", false);
  l.requested = j.value("requested", false);
  l.attempts = j.value("attempts", 0);
  l.last_error = j.value("last_error", "");
  l.due = FromMillis(j.value("due", int64_t{0}));
  l.revision = o->revision;
  return std::optional<Lease>(std::move(l));
}

Status Manager::Prepare(Lease* lease, store::SideEffects* also) {
  if (!ValidId(lease->id)) return InvalidArgumentError("invalid lease id");
  lease->due = lease->expires;
  also->compares.push_back({RecordKey(lease->id), 0});
  also->puts.emplace_back(RecordKey(lease->id), Encode(*lease));
  also->puts.emplace_back(DueKey(lease->due, lease->id), SecretBytes(std::string_view(lease->id)));
  if (!lease->token_key.empty()) also->puts.emplace_back(TokenKey(lease->token_key, lease->id), SecretBytes(std::string_view(lease->id)));
  return OkStatus();
}

Status Manager::Add(Lease lease) {
  store::SideEffects also;
  SIGIL_RETURN_IF_ERROR(Prepare(&lease, &also));
  SIGIL_RETURN_IF_ERROR(store_->Apply(also).status());
  Wake();  // it may be due sooner than the worker's next pass
  return OkStatus();
}

void Manager::Wake() {
  {
    std::lock_guard<std::mutex> l(mu_);
    wake_ = true;
  }
  cv_.notify_all();
}

Result<std::optional<Lease>> Manager::Lookup(const std::string& id) {
  if (!ValidId(id) || id.starts_with(kJobIdPrefix)) return std::optional<Lease>();
  return Load(id);
}

Result<std::optional<Lease>> Manager::Job(const std::string& id) {
  if (!ValidId(id) || !id.starts_with(kJobIdPrefix)) return std::optional<Lease>();
  SIGIL_ASSIGN_OR_RETURN(std::optional<Lease> l, Load(id));
  if (l && !l->job) return std::optional<Lease>();
  return l;
}

Status Manager::Schedule(Lease job) {
  if (!ValidId(job.id) || !job.id.starts_with(kJobIdPrefix)) return InvalidArgumentError("invalid job id");
  job.job = true;
  job.renewable = false;
  job.token_key.clear();
  job.due = job.expires;
  for (int attempt = 0; attempt < 16; ++attempt) {
    SIGIL_ASSIGN_OR_RETURN(std::optional<Lease> old, Load(job.id));
    store::SideEffects also;
    Status st;
    if (old) {
      MoveDue(*old, job.due, &also);
      st = store_->Update(RecordKey(job.id), Encode(job), old->revision, also).status();
    } else {
      st = Prepare(&job, &also);
      if (st.ok()) st = store_->Apply(also).status();
    }
    if (st.ok()) {
      Wake();
      return OkStatus();
    }
    if (st.code() != StatusCode::kAborted && st.code() != StatusCode::kNotFound && st.code() != StatusCode::kAlreadyExists) return st;
  }
  return AbortedError("the job kept changing; try again");
}

Status Manager::Cancel(const std::string& id) {
  for (int attempt = 0; attempt < 16; ++attempt) {
    SIGIL_ASSIGN_OR_RETURN(std::optional<Lease> l, Job(id));
    if (!l) return OkStatus();
    Status st = Delete(*l, {});
    if (st.ok() || st.code() == StatusCode::kNotFound) return OkStatus();
    if (st.code() != StatusCode::kAborted) return st;
  }
  return AbortedError("the job kept changing; try again");
}

std::shared_ptr<Revoker> Manager::RevokerFor(const std::string& kind) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = revokers_.find(kind);
  return it != revokers_.end() ? it->second : nullptr;
}

Status Manager::Reschedule(const Lease& l, Clock::TimePoint due, int attempts, std::string error) {
  Lease next = l;
  next.due = due;
  next.attempts = attempts;
  next.last_error = std::move(error);
  store::SideEffects also;
  MoveDue(l, due, &also);
  return store_->Update(RecordKey(l.id), Encode(next), l.revision, also).status();
}

void Manager::MoveDue(const Lease& l, Clock::TimePoint due, store::SideEffects* also) {
  std::string from = DueKey(l.due, l.id), to = DueKey(due, l.id);
  if (from == to) return;  // (a transaction's puts precede its deletes: moving onto itself would delete it)
  also->deletes.push_back(std::move(from));
  also->puts.emplace_back(std::move(to), SecretBytes(std::string_view(l.id)));
}

Result<Lease> Manager::Renew(const std::string& id, std::optional<std::chrono::seconds> increment, bool* capped) {
  *capped = false;
  for (int attempt = 0; attempt < 16; ++attempt) {
    SIGIL_ASSIGN_OR_RETURN(std::optional<Lease> l, Lookup(id));
    if (!l) return NotFoundError("lease not found");
    if (!l->renewable) return InvalidArgumentError("lease is not renewable");
    Clock::TimePoint now = clock_->Now();
    // As Vault: a lease that has expired, or whose revocation was asked for or has begun, is
    // not renewed (its holder must not be able to undo a revocation).
    if (l->requested || l->attempts > 0 || l->expires <= now || l->due <= now) return InvalidArgumentError("lease expired");
    auto ttl = increment && increment->count() > 0 ? std::chrono::duration_cast<Clock::TimePoint::duration>(*increment)
                                                     : l->expires - (l->last_renewal ? *l->last_renewal : l->issued);
    Clock::TimePoint expires = now + ttl;
    if (l->max_expires && expires > *l->max_expires) {
      expires = *l->max_expires;
      *capped = true;
    }
    if (expires <= now) return InvalidArgumentError("past the max TTL, cannot renew");
    if (std::shared_ptr<Revoker> target = RevokerFor(l->kind)) SIGIL_RETURN_IF_ERROR(target->Renew(*l, expires));
    Lease next = *l;
    next.expires = expires;
    next.last_renewal = now;
    next.due = expires;
    next.attempts = 0;
    next.last_error.clear();
    store::SideEffects also;
    MoveDue(*l, expires, &also);
    Result<int64_t> r = store_->Update(RecordKey(id), Encode(next), l->revision, also);
    if (r.ok()) {
      next.revision = *r;
      return next;
    }
    if (r.error().code() == StatusCode::kNotFound) return NotFoundError("lease not found");
    if (r.error().code() != StatusCode::kAborted) return r.error();
  }
  return AbortedError("the lease kept changing; try again");
}

Status Manager::Delete(const Lease& l, store::SideEffects also) {
  also.deletes.push_back(DueKey(l.due, l.id));
  if (!l.token_key.empty()) also.deletes.push_back(TokenKey(l.token_key, l.id));
  Result<int64_t> r = store_->Delete(RecordKey(l.id), l.revision, also);
  if (r.ok()) {
    ++revoked_;
    return OkStatus();
  }
  return r.status();
}

Status Manager::Revoke(const std::string& id) {
  for (int attempt = 0; attempt < 16; ++attempt) {
    SIGIL_ASSIGN_OR_RETURN(std::optional<Lease> l, Lookup(id));
    if (!l) return NotFoundError("lease not found");
    std::shared_ptr<Revoker> revoker = RevokerFor(l->kind);
    if (!revoker) return FailedPreconditionError("no revoker for leases of kind \"" + l->kind + "\"");
    store::SideEffects also;
    l->requested = true;
    Result<std::optional<Clock::TimePoint>> done = revoker->Revoke(*l, &also);
    if (!done.ok()) {
      // The revocation stands: the workers retry it (requested, so nobody can renew it away).
      ++failures_;
      (void)Reschedule(*l, clock_->Now() + options_.retry_min, l->attempts + 1, done.error().message());
      Wake();
      return done.error();
    }
    std::optional<Clock::TimePoint> later = *done;
    if (later) {
      // The target is not over yet (a token renewed on its own path): it ends when it says.
      (void)Reschedule(*l, *later, 0, "");
      return OkStatus();
    }
    Status st = Delete(*l, std::move(also));
    if (st.ok() || st.code() == StatusCode::kNotFound) return OkStatus();
    if (st.code() != StatusCode::kAborted) return st;
  }
  return AbortedError("the lease kept changing; try again");
}

Status Manager::RevokeLater(const std::string& id) {
  for (int attempt = 0; attempt < 16; ++attempt) {
    SIGIL_ASSIGN_OR_RETURN(std::optional<Lease> l, Lookup(id));
    if (!l) return NotFoundError("lease not found");
    Lease asked = *l;
    asked.requested = true;
    Status st = Reschedule(asked, clock_->Now(), l->attempts, l->last_error);
    if (st.ok()) {
      Wake();
      return OkStatus();
    }
    if (st.code() == StatusCode::kNotFound) return OkStatus();  // ended meanwhile
    if (st.code() != StatusCode::kAborted) return st;
  }
  return AbortedError("the lease kept changing; try again");
}

Status Manager::Extend(const std::string& id, Clock::TimePoint expires) {
  for (int attempt = 0; attempt < 16; ++attempt) {
    SIGIL_ASSIGN_OR_RETURN(std::optional<Lease> l, Lookup(id));
    if (!l) return NotFoundError("lease not found");
    Lease next = *l;
    next.expires = expires;
    next.last_renewal = clock_->Now();
    // A requested revocation stands: the renewal moves the expiry shown, not when it is due.
    Status st = l->requested ? Reschedule(next, l->due, l->attempts, l->last_error) : Reschedule(next, expires, 0, "");
    if (st.ok() || st.code() == StatusCode::kNotFound) return st;
    if (st.code() != StatusCode::kAborted) return st;
  }
  return AbortedError("the lease kept changing; try again");
}

Result<size_t> Manager::RevokePrefix(const std::string& raw_prefix, bool force, bool sync) {
  // As Vault: the prefix is a lease id when one has that id, else a folder (so
  // "database/creds/ro" never reaches database/creds/root/...).
  std::string prefix = raw_prefix;
  std::vector<std::string> keys;
  SIGIL_ASSIGN_OR_RETURN(std::optional<store::Object> exact, store_->Get(RecordKey(prefix)));
  if (exact && !prefix.ends_with("/")) {
    keys.push_back(RecordKey(prefix));
  } else {
    if (!prefix.ends_with("/")) prefix += "/";
    SIGIL_ASSIGN_OR_RETURN(keys, store_->Keys(RecordKey(prefix)));
  }
  size_t n = 0;
  Status first_failure;
  for (const std::string& k : keys) {
    std::string id = k.substr(kRecordPrefix.size());
    if (!force) {
      Status st = sync ? Revoke(id) : RevokeLater(id);
      if (st.ok()) {
        ++n;
      } else if (st.code() != StatusCode::kNotFound) {
        if (!sync) return st;
        if (first_failure.ok()) first_failure = st;  // the others still go
      }
      continue;
    }
    SIGIL_ASSIGN_OR_RETURN(std::optional<Lease> l, Lookup(id));
    if (!l) continue;
    Status st = Delete(*l, {});
    if (st.ok()) {
      ++n;
      log::Warn("lease revoked by force: its target was not asked", {{"lease_id", id}});
    } else if (st.code() != StatusCode::kNotFound && st.code() != StatusCode::kAborted) {
      return st;
    }
  }
  if (!first_failure.ok()) return first_failure;
  return n;
}

Result<size_t> Manager::RevokeByToken(const std::string& token_key) {
  SIGIL_ASSIGN_OR_RETURN(store::ObjectList l, store_->List(std::string(kTokenPrefix) + Digest(token_key) + "/", "", 0));
  size_t n = 0;
  for (const store::Object& o : l.items) {
    Status st = RevokeLater(std::string(o.doc.view()));
    if (st.ok()) {
      ++n;
    } else if (st.code() == StatusCode::kNotFound) {
      (void)store_->Delete(o.key, o.revision);  // the lease ended another way
    } else {
      return st;
    }
  }
  return n;
}

Result<bool> Manager::HasLeasesOf(const std::string& token_key) {
  SIGIL_ASSIGN_OR_RETURN(store::ObjectList l, store_->List(std::string(kTokenPrefix) + Digest(token_key) + "/", "", 1));
  return !l.items.empty();
}

Result<std::vector<std::string>> Manager::List(const std::string& prefix) {
  SIGIL_ASSIGN_OR_RETURN(std::vector<std::string> keys, store_->Keys(RecordKey(prefix)));
  std::set<std::string> out;
  for (const std::string& k : keys) {
    if (std::string_view(k).substr(kRecordPrefix.size()).starts_with(kJobIdPrefix)) continue;
    std::string rest = k.substr(kRecordPrefix.size() + prefix.size());
    size_t slash = rest.find('/');
    out.insert(slash == std::string::npos ? rest : rest.substr(0, slash + 1));
  }
  return std::vector<std::string>(out.begin(), out.end());
}

Result<size_t> Manager::Tidy() {
  size_t fixed = 0;
  // Index entries whose lease is gone.
  for (std::string_view prefix : {kDuePrefix, kTokenPrefix}) {
    SIGIL_ASSIGN_OR_RETURN(store::ObjectList l, store_->List(std::string(prefix), "", 0));
    for (const store::Object& o : l.items) {
      SIGIL_ASSIGN_OR_RETURN(std::optional<store::Object> rec, store_->Get(RecordKey(std::string(o.doc.view()))));
      if (rec) continue;
      if (store_->Delete(o.key, o.revision).ok()) ++fixed;
    }
  }
  // Leases without their due entry (a write interrupted by hand): due now.
  SIGIL_ASSIGN_OR_RETURN(std::vector<std::string> records, store_->Keys(std::string(kRecordPrefix)));
  for (const std::string& k : records) {
    SIGIL_ASSIGN_OR_RETURN(std::optional<Lease> l, Load(k.substr(kRecordPrefix.size())));
    if (!l) continue;
    SIGIL_ASSIGN_OR_RETURN(std::optional<store::Object> due, store_->Get(DueKey(l->due, l->id)));
    if (due) continue;
    Clock::TimePoint now = clock_->Now();
    store::SideEffects also;
    also.puts.emplace_back(DueKey(now, l->id), SecretBytes(std::string_view(l->id)));
    Lease next = *l;
    next.due = now;
    if (store_->Update(k, Encode(next), l->revision, also).ok()) ++fixed;
  }
  return fixed;
}

bool Manager::Process(const std::string& due_key, const std::string& id) {
  Result<std::optional<Lease>> loaded = Load(id);
  if (!loaded.ok()) {
    // Moved to the back of the line, so it cannot hold up the leases behind it.
    log::Error("lease: cannot read a due lease; it will be looked at again later", {{"lease_id", id}, {"error", loaded.error().message()}});
    store::SideEffects later;
    later.puts.emplace_back(DueKey(clock_->Now() + options_.retry_max, id), SecretBytes(std::string_view(id)));
    later.deletes.push_back(due_key);
    (void)store_->Apply(later);
    return false;
  }
  if (!*loaded) {  // the lease ended another way: its entry goes (unless it came back meanwhile)
    (void)store_->Apply(store::SideEffects{{{RecordKey(id), 0}}, {}, {due_key}});
    return false;
  }
  Lease& l = **loaded;
  if (DueKey(l.due, l.id) != due_key) {  // a stale entry (the lease was rescheduled): it goes
    (void)store_->Apply(store::SideEffects{{{RecordKey(id), l.revision}}, {}, {due_key}});
    return false;
  }
  std::shared_ptr<Revoker> revoker = RevokerFor(l.kind);
  store::SideEffects also;
  Result<std::optional<Clock::TimePoint>> done =
      revoker ? revoker->Revoke(l, &also) : Result<std::optional<Clock::TimePoint>>(FailedPreconditionError("no revoker for leases of kind \"" + l.kind + "\""));
  if (done.ok() && done->has_value()) {
    Lease extended = l;
    extended.expires = **done;
    (void)Reschedule(extended, **done, 0, "");
    return false;
  }
  if (done.ok()) {
    Status st = Delete(l, std::move(also));
    if (st.ok()) return true;
    if (st.code() == StatusCode::kNotFound || st.code() == StatusCode::kAborted) return false;  // changed meanwhile
    done = st;
  }
  // Failed: again later, with exponential backoff, forever (the target may still hold it).
  ++failures_;
  int attempts = l.attempts + 1;
  auto wait = options_.retry_min * (int64_t{1} << std::min(attempts - 1, 20));
  wait = std::min<std::chrono::milliseconds>(wait, options_.retry_max);
  log::Warn("lease: revocation failed; it will be retried",
            {{"lease_id", l.id}, {"attempts", attempts}, {"retry_ms", static_cast<int64_t>(wait.count())},
             {"error", done.error().message()}});
  (void)Reschedule(l, clock_->Now() + wait, attempts, done.error().message());
  return false;
}

Result<size_t> Manager::RunOnce() {
  int64_t now = Millis(clock_->Now());
  // A peek first: when nothing is due (the usual case) a pass decrypts one entry, not a batch.
  SIGIL_ASSIGN_OR_RETURN(store::ObjectList first, store_->List(std::string(kDuePrefix), "", 1));
  last_seen_ = 0;
  if (first.items.empty() || DueMillis(first.items[0].key).value_or(now + 1) > now) return size_t{0};
  SIGIL_ASSIGN_OR_RETURN(store::ObjectList l, store_->List(std::string(kDuePrefix), "", options_.batch));
  std::vector<std::pair<std::string, std::string>> due;
  for (const store::Object& o : l.items) {
    std::optional<int64_t> t = DueMillis(o.key);
    if (!t || *t > now) break;  // sorted: the rest are later
    due.emplace_back(o.key, std::string(o.doc.view()));
  }
  last_seen_ = due.size();
  if (due.empty()) return size_t{0};
  std::atomic<size_t> next{0}, ended{0};
  auto work = [&] {
    for (size_t i = next++; i < due.size() && !stopping_flag_.load(); i = next++) {
      if (Process(due[i].first, due[i].second)) ++ended;
    }
  };
  std::vector<std::thread> helpers;
  size_t n = std::min(options_.parallelism, due.size());
  for (size_t i = 1; i < n; ++i) {
    try {
      helpers.emplace_back([&work] {
        Background();
        work();
      });
    } catch (const std::system_error&) {
      break;  // no more threads now: the pass goes on with those it has
    }
  }
  work();
  for (std::thread& t : helpers) t.join();
  return ended.load();
}

void Manager::Loop() {
  std::unique_lock<std::mutex> l(mu_);
  while (!stopping_) {
    l.unlock();
    Result<size_t> n = RunOnce();
    if (!n.ok()) log::Error("lease: the revocation pass failed", {{"error", n.error().message()}});
    l.lock();
    // More may be due: no wait, but only while passes end leases (never a spin on entries that
    // stay).
    if (n.ok() && *n > 0 && last_seen_.load() >= options_.batch) continue;
    cv_.wait_for(l, options_.poll, [this] { return stopping_ || wake_; });
    wake_ = false;
  }
}

}  // namespace sigil::leases
