"""The Shamir seal through unchanged hvac 0.11.2, kubectl and `sigil operator`: an uninitialised
and a sealed server serve nothing on either face (503 in each face's format); sys/init makes the
key shares and the root token; sys/unseal takes shares (hex or base64) until the threshold, refuses
wrong ones and resets; sys/seal (sudo) seals at once and ends open watches; the data survives seal,
unseal and restart; sys/rekey replaces the shares, sys/rotate adds a keyring term. Neither shares
nor the root token reach the disk, the logs or the audit trail, and after sealing the server's
memory holds no share and no decrypted Secret value."""
import base64
import json
import os
import secrets
import subprocess
import threading
import time

import hvac
import pytest
import requests

from conftest import SIGIL, Server, run, token_kubeconfig
from test_memory_wipe import found_in


def shamir_config(workdir):
    cfg = os.path.join(workdir, "shamir.yaml")
    with open(cfg, "w") as f:
        f.write(f"data_dir: {workdir}/data\nseal: {{type: shamir}}\n")
    return cfg


@pytest.fixture
def sealed(start_server, workdir):
    cfg = shamir_config(workdir)
    return start_server(["--config", cfg, "--listen", "127.0.0.1:0"]), cfg


def vault(s, token=None):
    return hvac.Client(url=s.url, token=token, verify=s.ca)


def health(s, method="GET"):
    return requests.request(method, s.url + "/v1/sys/health", verify=s.ca, timeout=10).status_code


def kube_get(s, token, path="/api/v1/namespaces/default/secrets"):
    return requests.get(s.url + path, headers={"Authorization": "Bearer " + token} if token else {}, verify=s.ca, timeout=10)


def files_under(root):
    for dirpath, _, names in os.walk(root):
        for n in names:
            p = os.path.join(dirpath, n)
            if os.path.isfile(p):
                with open(p, "rb") as f:
                    yield p, f.read()


def forms(raw):
    """A share or token as it could be written: raw, hex (either case) and base64."""
    return {raw, raw.hex().encode(), raw.hex().upper().encode(), base64.b64encode(raw)}


def test_uninitialised_and_sealed_server_serves_nothing_then_unseals(sealed, workdir):
    s, _ = sealed
    v = vault(s)
    status = v.sys.read_seal_status()
    assert status["initialized"] is False and status["sealed"] is True and status["type"] == "shamir"
    assert health(s) == 501 and health(s, "HEAD") == 501
    assert requests.get(s.url + "/readyz", verify=s.ca, timeout=10).status_code == 503
    assert requests.get(s.url + "/livez", verify=s.ca, timeout=10).status_code == 200
    # Both faces: 503 in their own formats, whatever the credentials.
    r = kube_get(s, None)
    assert r.status_code == 503 and r.json()["kind"] == "Status" and r.json()["reason"] == "ServiceUnavailable"
    assert "sealed" in r.json()["message"]
    r = requests.get(s.url + "/v1/sys/policy", verify=s.ca, timeout=10)
    assert r.status_code == 503 and r.json() == {"errors": ["Vault is sealed"]}
    assert r.headers["Content-Type"] == "application/json"
    with pytest.raises(hvac.exceptions.InvalidRequest, match="not initialized"):
        v.sys.submit_unseal_key("00" * 33)

    with pytest.raises(hvac.exceptions.InvalidRequest, match="larger than"):
        v.sys.initialize(2, 3)
    init = v.sys.initialize(5, 3)
    assert sorted(init) == ["keys", "keys_base64", "root_token"]
    assert len(init["keys"]) == 5 and all(len(bytes.fromhex(k)) == 33 for k in init["keys"])
    assert [base64.b64decode(k).hex() for k in init["keys_base64"]] == init["keys"]
    with pytest.raises(hvac.exceptions.InvalidRequest, match="already initialized"):
        v.sys.initialize(5, 3)
    # Initialised, still sealed.
    assert v.sys.read_seal_status()["sealed"] is True
    assert health(s) == 503
    assert kube_get(s, init["root_token"]).status_code == 503

    # Progress, reset, a repeated share counting once.
    st = v.sys.submit_unseal_key(init["keys"][0])
    assert st["progress"] == 1 and st["t"] == 3 and st["n"] == 5 and st["nonce"]
    assert v.sys.submit_unseal_key(init["keys"][0])["progress"] == 1
    assert v.sys.submit_unseal_key(reset=True)["progress"] == 0
    # A wrong share: refused when the threshold is reached, and the progress starts over.
    v.sys.submit_unseal_key(init["keys"][1])
    v.sys.submit_unseal_key(init["keys"][2])
    with pytest.raises(hvac.exceptions.InvalidRequest, match="Unseal failed, invalid key"):
        v.sys.submit_unseal_key(secrets.token_bytes(33).hex())
    assert v.sys.read_seal_status()["progress"] == 0
    with pytest.raises(hvac.exceptions.InvalidRequest, match="invalid key"):
        v.sys.submit_unseal_key(secrets.token_bytes(20).hex())  # wrong length: never counted
    assert v.sys.read_seal_status()["progress"] == 0
    # Any three, in any encoding.
    v.sys.submit_unseal_key(init["keys_base64"][4])
    v.sys.submit_unseal_key(init["keys"][1])
    st = v.sys.submit_unseal_key(init["keys_base64"][3])
    assert st["sealed"] is False and st["progress"] == 0 and st["cluster_id"]
    assert health(s) == 200 and v.sys.read_health_status(method="GET")["sealed"] is False
    assert requests.get(s.url + "/readyz", verify=s.ca, timeout=10).status_code == 200

    # The root token works on both faces.
    root = vault(s, init["root_token"])
    assert root.sys.read_policy("root")["data"]["name"] == "root"
    kc = token_kubeconfig(os.path.join(workdir, "kc"), s, init["root_token"])
    run(["kubectl", "--kubeconfig", kc, "create", "secret", "generic", "db", "--from-literal=password=hunter2-seal"])
    leader = root.sys.read_leader_status()
    assert leader["ha_enabled"] is False


def init_and_unseal(s, shares=3, threshold=2):
    v = vault(s)
    init = v.sys.initialize(shares, threshold)
    v.sys.submit_unseal_keys(init["keys"][:threshold])
    return init


def test_seal_needs_sudo_ends_watches_and_keeps_data(sealed, workdir):
    s, cfg = sealed
    init = init_and_unseal(s)
    root = vault(s, init["root_token"])
    kc = token_kubeconfig(os.path.join(workdir, "kc"), s, init["root_token"])
    run(["kubectl", "--kubeconfig", kc, "create", "secret", "generic", "db", "--from-literal=password=keep-me"])
    root.sys.create_or_update_policy("ops", 'path "sys/seal" { capabilities = ["update"] }')
    ops = vault(s, root.auth.token.create(policies=["ops"], ttl="1h")["auth"]["client_token"])
    with pytest.raises(hvac.exceptions.Forbidden):
        ops.sys.seal()  # update without sudo
    assert ops.sys.read_seal_status()["sealed"] is False

    # A watch open across the seal ends (its stream is closed), and kubectl sees the end.
    watch = subprocess.Popen(["kubectl", "--kubeconfig", kc, "get", "secrets", "-w", "--request-timeout=0"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(1.0)
    assert root.sys.seal().status_code == 204
    assert vault(s).sys.read_seal_status()["sealed"] is True
    watch.wait(timeout=15)
    r = kube_get(s, init["root_token"])
    assert r.status_code == 503
    r = kubectl_fail(kc, ["get", "secret", "db"])
    assert "sealed" in r.stderr, r.stderr
    with pytest.raises(hvac.exceptions.VaultDown):
        root.sys.list_policies()

    # Unsealed again: the data is there, the root token still valid.
    vault(s).sys.submit_unseal_keys(init["keys_base64"][1:3])
    out = run(["kubectl", "--kubeconfig", kc, "get", "secret", "db", "-o", "jsonpath={.data.password}"]).stdout
    assert base64.b64decode(out) == b"keep-me"

    # A restart comes back sealed; the same shares unseal it.
    s.stop()
    s2 = Server(["--config", cfg, "--listen", "127.0.0.1:%d" % s.port])
    try:
        assert vault(s2).sys.read_seal_status()["sealed"] is True
        vault(s2).sys.submit_unseal_keys(init["keys"][:2])
        out = run(["kubectl", "--kubeconfig", kc, "get", "secret", "db", "-o", "jsonpath={.data.password}"]).stdout
        assert base64.b64decode(out) == b"keep-me"
    finally:
        s2.stop()


def kubectl_fail(kc, args):
    r = run(["kubectl", "--kubeconfig", kc] + args, check=False)
    assert r.returncode != 0
    return r


def test_rekey_and_rotate(sealed):
    s, _ = sealed
    init = init_and_unseal(s, 3, 2)
    v = vault(s)
    root = vault(s, init["root_token"])
    status = v.sys.read_rekey_progress()
    assert status["started"] is False and status["required"] == 2
    started = v.sys.start_rekey(secret_shares=5, secret_threshold=3)
    assert started["started"] is True and started["n"] == 5 and started["t"] == 3 and started["required"] == 2
    with pytest.raises(hvac.exceptions.InvalidRequest, match="already in progress"):
        v.sys.start_rekey(secret_shares=2, secret_threshold=2)
    with pytest.raises(hvac.exceptions.InvalidRequest, match="nonce"):
        v.sys.rekey(init["keys"][0], nonce="not-the-nonce")
    step = v.sys.rekey(init["keys"][0], nonce=started["nonce"])
    assert step["progress"] == 1 and "keys" not in step
    # Cancel, and start again: progress is gone.
    v.sys.cancel_rekey()
    assert v.sys.read_rekey_progress()["started"] is False
    started = v.sys.start_rekey(secret_shares=5, secret_threshold=3)
    done = v.sys.rekey_multi(init["keys"][1:3], nonce=started["nonce"])
    assert done["complete"] is True and len(done["keys"]) == 5 and len(done["keys_base64"]) == 5
    assert v.sys.read_seal_status()["n"] == 5 and v.sys.read_seal_status()["t"] == 3

    # Rotation: a new keyring term, online; sudo needed.
    term = root.sys.get_encryption_key_status()["data"]["term"]
    root.sys.rotate_encryption_key()
    assert root.sys.get_encryption_key_status()["data"]["term"] == term + 1
    root.sys.create_or_update_policy("reader", 'path "sys/rotate" { capabilities = ["update"] }')
    reader = vault(s, root.auth.token.create(policies=["reader"], ttl="1h")["auth"]["client_token"])
    with pytest.raises(hvac.exceptions.Forbidden):
        reader.sys.rotate_encryption_key()

    root.sys.seal()
    with pytest.raises(hvac.exceptions.InvalidRequest, match="invalid key"):
        v.sys.submit_unseal_keys(init["keys"][:3])  # the old shares, three now needed
    assert v.sys.submit_unseal_keys(done["keys"][2:5])["sealed"] is False
    # Sealed, rekey is not served.
    root.sys.seal()
    with pytest.raises(hvac.exceptions.VaultDown):
        v.sys.read_rekey_progress()


def test_shares_and_root_token_never_reach_disk_logs_or_trail_and_leave_memory(sealed, workdir):
    s, _ = sealed
    init = init_and_unseal(s, 3, 2)
    root = vault(s, init["root_token"])
    canary = b"seal-canary-" + secrets.token_hex(16).encode()
    r = requests.post(s.url + "/api/v1/namespaces/default/secrets", verify=s.ca, timeout=10,
                      headers={"Authorization": "Bearer " + init["root_token"]},
                      json={"metadata": {"name": "c"}, "data": {"v": base64.b64encode(canary).decode()}})
    assert r.status_code == 201, r.text
    for _ in range(3):
        assert kube_get(s, init["root_token"], "/api/v1/namespaces/default/secrets/c").status_code == 200
    root.sys.seal()
    # Both shares handed in and the one that was not; the root token.
    secrets_ = [bytes.fromhex(k) for k in init["keys"]] + [init["root_token"].encode()]
    time.sleep(0.5)  # the teardown runs right after the seal's answer
    for path, data in list(files_under(workdir)) + [("server log", s.logs().encode())]:
        for sec in secrets_:
            for f in forms(sec):
                assert f not in data, f"{path} holds a share or the root token"
    if os.geteuid() == 0:
        for sec in [bytes.fromhex(k) for k in init["keys"][:2]] + [canary]:
            assert found_in(s.proc.pid, sec) == [], "a sealed server still holds a share or a Secret value"


def test_operator_commands(sealed):
    s, _ = sealed
    env = dict(os.environ, VAULT_ADDR=s.url, VAULT_CACERT=s.ca)
    env.pop("VAULT_TOKEN", None)
    st = run([SIGIL, "operator", "status"], check=False, env=env)
    assert st.returncode == 2 and "Initialized        false" in st.stdout, st.stdout
    out = run([SIGIL, "operator", "init", "--key-shares", "3", "--key-threshold", "2"], env=env).stdout
    keys = [l.split(": ", 1)[1] for l in out.splitlines() if l.startswith("Unseal Key ")]
    token = next(l.split(": ", 1)[1] for l in out.splitlines() if l.startswith("Initial Root Token: "))
    assert len(keys) == 3
    again = run([SIGIL, "operator", "init"], check=False, env=env)
    assert again.returncode != 0 and "already initialized" in again.stderr
    out = run([SIGIL, "operator", "unseal", keys[0]], env=env).stdout
    assert "Unseal Progress    1/2" in out, out
    # From standard input, as an operator pipes it from a password manager.
    out = subprocess.run([SIGIL, "operator", "unseal", "-"], input=keys[2] + "\n", capture_output=True, text=True,
                         env=env, timeout=30)
    assert out.returncode == 0 and "Sealed             false" in out.stdout, out.stdout + out.stderr
    assert run([SIGIL, "operator", "status", "--json"], env=env).stdout.startswith("{")
    denied = run([SIGIL, "operator", "seal"], check=False, env=env)
    assert denied.returncode != 0 and "permission denied" in denied.stderr
    assert "sealed" in run([SIGIL, "operator", "seal", "--token", token], env=env).stdout
    assert run([SIGIL, "operator", "status"], check=False, env=env).returncode == 2
    bad = run([SIGIL, "operator", "unseal", "zz"], check=False, env=env)
    assert bad.returncode != 0 and "hex or base64" in bad.stderr


def test_key_file_server_reports_itself_unsealed(start_server, workdir, key_file):
    s = start_server(["--data-dir", workdir + "/kf", "--seal-key-file", key_file, "--listen", "127.0.0.1:0"])
    v = vault(s)
    st = v.sys.read_seal_status()
    assert st["type"] == "key-file" and st["initialized"] is True and st["sealed"] is False
    with pytest.raises(hvac.exceptions.InvalidRequest, match="already initialized"):
        v.sys.initialize(1, 1)
    root = vault(s, s.token)
    root.sys.seal()
    assert v.sys.read_seal_status()["sealed"] is True
    with pytest.raises(hvac.exceptions.InvalidRequest, match="restart"):
        v.sys.submit_unseal_key("00" * 32)
    with pytest.raises(hvac.exceptions.VaultDown):
        v.sys.start_rekey()
