"""Kubernetes service-account JWTs (RS256, ES256) verified against configured public keys (PEM
files and a JWKS file), as kube-apiserver verifies them. The tokens are made here with
python3-cryptography, independently of sigil; each negative case of the issue gets 401 and a
TokenReview that says why."""
import base64
import json
import os
import time

import pytest
import requests
from cryptography.hazmat.primitives import hashes, hmac, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

ISSUER = "https://kubernetes.default.svc.cluster.local"


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def kube_kid(public_key):
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    h = hashes.Hash(hashes.SHA256())
    h.update(der)
    return b64(h.finalize())


def claims(**over):
    now = int(time.time())
    c = {"iss": ISSUER, "aud": [ISSUER], "sub": "system:serviceaccount:team-a:builder", "exp": now + 600, "iat": now,
         "nbf": now, "jti": "j-1",
         "kubernetes.io": {"namespace": "team-a", "serviceaccount": {"name": "builder", "uid": "sa-uid-1"},
                           "pod": {"name": "builder-0", "uid": "pod-uid-1"}}}
    c.update(over)
    return {k: v for k, v in c.items() if v is not None}


def sign(key, alg, body, kid=None, header=None):
    h = header or {"alg": alg, "typ": "JWT"}
    if kid:
        h["kid"] = kid
    signing_input = (b64(json.dumps(h).encode()) + "." + b64(json.dumps(body).encode())).encode()
    if alg == "RS256":
        sig = key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
    elif alg == "ES256":
        r, s = decode_dss_signature(key.sign(signing_input, ec.ECDSA(hashes.SHA256())))
        sig = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    elif alg == "HS256":  # the classic confusion: the public key used as an HMAC secret
        mac = hmac.HMAC(key, hashes.SHA256())
        mac.update(signing_input)
        sig = mac.finalize()
    else:
        sig = b""
    return signing_input.decode() + "." + b64(sig)


@pytest.fixture(scope="module")
def keys():
    return {"rsa": rsa.generate_private_key(public_exponent=65537, key_size=2048),
            "ec": ec.generate_private_key(ec.SECP256R1()),
            "ec_jwks": ec.generate_private_key(ec.SECP256R1()),
            "other": rsa.generate_private_key(public_exponent=65537, key_size=2048)}


@pytest.fixture(scope="module")
def srv(keys, tmp_path_factory):
    from conftest import Server
    d = tmp_path_factory.mktemp("sa")
    pem = d / "sa.pub"
    pem.write_bytes(b"".join(keys[k].public_key().public_bytes(serialization.Encoding.PEM,
                                                                serialization.PublicFormat.SubjectPublicKeyInfo)
                             for k in ("rsa", "ec")))
    nums = keys["ec_jwks"].public_key().public_numbers()
    jwks = d / "jwks.json"
    jwks.write_text(json.dumps({"keys": [{"kty": "EC", "crv": "P-256", "kid": "jwks-key", "use": "sig",
                                          "x": b64(nums.x.to_bytes(32, "big")), "y": b64(nums.y.to_bytes(32, "big"))}]}))
    cfg = d / "c.yaml"
    cfg.write_text(f"auth:\n  service_accounts:\n    issuers: [{ISSUER}]\n    key_files: [{pem}]\n    jwks_files: [{jwks}]\n")
    s = Server(["--dev", "--listen", "127.0.0.1:0", "--config", str(cfg)])
    yield s
    s.stop()


def call(s, token):
    # /api: every authenticated caller may read discovery (system:discovery), so 200 means
    # "authenticated" here; what a service account may do beyond that is RBAC's (test_rbac.py).
    return requests.get(s.url + "/api", verify=s.ca, headers={"Authorization": "Bearer " + token}, timeout=10)


def review(s, token):
    r = requests.post(s.url + "/apis/authentication.k8s.io/v1/tokenreviews", verify=s.ca, headers=s.auth, timeout=10,
                      json={"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": token}})
    assert r.status_code == 201
    return r.json()["status"]


def test_valid_tokens_rs256_es256_jwks(srv, keys):
    for key, alg, kid in [(keys["rsa"], "RS256", kube_kid(keys["rsa"].public_key())), (keys["ec"], "ES256", None),
                          (keys["ec_jwks"], "ES256", "jwks-key")]:
        token = sign(key, alg, claims(), kid=kid)
        assert call(srv, token).status_code == 200, alg
        st = review(srv, token)
        assert st["authenticated"] is True
        u = st["user"]
        assert u["username"] == "system:serviceaccount:team-a:builder" and u["uid"] == "sa-uid-1"
        assert u["groups"] == ["system:serviceaccounts", "system:serviceaccounts:team-a", "system:authenticated"]
        assert u["extra"]["authentication.kubernetes.io/pod-name"] == ["builder-0"]
        assert u["extra"]["authentication.kubernetes.io/credential-id"] == ["JTI=j-1"]
    # A plain string audience is accepted too; expiry within the 60 s leeway still passes.
    assert call(srv, sign(keys["rsa"], "RS256", claims(aud=ISSUER, exp=int(time.time()) - 30))).status_code == 200


def test_negative_cases(srv, keys):
    now = int(time.time())
    rsa_pub_pem = keys["rsa"].public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    good = sign(keys["rsa"], "RS256", claims())
    head, body, sig = good.split(".")
    cases = {
        "alg none": sign(None, "none", claims(), header={"alg": "none", "typ": "JWT"}),
        "alg none with a signature": sign(None, "none", claims(), header={"alg": "none", "typ": "JWT"}) + "AAAA",
        "HS256 with the public key": sign(rsa_pub_pem, "HS256", claims()),
        "expired": sign(keys["rsa"], "RS256", claims(exp=now - 3600)),
        "no expiry": sign(keys["rsa"], "RS256", claims(exp=None)),
        "not yet valid": sign(keys["rsa"], "RS256", claims(nbf=now + 3600)),
        "wrong issuer": sign(keys["rsa"], "RS256", claims(iss="https://evil.example")),
        "wrong audience": sign(keys["rsa"], "RS256", claims(aud=["vault"])),
        "bad signature": head + "." + body + "." + sig[:-4] + ("AAAA" if sig[-4:] != "AAAA" else "BBBB"),
        "signed by another key": sign(keys["other"], "RS256", claims()),
        "unknown kid": sign(keys["rsa"], "RS256", claims(), kid="nope"),
        "claims swapped after signing": head + "." + b64(json.dumps(claims(sub="system:serviceaccount:kube-system:admin")).encode()) + "." + sig,
        "sub not a service account": sign(keys["rsa"], "RS256", claims(sub="admin")),
        "namespace claim disagrees": sign(keys["rsa"], "RS256", claims(**{"kubernetes.io": {"namespace": "other"}})),
        "two segments": head + "." + body,
        "four segments": good + ".x",
        "empty segment": head + ".." + sig,
        "not base64url": head + ".!!!." + sig,
        "padded base64": head + "." + body + "=." + sig,
        "header not JSON": b64(b"{nope") + "." + body + "." + sig,
        "ES256 signature wrong size": sign(keys["ec"], "ES256", claims()) + "AAAA",
    }
    reasons = {"alg none": "segments", "alg none with a signature": "not accepted", "HS256 with the public key": "not accepted", "expired": "expired",
               "no expiry": "no expiry", "not yet valid": "not valid yet", "wrong issuer": "issuer",
               "wrong audience": "audience", "bad signature": "does not verify", "unknown kid": "kid",
               "two segments": "invalid bearer token", "claims swapped after signing": "does not verify"}
    for i, (name, token) in enumerate(cases.items()):
        st = review(srv, token)
        assert st["authenticated"] is False and st["error"], name
        assert reasons.get(name, "") in st["error"], (name, st["error"])
        assert token not in st["error"]
        if i < 4:  # as a credential too (only a few: repeated failures are slowed down by design)
            assert call(srv, token).status_code == 401, name
    assert call(srv, good).status_code == 200  # the control
