#!/usr/bin/env python3
"""Checks that each module includes only the modules below it (CONVENTIONS.md "Layout")."""
import os
import re
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src", "sigil")
# module -> modules it may include (besides itself). Only barrier includes storage.
ALLOWED = {
    "base": set(),
    "crypto": {"base"},
    "proto": {"base"},
    "storage": {"base"},
    "barrier": {"base", "crypto", "storage"},
    "store": {"base", "barrier"},
    "auth": {"base", "crypto", "store"},
    "authz": {"base", "crypto", "store"},
    "audit": {"base", "crypto", "store"},
    "registry": {"base", "crypto", "store"},
    "leases": {"base", "crypto", "store"},
    "core": {"base", "crypto", "auth", "authz", "audit"},
    "engines": {"base", "crypto", "store"},
    "kms": {"base", "crypto", "barrier", "store", "proto"},
    "database": {"base", "crypto", "store", "engines", "leases"},
    "testing": {"base"},
    "api/http": {"base", "crypto"},
    "api/kubernetes": {"base", "crypto", "registry", "core", "auth", "authz", "audit", "api/http", "proto"},
    "api/vault": {"base", "crypto", "core", "auth", "authz", "audit", "engines", "database", "registry", "leases", "api/http", "kms"},
    "client": {"base"},
    "agent": {"base", "client"},
    "csi": {"base", "crypto", "client", "agent"},
    "server": {"base", "crypto", "storage", "barrier", "store", "auth", "authz", "audit", "registry", "leases", "core", "engines", "database", "api/http", "api/kubernetes", "api/vault", "proto", "client", "kms"},
}
INCLUDE = re.compile(r'#include "sigil/([a-z_]+(?:/[a-z_]+)?)/')


def module_of(rel):
    parts = rel.split(os.sep)
    return "/".join(parts[:2]) if parts[0] == "api" else parts[0]


errors = []
for dirpath, _, files in os.walk(ROOT):
    for name in files:
        if not name.endswith((".h", ".cc")):
            continue
        path = os.path.join(dirpath, name)
        rel = os.path.relpath(path, ROOT)
        mod = module_of(rel)
        test = name.endswith(("_test.cc", "_testing.h"))
        with open(path) as f:
            for n, line in enumerate(f, 1):
                m = INCLUDE.match(line)
                if not m:
                    continue
                inc = m.group(1)
                inc_mod = inc if inc.startswith("api/") else inc.split("/")[0]
                if inc_mod == mod or inc_mod in ALLOWED.get(mod, set()):
                    continue
                if test and inc_mod in ("testing", "storage", "barrier", "store"):
                    continue  # tests may use fakes and build the storage stack on the memory backend
                errors.append(f"{rel}:{n}: module '{mod}' must not include sigil/{inc}/")
if errors:
    print("\n".join(errors))
    sys.exit(1)
print("include directions ok")
