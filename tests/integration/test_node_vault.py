"""The Vault face through an unchanged JavaScript client: the npm package node-vault, pinned in
tests/node/package.json (and package-lock.json), driven by tests/node/vault_client.js, which
runs one scenario and prints what each node-vault call returned as JSON. Covers sys/health,
ACL policies through sys/policy (add, get, list, remove, a policy that does not parse), and a
Vault token's life: create with policies and a TTL, lookup-self, renew-self, revoke-self, then
refused; permission denied for a token without rights, and 404 for a path nothing serves; the
Shamir seal (init, status, unseal with a wrong share, seal) with a KV version 1 mount; and the
userpass, AppRole and Kubernetes logins through node-vault's own helpers.

Needs node and npm (Debian's nodejs and npm; scripts/install-deps.sh installs them). The
first run installs node-vault with `npm ci` into tests/node/node_modules (not committed),
which needs the npm registry; later runs reuse it."""
import json
import os
import shutil
import subprocess

import pytest

from conftest import ROOT

NODE_DIR = os.path.join(ROOT, "tests", "node")
with open(os.path.join(NODE_DIR, "package.json")) as _f:
    NODE_VAULT_VERSION = json.load(_f)["dependencies"]["node-vault"]


def _installed_node_vault():
    try:
        with open(os.path.join(NODE_DIR, "node_modules", "node-vault", "package.json")) as f:
            return json.load(f)["version"]
    except (OSError, ValueError, KeyError):
        return None


@pytest.fixture(scope="session")
def node_vault():
    """node and node-vault ready in tests/node: runs `npm ci` once when node_modules lacks the
    pinned node-vault. Fails (does not skip) when node, npm or the registry is missing."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        pytest.fail("node and npm are needed for the node-vault tests (Debian packages nodejs and npm; "
                    "run scripts/install-deps.sh)")
    if _installed_node_vault() != NODE_VAULT_VERSION:
        try:
            r = subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=NODE_DIR, capture_output=True,
                               text=True, timeout=600)
        except subprocess.TimeoutExpired:
            pytest.fail("`npm ci` in tests/node did not finish within 600 s: is the npm registry reachable?")
        if r.returncode != 0:
            pytest.fail(f"`npm ci` in tests/node failed (exit {r.returncode}); node-vault {NODE_VAULT_VERSION} "
                        f"must be installed from the npm registry (is it reachable? is a proxy needed?)\n"
                        f"stdout: {r.stdout}\nstderr: {r.stderr}")
        if _installed_node_vault() != NODE_VAULT_VERSION:
            pytest.fail(f"`npm ci` did not install node-vault {NODE_VAULT_VERSION} in {NODE_DIR}/node_modules")
    return node


@pytest.fixture
def srv(start_server):
    return start_server(["--dev", "--listen", "127.0.0.1:0"])


def scenario(node, srv, name, token=None, extra_env=None):
    """Runs one scenario of vault_client.js against `srv`; returns its JSON result."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("VAULT_") and k.lower() not in ("http_proxy", "https_proxy", "all_proxy")}
    env.update(VAULT_ADDR=srv.url, VAULT_TOKEN=token or srv.token or "", NODE_EXTRA_CA_CERTS=srv.ca,
               NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost", **(extra_env or {}))
    r = subprocess.run([node, "vault_client.js", name], cwd=NODE_DIR, env=env, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, f"vault_client.js {name} exited {r.returncode}\nstdout: {r.stdout}\nstderr: {r.stderr}"
    try:
        return json.loads(r.stdout)
    except ValueError:
        raise AssertionError(f"vault_client.js {name} printed no JSON: {r.stdout!r}\nstderr: {r.stderr}")


def ok(step):
    """The value a node-vault call resolved with (fails with the error it rejected with)."""
    assert step["ok"], f"node-vault call failed: {step}"
    return step["value"]


def err(step, status):
    """The message of the error a node-vault call rejected with, after checking its status."""
    assert not step["ok"], f"expected HTTP {status}, the call succeeded: {step}"
    assert step["status"] == status, step
    return step["message"]


def test_health(node_vault, srv):
    r = scenario(node_vault, srv, "health")
    h = ok(r["health"])
    assert h["initialized"] is True and h["sealed"] is False and h["standby"] is False, h
    assert isinstance(h["server_time_utc"], int) and h["version"], h
    # node-vault resolves sys/health whatever its status; the body comes with a custom code.
    c = ok(r["custom_code"])
    assert c["initialized"] is True and c["sealed"] is False, c


HCL = '''# written by node-vault
path "secret/data/web/*" {
  capabilities = ["read", "list"]
}

path "secret/data/web/admin" {
  capabilities = ["deny"]
}
'''


def test_policies(node_vault, srv):
    r = scenario(node_vault, srv, "policies")
    assert ok(r["add"]) == ""  # 204: node-vault resolves with the empty body
    got = ok(r["get"])
    assert got["name"] == "node-web" and got["rules"] == HCL, got  # the legacy route's top-level copy
    assert got["data"] == {"name": "node-web", "rules": HCL}, got
    listed = ok(r["list"])
    assert {"node-web", "default", "root"} <= set(listed["policies"]), listed
    assert listed["keys"] == listed["policies"] == listed["data"]["policies"], listed
    assert "node-web" in ok(r["list_acl"])["data"]["keys"]  # LIST verb
    assert "node-web" in ok(r["list_acl_get"])["data"]["keys"]  # GET ?list=1
    # A policy that does not parse: 400 naming the line, and nothing stored.
    msg = err(r["bad"], 400)
    assert "line 2" in msg and "raed" in msg, msg
    assert err(r["get_bad"], 404) == "Status 404"  # {"errors": []}: node-vault has no message
    assert ok(r["remove"]) == ""
    assert err(r["get_removed"], 404) == "Status 404"
    assert "node-web" not in ok(r["list_after"])["policies"]
    assert err(r["remove_default"], 400), r["remove_default"]


def test_token_create_lookup_renew_revoke(node_vault, srv):
    r = scenario(node_vault, srv, "tokens")
    assert ok(r["add_policy"]) == ""
    made = ok(r["create"])
    auth = made["auth"]
    tok = auth["client_token"]
    assert tok.startswith("hvs.") and auth["policies"] == ["default", "node-app"], auth  # sorted, as Vault's
    assert auth["token_policies"] == auth["policies"] and auth["lease_duration"] == 3600, auth
    assert auth["renewable"] is True and auth["metadata"] == {"team": "web"}, auth
    assert r["root_client_switched"] is True  # node-vault's tokenSource: the client now holds the new token
    me = ok(r["lookup_self"])["data"]
    assert me["id"] == tok and me["accessor"] == auth["accessor"], me
    assert me["policies"] == ["default", "node-app"] and me["display_name"] == "token-node", me
    assert me["path"] == "auth/token/create" and me["meta"] == {"team": "web"}, me
    assert 3590 <= me["ttl"] <= 3600 and me["creation_ttl"] == 3600 and me["renewable"] is True, me
    # What its policies allow, and what they do not.
    assert ok(r["read_allowed"])["name"] == "node-app"
    assert "permission denied" in err(r["write_denied"], 403)
    # renew-self: without an increment the TTL starts again from its original length; with one,
    # the increment counts from now.
    renewed = ok(r["renew_self"])["auth"]
    assert renewed["client_token"] == tok and 3590 <= renewed["lease_duration"] <= 3600, renewed
    renewed = ok(r["renew_self_2h"])["auth"]
    assert 7190 <= renewed["lease_duration"] <= 7200, renewed
    assert r["client_token_after_renew"] is True
    assert 7190 <= ok(r["lookup_after_renew"])["data"]["ttl"] <= 7200
    # revoke-self: 204, then the token is refused everywhere.
    assert ok(r["revoke_self"]) == ""
    for step in ["lookup_after_revoke", "read_after_revoke", "renew_after_revoke"]:
        assert "permission denied" in err(r[step], 403), (step, r[step])


def test_token_without_rights_is_denied(node_vault, srv):
    r = scenario(node_vault, srv, "denied")
    auth = ok(r["create"])["auth"]
    assert auth["policies"] == ["default"] and auth["lease_duration"] == 600, auth
    for step in ["policies", "get_policy", "add_policy", "unknown", "bogus_token"]:
        msg = err(r[step], 403)
        assert "permission denied" in msg, (step, r[step])
        assert r[step]["body"]["errors"][0] == msg, r[step]
    # "default" lets a token look itself up.
    assert ok(r["lookup_self"])["data"]["policies"] == ["default"]


def test_unknown_path_is_404(node_vault, srv):
    r = scenario(node_vault, srv, "unknown")
    for step in ["read", "write", "delete"]:
        msg = err(r[step], 404)
        assert msg == 'no handler for route "no/such/mount". route entry not found.', (step, r[step])


def test_init_unseal_seal_and_kv(node_vault, start_server, workdir):
    cfg = os.path.join(workdir, "shamir.yaml")
    with open(cfg, "w") as f:
        f.write(f"data_dir: {workdir}/data\nseal: {{type: shamir}}\n")
    srv = start_server(["--config", cfg, "--listen", "127.0.0.1:0"])
    r = scenario(node_vault, srv, "seal")
    assert ok(r["initialized_before"]) == {"initialized": False}
    assert ok(r["status_before"])["sealed"] is True
    init = ok(r["init"])
    assert len(init["keys"]) == 3 and len(init["keys_base64"]) == 3 and init["root_token"]
    assert err(r["sealed_read"], 503) == "Vault is sealed"
    assert ok(r["unseal_1"])["progress"] == 1
    assert "Unseal failed, invalid key" in err(r["unseal_wrong"], 400)  # the threshold reached: progress reset
    assert ok(r["unseal_2"])["progress"] == 1 and ok(r["unseal_2"])["sealed"] is True
    assert ok(r["unseal_3"])["sealed"] is False
    assert "root" in ok(r["policies"])["policies"]
    assert ok(r["mount"]) == ""
    assert ok(r["mounts"])["kv/"]["options"] == {"version": "1"}
    assert ok(r["read"])["data"] == {"password": "node-secret"}
    assert ok(r["seal"]) == ""
    assert ok(r["status_sealed"])["sealed"] is True
    assert err(r["read_sealed"], 503) == "Vault is sealed"
    assert ok(r["unseal_again_2"])["sealed"] is False
    assert ok(r["read_again"])["data"] == {"password": "node-secret"}


def test_auth_method_logins(node_vault, srv):
    from cryptography.hazmat.primitives.asymmetric import rsa
    from test_service_accounts import sign
    from test_vault_kubernetes_auth import certificate_pem, sa_claims
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    env = {"KUBE_PEM": certificate_pem(key), "KUBE_JWT": sign(key, "RS256", sa_claims()),
           "KUBE_OTHER_JWT": sign(key, "RS256", sa_claims(name="intruder"))}
    r = scenario(node_vault, srv, "auth", extra_env=env)
    for step in ["policy", "enable_userpass", "enable_approle", "enable_kubernetes", "user", "role", "kube_config",
                 "kube_role"]:
        assert r[step]["ok"], (step, r[step])
    assert {"token/", "userpass/", "approle/", "kubernetes/"} <= set(ok(r["auths"])["data"])
    for login, use in [("userpass_login", "userpass_use"), ("approle_login", "approle_use"), ("kube_login", "kube_use")]:
        assert r[login]["ok"], (login, r[login])
        auth = r[login]["value"]["auth"]
        assert auth["client_token"].startswith("hvs.") and auth["policies"] == ["default", "node-login"], (login, auth)
        assert ok(r[use])["name"] == "node-login", use  # node-vault switched to the login's token
    assert err(r["userpass_wrong"], 400) == "invalid username or password"
    assert err(r["approle_wrong"], 400), r["approle_wrong"]
    assert "not authorized" in err(r["kube_wrong"], 403), r["kube_wrong"]


def test_kv2_and_transit(node_vault, srv):
    r = scenario(node_vault, srv, "kv2_transit")
    assert ok(r["write_1"])["data"]["version"] == 1
    assert ok(r["write_2"])["data"]["version"] == 2
    assert "did not match" in err(r["write_cas_stale"], 400)
    assert ok(r["patch"])["data"]["version"] == 3  # node-vault's update(): PATCH, merge-patch+json
    got = ok(r["read"])["data"]
    assert got["data"] == {"password": "three"} and got["metadata"]["version"] == 3, got
    assert ok(r["read_v1"])["data"]["data"] == {"user": "app", "password": "one"}
    assert ok(r["list"])["data"]["keys"] == ["app"]
    meta = ok(r["metadata"])["data"]
    assert meta["current_version"] == 3 and sorted(meta["versions"]) == ["1", "2", "3"], meta
    assert ok(r["delete_latest"]) == ""
    assert err(r["read_deleted"], 404) == "Status 404"
    ok(r["mount_transit"])
    ok(r["create_key"])
    ct = ok(r["encrypt"])["data"]["ciphertext"]
    assert ct.startswith("vault:v1:")
    assert ok(r["decrypt"])["data"]["plaintext"] == "bm9kZSBzZWNyZXQ="  # base64("node secret")
    assert "invalid ciphertext" in err(r["decrypt_bad"], 400)
    assert ok(r["k8s_write"])["data"]["version"] == 1
    assert ok(r["k8s_patch"])["data"]["version"] == 2
    got = ok(r["k8s_read"])["data"]
    assert got["data"] == {"pw": "js-one", "extra": "e"} and got["metadata"]["version"] == 2, got
    assert "node-app" in ok(r["k8s_list"])["data"]["keys"]
    # The same object on the Kubernetes face.
    import base64
    import requests
    obj = requests.get(srv.url + "/api/v1/namespaces/default/secrets/node-app", headers=srv.auth, verify=srv.ca, timeout=10).json()
    assert obj["type"] == "Opaque" and base64.b64decode(obj["data"]["pw"]) == b"js-one"
