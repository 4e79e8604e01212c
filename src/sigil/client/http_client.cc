#include "sigil/client/http_client.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <charconv>

namespace sigil::client {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

Result<ServerUrl> ParseServerUrl(const std::string& server) {
  constexpr std::string_view kScheme = "https://";
  if (!std::string_view(server).starts_with(kScheme))
    return InvalidArgumentError("server must be an https:// URL: " + server);
  std::string rest = server.substr(kScheme.size());
  rest = rest.substr(0, rest.find('/'));
  ServerUrl u;
  if (!rest.empty() && rest.front() == '[') {  // [v6]:port
    size_t close = rest.find(']');
    if (close == std::string::npos) return InvalidArgumentError("bad server URL: " + server);
    u.host = rest.substr(1, close - 1);
    u.port = close + 1 < rest.size() && rest[close + 1] == ':' ? rest.substr(close + 2) : "443";
  } else {
    size_t colon = rest.rfind(':');
    u.host = rest.substr(0, colon);
    u.port = colon == std::string::npos ? "443" : rest.substr(colon + 1);
  }
  unsigned port = 0;
  auto [p, ec] = std::from_chars(u.port.data(), u.port.data() + u.port.size(), port);
  if (u.host.empty() || ec != std::errc() || p != u.port.data() + u.port.size() || port == 0 ||
      port > 65535) {
    return InvalidArgumentError("bad server URL: " + server);
  }
  return u;
}

Result<Reply> Request(const Endpoint& ep, const std::string& method, const std::string& target,
                      std::string_view body, const std::string& content_type,
                      std::chrono::seconds timeout) {
  SIGIL_ASSIGN_OR_RETURN(ServerUrl url, ParseServerUrl(ep.server));
  try {
    asio::io_context ioc;
    asio::ssl::context ctx(asio::ssl::context::tls_client);
    ctx.set_options(asio::ssl::context::no_tlsv1 | asio::ssl::context::no_tlsv1_1);
    if (!ep.ca_pem.empty()) {
      ctx.add_certificate_authority(asio::buffer(ep.ca_pem));
    } else {
      ctx.set_default_verify_paths();
    }
    ctx.set_verify_mode(asio::ssl::verify_peer);
    if (!ep.cert_pem.empty()) {
      ctx.use_certificate_chain(asio::buffer(ep.cert_pem));
      ctx.use_private_key(asio::buffer(ep.key_pem.data(), ep.key_pem.size()),
                          asio::ssl::context::pem);
    }
    beast::ssl_stream<beast::tcp_stream> stream(ioc, ctx);
    stream.set_verify_callback(asio::ssl::host_name_verification(url.host));
    if (!SSL_set_tlsext_host_name(stream.native_handle(), url.host.c_str())) {
      return UnavailableError("TLS: cannot set the server name");
    }
    asio::ip::tcp::resolver resolver(ioc);
    auto endpoints = resolver.resolve(url.host, url.port);
    http::request<http::string_body> req{http::string_to_verb(method), target, 11};
    req.set(http::field::host, url.host);
    req.set(http::field::user_agent, "sigil-cli");
    req.set(http::field::accept, "application/json");
    if (!ep.token.empty())
      req.set(http::field::authorization, "Bearer " + std::string(ep.token.view()));
    if (!body.empty() || method == "POST" || method == "PUT" || method == "PATCH") {
      req.set(http::field::content_type, content_type);
      req.body() = std::string(body);
      req.prepare_payload();
    }
    // Asynchronous steps on a private io_context, so the one deadline below bounds all of
    // them: Beast's stream timeouts apply to asynchronous operations only, and a server that
    // accepts and never answers would otherwise hold the caller forever.
    beast::flat_buffer buf;
    http::response_parser<http::string_body> parser;
    parser.body_limit(64 << 20);
    beast::error_code failure;
    std::string step;
    auto fail = [&](const char* s, beast::error_code ec) {
      failure = ec;
      step = s;
    };
    auto& tcp = beast::get_lowest_layer(stream);
    tcp.expires_after(timeout);
    tcp.async_connect(endpoints, [&](beast::error_code ec, const asio::ip::tcp::endpoint&) {
      if (ec) return fail("connect", ec);
      stream.async_handshake(asio::ssl::stream_base::client, [&](beast::error_code ec2) {
        if (ec2) return fail("TLS handshake", ec2);
        http::async_write(stream, req, [&](beast::error_code ec3, size_t) {
          internal::SecureZero(req.body().data(), req.body().size());
          if (ec3) return fail("send", ec3);
          http::async_read(stream, buf, parser, [&](beast::error_code ec4, size_t) {
            if (ec4) fail("read", ec4);
          });
        });
      });
    });
    ioc.run();
    beast::error_code ignored;
    tcp.socket().close(ignored);  // no TLS close_notify: a silent server could hold that too
    if (failure) {
      if (failure == beast::error::timeout) {
        return UnavailableError("cannot reach " + ep.server + ": no answer within " +
                                std::to_string(timeout.count()) + " s (" + step + ")");
      }
      return UnavailableError("cannot reach " + ep.server + ": " + step + ": " + failure.message());
    }
    auto& res = parser.get();
    Reply r;
    r.status = res.result_int();
    r.content_type = std::string(res[http::field::content_type]);
    r.body = SecretBytes(res.body());
    internal::SecureZero(res.body().data(), res.body().size());
    return r;
  } catch (const boost::system::system_error& e) {
    return UnavailableError("cannot reach " + ep.server + ": " + e.code().message());
  }
}

}  // namespace sigil::client
