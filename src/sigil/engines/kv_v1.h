// engines/kv_v1.h: Vault's KV secrets engine, version 1 (unversioned): each path holds one JSON
// object, written whole and read whole. Paths are "folders" separated by '/'; LIST names the
// entries and folders (ending in '/') directly below a prefix. A read reports the object's
// "ttl" key, if it has one (seconds or a Go duration), or the mount's default lease TTL as its
// lease_duration, as Vault does (KV v1 leases are advisory: nothing expires). Writes check
// existence (create needs "create", overwrite "update"). Version 2 is a separate engine.
#pragma once

#include <memory>

#include "sigil/engines/engine.h"

namespace sigil::engines {

std::unique_ptr<SecretsEngine> NewKvV1(const Mount& mount, Storage storage);

}  // namespace sigil::engines
