"""Audit: every request the policy selects lands in the trail as an audit.k8s.io/v1 Event, secret
values never do (at any level they become keyed hashes that `sigil audit hash` reproduces),
`sigil audit verify` finds each kind of tampering, and a trail that cannot be written refuses
requests (503, nothing changed) until it can be written again."""
import base64
import json
import os
import subprocess
import textwrap
import time

import pytest
import requests

from conftest import SIGIL, run

KUBECTL = "/usr/bin/kubectl"
CANARIES = ["canary-Zq8wX1-literal", "canary-Vb3nM7-applied", "canary-Pt5rL2-patched", "canary-Hk9sD4-ssa",
            "canary-Jf6gY0-stringdata", "canary-Wm2cQ8-jsonpatch", "canary-Rk4vT7-annotations", "canary-Nc1xE5-refused",
            "canary-Ty3uP8-typo"]


def forms(v):
    b = v.encode()
    out = {v, b.hex(), base64.b64encode(b).decode().rstrip("=")}
    for i in range(1, 3):  # base64 at each alignment, as it may sit inside a longer value
        out.add(base64.b64encode(b"x" * i + b).decode()[4:-4])
    return out


def policy_file(workdir, level):
    path = os.path.join(workdir, f"policy-{level}.yaml")
    with open(path, "w") as f:
        f.write(textwrap.dedent(f"""\
            apiVersion: audit.k8s.io/v1
            kind: Policy
            rules:
            - level: None
              nonResourceURLs: ["/openapi*"]
            - level: {level}
            """))
    return path


def start(start_server, workdir, level, extra=""):
    log = os.path.join(workdir, f"audit-{level}.log")
    cfg = os.path.join(workdir, f"c-{level}.yaml")
    with open(cfg, "w") as f:
        f.write(f"audit: {{policy_file: {policy_file(workdir, level)}, log_path: {log}{extra}}}\n")
    s = start_server(["--dev", "--listen", "127.0.0.1:0", "--config", cfg])
    s.audit_log = log
    s.kc = os.path.join(os.path.dirname(s.ca), "kubeconfig")
    s.workdir = workdir
    return s


def kubectl(s, *args, stdin=None, check=True):
    env = dict(os.environ, KUBECONFIG=s.kc, HOME=s.workdir)
    r = subprocess.run([KUBECTL, *args], capture_output=True, text=True, env=env, input=stdin, timeout=60)
    if check:
        assert r.returncode == 0, (args, r.stdout, r.stderr)
    return r


def events(s):
    with open(s.audit_log) as f:
        return [json.loads(line) for line in f]


def exercise(s):
    """Every way a value travels through the Kubernetes API."""
    lit, applied, patched, ssa, sd, jp, ann, refused, typo = CANARIES
    kubectl(s, "create", "secret", "generic", "lit", f"--from-literal=v={lit}")  # protobuf body
    doc = textwrap.dedent(f"""\
        apiVersion: v1
        kind: Secret
        metadata: {{name: app}}
        stringData: {{v: {applied}}}
        """)
    kubectl(s, "apply", "-f", "-", stdin=doc)  # last-applied annotation holds the value
    kubectl(s, "apply", "-f", "-", stdin=doc.replace(applied, applied + "-2"))
    kubectl(s, "patch", "secret", "app", "--type=merge", "-p", json.dumps({"stringData": {"w": patched}}))
    kubectl(s, "patch", "secret", "app", "--type=json",
            "-p", json.dumps([{"op": "add", "path": "/data/j", "value": base64.b64encode(jp.encode()).decode()}]))
    # A JSON patch that replaces the annotations: the last-applied one it carries holds a value.
    last_applied = json.dumps({"data": {"p": base64.b64encode(ann.encode()).decode()}})
    kubectl(s, "patch", "secret", "app", "--type=json", "-p", json.dumps(
        [{"op": "replace", "path": "/metadata/annotations",
          "value": {"kubectl.kubernetes.io/last-applied-configuration": last_applied}}]))
    # A refused JSON patch (its path is not a JSON pointer) is recorded too, value and all.
    r = requests.patch(s.url + "/api/v1/namespaces/default/secrets/app", verify=s.ca, timeout=10,
                       headers={**s.auth, "Content-Type": "application/json-patch+json"},
                       data=json.dumps([{"op": "add", "path": "data/pw", "value": base64.b64encode(refused.encode()).decode()}]))
    assert r.status_code == 422, r.text
    # A misspelt field (kube-apiserver drops it with a warning): the value was meant to be secret.
    r = requests.post(s.url + "/api/v1/namespaces/default/secrets", headers=s.auth, verify=s.ca, timeout=10,
                      json={"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "typo"}, "stringdata": {"v": typo}})
    assert r.status_code == 201, r.text
    kubectl(s, "apply", "--server-side", "-f", "-", stdin=f"apiVersion: v1\nkind: Secret\nmetadata: {{name: ssa}}\nstringData: {{v: {ssa}}}\n")
    r = requests.post(s.url + "/api/v1/namespaces/default/secrets", headers=s.auth, verify=s.ca, timeout=10,
                      json={"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "sd"}, "stringData": {"v": sd}})
    assert r.status_code == 201
    assert lit in base64.b64decode(kubectl(s, "get", "secret", "lit", "-o", "jsonpath={.data.v}").stdout).decode()
    kubectl(s, "get", "secrets", "-o", "yaml")
    kubectl(s, "get", "secrets", "-w", "--request-timeout=2s", check=False)
    for path in ["/sigil/v1/namespaces/default/secrets/app/versions", "/sigil/v1/namespaces/default/secrets/app/versions/1"]:
        assert requests.get(s.url + path, headers=s.auth, verify=s.ca, timeout=10).status_code == 200
    r = requests.post(s.url + "/sigil/v1/namespaces/default/secrets/app/rollback", headers=s.auth, verify=s.ca, timeout=10,
                      json={"version": 1})
    assert r.status_code in (200, 201), r.text
    r = requests.post(s.url + "/apis/authentication.k8s.io/v1/tokenreviews", headers=s.auth, verify=s.ca, timeout=10,
                      json={"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": s.token}})
    assert r.status_code == 201
    kubectl(s, "delete", "secret", "lit", "app", "ssa", "sd", "typo")


@pytest.mark.parametrize("level", ["Metadata", "Request", "RequestResponse"])
def test_no_secret_value_reaches_the_trail_at_any_level(start_server, workdir, level):
    s = start(start_server, workdir, level)
    exercise(s)
    with open(s.audit_log) as f:
        text = f.read()
    leaked = sorted({c for c in CANARIES + [s.token] for form in forms(c) if form in text})
    assert not leaked, (level, leaked)
    evs = events(s)
    assert all(e["kind"] == "Event" and e["apiVersion"] == "audit.k8s.io/v1" and e["level"] == level for e in evs)
    creates = [e for e in evs if e["verb"] == "create" and e.get("objectRef", {}).get("resource") == "secrets"
               and e["stage"] == "ResponseComplete"]
    assert creates and creates[0]["user"]["username"] == "sigil-dev-admin"
    assert creates[0]["objectRef"]["namespace"] == "default" and creates[0]["responseStatus"]["code"] == 201
    assert creates[0]["annotations"]["authorization.k8s.io/decision"] == "allow"
    # Mutations are recorded before they act, reads only once answered (RequestReceived omitted
    # by default only where nothing changes).
    stages = {(e["auditID"], e["stage"]) for e in evs}
    for e in creates:
        assert (e["auditID"], "RequestReceived") in stages
    assert not any(e.get("requestURI", "").startswith("/openapi") for e in evs)  # level None
    hashed = run([SIGIL, "audit", "hash", "--kubeconfig", s.kc, CANARIES[0]]).stdout.strip()
    assert hashed.startswith("hmac-sha256:") and len(hashed) == len("hmac-sha256:") + 64
    if level == "Metadata":
        assert "requestObject" not in text and "responseObject" not in text
    else:
        # The value is recognisable by its keyed hash, never readable.
        assert hashed in text
        reqs = [e for e in evs if e.get("requestObject") and e["objectRef"].get("resource") == "secrets"]
        assert reqs
    if level == "RequestResponse":
        gets = [e for e in evs if e["verb"] == "get" and e.get("objectRef", {}).get("name") == "lit" and "responseObject" in e]
        assert gets and gets[0]["responseObject"]["data"]["v"] == hashed
        assert gets[0]["responseObject"]["metadata"]["managedFields"]  # kept unless the policy omits them
    # TokenReviews and audit-hash bodies are never recorded.
    for e in evs:
        if e.get("objectRef", {}).get("resource") == "tokenreviews" or e.get("requestURI") == "/sigil/v1/audit/hash":
            assert "requestObject" not in e and "responseObject" not in e
    assert run([SIGIL, "audit", "verify", s.audit_log]).stdout.startswith("ok: ")


def test_denials_and_impersonation_are_recorded(start_server, workdir):
    s = start(start_server, workdir, "Metadata")
    r = requests.get(s.url + "/api/v1/namespaces/default/secrets", verify=s.ca, timeout=10,
                     headers={**s.auth, "Impersonate-User": "mallory"})
    assert r.status_code == 403 and r.headers.get("Audit-Id")
    e = [e for e in events(s) if e["auditID"] == r.headers["Audit-Id"]][-1]
    assert e["user"]["username"] == "sigil-root" and e["impersonatedUser"]["username"] == "mallory"
    assert e["annotations"]["authorization.k8s.io/decision"] == "forbid"
    assert e["responseStatus"]["code"] == 403 and e["responseStatus"]["reason"] == "Forbidden"


def test_verify_reports_the_first_tampered_line(start_server, workdir):
    s = start(start_server, workdir, "Metadata")
    for i in range(6):
        kubectl(s, "create", "secret", "generic", f"s{i}", "--from-literal=k=v")
    s.stop()
    with open(s.audit_log) as f:
        good = f.readlines()
    assert len(good) >= 12
    assert run([SIGIL, "audit", "verify", s.audit_log]).returncode == 0

    def verify(lines):
        with open(s.audit_log, "w") as f:
            f.writelines(lines)
        r = run([SIGIL, "audit", "verify", s.audit_log], check=False)
        assert r.returncode == 1, r.stdout
        return r.stdout

    edited = list(good)
    edited[4] = edited[4].replace('"verb":"create"', '"verb":"get"').replace('"verb":"get"', '"verb":"list"', 1)
    assert edited[4] != good[4]
    assert f"{s.audit_log}:5: this line was edited" in verify(edited)
    assert f"{s.audit_log}:4: the chain breaks" in verify(good[:3] + good[4:])       # removed
    assert f"{s.audit_log}:6: the chain breaks" in verify(good[:5] + [good[1]] + good[5:])  # inserted
    assert f"{s.audit_log}:7: the chain breaks" in verify(good[:6] + [good[7], good[6]] + good[8:])  # reordered
    assert f"{s.audit_log}:3: not a chained audit line" in verify(good[:2] + ["{}\n"] + good[2:])


def test_unwritable_trail_refuses_requests_until_it_recovers(start_server, workdir, small_fs_1m):
    cfg = os.path.join(workdir, "c.yaml")
    log = os.path.join(small_fs_1m, "audit.log")
    with open(cfg, "w") as f:
        f.write(f"audit: {{log_path: {log}}}\n")
    s = start_server(["--dev", "--listen", "127.0.0.1:0", "--config", cfg])
    base = s.url + "/api/v1/namespaces/default/secrets"

    def create(name):
        return requests.post(base, headers=s.auth, verify=s.ca, timeout=10,
                             json={"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "stringData": {"k": "v"}})

    assert create("before").status_code == 201
    # Fill the filesystem: every audited request is refused, and nothing changes.
    filler = os.path.join(small_fs_1m, "filler")
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError:
        pass
    finally:
        os.close(fd)
    # The audit file's last page may still have room for a few events; then writes fail.
    for i in range(20):
        r = create(f"during-{i}")
        if r.status_code != 201:
            break
    assert r.status_code == 503 and r.json()["reason"] == "ServiceUnavailable" and "audit" in r.json()["message"], r.text
    refused = f"during-{i}"
    r = requests.get(base + "/before", headers=s.auth, verify=s.ca, timeout=10)
    assert r.status_code == 503  # a read is not answered unrecorded either
    os.unlink(filler)
    assert requests.get(base + "/" + refused, headers=s.auth, verify=s.ca, timeout=10).status_code == 404  # nothing stored
    for j in range(i):
        assert requests.get(base + f"/during-{j}", headers=s.auth, verify=s.ca, timeout=10).status_code == 200
    assert create("after").status_code == 201
    assert run([SIGIL, "audit", "verify", log]).returncode == 0  # failed batches left no partial line


def test_failed_authentication_is_recorded(start_server, workdir):
    s = start(start_server, workdir, "Metadata")
    r = requests.get(s.url + "/api/v1/namespaces/default/secrets", verify=s.ca, timeout=10,
                     headers={"Authorization": "Bearer not-a-token"})
    assert r.status_code == 401
    failed = [e for e in events(s) if e["responseStatus"]["code"] == 401]
    assert len(failed) == 1 and failed[0]["user"]["username"] == "system:anonymous"
    assert failed[0]["stage"] == "ResponseStarted" and "not-a-token" not in json.dumps(failed[0])


def test_stdout_sink(start_server, workdir):
    cfg = os.path.join(workdir, "c.yaml")
    with open(cfg, "w") as f:
        f.write("audit: {stdout: true}\n")
    s = start_server(["--dev", "--listen", "127.0.0.1:0", "--config", cfg])
    for name in ["a", "b"]:
        r = requests.post(s.url + "/api/v1/namespaces/default/secrets", headers=s.auth, verify=s.ca, timeout=10,
                          json={"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "stringData": {"k": "stdout-canary"}})
        assert r.status_code == 201
    s.stop()
    lines = [l for l in s.proc.stdout.read().splitlines() if l.startswith("{")]
    evs = [json.loads(l) for l in lines]
    assert [(e["verb"], e["stage"]) for e in evs] == [("create", "RequestReceived"), ("create", "ResponseComplete")] * 2
    assert "stdout-canary" not in "".join(lines)
    path = os.path.join(workdir, "from-stdout.log")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    assert run([SIGIL, "audit", "verify", path]).returncode == 0


def test_policy_can_omit_managed_fields(start_server, workdir):
    path = os.path.join(workdir, "policy.yaml")
    with open(path, "w") as f:
        f.write("apiVersion: audit.k8s.io/v1\nkind: Policy\nomitManagedFields: true\nrules: [{level: RequestResponse}]\n")
    log = os.path.join(workdir, "audit.log")
    cfg = os.path.join(workdir, "c.yaml")
    with open(cfg, "w") as f:
        f.write(f"audit: {{policy_file: {path}, log_path: {log}}}\n")
    s = start_server(["--dev", "--listen", "127.0.0.1:0", "--config", cfg])
    r = requests.post(s.url + "/api/v1/namespaces/default/secrets", headers=s.auth, verify=s.ca, timeout=10,
                      json={"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "m"}, "stringData": {"k": "v"}})
    assert r.status_code == 201 and r.json()["metadata"]["managedFields"]
    with open(log) as f:
        done = [json.loads(l) for l in f if '"ResponseComplete"' in l]
    assert done and "managedFields" not in done[-1]["responseObject"]["metadata"]
