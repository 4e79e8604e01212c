// agent/credential.h: the agent's Vault token (logged in or given, renewed before it expires)
// and the dynamic credentials read with it (rendered, their leases renewed, replaced before
// they expire). Internal to the agent (see agent.h); runs on the agent's io_context thread.
#pragma once

#include <algorithm>
#include <functional>

#include "sigil/agent/agent_internal.h"
#include "sigil/agent/atomic_writer.h"
#include "sigil/base/logging.h"

namespace sigil::agent {

// When to act on a lease of `seconds`: two thirds in, as Vault Agent renews; at least 1 s.
inline std::chrono::milliseconds TwoThirds(int64_t seconds) {
  return std::chrono::milliseconds(std::max<int64_t>(1000, seconds * 2000 / 3));
}

// Whether a renewal that asked for `asked` seconds and got `got` was cut short by a max TTL.
// Servers count the time to the new expiry in whole seconds, so a full renewal can come back a
// second short.
inline bool Capped(int64_t got, int64_t asked) {
  return got < asked - std::max<int64_t>(1, asked / 10);
}

// The Vault token the credentials are read with. With vault.login, the token file's
// service-account JWT logs in through auth/<mount>/login; otherwise the token file's token is
// the Vault token. Either way the token is renewed (renew-self) at two thirds of its TTL; a
// renewal that fails or comes back shorter than asked (the token's max TTL) means a new login.
class Agent::Impl::VaultSession {
 public:
  explicit VaultSession(Impl* agent)
      : agent_(agent), timer_(agent->ioc), backoff_(agent->config.backoff_min) {}

  // Calls `ready` once a token is at hand (at once if it is).
  void WhenReady(std::function<void()> ready) {
    if (!token_.empty()) return ready();
    waiting_.push_back(std::move(ready));
    if (!started_) {
      started_ = true;
      Begin();
    }
  }
  const SecretBytes& token() const { return token_; }
  // A request with the token was refused (401/403): the token may be gone; log in again.
  void Refused() {
    if (agent_->config.vault_login && !token_.empty()) {
      token_ = SecretBytes();
      timer_.cancel();
      Begin();
    }
  }
  void Stop() {
    done_ = true;
    timer_.cancel();
    if (stream_) stream_->Cancel();
  }

 private:
  void Begin() {
    if (done_) return;
    auto target = agent_->Target();
    if (!target.ok()) return Retry("cannot read the token file: " + target.error().message());
    if (!agent_->config.vault_login) {
      token_ = target->token.Clone();
      Ready();
      return Lookup();
    }
    const VaultLogin& l = *agent_->config.vault_login;
    Json body = {{"role", l.role}, {"jwt", std::string(target->token.view())}};
    std::string text = body.dump();
    SecretBytes payload(text);
    internal::SecureZero(text.data(), text.size());
    target->token = SecretBytes();  // the login itself carries no token
    stream_ = std::make_shared<HttpStream>(agent_->ioc, agent_->tls);
    stream_->Send(*target, "POST", "/v1/auth/" + l.mount + "/login", std::move(payload),
                  std::chrono::seconds(30), [this](Status st, int status, SecretBytes answer) {
                    stream_.reset();
                    if (!st.ok()) return Retry("login: " + st.message());
                    if (status != 200) return Retry("login: " + VaultMessage(status, answer));
                    OnAuth(answer, "logged in");
                  });
  }

  // Without a login: how long the given token lives (lookup-self), to renew it in time.
  void Lookup() {
    stream_ = std::make_shared<HttpStream>(agent_->ioc, agent_->tls);
    stream_->Get(HttpTarget{agent_->url, token_.Clone()}, "/v1/auth/token/lookup-self",
                 std::chrono::seconds(30), [this](Status st, int status, SecretBytes answer) {
                   stream_.reset();
                   if (!st.ok() || status != 200)
                     return;  // not a renewable Vault token: used as it is
                   Json j = Json::parse(answer.view(), nullptr, false);
                   const Json& data = Member(j, "data");
                   int64_t ttl = Member(data, "ttl").is_number_integer()
                                     ? Member(data, "ttl").get<int64_t>()
                                     : 0;
                   bool renewable = Member(data, "renewable").is_boolean() &&
                                    Member(data, "renewable").get<bool>();
                   if (ttl > 0 && renewable) Schedule(ttl);
                 });
  }

  void OnAuth(const SecretBytes& answer, const char* what) {
    Json j = Json::parse(answer.view(), nullptr, false);
    const Json& auth = Member(j, "auth");
    std::string token = Str(auth, "client_token");
    if (token.empty()) return Retry(std::string(what) + ": the answer has no token");
    token_ = SecretBytes(token);
    internal::SecureZero(token.data(), token.size());
    int64_t ttl = Member(auth, "lease_duration").is_number_integer()
                      ? Member(auth, "lease_duration").get<int64_t>()
                      : 0;
    bool renewable =
        Member(auth, "renewable").is_boolean() && Member(auth, "renewable").get<bool>();
    log::Info(what, {{"ttl_seconds", ttl}, {"renewable", renewable}});
    backoff_ = agent_->config.backoff_min;
    if (ttl > 0) {
      last_ttl_ = ttl;
      renewable ? Schedule(ttl) : ScheduleLogin(ttl);
    }
    Ready();
  }

  void Schedule(int64_t ttl) {
    last_ttl_ = ttl;
    timer_.expires_after(TwoThirds(ttl));
    timer_.async_wait([this](boost::system::error_code ec) {
      if (!ec) Renew();
    });
  }

  void ScheduleLogin(int64_t ttl) {
    timer_.expires_after(TwoThirds(ttl));
    timer_.async_wait([this](boost::system::error_code ec) {
      if (ec) return;
      token_ = SecretBytes();
      Begin();
    });
  }

  void Renew() {
    stream_ = std::make_shared<HttpStream>(agent_->ioc, agent_->tls);
    Json body = {{"increment", last_ttl_}};
    stream_->Send(HttpTarget{agent_->url, token_.Clone()}, "POST", "/v1/auth/token/renew-self",
                  SecretBytes(body.dump()), std::chrono::seconds(30),
                  [this](Status st, int status, SecretBytes answer) {
                    stream_.reset();
                    int64_t asked = last_ttl_;
                    if (st.ok() && status == 200) {
                      Json j = Json::parse(answer.view(), nullptr, false);
                      const Json& auth = Member(j, "auth");
                      int64_t ttl = Member(auth, "lease_duration").is_number_integer()
                                        ? Member(auth, "lease_duration").get<int64_t>()
                                        : 0;
                      if (ttl > 0 && (!Capped(ttl, asked) || !agent_->config.vault_login)) {
                        log::Debug("renewed the Vault token", {{"ttl_seconds", ttl}});
                        return Schedule(ttl);
                      }
                      if (ttl > 0) {  // capped by its max TTL: log in again before it ends
                        log::Info("the Vault token reaches its max TTL; logging in again first",
                                  {{"ttl_seconds", ttl}});
                        return ScheduleLogin(ttl);
                      }
                    }
                    log::Warn("cannot renew the Vault token",
                              {{"error", st.ok() ? VaultMessage(status, answer) : st.message()}});
                    if (agent_->config.vault_login) {
                      token_ = SecretBytes();
                      return Begin();
                    }
                    Schedule(std::max<int64_t>(asked / 2, 2));  // a given token: try again, sooner
                  });
  }

  void Ready() {
    auto waiting = std::move(waiting_);
    waiting_.clear();
    for (auto& w : waiting) w();
  }

  void Retry(const std::string& why) {
    if (done_) return;
    std::uniform_real_distribution<double> jitter(0.5, 1.0);
    auto wait = std::chrono::milliseconds(
        static_cast<int64_t>(static_cast<double>(backoff_.count()) * jitter(agent_->rng)));
    log::Warn("no Vault token; retrying", {{"error", why}, {"in_ms", wait.count()}});
    backoff_ = std::min(backoff_ * 2, agent_->config.backoff_max);
    timer_.expires_after(wait);
    timer_.async_wait([this](boost::system::error_code ec) {
      if (!ec) Begin();
    });
  }

  Impl* agent_;
  asio::steady_timer timer_;
  std::shared_ptr<HttpStream> stream_;
  std::chrono::milliseconds backoff_;
  SecretBytes token_;
  int64_t last_ttl_ = 0;
  std::vector<std::function<void()>> waiting_;
  bool started_ = false;
  bool done_ = false;
};

// One lease-bearing Vault path (database/creds/<role>): read, rendered (each field of `data` a
// file, or the chosen items), renewed at two thirds of its lease; when a renewal comes back
// shorter than asked (the lease's max TTL), new credentials are read at once, so they are in
// place while the old ones still have that time left. The old lease is left to expire (the
// program may still hold the old credentials). A path without a lease is read once.
class Agent::Impl::Credential {
 public:
  Credential(Impl* agent, const CredentialSource& src)
      : agent_(agent), src_(src), timer_(agent->ioc), backoff_(agent->config.backoff_min) {}

  const CredentialSource& source() const { return src_; }
  bool seen() const { return seen_; }
  const std::map<std::string, SecretBytes>* values() const { return seen_ ? &values_ : nullptr; }

  void Start() {
    agent_->vault->WhenReady([this] { Read(); });
  }
  void Stop() {
    done_ = true;
    timer_.cancel();
    if (stream_) stream_->Cancel();
    if (cleanup_timer_) {  // stopping: no reader is worth leaving old values on disk for
      cleanup_timer_.reset();
      RemoveOldVersions(src_.directory).IgnoreError();
    }
  }
  void GiveUp(const std::string& why) {
    if (done_) return;
    log::Error("giving up on the credentials", {{"path", src_.path}, {"error", why}});
    Finish(false);
  }

 private:
  void Read() {
    if (done_) return;
    stream_ = std::make_shared<HttpStream>(agent_->ioc, agent_->tls);
    stream_->Get(HttpTarget{agent_->url, agent_->vault->token().Clone()}, "/v1/" + src_.path,
                 std::chrono::seconds(60), [this](Status st, int status, SecretBytes answer) {
                   stream_.reset();
                   if (!st.ok()) return Retry(st.message(), false);
                   if (status != 200) {
                     if (status == 401 || status == 403) agent_->vault->Refused();
                     return Retry(VaultMessage(status, answer), status == 404 || status == 400);
                   }
                   Json j = Json::parse(answer.view(), nullptr, false);
                   if (!Member(j, "data").is_object())
                     return Retry("the answer has no data", false);
                   if (!Render(Member(j, "data"))) return;
                   lease_id_ = Str(j, "lease_id");
                   int64_t ttl = Member(j, "lease_duration").is_number_integer()
                                     ? Member(j, "lease_duration").get<int64_t>()
                                     : 0;
                   bool renewable =
                       Member(j, "renewable").is_boolean() && Member(j, "renewable").get<bool>();
                   backoff_ = agent_->config.backoff_min;
                   log::Info("read credentials", {{"path", src_.path},
                                                  {"lease_id", lease_id_},
                                                  {"ttl_seconds", ttl},
                                                  {"renewable", renewable}});
                   if (agent_->options.once) return Finish(true);
                   if (ttl <= 0 || lease_id_.empty()) return;  // nothing to renew or replace
                   asked_ = ttl;
                   renewable ? ScheduleRenew(ttl) : ScheduleRead(ttl);
                 });
  }

  void ScheduleRenew(int64_t ttl) {
    timer_.expires_after(TwoThirds(ttl));
    timer_.async_wait([this](boost::system::error_code ec) {
      if (!ec) Renew();
    });
  }
  void ScheduleRead(int64_t ttl) {
    timer_.expires_after(TwoThirds(ttl));
    timer_.async_wait([this](boost::system::error_code ec) {
      if (!ec) Read();
    });
  }

  void Renew() {
    Json body = {{"lease_id", lease_id_}, {"increment", asked_}};
    stream_ = std::make_shared<HttpStream>(agent_->ioc, agent_->tls);
    stream_->Send(HttpTarget{agent_->url, agent_->vault->token().Clone()}, "PUT",
                  "/v1/sys/leases/renew", SecretBytes(body.dump()), std::chrono::seconds(30),
                  [this](Status st, int status, SecretBytes answer) {
                    stream_.reset();
                    if (!st.ok() || status != 200) {
                      if (st.ok() && (status == 401 || status == 403)) agent_->vault->Refused();
                      log::Warn("cannot renew the lease; reading new credentials",
                                {{"path", src_.path},
                                 {"lease_id", lease_id_},
                                 {"error", st.ok() ? VaultMessage(status, answer) : st.message()}});
                      return agent_->vault->WhenReady([this] { Read(); });
                    }
                    Json j = Json::parse(answer.view(), nullptr, false);
                    int64_t ttl = Member(j, "lease_duration").is_number_integer()
                                      ? Member(j, "lease_duration").get<int64_t>()
                                      : 0;
                    if (!Capped(ttl, asked_)) {
                      log::Debug("renewed the lease", {{"path", src_.path}, {"ttl_seconds", ttl}});
                      return ScheduleRenew(ttl);
                    }
                    // Capped by the max TTL: these credentials end in `ttl`, less than one renewal
                    // period away. New ones now, while the old ones still work.
                    log::Info("the lease reaches its max TTL; reading new credentials now",
                              {{"path", src_.path}, {"lease_id", lease_id_}, {"ttl_seconds", ttl}});
                    agent_->vault->WhenReady([this] { Read(); });
                  });
  }

  // Files and env values from `data`. False when the credentials could not be rendered in once
  // mode (the source has failed then).
  bool Render(const Json& data) {
    std::map<std::string, SecretBytes> values;
    for (const auto& [key, v] : data.items()) {
      values.emplace(key, v.is_string() ? SecretBytes(v.get_ref<const std::string&>())
                                        : SecretBytes(v.dump()));
    }
    values_ = std::move(values);
    seen_ = true;
    if (!src_.directory.empty()) {
      std::vector<FileData> files;
      Status st = OkStatus();
      if (src_.items.empty()) {
        for (const auto& [key, v] : values_) {
          if (!CheckItemPath(key).ok() || key.find('/') != std::string::npos) {
            st = InvalidArgumentError("field \"" + key + "\" cannot be a file name");
            break;
          }
          files.push_back(FileData{key, v.Clone(), src_.mode});
        }
      } else {
        for (const Item& item : src_.items) {
          auto it = values_.find(item.key);
          if (it == values_.end()) {
            st = NotFoundError("no field \"" + item.key + "\" in the answer");
            break;
          }
          files.push_back(FileData{item.path, it->second.Clone(), item.mode.value_or(src_.mode)});
        }
      }
      Result<bool> wrote =
          st.ok() ? WriteAtomically(src_.directory, files, Ownership{src_.owner, src_.group},
                                    !agent_->options.once)
                  : Result<bool>(st);
      if (!wrote.ok()) {
        log::Error("cannot render the credentials", {{"path", src_.path},
                                                     {"directory", src_.directory},
                                                     {"error", wrote.error().message()}});
        if (agent_->options.once) {
          Finish(false);
          return false;
        }
      } else if (*wrote) {
        log::Info("rendered",
                  {{"path", src_.path}, {"directory", src_.directory}, {"files", files.size()}});
        auto dir = src_.directory;
        cleanup_timer_ = std::make_unique<asio::steady_timer>(agent_->ioc, std::chrono::seconds(1));
        cleanup_timer_->async_wait([dir](boost::system::error_code ec) {
          if (!ec) RemoveOldVersions(dir).IgnoreError();
        });
      }
    }
    agent_->Notify();  // new credentials are always a change
    return true;
  }

  void Retry(const std::string& why, bool permanent) {
    if (done_) return;
    if (agent_->options.once && permanent) {
      log::Error("cannot read the credentials", {{"path", src_.path}, {"error", why}});
      return Finish(false);
    }
    std::uniform_real_distribution<double> jitter(0.5, 1.0);
    auto wait = std::chrono::milliseconds(
        static_cast<int64_t>(static_cast<double>(backoff_.count()) * jitter(agent_->rng)));
    log::Warn("retrying", {{"path", src_.path}, {"error", why}, {"in_ms", wait.count()}});
    backoff_ = std::min(backoff_ * 2, agent_->config.backoff_max);
    timer_.expires_after(wait);
    timer_.async_wait([this](boost::system::error_code ec) {
      if (!ec) agent_->vault->WhenReady([this] { Read(); });
    });
  }

  void Finish(bool ok) {
    if (done_) return;
    Stop();
    agent_->SourceFinished(ok);
  }

  Impl* agent_;
  const CredentialSource& src_;
  asio::steady_timer timer_;
  std::unique_ptr<asio::steady_timer>
      cleanup_timer_;  // removes the replaced version a second later
  std::shared_ptr<HttpStream> stream_;
  std::chrono::milliseconds backoff_;
  std::string lease_id_;
  int64_t asked_ = 0;
  bool seen_ = false;
  std::map<std::string, SecretBytes> values_;
  bool done_ = false;
};

}  // namespace sigil::agent
