"""ServiceAccounts and TokenRequest (issue 16): the real kubectl creates service accounts and
`kubectl create token` gets a JWT that sigil signs, that sigil's own authenticator and the Vault
face's Kubernetes auth method accept, that anyone can verify from the published JWKS, and that
stops working when its service account is deleted."""
import base64
import json
import os
import subprocess
import time

import hvac
import pytest
import requests
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

KUBECTL = "/usr/bin/kubectl"


def b64url(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def parts(token):
    h, c, sig = token.split(".")
    return json.loads(b64url(h)), json.loads(b64url(c)), b64url(sig), (h + "." + c).encode()


@pytest.fixture
def srv(start_server, workdir):
    s = start_server(["--dev", "--listen", "127.0.0.1:0"])
    s.env = dict(os.environ, KUBECONFIG=os.path.join(os.path.dirname(s.ca), "kubeconfig"), HOME=workdir)
    return s


def kubectl(s, *args, check=True, token=None):
    extra = ["--token", token] if token else []
    env = dict(s.env)
    if token:  # the token alone, not the kubeconfig's client certificate
        env["KUBECONFIG"] = os.path.join(os.path.dirname(s.ca), "token-only")
        with open(env["KUBECONFIG"], "w") as f:
            f.write(f"apiVersion: v1\nkind: Config\nclusters: [{{name: c, cluster: {{server: '{s.url}', "
                    f"certificate-authority: '{s.ca}'}}}}]\ncontexts: [{{name: c, context: {{cluster: c, user: u}}}}]\n"
                    f"current-context: c\nusers: [{{name: u, user: {{}}}}]\n")
    r = subprocess.run([KUBECTL, *extra, *args], capture_output=True, text=True, env=env, timeout=60)
    if check:
        assert r.returncode == 0, (args, r.stderr)
    return r


def test_service_accounts_with_kubectl(srv):
    # Every namespace has its default service account, new ones included.
    assert kubectl(srv, "get", "sa", "-o", "name").stdout.split() == ["serviceaccount/default"]
    kubectl(srv, "create", "namespace", "team-a")
    assert "default" in kubectl(srv, "get", "serviceaccounts", "-n", "team-a").stdout
    kubectl(srv, "create", "serviceaccount", "app")
    out = kubectl(srv, "get", "sa", "app").stdout.split("\n")
    assert out[0].split() == ["NAME", "SECRETS", "AGE"] and out[1].split()[:2] == ["app", "0"], out
    obj = json.loads(kubectl(srv, "get", "sa", "app", "-o", "json").stdout)
    assert obj["kind"] == "ServiceAccount" and obj["metadata"]["uid"]
    kubectl(srv, "patch", "sa", "app", "-p", '{"automountServiceAccountToken": false}')
    assert json.loads(kubectl(srv, "get", "sa", "app", "-o", "json").stdout)["automountServiceAccountToken"] is False
    assert "serviceaccount/app" in kubectl(srv, "get", "sa", "-A", "-o", "name").stdout
    r = kubectl(srv, "create", "serviceaccount", "Bad_Name", check=False)
    assert r.returncode != 0 and "Invalid value" in r.stderr


def test_create_token_is_signed_accepted_and_dies_with_its_account(srv):
    kubectl(srv, "create", "serviceaccount", "app")
    uid = json.loads(kubectl(srv, "get", "sa", "app", "-o", "json").stdout)["metadata"]["uid"]
    token = kubectl(srv, "create", "token", "app", "--audience=vault", "--duration=10m").stdout.strip()
    header, claims, sig, signed = parts(token)
    assert header["alg"] == "ES256" and header["kid"]
    assert claims["aud"] == ["vault"] and claims["sub"] == "system:serviceaccount:default:app"
    assert claims["kubernetes.io"] == {"namespace": "default", "serviceaccount": {"name": "app", "uid": uid}}
    assert claims["exp"] - claims["iat"] == 600 and claims["nbf"] == claims["iat"] and claims["jti"]
    # Anyone can verify it from the published discovery document and keys.
    conf = requests.get(srv.url + "/.well-known/openid-configuration", headers=srv.auth, verify=srv.ca, timeout=10).json()
    assert conf["issuer"] == claims["iss"] and conf["jwks_uri"].endswith("/openid/v1/jwks")
    assert conf["id_token_signing_alg_values_supported"] == ["ES256"]
    jwks = requests.get(srv.url + "/openid/v1/jwks", headers=srv.auth, verify=srv.ca, timeout=10).json()
    (key,) = [k for k in jwks["keys"] if k["kid"] == header["kid"]]
    pub = ec.EllipticCurvePublicNumbers(int.from_bytes(b64url(key["x"]), "big"), int.from_bytes(b64url(key["y"]), "big"),
                                        ec.SECP256R1()).public_key()
    der_sig = encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))
    pub.verify(der_sig, signed, ec.ECDSA(hashes.SHA256()))  # raises if the signature is wrong
    # The API's own audience authenticates to the Kubernetes face; another audience does not.
    api_token = kubectl(srv, "create", "token", "app").stdout.strip()
    who = kubectl(srv, "auth", "whoami", "-o", "json", token=api_token).stdout
    info = json.loads(who)["status"]["userInfo"]
    assert info["username"] == "system:serviceaccount:default:app" and info["uid"] == uid
    assert "system:serviceaccounts:default" in info["groups"]
    assert kubectl(srv, "auth", "whoami", token=token, check=False).returncode != 0
    # The Vault face's Kubernetes auth method, configured with the published key, logs it in.
    root = hvac.Client(url=srv.url, token=srv.token, verify=srv.ca)
    root.sys.enable_auth_method("kubernetes")
    pem = pub.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    r = requests.post(srv.url + "/v1/auth/kubernetes/config", headers={"X-Vault-Token": srv.token}, verify=srv.ca, timeout=10,
                      json={"kubernetes_host": srv.url, "pem_keys": [pem]})
    assert r.status_code == 204, r.text
    root.auth.kubernetes.create_role("app", bound_service_account_names=["app"], bound_service_account_namespaces=["default"],
                                     policies=["default"], ttl="1h")
    auth = hvac.Client(url=srv.url, verify=srv.ca).auth.kubernetes.login("app", token)["auth"]
    assert auth["metadata"]["service_account_uid"] == uid
    # Deleting the service account ends its tokens; one made again under the name gets none of them.
    kubectl(srv, "delete", "sa", "app")
    assert kubectl(srv, "auth", "whoami", token=api_token, check=False).returncode != 0
    kubectl(srv, "create", "serviceaccount", "app")
    assert kubectl(srv, "auth", "whoami", token=api_token, check=False).returncode != 0
    assert "system:serviceaccount:default:app" in kubectl(srv, "auth", "whoami", token=kubectl(srv, "create", "token", "app").stdout.strip()).stdout


def test_token_requests_are_checked(srv, start_server):
    url = srv.url + "/api/v1/namespaces/default/serviceaccounts/{}/token"

    def ask(name, spec):
        return requests.post(url.format(name), headers=srv.auth, verify=srv.ca, timeout=10,
                             json={"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec})

    r = ask("default", {"expirationSeconds": 60})
    assert r.status_code == 422 and "may not specify a duration less than 10 minutes" in r.json()["message"]
    r = ask("default", {"boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": "p"}})
    assert r.status_code == 422 and "spec.boundObjectRef" in r.json()["message"]
    r = ask("nobody", {})
    assert r.status_code == 404 and r.json()["reason"] == "NotFound"
    r = ask("default", {})
    assert r.status_code == 201 and r.json()["status"]["token"].count(".") == 2
    body = r.json()
    assert body["kind"] == "TokenRequest" and body["spec"]["expirationSeconds"] == 3600
    assert body["spec"]["audiences"] == [parts(body["status"]["token"])[1]["iss"]]
    # Issuing needs create on serviceaccounts/token: a caller without it is refused.
    r = requests.post(srv.url + "/sigil/v1/tokens", json={"user": "nobody"}, headers=srv.auth, verify=srv.ca, timeout=10)
    nobody = {"Authorization": "Bearer " + r.json()["token"]}
    r = requests.post(url.format("default"), headers=nobody, verify=srv.ca, timeout=10, json={"spec": {}})
    assert r.status_code == 403 and 'cannot create resource "serviceaccounts/token"' in r.json()["message"]
