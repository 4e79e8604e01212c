"""The Vault face through an unchanged client (Debian's python3-hvac 0.11.2): ACL policies in
HCL and JSON, capabilities, health, Vault's errors; one identity on both faces (the root token
and a token-file user reach the Vault face with the same credentials they use with kubectl)."""
import json
import os

import hvac
import pytest
import requests

from conftest import token_file_config

HCL = '''# apps may read their own secrets
path "secret/data/app/*" {
  capabilities = ["read", "list"]
}

path "secret/data/app/admin" {
  capabilities = ["deny"]
}
'''


@pytest.fixture
def srv(workdir, start_server):
    cfg = token_file_config(workdir, "tok-alice,alice,u-alice\n")
    return start_server(["--dev", "--listen", "127.0.0.1:0", "--config", cfg])


def client(s, token):
    return hvac.Client(url=s.url, token=token, verify=s.ca)


def test_policies_round_trip_in_hcl_and_json(srv):
    c = client(srv, srv.token)
    c.sys.create_or_update_policy("app-read", HCL)
    c.sys.create_or_update_policy("json-pol", {"path": {"kv/*": {"capabilities": ["create", "update"]}}})
    policies = c.sys.list_policies()["data"]["policies"]
    assert {"app-read", "json-pol", "default", "root"} <= set(policies), policies
    assert c.sys.read_policy("app-read")["data"]["rules"] == HCL
    assert json.loads(c.sys.read_policy("json-pol")["data"]["rules"]) == {"path": {"kv/*": {"capabilities": ["create", "update"]}}}
    c.sys.delete_policy("json-pol")
    assert "json-pol" not in c.sys.list_policies()["data"]["policies"]
    with pytest.raises(hvac.exceptions.InvalidPath):
        c.sys.read_policy("json-pol")


def test_bad_policy_is_invalid_request_with_its_line(srv):
    c = client(srv, srv.token)
    with pytest.raises(hvac.exceptions.InvalidRequest) as e:
        c.sys.create_or_update_policy("broken", 'path "a/*" {\n  capabilities = ["raed"]\n}\n')
    assert "line 2" in str(e.value), str(e.value)
    with pytest.raises(hvac.exceptions.InvalidPath):
        c.sys.read_policy("broken")
    with pytest.raises(hvac.exceptions.InvalidRequest):
        c.sys.delete_policy("default")


def test_capabilities_follow_policy_precedence(srv):
    c = client(srv, srv.token)
    c.sys.create_or_update_policy("app-read", HCL)
    caps = c.sys.get_capabilities(paths=["secret/data/app/db", "secret/data/app/admin", "sys/seal"])
    assert caps["secret/data/app/db"] == ["root"]  # the root token holds "root"
    # A token-file user holds only "default" on the Vault face.
    alice = client(srv, "tok-alice")
    caps = alice.sys.get_capabilities(paths=["sys/capabilities-self", "secret/data/app/db"])
    assert caps["sys/capabilities-self"] == ["update"], caps
    assert caps["secret/data/app/db"] == ["deny"], caps
    with pytest.raises(hvac.exceptions.Forbidden):
        alice.sys.list_policies()


def test_bad_and_missing_tokens_are_forbidden_in_vaults_format(srv):
    for token in ["not-a-token", ""]:
        r = requests.get(srv.url + "/v1/sys/policy", verify=srv.ca, timeout=10,
                         headers={"X-Vault-Token": token} if token else {})
        assert r.status_code == 403, r.text
        assert r.headers["Content-Type"] == "application/json"  # hvac compares it as a string
        assert r.json() == {"errors": ["permission denied"]}
    with pytest.raises(hvac.exceptions.Forbidden):
        client(srv, "not-a-token").sys.list_policies()


def test_health_is_unauthenticated(srv):
    h = client(srv, None).sys.read_health_status(method="GET")
    assert h["initialized"] is True and h["sealed"] is False and h["standby"] is False, h
    r = requests.head(srv.url + "/v1/sys/health", verify=srv.ca, timeout=10)
    assert r.status_code == 200
    r = requests.get(srv.url + "/v1/sys/health?activecode=204", verify=srv.ca, timeout=10)
    assert r.status_code == 204


def test_unknown_paths_and_bodies(srv):
    h = {"X-Vault-Token": srv.token}
    r = requests.get(srv.url + "/v1/no/such/mount", verify=srv.ca, headers=h, timeout=10)
    assert r.status_code == 404 and r.headers["Content-Type"] == "application/json", r.text
    assert "no handler for route" in r.json()["errors"][0]
    r = requests.put(srv.url + "/v1/sys/policy/x", verify=srv.ca, headers=h, data="{not json", timeout=10)
    assert r.status_code == 400 and r.json()["errors"], r.text
    r = requests.request("LIST", srv.url + "/v1/sys/policies/acl", verify=srv.ca, headers=h, timeout=10)
    assert r.status_code == 200 and "default" in r.json()["data"]["keys"], r.text
