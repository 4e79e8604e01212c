"""KV version 2 through unchanged hvac 0.11.2: the engine at any mount (and at secret/ in dev
mode, as Vault's dev server mounts it): versions, check-and-set, max_versions trimming, soft
delete, undelete, destroy, metadata (custom metadata, delete-all), listing, the mount's config,
patch, and the ACL on data/ and metadata/ paths with Vault's existence check."""
import threading

import hvac
import pytest
import requests


@pytest.fixture
def srv(start_server):
    return start_server(["--dev", "--listen", "127.0.0.1:0"])


def client(s, token):
    return hvac.Client(url=s.url, token=token, verify=s.ca)


def test_dev_mode_mounts_kv2_at_secret(srv):
    root = client(srv, srv.token)
    mounts = root.sys.list_mounted_secrets_engines()["data"]
    assert mounts["secret/"]["type"] == "kv" and mounts["secret/"]["options"] == {"version": "2"}, mounts
    kv = root.secrets.kv.v2  # hvac's default KV version and mount: secret/, v2
    made = kv.create_or_update_secret("app/db", secret={"password": "one"})["data"]
    assert made["version"] == 1 and made["destroyed"] is False and made["deletion_time"] == ""
    assert made["created_time"].endswith("Z") and "." in made["created_time"]
    got = kv.read_secret_version("app/db")["data"]
    assert got["data"] == {"password": "one"} and got["metadata"]["version"] == 1


def test_versions_cas_delete_undelete_destroy_metadata(srv):
    root = client(srv, srv.token)
    root.sys.enable_secrets_engine("kv", path="team", options={"version": "2"})
    kv = root.secrets.kv.v2
    for i in range(1, 4):
        assert kv.create_or_update_secret("svc/api", secret={"key": f"v{i}"}, mount_point="team")["data"]["version"] == i
    assert kv.read_secret_version("svc/api", mount_point="team")["data"]["data"] == {"key": "v3"}
    assert kv.read_secret_version("svc/api", version=1, mount_point="team")["data"]["data"] == {"key": "v1"}
    with pytest.raises(hvac.exceptions.InvalidPath):
        kv.read_secret_version("svc/api", version=9, mount_point="team")

    # Check-and-set: the current version, or 0 for "must not exist".
    with pytest.raises(hvac.exceptions.InvalidRequest, match="did not match"):
        kv.create_or_update_secret("svc/api", secret={"key": "x"}, cas=2, mount_point="team")
    assert kv.create_or_update_secret("svc/api", secret={"key": "v4"}, cas=3, mount_point="team")["data"]["version"] == 4
    with pytest.raises(hvac.exceptions.InvalidRequest, match="did not match"):
        kv.create_or_update_secret("svc/api", secret={"key": "x"}, cas=0, mount_point="team")
    assert kv.create_or_update_secret("svc/new", secret={"a": "b"}, cas=0, mount_point="team")["data"]["version"] == 1

    # Soft delete (latest, then chosen versions), undelete, destroy.
    kv.delete_latest_version_of_secret("svc/api", mount_point="team")
    with pytest.raises(hvac.exceptions.InvalidPath):
        kv.read_secret_version("svc/api", mount_point="team")
    # As Vault: the 404 of a deleted version still carries its metadata, and no data.
    r = requests.get(srv.url + "/v1/team/data/svc/api", headers={"X-Vault-Token": srv.token}, verify=srv.ca, timeout=10)
    assert r.status_code == 404 and r.json()["data"]["data"] is None, r.text
    assert r.json()["data"]["metadata"]["version"] == 4 and r.json()["data"]["metadata"]["deletion_time"] != ""
    kv.delete_secret_versions("svc/api", versions=[1, 2], mount_point="team")
    meta = kv.read_secret_metadata("svc/api", mount_point="team")["data"]
    assert meta["current_version"] == 4 and meta["oldest_version"] == 0, meta
    assert meta["versions"]["4"]["deletion_time"] != "" and meta["versions"]["3"]["deletion_time"] == ""
    assert meta["versions"]["1"]["deletion_time"] != "" and not meta["versions"]["1"]["destroyed"]
    kv.undelete_secret_versions("svc/api", versions=[4], mount_point="team")
    assert kv.read_secret_version("svc/api", mount_point="team")["data"]["data"] == {"key": "v4"}
    kv.destroy_secret_versions("svc/api", versions=[3], mount_point="team")
    with pytest.raises(hvac.exceptions.InvalidPath):
        kv.read_secret_version("svc/api", version=3, mount_point="team")
    meta = kv.read_secret_metadata("svc/api", mount_point="team")["data"]
    assert meta["versions"]["3"]["destroyed"] is True
    kv.undelete_secret_versions("svc/api", versions=[3], mount_point="team")  # destroyed stays destroyed
    with pytest.raises(hvac.exceptions.InvalidPath):
        kv.read_secret_version("svc/api", version=3, mount_point="team")

    # Metadata: max_versions trims the oldest; custom metadata shows on every version.
    kv.update_metadata("svc/api", max_versions=2, mount_point="team")
    root.write("team/metadata/svc/api", custom_metadata={"owner": "payments"})  # (not in hvac 0.11.2's helper)
    kv.create_or_update_secret("svc/api", secret={"key": "v5"}, mount_point="team")
    meta = kv.read_secret_metadata("svc/api", mount_point="team")["data"]
    assert sorted(meta["versions"]) == ["4", "5"] and meta["oldest_version"] == 4 and meta["max_versions"] == 2, meta
    assert meta["custom_metadata"] == {"owner": "payments"}
    got = kv.read_secret_version("svc/api", mount_point="team")["data"]
    assert got["metadata"]["custom_metadata"] == {"owner": "payments"} and got["metadata"]["version"] == 5

    # Listing, then delete-all.
    kv.create_or_update_secret("svc/deep/x", secret={"a": "1"}, mount_point="team")
    assert kv.list_secrets("", mount_point="team")["data"]["keys"] == ["svc/"]
    assert kv.list_secrets("svc", mount_point="team")["data"]["keys"] == ["api", "deep/", "new"]
    kv.delete_metadata_and_all_versions("svc/api", mount_point="team")
    with pytest.raises(hvac.exceptions.InvalidPath):
        kv.read_secret_metadata("svc/api", mount_point="team")
    assert kv.list_secrets("svc", mount_point="team")["data"]["keys"] == ["deep/", "new"]


def test_config_cas_required_patch_and_concurrent_writers(srv):
    root = client(srv, srv.token)
    kv = root.secrets.kv.v2
    kv.configure(max_versions=3, cas_required=True)
    cfg = kv.read_configuration()["data"]
    assert cfg == {"cas_required": True, "delete_version_after": "0s", "max_versions": 3}, cfg
    with pytest.raises(hvac.exceptions.InvalidRequest, match="check-and-set parameter required"):
        kv.create_or_update_secret("c", secret={"a": "1"})
    kv.create_or_update_secret("c", secret={"a": "1", "b": "2"}, cas=0)
    # hvac 0.11.2's patch reads, then writes with cas; a real PATCH merges server-side.
    kv.patch("c", {"b": "3"})
    assert kv.read_secret_version("c")["data"]["data"] == {"a": "1", "b": "3"}
    r = requests.patch(srv.url + "/v1/secret/data/c", headers={"X-Vault-Token": srv.token,
                                                               "Content-Type": "application/merge-patch+json"},
                       json={"data": {"a": None, "c": "4"}, "options": {"cas": 2}}, verify=srv.ca, timeout=10)
    assert r.status_code == 200 and r.json()["data"]["version"] == 3, r.text
    assert kv.read_secret_version("c")["data"]["data"] == {"b": "3", "c": "4"}
    r = requests.patch(srv.url + "/v1/secret/data/nothing-here", headers={"X-Vault-Token": srv.token},
                       json={"data": {"a": "1"}, "options": {"cas": 0}}, verify=srv.ca, timeout=10)
    assert r.status_code == 404, r.text
    kv.configure(cas_required=False, max_versions=0)

    # Concurrent writers: every write lands as its own version; none is lost.
    results = []

    def write(i):
        results.append(kv.create_or_update_secret("race", secret={"n": str(i)})["data"]["version"])

    threads = [threading.Thread(target=write, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == list(range(1, 13)), results
    meta = kv.read_secret_metadata("race")["data"]
    assert meta["current_version"] == 12 and len(meta["versions"]) == 10 and meta["oldest_version"] == 3, meta


def test_policies_on_data_and_metadata_paths(srv):
    root = client(srv, srv.token)
    root.secrets.kv.v2.create_or_update_secret("web/db", secret={"password": "x"})
    root.sys.create_or_update_policy("web", 'path "secret/data/web/*" { capabilities = ["read", "update"] }\n'
                                            'path "secret/metadata/web/*" { capabilities = ["list", "read"] }')
    web = client(srv, root.auth.token.create(policies=["web"], ttl="1h")["auth"]["client_token"])
    assert web.secrets.kv.v2.read_secret_version("web/db")["data"]["data"] == {"password": "x"}
    web.secrets.kv.v2.create_or_update_secret("web/db", secret={"password": "y"})  # exists: update
    with pytest.raises(hvac.exceptions.Forbidden):
        web.secrets.kv.v2.create_or_update_secret("web/new", secret={"password": "z"})  # new: needs create
    assert web.secrets.kv.v2.list_secrets("web")["data"]["keys"] == ["db"]
    with pytest.raises(hvac.exceptions.Forbidden):
        web.secrets.kv.v2.delete_metadata_and_all_versions("web/db")
    with pytest.raises(hvac.exceptions.Forbidden):
        web.secrets.kv.v2.read_secret_version("other")


def test_delete_version_after_is_bounded_and_follows_the_mount(srv):
    """Regressions from a review: an integer delete_version_after overflowed into a deletion
    time in 1759 (the version was gone as it was written), and hvac's update_metadata (which
    always sends "0s") turned off the mount's automatic deletion for the key."""
    root = client(srv, srv.token)
    kv = root.secrets.kv.v2
    r = requests.post(srv.url + "/v1/secret/metadata/ov", headers={"X-Vault-Token": srv.token},
                      json={"delete_version_after": 10_000_000_000}, verify=srv.ca, timeout=10)
    assert r.status_code == 400, r.text
    kv.configure(delete_version_after="1h")
    kv.update_metadata("dva", max_versions=5)  # sends delete_version_after "0s": the mount's applies
    made = kv.create_or_update_secret("dva", secret={"a": "1"})["data"]
    assert made["deletion_time"] != "" and made["deletion_time"][:4] >= "2026", made
    assert kv.read_secret_version("dva")["data"]["data"] == {"a": "1"}
    kv.configure(delete_version_after="0s")


def test_subkeys_and_metadata_patch(srv):
    root = client(srv, srv.token)
    kv = root.secrets.kv.v2
    kv.create_or_update_secret("nested", secret={"a": "val-a", "b": {"c": "val-c", "d": {"e": "val-e"}}})
    hdr = {"X-Vault-Token": srv.token}
    r = requests.get(srv.url + "/v1/secret/subkeys/nested", headers=hdr, verify=srv.ca, timeout=10)
    assert r.status_code == 200 and r.json()["data"]["subkeys"] == {"a": None, "b": {"c": None, "d": {"e": None}}}, r.text
    assert "val-" not in r.text
    assert r.json()["data"]["metadata"]["version"] == 1
    r = requests.get(srv.url + "/v1/secret/subkeys/nested?depth=1", headers=hdr, verify=srv.ca, timeout=10)
    assert r.json()["data"]["subkeys"] == {"a": None, "b": None}, r.text
    assert "val-" not in r.text  # values never appear
    assert requests.get(srv.url + "/v1/secret/subkeys/none", headers=hdr, verify=srv.ca, timeout=10).status_code == 404

    root.write("secret/metadata/nested", custom_metadata={"owner": "a", "team": "b"})
    merge = dict(hdr, **{"Content-Type": "application/merge-patch+json"})
    r = requests.patch(srv.url + "/v1/secret/metadata/nested", headers=merge, verify=srv.ca, timeout=10,
                       json={"custom_metadata": {"owner": None, "tier": "gold"}, "max_versions": 4})
    assert r.status_code == 204, r.text
    meta = kv.read_secret_metadata("nested")["data"]
    assert meta["custom_metadata"] == {"team": "b", "tier": "gold"} and meta["max_versions"] == 4, meta
    r = requests.patch(srv.url + "/v1/secret/metadata/absent", headers=merge, verify=srv.ca, timeout=10,
                       json={"max_versions": 4})
    assert r.status_code == 404, r.text
