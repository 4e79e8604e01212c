// agent/agent.h: sigil-agent's engine. Each configured Secret is followed as a client-go
// reflector follows it: a LIST (with a field selector on its name) gives the object and a
// resourceVersion, a WATCH from there delivers every change, and the files are re-rendered
// (agent/atomic_writer.h) on each. A watch that ends is resumed from the last resourceVersion
// seen (bookmarks included); one the server expired (410) starts over with a LIST; a broken
// connection is retried with exponential backoff and jitter. Nothing is polled.
//
// Everything runs on one io_context thread: no locks. Secret values live only in SecretBytes
// and the (wiped-on-free) JSON tree of the object being rendered; they are never logged.
#pragma once

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>

#include "sigil/agent/atomic_writer.h"
#include "sigil/agent/config.h"
#include "sigil/base/result.h"

namespace sigil::agent {

class Agent {
 public:
  struct Options {
    bool once = false;  // render every source once and finish (init containers)
    // With once: how long transient failures (server down, 5xx) are retried before giving up.
    std::chrono::seconds once_timeout{120};
  };
  // Called once when the agent is done: with once, after every source was rendered (true) or
  // one failed for good (false); without once, only on Stop() (true).
  using Finished = std::function<void(bool ok)>;

  Agent(Config config, Options options, boost::asio::io_context& ioc);
  ~Agent();
  Agent(const Agent&) = delete;
  Agent& operator=(const Agent&) = delete;

  // Loads the server's CA and the client's credentials (errors here are configuration errors)
  // and starts every source.
  Status Start(Finished finished);
  // Ends every request and timer; Finished(true) is called if it was not yet.
  void Stop();

  // For `sigil-agent run`. Called on the io thread after a change took effect (files swapped,
  // or a value an env variable uses changed), and when the agent first becomes Ready().
  using Changed = std::function<void()>;
  void SetOnChange(Changed changed);
  // Every Secret has been listed at least once (whether it exists or not).
  bool Ready() const;
  // The configured env variables as "NAME=value", from the latest values; kUnavailable (the
  // message says which) while a required Secret or key is missing. Keys of a whole-Secret
  // entry that are not variable names, and values holding a NUL byte, are left out (warned).
  Result<std::vector<SecretBytes>> Environment() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The Secret's files as the configuration selects them: every key (each file named as it), or
// the configured items. kNotFound when an item's key is not in the Secret (as the kubelet
// refuses such a volume); kInvalidArgument for a value that is not base64. `secret` is the
// Secret object as the API serves it.
Result<std::vector<FileData>> SelectFiles(const SecretSource& source, const nlohmann::json& secret);

}  // namespace sigil::agent
