#include "sigil/core/pipeline.h"

#include <chrono>

#include "sigil/audit/redaction.h"
#include "sigil/base/clock.h"
#include "sigil/base/logging.h"
#include "sigil/crypto/random.h"

namespace sigil::core {
namespace {

Json UserInfo(const Identity& id) {
  Json u = {{"username", id.user}, {"groups", id.groups}};
  if (!id.uid.empty()) u["uid"] = id.uid;
  if (!id.extra.empty()) u["extra"] = id.extra;
  return u;
}

}  // namespace

std::string MicroTime() {
  auto now = std::chrono::system_clock::now();
  auto us = std::chrono::duration_cast<std::chrono::microseconds>(now.time_since_epoch()).count() % 1000000;
  std::string t = FormatRfc3339(std::chrono::time_point_cast<Clock::TimePoint::duration>(now));
  char frac[24];
  std::snprintf(frac, sizeof frac, ".%06lld", static_cast<long long>(us));
  return t.substr(0, t.size() - 1) + frac + "Z";
}

std::string Pipeline::DenialMessage(const authz::Attributes& a, const std::string& user) {
  if (!a.resource_request) return "forbidden: User \"" + user + "\" cannot " + a.verb + " path \"" + a.path + "\"";
  std::string resource = a.subresource.empty() ? a.resource : a.resource + "/" + a.subresource;
  std::string qualified = a.api_group.empty() ? a.resource : a.resource + "." + a.api_group;
  return qualified + (a.name.empty() ? "" : " \"" + a.name + "\"") + " is forbidden: User \"" + user + "\" cannot " + a.verb +
         " resource \"" + resource + "\" in API group \"" + a.api_group + "\"" +
         (a.namespace_.empty() ? " at the cluster scope" : " in the namespace \"" + a.namespace_ + "\"");
}

// An audit.k8s.io/v1 Event for this request (stage and outcome are filled in per stage).
Json Pipeline::Event(const RequestInfo& info, audit::Level level, bool allowed) const {
  const authz::Attributes& a = info.kube;
  std::string now = MicroTime();
  std::string_view remote = info.remote.substr(0, info.remote.rfind(':'));
  Json ev = {{"kind", "Event"}, {"apiVersion", "audit.k8s.io/v1"}, {"level", audit::LevelName(level)},
             {"auditID", crypto::RandomUuid()}, {"requestURI", info.face == Face::kKubernetes ? audit::RedactQuery(info.uri) : std::string(info.uri)}, {"verb", a.verb},
             {"user", info.caller ? UserInfo(*info.caller) : Json{{"username", "system:anonymous"}, {"groups", {"system:unauthenticated"}}}},
             {"sourceIPs", {std::string(remote)}}, {"requestReceivedTimestamp", now}, {"stageTimestamp", now},
             {"annotations", {{"authorization.k8s.io/decision", allowed ? "allow" : "forbid"}}}};
  if (info.subject != nullptr && info.subject != info.caller) ev["impersonatedUser"] = UserInfo(*info.subject);
  if (!info.user_agent.empty()) ev["userAgent"] = std::string(info.user_agent);
  if (a.resource_request) {
    Json ref = {{"resource", a.resource}, {"apiVersion", "v1"}};
    if (!a.namespace_.empty()) ref["namespace"] = a.namespace_;
    if (!a.name.empty()) ref["name"] = a.name;
    if (!a.api_group.empty()) ref["apiGroup"] = a.api_group;
    if (!a.subresource.empty()) ref["subresource"] = a.subresource;
    ev["objectRef"] = ref;
  }
  return ev;
}

namespace {

// Whether `j` nests deeper than `max` levels (iteratively: a deep body must not exhaust the
// stack here either). The trail's writer (nlohmann's dump) recurses, so such a body is never
// recorded.
bool DeeperThan(const Json& j, int max) {
  std::vector<std::pair<const Json*, int>> todo = {{&j, 0}};
  while (!todo.empty()) {
    auto [v, depth] = todo.back();
    todo.pop_back();
    if (!v->is_structured()) continue;
    if (depth >= max) return true;
    for (const Json& e : *v) todo.emplace_back(&e, depth + 1);
  }
  return false;
}

}  // namespace

std::optional<Json> Pipeline::Redacted(const RequestInfo& info, std::string_view media_type, Json body,
                                       const audit::Decision& d) const {
  if (DeeperThan(body, kMaxRecordedDepth)) return std::nullopt;
  if (info.face == Face::kVault) return deps_.auditor->RedactedVaultBody(std::move(body));
  if (!info.kube.resource_request) return std::nullopt;
  std::optional<Json> out =
      deps_.auditor->RedactedBody(info.kube.api_group, info.kube.resource, info.kube.subresource, media_type, std::move(body));
  if (out && d.omit_managed_fields && out->is_object() && out->contains("metadata") && (*out)["metadata"].is_object()) {
    (*out)["metadata"].erase("managedFields");
  }
  return out;
}

void Pipeline::Run(const RequestInfo& info, const ErrorRenderer& errors, Executor execute, ReplyFn respond,
                   std::optional<Reply> refused) const {
  if (!refused && info.face == Face::kVault && !info.vault.unauthenticated &&
      (deps_.acl == nullptr || info.subject == nullptr ||
       !deps_.acl->Allows(*info.subject, info.vault.path, info.vault.capability, info.vault.sudo))) {
    refused = errors.Render(PermissionDeniedError("permission denied"), info);
  }
  if (!refused && info.face == Face::kKubernetes && deps_.rbac != nullptr &&
      (info.subject == nullptr || !deps_.rbac->Allows(*info.subject, info.kube))) {
    refused = errors.Render(PermissionDeniedError(DenialMessage(info.kube, info.subject ? info.subject->user : "system:anonymous")), info);
  }
  // Runs the request, or answers the refusal; `then` gets the answer.
  auto run = [&](ReplyFn then) {
    if (refused) return then(std::move(*refused));
    execute(std::move(then));
  };
  audit::Decision d;
  if (deps_.auditor != nullptr) {
    const authz::Attributes& a = info.kube;
    d = deps_.auditor->Decide(audit::Request{info.subject, a.verb, a.resource_request, a.api_group, a.resource, a.subresource,
                                             a.namespace_, a.name, a.path});
  }
  if (d.level == audit::Level::kNone) return run(std::move(respond));

  // Audited. A request that changes state is recorded before it acts (RequestReceived, even
  // when the policy omits that stage: that is what lets a failed audit write refuse the
  // request with nothing changed); a read is recorded before its answer leaves. When no audit
  // sink can write, the answer is 503 and nothing is served.
  struct Audited {
    Json ev;
    std::string audit_id;
  };
  auto state = std::make_shared<Audited>();
  state->ev = Event(info, d.level, !refused);
  state->audit_id = state->ev["auditID"].get<std::string>();
  auto write = [this](Audited& st, audit::Stage stage) {
    st.ev["stage"] = audit::StageName(stage);
    st.ev["stageTimestamp"] = MicroTime();
    return deps_.auditor->Write({st.ev});
  };
  auto audit_refusal = [&errors, &info](const Audited& st) {
    Reply r = errors.Render(UnavailableError("the audit log cannot be written; the request was refused"), info);
    r.headers.emplace_back("Audit-Id", st.audit_id);
    return r;
  };
  if (!d.omit_stages.count(audit::Stage::kRequestReceived) || info.mutating) {
    if (!write(*state, audit::Stage::kRequestReceived).ok()) return respond(audit_refusal(*state));
  }
  if (!refused && info.streaming) {
    state->ev["responseStatus"] = {{"metadata", Json::object()}, {"code", 200}};
    if (!d.omit_stages.count(audit::Stage::kResponseStarted)) {
      if (!write(*state, audit::Stage::kResponseStarted).ok()) return respond(audit_refusal(*state));
    }
    if (info.stream != nullptr) {
      info.stream->headers.emplace_back("Audit-Id", state->audit_id);
      if (!d.omit_stages.count(audit::Stage::kResponseComplete)) {
        // When the stream ends, whenever that is: the stream's end cannot be refused, so a
        // failed write is logged (as for a completed change).
        info.stream->ended = [auditor = deps_.auditor, state] {
          state->ev["stage"] = audit::StageName(audit::Stage::kResponseComplete);
          state->ev["stageTimestamp"] = MicroTime();
          if (!auditor->Write({state->ev}).ok()) {
            log::Error("audit: the end of a stream could not be recorded", {{"audit_id", state->audit_id}});
          }
        };
      }
    }
    return run(std::move(respond));
  }
  // After execution (on whichever thread it completes): ResponseComplete, then the answer. The
  // request, and so `info` and `errors`, live until `respond` has run.
  run([this, &info, &errors, d, state, write, audit_refusal, respond = std::move(respond)](std::optional<Reply> res) {
    if (!res) return respond(std::nullopt);
    res->headers.emplace_back("Audit-Id", state->audit_id);
    if (d.omit_stages.count(audit::Stage::kResponseComplete)) return respond(std::move(res));
    Json status = {{"metadata", Json::object()}, {"code", res->status}};
    // The body is parsed only when the event needs it (an error's Status, or RequestResponse).
    Json body;
    if (res->status >= 400 || d.level == audit::Level::kRequestResponse) {
      body = Json::parse(std::string_view(res->body.data(), res->body.size()), nullptr, false);
    }
    if (res->status >= 400 && body.is_object() && body.value("kind", "") == "Status") {
      for (const char* f : {"status", "message", "reason"}) {
        if (body.contains(f)) status[f] = body[f];
      }
    }
    state->ev["responseStatus"] = status;
    if (d.level >= audit::Level::kRequest && !info.sensitive_body && info.request_object) {
      if (std::optional<Json> in = info.request_object()) {
        if (std::optional<Json> shown = Redacted(info, info.request_media_type, std::move(*in), d)) {
          state->ev["requestObject"] = std::move(*shown);
        }
      }
    }
    if (d.level == audit::Level::kRequestResponse && !info.sensitive_body && body.is_object()) {
      if (std::optional<Json> shown = Redacted(info, "application/json", std::move(body), d)) {
        state->ev["responseObject"] = std::move(*shown);
      }
    }
    Status w = write(*state, audit::Stage::kResponseComplete);
    if (!w.ok()) {
      if (!info.mutating) return respond(audit_refusal(*state));  // a read's answer does not leave unrecorded
      log::Error("audit: a completed change could not be recorded (its RequestReceived was)", {{"audit_id", state->audit_id}});
    }
    respond(std::move(res));
  });
}

}  // namespace sigil::core
