"""Version history, which Kubernetes lacks: every write of a Secret is a numbered version;
sigil's HTTP API lists and reads them and rolls back; `sigil secret history|rollback` and
`sigil kubeconfig` drive a running server over its public API."""
import base64
import json
import os
import subprocess

import pytest
import requests

from conftest import SIGIL, run

KUBECTL = "/usr/bin/kubectl"


@pytest.fixture
def dev(start_server, workdir):
    s = start_server(["--dev", "--listen", "127.0.0.1:0"])
    kubeconfig = os.path.join(os.path.dirname(s.ca), "kubeconfig")
    env = dict(os.environ, KUBECONFIG=kubeconfig, HOME=workdir)

    def k(*args, check=True, stdin=None):
        r = subprocess.run([KUBECTL] + list(args), capture_output=True, text=True, env=env, input=stdin, timeout=60)
        if check and r.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} exited {r.returncode}: {r.stderr}")
        return r

    def cli(*args, check=True):
        r = subprocess.run([SIGIL] + list(args), capture_output=True, text=True, env=env, timeout=60)
        if check and r.returncode != 0:
            raise AssertionError(f"sigil {' '.join(args)} exited {r.returncode}: {r.stderr}")
        return r

    def api(method, path, body=None):
        return requests.request(method, s.url + path, json=body, verify=s.ca, headers=s.auth, timeout=10)

    k.cli, k.api, k.server = cli, api, s
    return k


def versions(dev, name, ns="default"):
    r = dev.api("GET", f"/sigil/v1/namespaces/{ns}/secrets/{name}/versions")
    assert r.status_code == 200, r.text
    return r.json()


def value(dev, name, key):
    return base64.b64decode(dev("get", "secret", name, "-o", f"jsonpath={{.data.{key}}}").stdout)


def test_every_write_is_a_version_and_rollback_restores_one(dev):
    dev("create", "secret", "generic", "db", "--from-literal=pw=one")
    dev("patch", "secret", "db", "-p", '{"stringData":{"pw":"two"}}')
    dev("label", "secret", "db", "env=prod")
    v = versions(dev, "db")
    assert [(x["version"], x["operation"], x["manager"]) for x in v["versions"]] == [
        (1, "create", "kubectl-create"), (2, "update", "kubectl-patch"), (3, "update", "kubectl-label")]
    assert v["current"] == 3 and v["keep"] == 10
    assert v["versions"][0]["keys"] == ["pw"]
    assert "b25l" not in json.dumps(v)  # the list never carries values
    one = dev.api("GET", "/sigil/v1/namespaces/default/secrets/db/versions/1").json()
    assert base64.b64decode(one["object"]["data"]["pw"]) == b"one"
    assert one["object"]["metadata"]["resourceVersion"] == v["versions"][0]["resourceVersion"]
    # The CLI, over the public API with the kubeconfig kubectl uses.
    out = dev.cli("secret", "history", "default/db").stdout.splitlines()
    assert out[0].split() == ["VERSION", "OPERATION", "TIME", "MANAGER", "RESOURCE-VERSION", "KEYS"]
    assert out[3].split()[0] == "3*"
    assert "secret/db rolled back to version 1" in dev.cli("secret", "rollback", "db", "--to", "1").stdout
    assert value(dev, "db", "pw") == b"one"
    obj = json.loads(dev("get", "secret", "db", "-o", "json").stdout)
    assert "labels" not in obj["metadata"]  # labels are part of the version too
    v = versions(dev, "db")
    assert (v["versions"][-1]["version"], v["versions"][-1]["operation"], v["current"]) == (4, "rollback", 4)
    # A dry run changes nothing.
    assert "server dry run" in dev.cli("secret", "rollback", "db", "--to", "2", "--dry-run").stdout
    assert value(dev, "db", "pw") == b"one" and versions(dev, "db")["current"] == 4


def test_delete_is_recorded_and_rollback_recreates(dev):
    dev("create", "secret", "generic", "gone", "--from-literal=k=v1")
    dev("delete", "secret", "gone")
    v = versions(dev, "gone")
    assert v["current"] is None and v["versions"][-1]["deleted"] is True
    r = dev.cli("secret", "rollback", "gone", "--to", "2", check=False)
    assert r.returncode == 1 and "records a deletion" in r.stderr
    assert "re-created from version 1" in dev.cli("secret", "rollback", "gone", "--to", "1").stdout
    assert value(dev, "gone", "k") == b"v1"
    assert versions(dev, "gone")["current"] == 3


def test_errors(dev):
    r = dev.cli("secret", "history", "nope", check=False)
    assert r.returncode == 1 and 'Error from server (NotFound): secrets "nope" not found' in r.stderr
    dev("create", "secret", "generic", "e", "--from-literal=k=v")
    r = dev.cli("secret", "rollback", "e", "--to", "9", check=False)
    assert r.returncode == 1 and "version 9 of secrets \"e\" not found" in r.stderr
    for body in [{}, {"version": "1"}, {"version": 0}, [1]]:
        r = dev.api("POST", "/sigil/v1/namespaces/default/secrets/e/rollback", body)
        assert r.status_code == 400 and r.json()["kind"] == "Status", body
    assert dev.api("GET", "/sigil/v1/namespaces/default/secrets/e/versions/x").status_code == 400
    assert dev.api("DELETE", "/sigil/v1/namespaces/default/secrets/e/versions").status_code == 405
    assert dev.api("GET", "/sigil/v1/namespaces/default/secrets/e/other").status_code == 404
    # An immutable Secret cannot be rolled back: the write is refused as any change would be.
    dev("patch", "secret", "e", "-p", '{"stringData":{"k":"v2"}}')
    dev("patch", "secret", "e", "-p", '{"immutable":true}')
    r = dev.cli("secret", "rollback", "e", "--to", "1", check=False)
    assert r.returncode == 1 and "Invalid" in r.stderr
    assert value(dev, "e", "k") == b"v2"


def test_retention_per_namespace_and_purge_with_the_namespace(dev):
    ns = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: short\n  annotations: {sigil.dev/history-versions: \"2\"}\n"
    dev("apply", "-f", "-", stdin=ns)
    dev("create", "secret", "generic", "s", "-n", "short", "--from-literal=k=0")
    for i in range(1, 6):
        dev("patch", "secret", "s", "-n", "short", "-p", json.dumps({"stringData": {"k": str(i)}}))
    v = versions(dev, "s", "short")
    assert [x["version"] for x in v["versions"]] == [4, 5, 6] and v["keep"] == 2
    assert dev.api("GET", "/sigil/v1/namespaces/short/secrets/s/versions/3").status_code == 404
    bad = ns.replace("short", "bad").replace('"2"', '"lots"')
    r = dev("apply", "-f", "-", stdin=bad, check=False)
    assert r.returncode == 1 and "sigil.dev/history-versions" in r.stderr
    dev("delete", "namespace", "short")
    dev("create", "namespace", "short")
    assert dev.api("GET", "/sigil/v1/namespaces/short/secrets/s/versions").status_code == 404


def test_history_off(start_server, workdir):
    cfg = os.path.join(workdir, "c.yaml")
    with open(cfg, "w") as f:
        f.write("history:\n  versions: 0\n")
    s = start_server(["--dev", "--listen", "127.0.0.1:0", "--config", cfg])
    body = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "x"}, "stringData": {"a": "b"}}
    assert requests.post(s.url + "/api/v1/namespaces/default/secrets", json=body, verify=s.ca, headers=s.auth).status_code == 201
    assert requests.put(s.url + "/api/v1/namespaces/default/secrets/x", json=dict(body, stringData={"a": "c"}), verify=s.ca,
                        headers=s.auth).status_code == 200
    # No earlier versions are kept; the current one is recorded (so version numbers, and the
    # Vault face's check-and-set, still work).
    v = requests.get(s.url + "/sigil/v1/namespaces/default/secrets/x/versions", verify=s.ca, headers=s.auth).json()
    assert [x["version"] for x in v["versions"]] == [2] and v["current"] == 2 and v["keep"] == 0


def test_kubeconfig_for_a_running_server(start_server, workdir, key_file):
    data = os.path.join(workdir, "data")
    s = start_server(["--data-dir", data, "--seal-key-file", key_file, "--listen", "127.0.0.1:0"])
    out = run([SIGIL, "kubeconfig", "--data-dir", data, "--listen", f"127.0.0.1:{s.port}", "--user", "alice",
               "--group", "team-a"]).stdout
    path = os.path.join(workdir, "kc")
    with open(path, "w") as f:
        f.write(out)
    os.chmod(path, 0o600)
    env = dict(os.environ, KUBECONFIG=path, HOME=workdir)
    r = subprocess.run([KUBECTL, "auth", "whoami", "-o", "jsonpath={.status.userInfo.username}"], capture_output=True,
                       text=True, env=env, timeout=60)
    assert r.returncode == 0 and r.stdout == "alice", r.stderr
    # alice is authenticated by her certificate, and RBAC gives her nothing yet.
    r = subprocess.run([KUBECTL, "get", "ns", "default", "-o", "name"], capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 1 and ('namespaces "default" is forbidden: User "alice" cannot get resource "namespaces" '
                                  'in API group "" in the namespace "default"') in r.stderr, r.stderr
    # The certificate names the user and groups (what client-certificate authentication reads).
    cert = base64.b64decode(out.split("client-certificate-data: ")[1].split()[0])
    subject = subprocess.run(["openssl", "x509", "-noout", "-subject"], input=cert, capture_output=True).stdout.decode()
    assert "CN = alice" in subject and "O = team-a" in subject
    # Not running there: a clear error, not a kubeconfig that does not work.
    r = run([SIGIL, "kubeconfig", "--data-dir", data, "--listen", "127.0.0.1:1", "--user", "alice"], check=False)
    assert r.returncode == 1 and "is the server running?" in r.stderr and r.stdout == ""
    r = run([SIGIL, "kubeconfig", "--data-dir", os.path.join(workdir, "nothing"), "--user", "alice"], check=False)
    assert r.returncode == 1 and "start the server once first" in r.stderr
