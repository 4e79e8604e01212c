// agent/atomic_writer.h: a set of files swapped into a directory at once, laid out as the
// kubelet lays out a secret volume (pkg/volume/util/atomic_writer.go), so programs and
// libraries written for mounted Secrets read sigil's files unchanged:
//
//   DIR/..2026_12_08_01_02_03.a1B2c3/   the data: one timestamped directory per version (0755)
//   DIR/..data -> ..2026_12_08_01_02_03.a1B2c3   swapped by rename(2), so atomically
//   DIR/password -> ..data/password      one symlink per top-level path, made once
//
// A reader that opens DIR/password gets one whole version of the file, never a partly written
// one, and never finds it missing while the set is replaced: the new version is complete
// before `..data` moves, and the old one is removed only after (a moment after, with
// keep_previous). Files are written with
// O_EXCL|O_NOFOLLOW into the new directory only, so nothing outside DIR is ever followed.
// Thread safety: one writer per directory (the agent refuses two sources in one directory).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "sigil/base/result.h"
#include "sigil/base/secret_bytes.h"

namespace sigil::agent {

struct FileData {
  std::string path;  // relative, checked by CheckItemPath
  SecretBytes data;
  int mode = 0644;
};

struct Ownership {
  std::optional<uint32_t> owner, group;
};

// Makes DIR hold exactly `files` (in the layout above). Returns false when DIR already held the
// same paths, contents and modes (nothing is written then), true when it swapped a new version
// in. Creates DIR (0755) if missing. Leftover timestamped directories of an interrupted
// earlier write are removed. On error the previous version stays in place, whole.
//
// `keep_previous`: the version just replaced is left for the caller to remove a moment later
// (RemoveOldVersions). A reader that resolved `..data` just before the swap still finds its
// file there; removed at once, it would get ENOENT in that instant (the kubelet's writer has
// this window).
Result<bool> WriteAtomically(const std::string& dir, const std::vector<FileData>& files,
                             const Ownership& own = {}, bool keep_previous = false);

// Removes every version directory but the one `..data` names.
Status RemoveOldVersions(const std::string& dir);

// Removes everything WriteAtomically made in DIR (the symlinks, `..data`, the data
// directories); other entries are left.
Status RemoveAll(const std::string& dir);

}  // namespace sigil::agent
