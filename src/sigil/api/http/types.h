// api/http/types.h: the request and response types handlers see.
//
// Bodies use a zeroing allocator: request and response bodies carry secret values (a PUT of a
// Secret, a GET of its data), and their buffers are wiped when freed.
#pragma once

#include <boost/beast/http.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "sigil/base/identity.h"
#include "sigil/base/secret_bytes.h"

namespace sigil::http {

using Body = boost::beast::http::basic_string_body<char, std::char_traits<char>, internal::ZeroingAllocator<char>>;
using Request = boost::beast::http::request<Body>;
using Response = boost::beast::http::response<Body>;
using HttpStatus = boost::beast::http::status;
using Verb = boost::beast::http::verb;

// A streamed response body (chunked transfer encoding), for watches.
class StreamWriter {
 public:
  virtual ~StreamWriter() = default;
  // Queues one chunk. Returns false once the stream has ended (client gone, time limit, server
  // stopping): the producer should stop. Thread-safe, never blocks.
  virtual bool Write(std::string chunk) = 0;
  // Ends the stream with the terminating chunk. Thread-safe, idempotent.
  virtual void Close() = 0;
  // `cb` runs once when the stream ends for any reason (client gone, time limit, Close, server
  // stopping): on an I/O thread, or on the thread calling Server::Stop for streams that Stop
  // ends after its I/O threads are gone. If the stream has already ended when OnClosed is
  // called, `cb` runs at once on the calling thread, before OnClosed returns, so do not hold a
  // lock that `cb` takes. Set it once, before the first Write. It must not call back into the
  // writer.
  virtual void OnClosed(std::function<void()> cb) = 0;
};

// Starts a streamed response with the status and headers of `head` (its body is ignored). The
// stream ends by itself after `max_duration`.
using StreamStarter = std::function<std::shared_ptr<StreamWriter>(Response head, std::chrono::seconds max_duration)>;

// The client certificate of a TLS connection, when the client sent one and it verified against
// the configured client CA with extended key usage clientAuth.
struct PeerCertificate {
  std::string common_name;
  std::vector<std::string> organizations;  // every O of the subject, in order
  std::string sha256_hex;                  // of the leaf's DER
};

struct RequestContext {
  std::string remote_address;  // ip:port of the peer
  std::optional<PeerCertificate> peer;
  // Set by the authentication step before a handler runs (null for unauthenticated paths).
  std::shared_ptr<const Identity> identity;
  // A handler either calls its Responder once, or calls start_stream once (and never the
  // Responder).
  StreamStarter start_stream;
  // Called by a handler that will answer only after a wait that serves no one (a throttled
  // authentication refusal): the connection may then be shed to make room for others, and the
  // answer is dropped if it was. Any thread; optional.
  std::function<void()> waiting;
};

// Completes a request. Call exactly once, from any thread.
using Responder = std::function<void(Response)>;
using Handler = std::function<void(const Request&, const RequestContext&, Responder)>;

// A response with `body` and content type, keep-alive and version taken from `req`.
Response MakeResponse(const Request& req, HttpStatus status, std::string_view content_type, std::string_view body);

}  // namespace sigil::http
