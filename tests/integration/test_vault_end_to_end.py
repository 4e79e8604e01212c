"""Issue 11's acceptance script, as a Vault user would write it with unchanged hvac 0.11.2 against
a fresh server with the Shamir seal: initialise, unseal, write policies, create tokens, enable
AppRole, userpass and Kubernetes auth, log in with each and use what each login gave, mount a
KV engine, seal, see every face refuse, unseal, and find everything as it was."""
import os

import hvac
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import rsa

from test_service_accounts import sign
from test_vault_kubernetes_auth import certificate_pem, sa_claims

POLICY = '''
path "kv/app/*" {
  capabilities = ["create", "read", "update", "list"]
}
path "kv/app/admin" {
  capabilities = ["deny"]
}
'''


def test_a_vault_script_runs_unchanged(start_server, workdir):
    cfg = os.path.join(workdir, "sigil.yaml")
    with open(cfg, "w") as f:
        f.write(f"data_dir: {workdir}/data\nseal: {{type: shamir}}\n")
    srv = start_server(["--config", cfg, "--listen", "127.0.0.1:0"])
    c = hvac.Client(url=srv.url, verify=srv.ca)

    assert c.sys.is_initialized() is False
    keys = c.sys.initialize(secret_shares=5, secret_threshold=3)
    c.token = keys["root_token"]
    assert c.sys.is_sealed() is True
    c.sys.submit_unseal_keys(keys["keys"][:3])
    assert c.sys.is_sealed() is False and c.is_authenticated()

    c.sys.create_or_update_policy("app", POLICY)
    assert "app" in c.sys.list_policies()["data"]["policies"]
    c.sys.enable_secrets_engine("kv", path="kv", options={"version": "1"})

    tok = c.auth.token.create(policies=["app"], ttl="1h")["auth"]["client_token"]
    app = hvac.Client(url=srv.url, token=tok, verify=srv.ca)
    app.secrets.kv.v1.create_or_update_secret("app/db", {"password": "s3cret"}, method="POST", mount_point="kv")
    assert app.secrets.kv.v1.read_secret("app/db", mount_point="kv")["data"] == {"password": "s3cret"}
    with pytest.raises(hvac.exceptions.Forbidden):
        app.secrets.kv.v1.read_secret("app/admin", mount_point="kv")

    # AppRole.
    c.sys.enable_auth_method("approle")
    c.auth.approle.create_or_update_approle("web", token_policies=["app"], token_ttl="20m")
    role_id = c.auth.approle.read_role_id("web")["data"]["role_id"]
    secret_id = c.auth.approle.generate_secret_id("web")["data"]["secret_id"]
    a = hvac.Client(url=srv.url, verify=srv.ca)
    login = a.auth.approle.login(role_id, secret_id)["auth"]
    assert login["policies"] == ["app", "default"] and login["lease_duration"] == 1200
    a.token = login["client_token"]
    assert a.secrets.kv.v1.read_secret("app/db", mount_point="kv")["data"]["password"] == "s3cret"

    # userpass.
    c.sys.enable_auth_method("userpass")
    c.auth.userpass.create_or_update_user("dana", password="correct horse", policies=["app"])
    u = hvac.Client(url=srv.url, verify=srv.ca)
    u.auth.userpass.login("dana", "correct horse")
    assert u.is_authenticated()
    assert u.secrets.kv.v1.list_secrets("app", mount_point="kv")["data"]["keys"] == ["db"]
    with pytest.raises(hvac.exceptions.InvalidRequest):
        hvac.Client(url=srv.url, verify=srv.ca).auth.userpass.login("dana", "wrong")

    # Kubernetes, with a service-account JWT signed by the cluster's key.
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    c.sys.enable_auth_method("kubernetes")
    c.auth.kubernetes.configure("https://kubernetes.default.svc", pem_keys=[certificate_pem(key)])
    c.auth.kubernetes.create_role("builder", bound_service_account_names=["builder"],
                                  bound_service_account_namespaces=["team-a"], policies=["app"], ttl="1h")
    k = hvac.Client(url=srv.url, verify=srv.ca)
    k.auth.kubernetes.login("builder", sign(key, "RS256", sa_claims()))
    assert k.secrets.kv.v1.read_secret("app/db", mount_point="kv")["data"]["password"] == "s3cret"
    with pytest.raises(hvac.exceptions.Forbidden):
        hvac.Client(url=srv.url, verify=srv.ca).auth.kubernetes.login("builder", sign(key, "RS256", sa_claims(name="other")))

    # Seal: nothing is served on either face; unseal: everything is back.
    c.sys.seal()
    assert c.sys.is_sealed() is True
    with pytest.raises(hvac.exceptions.VaultDown):
        app.secrets.kv.v1.read_secret("app/db", mount_point="kv")
    r = requests.get(srv.url + "/api/v1/namespaces", headers={"Authorization": "Bearer " + keys["root_token"]},
                     verify=srv.ca, timeout=10)
    assert r.status_code == 503 and r.json()["kind"] == "Status"
    c.sys.submit_unseal_keys(keys["keys_base64"][2:5])
    assert app.secrets.kv.v1.read_secret("app/db", mount_point="kv")["data"]["password"] == "s3cret"
    assert u.is_authenticated() and k.is_authenticated() and a.is_authenticated()
