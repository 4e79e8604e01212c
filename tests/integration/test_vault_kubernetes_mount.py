"""One store, two faces: the kubernetes/ mount serves Kubernetes Secrets as KV version 2 secrets
through unchanged hvac 0.11.2, while the real kubectl sees the same objects. A Secret written on
either face is seen on the other at once (a running `kubectl get -w` included), with one version
history; RBAC and the Vault policy are both checked; the audit trail records both faces' views
of an access and never a value."""
import base64
import json
import os
import subprocess

import hvac
import pytest
import requests

from conftest import readline

KUBECTL = "/usr/bin/kubectl"
MOUNT = "kubernetes"


@pytest.fixture
def dev(start_server, workdir):
    log = os.path.join(workdir, "audit.log")
    cfg = os.path.join(workdir, "sigil.yaml")
    with open(cfg, "w") as f:
        f.write(f"audit: {{log_path: {log}}}\n")
    s = start_server(["--dev", "--listen", "127.0.0.1:0", "--config", cfg])
    s.audit_log = log
    s.kubeconfig = os.path.join(os.path.dirname(s.ca), "kubeconfig")
    s.env = dict(os.environ, KUBECONFIG=s.kubeconfig, HOME=workdir)
    return s


def kubectl(s, *args, check=True, stdin=None):
    r = subprocess.run([KUBECTL] + list(args), capture_output=True, text=True, env=s.env, input=stdin, timeout=60)
    if check and r.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(args)} exited {r.returncode}: {r.stderr}")
    return r


def kv(s, token=None):
    return hvac.Client(url=s.url, token=token or s.token, verify=s.ca).secrets.kv.v2


def secret_value(s, name, key, ns="default"):
    out = kubectl(s, "get", "secret", name, "-n", ns, "-o", f"jsonpath={{.data.{key}}}").stdout
    return base64.b64decode(out)


def kube_versions(s, name, ns="default"):
    r = requests.get(f"{s.url}/sigil/v1/namespaces/{ns}/secrets/{name}/versions", headers=s.auth, verify=s.ca, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def raw(s, method, path, token=None, headers=None, **kw):
    return requests.request(method, s.url + "/v1/" + path, headers=headers or {"X-Vault-Token": token or s.token}, verify=s.ca,
                            timeout=10, **kw)


def test_the_mount_is_there_and_says_kv2(dev):
    mounts = hvac.Client(url=dev.url, token=dev.token, verify=dev.ca).sys.list_mounted_secrets_engines()["data"]
    assert mounts["kubernetes/"]["type"] == "kubernetes-secrets" and mounts["kubernetes/"]["options"] == {"version": "2"}
    r = raw(dev, "DELETE", "sys/mounts/kubernetes")
    assert r.status_code == 400 and "cannot unmount" in r.text  # built in, like sys/


def test_a_secret_written_on_either_face_is_one_object_with_one_history(dev):
    kubectl(dev, "create", "secret", "generic", "db", "--from-literal=user=app", "--from-literal=pw=one")
    kubectl(dev, "label", "secret", "db", "team=pay")
    c = kv(dev)
    got = c.read_secret_version("default/db", mount_point=MOUNT)["data"]
    assert got["data"] == {"pw": "one", "user": "app"} and got["metadata"]["version"] == 2  # create, label

    # A running watch sees the KV write, as the kubelet or an operator would.
    watch = subprocess.Popen([KUBECTL, "get", "secret", "db", "-w", "-o", "json", "--output-watch-events"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=dev.env, text=True)
    try:
        first = json.loads(read_json_object(watch.stdout))
        assert first["type"] == "ADDED"
        made = c.create_or_update_secret("default/db", secret={"user": "app", "pw": "two"}, cas=2, mount_point=MOUNT)["data"]
        assert made["version"] == 3 and made["deletion_time"] == "" and made["destroyed"] is False
        ev = json.loads(read_json_object(watch.stdout))
        assert ev["type"] == "MODIFIED" and base64.b64decode(ev["object"]["data"]["pw"]) == b"two"
    finally:
        watch.kill()
        watch.wait()
    # The Secret kept its type and labels; its values are the KV write's.
    obj = json.loads(kubectl(dev, "get", "secret", "db", "-o", "json").stdout)
    assert obj["type"] == "Opaque" and obj["metadata"]["labels"] == {"team": "pay"}
    assert secret_value(dev, "db", "pw") == b"two"

    # Check-and-set is the version number, on the history both faces share.
    with pytest.raises(hvac.exceptions.InvalidRequest, match="check-and-set parameter did not match"):
        c.create_or_update_secret("default/db", secret={"pw": "x"}, cas=2, mount_point=MOUNT)
    kubectl(dev, "patch", "secret", "db", "-p", '{"stringData":{"pw":"three"}}')
    with pytest.raises(hvac.exceptions.InvalidRequest, match="check-and-set parameter did not match"):
        c.create_or_update_secret("default/db", secret={"pw": "x"}, cas=3, mount_point=MOUNT)
    assert c.read_secret_version("default/db", mount_point=MOUNT)["data"]["metadata"]["version"] == 4
    assert c.read_secret_version("default/db", version=3, mount_point=MOUNT)["data"]["data"]["pw"] == "two"

    # Patch merges (null removes a key); the history agrees on both faces.
    c.patch("default/db", {"extra": "e"}, mount_point=MOUNT)  # hvac 0.11.2: read, merge, write back
    r = raw(dev, "PATCH", "kubernetes/data/default/db", json={"data": {"user": None}},
            headers={"X-Vault-Token": dev.token, "Content-Type": "application/merge-patch+json"})
    assert r.status_code == 200, r.text
    assert c.read_secret_version("default/db", mount_point=MOUNT)["data"]["data"] == {"pw": "three", "extra": "e"}
    kube = kube_versions(dev, "db")
    meta = c.read_secret_metadata("default/db", mount_point=MOUNT)["data"]
    assert [v["version"] for v in kube["versions"]] == [1, 2, 3, 4, 5, 6] and kube["current"] == 6
    assert sorted(meta["versions"], key=int) == ["1", "2", "3", "4", "5", "6"] and meta["current_version"] == 6
    assert meta["oldest_version"] == 1 and meta["max_versions"] == 11
    assert [v["manager"] for v in kube["versions"]] == ["kubectl-create", "kubectl-label", "sigil-vault", "kubectl-patch",
                                                          "sigil-vault", "sigil-vault"]

    # A rollback on the Kubernetes face is the next version on the Vault face.
    r = requests.post(dev.url + "/sigil/v1/namespaces/default/secrets/db/rollback", json={"version": 3}, headers=dev.auth,
                      verify=dev.ca, timeout=10)
    assert r.status_code == 200, r.text
    got = c.read_secret_version("default/db", mount_point=MOUNT)["data"]
    assert got["metadata"]["version"] == 7 and got["data"] == {"user": "app", "pw": "two"}

    # A KV write creates a Secret (Opaque) that kubectl sees at once; into a missing namespace it is refused.
    assert c.create_or_update_secret("default/fresh", secret={"k": "v"}, cas=0, mount_point=MOUNT)["data"]["version"] == 1
    assert kubectl(dev, "get", "secret", "fresh", "-o", "jsonpath={.type}").stdout == "Opaque"
    with pytest.raises(hvac.exceptions.InvalidRequest, match='namespaces "nowhere" not found'):
        c.create_or_update_secret("nowhere/s", secret={"k": "v"}, mount_point=MOUNT)
    # Secret validation: a key Kubernetes refuses, a value that is not a string, a bad path.
    with pytest.raises(hvac.exceptions.InvalidRequest, match="data"):
        c.create_or_update_secret("default/bad", secret={"no/slash": "v"}, mount_point=MOUNT)
    with pytest.raises(hvac.exceptions.InvalidRequest, match="values of a Kubernetes Secret are strings"):
        c.create_or_update_secret("default/bad", secret={"n": 5}, mount_point=MOUNT)
    with pytest.raises(hvac.exceptions.InvalidRequest, match="namespace"):
        c.create_or_update_secret("default/a/b", secret={"k": "v"}, mount_point=MOUNT)
    assert kubectl(dev, "get", "secret", "bad", check=False).returncode == 1


def read_json_object(pipe, timeout=15):
    """One JSON object from kubectl's -o json watch output (pretty-printed, several lines)."""
    text = ""
    while True:
        text += readline(pipe, timeout=timeout, what="a watch event")
        if text.startswith("{") and text.rstrip().endswith("}"):
            try:
                json.loads(text)
                return text
            except ValueError:
                pass


def test_values_that_are_not_text_round_trip_with_a_marker(dev):
    body = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "bin"},
            "data": {"blob": base64.b64encode(b"\xff\x00\xfe").decode(), "text": base64.b64encode("é ok".encode()).decode(),
                     "tricky": base64.b64encode(b"sigil:base64:AAAA").decode()}}
    assert requests.post(dev.url + "/api/v1/namespaces/default/secrets", json=body, headers=dev.auth, verify=dev.ca,
                         timeout=10).status_code == 201
    c = kv(dev)
    data = c.read_secret_version("default/bin", mount_point=MOUNT)["data"]["data"]
    assert data["text"] == "é ok"
    assert data["blob"] == "sigil:base64:" + base64.b64encode(b"\xff\x00\xfe").decode()
    assert data["tricky"] == "sigil:base64:" + base64.b64encode(b"sigil:base64:AAAA").decode()  # the marker itself is marked
    c.create_or_update_secret("default/bin", secret=data, mount_point=MOUNT)  # written back as read: unchanged
    assert secret_value(dev, "bin", "blob") == b"\xff\x00\xfe"
    assert secret_value(dev, "bin", "tricky") == b"sigil:base64:AAAA"
    with pytest.raises(hvac.exceptions.InvalidRequest, match="must be base64"):
        c.create_or_update_secret("default/bin", secret={"blob": "sigil:base64:%%%"}, mount_point=MOUNT)


def test_delete_undelete_destroy_map_to_the_secret_and_its_history(dev):
    c = kv(dev)
    for v in ("a", "b", "c"):
        c.create_or_update_secret("default/s", secret={"k": v}, mount_point=MOUNT)
    # Soft delete of the latest version deletes the Secret (kubectl sees it go).
    c.delete_latest_version_of_secret("default/s", mount_point=MOUNT)
    assert "NotFound" in kubectl(dev, "get", "secret", "s", check=False).stderr
    r = raw(dev, "GET", "kubernetes/data/default/s")
    assert r.status_code == 404 and r.json()["data"]["data"] is None
    assert r.json()["data"]["metadata"]["version"] == 3 and r.json()["data"]["metadata"]["deletion_time"] != ""
    # Undelete of that version brings the Secret back (as a new version: a write on both faces).
    c.undelete_secret_versions("default/s", versions=[3], mount_point=MOUNT)
    assert secret_value(dev, "s", "k") == b"c"
    got = c.read_secret_version("default/s", mount_point=MOUNT)["data"]
    assert got["data"] == {"k": "c"} and got["metadata"]["version"] == 5
    assert [v["operation"] for v in kube_versions(dev, "s")["versions"]] == ["create", "update", "update", "delete", "undelete"]

    # Soft delete of an older version keeps the Secret and can be undone.
    c.delete_secret_versions("default/s", versions=[1], mount_point=MOUNT)
    assert raw(dev, "GET", "kubernetes/data/default/s?version=1").status_code == 404
    assert secret_value(dev, "s", "k") == b"c"
    assert kube_versions(dev, "s")["versions"][0]["deletedAt"] != ""
    c.undelete_secret_versions("default/s", versions=[1], mount_point=MOUNT)
    assert c.read_secret_version("default/s", version=1, mount_point=MOUNT)["data"]["data"] == {"k": "a"}

    # Destroy drops a version's values for good, on both faces; a rollback to it is refused.
    c.destroy_secret_versions("default/s", versions=[2], mount_point=MOUNT)
    r = raw(dev, "GET", "kubernetes/data/default/s?version=2")
    assert r.status_code == 404 and r.json()["data"]["metadata"]["destroyed"] is True
    v2 = requests.get(dev.url + "/sigil/v1/namespaces/default/secrets/s/versions/2", headers=dev.auth, verify=dev.ca).json()
    assert v2["destroyed"] is True and "object" not in v2
    r = requests.post(dev.url + "/sigil/v1/namespaces/default/secrets/s/rollback", json={"version": 2}, headers=dev.auth,
                      verify=dev.ca, timeout=10)
    assert r.status_code == 400 and "destroyed" in r.text
    c.undelete_secret_versions("default/s", versions=[2], mount_point=MOUNT)  # destroyed stays destroyed
    assert raw(dev, "GET", "kubernetes/data/default/s?version=2").status_code == 404
    # Destroying the version the Secret stands at deletes the Secret too.
    c.destroy_secret_versions("default/s", versions=[5], mount_point=MOUNT)
    assert "NotFound" in kubectl(dev, "get", "secret", "s", check=False).stderr
    meta = c.read_secret_metadata("default/s", mount_point=MOUNT)["data"]
    assert meta["versions"]["5"]["destroyed"] is True and meta["current_version"] == 5

    # kubectl delete is a soft delete of the current version on the Vault face.
    kubectl(dev, "create", "secret", "generic", "k", "--from-literal=x=1")
    kubectl(dev, "delete", "secret", "k")
    r = raw(dev, "GET", "kubernetes/data/default/k")
    assert r.status_code == 404 and r.json()["data"]["metadata"]["deletion_time"] != ""
    # Listing shows Secrets with a kept history, deleted or not; metadata delete forgets one.
    assert c.list_secrets("default", mount_point=MOUNT)["data"]["keys"] == ["k", "s"]
    assert "default/" in c.list_secrets("", mount_point=MOUNT)["data"]["keys"]
    c.delete_metadata_and_all_versions("default/k", mount_point=MOUNT)
    assert raw(dev, "GET", "kubernetes/metadata/default/k").status_code == 404
    assert requests.get(dev.url + "/sigil/v1/namespaces/default/secrets/k/versions", headers=dev.auth, verify=dev.ca).status_code == 404
    assert c.list_secrets("default", mount_point=MOUNT)["data"]["keys"] == ["s"]
    # Version settings are the namespace's, and say so.
    with pytest.raises(hvac.exceptions.InvalidRequest, match="sigil.dev/history-versions"):
        c.update_metadata("default/s", max_versions=3, mount_point=MOUNT)
    assert c.read_configuration(mount_point=MOUNT)["data"]["cas_required"] is False


def test_rbac_and_the_vault_policy_are_both_checked(dev):
    root = hvac.Client(url=dev.url, token=dev.token, verify=dev.ca)
    kubectl(dev, "create", "secret", "generic", "db", "--from-literal=pw=one")
    kubectl(dev, "create", "secret", "generic", "other", "--from-literal=pw=two")
    root.sys.create_or_update_policy("app", 'path "kubernetes/data/default/*" { capabilities = ["read", "create", "update"] }\n'
                                            'path "kubernetes/metadata/default/*" { capabilities = ["read", "list"] }')
    tok = root.auth.token.create(policies=["app"], ttl="1h")["auth"]["client_token"]
    app = kv(dev, tok)
    # The policy allows it; RBAC does not (yet): refused, and the refusal says why.
    with pytest.raises(hvac.exceptions.Forbidden, match='cannot get resource "secrets"'):
        app.read_secret_version("default/db", mount_point=MOUNT)
    # A Role with resourceNames, bound to the policy's group: exactly that Secret.
    kubectl(dev, "create", "role", "db-reader", "--verb=get,update", "--resource=secrets", "--resource-name=db")
    kubectl(dev, "create", "rolebinding", "db-reader", "--role=db-reader", "--group=vault:policy:app")
    assert app.read_secret_version("default/db", mount_point=MOUNT)["data"]["data"] == {"pw": "one"}
    with pytest.raises(hvac.exceptions.Forbidden):
        app.read_secret_version("default/other", mount_point=MOUNT)  # resourceNames hold on this face too
    app.create_or_update_secret("default/db", secret={"pw": "new"}, mount_point=MOUNT)  # update allowed
    # Neither create nor update on "made": refused as an update, the same whether it exists or not.
    with pytest.raises(hvac.exceptions.Forbidden, match='cannot update resource "secrets"'):
        app.create_or_update_secret("default/made", secret={"pw": "x"}, mount_point=MOUNT)
    # Old versions and metadata are the history: secrets/versions, which the Role does not give.
    with pytest.raises(hvac.exceptions.Forbidden, match='cannot get resource "secrets/versions"'):
        app.read_secret_version("default/db", version=1, mount_point=MOUNT)
    with pytest.raises(hvac.exceptions.Forbidden):
        app.read_secret_metadata("default/db", mount_point=MOUNT)
    # RBAC alone is not enough either: outside the policy's paths the ACL refuses first.
    kubectl(dev, "create", "namespace", "ops")
    kubectl(dev, "create", "secret", "generic", "db", "-n", "ops", "--from-literal=pw=ops")
    kubectl(dev, "create", "clusterrolebinding", "app-admin", "--clusterrole=cluster-admin", "--group=vault:policy:app")
    with pytest.raises(hvac.exceptions.Forbidden):
        app.read_secret_version("ops/db", mount_point=MOUNT)
    assert app.read_secret_version("default/other", mount_point=MOUNT)["data"]["data"] == {"pw": "two"}
    # A root token is system:masters on the Kubernetes face, so it may do everything here.
    assert kv(dev).read_secret_version("ops/db", mount_point=MOUNT)["data"]["data"] == {"pw": "ops"}


def test_the_trail_records_both_faces_and_no_value(dev):
    kubectl(dev, "create", "secret", "generic", "audited", "--from-literal=pw=hunter2-value")
    c = kv(dev)
    c.read_secret_version("default/audited", mount_point=MOUNT)
    c.create_or_update_secret("default/audited", secret={"pw": "correct-horse-value"}, mount_point=MOUNT)
    with open(dev.audit_log) as f:
        text = f.read()
    assert "hunter2-value" not in text and "correct-horse-value" not in text
    assert base64.b64encode(b"hunter2-value").decode() not in text
    events = [json.loads(line) for line in text.splitlines()]
    mine = [e for e in events if e.get("requestURI") == "/v1/kubernetes/data/default/audited"]
    vault_face = [e for e in mine if "objectRef" not in e]
    kube_face = [e for e in mine if e.get("objectRef", {}).get("resource") == "secrets"]
    assert {e["verb"] for e in vault_face} >= {"get", "post"}, mine
    assert {e["verb"] for e in kube_face} == {"get", "update"}, mine
    for e in kube_face:
        assert e["objectRef"]["namespace"] == "default" and e["objectRef"]["name"] == "audited"
        assert e["user"]["username"] == vault_face[0]["user"]["username"]  # the same caller on both
        assert e["annotations"]["authorization.k8s.io/decision"] == "allow"


def test_review_regressions(dev):
    """From a hostile review: a refused write told whether the Secret existed (create vs update in
    the message); with history-versions 0 a soft delete lost the only copy of the values."""
    root = hvac.Client(url=dev.url, token=dev.token, verify=dev.ca)
    kubectl(dev, "create", "namespace", "hidden")
    kubectl(dev, "create", "secret", "generic", "there", "-n", "hidden", "--from-literal=k=v")
    root.sys.create_or_update_policy("nosy", 'path "kubernetes/*" { capabilities = ["create", "read", "update", "list"] }')
    nosy = root.auth.token.create(policies=["nosy"], ttl="1h")["auth"]["client_token"]
    answers = [raw(dev, "POST", f"kubernetes/data/hidden/{name}", token=nosy, json={"data": {"a": "b"}})
               for name in ("there", "not-there")]
    assert [a.status_code for a in answers] == [403, 403]
    errors = [a.json()["errors"][0] for a in answers]
    assert errors[0].replace('"there"', "NAME") == errors[1].replace('"not-there"', "NAME"), errors
    assert 'cannot update resource "secrets"' in errors[1]

    kubectl(dev, "create", "namespace", "keep0")
    kubectl(dev, "annotate", "namespace", "keep0", "sigil.dev/history-versions=0")
    c = kv(dev)
    c.create_or_update_secret("keep0/s", secret={"k": "one"}, mount_point=MOUNT)
    c.create_or_update_secret("keep0/s", secret={"k": "two"}, mount_point=MOUNT)
    assert c.read_secret_metadata("keep0/s", mount_point=MOUNT)["data"]["max_versions"] == 1
    c.delete_latest_version_of_secret("keep0/s", mount_point=MOUNT)
    assert "NotFound" in kubectl(dev, "get", "secret", "s", "-n", "keep0", check=False).stderr
    c.undelete_secret_versions("keep0/s", versions=[2], mount_point=MOUNT)
    assert secret_value(dev, "s", "k", ns="keep0") == b"two"
