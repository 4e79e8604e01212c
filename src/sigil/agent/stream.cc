#include "sigil/agent/stream.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <optional>

namespace sigil::agent {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

struct HttpStream::Impl : std::enable_shared_from_this<HttpStream::Impl> {
  Impl(asio::io_context& ioc, asio::ssl::context& tls) : resolver(ioc), stream(ioc, tls) {}

  asio::ip::tcp::resolver resolver;
  beast::ssl_stream<beast::tcp_stream> stream;
  beast::flat_buffer buffer;
  http::request<http::string_body> request;
  std::optional<http::response_parser<http::string_body>> parser;
  Done done;
  OnLine on_line;  // set for a watch
  std::chrono::seconds timeout{30};
  std::chrono::seconds idle{330};
  std::string host;
  bool finished = false;

  void Start(const HttpTarget& to, const std::string& target, http::verb method = http::verb::get,
             SecretBytes body = SecretBytes()) {
    host = to.url.host;
    request = http::request<http::string_body>(method, target, 11);
    if (method != http::verb::get) {
      request.set(http::field::content_type, "application/json");
      request.body().assign(reinterpret_cast<const char*>(body.data()), body.size());
      request.prepare_payload();
    }
    request.set(http::field::host, to.url.host);
    request.set(http::field::user_agent, "sigil-agent");
    request.set(http::field::accept, "application/json");
    if (!to.token.empty()) {
      std::string bearer = "Bearer ";
      bearer.append(reinterpret_cast<const char*>(to.token.data()), to.token.size());
      request.set(http::field::authorization, bearer);
      internal::SecureZero(bearer.data(), bearer.size());
    }
    if (!SSL_set_tlsext_host_name(stream.native_handle(), to.url.host.c_str())) {
      return Finish(UnavailableError("TLS: cannot set the server name"), 0);
    }
    stream.set_verify_callback(asio::ssl::host_name_verification(to.url.host));
    beast::get_lowest_layer(stream).expires_after(timeout);
    resolver.async_resolve(
        to.url.host, to.url.port,
        [self = shared_from_this()](beast::error_code ec, asio::ip::tcp::resolver::results_type r) {
          if (self->finished) return;  // cancelled meanwhile: nothing more is sent
          if (ec) return self->Fail("resolve", ec);
          beast::get_lowest_layer(self->stream)
              .async_connect(r, [self](beast::error_code ec2, const asio::ip::tcp::endpoint&) {
                if (self->finished) return;  // cancelled meanwhile: nothing more is sent
                if (ec2) return self->Fail("connect", ec2);
                self->stream.async_handshake(
                    asio::ssl::stream_base::client, [self](beast::error_code ec3) {
                      if (self->finished) return;  // cancelled meanwhile: nothing more is sent
                      if (ec3) return self->Fail("TLS handshake", ec3);
                      http::async_write(self->stream, self->request,
                                        [self](beast::error_code ec4, size_t) {
                                          if (self->finished)
                                            return;  // cancelled meanwhile: nothing more is sent
                                          internal::SecureZero(self->request.body().data(),
                                                               self->request.body().size());
                                          if (ec4) return self->Fail("send", ec4);
                                          self->ReadHead();
                                        });
                    });
              });
        });
  }

  void ReadHead() {
    parser.emplace();
    parser->body_limit(on_line ? std::numeric_limits<uint64_t>::max() : uint64_t{16} << 20);
    http::async_read_header(stream, buffer, *parser,
                            [self = shared_from_this()](beast::error_code ec, size_t) {
                              if (ec) return self->Fail("read", ec);
                              if (self->on_line && self->parser->get().result_int() == 200)
                                return self->ReadLines();
                              self->ReadWhole();
                            });
  }

  void ReadWhole() {
    http::async_read(stream, buffer, *parser,
                     [self = shared_from_this()](beast::error_code ec, size_t) {
                       if (ec) return self->Fail("read", ec);
                       auto& body = self->parser->get().body();
                       SecretBytes out(body);
                       internal::SecureZero(body.data(), body.size());
                       self->Finish(OkStatus(), self->parser->get().result_int(), std::move(out));
                     });
  }

  void ReadLines() {
    beast::get_lowest_layer(stream).expires_after(idle);
    http::async_read_some(
        stream, buffer, *parser, [self = shared_from_this()](beast::error_code ec, size_t) {
          if (self->finished) return;
          // Whole lines are handed over and erased; a partial one waits for the rest. The body
          // reader appends at the string's end, so erasing its front between reads is safe.
          std::string& body = self->parser->get().body();
          size_t start = 0;
          for (size_t nl; (nl = body.find('\n', start)) != std::string::npos; start = nl + 1) {
            std::string_view line(body.data() + start, nl - start);
            if (!line.empty() && !self->on_line(line)) {
              self->finished = true;
              self->Close();
              return;
            }
            if (self->finished) return;  // cancelled from the callback
          }
          internal::SecureZero(body.data(), start);
          body.erase(0, start);
          if (ec == http::error::end_of_stream || (!ec && self->parser->is_done())) {
            return self->Finish(OkStatus(), 200);  // the server ended the watch
          }
          if (ec) return self->Fail("watch", ec);
          if (body.size() > (uint64_t{16} << 20))
            return self->Finish(DataLossError("a watch event over 16 MiB"), 200);
          self->ReadLines();
        });
  }

  void Fail(const char* step, beast::error_code ec) {
    if (finished) return;
    if (ec == beast::error::timeout)
      return Finish(
          DeadlineExceededError(std::string(step) + ": no answer from the server in time"), 0);
    std::string what = ec.message();
    if (ec.category() == asio::error::get_ssl_category()) {
      char buf[256];
      ERR_error_string_n(static_cast<unsigned long>(ec.value()), buf, sizeof(buf));
      what = buf;
    }
    Finish(UnavailableError(std::string(step) + ": " + what), 0);
  }

  void Finish(Status st, int status, SecretBytes body = SecretBytes()) {
    if (finished) return;
    finished = true;
    Close();
    Done d = std::move(done);
    on_line = nullptr;
    if (d) d(std::move(st), status, std::move(body));
  }

  void Close() {
    beast::error_code ignored;
    resolver.cancel();
    beast::get_lowest_layer(stream).socket().shutdown(asio::ip::tcp::socket::shutdown_both,
                                                      ignored);
    beast::get_lowest_layer(stream).close();
  }
};

HttpStream::HttpStream(asio::io_context& ioc, asio::ssl::context& tls)
    : impl_(std::make_shared<Impl>(ioc, tls)) {}

HttpStream::~HttpStream() { Cancel(); }

void HttpStream::Get(const HttpTarget& to, const std::string& target, std::chrono::seconds timeout,
                     Done done) {
  impl_->done = std::move(done);
  impl_->timeout = timeout;
  impl_->Start(to, target);
}

void HttpStream::Send(const HttpTarget& to, const std::string& method, const std::string& target,
                      SecretBytes body, std::chrono::seconds timeout, Done done) {
  impl_->done = std::move(done);
  impl_->timeout = timeout;
  impl_->Start(to, target, http::string_to_verb(method), std::move(body));
}

void HttpStream::Watch(const HttpTarget& to, const std::string& target,
                       std::chrono::seconds connect_timeout, std::chrono::seconds idle,
                       OnLine on_line, Done done) {
  impl_->done = std::move(done);
  impl_->on_line = std::move(on_line);
  impl_->timeout = connect_timeout;
  impl_->idle = idle;
  impl_->Start(to, target);
}

void HttpStream::Cancel() {
  // The callbacks are left to die with the last pending handler: this may be called from
  // inside one of them.
  if (impl_->finished) return;
  impl_->finished = true;
  impl_->Close();
}

}  // namespace sigil::agent
