#include "sigil/api/http/server.h"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/strand.hpp>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <boost/beast/core.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <malloc.h>
#include <sys/resource.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <list>
#include <mutex>
#include <thread>

#include "sigil/api/http/errors.h"
#include "sigil/base/logging.h"
#include "sigil/base/metrics.h"

namespace sigil::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;

const Handler* Router::Find(std::string_view path) const {
  if (auto it = exact_.find(path); it != exact_.end()) return &it->second;
  const Handler* best = fallback_ ? &fallback_ : nullptr;
  size_t best_len = 0;
  for (const auto& [prefix, handler] : prefix_) {
    if (path.starts_with(prefix) && prefix.size() >= best_len) {
      best = &handler;
      best_len = prefix.size();
    }
  }
  return best;
}

namespace {

using Buffer = beast::basic_flat_buffer<internal::ZeroingAllocator<char>>;

// The methods the APIs serve (LIST is Vault's; INVALID marks a request that did not parse):
// any other method token is counted as "other", so a client cannot grow /metrics without bound
// by inventing methods.
constexpr std::array<std::string_view, 10> kMethodLabels = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "LIST",
                                                           "INVALID", "other"};

size_t MethodIndex(std::string_view method) {
  for (size_t i = 0; i + 1 < kMethodLabels.size(); ++i) {
    if (method == kMethodLabels[i]) return i;
  }
  return kMethodLabels.size() - 1;
}

metrics::Counter* RequestCounter(unsigned code, std::string_view method) {
  // Resolved once per (code, method): the registry's lookup takes a global lock.
  static std::array<std::array<std::atomic<metrics::Counter*>, 500>, kMethodLabels.size()> cache{};
  size_t m = MethodIndex(method);
  unsigned c = code >= 100 && code < 600 ? code - 100 : 499;
  metrics::Counter* counter = cache[m][c].load(std::memory_order_acquire);
  if (counter == nullptr) {
    counter = metrics::Registry::Global().GetCounter(
        "sigil_http_requests_total", "HTTP requests by status code and method.",
        "code=\"" + std::to_string(c + 100) + "\",method=\"" + std::string(kMethodLabels[m]) + "\"");
    cache[m][c].store(counter, std::memory_order_release);
  }
  return counter;
}

metrics::Histogram* RequestSeconds() {
  static metrics::Histogram* h =
      metrics::Registry::Global().GetHistogram("sigil_http_request_duration_seconds", "HTTP request latency.");
  return h;
}

metrics::Gauge* OpenConnections() {
  static metrics::Gauge* g = metrics::Registry::Global().GetGauge("sigil_http_open_connections", "Open connections.");
  return g;
}

metrics::Counter* AcceptErrors() {
  static metrics::Counter* c =
      metrics::Registry::Global().GetCounter("sigil_http_accept_errors_total", "Failed accept() calls (e.g. out of descriptors).");
  return c;
}

// At the limit: an open connection closed to make room (evicted), or the new one closed.
metrics::Counter* ConnectionsShed(bool evicted) {
  static metrics::Counter* evicted_counter = metrics::Registry::Global().GetCounter(
      "sigil_http_connections_shed_total", "Connections closed because the connection limit was reached.", "action=\"evicted_idle\"");
  static metrics::Counter* refused_counter = metrics::Registry::Global().GetCounter(
      "sigil_http_connections_shed_total", "Connections closed because the connection limit was reached.", "action=\"refused_new\"");
  return evicted ? evicted_counter : refused_counter;
}

// Whether a failed accept is the process or system running out of something (descriptors,
// buffers, memory): retrying at once would fail again, in a hot loop.
bool OutOfResources(const boost::system::error_code& ec) {
  return ec == asio::error::no_descriptors || ec == asio::error::no_buffer_space || ec == asio::error::no_memory ||
         ec.value() == ENFILE;
}

}  // namespace

// The verified client certificate of a finished handshake, if any.
std::optional<PeerCertificate> VerifiedPeer(SSL* ssl) {
  X509* cert = SSL_get1_peer_certificate(ssl);
  if (cert == nullptr) return std::nullopt;
  std::optional<PeerCertificate> out;
  if (SSL_get_verify_result(ssl) == X509_V_OK) {
    PeerCertificate p;
    X509_NAME* subject = X509_get_subject_name(cert);
    auto read = [&](int nid, std::vector<std::string>* into) {
      for (int i = X509_NAME_get_index_by_NID(subject, nid, -1); i >= 0; i = X509_NAME_get_index_by_NID(subject, nid, i)) {
        ASN1_STRING* data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, i));
        unsigned char* utf8 = nullptr;
        int n = ASN1_STRING_to_UTF8(&utf8, data);
        if (n >= 0) into->emplace_back(reinterpret_cast<char*>(utf8), static_cast<size_t>(n));
        OPENSSL_free(utf8);
      }
    };
    std::vector<std::string> cn;
    read(NID_commonName, &cn);
    if (!cn.empty()) p.common_name = cn.front();
    read(NID_organizationName, &p.organizations);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (X509_digest(cert, EVP_sha256(), md, &len) == 1) {
      static const char kHex[] = "0123456789abcdef";
      for (unsigned int i = 0; i < len; ++i) {
        p.sha256_hex += kHex[md[i] >> 4];
        p.sha256_hex += kHex[md[i] & 15];
      }
    }
    out = std::move(p);
  }
  X509_free(cert);
  return out;
}

class Server::Impl {
 public:
  class Session;

  Impl(ServerOptions options, Router router, const CertificateSet& certs)
      : options_(std::move(options)),
        router_(std::move(router)),
        ssl_(asio::ssl::context::tls_server),
        acceptor_(asio::make_strand(io_)),
        accept_timer_(acceptor_.get_executor()),
        trim_timer_(asio::make_strand(io_)),
        certs_ok_(LoadCertificates(certs)) {}

  Status LoadCertificates(const CertificateSet& certs) {
    boost::system::error_code ec;
    ssl_.set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                     asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 | asio::ssl::context::no_tlsv1_1 |
                     asio::ssl::context::single_dh_use, ec);
    // OpenSSL keeps the last decrypted record in its buffer until the next one overwrites it;
    // requests carry secret values, so it is wiped once handed over.
    SSL_CTX_set_options(ssl_.native_handle(), SSL_OP_CLEANSE_PLAINTEXT);
    // An idle connection gives its record buffers back (about 34 KiB) until its next request.
    SSL_CTX_set_mode(ssl_.native_handle(), SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_min_proto_version(ssl_.native_handle(), TLS1_2_VERSION);
    // TLS 1.2: forward-secret AEAD suites only (TLS 1.3 suites are all AEAD already).
    SSL_CTX_set_cipher_list(ssl_.native_handle(),
                            "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
                            "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
                            "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305");
    ssl_.use_certificate_chain(asio::buffer(certs.cert_pem), ec);
    if (ec) return InvalidArgumentError("TLS certificate: " + ec.message());
    ssl_.use_private_key(asio::buffer(certs.key_pem.data(), certs.key_pem.size()), asio::ssl::context::pem, ec);
    if (ec) return InvalidArgumentError("TLS private key: " + ec.message());
    if (!options_.client_ca_pem.empty()) {
      ssl_.add_certificate_authority(asio::buffer(options_.client_ca_pem), ec);
      if (ec) return InvalidArgumentError("client CA: " + ec.message());
      ssl_.set_verify_mode(asio::ssl::verify_peer, ec);  // not fail_if_no_peer_cert: tokens work too
      SSL_CTX_set_purpose(ssl_.native_handle(), X509_PURPOSE_SSL_CLIENT);
      // Name the acceptable CAs in the CertificateRequest, so clients pick the right certificate.
      BIO* bio = BIO_new_mem_buf(options_.client_ca_pem.data(), static_cast<int>(options_.client_ca_pem.size()));
      STACK_OF(X509_NAME)* names = sk_X509_NAME_new_null();
      while (X509* ca = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr)) {
        sk_X509_NAME_push(names, X509_NAME_dup(X509_get_subject_name(ca)));
        X509_free(ca);
      }
      ERR_clear_error();  // the loop ends on the "no more PEM" error
      BIO_free(bio);
      SSL_CTX_set_client_CA_list(ssl_.native_handle(), names);
    }
    return OkStatus();
  }

  Status Start() {
    SIGIL_RETURN_IF_ERROR(certs_ok_);
    boost::system::error_code ec;
    auto addr = asio::ip::make_address(options_.address, ec);
    if (ec) return InvalidArgumentError("listen address " + options_.address + ": " + ec.message());
    tcp::endpoint ep(addr, options_.port);
    acceptor_.open(ep.protocol(), ec);
    if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) acceptor_.bind(ep, ec);
    if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) return UnavailableError("listen on " + options_.address + ":" + std::to_string(options_.port) + ": " + ec.message());
    bound_port_ = acceptor_.local_endpoint().port();
    // Connections at most: as configured, and never so many that accept() could run out of
    // descriptors; a reserve stays for the store, the audit trail, database connections.
    struct rlimit fds {};
    if (::getrlimit(RLIMIT_NOFILE, &fds) == 0 && fds.rlim_cur != RLIM_INFINITY) {
      size_t reserve = std::max<size_t>(256, fds.rlim_cur / 10);
      size_t room = fds.rlim_cur > reserve ? fds.rlim_cur - reserve : 16;
      if (options_.max_connections > room) {
        log::Warn("connection limit lowered to fit the descriptor limit",
                  {{"configured", options_.max_connections}, {"limit", room}, {"nofile", static_cast<uint64_t>(fds.rlim_cur)}});
        options_.max_connections = room;
      }
    }
    if (options_.max_connections == 0) options_.max_connections = 1;
    // Keeps run() from returning while a handler answers from another thread and no I/O is
    // pending; released by Stop().
    work_.emplace(io_.get_executor());
    Accept();
    ScheduleTrim();
    int n = options_.threads > 0 ? options_.threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    for (int i = 0; i < n; ++i) threads_.emplace_back([this] { io_.run(); });
    return OkStatus();
  }

  // Runs on the acceptor's strand (or before the I/O threads start): the accept handler is
  // the acceptor's (its default executor is the acceptor's, a strand), and Stop() posts the
  // close there too, because a tcp::acceptor must not be used from two threads at once.
  //
  // A failed accept is logged at most once per 10 s (with how many were not), and when the
  // process is out of descriptors or memory the next accept waits, 10 ms doubling to 1 s, so
  // the loop never spins: pending connections wait in the listen backlog meanwhile.
  void Accept() {
    acceptor_.async_accept(asio::make_strand(io_), [this](boost::system::error_code ec, tcp::socket socket) {
      if (ec) {
        if (ec == asio::error::operation_aborted || !acceptor_.is_open()) return;
        AcceptErrors()->Inc();
        if (uint64_t suppressed = 0; accept_log_.Allow(&suppressed)) {
          log::Warn("accept failed", {{"error", ec.message()}, {"not_logged_since_last", suppressed}});
        }
        if (!OutOfResources(ec)) return Accept();
        accept_backoff_ = std::clamp(accept_backoff_ * 2, std::chrono::milliseconds(10), std::chrono::milliseconds(1000));
        accept_timer_.expires_after(accept_backoff_);
        accept_timer_.async_wait([this](boost::system::error_code tec) {
          if (!tec && acceptor_.is_open()) Accept();
        });
        return;
      }
      accept_backoff_ = std::chrono::milliseconds(0);
      StartSession(std::move(socket));
      Accept();
    });
  }

  // Closed connections leave their buffers in malloc's free lists, which glibc does not give
  // back to the system by itself (several arenas, freed chunks below the top of the heap).
  // After many connections have closed (256), return the free memory, at most every 10 s, so
  // clients opening and closing connections cannot make the server trim constantly.
  void ScheduleTrim() {
    trim_timer_.expires_after(std::chrono::seconds(10));
    trim_timer_.async_wait([this](boost::system::error_code ec) {
      if (ec) return;
      if (closed_since_trim_.load() >= 256) {
        closed_since_trim_.store(0);
        ::malloc_trim(0);
      }
      ScheduleTrim();
    });
  }

  void StartSession(tcp::socket socket);

  void Stop() {
    {
      std::lock_guard<std::mutex> l(mu_);
      if (stopping_) return;
      stopping_ = true;
    }
    // On the acceptor's strand, never concurrently with an accept handler re-arming it.
    asio::post(acceptor_.get_executor(), [this] {
      boost::system::error_code ec;
      acceptor_.close(ec);
      accept_timer_.cancel();
    });
    asio::post(trim_timer_.get_executor(), [this] { trim_timer_.cancel(); });
    CloseIdleSessions();
    {
      std::unique_lock<std::mutex> l(mu_);
      drained_.wait_for(l, options_.shutdown_grace, [this] { return sessions_.empty(); });
      if (!sessions_.empty()) log::Warn("shutdown grace period over; closing busy connections", {{"connections", sessions_.size()}});
    }
    work_.reset();
    io_.stop();
    for (auto& t : threads_) t.join();
    threads_.clear();
    EndRemainingStreams();
    {
      std::lock_guard<std::mutex> l(mu_);
      stopped_ = true;
    }
    drained_.notify_all();
  }

  void Wait() {
    std::unique_lock<std::mutex> l(mu_);
    drained_.wait(l, [this] { return stopped_; });
  }

  void CloseIdleSessions();
  // After the I/O threads have stopped: ends every stream still open (running its OnClosed
  // callback on this thread) and makes streams started later end at once.
  void EndRemainingStreams();

  bool stopping() {
    std::lock_guard<std::mutex> l(mu_);
    return stopping_;
  }

  ServerOptions options_;
  Router router_;
  asio::io_context io_;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_;
  asio::ssl::context ssl_;
  tcp::acceptor acceptor_;
  // On the acceptor's strand: the accept back-off and its rate-limited log.
  asio::steady_timer accept_timer_;
  std::chrono::milliseconds accept_backoff_{0};
  log::RateLimit accept_log_{std::chrono::seconds(10)};
  asio::steady_timer trim_timer_;
  std::atomic<uint64_t> closed_since_trim_{0};
  Status certs_ok_;
  uint16_t bound_port_ = 0;
  std::vector<std::thread> threads_;

  std::mutex mu_;
  std::condition_variable drained_;
  bool stopping_ = false;
  bool stopped_ = false;
  std::list<std::weak_ptr<Session>> sessions_;  // newest first
  std::chrono::steady_clock::time_point all_serving_until_{};  // see StartSession
  log::RateLimit shed_log_{std::chrono::seconds(10)};
  // Every StreamWriter handed out, so Stop() can end those its I/O threads did not (a stream
  // started, or still open, after the grace period). Pruned of ended ones as it grows.
  std::vector<std::weak_ptr<StreamWriter>> writers_;
  size_t prune_writers_at_ = 64;
  bool io_stopped_ = false;  // the I/O threads are gone: new streams end at once
};

class Server::Impl::Session : public std::enable_shared_from_this<Session> {
 public:
  // Until the client sends its first bytes a connection holds only its socket and a timer:
  // the TLS stream (about 40 KiB of record buffers with OpenSSL's state) is made when there is a
  // handshake to read, so held-open idle sockets cost little.
  Session(Impl* server, tcp::socket socket)
      : server_(server), strand_(socket.get_executor()), socket_(std::move(socket)), deadline_(strand_) {
    boost::system::error_code ec;
    auto ep = socket_.remote_endpoint(ec);
    if (!ec) context_.remote_address = ep.address().to_string() + ":" + std::to_string(ep.port());
    OpenConnections()->Add(1);
  }
  ~Session() { OpenConnections()->Add(-1); }

  void Run(std::list<std::weak_ptr<Session>>::iterator it) {
    self_it_ = it;
    asio::dispatch(strand_, [self = shared_from_this()] {
      // One deadline for the whole handshake phase: the first bytes and the handshake itself.
      auto deadline = std::chrono::steady_clock::now() + self->server_->options_.handshake_timeout;
      self->deadline_.expires_at(deadline);
      self->deadline_.async_wait([self](boost::system::error_code ec) {
        if (!ec && !self->stream_) {
          boost::system::error_code cec;
          self->socket_.cancel(cec);
        }
      });
      if (self->closing_) return self->Finish();  // Stop() or an eviction came first
      self->socket_.async_wait(tcp::socket::wait_read, [self, deadline](boost::system::error_code ec) {
        self->deadline_.cancel();
        if (ec || self->closing_ || self->claimed()) return self->Finish();
        self->stream_.emplace(std::move(self->socket_), self->server_->ssl_);
        beast::get_lowest_layer(*self->stream_).expires_at(deadline);
        self->stream_->async_handshake(asio::ssl::stream_base::server,
                                       [self](boost::system::error_code hec) { self->OnHandshake(hec); });
      });
    });
  }

  // Called on any thread during shutdown: closes the connection if it is waiting for a request,
  // and ends a streamed response (watch clients re-connect elsewhere or later).
  void CloseIfIdle() {
    asio::post(strand_, [self = shared_from_this()] {
      self->closing_ = true;
      if (self->streaming_) {
        self->EndStream();
      } else if (!self->busy_) {
        self->CancelIo();
      }
    });
  }

  // What a connection is doing, as the connection limit sees it (any thread reads it):
  //   kNew      accepted, no request yet (before, during or after the TLS handshake)
  //   kIdle     between requests of a keep-alive connection
  //   kReading  reading a request (headers or body), however slowly the client sends it
  //   kServing  a complete request in a handler, its answer being written, or a stream
  //   kWaiting  a handler said its answer is only a delayed refusal (RequestContext::waiting)
  //   kClaimed  chosen for eviction: it closes at its next step and never serves again
  // Only kNew, kWaiting, kIdle and kReading may be claimed: a request being served is never cut.
  enum State : int { kNew, kIdle, kReading, kServing, kWaiting, kClaimed };
  State state() const { return static_cast<State>(state_.load(std::memory_order_acquire)); }
  // Claims the connection if it is still `from`; then it is this caller's to Evict.
  bool Claim(State from) {
    int expected = from;
    return state_.compare_exchange_strong(expected, kClaimed, std::memory_order_acq_rel);
  }
  // Closes a connection claimed from `from` (on its strand; any thread may call this). One that
  // waits for its handler has no I/O to cancel: it is closed, and the late answer goes nowhere.
  void Evict(State from) {
    asio::post(strand_, [self = shared_from_this(), from] {
      self->closing_ = true;
      if (from == kWaiting) return self->Finish();
      self->CancelIo();
    });
  }

  class Writer;
  static std::shared_ptr<StreamWriter> EndedWriter();
  std::shared_ptr<StreamWriter> StartStream(Response head, std::chrono::seconds max_duration,
                                            std::chrono::steady_clock::time_point start, const std::string& method);

 private:
  void CancelIo() {
    if (stream_) {
      beast::get_lowest_layer(*stream_).cancel();
    } else {
      boost::system::error_code ec;
      socket_.cancel(ec);
    }
  }

  bool claimed() const { return state() == kClaimed; }
  // Moves to `to` unless the connection was claimed (then it must close).
  bool Advance(State from, State to) {
    int expected = from;
    return state_.compare_exchange_strong(expected, to, std::memory_order_acq_rel);
  }

  void OnHandshake(boost::system::error_code ec) {
    if (ec || claimed()) return Finish();
    context_.peer = VerifiedPeer(stream_->native_handle());
    ReadRequest();
  }

  // Waits for the first bytes of the next request under the idle deadline; from then on the
  // whole request (headers and body, however slowly they come) has the read deadline.
  void ReadRequest() {
    if (closing_) return Shutdown();
    // After the first request the connection is an idle keep-alive one (kNew stays kNew).
    if (state() == kServing && !Advance(kServing, kIdle)) return Finish();
    if (claimed()) return Finish();
    if (buffer_.size() > 0) return ReadHeader();  // pipelined: the next request is here already
    // Idle: nothing held but the socket and OpenSSL's state (its buffers are released).
    buffer_.shrink_to_fit();
    beast::get_lowest_layer(*stream_).expires_after(server_->options_.idle_timeout);
    stream_->async_read_some(buffer_.prepare(1024), [self = shared_from_this()](boost::system::error_code ec, size_t n) {
      if (ec) return self->Finish();
      self->buffer_.commit(n);
      self->ReadHeader();
    });
  }

  void ReadHeader() {
    // From new or idle only: a connection claimed meanwhile must close, never come back.
    if (!Advance(kIdle, kReading) && !Advance(kNew, kReading)) return Finish();
    busy_ = true;
    parser_.emplace();
    parser_->header_limit(static_cast<uint32_t>(server_->options_.max_header_bytes));
    parser_->body_limit(server_->options_.max_body_bytes);
    beast::get_lowest_layer(*stream_).expires_after(server_->options_.read_timeout);
    bhttp::async_read_header(*stream_, buffer_, *parser_, [self = shared_from_this()](boost::system::error_code ec, size_t) {
      if (ec) return self->OnReadError(ec);
      if (self->claimed()) return self->Finish();
      if (std::optional<Response> refused = self->CheckFraming()) return self->RefuseAndClose(std::move(*refused));
      // The body under the same deadline as the header.
      bhttp::async_read(*self->stream_, self->buffer_, *self->parser_, [self](boost::system::error_code ec2, size_t) {
        if (ec2) return self->OnReadError(ec2);
        // The request is complete: from here it is served, never evicted.
        if (!self->Advance(kReading, kServing)) return self->Finish();
        self->OnRequest();
      });
    });
  }

  void OnReadError(boost::system::error_code ec) {
    if (ec == bhttp::error::end_of_stream || ec == asio::error::operation_aborted || ec == beast::error::timeout ||
        ec == asio::ssl::error::stream_truncated || ec == asio::error::eof || ec == asio::error::connection_reset) {
      return Finish();
    }
    // The start line is parsed before the fields: a body refused for its Content-Length (found
    // while the header is still being read) still has its target, so a /v1/ path is answered
    // in Vault's format.
    std::string target = parser_ ? std::string(parser_->get().target()) : std::string();
    if (target.empty() || target.front() != '/') target = "/";
    unsigned version = parser_ && parser_->get().version() != 0 ? parser_->get().version() : 11;
    Response res;
    if (ec == bhttp::error::body_limit) {
      res = ErrorResponseRaw(version, target, HttpStatus::payload_too_large, "RequestEntityTooLarge",
                             "the request body is larger than the limit of " + std::to_string(server_->options_.max_body_bytes) + " bytes");
    } else if (ec == bhttp::error::header_limit) {
      res = ErrorResponseRaw(version, target, HttpStatus::request_header_fields_too_large, "BadRequest",
                             "the request headers are larger than the limit of " + std::to_string(server_->options_.max_header_bytes) + " bytes");
    } else {
      res = ErrorResponseRaw(version, target, HttpStatus::bad_request, "BadRequest", "malformed HTTP request: " + ec.message());
    }
    RefuseAndClose(std::move(res));
  }

  // Transfer-Encoding as RFC 9112 section 6 has it, and as Beast reads it: the one coding
  // sigil takes is a lone `chunked`. A request whose final coding is not chunked has no
  // knowable length (400); other codings before chunked are not implemented (501); HTTP/1.0
  // has no Transfer-Encoding at all (400). Each closes the connection, so no byte of the body
  // can be read as another request.
  std::optional<Response> CheckFraming() {
    const Request& req = parser_->get();
    std::vector<std::string> codings;
    for (const auto& f : req) {
      if (f.name() != bhttp::field::transfer_encoding) continue;
      std::string_view v = f.value();
      while (true) {
        size_t comma = v.find(',');
        std::string_view token = v.substr(0, comma);
        while (!token.empty() && (token.front() == ' ' || token.front() == '\t')) token.remove_prefix(1);
        while (!token.empty() && (token.back() == ' ' || token.back() == '\t')) token.remove_suffix(1);
        std::string lower(token);
        std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char ch) { return std::tolower(ch); });
        codings.push_back(lower);
        if (comma == std::string_view::npos) break;
        v = v.substr(comma + 1);
      }
    }
    if (codings.empty()) return std::nullopt;
    std::string target(req.target());
    if (target.empty() || target.front() != '/') target = "/";
    auto refuse = [&](HttpStatus status, const char* reason, const std::string& why) {
      return ErrorResponseRaw(req.version() != 0 ? req.version() : 11, target, status, reason, "malformed HTTP request: " + why);
    };
    if (req.version() < 11) return refuse(HttpStatus::bad_request, "BadRequest", "Transfer-Encoding is not allowed in HTTP/1.0");
    if (codings.back() != "chunked") return refuse(HttpStatus::bad_request, "BadRequest", "Transfer-Encoding must end in chunked");
    if (codings.size() > 1) {
      return refuse(HttpStatus::not_implemented, "NotImplemented", "only Transfer-Encoding: chunked is supported, alone");
    }
    return std::nullopt;
  }

  // Answers a request that cannot be read, then closes the connection.
  void RefuseAndClose(Response res) {
    if (!Advance(kReading, kServing)) return Finish();
    res.keep_alive(false);
    busy_ = true;
    // The client may still be sending the rest of its body; closing now would make it fail with
    // a broken pipe before it reads this answer. Drain first (as Go's server does for the same
    // reason), then close.
    drain_after_write_ = true;
    Write(std::move(res), std::chrono::steady_clock::now(), "INVALID");
  }

  // Reads and discards input until the client closes, the body limit plus 1 MiB, or one
  // deadline for the whole drain (at most 5 s): a client cannot keep a refused connection by
  // sending a byte now and then. The answer has gone out: the sending side is closed first
  // (TCP FIN, no TLS close_notify, which would wait for the peer's), so the client sees the end
  // of the answer at once and closes too. A draining connection can be evicted.
  void Drain(size_t drained = 0) {
    if (drained == 0) {
      boost::system::error_code ec;
      beast::get_lowest_layer(*stream_).socket().shutdown(tcp::socket::shutdown_send, ec);
      beast::get_lowest_layer(*stream_).expires_after(std::min<std::chrono::seconds>(server_->options_.read_timeout, std::chrono::seconds(5)));
      if (!Advance(kServing, kReading)) return Finish();
    }
    if (drained > server_->options_.max_body_bytes + (1u << 20) || claimed()) return Finish();
    if (!scratch_) scratch_ = std::make_unique<std::array<char, 16384>>();
    stream_->async_read_some(asio::buffer(*scratch_), [self = shared_from_this(), drained](boost::system::error_code ec, size_t n) {
      if (ec) return self->Finish();
      self->Drain(drained + n);
    });
  }

  void OnRequest() {
    auto start = std::chrono::steady_clock::now();
    request_ = parser_->release();
    parser_.reset();
    std::string method(request_.method_string());
    std::string_view target = request_.target();
    std::string_view path = target.substr(0, target.find('?'));
    const Handler* handler = server_->router_.Find(path);
    if (handler == nullptr) {
      Write(ErrorResponse(request_, NotFoundError("the server could not find the requested resource")), start, method);
      return;
    }
    auto self = shared_from_this();
    context_.waiting = [weak = std::weak_ptr<Session>(self)] {
      if (auto s = weak.lock()) s->Advance(kServing, kWaiting);
    };
    // A weak reference: the session owns its context, so a strong one would keep it alive forever.
    context_.start_stream = [weak = std::weak_ptr<Session>(self), start, method](Response head,
                                                                               std::chrono::seconds max_duration) {
      auto s = weak.lock();
      return s ? s->StartStream(std::move(head), max_duration, start, method) : EndedWriter();
    };
    Responder respond = [self, start, method](Response res) {
      asio::post(self->strand_, [self, start, method, res = std::move(res)]() mutable {
        self->Write(std::move(res), start, method);
      });
    };
    try {
      (*handler)(request_, context_, std::move(respond));
    } catch (const std::exception& e) {
      // The one top-level catch: a handler bug must not take the server down.
      log::Error("handler threw", {{"path", std::string(path)}, {"error", e.what()}});
      Write(ErrorResponse(request_, InternalError("internal error")), start, method);
    }
  }

  void Write(Response res, std::chrono::steady_clock::time_point start, const std::string& method) {
    if (removed_) return;  // shed while its handler waited: nobody to answer
    Advance(kWaiting, kServing);
    if (server_->stopping()) res.keep_alive(false);
    unsigned code = res.result_int();
    RequestCounter(code, method)->Inc();
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    RequestSeconds()->Observe(secs);
    if (log::Enabled(log::Level::kDebug)) {
      std::string_view target = request_.target();
      log::Debug("request", {{"method", method}, {"path", std::string(target.substr(0, target.find('?')))},
                             {"code", code}, {"remote", context_.remote_address}, {"micros", static_cast<int64_t>(secs * 1e6)}});
    }
    response_ = std::make_unique<Response>(std::move(res));
    beast::get_lowest_layer(*stream_).expires_after(server_->options_.read_timeout);
    bhttp::async_write(*stream_, *response_, [self = shared_from_this()](boost::system::error_code ec, size_t) {
      bool keep = self->response_->keep_alive();
      self->response_.reset();
      self->request_ = {};
      self->busy_ = false;
      if (ec) return self->Finish();
      if (self->drain_after_write_) return self->Drain();
      if (!keep) return self->Shutdown();
      self->ReadRequest();
    });
  }

  void Shutdown() {
    if (!stream_) return Finish();
    beast::get_lowest_layer(*stream_).expires_after(std::chrono::seconds(5));
    stream_->async_shutdown([self = shared_from_this()](boost::system::error_code) { self->Finish(); });
  }

  void Finish() {
    boost::system::error_code ec;
    state_.store(kClaimed, std::memory_order_release);  // never a candidate again
    deadline_.cancel();
    if (stream_) {
      beast::get_lowest_layer(*stream_).socket().shutdown(tcp::socket::shutdown_both, ec);
      beast::get_lowest_layer(*stream_).close();
    } else {
      socket_.shutdown(tcp::socket::shutdown_both, ec);
      socket_.close(ec);
    }
    std::lock_guard<std::mutex> l(server_->mu_);
    if (!removed_) {
      removed_ = true;
      server_->sessions_.erase(self_it_);
      server_->closed_since_trim_.fetch_add(1, std::memory_order_relaxed);
      if (server_->sessions_.empty()) server_->drained_.notify_all();
    }
  }

  Impl* server_;
  asio::any_io_executor strand_;  // the connection's strand: every handler runs on it
  tcp::socket socket_;            // until the first bytes arrive; then moved into stream_
  asio::steady_timer deadline_;   // the handshake phase's deadline while there is no stream_
  std::optional<beast::ssl_stream<beast::tcp_stream>> stream_;
  std::atomic<int> state_{kNew};
  Buffer buffer_;
  std::optional<bhttp::request_parser<Body>> parser_;
  Request request_;
  std::unique_ptr<Response> response_;
  RequestContext context_;
  bool busy_ = false;
  bool closing_ = false;
  bool removed_ = false;
  bool drain_after_write_ = false;
  std::unique_ptr<std::array<char, 16384>> scratch_;  // Drain's, made when needed
  // Streaming state (all on the strand).
  bool streaming_ = false;
  bool stream_ending_ = false;
  bool writing_chunk_ = false;
  bool head_written_ = false;
  std::deque<std::string> chunks_;
  std::shared_ptr<Writer> writer_;
  std::unique_ptr<bhttp::response<bhttp::empty_body>> stream_head_;
  std::unique_ptr<bhttp::response_serializer<bhttp::empty_body>> stream_serializer_;
  std::unique_ptr<asio::steady_timer> stream_timer_;
  std::array<char, 1> probe_{};

  void PumpStream();
  void EndStream();
  void StreamFinished(bool reusable);
  std::list<std::weak_ptr<Session>>::iterator self_it_;
};

// The handle a handler holds for a streamed response. Its methods post to the session's strand.
class Server::Impl::Session::Writer final : public StreamWriter {
 public:
  // A null session makes a writer that has already ended (the connection is gone).
  explicit Writer(std::shared_ptr<Session> s) : session_(s), ended_(s == nullptr) {}
  bool Write(std::string chunk) override {
    if (ended_.load()) return false;
    auto s = session_.lock();
    if (!s) return false;
    asio::post(s->strand_, [s, chunk = std::move(chunk)]() mutable {
      if (!s->streaming_ || s->stream_ending_) return;
      s->chunks_.push_back(std::move(chunk));
      s->PumpStream();
    });
    return true;
  }
  void Close() override {
    auto s = session_.lock();
    if (!s) return;
    asio::post(s->strand_, [s] { s->EndStream(); });
  }
  void OnClosed(std::function<void()> cb) override {
    {
      std::lock_guard<std::mutex> l(mu_);
      if (!ended_.load()) {
        on_closed_ = std::move(cb);
        return;
      }
    }
    // The stream ended before the callback was set (the client left, the time limit passed or
    // the server is stopping): run it now, on the caller's thread, as types.h promises.
    if (cb) cb();
  }
  // Marks the stream ended and runs the OnClosed callback, once. Checking and setting `ended_`
  // under `mu_` (as OnClosed checks it) means a callback set concurrently runs exactly once,
  // here or there.
  void Ended() {
    std::function<void()> cb;
    {
      std::lock_guard<std::mutex> l(mu_);
      if (ended_.exchange(true)) return;
      cb = std::move(on_closed_);
    }
    if (cb) cb();
  }
  bool ended() const { return ended_.load(); }

 private:
  std::weak_ptr<Session> session_;
  std::atomic<bool> ended_{false};
  std::mutex mu_;
  std::function<void()> on_closed_;
};

std::shared_ptr<StreamWriter> Server::Impl::Session::EndedWriter() { return std::make_shared<Writer>(nullptr); }

std::shared_ptr<StreamWriter> Server::Impl::Session::StartStream(Response head, std::chrono::seconds max_duration,
                                                                 std::chrono::steady_clock::time_point start,
                                                                 const std::string& method) {
  auto writer = std::make_shared<Writer>(shared_from_this());
  std::vector<std::shared_ptr<StreamWriter>> pruned;  // released after the lock
  {
    std::lock_guard<std::mutex> l(server_->mu_);
    // No I/O thread would ever run this stream: hand out one that has ended.
    if (server_->io_stopped_) return EndedWriter();
    auto& writers = server_->writers_;
    if (writers.size() >= server_->prune_writers_at_) {
      std::erase_if(writers, [&pruned](const std::weak_ptr<StreamWriter>& w) {
        auto live = w.lock();
        if (live && !static_cast<Writer*>(live.get())->ended()) return false;
        if (live) pruned.push_back(std::move(live));
        return true;
      });
      server_->prune_writers_at_ = std::max<size_t>(64, 2 * writers.size());
    }
    writers.push_back(writer);
  }
  auto self = shared_from_this();
  asio::post(strand_, [self, writer, head = std::move(head), max_duration, start, method]() mutable {
    self->writer_ = writer;
    self->streaming_ = true;
    RequestCounter(head.result_int(), method)->Inc();
    RequestSeconds()->Observe(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    self->stream_head_ = std::make_unique<bhttp::response<bhttp::empty_body>>(head.result(), head.version());
    for (const auto& field : head) self->stream_head_->set(field.name_string(), field.value());
    self->stream_head_->chunked(true);
    // A streamed connection is never reused: the probe read below owns its input side.
    self->stream_head_->keep_alive(false);
    self->stream_serializer_ = std::make_unique<bhttp::response_serializer<bhttp::empty_body>>(*self->stream_head_);
    self->writing_chunk_ = true;
    beast::get_lowest_layer(*self->stream_).expires_after(self->server_->options_.read_timeout);
    bhttp::async_write_header(*self->stream_, *self->stream_serializer_, [self](boost::system::error_code ec, size_t) {
      self->writing_chunk_ = false;
      self->head_written_ = true;
      if (ec) return self->StreamFinished(false);
      beast::get_lowest_layer(*self->stream_).expires_never();
      // A client that goes away is noticed by this read (it never legitimately sends more).
      self->stream_->async_read_some(asio::buffer(self->probe_), [self](boost::system::error_code, size_t) {
        if (self->streaming_) self->StreamFinished(false);
      });
      self->PumpStream();
    });
    self->stream_timer_ = std::make_unique<asio::steady_timer>(self->strand_, max_duration);
    self->stream_timer_->async_wait([self](boost::system::error_code ec) {
      if (!ec) self->EndStream();
    });
    if (self->closing_) self->EndStream();
  });
  return writer;
}

void Server::Impl::Session::PumpStream() {
  if (!streaming_ || writing_chunk_ || !head_written_) return;
  if (chunks_.empty()) {
    if (!stream_ending_) return;
    writing_chunk_ = true;
    beast::get_lowest_layer(*stream_).expires_after(server_->options_.read_timeout);
    asio::async_write(*stream_, bhttp::make_chunk_last(), [self = shared_from_this()](boost::system::error_code ec, size_t) {
      self->writing_chunk_ = false;
      self->StreamFinished(!ec);
    });
    return;
  }
  writing_chunk_ = true;
  auto data = std::make_shared<std::string>(std::move(chunks_.front()));
  chunks_.pop_front();
  beast::get_lowest_layer(*stream_).expires_after(server_->options_.read_timeout);
  asio::async_write(*stream_, bhttp::make_chunk(asio::buffer(*data)), [self = shared_from_this(), data](boost::system::error_code ec, size_t) {
    internal::SecureZero(data->data(), data->size());  // watch events carry secret values
    self->writing_chunk_ = false;
    if (ec) return self->StreamFinished(false);
    beast::get_lowest_layer(*self->stream_).expires_never();
    self->PumpStream();
  });
}

void Server::Impl::Session::EndStream() {
  if (!streaming_ || stream_ending_) return;
  stream_ending_ = true;
  if (writer_) writer_->Ended();  // the producer stops now; queued chunks still go out
  PumpStream();
}

void Server::Impl::Session::StreamFinished(bool reusable) {
  if (!streaming_) return;
  streaming_ = false;
  if (stream_timer_) stream_timer_->cancel();
  if (writer_) {
    writer_->Ended();
    writer_.reset();
  }
  for (std::string& c : chunks_) internal::SecureZero(c.data(), c.size());
  chunks_.clear();
  busy_ = false;
  (void)reusable;  // the terminating chunk (if it went out) told the client the body is complete
  stream_serializer_.reset();
  stream_head_.reset();
  // Closing the socket also ends the pending probe read. No TLS close_notify exchange: the
  // response said "Connection: close" and is complete, and waiting for the peer's notify
  // would hold the session for seconds.
  Finish();
}

void Server::Impl::StartSession(tcp::socket socket) {
  // Responses larger than one segment (lists) would otherwise wait for the client's delayed
  // ACK (Nagle): measured 44 ms per 100-secret LIST before this (docs/benchmarks.md).
  boost::system::error_code nodelay_ec;
  socket.set_option(tcp::no_delay(true), nodelay_ec);
  auto session = std::make_shared<Session>(this, std::move(socket));
  std::list<std::weak_ptr<Session>>::iterator it;
  std::shared_ptr<Session> victim;  // set when the limit was reached and a connection makes room
  Session::State victim_from = Session::kNew;
  {
    std::lock_guard<std::mutex> l(mu_);
    if (stopping_) return;
    if (sessions_.size() >= options_.max_connections) {
      // At the limit, one connection makes room, the oldest of the first kind found: one waiting
      // only for a delayed refusal (a client that keeps failing to authenticate), then one that
      // never sent a request, then an idle keep-alive one, then one still reading its request
      // (slowly, or it would be done). A request being served is never cut. When all are
      // being served, the new connection is closed, and for the next 100 ms new connections
      // are closed without looking again (a connection flood must not hold mu_ scanning).
      auto now = std::chrono::steady_clock::now();
      if (now >= all_serving_until_) {
        std::shared_ptr<Session> fresh, idle, reading;
        for (auto rit = sessions_.rbegin(); rit != sessions_.rend() && !victim; ++rit) {
          auto s = rit->lock();
          if (!s) continue;
          Session::State st = s->state();
          if (st == Session::kWaiting && s->Claim(Session::kWaiting)) {
            victim = std::move(s);
            victim_from = Session::kWaiting;
          } else if (st == Session::kNew && !fresh) {
            fresh = std::move(s);
          } else if (st == Session::kIdle && !idle) {
            idle = std::move(s);
          } else if (st == Session::kReading && !reading) {
            reading = std::move(s);
          }
        }
        for (auto [candidate, from] : {std::pair{&fresh, Session::kNew}, std::pair{&idle, Session::kIdle},
                                       std::pair{&reading, Session::kReading}}) {
          if (!victim && *candidate && (*candidate)->Claim(from)) {
            victim = std::move(*candidate);
            victim_from = from;
          }
        }
        if (!victim) all_serving_until_ = now + std::chrono::milliseconds(100);
      }
      if (!victim) {
        ConnectionsShed(false)->Inc();
        if (uint64_t suppressed = 0; shed_log_.Allow(&suppressed)) {
          log::Warn("connection limit reached and every connection is busy; closing new connections",
                    {{"limit", options_.max_connections}, {"not_logged_since_last", suppressed}});
        }
        return;  // the session (and its socket) is destroyed here
      }
    }
    sessions_.push_front(session);
    it = sessions_.begin();
  }
  if (victim) {
    ConnectionsShed(true)->Inc();
    if (uint64_t suppressed = 0; shed_log_.Allow(&suppressed)) {
      log::Warn("connection limit reached; closing waiting connections to make room",
                {{"limit", options_.max_connections}, {"not_logged_since_last", suppressed}});
    }
    victim->Evict(victim_from);
  }
  session->Run(it);
}

void Server::Impl::EndRemainingStreams() {
  std::vector<std::shared_ptr<StreamWriter>> live;
  {
    std::lock_guard<std::mutex> l(mu_);
    io_stopped_ = true;
    for (auto& w : writers_) {
      if (auto s = w.lock()) live.push_back(std::move(s));
    }
    writers_.clear();
  }
  // Outside the lock: the callbacks may take locks of their own (a watch ends its storage watch).
  for (auto& w : live) static_cast<Session::Writer*>(w.get())->Ended();
}

void Server::Impl::CloseIdleSessions() {
  std::vector<std::shared_ptr<Session>> live;
  {
    std::lock_guard<std::mutex> l(mu_);
    for (auto& w : sessions_) {
      if (auto s = w.lock()) live.push_back(std::move(s));
    }
  }
  for (auto& s : live) s->CloseIfIdle();
}

Server::Server(ServerOptions options, Router router, const CertificateSet& certs)
    : impl_(std::make_unique<Impl>(std::move(options), std::move(router), certs)) {}
Server::~Server() { Stop(); }
Status Server::Start() { return impl_->Start(); }
uint16_t Server::bound_port() const { return impl_->bound_port_; }
void Server::Stop() {
  if (impl_->threads_.empty()) return;
  impl_->Stop();
}
void Server::Wait() { impl_->Wait(); }

}  // namespace sigil::http
