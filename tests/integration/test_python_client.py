"""Debian's python3-kubernetes client against a dev server: create, read, list with selectors,
patch, replace with a stale resourceVersion, delete."""
import os

import yaml

import pytest
from kubernetes import client, config, dynamic
from kubernetes.client.rest import ApiException


@pytest.fixture
def api(start_server):
    s = start_server(["--dev", "--listen", "127.0.0.1:0"])
    cfg = client.Configuration()
    config.load_kube_config(config_file=os.path.join(os.path.dirname(s.ca), "kubeconfig"), client_configuration=cfg)
    return client.CoreV1Api(client.ApiClient(cfg))


def test_python_client_crud(api):
    body = client.V1Secret(metadata=client.V1ObjectMeta(name="py1", labels={"app": "py"}), string_data={"k": "v"})
    created = api.create_namespaced_secret("default", body)
    assert created.data == {"k": "dg=="} and created.string_data is None
    api.create_namespaced_secret("default", client.V1Secret(metadata=client.V1ObjectMeta(name="py2"), data={"a": "Yg=="}))
    got = api.read_namespaced_secret("py1", "default")
    assert got.metadata.uid == created.metadata.uid
    names = [s.metadata.name for s in api.list_namespaced_secret("default", label_selector="app=py").items]
    assert names == ["py1"]
    names = [s.metadata.name for s in api.list_secret_for_all_namespaces(field_selector="metadata.name=py2").items]
    assert names == ["py2"]
    patched = api.patch_namespaced_secret("py1", "default", {"metadata": {"labels": {"x": "1"}}})
    assert patched.metadata.labels == {"app": "py", "x": "1"}
    stale = got
    stale.data = {"k": "eA=="}
    with pytest.raises(ApiException) as e:
        api.replace_namespaced_secret("py1", "default", stale)
    assert e.value.status == 409
    fresh = api.read_namespaced_secret("py1", "default")
    fresh.data = {"k": "eA=="}
    assert api.replace_namespaced_secret("py1", "default", fresh).data == {"k": "eA=="}
    api.delete_namespaced_secret("py1", "default")
    with pytest.raises(ApiException) as e:
        api.read_namespaced_secret("py1", "default")
    assert e.value.status == 404


def test_python_client_pagination(api):
    for i in range(5):
        api.create_namespaced_secret("default", client.V1Secret(metadata=client.V1ObjectMeta(name=f"p{i}")))
    seen, token = [], None
    while True:
        page = api.list_namespaced_secret("default", limit=2, _continue=token)
        seen += [s.metadata.name for s in page.items]
        token = page.metadata._continue
        if not token:
            break
    assert seen == [f"p{i}" for i in range(5)]


def test_python_client_delete_collection_and_server_side_apply(api):
    for i, tier in enumerate(["web", "web", "db"]):
        api.create_namespaced_secret("default", client.V1Secret(metadata=client.V1ObjectMeta(name=f"dc{i}", labels={"tier": tier})))
    api.delete_collection_namespaced_secret("default", label_selector="tier=web", dry_run="All")
    assert len(api.list_namespaced_secret("default", label_selector="tier").items) == 3
    api.delete_collection_namespaced_secret("default", label_selector="tier=web")
    assert [s.metadata.name for s in api.list_namespaced_secret("default", label_selector="tier").items] == ["dc2"]
    # Server-side apply from the dynamic client (discovery, then a PATCH with application/apply-patch+yaml).
    secrets = dynamic.DynamicClient(api.api_client).resources.get(api_version="v1", kind="Secret")
    cfg = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "ssa-py"}, "stringData": {"k": "v"}}
    # (this client version sends a string body as it is; a YAML document is what the content type names)
    applied = secrets.server_side_apply(body=yaml.safe_dump(cfg), name="ssa-py", namespace="default", field_manager="py-apply")
    assert applied.data.k == "dg=="
    assert [(m.manager, m.operation) for m in applied.metadata.managedFields] == [("py-apply", "Apply")]
