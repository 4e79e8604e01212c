// agent/agent_internal.h: the agent's shared state (Agent::Impl) and the helpers its parts
// use; included by agent.cc, secret_source.h and credential.h only. Everything runs on the
// agent's io_context thread.
#pragma once

#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "sigil/agent/agent.h"
#include "sigil/agent/stream.h"
#include "sigil/client/http_client.h"

namespace sigil::agent {

namespace asio = boost::asio;
using Json = nlohmann::json;

// The message of a Kubernetes Status body, or the status code alone.
inline std::string ApiMessage(int status, const SecretBytes& body) {
  Json j = Json::parse(body.view(), nullptr, false);
  if (j.is_object() && j.contains("message") && j["message"].is_string()) {
    return "HTTP " + std::to_string(status) + ": " + j["message"].get<std::string>();
  }
  return "HTTP " + std::to_string(status);
}

// A string member of an object, "" when absent or of another type: what the server sends is
// not trusted to have the right shape (nlohmann's value() throws on a wrong type).
inline std::string Str(const Json& obj, const char* key) {
  if (!obj.is_object()) return "";
  auto it = obj.find(key);
  return it != obj.end() && it->is_string() ? it->get<std::string>() : "";
}

inline const Json& Member(const Json& obj, const char* key) {
  static const Json kNull;
  if (!obj.is_object()) return kNull;
  auto it = obj.find(key);
  return it != obj.end() ? *it : kNull;
}

// The first of a Vault error answer's "errors", or the status code alone.
inline std::string VaultMessage(int status, const SecretBytes& body) {
  Json j = Json::parse(body.view(), nullptr, false);
  const Json& errors = j.is_object() && j.contains("errors") ? j["errors"] : Json();
  if (errors.is_array() && !errors.empty() && errors[0].is_string()) {
    return "HTTP " + std::to_string(status) + ": " + errors[0].get<std::string>();
  }
  return "HTTP " + std::to_string(status);
}

// Exponential backoff with jitter: each Next() is the current delay times a random 0.5-1.0,
// and doubles the delay up to the maximum; Reset() goes back to the minimum.
class Backoff {
 public:
  Backoff(std::chrono::milliseconds min, std::chrono::milliseconds max, std::minstd_rand* rng)
      : min_(min), max_(max), current_(min), rng_(rng) {}
  std::chrono::milliseconds Next() {
    std::uniform_real_distribution<double> jitter(0.5, 1.0);
    auto wait = std::chrono::milliseconds(
        static_cast<int64_t>(static_cast<double>(current_.count()) * jitter(*rng_)));
    current_ = std::min(current_ * 2, max_);
    return wait;
  }
  void Reset() { current_ = min_; }

 private:
  std::chrono::milliseconds min_, max_, current_;
  std::minstd_rand* rng_;
};

inline std::string MetaStr(const Json& obj, const char* key) {
  return Str(Member(obj, "metadata"), key);
}

struct Agent::Impl {
  Impl(Config c, Options o, asio::io_context& io)
      : config(std::move(c)),
        options(o),
        ioc(io),
        tls(asio::ssl::context::tls_client),
        deadline(io) {}

  class Source;        // agent/secret_source.h
  class Credential;    // agent/credential.h
  class VaultSession;  // agent/credential.h
  ~Impl();

  Status Load();
  Result<HttpTarget> Target();
  void SourceFinished(bool ok);
  void StopAll();
  void Notify() {
    if (on_change) on_change();
  }
  Source* Find(const std::string& ns, const std::string& name) const;

  Config config;
  Options options;
  asio::io_context& ioc;
  asio::ssl::context tls;
  client::ServerUrl url;
  SecretBytes fixed_token;                       // from a kubeconfig
  std::vector<std::unique_ptr<Source>> sources;  // one per Secret followed
  std::unique_ptr<VaultSession> vault;           // with credentials
  std::vector<std::unique_ptr<Credential>> credentials;
  asio::steady_timer deadline;  // once: how long transient failures are retried
  Finished finished;
  Changed on_change;
  size_t pending = 0;
  bool failed = false;
  bool stopped = false;
  std::minstd_rand rng{std::random_device{}()};
};

}  // namespace sigil::agent
