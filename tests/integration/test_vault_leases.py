"""Leases (sys/leases) through unchanged hvac 0.11.2. Every token that expires has a lease, so
the server deletes an expired token by itself (its accessor leaves auth/token/accessors), also
when it expired while the server was down; a renewed token's lease follows it; revoking a
token ends its lease; lookup, list (sudo), revoke, revoke-prefix and revoke-force (sudo),
tidy, and the refusals (a token's lease is renewed through auth/token/renew)."""
import time

import hvac
import pytest
import requests

from conftest import wait_for


@pytest.fixture
def srv(start_server):
    return start_server(["--dev", "--listen", "127.0.0.1:0"])


def client(s, token=None):
    return hvac.Client(url=s.url, token=token or s.token, verify=s.ca)


def accessors(root):
    listed = root.list("auth/token/accessors")
    return set(listed["data"]["keys"]) if listed else set()


def token_leases(root):
    """The leases under auth/token/create/ (hvac answers an empty listing with None or 404)."""
    try:
        listed = root.sys.list_leases("auth/token/create/")
    except hvac.exceptions.InvalidPath:
        return []
    return listed["data"]["keys"] if listed else []



def test_expired_tokens_are_revoked_by_the_server(srv):
    root = client(srv)
    short = root.auth.token.create(policies=["default"], ttl="2s")["auth"]
    lasting = root.auth.token.create(policies=["default"], ttl="1h")["auth"]
    leases = root.sys.list_leases("auth/token/create/")["data"]["keys"]
    assert len(leases) == 2 and all(k.startswith("h") for k in leases), leases
    infos = [root.sys.read_lease("auth/token/create/" + k)["data"] for k in leases]
    assert sorted(i["ttl"] <= 2 for i in infos) == [False, True], infos
    assert all(i["renewable"] is False and i["issue_time"].endswith("Z") for i in infos)
    assert short["accessor"] in accessors(root)
    # Within a poll of its expiry the server deletes it: no record, no accessor, no lease.
    assert wait_for(lambda: short["accessor"] not in accessors(root))
    assert lasting["accessor"] in accessors(root)
    assert len(root.sys.list_leases("auth/token/create/")["data"]["keys"]) == 1


def test_renewal_moves_the_lease_and_revocation_ends_it(srv):
    root = client(srv)
    made = root.auth.token.create(policies=["default"], ttl="3s", explicit_max_ttl="1h")["auth"]
    lease = "auth/token/create/" + root.sys.list_leases("auth/token/create/")["data"]["keys"][0]
    client(srv, made["client_token"]).auth.token.renew_self(increment="600s")
    info = root.sys.read_lease(lease)["data"]
    assert info["ttl"] > 500 and info["last_renewal"] is not None, info
    time.sleep(4)  # past the first expiry: the renewed token is still there
    assert made["accessor"] in accessors(root)
    with pytest.raises(hvac.exceptions.InvalidRequest, match="auth/token/renew"):
        root.sys.renew_lease(lease, increment=60)
    # sys/leases/revoke ends the token at once.
    root.sys.revoke_lease(lease)
    assert made["accessor"] not in accessors(root)
    with pytest.raises(hvac.exceptions.Forbidden):
        client(srv, made["client_token"]).auth.token.lookup_self()
    with pytest.raises(hvac.exceptions.InvalidRequest, match="invalid lease"):
        root.sys.read_lease(lease)
    # Revoking a token through auth/token ends its lease too.
    other = root.auth.token.create(policies=["default"], ttl="1h")["auth"]
    root.auth.token.revoke_accessor(other["accessor"])
    assert wait_for(lambda: not token_leases(root))


def test_prefix_force_sudo_and_tidy(srv):
    root = client(srv)
    for _ in range(3):
        root.auth.token.create(policies=["default"], ttl="1h")
    root.sys.create_or_update_policy("leases", 'path "sys/leases/*" { capabilities = ["create", "read", "update", "list"] }')
    no_sudo = client(srv, root.auth.token.create(policies=["leases"], ttl="1h")["auth"]["client_token"])
    with pytest.raises(hvac.exceptions.Forbidden):
        no_sudo.sys.list_leases("auth/token/create/")
    for path in ("sys/leases/lookup", "sys/leases/lookup/"):  # both spellings are root-protected
        r = requests.request("LIST", srv.url + "/v1/" + path, headers={"X-Vault-Token": no_sudo.token}, verify=srv.ca, timeout=10)
        assert r.status_code == 403, (path, r.text)
    with pytest.raises(hvac.exceptions.Forbidden):
        no_sudo.sys.revoke_prefix("auth/token/create")
    before = accessors(root)
    root.sys.revoke_prefix("auth/token/create")
    assert wait_for(lambda: len(accessors(root)) <= len(before) - 4)  # the three and no_sudo's own
    made = root.auth.token.create(policies=["default"], ttl="1h")["auth"]
    root.sys.revoke_force("auth/token/create")  # the lease goes; the token is not asked
    assert token_leases(root) == []
    assert made["accessor"] in accessors(root)
    r = root.write("sys/leases/tidy")
    assert r["warnings"][0] == "tidy fixed 0 lease index entries", r


def test_an_expiry_during_a_restart_is_not_lost(start_server, workdir, key_file):
    args = ["--data-dir", workdir + "/data", "--seal-key-file", key_file, "--listen", "127.0.0.1:0"]
    s = start_server(args)
    root = client(s)
    made = root.auth.token.create(policies=["default"], ttl="3s")["auth"]
    assert made["accessor"] in accessors(root)
    s.stop()
    time.sleep(4)
    s2 = start_server(args)
    root2 = hvac.Client(url=s2.url, token=s.token, verify=s2.ca)
    assert wait_for(lambda: made["accessor"] not in accessors(root2))


def test_a_queued_revocation_cannot_be_renewed_away(srv):
    root = client(srv)
    made = root.auth.token.create(policies=["default"], ttl="1h", explicit_max_ttl="2h")["auth"]
    lease = "auth/token/create/" + token_leases(root)[0]
    root.write("sys/leases/revoke", lease_id=lease, sync=False)
    with pytest.raises((hvac.exceptions.InvalidRequest, hvac.exceptions.Forbidden)):
        client(srv, made["client_token"]).auth.token.renew_self(increment="2h")
    assert wait_for(lambda: made["accessor"] not in accessors(root))
