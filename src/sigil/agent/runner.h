// agent/runner.h: `sigil-agent run -- CMD ARGS`: the program started with the configured
// Secrets in its environment once every followed Secret has been seen, and told of changes:
// restarted (its stop signal, up to stop_timeout, then SIGKILL, then started again with the
// new environment), signalled (SIGHUP by default; for programs that re-read their files), or
// left alone, as `exec.on_change` says. Changes that arrive together (within 250 ms) are acted
// on once. The agent lives as long as the program: when it exits on its own, the agent exits
// with its status (128 + signal when killed), so a container's restart policy sees it. A
// SIGTERM or SIGINT to the agent sends the program its stop signal, and the agent exits when
// the program has (SIGKILL after stop_timeout, or at a second SIGTERM/SIGINT).
//
// Thread safety: all on the agent's io_context thread.
#pragma once

#include <boost/asio/io_context.hpp>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "sigil/agent/agent.h"
#include "sigil/agent/config.h"

namespace sigil::agent {

class Runner {
 public:
  using Exited = std::function<void(int code)>;

  Runner(boost::asio::io_context& ioc, Agent& agent, Exec exec, std::vector<std::string> argv);
  ~Runner();
  Runner(const Runner&) = delete;
  Runner& operator=(const Runner&) = delete;

  // Hooks into the agent's changes; the program starts when the agent is ready.
  void Start(Exited exited);
  // Sends the program its stop signal (or finishes at once when none runs); a second call
  // kills it.
  void Stop();

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace sigil::agent
