"""Rotation policies of Kubernetes Secrets: a Secret annotated with a policy gets new values on
schedule without anyone touching it (recorded in its history as "rotate", seen by a running
`kubectl get -w`, audited as system:sigil:rotation, with no value in the trail); `sigil secret
rotate` rotates now; the schedule survives a restart; invalid policies are refused; removing the
policy stops the rotations."""
import base64
import json
import os
import subprocess
import textwrap
import time

import pytest
import requests

from conftest import SIGIL, wait_for

KUBECTL = "/usr/bin/kubectl"


def kube(s, workdir):
    kubeconfig = os.path.join(os.path.dirname(s.ca), "kubeconfig")
    env = dict(os.environ, KUBECONFIG=kubeconfig, HOME=workdir)

    def k(*args, check=True):
        r = subprocess.run([KUBECTL] + list(args), capture_output=True, text=True, env=env, timeout=60)
        if check and r.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} exited {r.returncode}: {r.stderr}")
        return r

    def cli(*args, check=True):
        r = subprocess.run([SIGIL] + list(args), capture_output=True, text=True, env=env, timeout=60)
        if check and r.returncode != 0:
            raise AssertionError(f"sigil {' '.join(args)} exited {r.returncode}: {r.stderr}")
        return r

    k.cli, k.env = cli, env
    return k


def server_with_audit(start_server, workdir, extra_args=()):
    policy = os.path.join(workdir, "policy.yaml")
    with open(policy, "w") as f:
        f.write(textwrap.dedent("""\
            apiVersion: audit.k8s.io/v1
            kind: Policy
            rules:
            - level: RequestResponse
            """))
    cfg = os.path.join(workdir, "c.yaml")
    log = os.path.join(workdir, "audit.log")
    with open(cfg, "w") as f:
        f.write(f"audit: {{policy_file: {policy}, log_path: {log}}}\n")
    s = start_server(["--listen", "127.0.0.1:0", "--config", cfg] + list(extra_args))
    s.audit_log = log
    return s


def value(k, name, key):
    return base64.b64decode(k("get", "secret", name, "-o", f"jsonpath={{.data.{key}}}").stdout)


def annotation(k, name, key):
    return k("get", "secret", name, "-o", "jsonpath={.metadata.annotations.sigil\\.dev/" + key + "}").stdout



def test_a_policy_rotates_on_schedule_and_on_demand(start_server, workdir, key_file):
    s = server_with_audit(start_server, workdir, ["--data-dir", workdir + "/data", "--seal-key-file", key_file])
    auth = {"Authorization": "Bearer " + s.token}
    base = s.url + "/api/v1/namespaces/default/secrets"

    def get(name):
        r = requests.get(f"{base}/{name}", headers=auth, verify=s.ca, timeout=10)
        r.raise_for_status()
        return r.json()

    body = {"metadata": {"name": "db", "annotations": {
        "sigil.dev/rotation-period": "5s", "sigil.dev/rotation-keys": "password, token",
        "sigil.dev/rotation-generator": "password", "sigil.dev/rotation-length": "24"}},
        "stringData": {"password": "initial", "token": "initial-token", "user": "app"}}
    requests.post(base, json=body, headers=auth, verify=s.ca, timeout=10).raise_for_status()
    # A watcher sees the scheduled rotation as it happens.
    rv = get("db")["metadata"]["resourceVersion"]
    watch = requests.get(f"{base}?watch=1&resourceVersion={rv}&fieldSelector=metadata.name=db", headers=auth,
                         verify=s.ca, stream=True, timeout=30)
    lines = watch.iter_lines()
    ev = json.loads(next(lines))
    assert ev["type"] == "MODIFIED"
    obj = ev["object"]
    pw = base64.b64decode(obj["data"]["password"]).decode()
    assert pw != "initial" and len(pw) == 24 and "-" in pw
    assert base64.b64decode(obj["data"]["token"]).decode() != "initial-token"
    assert base64.b64decode(obj["data"]["user"]) == b"app"  # keys the policy does not name stay
    assert obj["metadata"]["annotations"]["sigil.dev/rotated-at"].endswith("Z")
    watch.close()
    # Recorded in the history like any write.
    v = requests.get(s.url + "/sigil/v1/namespaces/default/secrets/db/versions", headers=auth, verify=s.ca).json()
    assert [(x["operation"], x["manager"]) for x in v["versions"]][:2] == [("create", v["versions"][0]["manager"]), ("rotate", "sigil-rotation")]
    # Audited as sigil's rotation, with no value in the trail.
    with open(s.audit_log) as f:
        trail = f.read()
    events = [json.loads(line) for line in trail.splitlines()]
    rot = [e for e in events if e["user"]["username"] == "system:sigil:rotation"]
    assert rot and rot[0]["objectRef"]["name"] == "db" and rot[0]["level"] == "Metadata"
    assert pw not in trail and "initial-token" not in trail

    # On demand, through the API (RBAC: create on secrets/rotate) and the CLI.
    r = requests.post(s.url + "/sigil/v1/namespaces/default/secrets/db/rotate", headers=auth, verify=s.ca, timeout=10)
    assert r.status_code == 200, r.text
    assert "data" not in r.json()  # rotating is not reading: the answer has no values
    assert r.json()["metadata"]["annotations"]["sigil.dev/rotated-at"].endswith("Z")
    assert base64.b64decode(get("db")["data"]["password"]).decode() not in (pw, "initial")

    # A restart keeps the schedule: rotations go on after it.
    before = get("db")["metadata"]["annotations"]["sigil.dev/rotated-at"]
    s.stop()
    s2 = server_with_audit(start_server, workdir, ["--data-dir", workdir + "/data", "--seal-key-file", key_file])
    base2 = s2.url + "/api/v1/namespaces/default/secrets"

    def rotated_after_restart():
        r = requests.get(f"{base2}/db", headers=auth, verify=s2.ca, timeout=10)
        return r.ok and r.json()["metadata"]["annotations"]["sigil.dev/rotated-at"] != before
    assert wait_for(rotated_after_restart, timeout=20)

    # Without the policy, no more rotations.
    patch = {"metadata": {"annotations": {"sigil.dev/rotation-period": None, "sigil.dev/rotation-keys": None,
                                          "sigil.dev/rotation-generator": None, "sigil.dev/rotation-length": None}}}
    r = requests.patch(f"{base2}/db", data=json.dumps(patch), headers=dict(auth, **{"Content-Type": "application/merge-patch+json"}),
                       verify=s2.ca, timeout=10)
    assert r.status_code == 200, r.text
    stamp = r.json()["metadata"]["annotations"]["sigil.dev/rotated-at"]
    time.sleep(7)
    assert requests.get(f"{base2}/db", headers=auth, verify=s2.ca).json()["metadata"]["annotations"]["sigil.dev/rotated-at"] == stamp


@pytest.fixture
def dev(start_server, workdir):
    s = start_server(["--dev", "--listen", "127.0.0.1:0"])
    k = kube(s, workdir)
    k.server = s
    return k


def test_kubectl_and_the_cli(dev):
    k = dev
    k("create", "secret", "generic", "api", "--from-literal=key=old", "--from-literal=other=x")
    # No policy: the CLI says so.
    r = k.cli("secret", "rotate", "api", check=False)
    assert r.returncode != 0 and "has no rotation policy" in r.stderr
    k("annotate", "secret", "api", "sigil.dev/rotation-period=24h", "sigil.dev/rotation-keys=key",
      "sigil.dev/rotation-generator=hex", "sigil.dev/rotation-length=16")
    assert value(k, "api", "key") == b"old"  # not due for a day
    out = k.cli("secret", "rotate", "default/api").stdout
    assert out.startswith("secret/api rotated at ")
    new = value(k, "api", "key").decode()
    assert len(new) == 32 and all(c in "0123456789abcdef" for c in new)
    assert value(k, "api", "other") == b"x"
    assert annotation(k, "api", "rotated-at").endswith("Z")
    hist = k.cli("secret", "history", "api").stdout
    assert "rotate" in hist


@pytest.mark.parametrize("annotations, message", [
    ({"sigil.dev/rotation-period": "1s", "sigil.dev/rotation-keys": "a"}, "at least 5s"),
    ({"sigil.dev/rotation-period": "soon", "sigil.dev/rotation-keys": "a"}, "at least 5s"),
    ({"sigil.dev/rotation-period": "1h"}, "rotation-keys"),
    ({"sigil.dev/rotation-keys": "a"}, "needs sigil.dev/rotation-period"),
    ({"sigil.dev/rotation-period": "1h", "sigil.dev/rotation-keys": "a", "sigil.dev/rotation-generator": "dice"}, "one of"),
    ({"sigil.dev/rotation-period": "1h", "sigil.dev/rotation-keys": "a", "sigil.dev/rotation-length": "3"}, "8 to 4096"),
    ({"sigil.dev/rotation-period": "1h", "sigil.dev/rotation-keys": "a", "sigil.dev/rotation-alphabet": "aa"}, "distinct"),
    ({"sigil.dev/rotation-period": "1h", "sigil.dev/rotation-keys": "a/b"}, "rotation-keys: \"a/b\""),
])
def test_invalid_policies_are_refused(dev, annotations, message):
    s = dev.server
    body = {"metadata": {"name": "bad", "annotations": annotations}, "stringData": {"a": "x"}}
    r = requests.post(s.url + "/api/v1/namespaces/default/secrets", json=body, headers=s.auth, verify=s.ca, timeout=10)
    assert r.status_code == 422, r.text
    assert message in r.json()["message"], r.json()["message"]
    body = {"metadata": {"name": "frozen", "annotations": {"sigil.dev/rotation-period": "1h", "sigil.dev/rotation-keys": "a"}},
            "stringData": {"a": "x"}, "immutable": True}
    r = requests.post(s.url + "/api/v1/namespaces/default/secrets", json=body, headers=s.auth, verify=s.ca, timeout=10)
    assert r.status_code == 422 and "immutable" in r.json()["message"]


def test_keys_a_typed_secret_fixes_are_refused(dev):
    s = dev.server
    tls = {"metadata": {"name": "tls", "annotations": {"sigil.dev/rotation-period": "1h", "sigil.dev/rotation-keys": "tls.key"}},
           "type": "kubernetes.io/tls", "stringData": {"tls.crt": "", "tls.key": ""}}
    r = requests.post(s.url + "/api/v1/namespaces/default/secrets", json=tls, headers=s.auth, verify=s.ca, timeout=10)
    assert r.status_code == 422 and "random values would break it" in r.json()["message"], r.text
    # A basic-auth Secret's password is free text: rotating it is what the policy is for.
    basic = {"metadata": {"name": "basic", "annotations": {"sigil.dev/rotation-period": "1h", "sigil.dev/rotation-keys": "password"}},
             "type": "kubernetes.io/basic-auth", "stringData": {"username": "u", "password": "p"}}
    r = requests.post(s.url + "/api/v1/namespaces/default/secrets", json=basic, headers=s.auth, verify=s.ca, timeout=10)
    assert r.status_code == 201, r.text
