"""No plaintext at rest: values carrying canaries go into the store through every path that
exists today (sigil's keyring, each EncryptionConfiguration provider, before and after a key
rotation; the Kubernetes API's create, patch, server-side apply, version history and rollback,
and a refused write); then every file under the test directory (LMDB data and lock files, keyring,
certificates, server logs at trace level) is searched for each canary in raw, hex (both cases)
and base64 at all three byte alignments. A control stored through the identity provider must
be found, which proves the search works."""
import base64
import json
import os
import secrets

import requests

from test_encryption_config_vectors import write_config

from conftest import STORETOOL, run


def patterns(canary):
    raw = canary.encode()
    pats = {raw, raw.hex().encode(), raw.hex().upper().encode()}
    for pad in range(3):
        enc = base64.b64encode(b"\x00" * pad + raw)
        pats.add(enc[4:-4])  # strip the characters that depend on the neighbouring bytes
    return pats


def scan(root, canaries):
    found = []
    for dirpath, _, files in os.walk(root):
        for name in files:
            path = os.path.join(dirpath, name)
            with open(path, "rb") as f:
                data = f.read()
            for c in canaries:
                for p in patterns(c):
                    if p in data:
                        found.append((path, c, p[:16]))
    return found


def put(workdir, key_file, key, value, config=None):
    cmd = [STORETOOL, "put", "--data-dir", os.path.join(workdir, "store"), "--key-file", key_file, "--key", key,
           "--hex", value.encode().hex()]
    if config:
        cmd += ["--encryption-config", config]
    run(cmd)


def test_no_canary_reaches_disk(workdir, key_file, start_server):
    canaries = ["SIGILCANARY" + secrets.token_hex(16) for _ in range(20)]
    providers = [None, "aesgcm", "aescbc", "secretbox"]
    for i, c in enumerate(canaries):
        provider = providers[i % len(providers)]
        config = write_config(workdir, provider, [("k", os.urandom(32))], name=f"enc{i}.yaml") if provider else None
        put(workdir, key_file, f"/registry/secrets/default/s{i}", f"password={c}", config)
        put(workdir, key_file, f"/sigil/kv/app/{i}", c)
        if i == 10:
            run([STORETOOL, "rotate", "--data-dir", os.path.join(workdir, "store"), "--key-file", key_file])
    # The server opens the same store at trace verbosity and writes its logs into the directory.
    cfg = os.path.join(workdir, "sigil.yaml")
    with open(cfg, "w") as f:
        f.write(f"listen: 127.0.0.1:0\ndata_dir: {workdir}/srv\nseal: {{key_file: {key_file}}}\nlog: {{level: trace}}\n")
    s = start_server(["--config", cfg])
    # And through the API: create, update (history), apply, rollback, with canaries as values.
    api_canaries = ["SIGILCANARY" + secrets.token_hex(16) for _ in range(4)]
    canaries += api_canaries
    base = s.url + "/api/v1/namespaces/default/secrets"
    kw = dict(verify=s.ca, headers=s.auth, timeout=10)
    assert requests.post(base, json={"metadata": {"name": "api"}, "stringData": {"v": api_canaries[0]}}, **kw).status_code == 201
    assert requests.patch(base + "/api", json={"stringData": {"v": api_canaries[1]}},
                          headers={"Content-Type": "application/merge-patch+json", **s.auth}, verify=s.ca).status_code == 200
    apply = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "applied"}, "stringData": {"v": api_canaries[2]}}
    assert requests.patch(base + "/applied?fieldManager=t", data=json.dumps(apply),
                          headers={"Content-Type": "application/apply-patch+yaml", **s.auth}, verify=s.ca).status_code == 201
    assert requests.post(s.url + "/sigil/v1/namespaces/default/secrets/api/rollback", json={"version": 1}, **kw).status_code == 200
    bad = {"metadata": {"name": "Bad"}, "stringData": {"v": api_canaries[3]}}  # refused, and logged at trace level
    assert requests.post(base, json=bad, **kw).status_code == 422
    s.stop()
    with open(os.path.join(workdir, "server.log"), "w") as f:
        f.write(s.logs())
    assert scan(workdir, canaries) == []


def test_scan_finds_plaintext_stored_with_identity(workdir, key_file):
    canary = "SIGILCANARY" + secrets.token_hex(16)
    with open(os.path.join(workdir, "identity.yaml"), "w") as f:
        f.write("apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n"
                "  - resources: [secrets]\n    providers:\n      - identity: {}\n")
    os.chmod(os.path.join(workdir, "identity.yaml"), 0o600)
    put(workdir, key_file, "/registry/secrets/default/plain", canary, os.path.join(workdir, "identity.yaml"))
    assert scan(workdir, [canary])
