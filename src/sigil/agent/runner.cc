#include "sigil/agent/runner.h"

#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cerrno>
#include <cstring>

#include "sigil/base/logging.h"

extern char** environ;

namespace sigil::agent {

namespace asio = boost::asio;

struct Runner::Impl : std::enable_shared_from_this<Runner::Impl> {
  Impl(asio::io_context& ioc, Agent& a, Exec e, std::vector<std::string> av)
      : agent(a),
        exec(e),
        argv(std::move(av)),
        children(ioc, SIGCHLD),
        debounce(ioc),
        kill_timer(ioc) {}

  enum class State { kWaiting, kRunning, kRestarting, kStopping, kDone };

  Agent& agent;
  Exec exec;
  std::vector<std::string> argv;
  asio::signal_set children;
  asio::steady_timer debounce;
  asio::steady_timer kill_timer;
  Exited exited;
  State state = State::kWaiting;
  pid_t pid = -1;
  std::vector<SecretBytes> env;  // what the running program was started with
  std::string waiting_for;       // the last reason logged for not starting yet

  void WatchChildren() {
    children.async_wait([self = shared_from_this()](boost::system::error_code ec, int) {
      if (ec) return;
      self->Reap();
      if (self->state != State::kDone) self->WatchChildren();
    });
  }

  void Changed() {
    if (state == State::kDone || state == State::kStopping) return;
    debounce.expires_after(std::chrono::milliseconds(250));
    debounce.async_wait([self = shared_from_this()](boost::system::error_code ec) {
      if (!ec) self->Act();
    });
  }

  void Act() {
    if (state == State::kWaiting) return StartIfReady();
    if (state != State::kRunning) return;  // a restart already under way takes the newest values
    switch (exec.on_change) {
      case Exec::OnChange::kRestart: {
        auto next = agent.Environment();
        if (!next.ok()) {
          log::Warn(
              "a Secret changed, but the program is not restarted while a value it needs is "
              "missing",
              {{"reason", next.error().message()}});
          return;
        }
        log::Info("a Secret changed; restarting the program",
                  {{"pid", pid}, {"stop_signal", exec.stop_signal}});
        state = State::kRestarting;
        StopChild(exec.stop_signal);
        return;
      }
      case Exec::OnChange::kSignal:
        log::Info("a Secret changed; signalling the program",
                  {{"pid", pid}, {"signal", exec.signal}});
        ::kill(pid, exec.signal);
        return;
      case Exec::OnChange::kNone:
        log::Info("a Secret changed; the program is left alone (exec.on_change: none)",
                  {{"pid", pid}});
        return;
    }
  }

  void StartIfReady() {
    if (!agent.Ready()) return;
    auto next = agent.Environment();
    if (!next.ok()) {
      if (next.error().message() != waiting_for) {
        waiting_for = next.error().message();
        log::Warn("not starting the program yet", {{"reason", waiting_for}});
      }
      state = State::kWaiting;
      return;
    }
    env = std::move(next).value();
    Spawn();
  }

  void Spawn() {
    // The agent's own environment, with the Secrets' variables set over it.
    std::vector<char*> envp;
    std::vector<std::string_view> names;
    for (const SecretBytes& e : env) {
      std::string_view v = e.view();
      names.push_back(v.substr(0, v.find('=') + 1));
    }
    for (char** p = environ; *p != nullptr; ++p) {
      std::string_view have(*p);
      bool overridden = false;
      for (std::string_view n : names) overridden = overridden || have.starts_with(n);
      if (!overridden) envp.push_back(*p);
    }
    // NUL-terminated copies of the entries (SecretBytes are not terminated), wiped after.
    std::vector<SecretBytes> owned;
    for (const SecretBytes& e : env) {
      SecretBytes c(e.size() + 1);
      std::memcpy(c.data(), e.data(), e.size());
      c.data()[e.size()] = 0;
      owned.push_back(std::move(c));
    }
    for (SecretBytes& c : owned) envp.push_back(reinterpret_cast<char*>(c.data()));
    envp.push_back(nullptr);
    std::vector<char*> args;
    for (std::string& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    pid_t child = -1;
    // The agent's own descriptors (its watch connections) are not the program's.
    posix_spawn_file_actions_t actions;
    ::posix_spawn_file_actions_init(&actions);
    ::posix_spawn_file_actions_addclosefrom_np(&actions, 3);
    int rc = ::posix_spawnp(&child, args[0], &actions, nullptr, args.data(), envp.data());
    ::posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) {
      log::Error("cannot start the program", {{"program", argv[0]}, {"error", std::strerror(rc)}});
      return Finish(127);
    }
    pid = child;
    state = State::kRunning;
    waiting_for.clear();
    log::Info("started the program",
              {{"program", argv[0]}, {"pid", pid}, {"secret_variables", env.size()}});
  }

  void StopChild(int sig) {
    ::kill(pid, sig);
    kill_timer.expires_after(exec.stop_timeout);
    kill_timer.async_wait([self = shared_from_this(), child = pid](boost::system::error_code ec) {
      if (ec || self->pid != child) return;
      log::Warn("the program did not stop in time; killing it", {{"pid", child}});
      ::kill(child, SIGKILL);
    });
  }

  void Reap() {
    for (;;) {
      int status = 0;
      pid_t done = ::waitpid(-1, &status, WNOHANG);
      if (done <= 0) return;
      if (done != pid)
        continue;  // not ours (a grandchild re-parented to us as a subreaper would be)
      pid = -1;
      kill_timer.cancel();
      int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      if (state == State::kRestarting) {
        log::Info("the program stopped for the restart", {{"code", code}});
        state = State::kWaiting;
        StartIfReady();
        continue;
      }
      log::Info(state == State::kStopping ? "the program stopped" : "the program exited",
                {{"code", code}});
      Finish(code);
    }
  }

  void Finish(int code) {
    if (state == State::kDone) return;
    state = State::kDone;
    debounce.cancel();
    kill_timer.cancel();
    boost::system::error_code ignored;
    children.cancel(ignored);
    Exited e = std::move(exited);
    exited = nullptr;
    if (e) e(code);
  }
};

Runner::Runner(asio::io_context& ioc, Agent& agent, Exec exec, std::vector<std::string> argv)
    : impl_(std::make_shared<Impl>(ioc, agent, exec, std::move(argv))) {}

Runner::~Runner() {
  if (impl_->pid > 0) ::kill(impl_->pid, SIGKILL);
  impl_->Finish(0);
}

void Runner::Start(Exited exited) {
  impl_->exited = std::move(exited);
  impl_->WatchChildren();
  std::weak_ptr<Impl> weak = impl_;
  impl_->agent.SetOnChange([weak] {
    if (auto self = weak.lock()) self->Changed();
  });
}

void Runner::Stop() {
  switch (impl_->state) {
    case Impl::State::kRunning:
    case Impl::State::kRestarting:
      impl_->state = Impl::State::kStopping;
      impl_->StopChild(impl_->exec.stop_signal);
      return;
    case Impl::State::kWaiting:
      return impl_->Finish(0);
    case Impl::State::kStopping:  // asked twice: no more waiting
      if (impl_->pid > 0) ::kill(impl_->pid, SIGKILL);
      return;
    case Impl::State::kDone:
      return;
  }
}

}  // namespace sigil::agent
