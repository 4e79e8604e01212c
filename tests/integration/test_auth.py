"""Authentication: nobody reads or writes anything without a credential. sigil's own bearer
tokens (the root token made at initialisation), kube-apiserver's static token file, and
client certificates from the configured CA each give one identity; `kubectl auth whoami`
and TokenReview report it. Failures get 401 in the API's format and are slowed down."""
import json
import os
import ssl
import socket
import stat
import subprocess
import time

import pytest
import requests

from conftest import SIGIL, run, token_file_config, token_kubeconfig

KUBECTL = "/usr/bin/kubectl"


@pytest.fixture
def srv(start_server, workdir):
    cfg = token_file_config(workdir, 'static-token-1,alice,u-alice,"team-a,team-b"\nstatic-token-2,bob,u-bob\n')
    s = start_server(["--dev", "--listen", "127.0.0.1:0", "--config", cfg])
    s.workdir = workdir
    return s


def get(s, path, token=None, **kw):
    headers = {"Authorization": "Bearer " + token} if token else {}
    return requests.get(s.url + path, verify=s.ca, headers=headers, timeout=10, **kw)


def test_anonymous_gets_401_except_health_and_version(srv):
    for path in ["/api", "/apis", "/api/v1/namespaces/default/secrets", "/api/v1/secrets?watch=true", "/openapi/v3",
                 "/sigil/v1/namespaces/default/secrets/x/versions", "/metrics"]:
        r = get(srv, path)
        assert r.status_code == 401, path
        assert r.json() == {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                            "message": "Unauthorized", "reason": "Unauthorized", "code": 401} or r.json()["code"] == 401
    for path in ["/healthz", "/livez", "/readyz", "/version"]:
        assert get(srv, path).status_code == 200, path
    # Writes are refused too, and change nothing.
    r = requests.post(srv.url + "/api/v1/namespaces/default/secrets", json={"metadata": {"name": "x"}}, verify=srv.ca)
    assert r.status_code == 401
    assert get(srv, "/api/v1/namespaces/default/secrets/x", srv.token).status_code == 404


def test_root_token_token_file_and_bad_tokens(srv):
    assert get(srv, "/api/v1/namespaces/default/secrets", srv.token).status_code == 200
    # alice is authenticated but bound to nothing: RBAC denies her, in kube-apiserver's words.
    r = get(srv, "/api/v1/namespaces/default/secrets", "static-token-1")
    assert r.status_code == 403 and r.json()["message"] == (
        'secrets is forbidden: User "alice" cannot list resource "secrets" in API group "" in the namespace "default"')
    assert get(srv, "/api", "static-token-1").status_code == 200  # system:discovery
    for bad in ["static-token-3", srv.token[:-1] + ("A" if srv.token[-1] != "A" else "B"), "sgl_", "x" * 5000]:
        assert get(srv, "/api/v1/namespaces/default/secrets", bad).status_code == 401
    r = requests.get(srv.url + "/api/v1/namespaces/default/secrets", verify=srv.ca,
                     headers={"Authorization": "Bearer  static-token-1"})
    assert r.status_code == 401 and "extra space before the bearer token" in r.headers.get("Warning", "")
    # A Vault path answers a missing token as Vault does: 403 "permission denied", Vault's format.
    r = get(srv, "/v1/secret/data/x")
    assert r.status_code == 403 and r.json() == {"errors": ["permission denied"]}


def test_repeated_failures_are_slowed_down(srv):
    times = []
    for _ in range(8):
        start = time.time()
        assert get(srv, "/api", "wrong-token").status_code == 401
        times.append(time.time() - start)
    assert times[6] >= 0.09 and times[7] >= 0.19, times
    # A valid credential from the same address is not held up.
    start = time.time()
    assert get(srv, "/api", srv.token).status_code == 200
    assert time.time() - start < 0.5


def test_token_review_and_whoami(srv):
    def review(token, **extra):
        body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": token, **extra}}
        r = requests.post(srv.url + "/apis/authentication.k8s.io/v1/tokenreviews", json=body, verify=srv.ca,
                          headers={"Authorization": "Bearer " + srv.token})
        assert r.status_code == 201
        return r.json()["status"]
    st = review("static-token-1", audiences=["vault"])
    assert st["authenticated"] is True and st["user"]["username"] == "alice" and st["audiences"] == ["vault"]
    assert st["user"]["groups"] == ["team-a", "team-b", "system:authenticated"]
    assert review(srv.token)["user"]["username"] == "sigil-root"
    st = review("nope")
    assert st["authenticated"] is False and st["error"]
    # kubectl auth whoami with a token from the token file, and with the dev client certificate.
    kc = token_kubeconfig(os.path.join(srv.workdir, "kc"), srv, "static-token-1")
    out = subprocess.run([KUBECTL, "--kubeconfig", kc, "auth", "whoami", "-o", "json"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    info = json.loads(out.stdout)["status"]["userInfo"]
    assert info["username"] == "alice" and info["uid"] == "u-alice"
    dev_kc = os.path.join(os.path.dirname(srv.ca), "kubeconfig")
    out = subprocess.run([KUBECTL, "--kubeconfig", dev_kc, "auth", "whoami"], capture_output=True, text=True, timeout=60)
    assert "sigil-dev-admin" in out.stdout and "system:masters" in out.stdout


def test_client_certificate_from_another_ca_is_refused(srv, workdir):
    key, crt = os.path.join(workdir, "o.key"), os.path.join(workdir, "o.crt")
    run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", key,
         "-out", crt, "-subj", "/CN=mallory/O=system:masters", "-days", "1", "-addext", "extendedKeyUsage=clientAuth"])
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(srv.url + "/api", verify=srv.ca, cert=(crt, key), timeout=10)
    assert get(srv, "/readyz").text == "ok"


def test_production_root_token_goes_to_a_private_file_once(start_server, workdir, key_file):
    data = os.path.join(workdir, "data")
    args = ["--data-dir", data, "--seal-key-file", key_file, "--listen", "127.0.0.1:0"]
    s = start_server(args)
    path = os.path.join(data, "root-token")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert s.token and s.token not in s.logs()
    assert get(s, "/api/v1/namespaces", s.token).status_code == 200
    s.stop()
    # Production audits by default: Metadata for every request, in data_dir/audit/audit.log.
    trail = os.path.join(data, "audit", "audit.log")
    with open(trail) as f:
        events = [json.loads(line) for line in f]
    assert any(e["verb"] == "list" and e["user"]["username"] == "sigil-root" and e["level"] == "Metadata" for e in events)
    assert run([SIGIL, "audit", "verify", trail]).returncode == 0
    os.unlink(path)  # as the operator is told to
    s2 = start_server(args)
    assert s2.token is None and not os.path.exists(path)  # not made again
    assert get(s2, "/api/v1/namespaces", s.token).status_code == 200


def test_unsafe_token_file_is_refused(workdir):
    cfg = token_file_config(workdir, "t,u,1\n", mode=0o644)
    r = run([SIGIL, "server", "--dev", "--listen", "127.0.0.1:0", "--config", cfg], check=False, timeout=20)
    assert r.returncode == 1 and "tokens.csv" in r.stderr
    cfg = token_file_config(workdir, "t,u\n")
    r = run([SIGIL, "server", "--dev", "--listen", "127.0.0.1:0", "--config", cfg], check=False, timeout=20)
    assert r.returncode == 1 and "must have at least 3 columns (token, user name, user uid), found 2" in r.stderr
