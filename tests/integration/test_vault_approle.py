"""Vault's AppRole auth method through unchanged hvac 0.11.2: roles, role IDs, secret IDs with
TTLs and use limits (two logins racing for the last use: one wins), lookup and destroy by secret
ID and by accessor, login; options sigil does not enforce yet are refused, not ignored."""
import threading
import time

import hvac
import pytest


@pytest.fixture
def srv(start_server):
    return start_server(["--dev", "--listen", "127.0.0.1:0"])


def test_approle(srv):
    root = hvac.Client(url=srv.url, token=srv.token, verify=srv.ca)
    root.sys.enable_auth_method("approle")
    root.sys.create_or_update_policy("ci", 'path "sys/policy/*" { capabilities = ["read"] }')
    root.auth.approle.create_or_update_approle("build", token_policies=["ci"], token_ttl="20m", secret_id_num_uses=2)
    assert root.auth.approle.read_role("build")["data"]["token_policies"] == ["ci"]
    assert root.auth.approle.list_roles()["data"]["keys"] == ["build"]
    role_id = root.auth.approle.read_role_id("build")["data"]["role_id"]
    made = root.auth.approle.generate_secret_id("build", metadata={"pipeline": "42"})["data"]
    assert made["secret_id_num_uses"] == 2, made
    looked = root.auth.approle.read_secret_id("build", made["secret_id"])["data"]
    assert looked["metadata"] == {"pipeline": "42"} and looked["secret_id_accessor"] == made["secret_id_accessor"]
    assert root.auth.approle.list_secret_id_accessors("build")["data"]["keys"] == [made["secret_id_accessor"]]

    c = hvac.Client(url=srv.url, verify=srv.ca)
    auth = c.auth.approle.login(role_id, made["secret_id"])["auth"]
    assert auth["policies"] == ["ci", "default"] and auth["lease_duration"] == 1200 and auth["metadata"] == {"role_name": "build"}
    assert c.sys.read_policy("ci")["data"]["name"] == "ci"
    c.auth.approle.login(role_id, made["secret_id"])  # the second and last use
    with pytest.raises(hvac.exceptions.InvalidRequest):
        c.auth.approle.login(role_id, made["secret_id"])  # used up
    for rid, sid in [(role_id, "wrong"), ("wrong", made["secret_id"])]:
        with pytest.raises(hvac.exceptions.InvalidRequest) as e:
            hvac.Client(url=srv.url, verify=srv.ca).auth.approle.login(rid, sid)
        assert "invalid role or secret ID" in str(e.value)

    # Two logins racing for the last use of a secret ID: exactly one gets a token.
    root.auth.approle.create_or_update_approle("once", token_policies=["ci"], secret_id_num_uses=1)
    once_role = root.auth.approle.read_role_id("once")["data"]["role_id"]
    for _ in range(5):
        sid = root.auth.approle.generate_secret_id("once")["data"]["secret_id"]
        results = []

        def login():
            try:
                hvac.Client(url=srv.url, verify=srv.ca).auth.approle.login(once_role, sid)
                results.append("ok")
            except hvac.exceptions.InvalidRequest:
                results.append("refused")
        threads = [threading.Thread(target=login) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(results) == ["ok", "refused", "refused", "refused"], results

    # Destroy by accessor; a custom role ID.
    other = root.auth.approle.generate_secret_id("build")["data"]
    root.auth.approle.destroy_secret_id_accessor("build", other["secret_id_accessor"])
    with pytest.raises(hvac.exceptions.InvalidRequest):
        hvac.Client(url=srv.url, verify=srv.ca).auth.approle.login(role_id, other["secret_id"])
    root.auth.approle.update_role_id("build", "my-custom-role-id")
    fresh = root.auth.approle.generate_secret_id("build")["data"]["secret_id"]
    hvac.Client(url=srv.url, verify=srv.ca).auth.approle.login("my-custom-role-id", fresh)
    with pytest.raises(hvac.exceptions.InvalidRequest):
        hvac.Client(url=srv.url, verify=srv.ca).auth.approle.login(role_id, fresh)  # the old role ID is gone

    # Not enforced yet, so refused rather than silently ignored.
    with pytest.raises(hvac.exceptions.InvalidRequest) as e:
        root.auth.approle.create_or_update_approle("cidr", token_policies=["ci"], token_bound_cidrs=["10.0.0.0/8"])
    assert "token_bound_cidrs" in str(e.value)
    with pytest.raises(hvac.exceptions.InvalidRequest):
        root.auth.approle.generate_secret_id("build", cidr_list=["10.0.0.0/8"])
    root.auth.approle.delete_role("build")
    with pytest.raises(hvac.exceptions.InvalidRequest):
        hvac.Client(url=srv.url, verify=srv.ca).auth.approle.login("my-custom-role-id", fresh)


def test_expired_secret_id_is_refused(srv):
    root = hvac.Client(url=srv.url, token=srv.token, verify=srv.ca)
    root.sys.enable_auth_method("approle")
    root.auth.approle.create_or_update_approle("short", token_policies=["default"], secret_id_ttl="1s")
    role_id = root.auth.approle.read_role_id("short")["data"]["role_id"]
    sid = root.auth.approle.generate_secret_id("short")["data"]
    assert sid["secret_id_ttl"] == 1
    time.sleep(2.1)
    with pytest.raises(hvac.exceptions.InvalidRequest) as e:
        hvac.Client(url=srv.url, verify=srv.ca).auth.approle.login(role_id, sid["secret_id"])
    assert "invalid role or secret ID" in str(e.value)
