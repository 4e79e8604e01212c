// engines/kv_v2.h: Vault's KV secrets engine, version 2 (versioned), at any mount:
//
//   config                 GET, POST {max_versions, cas_required, delete_version_after}
//   data/<path>            GET (?version=N), POST|PUT {data, options: {cas}}, PATCH (JSON merge
//                          patch of the latest version), DELETE (soft-deletes the latest)
//   delete/<path>          POST {versions}: soft delete
//   undelete/<path>        POST {versions}
//   destroy/<path>         POST|PUT {versions}: the values are gone for good
//   metadata/<path>        GET, POST {max_versions, cas_required, delete_version_after,
//                          custom_metadata}, PATCH (merge), DELETE (every version and the
//                          metadata), LIST
//   subkeys/<path>         GET (?version, ?depth): the keys, every value null
//
// with Vault's response fields (data.data, data.metadata.{version, created_time,
// deletion_time, destroyed, custom_metadata}; metadata's current_version, oldest_version and
// versions map). Each secret is one document in the mount's storage (its metadata and every
// kept version), so a write, a trim to max_versions and a delete change it in one
// compare-on-revision step: concurrent writers never lose a version or break check-and-set.
// Thread-safe.
#pragma once

#include <memory>

#include "sigil/base/clock.h"
#include "sigil/engines/engine.h"

namespace sigil::engines {

std::unique_ptr<SecretsEngine> NewKvV2(const Mount& mount, Storage storage, Clock* clock);

}  // namespace sigil::engines
