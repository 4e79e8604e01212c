"""Watch: kubectl get -w, the Python client's watch, resourceVersion semantics, 410 Expired,
and that watches end cleanly (client gone, timeout, server shutdown)."""
import json
import os
import subprocess
import time

import requests
from kubernetes import client, config, watch

from conftest import readline
from test_kubectl import KUBECTL, kube  # noqa: F401  (fixture)
from test_server import open_connections


def stream_lines(s, path, timeout=5):
    with requests.get(s.url + path, verify=s.ca, headers=s.auth, stream=True, timeout=timeout) as r:
        assert r.status_code == 200
        return [json.loads(l) for l in r.iter_lines() if l]


def test_kubectl_get_w_sees_changes(kube):  # noqa: F811
    kube("create", "secret", "generic", "w0", "--from-literal=a=b")
    env = dict(os.environ, KUBECONFIG=kube.kubeconfig, HOME=kube.workdir)
    proc = subprocess.Popen([KUBECTL, "get", "secrets", "-w", "-o", "name"], stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert readline(proc.stdout, what="w0 from the initial list").strip() == "secret/w0"
        kube("create", "secret", "generic", "w1", "--from-literal=a=b")
        assert readline(proc.stdout, what="the ADDED event of w1").strip() == "secret/w1"
        kube("label", "secret", "w1", "x=1")
        assert readline(proc.stdout, what="the MODIFIED event of w1").strip() == "secret/w1"
    finally:
        proc.kill()
        proc.wait()


def test_python_client_watch_event_types(start_server):
    s = start_server(["--dev", "--listen", "127.0.0.1:0"])
    cfg = client.Configuration()
    config.load_kube_config(config_file=os.path.join(os.path.dirname(s.ca), "kubeconfig"), client_configuration=cfg)
    api = client.CoreV1Api(client.ApiClient(cfg))
    rv = api.list_namespaced_secret("default").metadata.resource_version
    api.create_namespaced_secret("default", client.V1Secret(metadata=client.V1ObjectMeta(name="a", labels={"k": "v"})))
    api.patch_namespaced_secret("a", "default", {"data": {"x": "eA=="}})
    api.patch_namespaced_secret("a", "default", {"metadata": {"labels": {"k": "other"}}})  # leaves the selector
    api.create_namespaced_secret("default", client.V1Secret(metadata=client.V1ObjectMeta(name="b")))
    api.delete_namespaced_secret("b", "default")
    events = []
    for e in watch.Watch().stream(api.list_namespaced_secret, "default", resource_version=rv, timeout_seconds=2):
        events.append((e["type"], e["object"].metadata.name))
    assert events == [("ADDED", "a"), ("MODIFIED", "a"), ("MODIFIED", "a"), ("ADDED", "b"), ("DELETED", "b")]
    selected = []
    for e in watch.Watch().stream(api.list_namespaced_secret, "default", resource_version=rv, label_selector="k=v",
                                  timeout_seconds=2):
        selected.append((e["type"], e["object"].metadata.name))
    # Leaving the selector is reported as DELETED, as kube-apiserver does.
    assert selected == [("ADDED", "a"), ("MODIFIED", "a"), ("DELETED", "a")]


def test_watch_from_zero_sends_current_state_and_too_old_is_410(workdir, start_server):
    cfg = os.path.join(workdir, "small-history.yaml")
    with open(cfg, "w") as f:
        f.write("storage: {watch_history: 5}\n")
    s = start_server(["--dev", "--listen", "127.0.0.1:0", "--config", cfg])
    ca = s.ca
    for i in range(12):
        r = requests.post(s.url + "/api/v1/namespaces/default/secrets", verify=ca, headers=s.auth, timeout=5,
                          json={"metadata": {"name": f"s{i}"}, "stringData": {"k": "v"}})
        assert r.status_code == 201, r.text
    initial = stream_lines(s, "/api/v1/namespaces/default/secrets?watch=true&resourceVersion=0&timeoutSeconds=1")
    assert [e["type"] for e in initial] == ["ADDED"] * 12
    assert "stringData" not in initial[0]["object"]
    too_old = stream_lines(s, "/api/v1/namespaces/default/secrets?watch=true&resourceVersion=1&timeoutSeconds=1")
    assert len(too_old) == 1 and too_old[0]["type"] == "ERROR"
    assert too_old[0]["object"]["code"] == 410 and too_old[0]["object"]["reason"] == "Expired"
    one = stream_lines(s, "/api/v1/namespaces/default/secrets?watch=true&fieldSelector=metadata.name%3Ds3&resourceVersion=0&timeoutSeconds=1")
    assert [e["object"]["metadata"]["name"] for e in one] == ["s3"]


def test_watches_end_cleanly(start_server):
    s = start_server(["--dev", "--listen", "127.0.0.1:0"])
    # timeoutSeconds ends the stream with the terminating chunk.
    start = time.time()
    assert stream_lines(s, "/api/v1/secrets?watch=true&timeoutSeconds=1") == []
    assert time.time() - start < 4
    # Clients that vanish are noticed and their sessions freed.
    for _ in range(5):
        with requests.Session() as sess:  # closing the session closes its pooled connection
            r = sess.get(s.url + "/api/v1/secrets?watch=true", verify=s.ca, headers=s.auth, stream=True, timeout=5)
            r.close()
    deadline = time.time() + 5
    while open_connections(s) > 1 and time.time() < deadline:
        time.sleep(0.1)
    assert open_connections(s) <= 1
    # A watch open at shutdown does not hold the server up.
    r = requests.get(s.url + "/api/v1/secrets?watch=true", verify=s.ca, headers=s.auth, stream=True, timeout=10)
    start = time.time()
    assert s.stop() == 0
    assert time.time() - start < 5
    r.close()


def test_bookmarks_and_streaming_initial_events(start_server):
    s = start_server(["--dev", "--listen", "127.0.0.1:0"])
    base = "/api/v1/namespaces/default/secrets"
    for i in range(3):
        r = requests.post(s.url + base, verify=s.ca, headers=s.auth, timeout=5, json={"metadata": {"name": f"b{i}"}, "stringData": {"k": "v"}})
        assert r.status_code == 201
    rv = int(r.json()["metadata"]["resourceVersion"])
    # A bookmark arrives about two seconds before the watch's deadline, at the revision reached.
    lines = stream_lines(s, base + f"?watch=true&resourceVersion={rv - 1}&allowWatchBookmarks=true&timeoutSeconds=3")
    assert [l["type"] for l in lines] == ["ADDED", "BOOKMARK"]
    bm = lines[-1]["object"]
    assert bm["kind"] == "Secret" and int(bm["metadata"]["resourceVersion"]) == rv
    # Without allowWatchBookmarks none is sent.
    assert [l["type"] for l in stream_lines(s, base + f"?watch=true&resourceVersion={rv}&timeoutSeconds=3")] == []
    # sendInitialEvents (the WatchList protocol): the current objects, then a bookmark that marks their end.
    lines = stream_lines(s, base + "?watch=true&sendInitialEvents=true&allowWatchBookmarks=true"
                                   "&resourceVersionMatch=NotOlderThan&timeoutSeconds=1")
    assert [l["type"] for l in lines[:4]] == ["ADDED"] * 3 + ["BOOKMARK"]
    assert lines[3]["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}
    assert int(lines[3]["object"]["metadata"]["resourceVersion"]) >= rv
    r = requests.get(s.url + base + "?watch=true&sendInitialEvents=true", verify=s.ca, headers=s.auth, timeout=5)
    assert r.status_code == 422 and r.json()["reason"] == "Invalid"
