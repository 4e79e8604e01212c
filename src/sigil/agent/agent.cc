#include "sigil/agent/agent.h"

#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cstring>
#include <map>
#include <random>

#include "sigil/agent/agent_internal.h"
#include "sigil/agent/credential.h"
#include "sigil/agent/secret_source.h"
#include "sigil/agent/stream.h"
#include "sigil/base/encoding.h"
#include "sigil/base/file.h"
#include "sigil/base/logging.h"
#include "sigil/client/kubeconfig.h"

namespace sigil::agent {

Result<std::vector<FileData>> SelectFiles(const SecretSource& source, const Json& secret) {
  std::string what = source.namespace_ + "/" + source.name;
  const Json* data = nullptr;
  if (secret.is_object() && secret.contains("data") && secret["data"].is_object())
    data = &secret["data"];
  std::vector<FileData> files;
  auto add = [&](const std::string& key, const std::string& path, int mode) -> Status {
    const Json& v = (*data)[key];
    if (!v.is_string())
      return InvalidArgumentError("Secret " + what + ": the value of " + key + " is not a string");
    auto bytes = Base64DecodeSecret(v.get_ref<const std::string&>());
    if (!bytes.ok())
      return InvalidArgumentError("Secret " + what + ": the value of " + key + " is not base64");
    files.push_back(FileData{path, std::move(bytes).value(), mode});
    return OkStatus();
  };
  if (source.items.empty()) {
    if (data != nullptr) {
      for (const auto& [key, value] : data->items()) {
        // The server refuses such keys; a file name that could escape the directory is
        // refused here again, whatever the server sent.
        if (Status st = CheckItemPath(key); !st.ok() || key.find('/') != std::string::npos) {
          return InvalidArgumentError("Secret " + what + ": key \"" + key +
                                      "\" cannot be a file name");
        }
        SIGIL_RETURN_IF_ERROR(add(key, key, source.mode));
      }
    }
    return files;
  }
  for (const Item& item : source.items) {
    if (data == nullptr || !data->contains(item.key)) {
      return NotFoundError("Secret " + what + " has no key \"" + item.key + "\"");
    }
    SIGIL_RETURN_IF_ERROR(add(item.key, item.path, item.mode.value_or(source.mode)));
  }
  return files;
}

Agent::Impl::~Impl() = default;

void Agent::Impl::StopAll() {
  for (auto& s : sources) s->Stop();
  for (auto& c : credentials) c->Stop();
  if (vault) vault->Stop();
}

Agent::Impl::Source* Agent::Impl::Find(const std::string& ns, const std::string& name) const {
  for (const auto& s : sources) {
    if (s->ns() == ns && s->name() == name) return s.get();
  }
  return nullptr;
}

Status Agent::Impl::Load() {
  tls.set_options(asio::ssl::context::no_tlsv1 | asio::ssl::context::no_tlsv1_1 |
                  asio::ssl::context::no_compression);
  tls.set_verify_mode(asio::ssl::verify_peer);
  std::string ca_pem, cert_pem, server = config.server;
  SecretBytes key_pem;
  if (!config.kubeconfig.empty()) {
    SIGIL_ASSIGN_OR_RETURN(client::Endpoint ep,
                           client::LoadKubeconfig(config.kubeconfig, config.context));
    server = ep.server;
    ca_pem = ep.ca_pem;
    cert_pem = ep.cert_pem;
    key_pem = std::move(ep.key_pem);
    fixed_token = std::move(ep.token);
  } else {
    if (!config.ca_file.empty()) {
      SIGIL_ASSIGN_OR_RETURN(ca_pem, file::ReadFile(config.ca_file, 1 << 20));
    }
  }
  if (!config.auth.cert_file.empty()) {
    SIGIL_ASSIGN_OR_RETURN(cert_pem, file::ReadFile(config.auth.cert_file, 1 << 20));
    SIGIL_ASSIGN_OR_RETURN(key_pem, file::ReadPrivateFile(config.auth.key_file));
  }
  SIGIL_ASSIGN_OR_RETURN(url, client::ParseServerUrl(server));
  boost::system::error_code ec;
  if (!ca_pem.empty()) {
    tls.add_certificate_authority(asio::buffer(ca_pem), ec);
    if (ec)
      return InvalidArgumentError("the server's CA certificate cannot be used: " + ec.message());
  } else {
    tls.set_default_verify_paths(ec);
  }
  if (!cert_pem.empty()) {
    tls.use_certificate_chain(asio::buffer(cert_pem), ec);
    if (!ec)
      tls.use_private_key(asio::buffer(key_pem.data(), key_pem.size()), asio::ssl::context::pem,
                          ec);
    if (ec)
      return InvalidArgumentError("the client certificate or key cannot be used: " + ec.message());
  }
  return OkStatus();
}

// The token is read again for every connection: projected service-account tokens are
// replaced on disk by the kubelet before they expire.
Result<HttpTarget> Agent::Impl::Target() {
  HttpTarget t{url, SecretBytes()};
  if (!config.auth.token_file.empty()) {
    SIGIL_ASSIGN_OR_RETURN(std::string raw, file::ReadFile(config.auth.token_file, 64 << 10));
    size_t b = raw.find_first_not_of(" \t\r\n"), e = raw.find_last_not_of(" \t\r\n");
    t.token = b == std::string::npos ? SecretBytes()
                                     : SecretBytes(std::string_view(raw).substr(b, e - b + 1));
    internal::SecureZero(raw.data(), raw.size());
    if (t.token.empty()) return InvalidArgumentError(config.auth.token_file + " is empty");
  } else if (!fixed_token.empty()) {
    t.token = fixed_token.Clone();
  }
  return t;
}

void Agent::Impl::SourceFinished(bool ok) {
  if (!ok) failed = true;
  if (pending > 0) --pending;
  if (pending == 0 || (!ok && options.once)) {
    StopAll();
    deadline.cancel();
    if (finished) {
      Finished f = std::move(finished);
      finished = nullptr;
      f(!failed);
    }
  }
}

Agent::Agent(Config config, Options options, asio::io_context& ioc)
    : impl_(std::make_unique<Impl>(std::move(config), options, ioc)) {}

Agent::~Agent() { Stop(); }

Status Agent::Start(Finished finished) {
  SIGIL_RETURN_IF_ERROR(impl_->Load());
  impl_->finished = std::move(finished);
  auto source = [this](const std::string& ns, const std::string& name) {
    Impl::Source* s = impl_->Find(ns, name);
    if (s == nullptr) {
      impl_->sources.push_back(std::make_unique<Impl::Source>(impl_.get(), ns, name));
      s = impl_->sources.back().get();
    }
    return s;
  };
  for (const SecretSource& d : impl_->config.secrets) {
    Impl::Source* s = source(d.namespace_, d.name);
    s->AddDirectory(&d);
    s->SetRequired(!d.optional);
  }
  for (const EnvVar& e : impl_->config.env) {
    if (e.secret.empty()) continue;  // a credential's
    Impl::Source* s = source(e.namespace_, e.secret);
    s->KeepValues();
    s->SetRequired(!e.optional);
  }
  if (!impl_->config.credentials.empty()) {
    impl_->vault = std::make_unique<Impl::VaultSession>(impl_.get());
    for (const CredentialSource& c : impl_->config.credentials) {
      impl_->credentials.push_back(std::make_unique<Impl::Credential>(impl_.get(), c));
    }
  }
  impl_->pending = impl_->sources.size() + impl_->credentials.size();
  if (impl_->options.once) {
    impl_->deadline.expires_after(impl_->options.once_timeout);
    impl_->deadline.async_wait([impl = impl_.get()](boost::system::error_code ec) {
      if (ec) return;
      std::string why =
          "not rendered within " + std::to_string(impl->options.once_timeout.count()) + " s";
      for (auto& s : impl->sources) s->GiveUp(why);
      for (auto& c : impl->credentials) c->GiveUp(why);
    });
  }
  log::Info("sigil-agent started",
            {{"server", "https://" + impl_->url.host + ":" + impl_->url.port},
             {"secrets", impl_->sources.size()},
             {"credentials", impl_->credentials.size()},
             {"once", impl_->options.once}});
  for (auto& s : impl_->sources) s->Start();
  for (auto& c : impl_->credentials) c->Start();
  return OkStatus();
}

void Agent::Stop() {
  if (impl_->stopped) return;
  impl_->stopped = true;
  impl_->StopAll();
  impl_->deadline.cancel();
  if (impl_->finished) {
    Finished f = std::move(impl_->finished);
    impl_->finished = nullptr;
    f(!impl_->failed);
  }
}

void Agent::SetOnChange(Changed changed) { impl_->on_change = std::move(changed); }

bool Agent::Ready() const {
  for (const auto& s : impl_->sources) {
    if (!s->seen()) return false;
  }
  for (const auto& c : impl_->credentials) {
    if (!c->seen()) return false;
  }
  return true;
}

Result<std::vector<SecretBytes>> Agent::Environment() const {
  std::vector<SecretBytes> env;
  auto add = [&](const std::string& name, const SecretBytes& value) {
    if (std::memchr(value.data(), 0, value.size()) != nullptr) {
      log::Warn("a value holds a NUL byte and cannot be an env variable; left out",
                {{"variable", name}});
      return;
    }
    SecretBytes entry(name.size() + 1 + value.size());
    std::memcpy(entry.data(), name.data(), name.size());
    entry.data()[name.size()] = '=';
    if (!value.empty()) std::memcpy(entry.data() + name.size() + 1, value.data(), value.size());
    env.push_back(std::move(entry));
  };
  for (const EnvVar& e : impl_->config.env) {
    const std::map<std::string, SecretBytes>* values = nullptr;
    std::string what;
    if (!e.credential.empty()) {
      what = "credentials " + e.credential;
      for (const auto& c : impl_->credentials) {
        if (c->source().path == e.credential) values = c->values();
      }
    } else {
      const Impl::Source* s = impl_->Find(e.namespace_, e.secret);
      values = s != nullptr ? s->values() : nullptr;
      what = "Secret " + e.namespace_ + "/" + e.secret;
    }
    if (values == nullptr) {
      if (e.optional) continue;
      return UnavailableError(what + (e.credential.empty() ? " does not exist" : " not read yet"));
    }
    if (!e.name.empty()) {
      auto it = values->find(e.key);
      if (it == values->end()) {
        if (e.optional) continue;
        return UnavailableError(what + " has no key \"" + e.key + "\"");
      }
      add(e.name, it->second);
      continue;
    }
    for (const auto& [key, value] : *values) {
      std::string name = e.prefix + key;
      if (!IsEnvName(name)) {
        log::Warn("a key is not a valid variable name; left out", {{"secret", what}, {"key", key}});
        continue;
      }
      add(name, value);
    }
  }
  return env;
}

}  // namespace sigil::agent
