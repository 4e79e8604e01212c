"""Vault tokens (auth/token/*) through unchanged hvac 0.11.2: create (child and orphan), look up
(self, by token, by accessor), renew, revoke (self, by token, by accessor, orphaning children),
the parent/child tree, policy subsets; and one identity on both faces: a Vault token works
with kubectl-style requests on the Kubernetes face as user vault:<display name> with a group
per policy."""
import os
import time

import hvac
import pytest
import requests

APP_POLICY = 'path "sys/policy/*" { capabilities = ["read"] }\npath "auth/token/create" { capabilities = ["update"] }\n'


@pytest.fixture
def srv(start_server):
    return start_server(["--dev", "--listen", "127.0.0.1:0"])


def client(s, token):
    return hvac.Client(url=s.url, token=token, verify=s.ca)


def test_create_lookup_renew_revoke(srv):
    root = client(srv, srv.token)
    assert root.is_authenticated()  # hvac's own check: lookup-self with sigil's root token
    me = root.auth.token.lookup_self()["data"]
    assert me["policies"] == ["root"] and me["id"] == srv.token
    root.sys.create_or_update_policy("app", APP_POLICY)
    made = root.auth.token.create(policies=["app"], ttl="1h", meta={"team": "payments"}, display_name="ci")
    auth = made["auth"]
    tok = auth["client_token"]
    assert tok.startswith("hvs.") and auth["policies"] == ["app", "default"], auth
    assert auth["lease_duration"] == 3600 and auth["renewable"] is True and auth["orphan"] is True  # made by a non-Vault token
    assert auth["metadata"] == {"team": "payments"}
    app = client(srv, tok)
    assert app.is_authenticated()
    data = app.auth.token.lookup_self()["data"]
    assert data["display_name"] == "token-ci" and data["accessor"] == auth["accessor"] and data["id"] == tok
    assert 3590 <= data["ttl"] <= 3600 and data["meta"] == {"team": "payments"}
    # Policies decide what it may do: read policies, not write them.
    assert app.sys.read_policy("app")["data"]["name"] == "app"
    with pytest.raises(hvac.exceptions.Forbidden):
        app.sys.create_or_update_policy("evil", 'path "*" { capabilities = ["sudo"] }')
    # Another token's capabilities, by token and by accessor (sys/capabilities, -accessor).
    caps = root.sys.get_capabilities(paths=["sys/policy/x", "sys/mounts"], token=tok)
    assert caps["sys/policy/x"] == ["read"] and caps["sys/mounts"] == ["deny"], caps
    caps = root.sys.get_capabilities(paths=["auth/token/create"], accessor=auth["accessor"])
    assert caps["capabilities"] == ["update"], caps
    with pytest.raises(hvac.exceptions.InvalidRequest):
        root.sys.get_capabilities(paths=["a"], token="hvs.nosuchtoken")
    with pytest.raises(hvac.exceptions.Forbidden):  # "default" does not grant sys/capabilities
        app.sys.get_capabilities(paths=["a"], token=srv.token)
    by_accessor = root.auth.token.lookup_accessor(auth["accessor"])["data"]
    assert by_accessor["id"] == "" and by_accessor["policies"] == ["app", "default"]
    assert root.auth.token.lookup(tok)["data"]["accessor"] == auth["accessor"]
    # Renewal: within the system's maximum; an increment extends from now.
    renewed = app.auth.token.renew_self(increment="2h")["auth"]
    assert 7190 <= renewed["lease_duration"] <= 7200, renewed
    assert auth["accessor"] in root.auth.token.list_accessors()["data"]["keys"]
    app.auth.token.revoke_self()
    assert not app.is_authenticated()
    with pytest.raises(hvac.exceptions.Forbidden):
        app.sys.read_policy("app")
    # The list is empty now (sigil's root token is not a Vault token): 404, as Vault answers an empty list.
    with pytest.raises(hvac.exceptions.InvalidPath):
        root.auth.token.list_accessors()


def test_revoking_a_parent_revokes_its_children_unless_orphaned(srv):
    root = client(srv, srv.token)
    root.sys.create_or_update_policy("app", APP_POLICY)
    parent = root.auth.token.create(policies=["app"], ttl="1h")["auth"]["client_token"]
    p = client(srv, parent)
    child = p.auth.token.create(policies=["app"], ttl="30m")["auth"]
    assert child["orphan"] is False
    grandchild = client(srv, child["client_token"]).auth.token.create(policies=["default"], ttl="10m")["auth"]
    # A child cannot hold a policy its parent does not.
    with pytest.raises(hvac.exceptions.InvalidRequest) as e:
        p.auth.token.create(policies=["app", "other"])
    assert "subset" in str(e.value)
    root.auth.token.revoke(parent)
    for t in [parent, child["client_token"], grandchild["client_token"]]:
        assert not client(srv, t).is_authenticated(), t
    # revoke-orphan: the children outlive their parent.
    parent2 = root.auth.token.create(policies=["app"], ttl="1h")["auth"]["client_token"]
    kid = client(srv, parent2).auth.token.create(policies=["app"], ttl="1h")["auth"]["client_token"]
    root.auth.token.revoke_and_orphan_children(parent2)
    assert not client(srv, parent2).is_authenticated()
    assert client(srv, kid).is_authenticated()
    assert client(srv, kid).auth.token.lookup_self()["data"]["orphan"] is True
    # revoke-accessor
    acc = root.auth.token.create(policies=["app"], ttl="1h")["auth"]
    root.auth.token.revoke_accessor(acc["accessor"])
    assert not client(srv, acc["client_token"]).is_authenticated()


def test_orphans_periods_and_sudo(srv):
    root = client(srv, srv.token)
    root.sys.create_or_update_policy("app", APP_POLICY)
    app_tok = root.auth.token.create(policies=["app"], ttl="1h")["auth"]["client_token"]
    app = client(srv, app_tok)
    # Periodic and no_parent tokens need sudo on auth/token/create.
    with pytest.raises(hvac.exceptions.InvalidRequest):
        app.auth.token.create(policies=["app"], period="1h")
    with pytest.raises(hvac.exceptions.InvalidRequest):
        app.auth.token.create(policies=["app"], no_parent=True)
    periodic = root.auth.token.create(policies=["app"], period="10m")["auth"]
    assert periodic["lease_duration"] == 600
    renewed = client(srv, periodic["client_token"]).auth.token.renew_self(increment="5h")["auth"]
    assert renewed["lease_duration"] == 600  # a periodic token renews to its period
    capped = root.auth.token.create(policies=["app"], ttl="1h", explicit_max_ttl="90m")["auth"]
    r = client(srv, capped["client_token"]).auth.token.renew_self(increment="10h")
    assert r["auth"]["lease_duration"] <= 5400 and r["warnings"], r
    fixed = root.auth.token.create(policies=["app"], ttl="1h", renewable=False)["auth"]
    with pytest.raises(hvac.exceptions.InvalidRequest):
        client(srv, fixed["client_token"]).auth.token.renew_self()


def test_a_vault_token_is_one_identity_on_both_faces(srv):
    root = client(srv, srv.token)
    root.sys.create_or_update_policy("app", APP_POLICY)
    tok = root.auth.token.create(policies=["app"], ttl="1h", display_name="web")["auth"]["client_token"]
    h = {"Authorization": "Bearer " + tok}
    review = {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
    r = requests.post(srv.url + "/apis/authentication.k8s.io/v1/selfsubjectreviews", json=review, headers=h,
                      verify=srv.ca, timeout=10)
    assert r.status_code == 201, r.text
    info = r.json()["status"]["userInfo"]
    accessor = client(srv, tok).auth.token.lookup_self()["data"]["accessor"]
    # The user is the accessor, never the display name (the creator chooses that one).
    assert info["username"] == "vault-token:" + accessor and "vault:policy:app" in info["groups"], info
    assert info["extra"]["sigil.dev/vault-display-name"] == ["token-web"], info
    # RBAC grants nothing until a binding names the policy's group.
    secrets = srv.url + "/api/v1/namespaces/default/secrets"
    assert requests.get(secrets, headers=h, verify=srv.ca, timeout=10).status_code == 403
    binding = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": "vault-app"},
               "subjects": [{"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": "vault:policy:app"}],
               "roleRef": {"kind": "ClusterRole", "apiGroup": "rbac.authorization.k8s.io", "name": "edit"}}
    r = requests.post(srv.url + "/apis/rbac.authorization.k8s.io/v1/namespaces/default/rolebindings", json=binding,
                      headers=srv.auth, verify=srv.ca, timeout=10)
    assert r.status_code == 201, r.text
    assert requests.get(secrets, headers=h, verify=srv.ca, timeout=10).status_code == 200
    # A token holding root is root on the Kubernetes face too.
    rt = root.auth.token.create(policies=["root"])["auth"]
    assert rt["lease_duration"] == 0  # root tokens made by root need not expire
    r = requests.get(srv.url + "/api/v1/namespaces/kube-system/secrets", headers={"Authorization": "Bearer " + rt["client_token"]},
                     verify=srv.ca, timeout=10)
    assert r.status_code == 200, r.text
    # Revoked: refused on both faces.
    root.auth.token.revoke(tok)
    assert requests.get(secrets, headers=h, verify=srv.ca, timeout=10).status_code == 401


def test_vault_tokens_are_never_in_the_clear_on_disk_or_in_logs(start_server, workdir):
    """The no-plaintext scan for Vault tokens and accessors' tokens: a token is returned once;
    the store holds a keyed hash, the trace-level log and the audit trail (RequestResponse,
    every string hashed) hold nothing of it."""
    from test_no_plaintext import patterns, scan
    policy = f"{workdir}/policy.yaml"
    with open(policy, "w") as f:
        f.write("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: RequestResponse\n")
    cfg = f"{workdir}/c.yaml"
    with open(cfg, "w") as f:
        f.write(f"audit: {{log_path: {workdir}/audit.log, policy_file: {policy}}}\n")
    s = start_server(["--dev", "--listen", "127.0.0.1:0", "--config", cfg, "--log-level", "trace"])
    root = client(s, s.token)
    auths = [root.auth.token.create(policies=["default"], ttl="1h")["auth"] for _ in range(3)]
    made = [a["client_token"] for a in auths]
    for t in made:
        client(s, t).auth.token.lookup_self()
    client(s, made[0]).auth.token.revoke_self()
    # The dev directory (the store's LMDB files, keys, certificates) is removed at exit: scan it
    # while the server runs.
    found = scan(os.path.dirname(s.ca), made)
    # Positive control: an accessor is part of a storage key, and keys are not encrypted
    # (threat-model.md), so the scan must find it in the store's files.
    assert scan(os.path.dirname(s.ca), [auths[1]["accessor"]]), "the scan found nothing it should: it proves nothing"
    s.stop()
    logs = s.logs()
    for t in made:
        assert not any(p in logs.encode() for p in patterns(t)), "a token reached the log"
    found += scan(workdir, made)
    assert found == [], found
    assert "/v1/auth/token/create" in open(f"{workdir}/audit.log").read()  # the trail recorded them


def test_hostile_review_regressions(srv):
    """Each of these once worked (a hostile review of the Vault face)."""
    root = client(srv, srv.token)
    root.sys.create_or_update_policy("app", APP_POLICY)
    # An expiring root token may not mint a root token that never expires.
    short_root = root.auth.token.create(policies=["root"], ttl="1h")["auth"]["client_token"]
    with pytest.raises(hvac.exceptions.InvalidRequest) as e:
        client(srv, short_root).auth.token.create()
    assert "expiring root tokens cannot create non-expiring root tokens" in str(e.value)
    # A child never outlives its parent's expiry: its TTL and renewals are capped at the parent's.
    parent = root.auth.token.create(policies=["app"], ttl="10m")["auth"]["client_token"]
    child = client(srv, parent).auth.token.create(policies=["app"], ttl="5h")["auth"]
    assert child["lease_duration"] <= 600, child
    renewed = client(srv, child["client_token"]).auth.token.renew_self(increment="5h")["auth"]
    assert renewed["lease_duration"] <= 600, renewed
    # A token minted by a revoked token is refused (it used to become an orphan).
    doomed = root.auth.token.create(policies=["app"], ttl="1h")["auth"]["client_token"]
    r = requests.post(srv.url + "/v1/auth/token/revoke", json={"token": doomed}, headers={"X-Vault-Token": srv.token},
                      verify=srv.ca, timeout=10)
    assert r.status_code == 204
    with pytest.raises(hvac.exceptions.Forbidden):
        client(srv, doomed).auth.token.create(policies=["app"])


def test_children_made_while_the_parent_is_revoked_do_not_survive(srv):
    """Creating children under a tree while its top is revoked: no child may outlive the
    revocation (a creation now rewrites its parent in the same transaction, so the revocation
    that listed the tree before it fails its compare and starts again)."""
    import threading
    root = client(srv, srv.token)
    root.sys.create_or_update_policy("app", APP_POLICY)
    for trial in range(3):
        top = root.auth.token.create(policies=["app"], ttl="1h")["auth"]["client_token"]
        mids = [client(srv, top).auth.token.create(policies=["app"], ttl="1h")["auth"]["client_token"] for _ in range(6)]
        made, stop = [], threading.Event()

        def spawn(mid):
            s = requests.Session()
            while not stop.is_set():
                r = s.post(srv.url + "/v1/auth/token/create", json={"policies": ["app"], "ttl": "1h"},
                           headers={"X-Vault-Token": mid}, verify=srv.ca, timeout=10)
                if r.status_code == 200:
                    made.append(r.json()["auth"]["client_token"])
        threads = [threading.Thread(target=spawn, args=(m,)) for m in mids]
        for t in threads:
            t.start()
        time.sleep(0.3)
        root.auth.token.revoke(top)
        stop.set()
        for t in threads:
            t.join()
        # Asked by root (a failed authentication per token would be throttled per address).
        asker = requests.Session()
        alive = [t for t in made if asker.post(srv.url + "/v1/auth/token/lookup", json={"token": t}, verify=srv.ca,
                                               headers={"X-Vault-Token": srv.token}, timeout=10).status_code == 200]
        assert made and alive == [], (trial, len(made), len(alive))


def test_limited_use_tokens(srv):
    """num_uses: every authenticated request spends a use, on either face; the last use revokes
    the token; racing requests never get more uses than the token had; a limited-use token
    cannot make children (Vault's rule, or the limit would mean nothing)."""
    from concurrent.futures import ThreadPoolExecutor
    root = client(srv, srv.token)
    root.sys.create_or_update_policy("app", APP_POLICY)
    made = root.auth.token.create(policies=["app"], ttl="1h", num_uses=4)["auth"]
    tok = made["client_token"]
    app = client(srv, tok)
    assert app.auth.token.lookup_self()["data"]["num_uses"] == 3  # this request spent one
    with pytest.raises(hvac.exceptions.InvalidRequest, match="restricted use token"):
        app.auth.token.create(policies=["app"], ttl="1m")  # spends one too
    r = requests.get(srv.url + "/api/v1/namespaces", headers={"Authorization": "Bearer " + tok}, verify=srv.ca, timeout=10)
    assert r.status_code == 403  # authenticated (a use spent), then refused by RBAC
    assert root.auth.token.lookup(tok)["data"]["num_uses"] == 1  # root's lookup spends none of it
    assert app.sys.read_policy("app")["data"]["name"] == "app"  # the last use
    with pytest.raises(hvac.exceptions.Forbidden):
        app.sys.read_policy("app")
    with pytest.raises(hvac.exceptions.Forbidden, match="bad token"):
        root.auth.token.lookup_accessor(made["accessor"])  # revoked with its accessor

    once = root.auth.token.create(policies=["app"], ttl="1h", num_uses=1)["auth"]
    client(srv, once["client_token"]).auth.token.revoke_self()  # its last use: 204, as Vault answers
    with pytest.raises(hvac.exceptions.Forbidden):
        root.auth.token.lookup_accessor(once["accessor"])

    racing = root.auth.token.create(policies=["app"], ttl="1h", num_uses=5)["auth"]["client_token"]

    def one(_):
        r = requests.get(srv.url + "/v1/sys/policy/app", headers={"X-Vault-Token": racing}, verify=srv.ca, timeout=30)
        return r.status_code

    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(one, range(20)))
    assert codes.count(200) == 5 and codes.count(403) == 15, codes
    with pytest.raises(hvac.exceptions.InvalidRequest, match="negative"):
        root.auth.token.create(policies=["app"], ttl="1h", num_uses=-1)

    # Regressions from a hostile review: a limited-use root token minted a year-long sigil token
    # through /sigil/v1/tokens; a one-use token opened a watch that outlived it; TokenReview
    # checked one without spending a use.
    lim = root.auth.token.create(policies=["root"], ttl="1h", num_uses=3)["auth"]["client_token"]
    bearer = {"Authorization": "Bearer " + lim}
    r = requests.post(srv.url + "/sigil/v1/tokens", headers=bearer, verify=srv.ca, timeout=10,
                      json={"user": "evil", "groups": ["system:masters"], "ttlSeconds": 31536000})
    assert r.status_code == 403 and "limited-use" in r.json()["message"], r.text
    r = requests.get(srv.url + "/api/v1/namespaces/default/secrets?watch=1&timeoutSeconds=5", headers=bearer,
                     verify=srv.ca, timeout=10)
    assert r.status_code == 403 and "watch" in r.json()["message"], r.text
    review = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": lim}}
    r = requests.post(srv.url + "/apis/authentication.k8s.io/v1/tokenreviews", json=review,
                      headers={"Authorization": "Bearer " + srv.token}, verify=srv.ca, timeout=10)
    assert r.status_code == 201 and r.json()["status"]["authenticated"] is True, r.text
    r = requests.post(srv.url + "/apis/authentication.k8s.io/v1/tokenreviews", json=review,
                      headers={"Authorization": "Bearer " + srv.token}, verify=srv.ca, timeout=10)
    assert r.json()["status"].get("authenticated") is not True, r.text  # three uses: token issue, watch, review

    # An expiring token issues sigil tokens that expire no later than itself.
    short = root.auth.token.create(policies=["root"], ttl="10m")["auth"]["client_token"]
    r = requests.post(srv.url + "/sigil/v1/tokens", headers={"Authorization": "Bearer " + short}, verify=srv.ca,
                      timeout=10, json={"user": "ci", "ttlSeconds": 31536000})
    assert r.status_code == 201, r.text
    import datetime
    exp = datetime.datetime.fromisoformat(r.json()["expirationTimestamp"].replace("Z", "+00:00"))
    assert exp <= datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(minutes=10, seconds=5), exp


def test_token_roles(srv):
    """auth/token/roles/<name> and auth/token/create/<name>: a role's allowed policies replace
    the subset-of-parent rule, its disallowed ones are refused, and its orphan, period, use
    limit and explicit max TTL apply without sudo."""
    root = client(srv, srv.token)
    for name in ["app", "ops", "secret-admin"]:
        root.sys.create_or_update_policy(name, APP_POLICY)
    root.sys.create_or_update_policy("role-user", 'path "auth/token/create/ci" { capabilities = ["update"] }\n'
                                                  'path "auth/token/create" { capabilities = ["update"] }')
    # hvac 0.11.2's helper sends the older fields; the token_* ones through a plain write.
    root.auth.token.create_or_update_role("ci", allowed_policies=["app", "ops"], disallowed_policies=["secret-admin"],
                                          orphan=True, renewable=True, path_suffix="v1")
    root.write("auth/token/roles/ci", token_period="30m", token_explicit_max_ttl="2h")  # an update keeps the rest
    role = root.auth.token.read_role("ci")["data"]
    assert role["allowed_policies"] == ["app", "ops"] and role["disallowed_policies"] == ["secret-admin"], role
    assert role["orphan"] is True and role["token_period"] == 1800 and role["period"] == 1800, role
    assert role["token_explicit_max_ttl"] == 7200 and role["path_suffix"] == "v1" and role["name"] == "ci", role
    assert root.auth.token.list_roles()["data"]["keys"] == ["ci"]
    assert root.auth.token.read_role("ci")["data"]["orphan"] is True

    # A caller holding none of the role's policies, and no sudo, makes tokens through it.
    caller = client(srv, root.auth.token.create(policies=["role-user"], ttl="1h")["auth"]["client_token"])
    made = caller.auth.token.create(role_name="ci", policies=["app"])["auth"]
    assert made["policies"] == ["app", "default"] and made["orphan"] is True, made
    assert made["lease_duration"] == 1800, made  # periodic, from the role
    info = root.auth.token.lookup(made["client_token"])["data"]
    assert info["path"] == "auth/token/create/ci/v1" and info["period"] == 1800 and info["explicit_max_ttl"] == 7200, info
    default_policies = caller.auth.token.create(role_name="ci")["auth"]["policies"]
    assert default_policies == ["app", "default", "ops"], default_policies  # none asked: the role's allowed ones
    with pytest.raises(hvac.exceptions.InvalidRequest, match="allowed policies"):
        caller.auth.token.create(role_name="ci", policies=["root"])
    with pytest.raises(hvac.exceptions.InvalidRequest, match="disallowed"):
        caller.auth.token.create(role_name="ci", policies=["secret-admin"])
    with pytest.raises(hvac.exceptions.InvalidRequest, match="subset of parent"):
        caller.auth.token.create(policies=["app"])  # without the role: the usual rule
    with pytest.raises(hvac.exceptions.InvalidRequest, match="unknown role"):
        root.auth.token.create(role_name="nope")
    with pytest.raises(hvac.exceptions.Forbidden):
        caller.auth.token.create(role_name="other")  # its policy names only create/ci
    with pytest.raises(hvac.exceptions.InvalidRequest, match="not supported"):
        root.write("auth/token/roles/cidr", token_bound_cidrs=["10.0.0.0/8"])

    # Regressions from a review: a role allowing "root" gave a non-root caller a root token;
    # a caller with "update" but not "create" on auth/token/roles/* made new roles; a role's
    # period was not capped.
    root.write("auth/token/roles/admin", allowed_policies=["root"])
    root.sys.create_or_update_policy("role-editor", 'path "auth/token/create/*" { capabilities = ["update"] }\n'
                                                   'path "auth/token/roles/*" { capabilities = ["update", "read"] }')
    editor = client(srv, root.auth.token.create(policies=["role-editor"], ttl="1h")["auth"]["client_token"])
    with pytest.raises(hvac.exceptions.InvalidRequest, match="parent token being root"):
        editor.auth.token.create(role_name="admin", ttl="10m")
    with pytest.raises(hvac.exceptions.Forbidden):
        editor.write("auth/token/roles/fresh", allowed_policies=["app"])  # new: needs create
    editor.write("auth/token/roles/ci", path_suffix="v2")  # exists: update is enough
    root.write("auth/token/roles/forever", allowed_policies=["app"], token_period="100000h")
    long = root.auth.token.create(role_name="forever")
    assert long["auth"]["lease_duration"] == 768 * 3600 and long["warnings"], long
    with pytest.raises(hvac.exceptions.InvalidRequest, match="invalid characters"):
        root.write("auth/token/roles/bad", path_suffix="..")

    # A use-limited role; then the role is deleted.
    root.write("auth/token/roles/once", allowed_policies=["app"], token_num_uses=1)
    once = root.auth.token.create(role_name="once")["auth"]
    assert root.auth.token.lookup(once["client_token"])["data"]["num_uses"] == 1
    root.auth.token.delete_role("once")
    with pytest.raises(hvac.exceptions.InvalidPath):
        root.auth.token.read_role("once")
