"""Auth methods on the Vault face through unchanged hvac 0.11.2: the auth table (sys/auth
list, enable, disable; sudo to change it) and userpass (users with Argon2id password hashes,
policies, login to an orphan token holding them). Passwords never reach disk, logs or the
audit trail in the clear."""
import os
import secrets

import hvac
import pytest
import requests


@pytest.fixture
def srv(workdir, start_server):
    cfg = os.path.join(workdir, "audit.yaml")
    policy = os.path.join(workdir, "policy.yaml")
    with open(policy, "w") as f:
        f.write("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: RequestResponse\n")
    with open(cfg, "w") as f:
        f.write(f"audit: {{log_path: {workdir}/audit.log, policy_file: {policy}}}\n")
    s = start_server(["--dev", "--listen", "127.0.0.1:0", "--config", cfg, "--log-level", "debug"])
    s.workdir = workdir
    return s


def client(s, token=None):
    return hvac.Client(url=s.url, token=token, verify=s.ca)


def test_userpass_end_to_end(srv):
    root = client(srv, srv.token)
    methods = root.sys.list_auth_methods()
    assert methods["data"]["token/"]["type"] == "token" and methods["token/"]["type"] == "token"
    root.sys.enable_auth_method("userpass", description="people")
    assert root.sys.list_auth_methods()["data"]["userpass/"]["type"] == "userpass"
    with pytest.raises(hvac.exceptions.InvalidRequest):
        root.sys.enable_auth_method("userpass")  # already in use
    with pytest.raises(hvac.exceptions.InvalidRequest):
        root.sys.enable_auth_method("ldap")  # not built: refused, not pretended

    root.sys.create_or_update_policy("app", 'path "sys/policy/*" { capabilities = ["read"] }')
    # An auth method never makes a root token (a user-admin could otherwise mint root).
    root.auth.userpass.create_or_update_user("boss", "pw-boss-1234", policies=["ROOT"])
    with pytest.raises(hvac.exceptions.InvalidRequest) as e:
        client(srv).auth.userpass.login("boss", "pw-boss-1234")
    assert "auth methods cannot create root tokens" in str(e.value)
    root.auth.userpass.delete_user("boss")
    password = "pw-" + secrets.token_hex(16)
    root.auth.userpass.create_or_update_user("Alice", password, policies=["app"])
    assert root.auth.userpass.list_user()["data"]["keys"] == ["alice"]
    user = root.auth.userpass.read_user("alice")["data"]
    assert user["token_policies"] == ["app"] and "password" not in str(user) and "argon2" not in str(user)

    alice = client(srv)
    login = alice.auth.userpass.login("alice", password)["auth"]
    assert login["policies"] == ["app", "default"] and login["metadata"] == {"username": "alice"}
    assert login["orphan"] is True and login["lease_duration"] == 768 * 3600
    assert alice.token == login["client_token"] and alice.is_authenticated()
    assert alice.sys.read_policy("app")["data"]["name"] == "app"
    me = alice.auth.token.lookup_self()["data"]
    assert me["display_name"] == "userpass-alice" and me["path"] == "auth/userpass/login/alice"

    for name, pw in [("alice", "wrong"), ("nobody", password)]:
        with pytest.raises(hvac.exceptions.InvalidRequest) as e:
            client(srv).auth.userpass.login(name, pw)
        assert "invalid username or password" in str(e.value)
    root.auth.userpass.update_password_on_user("alice", "new-" + password)
    with pytest.raises(hvac.exceptions.InvalidRequest):
        client(srv).auth.userpass.login("alice", password)
    client(srv).auth.userpass.login("alice", "new-" + password)

    # A non-root token may not change the auth table (sys/auth/* needs sudo).
    with pytest.raises(hvac.exceptions.Forbidden):
        alice.sys.enable_auth_method("userpass", path="mine")
    root.auth.userpass.delete_user("alice")
    with pytest.raises(hvac.exceptions.InvalidRequest):
        client(srv).auth.userpass.login("alice", "new-" + password)
    root.sys.disable_auth_method("userpass")
    assert "userpass/" not in root.sys.list_auth_methods()["data"]
    with pytest.raises(hvac.exceptions.InvalidRequest):
        root.sys.disable_auth_method("token")

    # The password is nowhere in the clear: not in the audit trail (every string hashed), not in
    # the debug log, not on disk.
    srv.stop()
    trail = open(os.path.join(srv.workdir, "audit.log")).read()
    assert "/v1/auth/userpass/login/alice" in trail
    assert password not in trail and password not in srv.logs()
    for dirpath, _, files in os.walk(srv.workdir):
        for f in files:
            with open(os.path.join(dirpath, f), "rb") as fh:
                assert password.encode() not in fh.read(), f


def test_login_needs_no_token_and_a_mount(srv):
    r = requests.post(srv.url + "/v1/auth/userpass/login/alice", json={"password": "x"}, verify=srv.ca, timeout=10)
    assert r.status_code == 403, r.text  # no such mount: not a login path, so a token is needed
    client(srv, srv.token).sys.enable_auth_method("userpass")
    r = requests.post(srv.url + "/v1/auth/userpass/login/alice", json={"password": "x"}, verify=srv.ca, timeout=10)
    assert r.status_code == 400 and r.json() == {"errors": ["invalid username or password"]}, r.text
