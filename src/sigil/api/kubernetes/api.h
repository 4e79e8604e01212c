// api/kubernetes/api.h: the Kubernetes API face: discovery, OpenAPI v3, namespaces and v1
// Secrets, as kube-apiserver serves them (../shared/reference/kubernetes.md).
//
// The face translates HTTP to registry calls (registry/registry.h: objects at kube-apiserver's
// keys, the rules of every write) and their results to Kubernetes responses; it never touches
// the store. Requests run on a worker pool, so I/O threads never wait for an fsync; the storage
// writer batches the commits of concurrent requests. Not served (docs/kubernetes-api.md):
// protobuf responses.
//
// The implementation is split by concern: pipeline.cc (impersonation, RBAC, audit around each
// request), routing.cc, request_info.cc, impersonation.cc, discovery.cc, reviews.cc,
// namespaces.cc, bodies.cc (decoding and patches), objects.cc, lists.cc, tables.cc, watch.cc,
// sigil_routes.cc (tokens, audit hash, versions, rollback).
//
// Version history (sigil's own, under /sigil/v1/namespaces/<ns>/secrets/<name>/): every write
// of a Secret records the object as a numbered version (store/history.h) in the same
// transaction; `versions` lists them, `versions/<n>` reads one, `rollback` writes a new version
// equal to an old one (re-creating a deleted Secret).
// Thread safety: handlers run concurrently.
#pragma once

#include <boost/asio/thread_pool.hpp>
#include <memory>
#include <functional>
#include <optional>

#include "sigil/api/http/server.h"
#include "sigil/audit/auditor.h"
#include "sigil/auth/service_account_issuer.h"
#include "sigil/authz/authorizer.h"
#include "sigil/base/clock.h"
#include "sigil/core/inflight.h"
#include "sigil/registry/registry.h"

namespace sigil::kube {

class KubernetesApi {
 public:
  struct Options {
    int workers = 32;
    // Validates a bearer token for TokenReview; unset: TokenReview answers "not authenticated".
    std::function<Result<std::optional<Identity>>(std::string_view token, std::string* why)> token_reviewer;
    // Issues a sigil bearer token (POST /sigil/v1/tokens); unset: not offered.
    std::function<Result<SecretBytes>(const Identity& who, std::chrono::seconds ttl)> token_issuer;
    // RBAC: every request is authorized before it is served (403 otherwise). Null only in
    // tests that exercise the API without authorization.
    authz::Authorizer* authorizer = nullptr;
    // Audit: every request the policy selects is recorded (fail closed). Null: no audit.
    audit::Auditor* auditor = nullptr;
    // Signs service-account tokens (the serviceaccounts/token subresource, OIDC discovery and
    // its JWKS); null: not served.
    const auth::ServiceAccountIssuer* service_account_issuer = nullptr;
    // Bounds requests in flight (core/inflight.h); null: unbounded.
    core::InflightLimiter* limiter = nullptr;
  };
  KubernetesApi(registry::Registry* registry, Clock* clock, const Options& options);
  // Ends every live watch (their streams are closed), then waits for running requests.
  ~KubernetesApi();

  // Creates the namespaces every cluster has (default, kube-system, kube-public) if missing.
  Status EnsureDefaultNamespaces();
  // Registers the API's paths, each handler wrapped by `guard` (authentication).
  void Register(http::Router* router, const std::function<http::Handler(http::Handler)>& guard);

  // Handles one request (what the worker pool runs). Returns nullopt when the request became a
  // stream (watch) through `start_stream`.
  // `who` is the authenticated caller (null only in tests that bypass authentication);
  // `remote` the client's address ("ip:port"), for audit.
  std::optional<http::Response> Serve(const http::Request& req, const http::StreamStarter& start_stream,
                                      const Identity* who, const std::string& remote = "");

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
  core::InflightLimiter* limiter_;
  boost::asio::thread_pool pool_;
};

}  // namespace sigil::kube
