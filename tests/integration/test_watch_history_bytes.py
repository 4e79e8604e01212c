"""storage.watch_history_max_mb: watch history is bounded in memory too, not only in events, so
large Secrets cannot pin gigabytes; a watch from a revision no longer kept gets 410 Expired."""
import base64
import json
import os

import requests


def test_large_values_push_old_revisions_out_of_watch_history(workdir, start_server):
    cfg = os.path.join(workdir, "small-history-bytes.yaml")
    with open(cfg, "w") as f:
        f.write("storage: {watch_history: 10000, watch_history_max_mb: 1}\n")
    s = start_server(["--dev", "--listen", "127.0.0.1:0", "--config", cfg])
    base = "/api/v1/namespaces/default/secrets"
    value = base64.b64encode(os.urandom(300 << 10)).decode()  # each event: ~400 KiB stored, twice on update
    revisions = []
    for i in range(8):
        r = requests.post(s.url + base, verify=s.ca, headers=s.auth, timeout=10,
                          json={"metadata": {"name": f"big{i}"}, "data": {"v": value}})
        assert r.status_code == 201, r.text
        revisions.append(int(r.json()["metadata"]["resourceVersion"]))

    def watch_from(rv):
        url = s.url + base + f"?watch=true&resourceVersion={rv}&timeoutSeconds=1"
        with requests.get(url, verify=s.ca, headers=s.auth, stream=True, timeout=10) as r:
            assert r.status_code == 200
            return [json.loads(l) for l in r.iter_lines() if l]

    old = watch_from(revisions[0])
    assert len(old) == 1 and old[0]["type"] == "ERROR", [e["type"] for e in old]
    assert old[0]["object"]["code"] == 410 and old[0]["object"]["reason"] == "Expired"
    recent = watch_from(revisions[-2])
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in recent] == [("ADDED", "big7")]
