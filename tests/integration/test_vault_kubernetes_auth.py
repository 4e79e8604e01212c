"""Vault's Kubernetes auth method through unchanged hvac 0.11.2: config with the cluster's
service-account signing keys (PEM), roles binding service-account names and namespaces (globs)
to policies, login with a service-account JWT verified locally (no API server is called), and
every refusal: another signer, an expired token, the wrong namespace or name, the wrong
audience, an unknown role."""
import datetime
import time

import hvac
import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from test_service_accounts import sign

ISSUER = "https://kubernetes.default.svc.cluster.local"


def sa_claims(ns="team-a", name="builder", uid="sa-uid-1", **over):
    now = int(time.time())
    c = {"iss": ISSUER, "aud": ["vault"], "sub": f"system:serviceaccount:{ns}:{name}", "exp": now + 600, "iat": now,
         "nbf": now, "kubernetes.io": {"namespace": ns, "serviceaccount": {"name": name, "uid": uid}}}
    c.update(over)
    return c


def certificate_pem(key):
    """A self-signed certificate around the signing key: hvac 0.11.2 sends pem_keys only in
    certificate form (Vault takes the key out of a certificate, as sigil does)."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "service-account-signer")])
    now = datetime.datetime.utcnow()
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(days=1)).sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM).decode()


@pytest.fixture(scope="module")
def signer():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def srv(start_server):
    return start_server(["--dev", "--listen", "127.0.0.1:0"])


def test_kubernetes_login(srv, signer):
    root = hvac.Client(url=srv.url, token=srv.token, verify=srv.ca)
    root.sys.enable_auth_method("kubernetes")
    pem = certificate_pem(signer)
    root.auth.kubernetes.configure("https://10.0.0.1:443", pem_keys=[pem], token_reviewer_jwt="never-stored")
    cfg = root.auth.kubernetes.read_config()  # hvac returns the data
    assert cfg["pem_keys"] == [pem] and "token_reviewer_jwt" not in cfg
    root.sys.create_or_update_policy("builder", 'path "sys/policy/*" { capabilities = ["read"] }')
    root.auth.kubernetes.create_role("ci", bound_service_account_names=["builder", "deploy-*"],
                                     bound_service_account_namespaces=["team-*"], policies=["builder"], ttl="1h")
    assert root.auth.kubernetes.read_role("ci")["token_policies"] == ["builder"]  # hvac returns the data
    assert root.auth.kubernetes.list_roles()["keys"] == ["ci"]

    c = hvac.Client(url=srv.url, verify=srv.ca)
    auth = c.auth.kubernetes.login("ci", sign(signer, "RS256", sa_claims()))["auth"]
    assert auth["policies"] == ["builder", "default"] and auth["lease_duration"] == 3600, auth
    assert auth["metadata"] == {"role": "ci", "service_account_name": "builder", "service_account_namespace": "team-a",
                                "service_account_secret_name": "", "service_account_uid": "sa-uid-1"}
    assert c.is_authenticated() and c.sys.read_policy("builder")["data"]["name"] == "builder"
    c.auth.kubernetes.login("ci", sign(signer, "RS256", sa_claims(ns="team-b", name="deploy-web")))  # globs

    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    refusals = [
        ("ci", sign(other, "RS256", sa_claims()), hvac.exceptions.Forbidden, "permission denied"),
        ("ci", sign(signer, "RS256", sa_claims(exp=int(time.time()) - 3600)), hvac.exceptions.Forbidden, "permission denied"),
        ("ci", sign(signer, "RS256", sa_claims(ns="prod")), hvac.exceptions.Forbidden, "namespace not authorized"),
        ("ci", sign(signer, "RS256", sa_claims(name="intruder")), hvac.exceptions.Forbidden, "service account name not authorized"),
        ("nope", sign(signer, "RS256", sa_claims()), hvac.exceptions.InvalidRequest, 'invalid role name "nope"'),
        ("ci", "not-a-jwt", hvac.exceptions.Forbidden, "permission denied"),
    ]
    for role, jwt, exc, msg in refusals:
        with pytest.raises(exc) as e:
            hvac.Client(url=srv.url, verify=srv.ca).auth.kubernetes.login(role, jwt)
        assert msg in str(e.value), (role, str(e.value))
    # A role with an audience accepts only tokens made for it.
    # (hvac 0.11.2 has no audience argument: the request as Vault's API documents it.)
    r = requests.post(srv.url + "/v1/auth/kubernetes/role/aud", headers={"X-Vault-Token": srv.token}, verify=srv.ca,
                      timeout=10, json={"bound_service_account_names": "*", "bound_service_account_namespaces": "*",
                                        "token_policies": "builder", "audience": "sigil"})
    assert r.status_code == 204, r.text
    with pytest.raises(hvac.exceptions.Forbidden):
        hvac.Client(url=srv.url, verify=srv.ca).auth.kubernetes.login("aud", sign(signer, "RS256", sa_claims()))
    hvac.Client(url=srv.url, verify=srv.ca).auth.kubernetes.login("aud", sign(signer, "RS256", sa_claims(aud=["sigil"])))
    # A config without keys is refused: sigil verifies locally and calls no API server.
    with pytest.raises(hvac.exceptions.InvalidRequest):
        root.auth.kubernetes.configure("https://10.0.0.1:443")
