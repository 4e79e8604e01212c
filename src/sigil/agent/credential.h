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
// renewal that fails or comes back cut short by the token's max TTL means a new login, and the
// old token is used until the new one is at hand. The server ties every lease to the token
// that made it and revokes them when that token ends, so whenever the token is replaced each
// credential is read again under the new one (OnNewToken).
class Agent::Impl::VaultSession {
 public:
  explicit VaultSession(Impl* agent)
      : agent_(agent),
        timer_(agent->ioc),
        backoff_(agent->config.backoff_min, agent->config.backoff_max, &agent->rng) {}

  // Calls `ready` once a token is at hand (at once if it is).
  void WhenReady(std::function<void()> ready) {
    if (!token_.empty()) return ready();
    waiting_.push_back(std::move(ready));
    if (!started_) {
      started_ = true;
      Begin();
    }
  }
  // Called each time the token is replaced (not for the first one).
  void OnNewToken(std::function<void()> f) { on_new_token_.push_back(std::move(f)); }
  const SecretBytes& token() const { return token_; }

  // A request made with `used` was refused. Vault answers 403 both for a token it does not
  // know and for a path the policy denies, so the token is looked up first: only a token that
  // is gone leads to a new login (or, without one, to reading the token file again).
  void Refused(const SecretBytes& used) {
    if (done_ || checking_ || used.view() != token_.view()) return;
    checking_ = true;
    check_ = std::make_shared<HttpStream>(agent_->ioc, agent_->tls);
    check_->Get(
        HttpTarget{agent_->url, token_.Clone()}, "/v1/auth/token/lookup-self",
        std::chrono::seconds(30), [this](Status st, int status, SecretBytes) {
          check_.reset();
          checking_ = false;
          if (done_ || !st.ok() || status == 200) return;  // alive: the policy said no
          log::Warn("the Vault token is no longer valid; getting a new one", {{"status", status}});
          Begin();
        });
  }
  void Stop() {
    done_ = true;
    timer_.cancel();
    if (stream_) stream_->Cancel();
    if (check_) check_->Cancel();
  }

 private:
  void Begin() {
    if (done_) return;
    auto target = agent_->Target();
    if (!target.ok()) return Retry("cannot read the token file: " + target.error().message());
    if (!agent_->config.vault_login) {
      Replace(std::move(target->token));
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
                    OnAuth(answer);
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
                   if (ttl > 0 && renewable) {
                     increment_ = ttl;
                     Schedule(ttl);
                   }
                 });
  }

  void OnAuth(const SecretBytes& answer) {
    Json j = Json::parse(answer.view(), nullptr, false);
    const Json& auth = Member(j, "auth");
    std::string token = Str(auth, "client_token");
    if (token.empty()) return Retry("login: the answer has no token");
    int64_t ttl = Member(auth, "lease_duration").is_number_integer()
                      ? Member(auth, "lease_duration").get<int64_t>()
                      : 0;
    bool renewable =
        Member(auth, "renewable").is_boolean() && Member(auth, "renewable").get<bool>();
    log::Info("logged in", {{"ttl_seconds", ttl}, {"renewable", renewable}});
    backoff_.Reset();
    if (ttl > 0) {
      increment_ = ttl;
      renewable ? Schedule(ttl) : ScheduleLogin(ttl);
    }
    Replace(SecretBytes(token));
    internal::SecureZero(token.data(), token.size());
  }

  void Replace(SecretBytes token) {
    bool replaced = !token_.empty() && token_.view() != token.view();
    token_ = std::move(token);
    auto waiting = std::move(waiting_);
    waiting_.clear();
    for (auto& w : waiting) w();
    if (replaced) {
      for (auto& f : on_new_token_) f();
    }
  }

  void Schedule(int64_t ttl) {
    timer_.expires_after(TwoThirds(ttl));
    timer_.async_wait([this](boost::system::error_code ec) {
      if (!ec && !done_) Renew();
    });
  }

  void ScheduleLogin(int64_t ttl) {
    timer_.expires_after(TwoThirds(ttl));
    timer_.async_wait([this](boost::system::error_code ec) {
      if (!ec && !done_) Begin();  // the old token serves until the new one is at hand
    });
  }

  void Renew() {
    if (done_) return;
    stream_ = std::make_shared<HttpStream>(agent_->ioc, agent_->tls);
    Json body = {{"increment", increment_}};
    stream_->Send(HttpTarget{agent_->url, token_.Clone()}, "POST", "/v1/auth/token/renew-self",
                  SecretBytes(body.dump()), std::chrono::seconds(30),
                  [this](Status st, int status, SecretBytes answer) {
                    stream_.reset();
                    if (st.ok() && status == 200) {
                      Json j = Json::parse(answer.view(), nullptr, false);
                      const Json& auth = Member(j, "auth");
                      int64_t ttl = Member(auth, "lease_duration").is_number_integer()
                                        ? Member(auth, "lease_duration").get<int64_t>()
                                        : 0;
                      if (ttl > 0 && (!Capped(ttl, increment_) || !agent_->config.vault_login)) {
                        log::Debug("renewed the Vault token", {{"ttl_seconds", ttl}});
                        backoff_.Reset();
                        return Schedule(ttl);
                      }
                      if (ttl > 0) {  // cut short by its max TTL: a new login first
                        log::Info("the Vault token reaches its max TTL; logging in again",
                                  {{"ttl_seconds", ttl}});
                        return Begin();
                      }
                    }
                    log::Warn("cannot renew the Vault token",
                              {{"error", st.ok() ? VaultMessage(status, answer) : st.message()}});
                    if (agent_->config.vault_login) return Begin();
                    // A given token: the file may hold a new one; renew again after a backoff.
                    if (auto target = agent_->Target(); target.ok())
                      Replace(std::move(target->token));
                    timer_.expires_after(backoff_.Next());
                    timer_.async_wait([this](boost::system::error_code ec) {
                      if (!ec && !done_) Renew();
                    });
                  });
  }

  void Retry(const std::string& why) {
    if (done_) return;
    auto wait = backoff_.Next();
    log::Warn(token_.empty() ? "no Vault token; retrying"
                             : "cannot renew the Vault token's login; retrying",
              {{"error", why}, {"in_ms", wait.count()}});
    timer_.expires_after(wait);
    timer_.async_wait([this](boost::system::error_code ec) {
      if (!ec && !done_) Begin();
    });
  }

  Impl* agent_;
  asio::steady_timer timer_;
  std::shared_ptr<HttpStream> stream_, check_;
  Backoff backoff_;
  SecretBytes token_;
  int64_t increment_ = 0;  // the TTL renewals ask for: the token's first TTL
  std::vector<std::function<void()>> waiting_, on_new_token_;
  bool started_ = false;
  bool checking_ = false;
  bool done_ = false;
};

// One lease-bearing Vault path (database/creds/<role>): read, rendered (each field of `data` a
// file, or the chosen items), renewed at two thirds of its lease. When a renewal comes back
// shorter than asked (the lease's max TTL), new credentials are read at once, so they are in
// place while the old ones still have that time left; the old lease is left to expire (the
// program may still hold the old credentials). A renewal that fails for a passing reason is
// retried while the lease has time left. A path without a lease is read once.
class Agent::Impl::Credential {
 public:
  Credential(Impl* agent, const CredentialSource& src)
      : agent_(agent),
        src_(src),
        timer_(agent->ioc),
        render_timer_(agent->ioc),
        backoff_(agent->config.backoff_min, agent->config.backoff_max, &agent->rng) {}

  const CredentialSource& source() const { return src_; }
  bool seen() const { return seen_; }
  const std::map<std::string, SecretBytes>* values() const { return seen_ ? &values_ : nullptr; }

  void Start() {
    agent_->vault->OnNewToken([this] {
      if (done_ || !seen_) return;
      log::Info("the Vault token was replaced; reading new credentials under it",
                {{"path", src_.path}});
      Read();
    });
    agent_->vault->WhenReady([this] { Read(); });
  }
  void Stop() {
    done_ = true;
    timer_.cancel();
    render_timer_.cancel();
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
    timer_.cancel();
    auto used = std::make_shared<SecretBytes>(agent_->vault->token().Clone());  // for Refused
    stream_ = std::make_shared<HttpStream>(agent_->ioc, agent_->tls);
    stream_->Get(HttpTarget{agent_->url, used->Clone()}, "/v1/" + src_.path,
                 std::chrono::seconds(60), [this, used](Status st, int status, SecretBytes answer) {
                   stream_.reset();
                   if (!st.ok()) return Retry(st.message(), false);
                   if (status != 200) {
                     if (status == 401 || status == 403) agent_->vault->Refused(*used);
                     return Retry(VaultMessage(status, answer), status == 404 || status == 400);
                   }
                   Json j = Json::parse(answer.view(), nullptr, false);
                   if (!Member(j, "data").is_object())
                     return Retry("the answer has no data", false);
                   TakeValues(Member(j, "data"));
                   if (!Render()) return;
                   lease_id_ = Str(j, "lease_id");
                   int64_t ttl = Member(j, "lease_duration").is_number_integer()
                                     ? Member(j, "lease_duration").get<int64_t>()
                                     : 0;
                   bool renewable =
                       Member(j, "renewable").is_boolean() && Member(j, "renewable").get<bool>();
                   backoff_.Reset();
                   log::Info("read credentials", {{"path", src_.path},
                                                  {"lease_id", lease_id_},
                                                  {"ttl_seconds", ttl},
                                                  {"renewable", renewable}});
                   if (agent_->options.once) return Finish(true);
                   if (ttl <= 0 || lease_id_.empty()) return;  // nothing to renew or replace
                   asked_ = ttl;
                   expires_ = std::chrono::steady_clock::now() + std::chrono::seconds(ttl);
                   renewable ? ScheduleRenew(ttl) : ScheduleRead(ttl);
                 });
  }

  void ScheduleRenew(int64_t ttl) {
    timer_.expires_after(TwoThirds(ttl));
    timer_.async_wait([this](boost::system::error_code ec) {
      if (!ec && !done_) Renew();
    });
  }
  void ScheduleRead(int64_t ttl) {
    timer_.expires_after(TwoThirds(ttl));
    timer_.async_wait([this](boost::system::error_code ec) {
      if (!ec && !done_) Read();
    });
  }

  void Renew() {
    if (done_) return;
    Json body = {{"lease_id", lease_id_}, {"increment", asked_}};
    auto used = std::make_shared<SecretBytes>(agent_->vault->token().Clone());  // for Refused
    stream_ = std::make_shared<HttpStream>(agent_->ioc, agent_->tls);
    stream_->Send(
        HttpTarget{agent_->url, used->Clone()}, "PUT", "/v1/sys/leases/renew",
        SecretBytes(body.dump()), std::chrono::seconds(30),
        [this, used](Status st, int status, SecretBytes answer) {
          stream_.reset();
          if (st.ok() && status == 200) {
            Json j = Json::parse(answer.view(), nullptr, false);
            int64_t ttl = Member(j, "lease_duration").is_number_integer()
                              ? Member(j, "lease_duration").get<int64_t>()
                              : 0;
            backoff_.Reset();
            expires_ = std::chrono::steady_clock::now() + std::chrono::seconds(ttl);
            if (!Capped(ttl, asked_)) {
              log::Debug("renewed the lease", {{"path", src_.path}, {"ttl_seconds", ttl}});
              return ScheduleRenew(ttl);
            }
            // Capped by the max TTL: these credentials end in `ttl`, less than one renewal
            // period away. New ones now, while the old ones still work.
            log::Info("the lease reaches its max TTL; reading new credentials now",
                      {{"path", src_.path}, {"lease_id", lease_id_}, {"ttl_seconds", ttl}});
            return Read();
          }
          std::string why = st.ok() ? VaultMessage(status, answer) : st.message();
          if (st.ok() && (status == 401 || status == 403)) agent_->vault->Refused(*used);
          // A lease the server no longer knows, or no time left for another try: new ones.
          bool gone = st.ok() && (status == 400 || status == 404);
          auto wait = backoff_.Next();
          if (gone ||
              std::chrono::steady_clock::now() + wait + std::chrono::seconds(1) >= expires_) {
            log::Warn("cannot renew the lease; reading new credentials",
                      {{"path", src_.path}, {"lease_id", lease_id_}, {"error", why}});
            return agent_->vault->WhenReady([this] { Read(); });
          }
          log::Warn("cannot renew the lease; retrying",
                    {{"path", src_.path}, {"error", why}, {"in_ms", wait.count()}});
          timer_.expires_after(wait);
          timer_.async_wait([this](boost::system::error_code ec) {
            if (!ec && !done_) Renew();
          });
        });
  }

  void TakeValues(const Json& data) {
    std::map<std::string, SecretBytes> values;
    for (const auto& [key, v] : data.items()) {
      values.emplace(key, v.is_string() ? SecretBytes(v.get_ref<const std::string&>())
                                        : SecretBytes(v.dump()));
    }
    values_ = std::move(values);
  }

  // Files from the values. False when they could not be rendered in once mode (the source has
  // failed then); otherwise a failed render is tried again after a backoff, and the
  // credentials count as seen (a program started) only once their files are in place.
  bool Render() {
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
        render_timer_.expires_after(backoff_.Next());
        render_timer_.async_wait([this](boost::system::error_code ec) {
          if (!ec && !done_) Render();
        });
        return true;  // the lease is still renewed meanwhile
      }
      if (*wrote) {
        log::Info("rendered",
                  {{"path", src_.path}, {"directory", src_.directory}, {"files", files.size()}});
        auto dir = src_.directory;
        cleanup_timer_ = std::make_unique<asio::steady_timer>(agent_->ioc, std::chrono::seconds(1));
        cleanup_timer_->async_wait([dir](boost::system::error_code ec) {
          if (!ec) RemoveOldVersions(dir).IgnoreError();
        });
      }
    }
    seen_ = true;
    agent_->Notify();  // new credentials are always a change
    return true;
  }

  void Retry(const std::string& why, bool permanent) {
    if (done_) return;
    if (agent_->options.once && permanent) {
      log::Error("cannot read the credentials", {{"path", src_.path}, {"error", why}});
      return Finish(false);
    }
    auto wait = backoff_.Next();
    log::Warn("retrying", {{"path", src_.path}, {"error", why}, {"in_ms", wait.count()}});
    timer_.expires_after(wait);
    timer_.async_wait([this](boost::system::error_code ec) {
      if (!ec && !done_) agent_->vault->WhenReady([this] { Read(); });
    });
  }

  void Finish(bool ok) {
    if (done_) return;
    Stop();
    agent_->SourceFinished(ok);
  }

  Impl* agent_;
  const CredentialSource& src_;
  asio::steady_timer timer_;         // renewal, replacement or retry
  asio::steady_timer render_timer_;  // a failed render tried again
  std::unique_ptr<asio::steady_timer>
      cleanup_timer_;  // removes the replaced version a second later
  std::shared_ptr<HttpStream> stream_;
  Backoff backoff_;
  std::string lease_id_;
  int64_t asked_ = 0;
  std::chrono::steady_clock::time_point expires_;
  bool seen_ = false;
  std::map<std::string, SecretBytes> values_;
  bool done_ = false;
};

}  // namespace sigil::agent
