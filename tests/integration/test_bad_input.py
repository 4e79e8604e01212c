"""The Kubernetes API's bad-input catalogue: each request gets kube-apiserver's status code and
a metav1.Status body, nothing is stored, and the server keeps serving."""
import json

import pytest
import requests

SECRETS = "/api/v1/namespaces/default/secrets"


@pytest.fixture(scope="module")
def srv(request):
    from conftest import Server
    s = Server(["--dev", "--listen", "127.0.0.1:0", "--log-level", "trace"])
    request.addfinalizer(s.stop)
    return s


def call(s, method, path, body=None, ctype="application/json", raw=None):
    data = raw if raw is not None else (json.dumps(body) if body is not None else None)
    return requests.request(method, s.url + path, data=data, headers={"Content-Type": ctype, **s.auth}, verify=s.ca, timeout=10)


def secret(name="ok", **extra):
    d = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "data": {"k": "dg=="}}
    d.update(extra)
    return d


CASES = [
    ("malformed json", "POST", SECRETS, None, "application/json", '{"metadata": {"name": "x"', 400, "BadRequest"),
    ("deep nesting", "POST", SECRETS, None, "application/json", "[" * 5000 + "]" * 5000, 400, "BadRequest"),
    ("not an object", "POST", SECRETS, None, "application/json", "[1,2]", 400, "BadRequest"),
    ("unknown field strict", "POST", SECRETS + "?fieldValidation=Strict", secret(spec={"a": 1}), None, None, 400, "BadRequest"),
    ("wrong apiVersion", "POST", SECRETS, dict(secret(), apiVersion="v2"), None, None, 400, "BadRequest"),
    ("wrong kind", "POST", SECRETS, dict(secret(), kind="ConfigMap"), None, None, 400, "BadRequest"),
    ("namespace mismatch", "POST", SECRETS, secret(metadata={"name": "x", "namespace": "other"}), None, None, 400, "BadRequest"),
    ("upper-case name", "POST", SECRETS, secret("Upper"), None, None, 422, "Invalid"),
    ("name with dots only", "POST", SECRETS, secret(".."), None, None, 422, "Invalid"),
    ("name with NUL", "POST", SECRETS, secret("a\u0000b"), None, None, 422, "Invalid"),
    ("name too long", "POST", SECRETS, secret("a" * 254), None, None, 422, "Invalid"),
    ("invalid base64", "POST", SECRETS, secret(data={"k": "not base64!"}), None, None, 400, "BadRequest"),
    ("data not strings", "POST", SECRETS, secret(data={"k": 5}), None, None, 400, "BadRequest"),
    ("bad key", "POST", SECRETS, secret(data={"a/b": "dg=="}), None, None, 422, "Invalid"),
    ("over 1 MiB of data", "POST", SECRETS, secret(data={"k": "A" * (1400 * 1024)}), None, None, 422, "Invalid"),
    ("body over the limit", "POST", SECRETS, None, "application/json", "x" * (4 * 1024 * 1024), 413, "RequestEntityTooLarge"),
    ("yaml body", "POST", SECRETS, None, "application/yaml", "kind: Secret", 415, "UnsupportedMediaType"),
    ("bad dryRun", "POST", SECRETS + "?dryRun=Maybe", secret(), None, None, 400, "BadRequest"),
    ("name with slash in path", "GET", SECRETS + "/a%2Fb", None, None, None, 400, "BadRequest"),
    ("dot-dot in path", "GET", SECRETS + "/%2e%2e", None, None, None, 400, "BadRequest"),
    ("missing namespace", "POST", "/api/v1/namespaces/nope/secrets", secret(), None, None, 404, "NotFound"),
    ("bad label selector", "GET", SECRETS + "?labelSelector=a%20in%20x", None, None, None, 400, "BadRequest"),
    ("bad continue", "GET", SECRETS + "?limit=1&continue=zzz", None, None, None, 400, "BadRequest"),
    ("unsupported method", "POST", SECRETS + "/ok", secret(), None, None, 405, "MethodNotAllowed"),
    ("apply without fieldManager", "PATCH", SECRETS + "/ok", secret(), "application/apply-patch+yaml", None, 422, "Invalid"),
    ("apply malformed yaml", "PATCH", SECRETS + "/ok?fieldManager=t", None, "application/apply-patch+yaml",
     "kind: Secret\n  bad: [", 400, "BadRequest"),
    ("apply yaml alias bomb", "PATCH", SECRETS + "/ok?fieldManager=t", None, "application/apply-patch+yaml",
     "a: &a [x,x,x,x,x,x,x,x,x,x]\n" + "".join(
         f"{c}: &{c} [" + ",".join(["*" + p] * 10) + "]\n" for p, c in zip("abcdefghi", "bcdefghij")), 400, "BadRequest"),
    ("apply without kind", "PATCH", SECRETS + "/ok?fieldManager=t", None, "application/apply-patch+yaml",
     "metadata: {name: ok}\n", 400, "BadRequest"),
    ("apply name mismatch", "PATCH", SECRETS + "/ok?fieldManager=t", secret("other"), "application/apply-patch+yaml", None,
     400, "BadRequest"),
    ("duplicate field strict", "POST", SECRETS + "?fieldValidation=Strict", None, "application/json",
     '{"metadata": {"name": "dup", "name": "dup2"}, "data": {}}', 400, "BadRequest"),
    ("list rv too large", "GET", SECRETS + "?resourceVersion=999999999&resourceVersionMatch=NotOlderThan", None, None, None,
     504, "Timeout"),
    ("list exact rv too old", "GET", SECRETS + "?resourceVersion=1&resourceVersionMatch=Exact", None, None, None, 410, "Expired"),
    ("list match without rv", "GET", SECRETS + "?resourceVersionMatch=Exact", None, None, None, 400, "BadRequest"),
    ("list bad match", "GET", SECRETS + "?resourceVersion=1&resourceVersionMatch=Newest", None, None, None, 400, "BadRequest"),
    ("list rv with continue", "GET", SECRETS + "?resourceVersion=5&limit=1&continue=abc", None, None, None, 400, "BadRequest"),
    ("force on a merge patch", "PATCH", SECRETS + "/ok?force=true", {"data": {}}, "application/merge-patch+json", None, 422,
     "Invalid"),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_refused_and_changes_nothing(srv, case):
    name, method, path, body, ctype, raw, code, reason = case
    before = call(srv, "GET", SECRETS).json()
    r = call(srv, method, path, body=body, ctype=ctype or "application/json", raw=raw)
    assert r.status_code == code, r.text[:300]
    status = r.json()
    assert status["kind"] == "Status" and status["status"] == "Failure" and status["reason"] == reason
    assert status["code"] == code
    after = call(srv, "GET", SECRETS).json()
    assert [i["metadata"]["name"] for i in after["items"]] == [i["metadata"]["name"] for i in before["items"]]
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    # The server keeps serving others.
    assert requests.get(srv.url + "/readyz", verify=srv.ca, timeout=5).text == "ok"


def test_patch_errors(srv):
    assert call(srv, "POST", SECRETS, secret("p")).status_code == 201
    before = call(srv, "GET", SECRETS + "/p").json()
    r = call(srv, "PATCH", SECRETS + "/p", [{"op": "test", "path": "/data/k", "value": "d3Jvbmc="}], "application/json-patch+json")
    assert r.status_code == 422 and r.json()["kind"] == "Status"
    r = call(srv, "PATCH", SECRETS + "/p", {"data": {"k": "eA=="}}, "text/plain")
    assert r.status_code == 415 and r.json()["reason"] == "UnsupportedMediaType"
    r = call(srv, "PATCH", SECRETS + "/p", {"metadata": {"resourceVersion": "1"}, "data": {"k": "eA=="}},
             "application/merge-patch+json")
    assert r.status_code == 409 and r.json()["reason"] == "Conflict"
    assert call(srv, "GET", SECRETS + "/p").json() == before


def test_errors_never_echo_secret_values(srv):
    canary = "SIGILCANARY0123456789abcdef"
    bodies = [
        '{"metadata": {"name": "x"}, "stringData": {"k": "' + canary + '"',  # malformed
        json.dumps(secret(data={"k": canary + "!"})),                       # invalid base64
        json.dumps(secret(type="kubernetes.io/dockerconfigjson", stringData={".dockerconfigjson": canary})),
    ]
    for b in bodies:
        r = call(srv, "POST", SECRETS, raw=b)
        assert r.status_code >= 400 and canary not in r.text
    for y in ['kind: Secret\napiVersion: v1\nstringData: {k: "' + canary + '\n', "kind: Secret\n" + canary + ": [\n",
              "apiVersion: v1\nkind: Secret\nmetadata: {name: ok}\ndata: {k: " + canary + "!}\n"]:
        r = call(srv, "PATCH", SECRETS + "/ok?fieldManager=t", raw=y, ctype="application/apply-patch+yaml")
        assert r.status_code >= 400 and canary not in r.text


def test_duplicate_fields_warn_by_default_and_list_versions_that_can_be_served(srv):
    r = call(srv, "POST", SECRETS, raw='{"metadata": {"name": "dupw"}, "data": {"k": "YQ==", "k": "Yg=="}}')
    assert r.status_code == 201 and r.json()["data"] == {"k": "Yg=="}
    assert 'duplicate field \\"data.k\\"' in r.headers.get("Warning", "")
    rv = call(srv, "GET", SECRETS).json()["metadata"]["resourceVersion"]
    exact = call(srv, "GET", SECRETS + f"?resourceVersion={rv}&resourceVersionMatch=Exact")
    assert exact.status_code == 200 and exact.json()["metadata"]["resourceVersion"] == rv
    older = call(srv, "GET", SECRETS + "?resourceVersion=1&resourceVersionMatch=NotOlderThan")
    assert older.status_code == 200 and int(older.json()["metadata"]["resourceVersion"]) >= int(rv)
    # The legacy watch path names the collection or one object.
    with requests.get(srv.url + "/api/v1/watch/namespaces/default/secrets/dupw?timeoutSeconds=1", verify=srv.ca, headers=srv.auth,
                      stream=True, timeout=5) as w:
        events = [json.loads(l) for l in w.iter_lines() if l]
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [("ADDED", "dupw")]
