// api/http/server.h: the HTTPS server (Boost.Beast on Asio, TLS by OpenSSL).
//
// One io_context run by `threads` threads (default: one per core). Each connection lives on
// its own strand; handlers are called on it and may answer later from any thread. Defences
// against slow or hostile clients:
// - deadlines: one for the handshake phase (from accept to a finished TLS handshake), one for
//   each whole request from its first byte (headers and body, however slowly they trickle),
//   one for an idle keep-alive connection waiting for its next request;
// - limits on header and body size (431 and 413 in the API's error format); a request whose
//   Transfer-Encoding does not end in chunked is answered 400 and the connection closed;
// - at most max_connections open connections: past it, one is closed to make room (one waiting
//   only for a delayed refusal, else one that never sent a request, else an idle keep-alive
//   one, else the oldest still reading its request; never one being served), so floods of
//   idle sockets, half-sent requests or bad credentials do not lock out a legitimate client or
//   a health check; if all are being served the new one is closed. A failed accept (out of descriptors) backs off instead of spinning, and is logged
//   at most every 10 s;
// - memory: a connection holds only its socket until the client sends its first bytes; the
//   TLS stream is made then, OpenSSL's record buffers are released while idle, and after many
//   connections have closed the freed memory is returned to the system (malloc_trim).
// Stop() drains: it stops accepting, closes idle connections, lets requests in flight finish
// (up to the grace period), then returns.
// Thread safety: Start and Stop from one controlling thread; handlers run concurrently.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "sigil/api/http/tls.h"
#include "sigil/api/http/types.h"
#include "sigil/base/result.h"

namespace sigil::http {

struct ServerOptions {
  std::string address = "127.0.0.1";
  uint16_t port = 8443;  // 0: pick a free port (see bound_port())
  int threads = 0;       // 0: one per core
  size_t max_header_bytes = 32 * 1024;
  size_t max_body_bytes = 3 * 1024 * 1024;  // kube-apiserver's request limit
  std::chrono::seconds handshake_timeout{10};
  std::chrono::seconds read_timeout{30};    // whole request, headers and body
  std::chrono::seconds idle_timeout{120};   // keep-alive connection with no request
  std::chrono::seconds shutdown_grace{20};
  // Open connections at most (see Server). Start() lowers it to what the descriptor limit
  // allows, keeping a reserve for the store, the audit trail and outgoing connections.
  size_t max_connections = 10000;
  // CA certificates (PEM) that client certificates must chain to; empty: none are asked for.
  // A client that sends one that does not verify (or lacks clientAuth) fails the handshake, as
  // with kube-apiserver; a client that sends none goes on to other authentication.
  std::string client_ca_pem;
};

// Exact-path and prefix routing. Exact paths win; then the longest matching prefix.
class Router {
 public:
  void Handle(std::string path, Handler handler) { exact_[std::move(path)] = std::move(handler); }
  void HandlePrefix(std::string prefix, Handler handler) { prefix_[std::move(prefix)] = std::move(handler); }
  // What runs when nothing matches (default: a 404 in the path's API error format).
  void HandleOthers(Handler handler) { fallback_ = std::move(handler); }
  // The fallback (or nullptr) if nothing matches.
  const Handler* Find(std::string_view path) const;

 private:
  std::map<std::string, Handler, std::less<>> exact_;
  std::map<std::string, Handler, std::less<>> prefix_;
  Handler fallback_;
};

class Server {
 public:
  Server(ServerOptions options, Router router, const CertificateSet& certs);
  ~Server();

  // Binds and starts serving. Errors: kInvalidArgument (bad address or certificate),
  // kUnavailable (port in use).
  Status Start();
  uint16_t bound_port() const;
  // Drains and stops (see above). Idempotent. When it returns, every stream it handed out has
  // ended and its OnClosed callback has run (streams still open after the grace period are
  // ended on the calling thread), and a stream started later ends at once: nothing a handler
  // tied to a stream's end outlives Stop.
  void Stop();
  // Blocks until Stop() has completed.
  void Wait();

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace sigil::http
