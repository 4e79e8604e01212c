// sigil-agent: renders Secrets into directories as the kubelet lays out secret volumes, and
// keeps them current by watching the server. docs/agent.md is its manual.
//
//   sigil-agent --config agent.yaml          # follow the Secrets until SIGTERM or SIGINT
//   sigil-agent --config agent.yaml --once   # render each once and exit (init containers)
//   sigil-agent --config agent.yaml run -- CMD ARGS   # CMD with Secrets in its environment,
//                                                     # restarted or signalled on change
//
// Exit status: 0 done (or stopped by a signal), 1 a source could not be rendered (--once), 2
// bad configuration or command line; with run, the program's own status (128 + signal when it
// was killed; 127 when it cannot be started).
#include <CLI/CLI.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <functional>
#include <iostream>
#include <memory>

#include "sigil/agent/agent.h"
#include "sigil/agent/runner.h"
#include "sigil/base/file.h"
#include "sigil/base/logging.h"

int main(int argc, char** argv) {
  CLI::App app{
      "sigil-agent: Secrets from a sigil server as files, swapped atomically when they change"};
  std::string config_path, log_level = "info", log_format = "text";
  bool once = false;
  int once_timeout = 120;
  app.add_option("-c,--config", config_path, "the agent's configuration file (YAML; docs/agent.md)")
      ->required();
  app.add_flag("--once", once, "render every Secret once and exit (for init containers)");
  app.add_option("--once-timeout", once_timeout,
                 "with --once: seconds to keep retrying while the server cannot be reached")
      ->check(CLI::Range(1, 86400));
  app.add_option("--log-level", log_level, "trace, debug, info, warn or error")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error"}));
  app.add_option("--log-format", log_format, "text or json")
      ->check(CLI::IsMember({"text", "json"}));
  std::vector<std::string> command;
  CLI::App* run = app.add_subcommand(
      "run", "start a program with Secrets in its environment; restart or signal it on change");
  run->add_option("command", command, "the program and its arguments (after --)")->required();
  app.fallthrough();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }
  sigil::log::Level level = sigil::log::Level::kInfo;
  sigil::log::ParseLevel(log_level, &level);
  sigil::log::Init(level, log_format == "json");

  auto text = sigil::file::ReadFile(config_path, 1 << 20);
  if (!text.ok()) {
    std::cerr << "sigil-agent: cannot read " << config_path << ": " << text.error().message()
              << "\n";
    return 2;
  }
  std::string base_dir = config_path.find('/') == std::string::npos
                             ? "."
                             : config_path.substr(0, config_path.rfind('/'));
  if (base_dir.empty()) base_dir = "/";
  auto config = sigil::agent::ParseConfig(*text, base_dir);
  if (!config.ok()) {
    std::cerr << "sigil-agent: " << config_path << ": " << config.error().message() << "\n";
    return 2;
  }

  if (run->parsed() && once) {
    std::cerr << "sigil-agent: --once and run do not go together\n";
    return 2;
  }
  if (run->parsed() && config->exec.on_change != sigil::agent::Exec::OnChange::kRestart) {
    for (const auto& e : config->env) {
      if (!e.credential.empty()) {
        std::cerr
            << "sigil-agent: " << config_path << ": env takes credentials (" << e.credential
            << ") that are replaced before they expire; only exec.on_change: restart gives the "
               "program the new ones\n";
        return 2;
      }
    }
  }
  if (!run->parsed() && !config->env.empty()) {
    std::cerr << "sigil-agent: " << config_path
              << ": env is only used by `sigil-agent run -- CMD`\n";
    return 2;
  }

  boost::asio::io_context ioc(1);
  sigil::agent::Agent::Options options;
  options.once = once;
  options.once_timeout = std::chrono::seconds(once_timeout);
  sigil::agent::Exec exec = config->exec;
  sigil::agent::Agent agent(std::move(config).value(), options, ioc);
  int rc = 0;
  boost::asio::signal_set signals(ioc, SIGINT, SIGTERM);
  std::unique_ptr<sigil::agent::Runner> runner;
  if (run->parsed()) {
    runner = std::make_unique<sigil::agent::Runner>(ioc, agent, exec, command);
    runner->Start([&](int code) {
      rc = code;
      signals.cancel();
      agent.Stop();
      ioc.stop();
    });
  }
  sigil::Status started = agent.Start([&](bool ok) {
    if (runner) return;  // with run, the program's exit ends the agent
    rc = ok ? 0 : 1;
    signals.cancel();
    ioc.stop();
  });
  if (!started.ok()) {
    std::cerr << "sigil-agent: " << started.message() << "\n";
    return 2;
  }
  std::function<void()> wait_signal = [&] {
    signals.async_wait([&](boost::system::error_code ec, int sig) {
      if (ec) return;
      sigil::log::Info("stopping", {{"signal", sig}});
      if (runner) {
        runner->Stop();  // the agent ends when the program has
        wait_signal();   // a second signal kills it
      } else {
        agent.Stop();
      }
    });
  };
  wait_signal();
  ioc.run();
  return rc;
}
