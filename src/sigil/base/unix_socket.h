// base/unix_socket.h: small helpers for the unix sockets sigil serves on (the KMS plugin, the
// CSI provider). Thread safety: the functions are thread-safe.
#pragma once

#include <string>

namespace sigil::unix_socket {

// Whether a process accepts connections on the unix socket at `path` (a stale socket file of
// a process that exited does not count).
bool SomeoneListens(const std::string& path);

}  // namespace sigil::unix_socket
