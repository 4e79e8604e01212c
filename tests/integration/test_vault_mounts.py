"""Secrets engine mounts (sys/mounts: list, enable, read, tune, disable; sys/remount) and auth
mount tuning through unchanged hvac 0.11.2, with the first engine behind them: KV version 1
(read, write, list, delete, its advisory lease_duration, Vault's existence check). Each mount's
data lives under its own uuid: disabling deletes it, remounting keeps it, and its values are
encrypted on disk."""
import os
import secrets

import hvac
import pytest
import requests


@pytest.fixture
def srv(start_server, workdir, key_file):
    return start_server(["--data-dir", workdir + "/data", "--seal-key-file", key_file, "--listen", "127.0.0.1:0"])


def client(s, token):
    return hvac.Client(url=s.url, token=token, verify=s.ca)


def test_mount_table_and_tuning(srv):
    root = client(srv, srv.token)
    mounts = root.sys.list_mounted_secrets_engines()
    assert list(mounts["data"]) == ["kubernetes/", "sys/"] and mounts["sys/"]["type"] == "system"  # sys-injected too
    root.sys.enable_secrets_engine("kv", path="team/kv", description="team secrets", options={"version": "1"},
                                   config={"default_lease_ttl": "1h", "max_lease_ttl": "2h"})
    root.sys.enable_secrets_engine("kv-v1", path="legacy")
    m = root.sys.list_mounted_secrets_engines()["data"]
    assert m["team/kv/"]["type"] == "kv" and m["team/kv/"]["options"] == {"version": "1"}
    assert m["team/kv/"]["accessor"].startswith("kv_") and m["team/kv/"]["config"]["default_lease_ttl"] == 3600
    assert m["legacy/"]["options"] == {"version": "1"} and m["legacy/"]["description"] == ""
    # Vault's refusals.
    for path, kw, msg in [("team", {}, "already in use"), ("team/kv/inner", {}, "already in use"),
                          ("auth/x", {}, "cannot mount"), ("identity", {}, "cannot mount"),
                          ("v3", {"options": {"version": "3"}}, "unknown kv version"),
                          ("bad", {"config": {"default_lease_ttl": "3h", "max_lease_ttl": "2h"}}, "greater than")]:
        with pytest.raises(hvac.exceptions.InvalidRequest, match=msg):
            root.sys.enable_secrets_engine("kv", path=path, **kw)
    with pytest.raises(hvac.exceptions.InvalidRequest, match="not supported"):
        root.sys.enable_secrets_engine("pki", path="pki")
    with pytest.raises(hvac.exceptions.InvalidRequest):
        root.sys.disable_secrets_engine("sys")

    # Tune: effective values, then changed ones.
    tune = root.sys.read_mount_configuration("team/kv")["data"]
    assert tune["default_lease_ttl"] == 3600 and tune["max_lease_ttl"] == 7200 and tune["description"] == "team secrets"
    root.sys.tune_mount_configuration("team/kv", default_lease_ttl="30m", description="renamed")
    tune = root.sys.read_mount_configuration("team/kv")["data"]
    assert tune["default_lease_ttl"] == 1800 and tune["description"] == "renamed"
    legacy = root.sys.read_mount_configuration("legacy")["data"]
    assert legacy["default_lease_ttl"] == 768 * 3600 and legacy["max_lease_ttl"] == 768 * 3600  # the system's
    with pytest.raises(hvac.exceptions.InvalidRequest, match="greater than"):
        root.sys.tune_mount_configuration("team/kv", max_lease_ttl="10m")
    with pytest.raises(hvac.exceptions.InvalidRequest, match="version"):
        root.sys.tune_mount_configuration("team/kv", options={"version": "2"})
    with pytest.raises(hvac.exceptions.InvalidRequest, match="not supported"):
        root.sys.tune_mount_configuration("team/kv", audit_non_hmac_request_keys=["password"])

    # Auth mounts: the lease TTLs of their config and tune bound the tokens their logins make.
    root.sys.enable_auth_method("userpass", path="people", config={"max_lease_ttl": "10m"})
    root.write("auth/people/users/ann", password="pw-ann", policies="default")
    login = client(srv, None).auth_userpass("ann", "pw-ann", mount_point="people")["auth"]
    assert login["lease_duration"] == 600, login
    root.sys.tune_auth_method("people", default_lease_ttl="5m")
    assert root.sys.read_auth_method_tuning("people")["data"]["default_lease_ttl"] == 300
    login = client(srv, None).auth_userpass("ann", "pw-ann", mount_point="people")["auth"]
    assert login["lease_duration"] == 300, login
    with pytest.raises(hvac.exceptions.InvalidRequest):
        root.sys.tune_auth_method("token", default_lease_ttl="5m")  # built in: not tunable yet


def test_kv_v1_engine_existence_check_remount_and_disable(srv, workdir):
    root = client(srv, srv.token)
    root.sys.enable_secrets_engine("kv", path="kv", options={"version": "1"}, config={"default_lease_ttl": "1h"})
    canary = "kv1-canary-" + secrets.token_hex(12)
    root.secrets.kv.v1.create_or_update_secret("app/db", {"password": canary, "ttl": "30m"}, mount_point="kv")
    root.secrets.kv.v1.create_or_update_secret("app/cache", {"url": "redis://x"}, mount_point="kv")
    root.secrets.kv.v1.create_or_update_secret("top", {"a": 1}, mount_point="kv")
    got = root.secrets.kv.v1.read_secret("app/db", mount_point="kv")
    assert got["data"] == {"password": canary, "ttl": "30m"} and got["lease_duration"] == 1800 and not got["renewable"]
    assert root.secrets.kv.v1.read_secret("top", mount_point="kv")["lease_duration"] == 3600  # the mount's default
    assert root.secrets.kv.v1.list_secrets("", mount_point="kv")["data"]["keys"] == ["app/", "top"]
    assert root.secrets.kv.v1.list_secrets("app", mount_point="kv")["data"]["keys"] == ["cache", "db"]
    with pytest.raises(hvac.exceptions.InvalidPath):
        root.secrets.kv.v1.read_secret("nope", mount_point="kv")
    with pytest.raises(hvac.exceptions.InvalidPath):
        root.secrets.kv.v1.list_secrets("empty", mount_point="kv")
    r = requests.post(srv.url + "/v1/kv/empty", headers={"X-Vault-Token": srv.token}, json={}, verify=srv.ca, timeout=10)
    assert r.status_code == 400 and r.json() == {"errors": ["no data provided"]}
    for bad in ["kv/a/%2E%2E/b", "kv/a//b"]:  # requests would resolve a literal ".." itself
        r = requests.post(srv.url + "/v1/" + bad, headers={"X-Vault-Token": srv.token}, json={"x": "y"}, verify=srv.ca, timeout=10)
        assert r.status_code in (400, 404), (bad, r.status_code, r.text)

    # Vault's existence check: a new path needs "create", an existing one "update".
    root.sys.create_or_update_policy("updater", 'path "kv/app/*" { capabilities = ["update", "read"] }')
    root.sys.create_or_update_policy("creator", 'path "kv/app/*" { capabilities = ["create"] }')
    updater = client(srv, root.auth.token.create(policies=["updater"], ttl="1h")["auth"]["client_token"])
    creator = client(srv, root.auth.token.create(policies=["creator"], ttl="1h")["auth"]["client_token"])
    # (method given: without it hvac reads first to choose PUT or POST, and the creator may not read)
    updater.secrets.kv.v1.create_or_update_secret("app/db", {"password": canary}, method="PUT", mount_point="kv")
    with pytest.raises(hvac.exceptions.Forbidden):
        updater.secrets.kv.v1.create_or_update_secret("app/new", {"x": "1"}, method="PUT", mount_point="kv")
    creator.secrets.kv.v1.create_or_update_secret("app/new", {"x": "1"}, method="POST", mount_point="kv")
    with pytest.raises(hvac.exceptions.Forbidden):
        creator.secrets.kv.v1.create_or_update_secret("app/new", {"x": "2"}, method="POST", mount_point="kv")
    with pytest.raises(hvac.exceptions.Forbidden):
        creator.secrets.kv.v1.read_secret("app/new", mount_point="kv")
    root.secrets.kv.v1.delete_secret("app/new", mount_point="kv")
    with pytest.raises(hvac.exceptions.InvalidPath):
        root.secrets.kv.v1.read_secret("app/new", mount_point="kv")

    # The value is encrypted at rest, and the trail holds only its keyed hash.
    for dirpath, _, names in os.walk(workdir):
        for n in names:
            p = os.path.join(dirpath, n)
            if os.path.isfile(p):
                with open(p, "rb") as f:
                    assert canary.encode() not in f.read(), p

    # Remount keeps the data; disabling deletes it (a new mount at the same path is empty).
    root.sys.move_backend("kv", "kv-moved")
    assert root.secrets.kv.v1.read_secret("app/db", mount_point="kv-moved")["data"]["password"] == canary
    with pytest.raises(hvac.exceptions.Forbidden):
        updater.secrets.kv.v1.read_secret("app/db", mount_point="kv-moved")  # its policy named the old path
    root.sys.disable_secrets_engine("kv-moved")
    root.sys.enable_secrets_engine("kv", path="kv-moved", options={"version": "1"})
    with pytest.raises(hvac.exceptions.InvalidPath):
        root.secrets.kv.v1.read_secret("app/db", mount_point="kv-moved")


def test_sys_audit_lists_the_trail_and_refuses_api_changes(srv, workdir):
    root = client(srv, srv.token)
    devices = root.sys.list_enabled_audit_devices()["data"]
    assert devices == {"file/": {"type": "file", "description": "the audit trail",
                                 "options": {"file_path": workdir + "/data/audit/audit.log"}, "local": False,
                                 "path": "file/"}}, devices
    with pytest.raises(hvac.exceptions.InvalidRequest, match="configuration file"):
        root.sys.enable_audit_device("file", path="other", options={"file_path": "/tmp/x.log"})
    with pytest.raises(hvac.exceptions.InvalidRequest, match="configuration file"):
        root.sys.disable_audit_device("file")
    root.sys.create_or_update_policy("auditor", 'path "sys/audit" { capabilities = ["read"] }')
    nosudo = client(srv, root.auth.token.create(policies=["auditor"], ttl="1h")["auth"]["client_token"])
    with pytest.raises(hvac.exceptions.Forbidden):
        nosudo.sys.list_enabled_audit_devices()  # sys/audit needs sudo, as in Vault


def test_mounts_survive_a_restart_and_paths_have_one_spelling(start_server, workdir, key_file):
    """Regressions from a hostile review: (1) a server with any mount could not start again (the
    mount table's watch began at the table's own, long-gone revision); (2) `sys/mounts//prod`
    passed a deny on `sys/mounts/prod*` and deleted the mount; (3) a GET on a KV folder listed
    its keys to a token without "list"; (4) a mount could be moved under its own path."""
    args = ["--data-dir", workdir + "/data", "--seal-key-file", key_file, "--listen", "127.0.0.1:0"]
    s = start_server(args)
    root = client(s, s.token)
    root.sys.enable_secrets_engine("kv", path="prod", options={"version": "1"})
    root.sys.enable_auth_method("userpass", path="people")
    root.secrets.kv.v1.create_or_update_secret("db", {"password": "p"}, mount_point="prod")
    for i in range(30):  # a little history, so the table's revision is well behind the store's
        root.sys.create_or_update_policy(f"p{i}", 'path "x" { capabilities = ["read"] }')
    s.stop()
    s2 = start_server(args)
    root = client(s2, s.token)
    assert root.secrets.kv.v1.read_secret("db", mount_point="prod")["data"] == {"password": "p"}
    assert "people/" in root.sys.list_auth_methods()["data"]

    root.sys.create_or_update_policy("ops", 'path "sys/mounts/*" { capabilities = ["create","read","update","delete"] }\n'
                                            'path "sys/mounts/prod*" { capabilities = ["deny"] }\n'
                                            'path "prod/*" { capabilities = ["read"] }')
    ops = client(s2, root.auth.token.create(policies=["ops"], ttl="1h")["auth"]["client_token"])
    with pytest.raises(hvac.exceptions.Forbidden):
        ops.sys.disable_secrets_engine("prod")
    for bad in ["sys/mounts//prod", "sys/mounts/%2Fprod", "sys/mounts/%2E/prod", "sys/mounts//prod/tune"]:
        r = requests.delete(f"{s2.url}/v1/{bad}", headers={"X-Vault-Token": ops.token}, verify=s2.ca, timeout=10)
        assert r.status_code == 400 and "invalid request path" in r.json()["errors"][0], (bad, r.status_code, r.text)
    assert root.secrets.kv.v1.read_secret("db", mount_point="prod")["data"] == {"password": "p"}
    r = requests.get(f"{s2.url}/v1/prod/", headers={"X-Vault-Token": ops.token}, verify=s2.ca, timeout=10)
    assert r.status_code == 404 and r.json() == {"errors": []}, r.text  # a read of a folder lists nothing
    with pytest.raises(hvac.exceptions.Forbidden):
        ops.secrets.kv.v1.list_secrets("", mount_point="prod")
    with pytest.raises(hvac.exceptions.InvalidRequest, match="existing mount"):
        root.sys.move_backend("prod", "prod/sub")
