// client/http_client.h: a small synchronous HTTPS client for sigil's CLI. TLS only; the server
// certificate is verified against the endpoint's CA and the URL's host name (or IP address).
// Thread safety: one Request per call; no shared state.
#pragma once

#include <chrono>
#include <string>

#include "sigil/base/result.h"
#include "sigil/client/kubeconfig.h"

namespace sigil::client {

struct Reply {
  int status = 0;
  std::string content_type;
  SecretBytes body;  // may hold secret values
};

// An https:// server URL split into host and port (443 when none is given); IPv6 in brackets.
struct ServerUrl {
  std::string host, port;
};
Result<ServerUrl> ParseServerUrl(const std::string& server);

// `target` is the path and query ("/version"). kUnavailable when the server cannot be reached
// or TLS fails (the message says which); an HTTP error status is a Reply, not an error.
Result<Reply> Request(const Endpoint& ep, const std::string& method, const std::string& target,
                      std::string_view body = {},
                      const std::string& content_type = "application/json",
                      std::chrono::seconds timeout = std::chrono::seconds(30));

}  // namespace sigil::client
