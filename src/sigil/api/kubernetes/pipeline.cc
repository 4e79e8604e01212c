// api/kubernetes/pipeline.cc: the face's side of the request pipeline (core/pipeline.h):
// impersonation, the request's attributes, Kubernetes error rendering, and replies to and from
// HTTP responses.
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>

#include "sigil/api/kubernetes/impl.h"
#include "sigil/api/kubernetes/protobuf.h"
#include "sigil/api/kubernetes/yaml_json.h"
#include "sigil/base/check.h"
#include "sigil/base/logging.h"

namespace sigil::kube {

// Kubernetes errors as metav1.Status: a denial carries kube-apiserver's details (kind, name,
// group of what was denied); everything else the one table's status and reason.
Reply KubeErrors::Render(const Status& s, const core::RequestInfo& r) const {
  ApiError e;
  if (s.code() == StatusCode::kPermissionDenied) {
    e = ForbiddenError(r.kube, r.subject);
  } else {
    e = registry::FromStatus(s);
  }
  return ToReply(e);
}

Reply ToReply(const ApiError& e) {
  Reply r;
  r.status = e.code;
  std::string text = e.ToJson().dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  r.body.assign(text.data(), text.size());
  return r;
}

Reply ToReply(http::Response res) {
  Reply r;
  r.status = res.result_int();
  if (auto it = res.find(boost::beast::http::field::content_type); it != res.end()) r.content_type = std::string(it->value());
  for (const auto& f : res) {
    if (f.name() == boost::beast::http::field::content_type || f.name() == boost::beast::http::field::content_length) continue;
    r.headers.emplace_back(std::string(f.name_string()), std::string(f.value()));
  }
  r.body = std::move(res.body());
  return r;
}

http::Response ToResponse(const http::Request& req, Reply r) {
  http::Response res{static_cast<http::HttpStatus>(r.status), req.version()};
  res.set(boost::beast::http::field::content_type, r.content_type);
  for (auto& [k, v] : r.headers) res.insert(k, v);
  res.keep_alive(req.keep_alive());
  res.body() = std::move(r.body);
  res.prepare_payload();
  return res;
}

namespace {

// A watch's stream as the audit trail follows it: forwards everything to the HTTP layer's
// writer, and when the stream ends runs the handler's OnClosed callback, then records
// ResponseComplete (core::StreamAudit::ended). The inner callback is set at construction, so
// the stage is recorded even for a stream that ended before the handler registered its own.
class AuditedStream final : public http::StreamWriter {
 public:
  AuditedStream(std::shared_ptr<http::StreamWriter> inner, std::function<void()> ended)
      : inner_(std::move(inner)), shared_(std::make_shared<Shared>()) {
    shared_->ended = std::move(ended);
    // The inner writer keeps only the shared part, not the wrapper: no cycle. A stream that
    // has ended already runs this at once.
    inner_->OnClosed([shared = shared_] {
      std::function<void()> cb, end;
      {
        std::lock_guard<std::mutex> l(shared->mu);
        shared->done = true;
        cb = std::move(shared->cb);
        end = std::move(shared->ended);
      }
      if (cb) cb();
      if (end) end();
    });
  }
  bool Write(std::string chunk) override { return inner_->Write(std::move(chunk)); }
  void Close() override { inner_->Close(); }
  void OnClosed(std::function<void()> cb) override {
    {
      std::lock_guard<std::mutex> l(shared_->mu);
      if (!shared_->done) {
        shared_->cb = std::move(cb);
        return;
      }
    }
    if (cb) cb();  // the stream has ended already: at once, as http::StreamWriter promises
  }

 private:
  struct Shared {
    std::mutex mu;
    bool done = false;
    std::function<void()> cb, ended;
  };
  std::shared_ptr<http::StreamWriter> inner_;
  std::shared_ptr<Shared> shared_;
};

}  // namespace

// The face's side of the pipeline: who the request acts as (impersonation), the request as RBAC
// and audit see it; then core::Pipeline authorizes, audits and runs Handle.
std::optional<http::Response> KubernetesApi::Impl::Serve(const http::Request& req, const http::StreamStarter& start_stream,
                                                         const Identity* who, const std::string& remote) {
  Identity impersonated;
  const Identity* subject = who;
  std::optional<core::Reply> refused;
  if (authorizer_ != nullptr && who != nullptr) {
    bool impersonating = false;
    if (std::optional<ApiError> e = Impersonate(req, *who, &impersonated, &impersonating)) refused = ToReply(*e);
    if (impersonating) subject = &impersonated;
  }
  core::RequestInfo info;
  info.face = core::Face::kKubernetes;
  info.method = std::string_view(req.method_string().data(), req.method_string().size());
  info.uri = std::string_view(req.target().data(), req.target().size());
  if (auto ua = req.find(boost::beast::http::field::user_agent); ua != req.end()) {
    info.user_agent = std::string_view(ua->value().data(), ua->value().size());
  }
  info.remote = remote;
  info.caller = who;
  info.subject = subject;
  info.kube = RequestAttributes(req);
  info.mutating = req.method() != http::Verb::get && req.method() != http::Verb::head;
  info.streaming = IsWatch(req);
  // A limited-use Vault token spends one use per request: a watch would turn one use into a
  // stream of every later change.
  if (info.streaming && who != nullptr && who->limited_use && !refused) {
    refused = ToReply(FromStatusMessage(403, "Forbidden", "a limited-use token cannot open a watch"));
  }
  // TokenReviews carry bearer tokens, token issuing returns one, and audit-hash requests carry
  // secret values: their bodies are never recorded, at any level.
  const authz::Attributes& a = info.kube;
  info.sensitive_body = a.resource == "tokenreviews" || a.path == "/sigil/v1/audit/hash" || a.path == "/sigil/v1/tokens" ||
                        (a.resource == "serviceaccounts" && a.subresource == "token");
  // The media type the decoded body is read as: protobuf is decoded to JSON; apply YAML is
  // converted but stays an apply configuration.
  std::string ct;
  if (auto it = req.find(boost::beast::http::field::content_type); it != req.end()) ct = std::string(it->value());
  ct = ct.empty() ? "application/json" : ct.substr(0, ct.find(';'));
  if (ct == kProtobufContentType) ct = "application/json";
  info.request_media_type = ct;
  info.request_object = [&req, &a]() -> std::optional<Json> {
    if (req.body().empty()) return std::nullopt;
    return AuditBody(req, a);
  };
  // A watch's head carries the Audit-Id, and its end is recorded (core::StreamAudit).
  core::StreamAudit stream_audit;
  if (info.streaming) info.stream = &stream_audit;
  http::StreamStarter audited_start = [&stream_audit, &start_stream](http::Response head, std::chrono::seconds max) {
    for (const auto& [k, v] : stream_audit.headers) head.set(k, v);
    std::shared_ptr<http::StreamWriter> w = start_stream(std::move(head), max);
    if (!stream_audit.ended) return w;
    return std::shared_ptr<http::StreamWriter>(std::make_shared<AuditedStream>(std::move(w), std::move(stream_audit.ended)));
  };
  // The face's handlers complete synchronously today, so the answer is there when Run returns.
  std::optional<http::Response> out;
  bool answered = false;
  pipeline_.Run(
      info, errors_,
      [&](core::ReplyFn reply) {
        std::optional<http::Response> res = Handle(req, audited_start, subject);
        reply(res ? std::optional<core::Reply>(ToReply(std::move(*res))) : std::nullopt);
      },
      [&](std::optional<core::Reply> r) {
        if (r) out = ToResponse(req, std::move(*r));
        answered = true;
      },
      std::move(refused));
  SIGIL_CHECK(answered);
  return out;
}

std::optional<http::Response> KubernetesApi::Impl::Handle(const http::Request& req, const http::StreamStarter& start_stream,
                                                          const Identity* who) {
  try {
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

// The request body as an object, for Request-level audit (JSON, apply YAML or protobuf).
std::optional<Json> KubernetesApi::Impl::AuditBody(const http::Request& req, const authz::Attributes& a) {
  std::string_view body(req.body().data(), req.body().size());
  auto it = req.find(boost::beast::http::field::content_type);
  std::string ct = it == req.end() ? "application/json" : std::string(it->value());
  ct = ct.substr(0, ct.find(';'));
  if (ct == kProtobufContentType) {
    static const std::map<std::string, std::string> kKinds = {
        {"secrets", "Secret"}, {"namespaces", "Namespace"}, {"roles", "Role"}, {"clusterroles", "ClusterRole"},
        {"rolebindings", "RoleBinding"}, {"clusterrolebindings", "ClusterRoleBinding"}, {"serviceaccounts", "ServiceAccount"},
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
