// base/file.h: the file operations sigil's own files need, done crash-safely.
//
// WriteFileAtomic follows the only sequence that survives a crash at any point (temp file in
// the same directory, fsync, rename, fsync of the directory); a reader sees the old or the new
// contents, never a mix. Thread safety: the functions are thread-safe; concurrent writers of
// one path race as rename(2) does (last one wins).
#pragma once

#include <string>
#include <string_view>

#include "sigil/base/result.h"
#include "sigil/base/secret_bytes.h"

namespace sigil::file {

// The whole file. kNotFound if absent, kPermissionDenied if unreadable, kInvalidArgument if
// larger than `max_bytes`.
Result<std::string> ReadFile(const std::string& path, size_t max_bytes = 64 << 20);

// Reads a file that holds key material. Refuses (kPermissionDenied) a file that is not a
// regular file or whose mode grants any permission to group or others: a key readable by
// another user is already leaked. The result holds secret material.
Result<SecretBytes> ReadPrivateFile(const std::string& path, size_t max_bytes = 1 << 20);

// Replaces `path` with `data` atomically and durably, the new file created with `mode`
// (umask is ignored). Errors: kPermissionDenied, kResourceExhausted (ENOSPC), kUnavailable.
Status WriteFileAtomic(const std::string& path, std::string_view data, int mode = 0600);

// Creates `path` (and parents) with mode 0700 if missing; if present, it must be a directory.
Status MakePrivateDir(const std::string& path);

// Removes a directory tree; errors are ignored (best effort, used for dev-mode temp dirs).
void RemoveTree(const std::string& path);

// Maps errno to a Status with `what` (a path or operation name) as context.
Status ErrnoStatus(int err, std::string_view what);

}  // namespace sigil::file
