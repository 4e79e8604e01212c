"""Kubernetes RBAC, driven with the real kubectl over TLS: the RBAC objects are created with
`kubectl create` (protobuf bodies) and `kubectl apply -f`; an authorization matrix checks that
`kubectl auth can-i` and the real outcome of each request agree with an independent model of
kube-apiserver's rules; escalation attempts are denied unless `escalate` or `bind` is held."""
import json
import os
import subprocess
import textwrap
import time

import pytest
import requests

from conftest import readline, token_file_config, token_kubeconfig

KUBECTL = "/usr/bin/kubectl"
RBAC = "rbac.authorization.k8s.io"
USERS = {  # token -> (user, uid, groups)
    "tok-alice": ("alice", "u-alice", ["team-a"]),
    "tok-bob": ("bob", "u-bob", ["team-b"]),
    "tok-carol": ("carol", "u-carol", []),
    "tok-dave": ("dave", "u-dave", []),
}


@pytest.fixture
def srv(start_server, workdir):
    cfg = token_file_config(workdir, "".join(f'{tok},{user},{uid},"{",".join(groups)}"\n' if groups else f"{tok},{user},{uid}\n"
                                             for tok, (user, uid, groups) in USERS.items()))
    s = start_server(["--dev", "--listen", "127.0.0.1:0", "--config", cfg])
    s.workdir = workdir
    s.admin_kc = os.path.join(os.path.dirname(s.ca), "kubeconfig")
    s.kc = {"admin": s.admin_kc}
    for tok, (user, _, _) in USERS.items():
        s.kc[user] = token_kubeconfig(os.path.join(workdir, f"kc-{user}"), s, tok)
    return s


def kubectl(s, who, *args, stdin=None, check=True):
    env = dict(os.environ, KUBECONFIG=s.kc[who], HOME=s.workdir)
    r = subprocess.run([KUBECTL, *args], capture_output=True, text=True, env=env, input=stdin, timeout=60)
    if check and r.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(args)} as {who}: rc {r.returncode}\n{r.stdout}\n{r.stderr}")
    return r


def token_of(user):
    return next(t for t, (u, _, _) in USERS.items() if u == user)


def call(s, who, method, path, headers=None, **kw):
    headers = dict(headers or {}, Authorization="Bearer " + (s.token if who == "admin" else token_of(who)))
    return requests.request(method, s.url + path, headers=headers, verify=s.ca, timeout=10, **kw)


POLICY = """\
apiVersion: v1
kind: Namespace
metadata: {name: team-a}
---
apiVersion: v1
kind: Namespace
metadata: {name: team-b}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: secret-reader, namespace: team-a}
rules:
- apiGroups: [""]
  resources: [secrets]
  verbs: [get, list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: one-secret, namespace: team-a}
rules:
- apiGroups: [""]
  resources: [secrets]
  resourceNames: [db]
  verbs: [get, update]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: alice-reads, namespace: team-a}
subjects: [{kind: User, apiGroup: rbac.authorization.k8s.io, name: alice}]
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: secret-reader}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: bob-db, namespace: team-a}
subjects: [{kind: User, apiGroup: rbac.authorization.k8s.io, name: bob}]
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: one-secret}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: team-b-edits, namespace: team-b}
subjects: [{kind: Group, apiGroup: rbac.authorization.k8s.io, name: team-b}]
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: edit}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: carol-views}
subjects: [{kind: User, apiGroup: rbac.authorization.k8s.io, name: carol}]
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: view}
"""

# The model, written from kube-apiserver's documented rules rather than from sigil's code:
# (user, namespace) -> list of (verbs, resourceNames) granted on core "secrets".
EDIT_VERBS = {"get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"}
MODEL = {
    ("alice", "team-a"): [({"get", "list", "watch"}, None)],
    ("bob", "team-a"): [({"get", "update"}, {"db"})],
    ("bob", "team-b"): [(EDIT_VERBS, None)],  # edit, via the team-b group, in team-b only
    # carol: view everywhere, and view never includes secrets; dave: nothing
}


def expected(user, verb, ns, name):
    if user == "admin":
        return True
    for verbs, names in MODEL.get((user, ns), []):
        # A rule with resourceNames never matches a request without a name (list, watch, create).
        if verb in verbs and (names is None or (name is not None and name in names)):
            return True
    return False


def real_request(s, who, verb, ns, name):
    base = f"/api/v1/namespaces/{ns}/secrets"
    body = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name or "new-one"}, "stringData": {"k": "v"}}
    if verb == "get":
        return call(s, who, "GET", f"{base}/{name}")
    if verb == "list":
        return call(s, who, "GET", base)
    if verb == "watch":
        return call(s, who, "GET", base + "?watch=1&timeoutSeconds=1")
    if verb == "create":
        return call(s, who, "POST", base + "?dryRun=All", json=body)
    if verb == "update":
        return call(s, who, "PUT", f"{base}/{name}?dryRun=All", json=body)
    if verb == "delete":
        return call(s, who, "DELETE", f"{base}/{name}?dryRun=All")
    raise ValueError(verb)


def test_authorization_matrix(srv):
    kubectl(srv, "admin", "apply", "-f", "-", stdin=POLICY)
    for ns in ["team-a", "team-b"]:
        for n in ["db", "other"]:
            kubectl(srv, "admin", "create", "secret", "generic", n, "-n", ns, "--from-literal=k=v")
    checked = 0
    for who in ["admin", "alice", "bob", "carol", "dave"]:
        for ns in ["team-a", "team-b"]:
            for verb in ["get", "list", "watch", "create", "update", "delete"]:
                names = ["db", "other"] if verb in ("get", "update", "delete") else [None]
                for name in names:
                    want = expected(who, verb, ns, name)
                    target = f"secrets/{name}" if name else "secrets"
                    r = kubectl(srv, who, "auth", "can-i", verb, target, "-n", ns, check=False)
                    assert r.stdout.strip() == ("yes" if want else "no"), (who, verb, ns, name, r.stdout, r.stderr)
                    res = real_request(srv, who, verb, ns, name)
                    if want:
                        assert res.status_code in (200, 201), (who, verb, ns, name, res.status_code, res.text)
                    else:
                        assert res.status_code == 403, (who, verb, ns, name, res.status_code, res.text)
                        assert res.json()["reason"] == "Forbidden"
                    checked += 1
    assert checked == 5 * 2 * (3 * 2 + 3)
    # A denial reads as kube-apiserver's, and kubectl prints it as such.
    r = kubectl(srv, "carol", "get", "secret", "db", "-n", "team-a", check=False)
    assert r.returncode == 1 and r.stderr.strip() == (
        'Error from server (Forbidden): secrets "db" is forbidden: User "carol" cannot get resource "secrets" '
        'in API group "" in the namespace "team-a"')
    # carol's view role does let her list namespaces; dave may not.
    assert kubectl(srv, "carol", "get", "ns", "team-a", "-o", "name").stdout.strip() == "namespace/team-a"
    assert kubectl(srv, "dave", "get", "ns", "team-a", check=False).returncode == 1
    # History of a secret is a subresource: readable with edit (bob in team-b), not with a plain reader.
    assert call(srv, "bob", "GET", "/sigil/v1/namespaces/team-b/secrets/db/versions").status_code == 200
    r = call(srv, "alice", "GET", "/sigil/v1/namespaces/team-a/secrets/db/versions")
    assert r.status_code == 403 and 'cannot get resource "secrets/versions"' in r.json()["message"]
    # Removing the binding removes the access, at once.
    kubectl(srv, "admin", "delete", "rolebinding", "alice-reads", "-n", "team-a")
    assert call(srv, "alice", "GET", "/api/v1/namespaces/team-a/secrets/db").status_code == 403


# Beyond plain secrets: the history subresource and an RBAC resource, under the same policy.
# (user, namespace) -> {resource: verbs}; from kube's bootstrap roles: edit reads and writes
# secrets and reads their history (secrets/versions); no role here grants rolebindings except
# cluster-admin (admin would); alice's and bob's own roles name only "secrets".
SUB_MODEL = {
    ("bob", "team-b"): {"secrets/versions": {"get", "list", "watch"}},
}


def sub_expected(user, verb, ns, resource):
    return user == "admin" or verb in SUB_MODEL.get((user, ns), {}).get(resource, set())


def test_authorization_matrix_subresources_and_rbac_resources(srv):
    kubectl(srv, "admin", "apply", "-f", "-", stdin=POLICY)
    kubectl(srv, "admin", "create", "secret", "generic", "db", "-n", "team-a", "--from-literal=k=v")
    kubectl(srv, "admin", "create", "secret", "generic", "db", "-n", "team-b", "--from-literal=k=v")
    checked = 0
    for who in ["admin", "alice", "bob", "carol", "dave"]:
        for ns in ["team-a", "team-b"]:
            want = sub_expected(who, "get", ns, "secrets/versions")
            r = kubectl(srv, who, "auth", "can-i", "get", "secrets/db", "--subresource=versions", "-n", ns, check=False)
            assert r.stdout.strip() == ("yes" if want else "no"), (who, ns, r.stdout, r.stderr)
            res = call(srv, who, "GET", f"/sigil/v1/namespaces/{ns}/secrets/db/versions")
            assert (res.status_code == 200) if want else (res.status_code == 403), (who, ns, res.status_code)
            want = sub_expected(who, "list", ns, "rolebindings")
            r = kubectl(srv, who, "auth", "can-i", "list", "rolebindings.rbac.authorization.k8s.io", "-n", ns, check=False)
            assert r.stdout.strip() == ("yes" if want else "no"), (who, ns, r.stdout, r.stderr)
            res = call(srv, who, "GET", f"/apis/{RBAC}/v1/namespaces/{ns}/rolebindings")
            assert (res.status_code == 200) if want else (res.status_code == 403), (who, ns, res.status_code)
            checked += 2
    assert checked == 20


def test_can_i_list_nonresource_and_subject_access_review(srv):
    kubectl(srv, "admin", "apply", "-f", "-", stdin=POLICY)
    out = kubectl(srv, "alice", "auth", "can-i", "--list", "-n", "team-a").stdout
    rows = [line.split() for line in out.splitlines()]
    assert ["secrets", "[]", "[]", "[get", "list", "watch]"] in rows, out
    out = kubectl(srv, "alice", "auth", "can-i", "--list", "-n", "team-b").stdout
    assert "secrets" not in out
    assert kubectl(srv, "alice", "auth", "can-i", "get", "/version").stdout.strip() == "yes"
    assert kubectl(srv, "alice", "auth", "can-i", "get", "/metrics", check=False).stdout.strip() == "no"
    assert kubectl(srv, "admin", "auth", "can-i", "*", "*").stdout.strip() == "yes"
    # SubjectAccessReview: asks about someone else; needs its own permission.
    sar = {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
           "spec": {"user": "bob", "groups": ["team-b"],
                    "resourceAttributes": {"namespace": "team-b", "verb": "delete", "resource": "secrets"}}}
    r = call(srv, "admin", "POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews", json=sar)
    assert r.status_code == 201 and r.json()["status"]["allowed"] is True
    sar["spec"]["groups"] = []
    assert call(srv, "admin", "POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews", json=sar).json()["status"]["allowed"] is False
    assert call(srv, "alice", "POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews", json=sar).status_code == 403


def test_rbac_objects_through_kubectl(srv):
    kubectl(srv, "admin", "create", "namespace", "ops")
    # kubectl create sends these as protobuf.
    kubectl(srv, "admin", "create", "role", "r1", "--verb=get,list", "--resource=secrets", "--resource-name=a", "-n", "ops")
    kubectl(srv, "admin", "create", "rolebinding", "rb1", "--role=r1", "--user=alice", "--group=g1",
            "--serviceaccount=ops:robot", "-n", "ops")
    kubectl(srv, "admin", "create", "clusterrole", "cr1", "--verb=get", "--non-resource-url=/healthz")
    kubectl(srv, "admin", "create", "clusterrolebinding", "crb1", "--clusterrole=cr1", "--user=alice")
    role = json.loads(kubectl(srv, "admin", "get", "role", "r1", "-n", "ops", "-o", "json").stdout)
    assert role["rules"] == [{"apiGroups": [""], "resources": ["secrets"], "resourceNames": ["a"], "verbs": ["get", "list"]}]
    assert role["metadata"]["uid"] and role["metadata"]["resourceVersion"] and role["metadata"]["namespace"] == "ops"
    rb = json.loads(kubectl(srv, "admin", "get", "rolebinding", "rb1", "-n", "ops", "-o", "json").stdout)
    assert rb["roleRef"] == {"apiGroup": RBAC, "kind": "Role", "name": "r1"}
    assert {"kind": "ServiceAccount", "name": "robot", "namespace": "ops"} in rb["subjects"]
    assert {"kind": "User", "apiGroup": RBAC, "name": "alice"} in rb["subjects"]
    out = kubectl(srv, "admin", "get", "rolebindings", "-n", "ops", "-o", "wide").stdout
    assert out.split("\n")[0].split() == ["NAME", "ROLE", "AGE", "USERS", "GROUPS", "SERVICEACCOUNTS"]
    assert "Role/r1" in out and "alice" in out and "ops/robot" in out
    assert "cluster-admin" in kubectl(srv, "admin", "get", "clusterroles").stdout
    # Aggregated ClusterRoles read with the rules they grant; view has no secrets.
    edit = json.loads(kubectl(srv, "admin", "get", "clusterrole", "edit", "-o", "json").stdout)
    assert any("secrets" in r.get("resources", []) and "delete" in r["verbs"] for r in edit["rules"])
    view = json.loads(kubectl(srv, "admin", "get", "clusterrole", "view", "-o", "json").stdout)
    assert view["rules"] and not any("secrets" in r.get("resources", []) for r in view["rules"])
    assert kubectl(srv, "admin", "get", "clusterrolebinding", "crb1", "-o", "jsonpath={.roleRef.name}").stdout == "cr1"
    # apply -f twice (client-side), then server-side apply; the rules are replaced as a whole.
    doc = textwrap.dedent("""\
        apiVersion: rbac.authorization.k8s.io/v1
        kind: Role
        metadata: {name: applied, namespace: ops}
        rules:
        - {apiGroups: [""], resources: [secrets], verbs: [get]}
        """)
    assert "created" in kubectl(srv, "admin", "apply", "-f", "-", stdin=doc).stdout
    assert "configured" in kubectl(srv, "admin", "apply", "-f", "-", stdin=doc.replace("[get]", "[get, list]")).stdout
    assert "serverside-applied" in kubectl(srv, "admin", "apply", "--server-side", "--force-conflicts", "-f", "-",
                                           stdin=doc.replace("[get]", "[watch]")).stdout
    got = json.loads(kubectl(srv, "admin", "get", "role", "applied", "-n", "ops", "-o", "json").stdout)
    assert got["rules"] == [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["watch"]}]
    # replace (PUT) with a stale resourceVersion conflicts; with the current one it works.
    got["rules"][0]["verbs"] = ["get", "watch"]
    stale = dict(got, metadata=dict(got["metadata"], resourceVersion="1"))
    r = kubectl(srv, "admin", "replace", "-f", "-", stdin=json.dumps(stale), check=False)
    assert r.returncode == 1 and "the object has been modified" in r.stderr
    assert "replaced" in kubectl(srv, "admin", "replace", "-f", "-", stdin=json.dumps(got)).stdout
    assert kubectl(srv, "admin", "get", "role", "applied", "-n", "ops", "-o", "jsonpath={.rules[0].verbs}").stdout == '["get","watch"]'

    # roleRef cannot change; invalid objects get kube-apiserver's 422.
    r = kubectl(srv, "admin", "patch", "rolebinding", "rb1", "-n", "ops", "--type=merge", "-p",
                '{"roleRef":{"name":"applied"}}', check=False)
    assert r.returncode == 1 and "roleRef: Invalid value" in r.stderr and "cannot change roleRef" in r.stderr
    bad = doc.replace("resources: [secrets], ", "").replace("name: applied", "name: bad")
    r = kubectl(srv, "admin", "apply", "-f", "-", stdin=bad, check=False)
    assert r.returncode == 1 and "rules[0].resources: Required value: resource rules must supply at least one resource" in r.stderr
    r = kubectl(srv, "admin", "create", "role", "nr", "--verb=get", "--resource=secrets", "-n", "nowhere", check=False)
    assert r.returncode == 1 and 'namespaces "nowhere" not found' in r.stderr
    r = call(srv, "admin", "POST", f"/apis/{RBAC}/v1/namespaces/ops/roles",
             json={"apiVersion": f"{RBAC}/v1", "kind": "Role", "metadata": {"name": "u"},
                   "rules": [{"verbs": ["get"], "nonResourceURLs": ["/x"]}]})
    assert r.status_code == 422 and r.json()["message"] == (
        'Role.rbac.authorization.k8s.io "u" is invalid: rules[0].nonResourceURLs: Invalid value: []string{"/x"}: '
        "namespaced rules cannot apply to non-resource URLs")
    r = call(srv, "admin", "POST", f"/apis/{RBAC}/v1/clusterrolebindings",
             json={"apiVersion": f"{RBAC}/v1", "kind": "ClusterRoleBinding", "metadata": {"name": "x"},
                   "roleRef": {"apiGroup": RBAC, "kind": "Role", "name": "r1"}})
    assert r.status_code == 422 and 'roleRef.kind: Unsupported value: "Role": supported values: "ClusterRole"' in r.json()["message"]
    r = call(srv, "admin", "GET", f"/apis/{RBAC}/v1/namespaces/ops/roles/missing")
    assert r.status_code == 404 and r.json()["message"] == 'roles.rbac.authorization.k8s.io "missing" not found'
    assert r.json()["details"] == {"name": "missing", "group": RBAC, "kind": "roles"}
    # Watch sees RBAC changes; list across namespaces works.
    w = subprocess.Popen([KUBECTL, "get", "roles", "-n", "ops", "-w", "-o", "name"], stdout=subprocess.PIPE, text=True,
                         env=dict(os.environ, KUBECONFIG=srv.admin_kc, HOME=srv.workdir))
    try:
        assert readline(w.stdout, what="the initial list of roles").strip() in (
            "role.rbac.authorization.k8s.io/applied", "role.rbac.authorization.k8s.io/r1")
        kubectl(srv, "admin", "create", "role", "late", "--verb=get", "--resource=secrets", "-n", "ops")
        seen = [readline(w.stdout, what="the rest of the list and the ADDED event of role late").strip() for _ in range(2)]
        assert "role.rbac.authorization.k8s.io/late" in seen
    finally:
        w.kill()
    assert "ops" in kubectl(srv, "admin", "get", "rolebindings", "-A").stdout
    # Deleting the namespace removes its roles and bindings with it.
    kubectl(srv, "admin", "delete", "namespace", "ops")
    kubectl(srv, "admin", "create", "namespace", "ops")
    assert kubectl(srv, "admin", "get", "roles,rolebindings", "-n", "ops", "-o", "name").stdout == ""
    kubectl(srv, "admin", "delete", "clusterrolebinding", "crb1")
    kubectl(srv, "admin", "delete", "clusterrole", "cr1")
    assert kubectl(srv, "admin", "get", "clusterrole", "cr1", check=False).returncode == 1


def test_escalation_is_prevented(srv):
    kubectl(srv, "admin", "apply", "-f", "-", stdin=textwrap.dedent("""\
        apiVersion: v1
        kind: Namespace
        metadata: {name: esc}
        ---
        apiVersion: rbac.authorization.k8s.io/v1
        kind: Role
        metadata: {name: rbac-manager, namespace: esc}
        rules:
        - {apiGroups: [rbac.authorization.k8s.io], resources: [roles, rolebindings], verbs: [create, update, patch, get, delete]}
        - {apiGroups: [""], resources: [secrets], verbs: [get, list]}
        ---
        apiVersion: rbac.authorization.k8s.io/v1
        kind: RoleBinding
        metadata: {name: alice-manages, namespace: esc}
        subjects: [{kind: User, apiGroup: rbac.authorization.k8s.io, name: alice}]
        roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: rbac-manager}
        """))
    # Within what she holds: allowed.
    kubectl(srv, "alice", "create", "role", "reader", "--verb=get", "--resource=secrets", "-n", "esc")
    kubectl(srv, "alice", "create", "rolebinding", "dave-reads", "--role=reader", "--user=dave", "-n", "esc")
    assert kubectl(srv, "dave", "auth", "can-i", "get", "secrets", "-n", "esc").stdout.strip() == "yes"
    # More than she holds: denied, and nothing is stored.
    r = kubectl(srv, "alice", "create", "role", "deleter", "--verb=delete", "--resource=secrets", "-n", "esc", check=False)
    assert r.returncode == 1
    assert ('roles.rbac.authorization.k8s.io "deleter" is forbidden: user "alice" (groups=["team-a" "system:authenticated"]) '
            'is attempting to grant RBAC permissions not currently held:\n{APIGroups:[""], Resources:["secrets"], Verbs:["delete"]}'
            ) in r.stderr, r.stderr
    assert kubectl(srv, "admin", "get", "role", "deleter", "-n", "esc", check=False).returncode == 1
    # Widening her own role through an update is the same escalation.
    r = kubectl(srv, "alice", "patch", "role", "reader", "-n", "esc", "--type=json", "-p",
                '[{"op":"add","path":"/rules/0/verbs/-","value":"delete"}]', check=False)
    assert r.returncode == 1 and "attempting to grant RBAC permissions not currently held" in r.stderr
    # Binding a role she does not hold (edit): denied; a role that does not exist: NotFound.
    r = kubectl(srv, "alice", "create", "rolebinding", "dave-edits", "--clusterrole=edit", "--user=dave", "-n", "esc", check=False)
    assert r.returncode == 1 and "attempting to grant RBAC permissions not currently held" in r.stderr
    r = kubectl(srv, "alice", "create", "rolebinding", "x", "--role=nope", "--user=dave", "-n", "esc", check=False)
    assert r.returncode == 1 and 'roles.rbac.authorization.k8s.io "nope" not found' in r.stderr
    # Cluster scope is not hers at all.
    r = kubectl(srv, "alice", "create", "clusterrole", "mine", "--verb=get", "--resource=secrets", check=False)
    assert r.returncode == 1 and 'cannot create resource "clusterroles"' in r.stderr
    # `bind` on exactly the edit ClusterRole lets her bind it (and only it).
    kubectl(srv, "admin", "create", "role", "may-bind-edit", "--verb=bind", "--resource=clusterroles", "--resource-name=edit", "-n", "esc")
    kubectl(srv, "admin", "create", "rolebinding", "alice-binds", "--role=may-bind-edit", "--user=alice", "-n", "esc")
    kubectl(srv, "alice", "create", "rolebinding", "dave-edits", "--clusterrole=edit", "--user=dave", "-n", "esc")
    assert kubectl(srv, "dave", "auth", "can-i", "delete", "secrets", "-n", "esc").stdout.strip() == "yes"
    assert kubectl(srv, "dave", "auth", "can-i", "delete", "secrets", "-n", "default", check=False).stdout.strip() == "no"
    r = kubectl(srv, "alice", "create", "rolebinding", "dave-admin", "--clusterrole=admin", "--user=dave", "-n", "esc", check=False)
    assert r.returncode == 1 and "not currently held" in r.stderr
    # `escalate` on roles lets her write any role in her namespace.
    kubectl(srv, "admin", "create", "role", "may-escalate", "--verb=escalate", "--resource=roles", "-n", "esc")
    kubectl(srv, "admin", "create", "rolebinding", "alice-escalates", "--role=may-escalate", "--user=alice", "-n", "esc")
    kubectl(srv, "alice", "create", "role", "deleter", "--verb=delete", "--resource=secrets", "-n", "esc")


def test_impersonation_needs_the_impersonate_verb(srv):
    kubectl(srv, "admin", "apply", "-f", "-", stdin=POLICY)
    # The admin (system:masters) may impersonate anyone, and then has only that user's rights.
    assert kubectl(srv, "admin", "auth", "can-i", "list", "secrets", "-n", "team-a", "--as", "alice").stdout.strip() == "yes"
    assert kubectl(srv, "admin", "auth", "can-i", "list", "secrets", "-n", "team-b", "--as", "alice",
                   check=False).stdout.strip() == "no"
    r = kubectl(srv, "admin", "get", "secrets", "-n", "team-b", "--as", "alice", check=False)
    assert r.returncode == 1 and 'User "alice" cannot list resource "secrets"' in r.stderr
    who = json.loads(kubectl(srv, "admin", "auth", "whoami", "--as", "bob", "--as-group", "team-b", "-o", "json").stdout)
    assert who["status"]["userInfo"]["username"] == "bob"
    assert who["status"]["userInfo"]["groups"] == ["team-b", "system:authenticated"]
    # A plain user may not impersonate...
    r = kubectl(srv, "alice", "get", "secrets", "-n", "team-a", "--as", "bob", check=False)
    assert r.returncode == 1 and ('users "bob" is forbidden: User "alice" cannot impersonate resource "users" in API group "" '
                                  'at the cluster scope') in r.stderr, r.stderr
    # ...until granted, and then only whom the rule names; groups need their own grant.
    kubectl(srv, "admin", "create", "clusterrole", "impersonate-bob", "--verb=impersonate", "--resource=users",
            "--resource-name=bob")
    kubectl(srv, "admin", "create", "clusterrolebinding", "alice-as-bob", "--clusterrole=impersonate-bob", "--user=alice")
    assert kubectl(srv, "alice", "auth", "whoami", "--as", "bob", "-o", "jsonpath={.status.userInfo.username}").stdout == "bob"
    assert kubectl(srv, "alice", "get", "secrets", "-n", "team-b", "--as", "bob", "--as-group", "team-b",
                   check=False).returncode == 1
    r = kubectl(srv, "alice", "get", "secrets", "-n", "team-a", "--as", "carol", check=False)
    assert r.returncode == 1 and 'cannot impersonate resource "users"' in r.stderr
    r = call(srv, "alice", "GET", "/api/v1/namespaces/team-a/secrets", headers={"Impersonate-Group": "system:masters"})
    assert r.status_code == 400
    r = requests.get(srv.url + "/api/v1/namespaces/team-a/secrets", verify=srv.ca, timeout=10,
                     headers={"Authorization": "Bearer tok-alice", "Impersonate-User": "bob", "Impersonate-Group": "system:masters"})
    assert r.status_code == 403 and 'cannot impersonate resource "groups"' in r.json()["message"]


def test_issued_tokens_carry_an_identity_and_expire(srv):
    kubectl(srv, "admin", "apply", "-f", "-", stdin=POLICY)
    out = subprocess.run([os.path.join(os.environ.get("SIGIL_BIN_DIR", "build/bin"), "sigil"), "token", "create",
                          "--kubeconfig", srv.admin_kc, "--user", "ci-bot", "--group", "team-b", "--ttl", "3s"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    tok = out.stdout.strip()
    assert tok.startswith("sgl_") and len(tok) > 40
    headers = {"Authorization": "Bearer " + tok}
    r = requests.get(srv.url + "/api/v1/namespaces/team-b/secrets", headers=headers, verify=srv.ca, timeout=10)
    assert r.status_code == 200  # team-b's edit binding
    r = requests.get(srv.url + "/api/v1/namespaces/team-a/secrets", headers=headers, verify=srv.ca, timeout=10)
    assert r.status_code == 403 and 'User "ci-bot"' in r.json()["message"]
    r = requests.post(srv.url + "/apis/authentication.k8s.io/v1/selfsubjectreviews", headers=headers, verify=srv.ca, timeout=10,
                      json={"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"})
    assert r.json()["status"]["userInfo"]["groups"] == ["team-b", "system:authenticated"]
    # Issuing a token is acting as its user: a caller without impersonate rights may not.
    r = call(srv, "alice", "POST", "/sigil/v1/tokens", json={"user": "alice"})
    assert r.status_code == 403
    kubectl(srv, "admin", "create", "clusterrole", "token-issuer", "--verb=post", "--non-resource-url=/sigil/v1/tokens")
    kubectl(srv, "admin", "create", "clusterrolebinding", "alice-issues", "--clusterrole=token-issuer", "--user=alice")
    r = call(srv, "alice", "POST", "/sigil/v1/tokens", json={"user": "bob"})
    assert r.status_code == 403 and 'cannot impersonate resource "users"' in r.json()["message"]
    r = call(srv, "admin", "POST", "/sigil/v1/tokens", json={"user": "x", "ttlSeconds": 0, "bogus": 1})
    assert r.status_code == 422 and "ttlSeconds" in r.json()["message"] and "bogus" in r.json()["message"]
    time.sleep(3.5)
    r = requests.get(srv.url + "/api/v1/namespaces/team-b/secrets", headers=headers, verify=srv.ca, timeout=10)
    assert r.status_code == 401  # expired
