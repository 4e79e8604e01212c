// api/http/types.h: the request and response types handlers see.
//
// Bodies use a zeroing allocator: request and response bodies carry secret values (a PUT of a
// Secret, a GET of its data), and their buffers are wiped when freed.
#pragma once

#include <boost/beast/http.hpp>
#include <functional>
#include <string>

#include "sigil/base/secret_bytes.h"

namespace sigil::http {

using Body = boost::beast::http::basic_string_body<char, std::char_traits<char>, internal::ZeroingAllocator<char>>;
using Request = boost::beast::http::request<Body>;
using Response = boost::beast::http::response<Body>;
using HttpStatus = boost::beast::http::status;
using Verb = boost::beast::http::verb;

struct RequestContext {
  std::string remote_address;  // ip:port of the peer
};

// Completes a request. Call exactly once, from any thread.
using Responder = std::function<void(Response)>;
using Handler = std::function<void(const Request&, const RequestContext&, Responder)>;

// A response with `body` and content type, keep-alive and version taken from `req`.
Response MakeResponse(const Request& req, HttpStatus status, std::string_view content_type, std::string_view body);

}  // namespace sigil::http
