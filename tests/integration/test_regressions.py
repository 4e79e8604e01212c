"""Defects that once slipped past every other test, each pinned by a test that fails on it:
RBAC verbs that must not stand in for each other (get is not list, list is not watch, delete
is not deletecollection), escalation through a ClusterRole's aggregationRule, an immutable
Secret made mutable again by a patch, and a namespaced watch that sees other namespaces.
Each check is made on the real request and its effect (403 and nothing changed), not only on
`kubectl auth can-i`."""
import json
import os
import subprocess
import textwrap

import pytest
import requests
from kubernetes import client, config, watch

from conftest import token_file_config, token_kubeconfig

KUBECTL = "/usr/bin/kubectl"
RBAC = "rbac.authorization.k8s.io"
USERS = {  # token -> user; none is in a group but system:authenticated
    "tok-getter": "getter",
    "tok-lister": "lister",
    "tok-deleter": "deleter",
    "tok-erin": "erin",
}

POLICY = textwrap.dedent("""\
    apiVersion: v1
    kind: Namespace
    metadata: {name: reg}
    ---
    apiVersion: rbac.authorization.k8s.io/v1
    kind: Role
    metadata: {name: only-get, namespace: reg}
    rules: [{apiGroups: [""], resources: [secrets], verbs: [get]}]
    ---
    apiVersion: rbac.authorization.k8s.io/v1
    kind: Role
    metadata: {name: only-list, namespace: reg}
    rules: [{apiGroups: [""], resources: [secrets], verbs: [list]}]
    ---
    apiVersion: rbac.authorization.k8s.io/v1
    kind: Role
    metadata: {name: get-delete, namespace: reg}
    rules: [{apiGroups: [""], resources: [secrets], verbs: [get, delete]}]
    ---
    apiVersion: rbac.authorization.k8s.io/v1
    kind: RoleBinding
    metadata: {name: getter, namespace: reg}
    subjects: [{kind: User, apiGroup: rbac.authorization.k8s.io, name: getter}]
    roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: only-get}
    ---
    apiVersion: rbac.authorization.k8s.io/v1
    kind: RoleBinding
    metadata: {name: lister, namespace: reg}
    subjects: [{kind: User, apiGroup: rbac.authorization.k8s.io, name: lister}]
    roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: only-list}
    ---
    apiVersion: rbac.authorization.k8s.io/v1
    kind: RoleBinding
    metadata: {name: deleter, namespace: reg}
    subjects: [{kind: User, apiGroup: rbac.authorization.k8s.io, name: deleter}]
    roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: get-delete}
    ---
    apiVersion: rbac.authorization.k8s.io/v1
    kind: ClusterRole
    metadata: {name: clusterrole-writer}
    rules: [{apiGroups: [rbac.authorization.k8s.io], resources: [clusterroles], verbs: [create, update]}]
    ---
    apiVersion: rbac.authorization.k8s.io/v1
    kind: ClusterRoleBinding
    metadata: {name: erin-writes-clusterroles}
    subjects: [{kind: User, apiGroup: rbac.authorization.k8s.io, name: erin}]
    roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: clusterrole-writer}
    """)


@pytest.fixture
def srv(start_server, workdir):
    cfg = token_file_config(workdir, "".join(f"{tok},{user},u-{user}\n" for tok, user in USERS.items()))
    s = start_server(["--dev", "--listen", "127.0.0.1:0", "--config", cfg])
    s.workdir = workdir
    s.kc = {"admin": os.path.join(os.path.dirname(s.ca), "kubeconfig")}
    for tok, user in USERS.items():
        s.kc[user] = token_kubeconfig(os.path.join(workdir, f"kc-{user}"), s, tok)
    return s


@pytest.fixture
def policy(srv):
    """srv with POLICY applied and two Secrets, a and b, in namespace reg."""
    kubectl(srv, "admin", "apply", "-f", "-", stdin=POLICY)
    for name in ["a", "b"]:
        kubectl(srv, "admin", "create", "secret", "generic", name, "-n", "reg", "--from-literal=k=v")
    return srv


def kubectl(s, who, *args, stdin=None, check=True):
    env = dict(os.environ, KUBECONFIG=s.kc[who], HOME=s.workdir)
    r = subprocess.run([KUBECTL, *args], capture_output=True, text=True, env=env, input=stdin, timeout=60)
    if check and r.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(args)} as {who}: rc {r.returncode}\n{r.stdout}\n{r.stderr}")
    return r


def can_i(s, who, *args):
    return kubectl(s, who, "auth", "can-i", *args, check=False).stdout.strip()


def call(s, who, method, path, headers=None, **kw):
    token = s.token if who == "admin" else next(t for t, u in USERS.items() if u == who)
    headers = dict(headers or {}, Authorization="Bearer " + token)
    return requests.request(method, s.url + path, headers=headers, verify=s.ca, timeout=10, **kw)


def denied(r, user, verb):
    """Asserts that `r` is kube-apiserver's RBAC denial of `verb` on secrets in reg."""
    assert r.status_code == 403, (r.status_code, r.text[:300])
    assert r.json()["reason"] == "Forbidden"
    assert f'User "{user}" cannot {verb} resource "secrets" in API group "" in the namespace "reg"' in r.json()["message"], r.text


def stored_secrets(s):
    """name -> resourceVersion of the Secrets in reg, read as the admin."""
    r = call(s, "admin", "GET", "/api/v1/namespaces/reg/secrets")
    assert r.status_code == 200, r.text
    return {i["metadata"]["name"]: i["metadata"]["resourceVersion"] for i in r.json()["items"]}


SECRETS = "/api/v1/namespaces/reg/secrets"


def test_get_does_not_grant_list(policy):
    s = policy
    # The role is in force: get of one Secret is allowed...
    assert can_i(s, "getter", "get", "secrets/a", "-n", "reg") == "yes"
    assert call(s, "getter", "GET", SECRETS + "/a").status_code == 200
    # ...and listing the collection is not: the real request, kubectl, and can-i agree.
    denied(call(s, "getter", "GET", SECRETS), "getter", "list")
    r = kubectl(s, "getter", "get", "secrets", "-n", "reg", check=False)
    assert r.returncode == 1 and 'User "getter" cannot list resource "secrets"' in r.stderr, r.stderr
    assert can_i(s, "getter", "list", "secrets", "-n", "reg") == "no"


def test_list_does_not_grant_watch(policy):
    s = policy
    assert can_i(s, "lister", "list", "secrets", "-n", "reg") == "yes"
    assert sorted(i["metadata"]["name"] for i in call(s, "lister", "GET", SECRETS).json()["items"]) == ["a", "b"]
    denied(call(s, "lister", "GET", SECRETS + "?watch=1&timeoutSeconds=1"), "lister", "watch")
    denied(call(s, "lister", "GET", SECRETS + "?watch=true&resourceVersion=0&timeoutSeconds=1"), "lister", "watch")
    denied(call(s, "lister", "GET", "/api/v1/watch/namespaces/reg/secrets?timeoutSeconds=1"), "lister", "watch")
    assert can_i(s, "lister", "watch", "secrets", "-n", "reg") == "no"


def test_delete_does_not_grant_deletecollection(policy):
    s = policy
    before = stored_secrets(s)
    assert sorted(before) == ["a", "b"]
    # delete of one named Secret is allowed (dry run: nothing changes)...
    assert can_i(s, "deleter", "delete", "secrets/a", "-n", "reg") == "yes"
    assert call(s, "deleter", "DELETE", SECRETS + "/a?dryRun=All").status_code == 200
    # ...deleting the whole collection is not, with or without a selector, and nothing is deleted.
    denied(call(s, "deleter", "DELETE", SECRETS), "deleter", "deletecollection")
    assert stored_secrets(s) == before
    denied(call(s, "deleter", "DELETE", SECRETS + "?labelSelector=x%21%3Dy"), "deleter", "deletecollection")
    denied(call(s, "deleter", "DELETE", SECRETS, json={"kind": "DeleteOptions", "apiVersion": "v1"}), "deleter",
           "deletecollection")
    assert stored_secrets(s) == before
    assert can_i(s, "deleter", "deletecollection", "secrets", "-n", "reg") == "no"


AGGREGATE_DEFAULTS = {"clusterRoleSelectors": [{"matchLabels": {"kubernetes.io/bootstrapping": "rbac-defaults"}}]}


def test_aggregation_rule_is_an_escalation(policy):
    s = policy
    roles = f"/apis/{RBAC}/v1/clusterroles"
    # erin may create and update ClusterRoles, and holds nothing else: a role without rules is
    # within what she holds.
    r = call(s, "erin", "POST", roles, json={"apiVersion": f"{RBAC}/v1", "kind": "ClusterRole",
                                             "metadata": {"name": "empty"}, "rules": []})
    assert r.status_code == 201, r.text
    # An aggregated role selecting the bootstrap roles (cluster-admin among them) would hold
    # everything: refused as kube-apiserver refuses it, and nothing is stored.
    grab = {"apiVersion": f"{RBAC}/v1", "kind": "ClusterRole", "metadata": {"name": "grab-all"},
            "aggregationRule": AGGREGATE_DEFAULTS}
    r = call(s, "erin", "POST", roles, json=grab)
    assert r.status_code == 403, r.text
    assert r.json()["reason"] == "Forbidden"
    assert ('clusterroles.rbac.authorization.k8s.io "grab-all" is forbidden: user "erin" '
            '(groups=["system:authenticated"]) is attempting to grant RBAC permissions not currently held:') in r.json()["message"]
    assert call(s, "admin", "GET", roles + "/grab-all").status_code == 404
    # Turning her existing role into an aggregated one is the same escalation.
    r = call(s, "erin", "PUT", roles + "/empty", json=dict(grab, metadata={"name": "empty"}))
    assert r.status_code == 403 and "attempting to grant RBAC permissions not currently held" in r.json()["message"], r.text
    got = call(s, "admin", "GET", roles + "/empty").json()
    assert "aggregationRule" not in got and not got.get("rules")
    # She gained nothing.
    assert can_i(s, "erin", "list", "secrets", "-A") == "no"
    assert can_i(s, "erin", "get", "clusterroles") == "no"


def test_immutable_secret_cannot_be_made_mutable(srv):
    s = srv
    base = "/api/v1/namespaces/default/secrets"
    r = call(s, "admin", "POST", base, json={"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "frozen"},
                                             "data": {"k": "djE="}, "immutable": True})
    assert r.status_code == 201, r.text
    created = r.json()
    merge = {"Content-Type": "application/merge-patch+json"}
    for patch in [{"immutable": False}, {"immutable": None}, {"immutable": False, "data": {"k": "djI="}}]:
        r = call(s, "admin", "PATCH", base + "/frozen", data=json.dumps(patch), headers=merge)
        assert r.status_code == 422, (patch, r.status_code, r.text)
        assert r.json()["reason"] == "Invalid"
        assert "immutable: Forbidden: field is immutable when `immutable` is set" in r.json()["message"], r.text
    # A replace (PUT) that drops the flag is refused alike; so is kubectl's strategic merge patch.
    body = dict(created, immutable=False)
    r = call(s, "admin", "PUT", base + "/frozen", json=body)
    assert r.status_code == 422 and "immutable: Forbidden" in r.json()["message"], r.text
    r = kubectl(s, "admin", "patch", "secret", "frozen", "-p", '{"immutable":false}', check=False)
    assert r.returncode == 1 and "immutable: Forbidden: field is immutable when `immutable` is set" in r.stderr, r.stderr
    # Nothing changed: still immutable, same data, same resourceVersion; and so still frozen.
    got = call(s, "admin", "GET", base + "/frozen").json()
    assert got["immutable"] is True and got["data"] == {"k": "djE="}
    assert got["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]
    r = call(s, "admin", "PATCH", base + "/frozen", data=json.dumps({"data": {"k": "djI="}}), headers=merge)
    assert r.status_code == 422


def watch_lines(s, path, timeout=10):
    """The events of a watch that ends by itself (timeoutSeconds in `path`); `timeout` bounds
    every read, so a stream that does not end fails the test."""
    with requests.get(s.url + path, verify=s.ca, headers=s.auth, stream=True, timeout=timeout) as r:
        assert r.status_code == 200, r.text
        return [json.loads(l) for l in r.iter_lines() if l]


def names(events):
    return [(e["type"], e["object"]["metadata"]["namespace"], e["object"]["metadata"]["name"]) for e in events]


@pytest.fixture
def three_namespaces(srv):
    """srv with namespaces wa, wb and wa-b ("wa-b" shares the prefix "wa": a watch prefix
    without its trailing slash would leak it), Secrets written across them, and
    srv.rv: the resourceVersion after which wa saw exactly srv.wa_events."""
    s = srv
    for ns in ["wa", "wb", "wa-b"]:
        assert call(s, "admin", "POST", "/api/v1/namespaces", json={"metadata": {"name": ns}}).status_code == 201
    s.create = lambda ns, name: create_secret(s, ns, name)
    s.create("wa", "old-a")
    s.rv = s.create("wb", "old-b")
    s.create("wa-b", "old-ab")
    # Changes after rv, interleaved across namespaces.
    s.create("wb", "new-b")
    s.create("wa", "new-a")
    s.create("wa-b", "new-ab")
    merge = {"Content-Type": "application/merge-patch+json"}
    assert call(s, "admin", "DELETE", "/api/v1/namespaces/wb/secrets/old-b").status_code == 200
    assert call(s, "admin", "PATCH", "/api/v1/namespaces/wa/secrets/old-a", data=json.dumps({"metadata": {"labels": {"x": "1"}}}),
                headers=merge).status_code == 200
    assert call(s, "admin", "PATCH", "/api/v1/namespaces/wa-b/secrets/old-ab", data=json.dumps({"metadata": {"labels": {"x": "1"}}}),
                headers=merge).status_code == 200
    assert call(s, "admin", "DELETE", "/api/v1/namespaces/wa/secrets/new-a").status_code == 200
    s.wa_events = [("ADDED", "wa", "new-a"), ("MODIFIED", "wa", "old-a"), ("DELETED", "wa", "new-a")]
    return s


def create_secret(s, ns, name):
    r = call(s, "admin", "POST", f"/api/v1/namespaces/{ns}/secrets", json={"metadata": {"name": name}, "data": {"k": "dg=="}})
    assert r.status_code == 201, r.text
    return r.json()["metadata"]["resourceVersion"]


def python_client(s):
    cfg = client.Configuration()
    config.load_kube_config(config_file=os.path.join(os.path.dirname(s.ca), "kubeconfig"), client_configuration=cfg)
    return client.CoreV1Api(client.ApiClient(cfg))


def python_watch(s, **kw):
    return [(e["type"], e["object"].metadata.namespace, e["object"].metadata.name)
            for e in watch.Watch().stream(python_client(s).list_namespaced_secret, "wa", timeout_seconds=1,
                                          _request_timeout=10, **kw)]


def test_namespaced_watch_from_a_resource_version_sees_only_its_namespace(three_namespaces):
    s = three_namespaces
    assert names(watch_lines(s, f"/api/v1/namespaces/wa/secrets?watch=true&resourceVersion={s.rv}&timeoutSeconds=1")) == s.wa_events
    assert names(watch_lines(s, f"/api/v1/watch/namespaces/wa/secrets?resourceVersion={s.rv}&timeoutSeconds=1")) == s.wa_events
    assert python_watch(s, resource_version=s.rv) == s.wa_events


def test_namespaced_watch_from_zero_or_unset_sees_only_its_namespace(three_namespaces):
    s = three_namespaces
    # The current state of wa only: one Secret.
    for q in ["resourceVersion=0&", ""]:
        assert names(watch_lines(s, f"/api/v1/namespaces/wa/secrets?watch=true&{q}timeoutSeconds=1")) == [("ADDED", "wa", "old-a")], q
    assert python_watch(s) == [("ADDED", "wa", "old-a")]


def test_namespaced_watch_live_sees_only_its_namespace(three_namespaces):
    s = three_namespaces
    # With the watch open from now, changes in wb and wa-b never reach it; wa's do, in order.
    with requests.get(s.url + "/api/v1/namespaces/wa/secrets?watch=true&timeoutSeconds=10", verify=s.ca, headers=s.auth,
                      stream=True, timeout=5) as r:
        assert r.status_code == 200
        lines = (json.loads(l) for l in r.iter_lines(chunk_size=1) if l)  # each read bounded by timeout=5
        assert names([next(lines)]) == [("ADDED", "wa", "old-a")]
        s.create("wb", "live-b")
        s.create("wa-b", "live-ab")
        s.create("wa", "live-a")
        # Were another namespace's events leaking, one would come first: they were written first.
        assert names([next(lines)]) == [("ADDED", "wa", "live-a")]
