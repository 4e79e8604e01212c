"""Where sigil's Kubernetes face still differed from kube-apiserver in ways kubectl users and
upstream's tests notice (issue 16): pretty-printing, emptied maps, and refusing what it would
otherwise silently ignore."""
import json
import os
import subprocess

import pytest
import requests

from conftest import SIGIL

KUBECTL = "/usr/bin/kubectl"


@pytest.fixture
def srv(start_server, workdir):
    s = start_server(["--dev", "--listen", "127.0.0.1:0"])
    s.env = dict(os.environ, KUBECONFIG=os.path.join(os.path.dirname(s.ca), "kubeconfig"), HOME=workdir)
    return s


def kubectl(s, *args):
    r = subprocess.run([KUBECTL, *args], capture_output=True, text=True, env=s.env, timeout=60)
    assert r.returncode == 0, (args, r.stderr)
    return r.stdout


def test_pretty_printing_as_kube_apiserver(srv):
    url = srv.url + "/api/v1/namespaces/default"
    compact = {"User-Agent": "python-requests"}
    # ?pretty=true indents by two spaces; upstream's authorization test greps `"allowed": true`.
    r = requests.get(url + "?pretty=true", headers=dict(srv.auth, **compact), verify=srv.ca, timeout=10)
    assert r.text.startswith('{\n  "kind": "Namespace",\n  "apiVersion": "v1",') and r.text.endswith("}\n"), r.text[:80]
    assert json.loads(r.text)["metadata"]["name"] == "default"
    r = requests.post(srv.url + "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews?pretty=1",
                      headers=dict(srv.auth, **compact), verify=srv.ca, timeout=10,
                      json={"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
                            "spec": {"resourceAttributes": {"verb": "get", "resource": "secrets"}}})
    assert '"allowed": true' in r.text
    # Without the parameter: compact, unless the client is curl, Wget or a browser.
    assert "\n" not in requests.get(url, headers=dict(srv.auth, **compact), verify=srv.ca, timeout=10).text.strip()
    for ua in ["curl/7.88.1", "Wget/1.21", "Mozilla/5.0 (X11; Linux x86_64)"]:
        r = requests.get(url, headers=dict(srv.auth, **{"User-Agent": ua}), verify=srv.ca, timeout=10)
        assert r.text.startswith('{\n  "kind"'), ua
    # An explicit pretty=false wins over the User-Agent; errors are indented too.
    r = requests.get(url + "?pretty=false", headers=dict(srv.auth, **{"User-Agent": "curl/8"}), verify=srv.ca, timeout=10)
    assert "\n" not in r.text.strip()
    r = requests.get(srv.url + "/api/v1/namespaces/default/secrets/none?pretty=true", headers=srv.auth, verify=srv.ca, timeout=10)
    assert r.status_code == 404 and '\n  "reason": "NotFound",' in r.text


def test_emptied_maps_are_left_out(srv):
    kubectl(srv, "create", "secret", "generic", "s", "--from-literal=a=b")
    kubectl(srv, "label", "secret", "s", "team=x")
    kubectl(srv, "annotate", "secret", "s", "note=1")
    kubectl(srv, "label", "secret", "s", "team-")
    kubectl(srv, "annotate", "secret", "s", "note-")
    # kube-apiserver omits empty omitempty maps: the template sees no value, not map[].
    out = kubectl(srv, "get", "secret", "s", "-o", "go-template={{.metadata.labels}}|{{.metadata.annotations}}")
    assert out == "<no value>|<no value>", out
    kubectl(srv, "patch", "secret", "s", "--type=json", "-p", '[{"op":"remove","path":"/data/a"}]')
    obj = json.loads(kubectl(srv, "get", "secret", "s", "-o", "json"))
    assert "data" not in obj and "labels" not in obj["metadata"] and "annotations" not in obj["metadata"], obj
    kubectl(srv, "create", "rolebinding", "rb", "--clusterrole=view")
    obj = json.loads(kubectl(srv, "get", "rolebinding", "rb", "-o", "json"))
    assert "subjects" not in obj, obj


def test_dev_mode_refuses_a_data_dir(workdir):
    r = subprocess.run([SIGIL, "server", "--dev", "--listen", "127.0.0.1:0", "--data-dir", os.path.join(workdir, "keep")],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode != 0 and "cannot use data_dir" in r.stderr, r.stderr
    assert not os.path.exists(os.path.join(workdir, "keep"))


def test_error_texts_match_kube_apiserver(srv):
    kubectl(srv, "create", "secret", "generic", "s", "--from-literal=a=b")
    base = srv.url + "/api/v1/namespaces/default/secrets"
    patch = dict(srv.auth, **{"Content-Type": "application/json-patch+json"})
    # A failing test op: kube-apiserver's generic 422, never an internal error number.
    r = requests.patch(base + "/s", headers=patch, verify=srv.ca, timeout=10,
                       data=json.dumps([{"op": "test", "path": "/data/a", "value": "eA=="}]))
    assert r.status_code == 422 and r.json()["reason"] == "Invalid", r.text
    assert r.json()["message"] == "the server rejected our request due to an error in our request"
    r = requests.patch(base + "/s", headers=patch, verify=srv.ca, timeout=10, data=json.dumps({"op": "add"}))
    assert r.status_code == 400 and r.json()["message"] == "json: cannot unmarshal object into Go value of type jsonpatch.Patch"
    # A docker config that does not decode: the decoder's reason, never the value.
    def docker(value):
        return requests.post(base, headers=srv.auth, verify=srv.ca, timeout=10, json={
            "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "d"}, "type": "kubernetes.io/dockerconfigjson",
            "stringData": {".dockerconfigjson": value}})
    r = docker('["not", "a", "map"]')
    assert r.status_code == 422 and ('data[.dockerconfigjson]: Invalid value: "<secret contents redacted>": '
                                     'json: cannot unmarshal array into Go value of type map[string]interface {}') in r.json()["message"]
    r = docker('{"auths": {"x": ')
    assert r.status_code == 422 and "unexpected end of JSON input" in r.json()["message"]
    r = docker('{"auths": hunter2}')
    assert r.status_code == 422 and "invalid character at offset 10" in r.json()["message"] and "hunter2" not in r.text
    assert docker('{"auths": {}}').status_code == 201


def test_kubectl_explain_and_openapi_schemas(srv):
    # kubectl explain reads the OpenAPI v3 schemas of every served kind.
    for kind, group in [("secret", ""), ("namespace", ""), ("serviceaccount", ""), ("role", "rbac.authorization.k8s.io"),
                        ("clusterrole", "rbac.authorization.k8s.io"), ("rolebinding", "rbac.authorization.k8s.io"),
                        ("clusterrolebinding", "rbac.authorization.k8s.io")]:
        out = kubectl(srv, "explain", kind)
        assert "FIELDS:" in out and "metadata\t<ObjectMeta>" in out, (kind, out)
        assert (f"GROUP:      {group}" in out) == bool(group), out
    out = kubectl(srv, "explain", "secret.metadata.ownerReferences")
    assert "uid\t<string> -required-" in out
    out = kubectl(srv, "explain", "clusterrolebinding.roleRef")
    assert "name\t<string> -required-" in out
    # The documents themselves, with kube-apiserver's names, formats and extensions.
    get = lambda path: requests.get(srv.url + path, headers=srv.auth, verify=srv.ca, timeout=10)
    index = get("/openapi/v3").json()["paths"]
    assert set(index) >= {"api/v1", "apis/rbac.authorization.k8s.io/v1", "apis/authentication.k8s.io/v1",
                          "apis/authorization.k8s.io/v1"}
    schemas = get(index["api/v1"]["serverRelativeURL"]).json()["components"]["schemas"]
    secret = schemas["io.k8s.api.core.v1.Secret"]
    assert secret["x-kubernetes-group-version-kind"] == [{"group": "", "kind": "Secret", "version": "v1"}]
    assert secret["properties"]["data"]["additionalProperties"] == {"type": "string", "format": "byte"}
    assert secret["properties"]["metadata"]["allOf"] == [{"$ref": "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"}]
    owners = schemas["io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"]["properties"]["ownerReferences"]
    assert owners["x-kubernetes-patch-merge-key"] == "uid" and owners["x-kubernetes-list-map-keys"] == ["uid"]
    assert schemas["io.k8s.apimachinery.pkg.apis.meta.v1.Time"] == {"description": schemas["io.k8s.apimachinery.pkg.apis.meta.v1.Time"]["description"],
                                                                     "type": "string", "format": "date-time"}
    v2 = get("/openapi/v2").json()
    assert v2["swagger"] == "2.0"
    assert v2["definitions"]["io.k8s.api.rbac.v1.RoleRef"]["required"] == ["apiGroup", "kind", "name"]
    assert v2["definitions"]["io.k8s.api.core.v1.Secret"]["properties"]["metadata"]["$ref"] == \
        "#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
    # client-go asks for v2 in protobuf only: 406, so it falls back as it did before v2 existed.
    r = requests.get(srv.url + "/openapi/v2", headers=dict(srv.auth, Accept="application/com.github.proto-openapi.spec.v2@v1.0+protobuf"),
                     verify=srv.ca, timeout=10)
    assert r.status_code == 406
