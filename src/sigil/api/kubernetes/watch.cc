// api/kubernetes/watch.cc: Watch: initial state, events, bookmarks, the end of a watch.
#include <charconv>
#include <chrono>

#include "sigil/api/kubernetes/impl.h"
#include "sigil/base/secret_bytes.h"

namespace sigil::kube {

std::string KubernetesApi::Impl::BookmarkLine(const std::string& kind, int64_t rv, bool initial_events_end) {
  Json meta = {{"resourceVersion", std::to_string(rv)}, {"creationTimestamp", nullptr}};
  if (initial_events_end) meta["annotations"] = {{"k8s.io/initial-events-end", "true"}};
  return Json{{"type", "BOOKMARK"}, {"object", {{"kind", kind}, {"apiVersion", "v1"}, {"metadata", meta}}}}.dump() + "\n";
}

// As kube-apiserver's watch cache: a bookmark every minute, and one about two seconds before
// the watch's deadline, so a client can resume from there.
std::chrono::steady_clock::time_point KubernetesApi::Impl::NextBookmark(std::chrono::steady_clock::time_point now,
                                                         std::chrono::steady_clock::time_point deadline) {
  auto next = now + std::chrono::seconds(60);
  auto before_end = deadline - std::chrono::seconds(2);
  return before_end > now && before_end < next ? before_end : next;
}

void KubernetesApi::Impl::BookmarkLoop() {
  std::unique_lock<std::mutex> l(bookmark_mu_);
  while (!bookmark_stop_) {
    bookmark_cv_.wait_for(l, std::chrono::milliseconds(250));
    auto now = std::chrono::steady_clock::now();
    std::erase_if(bookmark_watches_, [&](const std::weak_ptr<WatchState>& w) {
      std::shared_ptr<WatchState> st = w.lock();
      if (!st) return true;
      std::lock_guard<std::mutex> sl(st->mu);
      if (st->closed) return true;
      if (now < st->next_bookmark) return false;
      std::shared_ptr<http::StreamWriter> writer = st->writer.lock();
      if (!writer || !writer->Write(BookmarkLine(st->kind, st->progress, false))) return true;
      st->next_bookmark = NextBookmark(now, st->deadline);
      return false;
    });
  }
}

std::optional<http::Response> KubernetesApi::Impl::Watch(const http::Request& req, const http::StreamStarter& start_stream) {
  Path p = SplitPath(req.target());
  auto q = ParseQuery(req.target());
  auto& s = p.seg;
  if (p.bad) return Fail(req, BadRequest("invalid path"));
  // The group-version part: /api/v1 (core) or /apis/rbac.authorization.k8s.io/v1.
  size_t gv = 0;
  if (s.size() >= 2 && s[0] == "api" && s[1] == "v1") gv = 2;
  if (s.size() >= 3 && s[0] == "apis" && s[1] == kRbacGroup && s[2] == "v1") gv = 3;
  if (gv == 0) return Fail(req, MethodNotAllowed());
  std::vector<std::string> rest(s.begin() + static_cast<long>(gv), s.end());
  bool legacy = !rest.empty() && rest[0] == "watch";  // /api/v1/watch/namespaces/<ns>/secrets[/<name>], ...
  if (legacy) rest.erase(rest.begin());
  std::string ns, only_name;
  if (rest.size() >= 3 && rest[0] == "namespaces") {
    ns = rest[1];
    rest.erase(rest.begin(), rest.begin() + 2);
  }
  if (legacy && rest.size() == 2) {
    only_name = rest[1];
    rest.pop_back();
  }
  if (rest.size() != 1) return Fail(req, MethodNotAllowed());
  const registry::Resource* type = nullptr;  // null: namespaces
  if (gv == 2 && rest[0] == "secrets") type = &registry::Secrets();
  if (gv == 2 && rest[0] == "serviceaccounts") type = &registry::ServiceAccounts();
  if (gv == 3) type = registry::RbacResource(rest[0]);
  bool namespaces = gv == 2 && rest[0] == "namespaces" && ns.empty();
  if (type == nullptr && !namespaces) return Fail(req, MethodNotAllowed());
  if (type != nullptr && !type->namespaced && !ns.empty()) return Fail(req, MethodNotAllowed());
  std::string kind = namespaces ? "Namespace" : type->kind;
  const registry::Resource& watched = namespaces ? registry::Namespaces() : *type;
  auto labels = LabelSelector::Parse(Param(q, "labelSelector"));
  if (!labels.ok()) return Fail(req, BadRequest(labels.error().message()));
  std::set<std::string> supported = watched.strategy->FieldSelectors();
  auto fields = FieldSelector::Parse(Param(q, "fieldSelector"), supported);
  if (!fields.ok()) return Fail(req, BadRequest(fields.error().message()));
  // Integers are parsed whole, as Go's strconv.ParseInt: "3abc" is an error, not 3.
  auto parse_int = [](const std::string& v, int64_t* out) {
    auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), *out);
    return ec == std::errc() && end == v.data() + v.size();
  };
  int64_t timeout = 1800;
  if (std::string t = Param(q, "timeoutSeconds"); !t.empty()) {
    if (!parse_int(t, &timeout)) return Fail(req, BadRequest("invalid timeoutSeconds: \"" + t + "\""));
    if (timeout <= 0) timeout = 1800;
  }
  std::string rv = Param(q, "resourceVersion");
  bool bookmarks = ParseBool(Param(q, "allowWatchBookmarks"));
  bool send_initial = ParseBool(Param(q, "sendInitialEvents"));
  if (send_initial && (!bookmarks || Param(q, "resourceVersionMatch") != "NotOlderThan")) {
    FieldErrors errs;
    if (Param(q, "resourceVersionMatch") != "NotOlderThan") {
      errs.push_back({FieldError::Type::kForbidden, "resourceVersionMatch", "",
                      "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan"});
    }
    if (!bookmarks) {
      errs.push_back({FieldError::Type::kForbidden, "allowWatchBookmarks", "", "sendInitialEvents requires setting allowWatchBookmarks to true"});
    }
    return Fail(req, Invalid("ListOptions", "", errs));
  }
  bool initial = rv.empty() || rv == "0" || send_initial;
  int64_t after = 0;
  if (!rv.empty() && (!parse_int(rv, &after) || after < 0)) return Fail(req, BadRequest("invalid resourceVersion: \"" + rv + "\""));
  bool table = WantsTable(req);
  registry::ListOptions selectors;
  selectors.labels = std::move(labels).value();
  selectors.fields = std::move(fields).value();
  auto matches = [selectors = std::move(selectors), only_name, res = &watched](const Json& obj) {
    if (!only_name.empty() && obj["metadata"].value("name", "") != only_name) return false;
    return registry::Matches(*res, selectors, obj);
  };
  auto render = [this, table, type](const char* event, const Json& obj) {
    Json ev = {{"type", event}};
    if (table) {
      std::string obj_rv = obj["metadata"].value("resourceVersion", "");
      ev["object"] = type != nullptr ? TableFor(*type, {obj}, obj_rv, "") : NamespaceTable({obj}, obj_rv);
    } else {
      ev["object"] = obj;
      if (type != nullptr) ShowAggregated(*type, &ev["object"]);
    }
    std::string line = ev.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    line += '\n';
    return line;
  };
  // Initial state: list now, then watch from the list's revision, so nothing falls between.
  std::vector<std::string> initial_lines;
  if (initial) {
    auto l = registry_->List(watched, ns, registry::ListOptions{});
    if (!l.ok()) return Fail(req, l.error());
    after = l->revision;
    for (const Json& obj : l->items) {
      if (matches(obj)) initial_lines.push_back(render("ADDED", obj));
    }
    if (send_initial) initial_lines.push_back(BookmarkLine(kind, after, true));
  }
  http::Response head = http::MakeResponse(req, http::HttpStatus::ok, table ? kTableContentType : "application/json", "");
  std::shared_ptr<http::StreamWriter> writer = start_stream(std::move(head), std::chrono::seconds(timeout));
  auto state = std::make_shared<WatchState>();
  state->writer = writer;
  state->kind = kind;
  state->progress = after;
  auto started = std::chrono::steady_clock::now();
  state->deadline = started + std::chrono::seconds(timeout);
  state->next_bookmark = NextBookmark(started, state->deadline);
  writer->OnClosed([state] {
    std::unique_ptr<registry::WatchHandle> h;
    {
      std::lock_guard<std::mutex> l(state->mu);
      state->closed = true;
      h = std::move(state->handle);
    }
    // h is destroyed here, outside the lock: that ends the storage watch.
  });
  // The writer owns each line from here and wipes it once sent (api/http StreamWriter); wiping
  // the moved-from string here would wipe nothing.
  for (std::string& line : initial_lines) writer->Write(std::move(line));
  auto handle = registry_->Watch(watched, ns, after, [writer, matches, render, state](const std::vector<registry::WatchEvent>& events,
                                                                                     const Status& error) {
    std::lock_guard<std::mutex> l(state->mu);
    if (state->closed) return;
    for (const registry::WatchEvent& e : events) {
      state->progress = std::max(state->progress, e.revision);
      const std::optional<Json>& now = e.now;
      const std::optional<Json>& before = e.before;
      bool now_match = now && matches(*now);
      bool before_match = before && matches(*before);
      std::string line;
      if (now_match) {
        line = render(before_match ? "MODIFIED" : "ADDED", *now);
      } else if (before_match) {
        line = render("DELETED", now ? *now : *before);
      }
      if (!line.empty()) writer->Write(std::move(line));
    }
    if (!error.ok()) {
      writer->Write(Json{{"type", "ERROR"}, {"object", InternalError("a stored object failed to decrypt").ToJson()}}.dump() + "\n");
      writer->Close();
    }
  });
  if (!handle.ok()) {
    if (handle.error().code() == StatusCode::kOutOfRange) {
      ApiError gone{410, "Expired", handle.error().message(), nullptr};
      writer->Write(Json{{"type", "ERROR"}, {"object", gone.ToJson()}}.dump() + "\n");
    } else {
      writer->Write(Json{{"type", "ERROR"}, {"object", InternalError(handle.error().message()).ToJson()}}.dump() + "\n");
    }
    writer->Close();
    return std::nullopt;
  }
  std::unique_ptr<registry::WatchHandle> orphan;
  {
    std::lock_guard<std::mutex> l(state->mu);
    if (state->closed) {
      orphan = std::move(handle).value();  // the client left already: end the watch now
    } else {
      state->handle = std::move(handle).value();
    }
  }
  if (!orphan) {
    std::lock_guard<std::mutex> l(bookmark_mu_);
    std::erase_if(live_watches_, [](const std::weak_ptr<WatchState>& w) { return w.expired(); });
    live_watches_.push_back(state);
    if (bookmarks && !table) bookmark_watches_.push_back(state);
  }
  return std::nullopt;
}

}  // namespace sigil::kube
