#include "sigil/storage/lmdb_backend.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <future>

#include "sigil/base/file.h"
#include "sigil/base/logging.h"
#include "sigil/base/metrics.h"

namespace sigil::storage {
namespace {

constexpr size_t kHeaderSize = 16;  // create_revision (8, big-endian) | mod_revision (8, BE)
constexpr char kRevisionKey[] = "revision";

void PutU64(uint64_t v, char* out) {
  for (int i = 7; i >= 0; --i) {
    out[i] = static_cast<char>(v & 0xff);
    v >>= 8;
  }
}

uint64_t GetU64(const char* in) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<unsigned char>(in[i]);
  return v;
}

MDB_val Val(std::string_view s) { return MDB_val{s.size(), const_cast<char*>(s.data())}; }
std::string_view View(const MDB_val& v) { return {static_cast<const char*>(v.mv_data), v.mv_size}; }

Status LmdbStatus(int rc, std::string_view what) {
  std::string m(what);
  m += ": ";
  m += mdb_strerror(rc);
  switch (rc) {
    case MDB_MAP_FULL:
    case ENOSPC: return ResourceExhaustedError("storage is full: " + m);
    case MDB_CORRUPTED:
    case MDB_PAGE_NOTFOUND:
    case MDB_INVALID:
    case MDB_VERSION_MISMATCH: return DataLossError(m);
    case EACCES:
    case EROFS: return PermissionDeniedError(m);
    case MDB_PANIC:
    case EIO: return UnavailableError(m);
    default: return InternalError(m);
  }
}

// True when the filesystem holding `dir` has (almost) no space left. LMDB reports a short
// write during commit as EIO, so this is how a full disk is told apart from a failing one.
bool FilesystemFull(const std::string& dir) {
  struct statvfs st {};
  if (::statvfs(dir.c_str(), &st) != 0) return false;
  return static_cast<uint64_t>(st.f_bavail) * st.f_frsize < 64 * 1024;
}

// Decodes one stored record. kDataLoss if the record is shorter than its header.
Result<KeyValue> Decode(std::string_view key, const MDB_val& v, bool keys_only) {
  if (v.mv_size < kHeaderSize) return DataLossError("storage record too short at key " + std::string(key));
  const char* p = static_cast<const char*>(v.mv_data);
  KeyValue kv;
  kv.key = std::string(key);
  kv.create_revision = static_cast<int64_t>(GetU64(p));
  kv.mod_revision = static_cast<int64_t>(GetU64(p + 8));
  if (!keys_only) kv.value.assign(p + kHeaderSize, v.mv_size - kHeaderSize);
  return kv;
}

// A read-only transaction that is always aborted.
class ReadTxn {
 public:
  explicit ReadTxn(MDB_env* env) { rc_ = mdb_txn_begin(env, nullptr, MDB_RDONLY, &txn_); }
  ~ReadTxn() {
    if (txn_ != nullptr) mdb_txn_abort(txn_);
  }
  int rc() const { return rc_; }
  MDB_txn* get() const { return txn_; }

 private:
  MDB_txn* txn_ = nullptr;
  int rc_;
};

struct Metrics {
  metrics::Counter* batches;
  metrics::Counter* txns;
  metrics::Counter* failures;
  metrics::Histogram* commit_seconds;
};

const Metrics& M() {
  static const Metrics m = [] {
    auto& r = metrics::Registry::Global();
    return Metrics{
        r.GetCounter("sigil_storage_commit_batches_total", "Group commits (one fsync each)."),
        r.GetCounter("sigil_storage_commit_txns_total", "Transactions committed."),
        r.GetCounter("sigil_storage_commit_failures_total", "Group commits that failed."),
        r.GetHistogram("sigil_storage_commit_seconds", "Time to commit and fsync a batch."),
    };
  }();
  return m;
}

}  // namespace

Result<std::unique_ptr<LmdbBackend>> LmdbBackend::Open(const LmdbOptions& options) {
  SIGIL_RETURN_IF_ERROR(file::MakePrivateDir(options.dir));
  std::unique_ptr<LmdbBackend> b(new LmdbBackend());
  b->max_batch_ = options.max_batch;
  b->commit_fault_ = options.commit_fault_for_test;
  b->dir_ = options.dir;

  std::string lock_path = options.dir + "/sigil.lock";
  b->lock_fd_ = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (b->lock_fd_ < 0) return file::ErrnoStatus(errno, lock_path);
  if (::flock(b->lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK) {
      return FailedPreconditionError("the store in " + options.dir +
                                     " is in use by another sigil process");
    }
    return file::ErrnoStatus(errno, lock_path);
  }

  int rc = mdb_env_create(&b->env_);
  if (rc != 0) return LmdbStatus(rc, "mdb_env_create");
  mdb_env_set_maxdbs(b->env_, 4);
  mdb_env_set_maxreaders(b->env_, 512);
  rc = mdb_env_set_mapsize(b->env_, options.map_size);
  if (rc != 0) return LmdbStatus(rc, "mdb_env_set_mapsize");
  // MDB_NOTLS: read transactions are not tied to threads (Asio handlers move between threads).
  // Deliberately absent: MDB_NOSYNC, MDB_NOMETASYNC, MDB_WRITEMAP, MDB_MAPASYNC, MDB_NOMEMINIT.
  rc = mdb_env_open(b->env_, options.dir.c_str(), MDB_NOTLS, 0600);
  if (rc != 0) return LmdbStatus(rc, "open store in " + options.dir);
  int dead = 0;
  mdb_reader_check(b->env_, &dead);  // clear reader slots left by a killed process
  b->max_key_size_ = static_cast<size_t>(mdb_env_get_maxkeysize(b->env_));

  MDB_txn* txn = nullptr;
  rc = mdb_txn_begin(b->env_, nullptr, 0, &txn);
  if (rc != 0) return LmdbStatus(rc, "begin");
  rc = mdb_dbi_open(txn, "kv", MDB_CREATE, &b->kv_dbi_);
  if (rc == 0) rc = mdb_dbi_open(txn, "meta", MDB_CREATE, &b->meta_dbi_);
  if (rc != 0) {
    mdb_txn_abort(txn);
    return LmdbStatus(rc, "open databases");
  }
  MDB_val k = Val(kRevisionKey), v;
  rc = mdb_get(txn, b->meta_dbi_, &k, &v);
  if (rc == 0) {
    if (v.mv_size != 8) {
      mdb_txn_abort(txn);
      return DataLossError("stored revision has a bad size");
    }
    b->revision_ = static_cast<int64_t>(GetU64(static_cast<const char*>(v.mv_data)));
  } else if (rc != MDB_NOTFOUND) {
    mdb_txn_abort(txn);
    return LmdbStatus(rc, "read revision");
  }
  rc = mdb_txn_commit(txn);
  if (rc != 0) return LmdbStatus(rc, "commit");

  b->hub_ = std::make_unique<WatchHub>(options.watch_history, options.watch_history_bytes, b->revision_.load());
  b->writer_ = std::thread([p = b.get()] { p->WriterLoop(); });
  return b;
}

LmdbBackend::~LmdbBackend() {
  if (writer_.joinable()) {
    {
      MutexLock l(&mu_);
      stopping_ = true;
    }
    cv_.SignalAll();
    writer_.join();
  }
  if (env_ != nullptr) mdb_env_close(env_);
  if (lock_fd_ >= 0) ::close(lock_fd_);
}

unsigned int LmdbBackend::EnvFlags() const {
  unsigned int flags = 0;
  mdb_env_get_flags(env_, &flags);
  return flags;
}

Status LmdbBackend::Health() {
  MutexLock l(&mu_);
  return failed_;
}

Result<std::optional<KeyValue>> LmdbBackend::Get(std::string_view key) {
  if (key.empty() || key.size() > max_key_size_) return InvalidArgumentError("storage key length out of range");
  ReadTxn txn(env_);
  if (txn.rc() != 0) return LmdbStatus(txn.rc(), "begin read");
  MDB_val k = Val(key), v;
  int rc = mdb_get(txn.get(), kv_dbi_, &k, &v);
  if (rc == MDB_NOTFOUND) return std::optional<KeyValue>();
  if (rc != 0) return LmdbStatus(rc, "get");
  SIGIL_ASSIGN_OR_RETURN(KeyValue kv, Decode(key, v, false));
  return std::optional<KeyValue>(std::move(kv));
}

Result<RangeResult> LmdbBackend::Range(const RangeRequest& req) {
  ReadTxn txn(env_);
  if (txn.rc() != 0) return LmdbStatus(txn.rc(), "begin read");
  RangeResult out;
  {
    MDB_val k = Val(kRevisionKey), v;
    int rc = mdb_get(txn.get(), meta_dbi_, &k, &v);
    if (rc == 0 && v.mv_size == 8) out.revision = static_cast<int64_t>(GetU64(static_cast<const char*>(v.mv_data)));
  }
  MDB_cursor* cur = nullptr;
  int rc = mdb_cursor_open(txn.get(), kv_dbi_, &cur);
  if (rc != 0) return LmdbStatus(rc, "cursor");
  std::unique_ptr<MDB_cursor, decltype(&mdb_cursor_close)> guard(cur, mdb_cursor_close);
  bool after = !req.start_after.empty() && req.start_after >= req.prefix;
  std::string_view start = after ? std::string_view(req.start_after) : std::string_view(req.prefix);
  MDB_val k, v;
  if (start.empty()) {
    rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
  } else if (start.size() > max_key_size_) {
    // No stored key is this long. The keys after it are those after its first max_key_size_
    // bytes (a key equal to those bytes is a proper prefix of `start`, so before it).
    std::string_view cut = start.substr(0, max_key_size_);
    k = Val(cut);
    rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    if (rc == 0 && View(k) == cut) rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
  } else {
    k = Val(start);
    rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    if (rc == 0 && after && View(k) == start) rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
  }
  for (; rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
    std::string_view key = View(k);
    if (!key.starts_with(req.prefix)) break;
    if (req.limit > 0 && out.kvs.size() == req.limit) {
      out.more = true;
      break;
    }
    SIGIL_ASSIGN_OR_RETURN(KeyValue kv, Decode(key, v, req.keys_only));
    out.kvs.push_back(std::move(kv));
  }
  if (rc != 0 && rc != MDB_NOTFOUND) return LmdbStatus(rc, "range");
  return out;
}

Result<TxnResult> LmdbBackend::Commit(Txn txn) {
  std::promise<Result<TxnResult>> p;
  auto f = p.get_future();
  CommitAsync(std::move(txn), [&p](Result<TxnResult> r) { p.set_value(std::move(r)); });
  return f.get();
}

void LmdbBackend::CommitAsync(Txn txn, CommitCallback done) {
  for (const Op& op : txn.ops) {
    if (op.key.empty() || op.key.size() > max_key_size_) {
      done(InvalidArgumentError("storage key length out of range"));
      return;
    }
  }
  Status failed;
  {
    MutexLock l(&mu_);
    failed = failed_;
    if (failed.ok()) {
      queue_.push_back(Pending{std::move(txn), std::move(done)});
    }
  }
  if (!failed.ok()) {
    done(UnavailableError("storage refuses writes after an earlier failure: " + failed.message()));
    return;
  }
  cv_.Signal();
}

Result<std::unique_ptr<WatchHandle>> LmdbBackend::Watch(std::string prefix, int64_t after_revision,
                                                        WatchCallback callback) {
  return hub_->Subscribe(std::move(prefix), after_revision, std::move(callback));
}

void LmdbBackend::WriterLoop() {
  std::vector<Pending> batch;
  for (;;) {
    {
      MutexLock l(&mu_);
      while (queue_.empty() && !stopping_) cv_.Wait(&mu_);
      if (queue_.empty() && stopping_) return;
      while (!queue_.empty() && batch.size() < max_batch_) {
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    CommitBatch(batch);
    batch.clear();
  }
}

void LmdbBackend::CommitBatch(std::vector<Pending>& batch) {
  auto start = std::chrono::steady_clock::now();
  std::vector<Result<TxnResult>> results(batch.size(), Result<TxnResult>(TxnResult{}));
  std::vector<std::vector<Event>> events(batch.size());
  int64_t rev = revision_.load();

  MDB_txn* parent = nullptr;
  int rc = mdb_txn_begin(env_, nullptr, 0, &parent);
  if (rc != 0) {
    Status s = LmdbStatus(rc, "begin write");
    for (Pending& p : batch) p.done(s);
    return;
  }

  for (size_t i = 0; i < batch.size(); ++i) {
    Txn& txn = batch[i].txn;
    MDB_txn* child = nullptr;
    rc = mdb_txn_begin(env_, parent, 0, &child);
    if (rc != 0) {
      results[i] = LmdbStatus(rc, "begin nested");
      continue;
    }
    bool compares_hold = true;
    for (const Compare& c : txn.compares) {
      MDB_val k = Val(c.key), v;
      int64_t have = 0;
      int grc = c.key.empty() || c.key.size() > max_key_size_ ? MDB_NOTFOUND : mdb_get(child, kv_dbi_, &k, &v);
      if (grc == 0) have = v.mv_size >= kHeaderSize ? static_cast<int64_t>(GetU64(static_cast<const char*>(v.mv_data) + 8)) : -1;
      if (have != c.mod_revision) {
        compares_hold = false;
        break;
      }
    }
    if (!compares_hold) {
      mdb_txn_abort(child);
      results[i] = TxnResult{false, rev};
      continue;
    }
    int64_t next = rev + 1;
    Status op_status;
    std::vector<Event> evs;
    for (Op& op : txn.ops) {
      MDB_val k = Val(op.key), v;
      int grc = mdb_get(child, kv_dbi_, &k, &v);
      std::optional<KeyValue> prev;
      if (grc == 0) {
        auto d = Decode(op.key, v, false);
        if (!d.ok()) {
          op_status = d.error();
          break;
        }
        prev = std::move(d).value();
      } else if (grc != MDB_NOTFOUND) {
        op_status = LmdbStatus(grc, "get");
        break;
      }
      if (op.kind == Op::Kind::kPut) {
        int64_t create = prev ? prev->create_revision : next;
        std::string record(kHeaderSize + op.value.size(), '\0');
        PutU64(static_cast<uint64_t>(create), record.data());
        PutU64(static_cast<uint64_t>(next), record.data() + 8);
        std::memcpy(record.data() + kHeaderSize, op.value.data(), op.value.size());
        MDB_val rv = Val(record);
        int prc = mdb_put(child, kv_dbi_, &k, &rv, 0);
        if (prc != 0) {
          op_status = LmdbStatus(prc, "put");
          break;
        }
        evs.push_back(Event{Event::Type::kPut, KeyValue{op.key, std::move(op.value), create, next}, std::move(prev)});
      } else if (prev) {
        int drc = mdb_del(child, kv_dbi_, &k, nullptr);
        if (drc != 0) {
          op_status = LmdbStatus(drc, "delete");
          break;
        }
        evs.push_back(Event{Event::Type::kDelete, KeyValue{op.key, {}, 0, next}, std::move(prev)});
      }
    }
    if (op_status.ok() && !evs.empty()) {
      char buf[8];
      PutU64(static_cast<uint64_t>(next), buf);
      MDB_val k = Val(kRevisionKey), v = Val(std::string_view(buf, 8));
      int prc = mdb_put(child, meta_dbi_, &k, &v, 0);
      if (prc != 0) op_status = LmdbStatus(prc, "put revision");
    }
    if (!op_status.ok()) {
      mdb_txn_abort(child);
      results[i] = op_status;
      continue;
    }
    rc = mdb_txn_commit(child);
    if (rc != 0) {
      results[i] = LmdbStatus(rc, "commit nested");
      continue;
    }
    if (!evs.empty()) rev = next;
    results[i] = TxnResult{true, rev};
    events[i] = std::move(evs);
  }

  int injected = commit_fault_ ? commit_fault_() : 0;
  if (injected != 0) {
    mdb_txn_abort(parent);  // what mdb_txn_commit does when its write or fsync fails
    rc = injected;
  } else {
    rc = mdb_txn_commit(parent);  // writes pages, fdatasync, then the meta page (O_DSYNC)
  }
  M().commit_seconds->Observe(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  if (rc != 0) {
    Status s = LmdbStatus(rc, "commit");
    if (rc != MDB_PANIC && s.code() != StatusCode::kResourceExhausted && FilesystemFull(dir_)) {
      // LMDB aborted the transaction before touching the meta page, so the store is intact
      // and usable once space is freed. (A failed meta write would have set MDB_PANIC.)
      s = ResourceExhaustedError("storage is full: no space left on the device holding " + dir_);
    }
    M().failures->Inc();
    if (s.code() != StatusCode::kResourceExhausted) {
      // Fail-stop: see the header. Nothing in this batch was acknowledged.
      log::Error("storage commit failed; refusing writes until restart", {{"error", s.message()}});
      MutexLock l(&mu_);
      failed_ = UnavailableError(s.message());
      // Transactions queued behind this batch fail too: none of them can be made durable.
      while (!queue_.empty()) {
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    for (Pending& p : batch) p.done(s);
    return;
  }
  revision_ = rev;
  batches_.fetch_add(1);
  M().batches->Inc();
  M().txns->Inc(batch.size());
  for (size_t i = 0; i < batch.size(); ++i) hub_->Publish(std::move(events[i]));
  for (size_t i = 0; i < batch.size(); ++i) batch[i].done(std::move(results[i]));
}

}  // namespace sigil::storage
