// agent/stream.h: one HTTPS request to the server, asynchronous on the agent's io_context,
// whose answer is either read whole (bounded) or, for a watch, handed over line by line as it
// arrives. One connection per request: the agent makes few requests (a list at start or after
// an expired watch, then one long watch per source), so keep-alive would buy nothing.
//
// Thread safety: all calls and callbacks on the io_context's single thread.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl/context.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "sigil/base/result.h"
#include "sigil/base/secret_bytes.h"
#include "sigil/client/http_client.h"

namespace sigil::agent {

struct HttpTarget {
  client::ServerUrl url;
  SecretBytes token;  // bearer token; empty with a client certificate
};

class HttpStream : public std::enable_shared_from_this<HttpStream> {
 public:
  // Called once: the status and, for an answer read whole (or any non-200 answer), its body;
  // kUnavailable / kDeadlineExceeded when the server could not be reached or went silent, or
  // the stream broke (a watch that ends cleanly reports OK with status 200).
  using Done = std::function<void(Status, int status, SecretBytes body)>;
  // A watch's lines, without their '\n'. Return false to end the stream (Done is then not called).
  using OnLine = std::function<bool(std::string_view line)>;

  HttpStream(boost::asio::io_context& ioc, boost::asio::ssl::context& tls);
  ~HttpStream();

  // GET `target`, the answer read whole (at most 16 MiB).
  void Get(const HttpTarget& to, const std::string& target, std::chrono::seconds timeout,
           Done done);
  // Any method with a JSON body (POST/PUT to the Vault face), the answer read whole. The body
  // may hold a credential: it is wiped once sent.
  void Send(const HttpTarget& to, const std::string& method, const std::string& target,
            SecretBytes body, std::chrono::seconds timeout, Done done);
  // GET `target` as a watch: a 200 answer's body is handed over line by line; each read may
  // wait at most `idle` (the server sends bookmarks or ends the watch well before).
  void Watch(const HttpTarget& to, const std::string& target, std::chrono::seconds connect_timeout,
             std::chrono::seconds idle, OnLine on_line, Done done);
  // Ends the request at once; no callback is called after this.
  void Cancel();

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace sigil::agent
