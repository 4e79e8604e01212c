#include "sigil/server/lifecycle.h"

#include "sigil/base/file.h"
#include "sigil/kms/seal.h"

#include <boost/asio/post.hpp>
#include <condition_variable>

#include "sigil/api/http/errors.h"
#include "sigil/base/logging.h"
#include "sigil/crypto/random.h"

namespace sigil::server {

// One Unsealed and the requests and streams counted against it.
struct Lifecycle::Generation {
  std::unique_ptr<Unsealed> core;
  std::atomic<int> inflight{0};
  std::atomic<bool> retiring{false};
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::weak_ptr<http::StreamWriter>> streams;  // guarded by mu

  void Leave() {
    if (inflight.fetch_sub(1) == 1 && retiring.load()) {
      std::lock_guard l(mu);
      cv.notify_all();
    }
  }
};

// The count Enter() took, given back when the caller is done with the Generation.
class Lifecycle::Held {
 public:
  explicit Held(std::shared_ptr<Generation> entered) : g(std::move(entered)) {}
  ~Held() {
    if (g) g->Leave();
  }
  Held(const Held&) = delete;
  Held& operator=(const Held&) = delete;
  std::shared_ptr<Generation> g;
};

// One request's count against its Generation, taken while the caller holds one (so it never
// counts against a Generation that finished retiring): released when the request is answered,
// when its stream ends, or when the last reference to it goes (a handler that drops its
// Responder).
class Lifecycle::Ticket {
 public:
  explicit Ticket(std::shared_ptr<Generation> g) : g_(std::move(g)) { g_->inflight.fetch_add(1); }
  ~Ticket() { Release(); }
  void Release() {
    if (!done_.exchange(true)) g_->Leave();
  }

 private:
  std::shared_ptr<Generation> g_;
  std::atomic<bool> done_{false};
};

// A stream that holds its request's ticket until it ends.
class Lifecycle::TrackedStream final : public http::StreamWriter {
 public:
  TrackedStream(std::shared_ptr<http::StreamWriter> inner, std::shared_ptr<Ticket> ticket)
      : inner_(std::move(inner)), ticket_(std::move(ticket)) {}
  bool Write(std::string chunk) override { return inner_->Write(std::move(chunk)); }
  void Close() override { inner_->Close(); }
  void OnClosed(std::function<void()> cb) override {
    inner_->OnClosed([cb = std::move(cb), t = ticket_] {
      cb();
      t->Release();
    });
  }

 private:
  std::shared_ptr<http::StreamWriter> inner_;
  std::shared_ptr<Ticket> ticket_;
};

Lifecycle::Lifecycle(Options options)
    : o_(std::move(options)),
      shamir_(o_.config->dev || o_.config->seal_type == "shamir"),
      shamir_seal_(o_.backend) {
  if (shamir_) return;
  if (o_.config->seal_type == "kms") {
    const std::string& endpoint = o_.config->seal_kms_endpoint;
    auto client = kms::NewGrpcClient(endpoint.substr(std::string_view("unix://").size()), o_.config->seal_kms_timeout);
    auto_seal_ = barrier::NewWrappedKeySeal(o_.backend, kms::NewKmsKeyWrapper(std::move(client), "kms " + endpoint));
  } else {
    auto_seal_ = barrier::NewKeyFileSeal(o_.config->seal_key_file);
  }
}

Lifecycle::~Lifecycle() {
  {
    std::lock_guard l(mu_);
    stopping_ = true;  // Seal() and unseals now leave current_ alone
  }
  retry_cv_.notify_all();
  if (retry_thread_.joinable()) retry_thread_.join();
  retire_pool_.join();  // retirements already under way
  std::shared_ptr<Generation> g = current_.exchange(nullptr);
  if (g) {
    g->retiring.store(true);
    Retire(g);
  }
}

std::string Lifecycle::seal_name() const {
  if (o_.config->dev) return "shamir (dev: one share)";
  return shamir_ ? "shamir" : auto_seal_->name();
}

Result<Lifecycle::Started> Lifecycle::Start() {
  Started out;
  if (!shamir_) {
    Result<SecretBytes> key = auto_seal_->RootKey();
    if (!key.ok() && o_.config->seal_type == "kms" &&
        (key.error().code() == StatusCode::kUnavailable || key.error().code() == StatusCode::kDeadlineExceeded)) {
      // The plugin may simply not be up yet: serve sealed (503) and keep trying.
      log::Error("sealed: the KMS seal's plugin did not answer; retrying every 5 s", {{"error", key.error().message()}});
      retry_thread_ = std::thread([this] { RetryAutoUnseal(); });
      return out;
    }
    SIGIL_ASSIGN_OR_RETURN(SecretBytes root, std::move(key));
    std::lock_guard op(op_mu_);
    SIGIL_RETURN_IF_ERROR(UnsealWith(std::move(root)));
    std::shared_ptr<Generation> g = current_.load();
    out.root_token = g->core->TakeNewRootToken();
    return out;
  }
  SIGIL_ASSIGN_OR_RETURN(std::optional<barrier::ShamirConfig> config, shamir_seal_.Config());
  {
    std::lock_guard l(mu_);
    config_ = config;
  }
  if (o_.config->dev) {
    SIGIL_ASSIGN_OR_RETURN(Initialized init, Initialize(1, 1));
    SIGIL_ASSIGN_OR_RETURN(vault::SealStatus s, Unseal(init.shares[0].Clone()));
    if (s.sealed) return InternalError("the dev server did not unseal");
    out.root_token = std::move(init.root_token);
    out.unseal_key = std::move(init.shares[0]);
    return out;
  }
  log::Info(config ? "sealed: unseal with `sigil operator unseal` (or PUT /v1/sys/unseal)"
                   : "not initialised: initialise with `sigil operator init` (or PUT /v1/sys/init)");
  return out;
}

void Lifecycle::RetryAutoUnseal() {
  std::unique_lock l(mu_);
  while (!stopping_) {
    if (retry_cv_.wait_for(l, std::chrono::seconds(5), [this] { return stopping_; })) return;
    l.unlock();
    Result<SecretBytes> key = auto_seal_->RootKey();
    sigil::Status st = key.ok() ? OkStatus() : key.error();
    if (st.ok()) {
      std::lock_guard op(op_mu_);
      st = UnsealWith(std::move(key).value());
      if (st.ok()) {
        log::Info("unsealed through the KMS seal", {{"seal", auto_seal_->name()}});
        std::shared_ptr<Generation> g = current_.load();
        if (std::optional<SecretBytes> token = g ? g->core->TakeNewRootToken() : std::nullopt) {
          // A new store: its root token goes where a first start puts it, never to the log.
          std::string path = o_.config->data_dir + "/root-token";
          sigil::Status w = file::WriteFileAtomic(path, std::string(token->view()) + "\n", 0600);
          if (w.ok()) {
            log::Info("initialised: the root token is in a private file; read it, keep it safe, delete the file", {{"path", path}});
          } else {
            log::Error("initialised, but the root token could not be written; it is lost", {{"error", w.message()}});
          }
        }
        return;
      }
    }
    log::Warn("still sealed: the KMS seal could not unseal", {{"error", st.message()}});
    l.lock();
  }
}

std::shared_ptr<Lifecycle::Generation> Lifecycle::Enter() {
  std::shared_ptr<Generation> g = current_.load();
  if (!g) return nullptr;
  g->inflight.fetch_add(1);
  if (g->retiring.load()) {
    g->Leave();
    return nullptr;
  }
  return g;
}

void Lifecycle::Dispatch(const http::Request& req, const http::RequestContext& ctx, http::Responder respond) {
  // `held` keeps the Generation counted while the handler runs on this thread (it may still
  // touch the routes and the faces' pools after it has answered); the ticket, until the
  // request is answered or its stream ends.
  Held held(Enter());
  const std::shared_ptr<Generation>& g = held.g;
  if (!g) {
    bool vault = req.target().starts_with("/v1/");
    return respond(http::ErrorResponse(
        req, UnavailableError(vault ? "Vault is sealed"
                                    : "sigil is sealed: unseal it with `sigil operator unseal` (PUT /v1/sys/unseal)")));
  }
  auto ticket = std::make_shared<Ticket>(g);
  http::RequestContext with_ticket = ctx;
  if (ctx.start_stream) {
    with_ticket.start_stream = [inner = ctx.start_stream, ticket, g](http::Response head, std::chrono::seconds max) {
      std::shared_ptr<http::StreamWriter> w = inner(std::move(head), max);
      bool late;
      {
        // Retire sets `retiring` before it takes this lock to close the streams it knows: a
        // stream registered after that sees the flag and is ended here instead.
        std::lock_guard l(g->mu);
        late = g->retiring.load();
        if (!late) {
          std::erase_if(g->streams, [](const std::weak_ptr<http::StreamWriter>& s) { return s.expired(); });
          g->streams.push_back(w);
        }
      }
      if (late) w->Close();
      return std::shared_ptr<http::StreamWriter>(std::make_shared<TrackedStream>(std::move(w), ticket));
    };
  }
  std::string_view target(req.target().data(), req.target().size());
  const http::Handler* h = g->core->router().Find(target.substr(0, target.find('?')));
  (*h)(req, with_ticket, [respond = std::move(respond), ticket](http::Response res) {
    respond(std::move(res));
    ticket->Release();
  });
}

std::vector<std::pair<std::string, sigil::Status>> Lifecycle::Checks() {
  std::vector<std::pair<std::string, sigil::Status>> out = {{"storage", o_.backend->Health()}};
  if (o_.encryption && !o_.encryption->kms_providers().empty()) {
    // kube-apiserver's single "kms-providers" check: each failing plugin, by name. The
    // reasons (the plugin's own words) go to the log, not to this unauthenticated answer.
    sigil::Status kms;
    for (const auto& [name, t] : o_.encryption->kms_providers()) {
      if (!t->Health().ok()) {
        kms = UnavailableError((kms.ok() ? "kms provider " : kms.message() + ", ") + name);
      }
    }
    if (!kms.ok()) kms = UnavailableError(kms.message() + " not healthy (reason withheld; see the server log)");
    out.emplace_back("kms-providers", kms);
  }
  Held held(Enter());
  if (!held.g) {
    out.emplace_back("seal", UnavailableError("sealed"));
    return out;
  }
  if (audit::Auditor* a = held.g->core->auditor()) out.emplace_back("audit", a->log()->Health());
  return out;
}

sigil::Status Lifecycle::AwaitRetirements() {
  std::unique_lock l(mu_);
  retired_cv_.wait(l, [&] { return retiring_ == 0 || stopping_; });
  if (stopping_) return FailedPreconditionError("the server is stopping");
  return OkStatus();
}

sigil::Status Lifecycle::UnsealWith(SecretBytes root_key) {
  SIGIL_RETURN_IF_ERROR(AwaitRetirements());
  Unsealed::Deps deps;
  deps.config = o_.config;
  deps.backend = o_.backend;
  deps.encryption = o_.encryption;
  deps.throttle = o_.throttle;
  deps.delay_pool = o_.delay_pool;
  deps.seal = this;
  deps.dev_dir = o_.dev_dir;
  SIGIL_ASSIGN_OR_RETURN(std::unique_ptr<Unsealed> core, Unsealed::Build(deps, std::move(root_key)));
  auto g = std::make_shared<Generation>();
  {
    std::lock_guard l(mu_);
    cluster_name_ = core->cluster_name();
    cluster_id_ = core->cluster_id();
  }
  g->core = std::move(core);
  {
    std::lock_guard l(mu_);
    if (stopping_) return FailedPreconditionError("the server is stopping");  // g's destructor tears it down
    current_.store(g);
  }
  log::Info("unsealed", {{"seal", seal_name()}});
  return OkStatus();
}

void Lifecycle::Retire(const std::shared_ptr<Generation>& g) {
  std::vector<std::shared_ptr<http::StreamWriter>> open;
  {
    std::lock_guard l(g->mu);
    for (const auto& w : g->streams) {
      if (auto s = w.lock()) open.push_back(std::move(s));
    }
  }
  for (const auto& s : open) s->Close();
  open.clear();
  {
    std::unique_lock l(g->mu);
    g->cv.wait(l, [&] { return g->inflight.load() == 0; });
  }
  g->core.reset();
  log::Info("sealed: everything above the barrier, key material included, is gone");
}

void Lifecycle::RollBackInit(int64_t start_revision) {
  storage::RangeRequest all;  // every key
  all.keys_only = true;
  auto r = o_.backend->Range(all);
  if (!r.ok()) {
    log::Error("sys/init failed and its writes could not be listed to undo them", {{"error", r.error().message()}});
    return;
  }
  storage::Txn txn;
  for (const storage::KeyValue& kv : r->kvs) {
    if (kv.create_revision > start_revision) txn.ops.push_back(storage::Op::Delete(kv.key));
  }
  if (auto c = o_.backend->Commit(std::move(txn)); !c.ok()) {
    log::Error("sys/init failed and its writes could not be undone", {{"error", c.error().message()}});
  }
}

vault::SealStatus Lifecycle::StatusLocked() {
  vault::SealStatus s;
  s.type = shamir_ ? "shamir" : "key-file";
  s.sealed = current_.load() == nullptr;
  if (shamir_) {
    s.initialized = config_.has_value();
    if (config_) {
      s.shares = config_->shares;
      s.threshold = config_->threshold;
    }
    s.progress = unseal_.progress();
    s.nonce = unseal_.nonce();
  } else {
    s.initialized = true;
  }
  if (!s.sealed) {
    s.cluster_name = cluster_name_;
    s.cluster_id = cluster_id_;
  }
  return s;
}

vault::SealStatus Lifecycle::Status() {
  std::lock_guard l(mu_);
  return StatusLocked();
}

Result<vault::SealControl::Initialized> Lifecycle::Initialize(int shares, int threshold) {
  std::lock_guard op(op_mu_);
  if (!shamir_) return FailedPreconditionError("Vault is already initialized");
  SIGIL_RETURN_IF_ERROR(AwaitRetirements());
  // The store holds nothing before its first init (no keyring, so nothing was ever written
  // through the barrier): if making the root token fails after the seal is stored, undo every
  // write since this revision, so that init can be tried again instead of leaving a store
  // nobody holds the shares of.
  int64_t start = o_.backend->CurrentRevision();
  SIGIL_ASSIGN_OR_RETURN(barrier::ShamirSeal::Initialized init, shamir_seal_.Initialize(shares, threshold));
  Result<std::optional<SecretBytes>> root_token = CreateRootToken(o_.backend, std::move(init.root_key), o_.encryption);
  if (!root_token.ok() || !*root_token) {
    RollBackInit(start);
    if (!root_token.ok()) return root_token.error().WithContext("initialising");
    return InternalError("the new store already had a root token");
  }
  {
    std::lock_guard l(mu_);
    config_ = barrier::ShamirConfig{shares, threshold};
  }
  Initialized out;
  out.shares = std::move(init.shares);
  out.root_token = std::move(**root_token);
  return out;
}

sigil::Status Lifecycle::CheckShare(const SecretBytes& share, int shares) {
  size_t want = shares == 1 ? barrier::kRootKeySize : barrier::kRootKeySize + 1;
  if (share.size() != want) {
    return InvalidArgumentError("invalid key: a key share of this seal is " + std::to_string(want) + " bytes, got " +
                                std::to_string(share.size()));
  }
  return OkStatus();
}

Result<vault::SealStatus> Lifecycle::Unseal(SecretBytes share) {
  std::lock_guard op(op_mu_);
  std::vector<SecretBytes> shares;
  {
    std::lock_guard l(mu_);
    if (!shamir_) {
      if (current_.load()) return StatusLocked();
      return FailedPreconditionError("this server's key-file seal unseals when the server starts: restart it");
    }
    if (!config_) return FailedPreconditionError("Vault is not initialized");
    if (current_.load()) return StatusLocked();
    SIGIL_RETURN_IF_ERROR(CheckShare(share, config_->shares));
    if (unseal_.threshold() == 0) unseal_.Start(config_->threshold, crypto::RandomUuid());
    if (!unseal_.Add(std::move(share))) return StatusLocked();
    for (const SecretBytes& s : unseal_.shares()) shares.push_back(s.Clone());
    unseal_.Reset();
  }
  SIGIL_ASSIGN_OR_RETURN(SecretBytes root, shamir_seal_.RootKey(shares));
  shares.clear();
  SIGIL_RETURN_IF_ERROR(UnsealWith(std::move(root)));
  return Status();
}

vault::SealStatus Lifecycle::ResetUnseal() {
  std::lock_guard l(mu_);
  unseal_.Reset();
  return StatusLocked();
}

sigil::Status Lifecycle::Seal() {
  std::shared_ptr<Generation> g;
  {
    std::lock_guard l(mu_);
    unseal_.Reset();
    rekey_.Reset();
    if (stopping_) return OkStatus();  // the destructor retires what is current
    g = current_.exchange(nullptr);
    if (!g) return OkStatus();
    g->retiring.store(true);
    ++retiring_;
  }
  log::Info("sealing: new requests are refused; waiting for requests in flight");
  boost::asio::post(retire_pool_, [this, g] {
    Retire(g);
    std::lock_guard l(mu_);
    --retiring_;
    retired_cv_.notify_all();
  });
  return OkStatus();
}

Result<vault::RekeyStatus> Lifecycle::RekeyStatusNow() {
  std::lock_guard l(mu_);
  if (current_.load() == nullptr) return UnavailableError("Vault is sealed");
  if (!shamir_) return FailedPreconditionError("rekeying is for the shamir seal; this server uses the key-file seal");
  vault::RekeyStatus s;
  s.started = rekey_.threshold() != 0;
  s.nonce = rekey_.nonce();
  s.progress = rekey_.progress();
  s.required = config_ ? config_->threshold : 0;
  if (s.started) {
    s.shares = rekey_target_.shares;
    s.threshold = rekey_target_.threshold;
  }
  return s;
}

Result<vault::RekeyStatus> Lifecycle::RekeyInit(int shares, int threshold) {
  {
    std::lock_guard l(mu_);
    if (current_.load() == nullptr) return UnavailableError("Vault is sealed");
    if (!shamir_) return FailedPreconditionError("rekeying is for the shamir seal; this server uses the key-file seal");
    if (rekey_.threshold() != 0) return FailedPreconditionError("rekey already in progress");
    SIGIL_RETURN_IF_ERROR(barrier::ValidateShamirConfig(shares, threshold));
    rekey_.Start(config_->threshold, crypto::RandomUuid());
    rekey_target_ = {shares, threshold};
  }
  log::Info("rekey started", {{"secret_shares", shares}, {"secret_threshold", threshold}});
  return RekeyStatusNow();
}

sigil::Status Lifecycle::RekeyCancel() {
  std::lock_guard l(mu_);
  if (current_.load() == nullptr) return UnavailableError("Vault is sealed");
  rekey_.Reset();
  return OkStatus();
}

Result<vault::SealControl::RekeyUpdate> Lifecycle::RekeyAdd(SecretBytes share, std::string_view nonce) {
  std::lock_guard op(op_mu_);
  std::vector<SecretBytes> old;
  barrier::ShamirConfig target;
  RekeyUpdate out;
  {
    std::lock_guard l(mu_);
    if (current_.load() == nullptr) return UnavailableError("Vault is sealed");
    if (rekey_.threshold() == 0) return FailedPreconditionError("no rekey in progress");
    if (nonce.empty()) return InvalidArgumentError("missing nonce");
    if (nonce != rekey_.nonce()) return InvalidArgumentError("incorrect nonce supplied");
    SIGIL_RETURN_IF_ERROR(CheckShare(share, config_->shares));
    if (rekey_.Has(share)) return InvalidArgumentError("given key has already been provided during this generation");
    out.status.started = true;
    out.status.nonce = rekey_.nonce();
    out.status.required = config_->threshold;
    out.status.shares = rekey_target_.shares;
    out.status.threshold = rekey_target_.threshold;
    bool complete = rekey_.Add(std::move(share));
    out.status.progress = rekey_.progress();
    if (!complete) return out;
    for (const SecretBytes& s : rekey_.shares()) old.push_back(s.Clone());
    target = rekey_target_;
    rekey_.Reset();
  }
  auto fresh = shamir_seal_.Rekey(old, target.shares, target.threshold);
  if (!fresh.ok()) return fresh.error();
  {
    std::lock_guard l(mu_);
    config_ = target;
  }
  out.shares = std::move(fresh).value();
  return out;
}

Result<vault::KeyStatus> Lifecycle::CurrentKey() {
  Held held(Enter());
  if (!held.g) return UnavailableError("Vault is sealed");
  barrier::KeyringInfo info = held.g->core->barrier()->keyring_info();
  vault::KeyStatus k;
  k.term = info.active_term;
  for (const auto& [term, created] : info.terms) {
    if (term == info.active_term) k.install_unix = created;
  }
  return k;
}

Result<vault::KeyStatus> Lifecycle::Rotate() {
  {
    Held held(Enter());
    if (!held.g) return UnavailableError("Vault is sealed");
    SIGIL_RETURN_IF_ERROR(held.g->core->barrier()->Rotate().status());
  }
  return CurrentKey();
}

}  // namespace sigil::server
