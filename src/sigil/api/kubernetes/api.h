// api/kubernetes/api.h: the Kubernetes API face: discovery, OpenAPI v3, namespaces and v1
// Secrets, as kube-apiserver serves them (../shared/reference/kubernetes.md).
//
// Objects are stored as JSON under kube-apiserver's etcd key layout (/registry/secrets/<ns>/
// <name>) without resourceVersion, which is the store revision of the last write. Requests that
// touch the store run on a worker pool, so I/O threads never wait for an fsync; the storage
// writer batches the commits of concurrent requests. Not yet served (documented in
// docs/kubernetes-api.md): server-side apply, deletecollection, version history.
// Thread safety: handlers run concurrently.
#pragma once

#include <boost/asio/thread_pool.hpp>
#include <memory>
#include <optional>

#include "sigil/api/http/server.h"
#include "sigil/base/clock.h"
#include "sigil/store/object_store.h"

namespace sigil::kube {

class KubernetesApi {
 public:
  KubernetesApi(store::ObjectStore* store, Clock* clock, int workers = 32);
  ~KubernetesApi();

  // Creates the namespaces every cluster has (default, kube-system, kube-public) if missing.
  Status EnsureDefaultNamespaces();
  void Register(http::Router* router);

  // Handles one request (what the worker pool runs). Returns nullopt when the request became a
  // stream (watch) through `start_stream`.
  std::optional<http::Response> Serve(const http::Request& req, const http::StreamStarter& start_stream);

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
  boost::asio::thread_pool pool_;
};

}  // namespace sigil::kube
