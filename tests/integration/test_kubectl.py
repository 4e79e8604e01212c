"""The real kubectl (1.32, /usr/bin/kubectl) against a dev server, unchanged: the commands of
DESIGN.md's first story that this slice serves, checked against what kube-apiserver prints.
Watches are in test_watch.py."""
import base64
import json
import os
import subprocess

import pytest

from conftest import run

KUBECTL = "/usr/bin/kubectl"

SECRET_YAML = """apiVersion: v1
kind: Secret
metadata:
  name: dbcreds
  labels: {app: demo}
type: Opaque
stringData:
  username: admin
  password: hunter2
"""


@pytest.fixture
def kube(start_server, workdir):
    assert os.path.exists(KUBECTL), "these tests need the real kubectl at /usr/bin/kubectl"
    s = start_server(["--dev", "--listen", "127.0.0.1:0"])
    kubeconfig = os.path.join(os.path.dirname(s.ca), "kubeconfig")
    env = dict(os.environ, KUBECONFIG=kubeconfig, HOME=workdir)

    def k(*args, check=True, stdin=None, extra_env=None):
        e = dict(env, **(extra_env or {}))
        r = subprocess.run([KUBECTL] + list(args), capture_output=True, text=True, env=e, input=stdin, timeout=60)
        if check and r.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} exited {r.returncode}: {r.stderr}")
        return r

    k.workdir = workdir
    k.kubeconfig = kubeconfig
    return k


def write(k, name, text):
    path = os.path.join(k.workdir, name)
    with open(path, "w") as f:
        f.write(text)
    return path


def test_apply_get_describe_edit_delete(kube):
    f = write(kube, "s.yaml", SECRET_YAML)
    assert kube("apply", "-f", f).stdout.strip() == "secret/dbcreds created"
    out = kube("get", "secrets").stdout.splitlines()
    assert out[0].split() == ["NAME", "TYPE", "DATA", "AGE"]
    assert out[1].split()[:3] == ["dbcreds", "Opaque", "2"]
    pw = kube("get", "secret", "dbcreds", "-o", "jsonpath={.data.password}").stdout
    assert base64.b64decode(pw) == b"hunter2"
    desc = kube("describe", "secret", "dbcreds").stdout
    assert "password:  7 bytes" in desc and "username:  5 bytes" in desc and "hunter2" not in desc
    # Second apply goes through a strategic-merge PATCH with the last-applied annotation.
    assert kube("apply", "-f", f).stdout.strip() == "secret/dbcreds configured"
    obj = json.loads(kube("get", "secret", "dbcreds", "-o", "json", "--show-managed-fields").stdout)
    assert "kubectl.kubernetes.io/last-applied-configuration" in obj["metadata"]["annotations"]
    assert "stringData" not in obj
    assert obj["metadata"]["uid"] and obj["metadata"]["creationTimestamp"] and obj["metadata"]["resourceVersion"]
    assert {m["manager"] for m in obj["metadata"]["managedFields"]} >= {"kubectl-client-side-apply"}
    kube("edit", "secret", "dbcreds", extra_env={"KUBE_EDITOR": "sed -i s/YWRtaW4=/cm9vdA==/"})
    assert base64.b64decode(kube("get", "secret", "dbcreds", "-o", "jsonpath={.data.username}").stdout) == b"root"
    assert kube("delete", "-f", f).stdout.strip() == 'secret "dbcreds" deleted'
    r = kube("get", "secret", "dbcreds", check=False)
    assert r.returncode == 1 and 'Error from server (NotFound): secrets "dbcreds" not found' in r.stderr


def test_create_secret_kinds_use_protobuf_bodies(kube, workdir):
    kube("create", "secret", "generic", "s1", "--from-literal=user=admin", "--from-literal=pass=p@ss w")
    assert base64.b64decode(kube("get", "secret", "s1", "-o", "jsonpath={.data.pass}").stdout) == b"p@ss w"
    key, crt = os.path.join(workdir, "t.key"), os.path.join(workdir, "t.crt")
    run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", key,
         "-out", crt, "-subj", "/CN=x", "-days", "1"])
    kube("create", "secret", "tls", "t1", "--cert", crt, "--key", key)
    t1 = json.loads(kube("get", "secret", "t1", "-o", "json").stdout)
    assert t1["type"] == "kubernetes.io/tls" and set(t1["data"]) == {"tls.crt", "tls.key"}
    kube("create", "secret", "docker-registry", "d1", "--docker-server=reg.example.com", "--docker-username=u",
         "--docker-password=p", "--docker-email=e@x.com")
    cfg = json.loads(base64.b64decode(kube("get", "secret", "d1", "-o", "jsonpath={.data.\\.dockerconfigjson}").stdout))
    assert cfg["auths"]["reg.example.com"]["auth"] == "dTpw"
    env_file = write(kube, "env", "A=1\nB=two\n")
    kube("create", "secret", "generic", "g1", "--from-env-file", env_file)
    kube("create", "secret", "generic", "g2", "--from-file", crt)
    assert set(json.loads(kube("get", "secret", "g1", "-o", "json").stdout)["data"]) == {"A", "B"}
    r = kube("create", "secret", "generic", "s1", "--from-literal=a=b", check=False)
    assert r.returncode == 1 and 'secrets "s1" already exists' in r.stderr


def test_dry_run_label_annotate_patch_selectors(kube):
    out = kube("create", "secret", "generic", "dry", "--from-literal=a=b", "--dry-run=server", "-o", "json").stdout
    assert json.loads(out)["metadata"]["name"] == "dry"
    assert kube("get", "secret", "dry", check=False).returncode == 1
    kube("create", "secret", "generic", "s1", "--from-literal=a=b")
    kube("create", "secret", "generic", "s2", "--from-literal=a=b")
    kube("label", "secret", "s1", "env=prod", "tier=web")
    kube("annotate", "secret", "s1", "note=hi")
    assert kube("get", "secrets", "-l", "env=prod", "-o", "name").stdout.split() == ["secret/s1"]
    assert kube("get", "secrets", "-l", "tier in (web,db),!gone", "-o", "name").stdout.split() == ["secret/s1"]
    assert kube("get", "secrets", "--field-selector", "metadata.name!=s1", "-o", "name").stdout.split() == ["secret/s2"]
    r = kube("get", "secrets", "--field-selector", "data.a=1", check=False)
    assert r.returncode == 1 and "field label not supported: data.a" in r.stderr
    kube("label", "secret", "s1", "env-")
    assert "env" not in json.loads(kube("get", "secret", "s1", "-o", "json").stdout)["metadata"]["labels"]
    kube("patch", "secret", "s1", "--type=merge", "-p", '{"data":{"x":"eA=="}}')
    kube("patch", "secret", "s1", "--type=json", "-p", '[{"op":"remove","path":"/data/a"}]')
    assert json.loads(kube("get", "secret", "s1", "-o", "json").stdout)["data"] == {"x": "eA=="}
    r = kube("label", "secret", "s1", "v=1", "--resource-version=1", check=False)
    assert r.returncode == 1 and "the object has been modified" in r.stderr
    out = kube("get", "secrets", "--chunk-size=1", "-o", "name").stdout.split()
    assert out == ["secret/s1", "secret/s2"]


def test_namespaces_and_all_namespaces(kube):
    assert kube("create", "namespace", "team-a").stdout.strip() == "namespace/team-a created"
    kube("create", "secret", "generic", "x", "-n", "team-a", "--from-literal=k=v")
    rows = [l.split()[:2] for l in kube("get", "secrets", "-A").stdout.splitlines()[1:]]
    assert ["team-a", "x"] in rows
    names = [l.split()[0] for l in kube("get", "ns").stdout.splitlines()[1:]]
    assert {"default", "kube-system", "kube-public", "team-a"} <= set(names)
    r = kube("create", "secret", "generic", "y", "-n", "nope", "--from-literal=k=v", check=False)
    assert r.returncode == 1 and 'namespaces "nope" not found' in r.stderr
    kube("delete", "namespace", "team-a")
    assert "team-a" not in kube("get", "secrets", "-A").stdout
    r = kube("delete", "namespace", "default", check=False)
    assert r.returncode == 1 and "may not be deleted" in r.stderr


def test_namespace_apply_label_annotate(kube):
    f = write(kube, "ns.yaml", "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: team\n  labels: {env: dev}\n")
    assert kube("apply", "-f", f).stdout.strip() == "namespace/team created"
    assert kube("apply", "-f", f).stdout.strip() == "namespace/team unchanged"
    write(kube, "ns.yaml", "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: team\n  labels: {env: prod}\n")
    assert kube("apply", "-f", f).stdout.strip() == "namespace/team configured"
    kube("label", "ns", "team", "tier=web")
    kube("annotate", "ns", "team", "sigil.dev/history-versions=3")
    labels = json.loads(kube("get", "ns", "team", "-o", "jsonpath={.metadata.labels}").stdout)
    assert labels == {"env": "prod", "tier": "web", "kubernetes.io/metadata.name": "team"}
    r = kube("annotate", "ns", "team", "sigil.dev/history-versions=lots", "--overwrite", check=False)
    assert r.returncode == 1 and "must be an integer from 0 to 1000" in r.stderr
    assert kube("apply", "--server-side", "-f", f).stdout.strip() == "namespace/team serverside-applied"


def test_validation_errors_match_kube_apiserver(kube):
    bad = write(kube, "bad.yaml", "apiVersion: v1\nkind: Secret\nmetadata: {name: Bad_Name}\ndata: {'a b': eA==}\n")
    r = kube("apply", "-f", bad, check=False)
    assert r.returncode == 1
    # kubectl prints a 422's details.causes as a list, as it does for kube-apiserver.
    assert 'The Secret "Bad_Name" is invalid: \n* metadata.name: Invalid value: "Bad_Name": a lowercase RFC 1123 subdomain' in r.stderr
    assert '* data[a b]: Invalid value: "a b": a valid config key must consist of alphanumeric characters' in r.stderr
    tls = write(kube, "tls.yaml", "apiVersion: v1\nkind: Secret\nmetadata: {name: t}\ntype: kubernetes.io/tls\ndata: {tls.crt: eA==}\n")
    r = kube("apply", "-f", tls, check=False)
    assert r.returncode == 1 and 'The Secret "t" is invalid: data[tls.key]: Required value' in r.stderr
    unknown = write(kube, "u.yaml", "apiVersion: v1\nkind: Secret\nmetadata: {name: u}\nspec: {x: 1}\n")
    r = kube("apply", "-f", unknown, check=False)
    assert r.returncode == 1 and 'strict decoding error: unknown field "spec"' in r.stderr
    kube("create", "secret", "generic", "imm", "--from-literal=a=b")
    kube("patch", "secret", "imm", "-p", '{"immutable":true}')
    r = kube("patch", "secret", "imm", "-p", '{"data":{"a":"Yw=="}}', check=False)
    assert r.returncode == 1 and "data: Forbidden: field is immutable when `immutable` is set" in r.stderr
    r = kube("patch", "secret", "imm", "-p", '{"type":"x"}', check=False)
    assert r.returncode == 1 and 'type: Invalid value: "x": field is immutable' in r.stderr


def managers(kube, name):
    obj = json.loads(kube("get", "secret", name, "-o", "json", "--show-managed-fields").stdout)
    return {(m["manager"], m["operation"]): m["fieldsV1"] for m in obj["metadata"]["managedFields"]}, obj


def test_server_side_apply(kube):
    f = write(kube, "ssa.yaml", SECRET_YAML.replace("dbcreds", "ssa"))
    # No GET first: the PATCH creates the Secret.
    assert kube("apply", "--server-side", "-f", f).stdout.strip() == "secret/ssa serverside-applied"
    assert kube("apply", "--server-side", "-f", f).stdout.strip() == "secret/ssa serverside-applied"
    owners, obj = managers(kube, "ssa")
    assert owners == {("kubectl", "Apply"): {"f:data": {"f:password": {}, "f:username": {}},
                                             "f:metadata": {"f:labels": {"f:app": {}}}, "f:type": {}}}
    assert "stringData" not in obj
    # Another manager changes a field the applier owns: it takes the field over (an update).
    kube("patch", "secret", "ssa", "--type=merge", "-p", '{"data":{"username":"cm9vdA=="}}')
    owners, _ = managers(kube, "ssa")
    assert owners[("kubectl-patch", "Update")] == {"f:data": {"f:username": {}}}
    assert "f:username" not in owners[("kubectl", "Apply")]["f:data"]
    # Applying a different value for it now conflicts, in kube-apiserver's words.
    r = kube("apply", "--server-side", "-f", f, check=False)
    assert r.returncode == 1
    assert 'Apply failed with 1 conflict: conflict with "kubectl-patch" using v1: .data.username' in r.stderr
    assert base64.b64decode(kube("get", "secret", "ssa", "-o", "jsonpath={.data.username}").stdout) == b"root"
    # --force-conflicts takes it back.
    kube("apply", "--server-side", "--force-conflicts", "-f", f)
    assert base64.b64decode(kube("get", "secret", "ssa", "-o", "jsonpath={.data.username}").stdout) == b"admin"
    owners, _ = managers(kube, "ssa")
    assert ("kubectl-patch", "Update") not in owners
    # A key the applier no longer mentions is removed; a key someone else owns is kept.
    kube("patch", "secret", "ssa", "--type=merge", "-p", '{"data":{"extra":"eA=="}}')
    write(kube, "ssa.yaml", SECRET_YAML.replace("dbcreds", "ssa").replace("  password: hunter2\n", ""))
    kube("apply", "--server-side", "-f", f)
    _, obj = managers(kube, "ssa")
    assert set(obj["data"]) == {"username", "extra"}
    # Two appliers with different names conflict with each other by name.
    r = kube("apply", "--server-side", "--field-manager", "team-b", "-f",
             write(kube, "b.yaml", SECRET_YAML.replace("dbcreds", "ssa").replace("admin", "other")), check=False)
    assert r.returncode == 1 and 'conflict with "kubectl": .data.username' in r.stderr


def test_client_side_apply_then_server_side(kube):
    f = write(kube, "m.yaml", "apiVersion: v1\nkind: Secret\nmetadata: {name: mig}\nstringData: {a: one, b: two}\n")
    kube("apply", "-f", f)
    write(kube, "m.yaml", "apiVersion: v1\nkind: Secret\nmetadata: {name: mig}\nstringData: {a: one, b: three}\n")
    r = kube("apply", "--server-side", "-f", f, check=False)
    assert r.returncode == 1 and 'conflict with "kubectl-client-side-apply" using v1: .data.b' in r.stderr
    # Forced, and kubectl migrates the client-side ownership with a JSON patch on managedFields.
    kube("apply", "--server-side", "--force-conflicts", "-f", f)
    owners, obj = managers(kube, "mig")
    assert base64.b64decode(obj["data"]["b"]) == b"three"
    assert ("kubectl-client-side-apply", "Update") not in owners
    assert owners[("kubectl", "Apply")] == {"f:data": {"f:a": {}, "f:b": {}}}
    # With unchanged values the first server-side apply shares the fields and migrates them.
    g = write(kube, "n.yaml", "apiVersion: v1\nkind: Secret\nmetadata: {name: mig2}\nstringData: {a: one}\n")
    kube("apply", "-f", g)
    assert kube("apply", "--server-side", "-f", g).stdout.strip() == "secret/mig2 serverside-applied"
    owners, _ = managers(kube, "mig2")
    assert ("kubectl-client-side-apply", "Update") not in owners and ("kubectl", "Apply") in owners


def test_api_resources_and_version(kube):
    r = kube("api-resources")
    rows = {l.split()[0]: l.split() for l in r.stdout.splitlines()[1:]}
    assert "secrets" in rows and "namespaces" in rows and "ns" in rows["namespaces"]
    assert "v1.32" in kube("version").stdout
