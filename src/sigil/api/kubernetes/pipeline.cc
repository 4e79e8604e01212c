// api/kubernetes/pipeline.cc: The request pipeline of the face: impersonation, RBAC, audit around every request (moves to core/ with the Vault face).
#include <chrono>

#include "sigil/api/kubernetes/impl.h"
#include "sigil/api/kubernetes/protobuf.h"
#include "sigil/api/kubernetes/yaml_json.h"
#include "sigil/base/logging.h"
#include "sigil/crypto/random.h"

namespace sigil::kube {

std::optional<http::Response> KubernetesApi::Impl::Serve(const http::Request& req, const http::StreamStarter& start_stream, const Identity* who,
                                    const std::string& remote) {
  // Who the request acts as (impersonation), and whether RBAC lets it.
  Identity impersonated;
  const Identity* subject = who;
  std::optional<ApiError> refused;
  if (authorizer_ != nullptr && who != nullptr) {
    bool impersonating = false;
    refused = Impersonate(req, *who, &impersonated, &impersonating);
    if (impersonating) subject = &impersonated;
  }
  authz::Attributes a = RequestAttributes(req);
  if (!refused && authorizer_ != nullptr && (subject == nullptr || !authorizer_->Allows(*subject, a))) refused = Forbidden(a, subject);
  audit::Decision d;
  if (auditor_ != nullptr) {
    d = auditor_->Decide(audit::Request{subject, a.verb, a.resource_request, a.api_group, a.resource, a.subresource, a.namespace_,
                                        a.name, a.path});
  }
  if (d.level == audit::Level::kNone) return Handle(req, start_stream, subject, refused);

  // Audited. A request that changes state is recorded before it acts (RequestReceived, even
  // when the policy omits that stage: that is what lets a failed audit write refuse the
  // request with nothing changed); a read is recorded before its answer leaves. When no audit
  // sink can write, the answer is 503 and nothing is served.
  bool mutating = req.method() != http::Verb::get && req.method() != http::Verb::head;
  Json ev = AuditEvent(req, a, who, subject, remote, d.level, !refused);
  auto write = [&](audit::Stage stage) {
    ev["stage"] = audit::StageName(stage);
    ev["stageTimestamp"] = MicroTime();
    return auditor_->Write({ev});
  };
  auto audit_refusal = [&] {
    http::Response r = Fail(req, FromStatusMessage(503, "ServiceUnavailable", "the audit log cannot be written; the request was refused"));
    r.set("Audit-Id", ev["auditID"].get<std::string>());
    return r;
  };
  if (!d.omit_stages.count(audit::Stage::kRequestReceived) || mutating) {
    if (!write(audit::Stage::kRequestReceived).ok()) return audit_refusal();
  }
  if (!refused && IsWatch(req)) {
    if (!d.omit_stages.count(audit::Stage::kResponseStarted)) {
      ev["responseStatus"] = {{"metadata", Json::object()}, {"code", 200}};
      if (!write(audit::Stage::kResponseStarted).ok()) return audit_refusal();
    }
    return Handle(req, start_stream, subject, refused);
  }
  std::optional<http::Response> res = Handle(req, start_stream, subject, refused);
  if (!res) return res;
  res->set("Audit-Id", ev["auditID"].get<std::string>());
  if (d.omit_stages.count(audit::Stage::kResponseComplete)) return res;
  Json status = {{"metadata", Json::object()}, {"code", res->result_int()}};
  // The body is parsed only when the event needs it (an error's Status, or RequestResponse).
  Json body;
  if (res->result_int() >= 400 || d.level == audit::Level::kRequestResponse) {
    body = Json::parse(std::string_view(res->body().data(), res->body().size()), nullptr, false);
  }
  if (res->result_int() >= 400 && body.is_object() && body.value("kind", "") == "Status") {
    for (const char* f : {"status", "message", "reason"}) {
      if (body.contains(f)) status[f] = body[f];
    }
  }
  ev["responseStatus"] = status;
  // TokenReviews carry bearer tokens and audit-hash requests carry secret values: their
  // bodies are never recorded, at any level.
  bool sensitive = a.resource == "tokenreviews" || a.path == "/sigil/v1/audit/hash" || a.path == "/sigil/v1/tokens";
  if (d.level >= audit::Level::kRequest && !sensitive && !req.body().empty()) {
    if (std::optional<Json> in = AuditBody(req, a)) {
      auditor_->Redact(&*in);
      if (d.omit_managed_fields && in->is_object() && in->contains("metadata")) (*in)["metadata"].erase("managedFields");
      ev["requestObject"] = std::move(*in);
    }
  }
  if (d.level == audit::Level::kRequestResponse && !sensitive && body.is_object()) {
    auditor_->Redact(&body);
    if (d.omit_managed_fields && body.contains("metadata")) body["metadata"].erase("managedFields");
    ev["responseObject"] = std::move(body);
  }
  Status w = write(audit::Stage::kResponseComplete);
  if (!w.ok()) {
    if (!mutating) return audit_refusal();  // a read's answer does not leave unrecorded
    log::Error("audit: a completed change could not be recorded (its RequestReceived was)", {{"audit_id", ev["auditID"].get<std::string>()}});
  }
  return res;
}

std::optional<http::Response> KubernetesApi::Impl::Handle(const http::Request& req, const http::StreamStarter& start_stream, const Identity* who,
                                     const std::optional<ApiError>& refused) {
  try {
    if (refused) return Fail(req, *refused);
    if (IsWatch(req)) return Watch(req, start_stream);
    if (req.target().starts_with("/apis/authentication.k8s.io")) return Authentication(req, who);
    if (req.target().starts_with("/apis/authorization.k8s.io")) return Authorization(req, who);
    return Route(req, who);
  } catch (const nlohmann::json::exception& e) {
    // nlohmann's messages can quote input: never pass them on.
    log::Warn("kubernetes api: unexpected JSON error", {{"id", e.id}});
    return Fail(req, BadRequest("the request body could not be processed"));
  }
}

std::string KubernetesApi::Impl::MicroTime() {
  auto now = std::chrono::system_clock::now();
  auto us = std::chrono::duration_cast<std::chrono::microseconds>(now.time_since_epoch()).count() % 1000000;
  std::string t = FormatRfc3339(std::chrono::time_point_cast<Clock::TimePoint::duration>(now));
  char frac[24];
  std::snprintf(frac, sizeof frac, ".%06lld", static_cast<long long>(us));
  return t.substr(0, t.size() - 1) + frac + "Z";
}

// An audit.k8s.io/v1 Event for this request (stage and outcome are filled in per stage).
Json KubernetesApi::Impl::AuditEvent(const http::Request& req, const authz::Attributes& a, const Identity* who, const Identity* subject,
                       const std::string& remote, audit::Level level, bool allowed) {
  auto user_info = [](const Identity& id) {
    Json u = {{"username", id.user}, {"groups", id.groups}};
    if (!id.uid.empty()) u["uid"] = id.uid;
    if (!id.extra.empty()) u["extra"] = id.extra;
    return u;
  };
  std::string now = MicroTime();
  Json ev = {{"kind", "Event"}, {"apiVersion", "audit.k8s.io/v1"}, {"level", audit::LevelName(level)},
             {"auditID", crypto::RandomUuid()}, {"requestURI", std::string(req.target())}, {"verb", a.verb},
             {"user", who ? user_info(*who) : Json{{"username", "system:anonymous"}, {"groups", {"system:unauthenticated"}}}},
             {"sourceIPs", {remote.substr(0, remote.rfind(':'))}}, {"requestReceivedTimestamp", now}, {"stageTimestamp", now},
             {"annotations", {{"authorization.k8s.io/decision", allowed ? "allow" : "forbid"}}}};
  if (subject != nullptr && subject != who) ev["impersonatedUser"] = user_info(*subject);
  auto ua = req.find(boost::beast::http::field::user_agent);
  if (ua != req.end()) ev["userAgent"] = std::string(ua->value());
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

// The request body as an object, for Request-level audit (JSON, apply YAML or protobuf).
std::optional<Json> KubernetesApi::Impl::AuditBody(const http::Request& req, const authz::Attributes& a) {
  std::string_view body(req.body().data(), req.body().size());
  auto it = req.find(boost::beast::http::field::content_type);
  std::string ct = it == req.end() ? "application/json" : std::string(it->value());
  ct = ct.substr(0, ct.find(';'));
  if (ct == kProtobufContentType) {
    static const std::map<std::string, std::string> kKinds = {
        {"secrets", "Secret"}, {"namespaces", "Namespace"}, {"roles", "Role"}, {"clusterroles", "ClusterRole"},
        {"rolebindings", "RoleBinding"}, {"clusterrolebindings", "ClusterRoleBinding"},
        {"selfsubjectaccessreviews", "SelfSubjectAccessReview"}, {"selfsubjectrulesreviews", "SelfSubjectRulesReview"}};
    auto k = kKinds.find(a.resource);
    if (k == kKinds.end()) return std::nullopt;
    auto j = DecodeProtobufObject(body, k->second);
    if (!j.ok()) return std::nullopt;
    return std::move(j).value();
  }
  if (ct == "application/apply-patch+yaml") {
    auto j = YamlToJson(body);
    if (!j.ok()) return std::nullopt;
    return std::move(j).value();
  }
  if (!DepthOk(body)) return std::nullopt;
  Json j = Json::parse(body, nullptr, false);
  if (j.is_discarded()) return std::nullopt;
  return j;
}

}  // namespace sigil::kube
