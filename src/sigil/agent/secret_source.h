// agent/secret_source.h: one Kubernetes Secret followed by list and watch (internal to the
// agent; see agent.h).
#pragma once

#include "sigil/agent/agent_internal.h"
#include "sigil/agent/atomic_writer.h"
#include "sigil/base/encoding.h"
#include "sigil/base/logging.h"

namespace sigil::agent {

// One Secret followed by list and watch, for every use the configuration makes of it: zero
// or more directories, and env variables (then its latest values are kept).
class Agent::Impl::Source {
 public:
  Source(Impl* agent, std::string ns, std::string name)
      : agent_(agent),
        ns_(std::move(ns)),
        name_(std::move(name)),
        timer_(agent->ioc),
        cleanup_(agent->ioc),
        backoff_(agent->config.backoff_min, agent->config.backoff_max, &agent->rng) {}

  void AddDirectory(const SecretSource* src) { dirs_.push_back(src); }
  void KeepValues() { keep_values_ = true; }
  // Once: a missing Secret is not an error only if every use of it says optional.
  void SetRequired(bool required) { required_ = required_ || required; }

  const std::string& ns() const { return ns_; }
  const std::string& name() const { return name_; }
  bool seen() const { return seen_; }
  // The latest values (with KeepValues), nullptr while the Secret does not exist.
  const std::map<std::string, SecretBytes>* values() const { return present_ ? &values_ : nullptr; }

  void Start() { List(); }

  void Stop() {
    done_ = true;
    timer_.cancel();
    if (cleanup_pending_) {  // stopping: no reader is worth leaving old values on disk for
      cleanup_.cancel();
      RemoveOld();
    }
    if (stream_) stream_->Cancel();
    stream_.reset();
  }

  // Once: give up (the deadline passed).
  void GiveUp(const std::string& why) {
    if (done_) return;
    log::Error("giving up on the Secret", {{"secret", What()}, {"error", why}});
    Finish(false);
  }

 private:
  std::string What() const { return ns_ + "/" + name_; }
  std::string Path() const {
    return "/api/v1/namespaces/" + ns_ + "/secrets?fieldSelector=metadata.name%3D" + name_;
  }

  void List() {
    auto target = agent_->Target();
    if (!target.ok()) return Retry("cannot read the token: " + target.error().message(), false);
    stream_ = std::make_shared<HttpStream>(agent_->ioc, agent_->tls);
    stream_->Get(
        *target, Path(), std::chrono::seconds(30), [this](Status st, int status, SecretBytes body) {
          Guard([&] {
            stream_.reset();
            if (!st.ok()) return Retry(st.message(), false);
            if (status == 401 || status == 403) return Retry(ApiMessage(status, body), true);
            if (status != 200)
              return Retry(ApiMessage(status, body),
                           status / 100 == 4 && status != 429 && status != 404);
            Json list = Json::parse(body.view(), nullptr, false);
            if (!list.is_object() || !list.contains("items") || !list["items"].is_array()) {
              return Retry("the server's answer is not a SecretList", false);
            }
            rv_ = MetaStr(list, "resourceVersion");
            if (rv_.empty()) return Retry("the SecretList has no resourceVersion", false);
            const Json* found = nullptr;
            for (const Json& item : list["items"]) {
              if (MetaStr(item, "name") == name_) found = &item;
            }
            bool first = !seen_;
            seen_ = true;
            if (found != nullptr) {
              if (!Apply(*found, first)) return;
              if (render_failed_) {
                rv_.clear();
                return Retry("a directory could not be rendered", false);
              }
            } else {
              if (agent_->options.once) {
                if (!required_) {
                  log::Info("the Secret does not exist; it is optional", {{"secret", What()}});
                  return Finish(true);
                }
                return Retry("the Secret does not exist", true);
              }
              if (present_) Deleted();
              log::Warn("the Secret does not exist yet; waiting for it", {{"secret", What()}});
              if (first) agent_->Notify();
            }
            // The backoff is reset only by a watch that lasted: a server that lists fine but
            // expires every watch at once must still be retried ever more slowly.
            if (agent_->options.once) return Finish(true);
            WatchFrom();
          });
        });
  }

  // What the server sends is parsed defensively, but a shape nobody foresaw must cost a retry,
  // never the agent (an exception escaping into the io_context would end it).
  template <typename F>
  void Guard(F&& f) {
    try {
      f();
    } catch (const std::exception& e) {
      if (stream_) stream_->Cancel();
      stream_.reset();
      rv_.clear();
      Retry(std::string("the server's answer could not be used: ") + e.what(), false);
    }
  }

  void WatchFrom() {
    if (rv_.empty()) return List();
    auto target = agent_->Target();
    if (!target.ok()) return Retry("cannot read the token: " + target.error().message(), false);
    std::string path = Path() + "&watch=1&allowWatchBookmarks=true&resourceVersion=" + rv_ +
                       "&timeoutSeconds=" + std::to_string(agent_->config.watch_timeout.count());
    auto started = std::chrono::steady_clock::now();
    watch_started_ = started;
    stream_ = std::make_shared<HttpStream>(agent_->ioc, agent_->tls);
    stream_->Watch(
        *target, path, std::chrono::seconds(30),
        agent_->config.watch_timeout + std::chrono::seconds(60),
        [this](std::string_view line) {
          bool more = false;
          Guard([&] { more = OnEvent(line); });
          return more;
        },
        [this, started](Status st, int status, SecretBytes body) {
          stream_.reset();
          bool lasted = std::chrono::steady_clock::now() - started > std::chrono::seconds(10);
          if (lasted) backoff_.Reset();
          if (!st.ok()) return Retry("the watch broke: " + st.message(), false);
          if (status == 410) {
            rv_.clear();
            return lasted ? List() : Retry("the watch expired at once", false);
          }
          if (status != 200) return Retry(ApiMessage(status, body), false);
          // The server ended the watch (its timeout): resume at once, unless watches end as
          // soon as they start (a proxy cutting them): then after a backoff.
          if (!lasted) return Retry("the watch ended after less than 10 s", false);
          WatchFrom();
        });
  }

  // One watch event. False ends the stream (then the next step is already scheduled).
  bool OnEvent(std::string_view line) {
    Json ev = Json::parse(line, nullptr, false);
    std::string type = Str(ev, "type");
    const Json& obj = Member(ev, "object");
    if (type.empty() || !obj.is_object()) {
      log::Warn("ignoring a watch line that is not an event",
                {{"secret", What()}, {"bytes", line.size()}});
      return true;
    }
    if (type == "ERROR") {
      int code = Member(obj, "code").is_number_integer() ? Member(obj, "code").get<int>() : 0;
      stream_->Cancel();
      stream_.reset();
      if (code == 410) {
        log::Info("the watch expired; listing again",
                  {{"secret", What()}, {"resourceVersion", rv_}});
        rv_.clear();
        // A server that expires every watch at once must not make the agent spin.
        if (std::chrono::steady_clock::now() - watch_started_ < std::chrono::seconds(10)) {
          Retry("the watch expired at once", false);
        } else {
          List();
        }
      } else {
        std::string message = Str(obj, "message");
        Retry("the server ended the watch: " + (message.empty() ? "error" : message), false);
      }
      return false;
    }
    if (std::string rv = MetaStr(obj, "resourceVersion"); !rv.empty()) rv_ = rv;
    if ((type == "ADDED" || type == "MODIFIED") && MetaStr(obj, "name") == name_) {
      Apply(obj, false);
      if (render_failed_) {
        // Listed again after a backoff, and rendered from that, until it works.
        stream_->Cancel();
        stream_.reset();
        rv_.clear();
        Retry("a directory could not be rendered", false);
        return false;
      }
    } else if (type == "DELETED" && MetaStr(obj, "name") == name_) {
      Deleted();
    }
    return true;  // BOOKMARK: only its resourceVersion matters
  }

  // Renders the Secret into its directories and keeps its values. False when a directory
  // cannot be rendered in once mode (the source has then failed); otherwise the old files of
  // a directory that cannot be rendered stay.
  bool Apply(const Json& secret, bool first) {
    std::string rv = MetaStr(secret, "resourceVersion");
    bool changed = false;
    render_failed_ = false;
    for (const SecretSource* dir : dirs_) {
      auto files = SelectFiles(*dir, secret);
      Result<bool> wrote =
          files.ok() ? WriteAtomically(dir->directory, *files, Ownership{dir->owner, dir->group},
                                       /*keep_previous=*/!agent_->options.once)
                     : Result<bool>(files.error());
      if (!wrote.ok()) {
        log::Error("cannot render the Secret; the previous files stay",
                   {{"secret", What()},
                    {"resourceVersion", rv},
                    {"directory", dir->directory},
                    {"error", wrote.error().message()}});
        if (agent_->options.once) {
          Finish(false);
          return false;
        }
        render_failed_ = true;
        continue;
      }
      if (*wrote) {
        changed = true;
        ScheduleCleanup();
        log::Info("rendered", {{"secret", What()},
                               {"resourceVersion", rv},
                               {"directory", dir->directory},
                               {"files", files->size()}});
      } else {
        log::Debug("unchanged",
                   {{"secret", What()}, {"resourceVersion", rv}, {"directory", dir->directory}});
      }
    }
    if (keep_values_) {
      std::map<std::string, SecretBytes> values;
      if (secret.contains("data") && secret["data"].is_object()) {
        for (const auto& [key, v] : secret["data"].items()) {
          auto bytes = v.is_string() ? Base64DecodeSecret(v.get_ref<const std::string&>())
                                     : Result<SecretBytes>(InvalidArgumentError(""));
          if (!bytes.ok()) {
            log::Warn("a value is not base64; its variable is left out",
                      {{"secret", What()}, {"key", key}});
            continue;
          }
          values.emplace(key, std::move(bytes).value());
        }
      }
      if (!present_ || !SameValues(values)) {
        values_ = std::move(values);
        changed = true;
        log::Info("values for env updated",
                  {{"secret", What()}, {"resourceVersion", rv}, {"keys", values_.size()}});
      }
    }
    present_ = true;
    if (changed || first) agent_->Notify();
    return true;
  }

  // The version a write replaced is removed a second later: long enough for any reader that
  // resolved `..data` just before the swap to open its file, short enough that old values do
  // not linger.
  void ScheduleCleanup() {
    cleanup_pending_ = true;
    cleanup_.expires_after(std::chrono::seconds(1));
    cleanup_.async_wait([this](boost::system::error_code ec) {
      if (!ec) RemoveOld();
    });
  }

  void RemoveOld() {
    cleanup_pending_ = false;
    for (const SecretSource* dir : dirs_) {
      if (Status st = RemoveOldVersions(dir->directory); !st.ok()) {
        log::Warn("cannot remove an old version",
                  {{"directory", dir->directory}, {"error", st.message()}});
      }
    }
  }

  bool SameValues(const std::map<std::string, SecretBytes>& other) const {
    if (other.size() != values_.size()) return false;
    for (const auto& [k, v] : other) {
      auto it = values_.find(k);
      if (it == values_.end() || it->second.view() != v.view()) return false;
    }
    return true;
  }

  void Deleted() {
    for (const SecretSource* dir : dirs_) {
      if (dir->remove_on_delete) {
        Status st = RemoveAll(dir->directory);
        log::Warn("the Secret was deleted; its files were removed",
                  {{"secret", What()},
                   {"directory", dir->directory},
                   {"error", st.ok() ? "" : st.message()}});
      } else {
        log::Warn("the Secret was deleted; keeping its last files",
                  {{"secret", What()}, {"directory", dir->directory}});
      }
    }
    // Variables keep their values too (a running program keeps its environment anyway); a
    // restart for some other change starts the program without the deleted Secret's values.
    if (keep_values_ && present_) {
      log::Warn("the Secret was deleted; its env variables go at the next restart",
                {{"secret", What()}});
      values_.clear();
    }
    present_ = false;
  }

  // Waits (backoff with jitter), then lists again or resumes the watch. `permanent`: retrying
  // cannot help without a change elsewhere (denied, not found); once mode fails at once then.
  void Retry(const std::string& why, bool permanent) {
    if (done_) return;
    if (agent_->options.once && permanent) {
      log::Error("cannot render the Secret", {{"secret", What()}, {"error", why}});
      return Finish(false);
    }
    auto wait = backoff_.Next();
    log::Warn("retrying", {{"secret", What()}, {"error", why}, {"in_ms", wait.count()}});
    timer_.expires_after(wait);
    timer_.async_wait([this](boost::system::error_code ec) {
      if (ec || done_) return;
      WatchFrom();  // lists first when no resourceVersion is known
    });
  }

  void Finish(bool ok) {
    if (done_) return;
    Stop();
    agent_->SourceFinished(ok);
  }

  Impl* agent_;
  std::string ns_, name_;
  std::vector<const SecretSource*> dirs_;
  bool keep_values_ = false;
  bool required_ = false;
  asio::steady_timer timer_;
  asio::steady_timer cleanup_;
  bool cleanup_pending_ = false;
  std::shared_ptr<HttpStream> stream_;
  std::string rv_;
  Backoff backoff_;
  bool seen_ = false;           // listed at least once
  bool render_failed_ = false;  // the last Apply could not render some directory
  std::chrono::steady_clock::time_point watch_started_;
  bool present_ = false;  // the Secret exists, as last seen
  std::map<std::string, SecretBytes> values_;
  bool done_ = false;
};

}  // namespace sigil::agent
