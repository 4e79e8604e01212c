// core/pipeline.h: the one request pipeline every API face runs (the Kubernetes face today,
// the Vault face next), so that both faces share identities, authorization and the audit
// trail instead of each keeping a copy.
//
// For one request, after the face has parsed it (and resolved impersonation, which is the
// Kubernetes face's header protocol): authorize the subject (Kubernetes RBAC on the Kubernetes
// face; ACL policies on the Vault face),
// audit at the level the audit Policy gives the request (a change is recorded before it acts;
// every answer before it leaves; when the trail cannot be written the request is refused with
// 503 and nothing is served or changed), execute, respond, with errors rendered in the face's
// format by its ErrorRenderer.
//
// Execution completes through callbacks (Executor, ReplyFn), so a face or an engine can answer
// after a commit without holding a thread; the audit record of the answer is written in the
// completion, before the answer leaves. The Kubernetes face still completes synchronously on its
// worker pool today. Thread-safe: Run may be called from many threads at once.
#pragma once

#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "sigil/audit/auditor.h"
#include "sigil/authz/authorizer.h"
#include "sigil/authz/policy_store.h"
#include "sigil/base/identity.h"
#include "sigil/base/secret_bytes.h"

namespace sigil::core {

using Json = nlohmann::ordered_json;
// A response body; it may hold secret values, and its buffer is wiped when freed. The same type
// as the HTTP layer's body, so a reply moves into a response without a copy.
using Body = std::basic_string<char, std::char_traits<char>, internal::ZeroingAllocator<char>>;

enum class Face { kKubernetes, kVault };

// The audit trail's part in a streamed answer (a watch). The pipeline fills it before the
// request runs; the face sends `headers` (Audit-Id) with the stream's head and calls `ended`
// (when set) exactly once when the stream ends, which records ResponseComplete. `ended` may
// run on any thread and blocks until the event is written; it holds no reference to the
// pipeline, only to the Auditor, which must outlive every stream.
struct StreamAudit {
  std::vector<std::pair<std::string, std::string>> headers;
  std::function<void()> ended;
};

// A Vault-face request as its ACL policies see it: the path under /v1/ and the capability the
// operation needs (create, read, update, patch, delete or list), with sudo on root-protected
// paths. `unauthenticated` paths (sys/health, logins, ...) are served without a token.
struct VaultAccess {
  std::string path;
  authz::Capability capability = authz::kCapRead;
  bool sudo = false;
  bool unauthenticated = false;
};

// What the pipeline needs to know of a request; the face fills it from its parse. Views point
// into the request, which outlives Run.
struct RequestInfo {
  Face face = Face::kKubernetes;
  std::string_view method;      // as sent: GET, POST, ...
  // The request target. The Kubernetes face's is recorded with the values of credential-like
  // query parameters replaced (audit::RedactQuery); the Vault face passes its own, with every
  // query value hashed, as Vault's audit devices record it.
  std::string_view uri;
  std::string_view user_agent;  // "" when absent
  std::string_view remote;      // ip:port of the peer
  const Identity* caller = nullptr;   // as authenticated; null only in tests without authentication
  const Identity* subject = nullptr;  // whom the request acts as: the caller, or whom it impersonates
  authz::Attributes kube;             // the request as RBAC sees it (Kubernetes face); for audit on both
  VaultAccess vault;                  // the request as ACL policies see it (Vault face)
  bool mutating = false;              // changes state: recorded before it acts
  bool streaming = false;             // a watch: ResponseStarted is recorded, then the stream runs
  StreamAudit* stream = nullptr;      // streaming: filled by Run before execution (may stay empty)
  // Bodies that are never recorded at any level: bearer tokens (TokenReview, token issuing),
  // values to hash (audit hash), and later Vault logins and transit plaintext.
  bool sensitive_body = false;
  // The request's body as an object, for Request level and above; nullopt records none. Holds
  // secret values: the pipeline redacts it by position (audit/redaction.h) before it is written,
  // reading it as `request_media_type` (JSON, a patch type, or apply YAML after conversion).
  std::function<std::optional<Json>()> request_object;
  std::string_view request_media_type = "application/json";
};

// A complete answer; `body` may hold secret values.
struct Reply {
  int status = 200;
  std::string content_type = "application/json";
  Body body;
  std::vector<std::pair<std::string, std::string>> headers;
};

// Renders a failure in a face's own format (Kubernetes metav1.Status; Vault {"errors": [...]}),
// with the status of the one table (base/status_http.h).
class ErrorRenderer {
 public:
  virtual ~ErrorRenderer() = default;
  virtual Reply Render(const Status& s, const RequestInfo& r) const = 0;
};

// Completes a request: called exactly once, from any thread, with the answer, or nullopt when
// the request became a stream (a watch).
using ReplyFn = std::function<void(std::optional<Reply>)>;
// Runs the request and calls its ReplyFn when done: at once, or later from another thread (a
// write completing after its commit). Must not block waiting for storage or a timer.
using Executor = std::function<void(ReplyFn)>;

class Pipeline {
 public:
  struct Deps {
    const authz::Authorizer* rbac = nullptr;  // null: no authorization (tests only)
    audit::Auditor* auditor = nullptr;        // null: no audit trail
    const authz::PolicyStore* acl = nullptr;  // Vault face; null: every Vault request is denied
  };
  explicit Pipeline(Deps deps) : deps_(deps) {}

  // Authorizes, audits and executes one request; `respond` gets the answer exactly once (on the
  // thread that completes execution). `refused`: the face refused it already (an impersonation
  // the caller may not do): it is audited as forbidden and answered as given. `info` and
  // `errors` (and whatever `info`'s views point into) must stay alive until `respond` has run.
  void Run(const RequestInfo& info, const ErrorRenderer& errors, Executor execute, ReplyFn respond,
           std::optional<Reply> refused = std::nullopt) const;

  // kube-apiserver's 403 message for an RBAC denial of `a` to `user`.
  static std::string DenialMessage(const authz::Attributes& a, const std::string& user);

 private:
  Json Event(const RequestInfo& info, audit::Level level, bool allowed) const;
  // `body` as the trail may show it: secret values replaced by their keyed hashes; nullopt when
  // it cannot be understood well enough to redact (then no body is recorded).
  std::optional<Json> Redacted(const RequestInfo& info, std::string_view media_type, Json body, const audit::Decision& d) const;

  Deps deps_;
};

// Bodies nested deeper than this are not recorded in the audit trail (its JSON writer
// recurses; a deep body must not be able to exhaust a worker's stack).
inline constexpr int kMaxRecordedDepth = 64;

// RFC 3339 with microseconds, as audit.k8s.io/v1 Events carry their timestamps.
std::string MicroTime();

}  // namespace sigil::core
