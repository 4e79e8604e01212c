"""sigil-csi-provider (issue 18): the Secrets Store CSI driver's provider protocol spoken exactly
as the driver speaks it (gRPC /v1alpha1.CSIDriverProvider/Version and Mount on a unix socket,
with the driver's attributes: SecretProviderClass parameters, pod info and the pod's
service-account token), encoded here by hand from the upstream .proto, so the test does not
share code with the provider. Each mount reads with the pod's own token: what its service
account may read, no more."""
import base64
import json
import os
import signal
import subprocess
import time

import grpc
import hvac
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from conftest import BIN, wait_for

PROVIDER = os.path.join(BIN, "sigil-csi-provider")


# ---- protobuf by hand (provider/v1alpha1/service.proto) -------------------------------------

def varint(n):
    out = b""
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def field(num, data):
    if isinstance(data, str):
        data = data.encode()
    return varint((num << 3) | 2) + varint(len(data)) + data


def read_varint(buf, i):
    n = shift = 0
    while True:
        b = buf[i]
        i += 1
        n |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return n, i


def fields(buf):
    """(number, value) pairs: bytes for length-delimited fields, int for varints."""
    i, out = 0, []
    while i < len(buf):
        tag, i = read_varint(buf, i)
        num, wire = tag >> 3, tag & 7
        if wire == 0:
            v, i = read_varint(buf, i)
        elif wire == 2:
            n, i = read_varint(buf, i)
            v, i = buf[i:i + n], i + n
        else:
            raise AssertionError(f"unexpected wire type {wire}")
        out.append((num, v))
    return out


def mount_request(attributes, permission="420", target="/var/lib/kubelet/pods/x/volumes/csi/mount"):
    return field(1, json.dumps(attributes)) + field(2, "null") + field(3, target) + field(4, permission)


def parse_mount_response(buf):
    resp = {"versions": {}, "files": {}, "error": None}
    for num, v in fields(buf):
        if num == 1:
            f = dict(fields(v))
            resp["versions"][f.get(1, b"").decode()] = f.get(2, b"").decode()
        elif num == 2:
            resp["error"] = dict(fields(v)).get(1, b"").decode()
        elif num == 3:
            f = dict(fields(v))
            resp["files"][f.get(1, b"").decode()] = (f.get(2, 0), f.get(3, b""))
    return resp


class Driver:
    """What the CSI driver does: dial unix:<socket> and call Version and Mount."""

    def __init__(self, socket_path):
        self.channel = grpc.insecure_channel("unix:" + socket_path)
        ident = lambda b: b  # noqa: E731
        self.version = self.channel.unary_unary("/v1alpha1.CSIDriverProvider/Version", request_serializer=ident, response_deserializer=ident)
        self.mount = self.channel.unary_unary("/v1alpha1.CSIDriverProvider/Mount", request_serializer=ident, response_deserializer=ident)

    def Mount(self, attributes, permission="420"):
        return parse_mount_response(self.mount(mount_request(attributes, permission), timeout=30))


# ---- set-up ----------------------------------------------------------------------------------

@pytest.fixture
def srv(start_server, workdir):
    return start_server(["--dev", "--listen", "127.0.0.1:0"])


@pytest.fixture
def provider(srv, workdir):
    sock = os.path.join(workdir, "sigil.sock")
    log = open(os.path.join(workdir, "provider.log"), "w+")
    proc = subprocess.Popen([PROVIDER, "--socket", sock, "--server", srv.url, "--ca-file", srv.ca], stdout=log, stderr=log)
    assert wait_for(lambda: os.path.exists(sock), 10), open(log.name).read()
    proc.log_path = log.name
    proc.socket = sock
    yield proc
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)


def api(s, method, path, body=None):
    r = requests.request(method, s.url + path, json=body, headers=s.auth, verify=s.ca, timeout=10)
    assert r.status_code in (200, 201, 204), (path, r.status_code, r.text)
    return r.json() if r.content else None


def setup_pod_identity(s, ns="default", sa="app", resource_names=None, audience=None):
    """A service account that may get the named Secrets, and a token for it, as the CSIDriver's
    tokenRequests would have the kubelet make: for the Kubernetes face with an audience sigil's
    API accepts (its issuer, the default), for a Vault login with the role's audience."""
    api(s, "POST", f"/api/v1/namespaces/{ns}/serviceaccounts", {"metadata": {"name": sa}})
    rule = {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}
    if resource_names:
        rule["resourceNames"] = resource_names
    api(s, "POST", f"/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/roles", {"metadata": {"name": sa}, "rules": [rule]})
    api(s, "POST", f"/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/rolebindings",
        {"metadata": {"name": sa}, "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": sa},
         "subjects": [{"kind": "ServiceAccount", "name": sa, "namespace": ns}]})
    tr = api(s, "POST", f"/api/v1/namespaces/{ns}/serviceaccounts/{sa}/token",
             {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
              "spec": {"expirationSeconds": 3600, **({"audiences": [audience]} if audience else {})}})
    return tr["status"]["token"]


def audience_of(token):
    claims = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
    return claims["aud"][0] if isinstance(claims["aud"], list) else claims["aud"]


def attributes(token, objects, ns="default", **params):
    a = {"secretProviderClass": "spc", "csi.storage.k8s.io/pod.name": "app-0", "csi.storage.k8s.io/pod.namespace": ns,
         "csi.storage.k8s.io/pod.uid": "5f0e1c4e-0000-4000-8000-000000000001", "csi.storage.k8s.io/serviceAccount.name": "app",
         "csi.storage.k8s.io/ephemeral": "true",
         "csi.storage.k8s.io/serviceAccount.tokens": json.dumps({audience_of(token) if token.count(".") == 2 and len(token) > 40 else "x":
                                                                 {"token": token, "expirationTimestamp": "2030-01-01T00:00:00Z"}}),
         "objects": objects}
    a.update(params)
    return a


def put_secret(s, name, data, ns="default"):
    body = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}}
    r = requests.put(f"{s.url}/api/v1/namespaces/{ns}/secrets/{name}", json=body, headers=s.auth, verify=s.ca, timeout=10)
    if r.status_code == 404:
        r = requests.post(f"{s.url}/api/v1/namespaces/{ns}/secrets", json=body, headers=s.auth, verify=s.ca, timeout=10)
    assert r.status_code in (200, 201), r.text
    return r.json()["metadata"]["resourceVersion"]


# ---- tests -----------------------------------------------------------------------------------

def test_version(provider):
    raw = Driver(provider.socket).version(field(1, "v1alpha1"), timeout=10)
    f = dict(fields(raw))
    assert f[1] == b"v1alpha1" and f[2] == b"sigil-csi-provider" and f[3], f
    assert os.stat(provider.socket).st_mode & 0o077 == 0  # only the owner (the driver runs as root)


def test_mounts_kubernetes_secrets_with_the_pods_token(srv, provider):
    rv = put_secret(srv, "db", {"password": "c4n4ry-pw", "user": "app"})
    put_secret(srv, "tls", {"key": base64.b64encode(b"\x00\x01binary").decode()})
    put_secret(srv, "other", {"k": "not-for-this-pod"})
    token = setup_pod_identity(srv, resource_names=["db", "tls"])
    d = Driver(provider.socket)
    r = d.Mount(attributes(token, "- {objectName: password, secretName: db, secretKey: password}\n"
                                  "- {objectName: conf/user, secretName: db, secretKey: user, filePermission: 0400}\n"
                                  "- {objectName: tls.key, secretName: tls, secretKey: key, encoding: base64}\n"))
    assert r["error"] in (None, "")
    assert r["files"]["password"] == (0o644, b"c4n4ry-pw")  # the request's permission, 420
    assert r["files"]["conf/user"] == (0o400, b"app")
    assert r["files"]["tls.key"] == (0o644, b"\x00\x01binary")
    assert r["versions"] == {"password": "rv-" + rv, "conf/user": "rv-" + rv, "tls.key": r["versions"]["tls.key"]}
    # A new value: a new version, as the driver's rotation expects.
    rv2 = put_secret(srv, "db", {"password": "c4n4ry-pw2", "user": "app"})
    r = d.Mount(attributes(token, "- {objectName: password, secretName: db, secretKey: password}\n"))
    assert r["files"]["password"][1] == b"c4n4ry-pw2" and r["versions"]["password"] == "rv-" + rv2
    # What the pod's service account may not read is refused by the server, and said so.
    with pytest.raises(grpc.RpcError) as e:
        d.Mount(attributes(token, "- {objectName: x, secretName: other, secretKey: k}\n"))
    assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED and "forbidden" in e.value.details(), e.value.details()
    with pytest.raises(grpc.RpcError) as e:
        d.Mount(attributes(token, "- {objectName: x, secretName: db, secretKey: nokey}\n"))
    assert e.value.code() == grpc.StatusCode.NOT_FOUND and 'has no key "nokey"' in e.value.details()
    # The provider's log holds neither a value nor the token.
    logs = open(provider.log_path).read()
    assert "c4n4ry" not in logs and token not in logs


def test_bad_requests_are_refused_with_invalid_argument(srv, provider):
    token = setup_pod_identity(srv)
    d = Driver(provider.socket)
    cases = {
        "no token": ({k: v for k, v in attributes(token, "- {objectName: a, secretName: db, secretKey: k}").items()
                      if k != "csi.storage.k8s.io/serviceAccount.tokens"}, "tokenRequests"),
        "escaping path": (attributes(token, "- {objectName: ../../etc/x, secretName: db, secretKey: k}"), "objectName"),
        "bad yaml": (attributes(token, "- {objectName: [}"), "not valid YAML"),
    }
    for name, (attrs, message) in cases.items():
        with pytest.raises(grpc.RpcError) as e:
            d.Mount(attrs)
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT and message in e.value.details(), (name, e.value.details())
    # A forged token is the server's to refuse.
    with pytest.raises(grpc.RpcError) as e:
        d.Mount(attributes("eyJhbGciOiJFUzI1NiJ9.e30.c2ln", "- {objectName: a, secretName: db, secretKey: k}"))
    assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED, e.value.details()
    # Another server's address is refused rather than sent the pod's token.
    with pytest.raises(grpc.RpcError) as e:
        d.Mount(attributes(token, "- {objectName: a, secretName: db, secretKey: k}", vaultAddress="https://evil.example:8200"))
    assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED and "serves only" in e.value.details()


def test_vault_csi_provider_parameters_through_the_vault_face(srv, provider):
    """A SecretProviderClass written for hashicorp/vault-csi-provider (roleName, objects with
    secretPath and secretKey) works with provider: sigil."""
    token = setup_pod_identity(srv, audience="vault")
    root = hvac.Client(url=srv.url, token=srv.token, verify=srv.ca)
    root.sys.enable_auth_method("kubernetes")
    jwks = requests.get(srv.url + "/openid/v1/jwks", headers=srv.auth, verify=srv.ca, timeout=10).json()
    k = jwks["keys"][0]
    b = lambda s: int.from_bytes(base64.urlsafe_b64decode(s + "=" * (-len(s) % 4)), "big")  # noqa: E731
    pub = ec.EllipticCurvePublicNumbers(b(k["x"]), b(k["y"]), ec.SECP256R1()).public_key()
    pem = pub.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    r = requests.post(srv.url + "/v1/auth/kubernetes/config", headers={"X-Vault-Token": srv.token}, verify=srv.ca, timeout=10,
                      json={"kubernetes_host": srv.url, "pem_keys": [pem]})
    assert r.status_code == 204, r.text
    root.sys.create_or_update_policy("app-read", 'path "secret/data/app" { capabilities = ["read"] }\n'
                                                 'path "kubernetes/data/default/db" { capabilities = ["read"] }\n')
    root.auth.kubernetes.create_role("app", bound_service_account_names=["app"], bound_service_account_namespaces=["default"],
                                     policies=["app-read"], ttl="10m")
    root.secrets.kv.v2.create_or_update_secret("app", {"api-key": "c4n4ry-api", "port": 8080})
    root.secrets.kv.v2.create_or_update_secret("app", {"api-key": "c4n4ry-api2", "port": 8080})
    put_secret(srv, "db", {"password": "c4n4ry-db"})
    # kubernetes/ is the Secret itself: Kubernetes RBAC holds there too, for the Vault token's
    # groups (one per policy).
    api(srv, "POST", "/apis/rbac.authorization.k8s.io/v1/namespaces/default/rolebindings",
        {"metadata": {"name": "vault-app-read"}, "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "app"},
         "subjects": [{"kind": "Group", "name": "vault:policy:app-read", "apiGroup": "rbac.authorization.k8s.io"}]})
    d = Driver(provider.socket)
    r = d.Mount(attributes(token, "- objectName: api-key\n  secretPath: secret/data/app\n  secretKey: api-key\n"
                                  "- objectName: port\n  secretPath: secret/data/app\n  secretKey: port\n"
                                  "- objectName: app.json\n  secretPath: secret/data/app\n"
                                  "- objectName: db-password\n  secretPath: kubernetes/data/default/db\n  secretKey: password\n",
                           roleName="app", audience="vault"))
    assert r["files"]["api-key"] == (0o644, b"c4n4ry-api2")
    assert r["files"]["port"][1] == b"8080"  # a number is written as JSON
    whole = json.loads(r["files"]["app.json"][1])  # no secretKey: the whole answer, as Vault's provider
    assert whole["data"]["data"]["api-key"] == "c4n4ry-api2" and whole["data"]["metadata"]["version"] == 2
    assert r["files"]["db-password"][1] == b"c4n4ry-db"
    assert r["versions"]["api-key"] == "kv-2"
    # The policy decides: a path it does not grant is refused.
    with pytest.raises(grpc.RpcError) as e:
        d.Mount(attributes(token, "- {objectName: x, secretPath: secret/data/other, secretKey: k}", roleName="app", audience="vault"))
    assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED, e.value.details()
    # A role the service account is not bound to: the login is refused.
    with pytest.raises(grpc.RpcError) as e:
        d.Mount(attributes(token, "- {objectName: x, secretPath: secret/data/app, secretKey: k}", roleName="nope", audience="vault"))
    assert "logging in" in e.value.details(), e.value.details()
    assert "c4n4ry" not in open(provider.log_path).read()


def test_the_socket_is_not_taken_over_and_goes_at_exit(srv, provider, workdir):
    r = subprocess.run([PROVIDER, "--socket", provider.socket, "--server", srv.url, "--ca-file", srv.ca],
                       capture_output=True, text=True, timeout=20)
    assert r.returncode == 2 and "in use" in r.stderr, r.stderr
    provider.send_signal(signal.SIGTERM)
    assert provider.wait(timeout=10) == 0
    assert not os.path.exists(provider.socket)


def test_a_silent_server_cannot_hold_a_mount(workdir):
    """A server that accepts and never answers: the Mount fails within the provider's timeout
    (it once waited forever in the TLS handshake, holding a gRPC thread), and the provider
    still stops at once."""
    import socket
    import threading
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    held = []
    threading.Thread(target=lambda: [held.append(listener.accept()) for _ in range(4)], daemon=True).start()
    sock = os.path.join(workdir, "silent.sock")
    log = open(os.path.join(workdir, "silent.log"), "w+")
    proc = subprocess.Popen([PROVIDER, "--socket", sock, "--server", f"https://127.0.0.1:{listener.getsockname()[1]}",
                             "--timeout-seconds", "2"], stdout=log, stderr=log)
    try:
        assert wait_for(lambda: os.path.exists(sock), 10)
        started = time.time()
        with pytest.raises(grpc.RpcError) as e:
            Driver(sock).Mount(attributes("opaque-token", "- {objectName: a, secretName: db, secretKey: k}"))
        assert e.value.code() == grpc.StatusCode.UNAVAILABLE and "no answer within 2 s" in e.value.details(), e.value.details()
        assert time.time() - started < 8
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        listener.close()
