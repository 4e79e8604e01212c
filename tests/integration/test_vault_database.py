"""The database secrets engine against a real PostgreSQL 15, through unchanged hvac 0.11.2:
generated users log in, renewal moves their VALID UNTIL, revocation (by the caller, by expiry,
by revoking the token that made them, by disabling the mount) drops them, a revocation retries
while PostgreSQL is down and completes when it is back, a restart of sigil mid-lease loses no
revocation; static roles rotate (at creation, on demand, on schedule) and the old password stops
working; rotate-root; the refusals; and no password in the server's log."""
import signal
import time

import hvac
import pytest

from conftest import wait_for

CREATE = [
    "CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';",
    "GRANT SELECT ON ALL TABLES IN SCHEMA public TO \"{{name}}\";",
]


def client(s, token=None):
    return hvac.Client(url=s.url, token=token or s.token, verify=s.ca)



def setup_mount(root, pg, mount="database", allowed=("*",), **extra):
    root.sys.enable_secrets_engine("database", path=mount)
    root.secrets.database.configure(name="pg", plugin_name="postgresql-database-plugin", allowed_roles=list(allowed),
                                    connection_url=pg.url(), username=pg.ADMIN, password=pg.password, mount_point=mount,
                                    **extra)


@pytest.fixture
def srv(start_server):
    return start_server(["--dev", "--listen", "127.0.0.1:0"])


@pytest.fixture(scope="module", autouse=True)
def table(postgres):
    postgres.psql("CREATE TABLE IF NOT EXISTS widgets (id int); INSERT INTO widgets VALUES (1), (2)")


def test_dynamic_credentials_log_in_renew_and_are_revoked(srv, postgres):
    root = client(srv)
    setup_mount(root, postgres)
    cfg = root.secrets.database.read_connection("pg")["data"]
    assert cfg["plugin_name"] == "postgresql-database-plugin"
    assert cfg["connection_details"]["username"] == postgres.ADMIN
    assert "password" not in cfg["connection_details"]
    assert cfg["allowed_roles"] == ["*"] and cfg["verify_connection"] is True
    root.secrets.database.create_role("ro", db_name="pg", creation_statements=CREATE, default_ttl="1h", max_ttl="2h")
    role = root.secrets.database.read_role("ro")["data"]
    assert role["db_name"] == "pg" and role["default_ttl"] == 3600 and role["max_ttl"] == 7200
    assert role["creation_statements"] == CREATE and role["revocation_statements"] == []
    assert root.secrets.database.list_roles()["data"]["keys"] == ["ro"]

    creds = root.secrets.database.generate_credentials("ro")
    user, password = creds["data"]["username"], creds["data"]["password"]
    assert creds["lease_id"].startswith("database/creds/ro/") and creds["renewable"] is True
    assert creds["lease_duration"] == 3600
    assert user.startswith("v-root-ro-") and len(user) <= 63
    assert len(password) == 20
    # The user logs in and reads what it was granted; VALID UNTIL is the lease's end (+5 s).
    assert postgres.psql("SELECT count(*) FROM widgets", user=user, password=password)[1] == "2"
    valid = float(postgres.psql(f"SELECT extract(epoch FROM rolvaliduntil) FROM pg_roles WHERE rolname = '{user}'")[1])
    assert abs(valid - (time.time() + 3605)) < 30

    # Renewal moves VALID UNTIL in PostgreSQL, capped by the role's max_ttl.
    renewed = root.sys.renew_lease(creds["lease_id"], increment=7200 * 2)
    assert 7100 <= renewed["lease_duration"] <= 7200, renewed
    valid2 = float(postgres.psql(f"SELECT extract(epoch FROM rolvaliduntil) FROM pg_roles WHERE rolname = '{user}'")[1])
    assert valid2 > valid + 3000
    lease = root.sys.read_lease(creds["lease_id"])["data"]
    assert lease["renewable"] is True and lease["ttl"] > 7000

    # Revocation drops the user: it can no longer log in.
    root.sys.revoke_lease(creds["lease_id"])
    assert not postgres.role_exists(user)
    assert not postgres.can_login(user, password)
    with pytest.raises(hvac.exceptions.InvalidRequest):
        root.sys.read_lease(creds["lease_id"])


def test_expired_credentials_are_dropped_by_the_server(srv, postgres):
    root = client(srv)
    setup_mount(root, postgres)
    root.secrets.database.create_role("short", db_name="pg", creation_statements=CREATE, default_ttl="2s", max_ttl="10s")
    creds = root.secrets.database.generate_credentials("short")
    user = creds["data"]["username"]
    assert creds["lease_duration"] == 2
    assert postgres.role_exists(user)
    assert wait_for(lambda: not postgres.role_exists(user), timeout=10)


def test_revoking_the_token_revokes_what_it_made(srv, postgres):
    root = client(srv)
    setup_mount(root, postgres)
    root.secrets.database.create_role("ro", db_name="pg", creation_statements=CREATE)
    root.sys.create_or_update_policy("creds", 'path "database/creds/ro" { capabilities = ["read"] }')
    child = root.auth.token.create(policies=["creds"], ttl="1h", display_name="app")["auth"]["client_token"]
    creds = client(srv, child).secrets.database.generate_credentials("ro")
    user = creds["data"]["username"]
    assert user.startswith("v-token-ap-ro-"), user
    assert creds["lease_duration"] == 768 * 3600  # no TTL on the role: the mount's (the system's)
    # The child may not read the role or the connection.
    with pytest.raises(hvac.exceptions.Forbidden):
        client(srv, child).secrets.database.read_connection("pg")
    root.auth.token.revoke(child)
    assert wait_for(lambda: not postgres.role_exists(user), timeout=10)


def test_disabling_the_mount_revokes_its_credentials(srv, postgres):
    root = client(srv)
    setup_mount(root, postgres, mount="db2")
    root.secrets.database.create_role("ro", db_name="pg", creation_statements=CREATE, mount_point="db2")
    users = [root.secrets.database.generate_credentials("ro", mount_point="db2")["data"]["username"] for _ in range(3)]
    assert all(postgres.role_exists(u) for u in users)
    root.sys.disable_secrets_engine("db2")
    assert not any(postgres.role_exists(u) for u in users)


def test_revocation_retries_while_postgres_is_down(srv, postgres):
    root = client(srv)
    setup_mount(root, postgres)
    root.secrets.database.create_role("short", db_name="pg", creation_statements=CREATE, default_ttl="2s")
    creds = root.secrets.database.generate_credentials("short")
    user = creds["data"]["username"]
    postgres.stop()
    try:
        time.sleep(5)  # expired, and at least two attempts failed
        lease = root.sys.read_lease(creds["lease_id"])["data"]  # still there: never dropped
        assert lease["id"] == creds["lease_id"]
    finally:
        postgres.start()
    assert postgres.role_exists(user)
    assert wait_for(lambda: not postgres.role_exists(user), timeout=30)
    assert wait_for(lambda: leases_of(root, "database/creds/short/") == [], timeout=10)
    log = srv.logs()
    assert "revocation failed" in log and creds["data"]["password"] not in log and postgres.password not in log


def leases_of(root, prefix):
    try:
        listed = root.sys.list_leases(prefix)
    except hvac.exceptions.InvalidPath:
        return []
    return listed["data"]["keys"] if listed else []


def test_a_restart_mid_lease_loses_no_revocation(start_server, workdir, key_file, postgres):
    args = ["--data-dir", workdir + "/data", "--seal-key-file", key_file, "--listen", "127.0.0.1:0"]
    s = start_server(args)
    root = client(s)
    setup_mount(root, postgres)
    root.secrets.database.create_role("short", db_name="pg", creation_statements=CREATE, default_ttl="5s")
    issued = time.time()
    user = root.secrets.database.generate_credentials("short")["data"]["username"]
    # Killed, not stopped: the lease must be durable the moment its credentials were handed out, and a
    # graceful stop on a loaded machine could take long enough for the lease to expire (and be revoked)
    # before the server is down, which would prove nothing.
    s.stop(signal.SIGKILL)
    assert postgres.role_exists(user), (time.time() - issued, s.logs())
    time.sleep(max(0.0, issued + 6 - time.time()))  # it expires while sigil is down
    assert postgres.role_exists(user), s.logs()
    start_server(args)
    assert wait_for(lambda: not postgres.role_exists(user), timeout=15)


def test_static_roles_rotate_and_the_old_password_stops_working(srv, postgres):
    root = client(srv)
    setup_mount(root, postgres)
    postgres.psql("DROP ROLE IF EXISTS app; CREATE ROLE app WITH LOGIN PASSWORD 'initial-pw'")
    assert postgres.can_login("app", "initial-pw")
    root.secrets.database.create_static_role("app", db_name="pg", username="app", rotation_statements=None,
                                             rotation_period=3600)
    # Rotated at creation: sigil holds the password, the imported one is dead.
    first = root.secrets.database.get_static_credentials("app")["data"]
    assert first["username"] == "app" and first["rotation_period"] == 3600 and 3500 < first["ttl"] <= 3600
    assert first["last_vault_rotation"].endswith("Z")
    assert not postgres.can_login("app", "initial-pw")
    assert postgres.can_login("app", first["password"])
    role = root.read("database/static-roles/app")["data"]
    assert role["username"] == "app" and role["db_name"] == "pg" and "password" not in role
    assert root.secrets.database.list_static_roles()["data"]["keys"] == ["app"]
    # On demand.
    root.write("database/rotate-role/app")
    second = root.secrets.database.get_static_credentials("app")["data"]
    assert second["password"] != first["password"]
    assert postgres.can_login("app", second["password"]) and not postgres.can_login("app", first["password"])
    # The username cannot change; a dynamic role may not share the name.
    with pytest.raises(hvac.exceptions.InvalidRequest, match="cannot update static account username"):
        root.write("database/static-roles/app", username="other", db_name="pg", rotation_period=3600)
    with pytest.raises(hvac.exceptions.InvalidRequest, match="must be unique"):
        root.secrets.database.create_role("app", db_name="pg", creation_statements=CREATE)
    # On schedule: a 5 s period rotates by itself.
    root.write("database/static-roles/app", rotation_period=5)
    assert wait_for(lambda: root.secrets.database.get_static_credentials("app")["data"]["password"] != second["password"],
                    timeout=15)
    third = root.secrets.database.get_static_credentials("app")["data"]
    assert postgres.can_login("app", third["password"]) and not postgres.can_login("app", second["password"])
    root.secrets.database.delete_static_role("app")
    with pytest.raises(hvac.exceptions.InvalidRequest):
        root.secrets.database.get_static_credentials("app")


def test_rotate_root_changes_the_connection_password(srv, postgres):
    root = client(srv)
    root.sys.enable_secrets_engine("database")
    postgres.psql("DROP ROLE IF EXISTS sigilroot; CREATE ROLE sigilroot WITH LOGIN CREATEROLE PASSWORD 'root-initial'")
    postgres.psql("GRANT SELECT ON widgets TO sigilroot WITH GRANT OPTION")
    root.secrets.database.configure(name="pg", plugin_name="postgresql-database-plugin", allowed_roles="ro",
                                    connection_url=postgres.url(), username="sigilroot", password="root-initial")
    root.secrets.database.create_role("ro", db_name="pg", creation_statements=[
        "CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}'",
        "GRANT SELECT ON widgets TO \"{{name}}\""])
    root.secrets.database.rotate_root_credentials("pg")
    assert not postgres.can_login("sigilroot", "root-initial")
    creds = root.secrets.database.generate_credentials("ro")["data"]
    assert postgres.psql("SELECT count(*) FROM widgets", user=creds["username"], password=creds["password"])[1] == "2"
    assert "root-initial" not in srv.logs()


def test_scram_keeps_the_password_from_the_server(srv, postgres):
    root = client(srv)
    setup_mount(root, postgres, password_authentication="scram-sha-256")
    root.secrets.database.create_role("ro", db_name="pg", creation_statements=CREATE)
    creds = root.secrets.database.generate_credentials("ro")["data"]
    assert postgres.can_login(creds["username"], creds["password"])
    stored = postgres.psql(f"SELECT rolpassword FROM pg_authid WHERE rolname = '{creds['username']}'")[1]
    assert stored.startswith("SCRAM-SHA-256$")


def test_refusals(srv, postgres):
    root = client(srv)
    root.sys.enable_secrets_engine("database")
    with pytest.raises(hvac.exceptions.InvalidRequest, match="error verifying connection") as bad:
        root.secrets.database.configure(name="pg", plugin_name="postgresql-database-plugin", connection_url=postgres.url(),
                                        username=postgres.ADMIN, password="wrong-password-123")
    assert "wrong-password-123" not in str(bad.value)
    with pytest.raises(hvac.exceptions.InvalidRequest, match="mysql-database-plugin"):
        root.secrets.database.configure(name="pg", plugin_name="mysql-database-plugin", connection_url=postgres.url())
    with pytest.raises(hvac.exceptions.InvalidRequest, match="empty plugin name"):
        root.write("database/config/pg", connection_url=postgres.url())
    with pytest.raises(hvac.exceptions.InvalidPath):
        root.secrets.database.read_connection("pg")
    setup_mount_existing = root.secrets.database.configure
    setup_mount_existing(name="pg", plugin_name="postgresql-database-plugin", allowed_roles="allowed",
                         connection_url=postgres.url(), username=postgres.ADMIN, password=postgres.password)
    root.secrets.database.create_role("other", db_name="pg", creation_statements=CREATE)
    with pytest.raises(hvac.exceptions.InternalServerError, match="is not an allowed role"):
        root.secrets.database.generate_credentials("other")
    with pytest.raises(hvac.exceptions.InvalidRequest, match="unknown role"):
        root.secrets.database.generate_credentials("nope")
    with pytest.raises(hvac.exceptions.InvalidRequest, match="database name is required"):
        root.write("database/roles/x", creation_statements=CREATE)
    # A creation statement PostgreSQL refuses, quoting the password: no user, no lease, and no
    # password in the error.
    root.secrets.database.create_role("allowed", db_name="pg", creation_statements=[
        "CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}'", "SELECT '{{password}}'::int"])
    with pytest.raises(hvac.exceptions.InternalServerError, match="invalid input syntax") as failed:
        root.secrets.database.generate_credentials("allowed")
    assert '"[redacted]"' in str(failed.value), str(failed.value)
    assert leases_of(root, "database/creds/allowed/") == []
    assert postgres.psql("SELECT count(*) FROM pg_roles WHERE rolname LIKE 'v-root-allowed-%'")[1] == "0"
    with pytest.raises(hvac.exceptions.InvalidRequest, match="rotation_period must be 5 seconds or more"):
        root.write("database/static-roles/allowed2", username="x", db_name="pg", rotation_period=1)


POLICY = """
length = 30
rule "charset" {
  charset = "abcdefghijklmnopqrstuvwxyz"
  min-chars = 1
}
rule "charset" {
  charset = "0123456789"
  min-chars = 4
}
"""


def test_password_policies_shape_generated_passwords(srv, postgres):
    root = client(srv)
    # sys/policies/password: write, read, list, generate, and the refusals.
    root.write("sys/policies/password/db", policy=POLICY)
    assert root.read("sys/policies/password/db")["data"]["policy"] == POLICY
    assert root.list("sys/policies/password")["data"]["keys"] == ["db"]
    pw = root.read("sys/policies/password/db/generate")["data"]["password"]
    assert len(pw) == 30 and set(pw) <= set("abcdefghijklmnopqrstuvwxyz0123456789")
    assert sum(c.isdigit() for c in pw) >= 4
    with pytest.raises(hvac.exceptions.InvalidRequest, match="min-chars add up"):
        root.write("sys/policies/password/bad", policy='length = 4\nrule "charset" { charset = "ab" min-chars = 9 }')
    with pytest.raises(hvac.exceptions.InvalidRequest, match="line 1"):
        root.write("sys/policies/password/bad", policy="length = = 4")
    # A connection's password_policy shapes its users' passwords; an unknown one is refused.
    with pytest.raises(hvac.exceptions.InvalidRequest, match="password_policy"):
        setup_mount(root, postgres, password_policy="nope")
    root.secrets.database.configure(name="pg", plugin_name="postgresql-database-plugin", allowed_roles="*",
                                    connection_url=postgres.url(), username=postgres.ADMIN, password=postgres.password,
                                    password_policy="db")
    assert root.secrets.database.read_connection("pg")["data"]["password_policy"] == "db"
    root.secrets.database.create_role("ro", db_name="pg", creation_statements=CREATE)
    creds = root.secrets.database.generate_credentials("ro")["data"]
    assert len(creds["password"]) == 30 and sum(c.isdigit() for c in creds["password"]) >= 4
    assert postgres.can_login(creds["username"], creds["password"])
    # A policy whose passwords SQL literals cannot hold is refused when it would be used.
    root.write("sys/policies/password/quotes", policy='length = 8\nrule "charset" { charset = "\'" min-chars = 1 }')
    with pytest.raises(hvac.exceptions.InvalidRequest, match="cannot hold"):
        root.write("database/config/pg", plugin_name="postgresql-database-plugin", password_policy="quotes")
    root.delete("sys/policies/password/quotes")
    with pytest.raises(hvac.exceptions.InvalidRequest, match="policy does not exist"):
        root.read("sys/policies/password/quotes/generate")


def test_static_roles_on_a_cron_schedule(srv, postgres):
    root = client(srv)
    setup_mount(root, postgres)
    postgres.psql("DROP ROLE IF EXISTS cronapp; CREATE ROLE cronapp WITH LOGIN PASSWORD 'initial-pw'")
    root.write("database/static-roles/cronapp", db_name="pg", username="cronapp", rotation_schedule="*/5 * * * *",
               rotation_window="1h")
    role = root.read("database/static-roles/cronapp")["data"]
    assert role["rotation_schedule"] == "*/5 * * * *" and role["rotation_window"] == 3600 and "rotation_period" not in role
    creds = root.secrets.database.get_static_credentials("cronapp")["data"]
    assert postgres.can_login("cronapp", creds["password"]) and not postgres.can_login("cronapp", "initial-pw")
    # Due at the next multiple of five minutes.
    assert 0 < creds["ttl"] <= 300 and creds["rotation_schedule"] == "*/5 * * * *"
    # Switching to a period drops the schedule; both at once, a bad schedule, a window without a
    # schedule are refused as Vault refuses them.
    root.write("database/static-roles/cronapp", rotation_period=600)
    role = root.read("database/static-roles/cronapp")["data"]
    assert role["rotation_period"] == 600 and "rotation_schedule" not in role
    with pytest.raises(hvac.exceptions.InvalidRequest, match="mutually exclusive"):
        root.write("database/static-roles/cronapp", rotation_period=600, rotation_schedule="0 * * * *")
    with pytest.raises(hvac.exceptions.InvalidRequest, match="minute \"61\": out of range"):
        root.write("database/static-roles/cronapp", rotation_schedule="61 * * * *")
    with pytest.raises(hvac.exceptions.InvalidRequest, match="rotation_window is invalid with use of rotation_period"):
        root.write("database/static-roles/cronapp", rotation_window="2h")
    with pytest.raises(hvac.exceptions.InvalidRequest, match="one of rotation_schedule or rotation_period"):
        root.write("database/static-roles/other", db_name="pg", username="cronapp")


def test_tidy_drops_users_of_sigils_naming_that_no_lease_holds(srv, postgres):
    root = client(srv)
    setup_mount(root, postgres)
    root.secrets.database.create_role("ro", db_name="pg", creation_statements=CREATE)
    kept = root.secrets.database.generate_credentials("ro")["data"]["username"]
    # An orphan: a user of this mount's naming for role "ro", made long ago, with no lease (as a
    # revoke-force or a crash of another manager would leave); and users tidy must not touch.
    orphan = "v-root-ro-AbCdEfGhIjKlMnOpQrSt-1600000000"
    other_role = "v-root-nope-AbCdEfGhIjKlMnOpQrSt-1600000000"
    recent = f"v-root-ro-AbCdEfGhIjKlMnOpQrSu-{int(time.time())}"
    for u in (orphan, other_role, recent, "v-not-sigils"):
        postgres.psql(f'DROP ROLE IF EXISTS "{u}"; CREATE ROLE "{u}"')
    r = root.write("sys/leases/tidy")
    assert "tidy dropped 1 database users that no lease held" in r["warnings"], r
    assert not postgres.role_exists(orphan)
    assert all(postgres.role_exists(u) for u in (kept, other_role, recent, "v-not-sigils"))
    for u in (other_role, recent, "v-not-sigils"):
        postgres.psql(f'DROP ROLE "{u}"')
