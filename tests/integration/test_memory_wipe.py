"""Freed memory holds no Secret values: a Secret carrying a canary is created, read through
every read path (GET, LIST, watch, history, Table), patched and deleted, each request on its
own TLS connection; then the server's whole writable memory (heap, thread stacks, anonymous
mappings, read through /proc/<pid>/mem) is searched for the canary in raw and base64 form.
What the server no longer uses must have been wiped: C++ blocks when freed
(base/wipe_on_free.cc), OpenSSL's record buffers once read (SSL_OP_CLEANSE_PLAINTEXT).
The name of a Secret, which the in-memory watch history keeps live (with the encrypted value),
must be found, which proves the search works.
Needs root (the server is not dumpable, so only CAP_SYS_PTRACE may read its memory)."""
import base64
import json
import os
import re
import secrets

import pytest
import requests


def patterns(raw):
    pats = {raw}
    for pad in range(3):
        enc = base64.b64encode(b"\x00" * pad + raw)
        pats.add(enc[4:-4])  # strip the characters that depend on the neighbouring bytes
    return pats


def writable_memory(pid):
    with open(f"/proc/{pid}/maps") as f:
        maps = f.read().splitlines()
    with open(f"/proc/{pid}/mem", "rb", buffering=0) as mem:
        for line in maps:
            m = re.match(r"([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ (\d+)\s*(.*)", line)
            start, end, perms, inode, name = int(m[1], 16), int(m[2], 16), m[3], int(m[4]), m[5]
            # Anonymous and heap memory only: file mappings (the LMDB map, libraries) hold
            # ciphertext or code, and [vvar]-style kernel pages cannot be read.
            if "rw" not in perms or inode != 0 or name.startswith("[v"):
                continue
            if end - start > 1 << 32:
                continue  # a sanitizer's shadow reservation, not memory the program allocated
            try:
                mem.seek(start)
                yield name, mem.read(end - start)
            except OSError:
                continue


def found_in(pid, raw):
    hits = []
    for name, data in writable_memory(pid):
        for p in patterns(raw):
            if p in data:
                hits.append((name or "anon", p[:12]))
    return hits


@pytest.mark.skipif(os.geteuid() != 0, reason="reading a non-dumpable process's memory needs root")
def test_no_secret_value_survives_in_freed_memory(start_server):
    s = start_server(["--dev", "--listen", "127.0.0.1:0"])
    base = s.url + "/api/v1/namespaces/default/secrets"

    def call(method, url, **kw):
        headers = dict(s.auth, Connection="close", **kw.pop("headers", {}))
        with requests.Session() as sess:
            return sess.request(method, url, verify=s.ca, headers=headers, timeout=10, **kw)

    gone = b"gone-" + secrets.token_hex(24).encode()
    control = "ctl-" + secrets.token_hex(16)
    r = call("POST", base, json={"metadata": {"name": control}, "data": {"v": "eA=="}})
    assert r.status_code == 201, r.text
    r = call("POST", base, json={"metadata": {"name": "gone"}, "data": {"v": base64.b64encode(gone).decode()}})
    assert r.status_code == 201, r.text
    for _ in range(5):
        assert call("GET", base + "/gone").status_code == 200
        assert call("GET", base).status_code == 200
    table = "application/json;as=Table;v=v1;g=meta.k8s.io"
    assert call("GET", base + "/gone", headers={"Accept": table}).status_code == 200
    r = call("GET", base + "?watch=true&resourceVersion=0&timeoutSeconds=1")
    assert r.status_code == 200 and "gone" in r.text
    r = call("PATCH", base + "/gone", data=json.dumps({"stringData": {"w": gone.decode()}}),
             headers={"Content-Type": "application/merge-patch+json"})
    assert r.status_code == 200, r.text
    assert call("GET", s.url + "/sigil/v1/namespaces/default/secrets/gone/versions").status_code == 200
    assert call("DELETE", base + "/gone").status_code == 200
    # The history still holds the value, encrypted in the store; nothing in memory should.
    assert found_in(s.proc.pid, control.encode()), "the search did not find a live key: it proves nothing"
    leftovers = found_in(s.proc.pid, gone)
    assert leftovers == [], f"the deleted Secret's value is still in the server's memory: {leftovers}"
