"""sigil-agent and dynamic credentials (issue 18): the agent logs in through the Vault face's
Kubernetes auth method with its service-account token, reads PostgreSQL credentials from the
database engine (a real PostgreSQL 15), renders them as files and as a program's environment,
renews their lease and its own token before they expire, and, when the lease reaches its max
TTL, reads new credentials while the old ones still work."""
import base64
import os
import re
import time

import hvac
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from conftest import wait_for
from test_agent import agents, lines, read, reader_token, run_agent, write_config  # noqa: F401 (fixture)

CREATE = ["CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';"]


@pytest.fixture
def srv(start_server, postgres):
    s = start_server(["--dev", "--listen", "127.0.0.1:0"])
    yield s
    # The dev server's leases die with it: drop the users it made in the shared PostgreSQL, so
    # no other test finds them (sys/leases/tidy would count them as orphans).
    s.stop()
    _, out, _ = postgres.psql("SELECT rolname FROM pg_roles WHERE rolname LIKE 'v-%agentdb%'")
    for user in out.split():
        if user.startswith("v-"):
            postgres.psql(f'DROP ROLE IF EXISTS "{user}"', check=False)


def setup_vault(s, postgres, default_ttl="6s", max_ttl="15s", token_ttl="6s", token_max_ttl="1h"):
    root = hvac.Client(url=s.url, token=s.token, verify=s.ca)
    root.sys.enable_secrets_engine("database")
    root.secrets.database.configure(name="pg", plugin_name="postgresql-database-plugin", allowed_roles=["*"],
                                    connection_url=postgres.url(), username=postgres.ADMIN, password=postgres.password)
    root.secrets.database.create_role("agentdb", db_name="pg", creation_statements=CREATE, default_ttl=default_ttl, max_ttl=max_ttl)
    root.sys.create_or_update_policy("agent-db", 'path "database/creds/agentdb" { capabilities = ["read"] }\n')
    root.sys.enable_auth_method("kubernetes")
    k = requests.get(s.url + "/openid/v1/jwks", headers=s.auth, verify=s.ca, timeout=10).json()["keys"][0]
    b = lambda v: int.from_bytes(base64.urlsafe_b64decode(v + "=" * (-len(v) % 4)), "big")  # noqa: E731
    pem = ec.EllipticCurvePublicNumbers(b(k["x"]), b(k["y"]), ec.SECP256R1()).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    r = requests.post(s.url + "/v1/auth/kubernetes/config", headers={"X-Vault-Token": s.token}, verify=s.ca, timeout=10,
                      json={"kubernetes_host": s.url, "pem_keys": [pem]})
    assert r.status_code == 204, r.text
    root.auth.kubernetes.create_role("agent", bound_service_account_names=["agent"], bound_service_account_namespaces=["default"],
                                     policies=["default", "agent-db"], ttl=token_ttl, max_ttl=token_max_ttl)
    return root


def lease_count(root):
    try:
        return len(root.list("sys/leases/lookup/database/creds/agentdb/")["data"]["keys"])
    except (hvac.exceptions.InvalidPath, TypeError):
        return 0


def test_credentials_as_files_renewed_then_replaced_before_they_expire(srv, postgres, workdir, agents):  # noqa: F811
    root = setup_vault(srv, postgres)
    token = reader_token(srv, workdir)  # the service account "agent"
    out = os.path.join(workdir, "db")
    cfg = write_config(workdir, srv, token, "", extra="vault: {login: {role: agent}}\n"
                       f"credentials:\n- {{path: database/creds/agentdb, directory: {out}, mode: 0400}}\n")
    agent = agents(cfg, "--log-level", "debug")
    assert wait_for(lambda: os.path.exists(os.path.join(out, "password")), 20), agent.logs()
    started = time.time()
    user, password = read(os.path.join(out, "username")), read(os.path.join(out, "password"))
    assert os.stat(os.path.join(out, "password")).st_mode & 0o777 == 0o400
    assert postgres.can_login(user, password)
    assert "logged in" in agent.logs()
    # Renewed before the 6 s lease ends, more than once, and the user keeps working.
    assert wait_for(lambda: agent.logs().count("renewed the lease") >= 2, 15), agent.logs()
    assert time.time() - started > 6 and postgres.can_login(user, password)
    # The agent's own 6 s token is renewed too (or the renewals above would be refused).
    assert "renewed the Vault token" in agent.logs()
    # At the max TTL (15 s): new credentials, in place while the old ones still log in.
    assert wait_for(lambda: read(os.path.join(out, "username")) != user, 20), agent.logs()
    replaced_at = time.time()
    assert "reaches its max TTL" in agent.logs()
    new_user, new_password = read(os.path.join(out, "username")), read(os.path.join(out, "password"))
    assert postgres.can_login(new_user, new_password)
    assert postgres.can_login(user, password), "the old credentials ended before the new ones were in place"
    # The old lease then expires and the server drops its user.
    assert wait_for(lambda: not postgres.role_exists(user), 20)
    assert replaced_at - started < 15
    assert password not in agent.logs() and new_password not in agent.logs()
    assert agent.stop() == 0


def test_run_restarts_the_program_with_new_credentials(srv, postgres, workdir, agents):  # noqa: F811
    setup_vault(srv, postgres, default_ttl="4s", max_ttl="6s", token_ttl="1h")
    token = reader_token(srv, workdir)
    agent, out = run_agent(agents, workdir, srv, token,
                           "vault: {login: {role: agent}}\nenv:\n- {name: DB_USER, credential: database/creds/agentdb, key: username}\n"
                           "- {name: DB_PASSWORD, credential: database/creds/agentdb, key: password}\n",
                           program='echo "start $DB_USER" >> "$OUT"; trap "exit 0" TERM; while true; do sleep 0.05; done')
    assert wait_for(lambda: len(lines(out)) >= 1, 20), agent.logs()
    first = lines(out)[0].split()[1]
    assert postgres.role_exists(first)
    # 6 s max TTL: new credentials and a restart with them before the old ones end.
    assert wait_for(lambda: len(lines(out)) >= 2, 20), (lines(out), agent.logs())
    second = lines(out)[1].split()[1]
    assert second != first and postgres.role_exists(second)
    assert agent.stop() == 0


def test_once_reads_credentials_and_exits(srv, postgres, workdir):
    setup_vault(srv, postgres, default_ttl="1h", max_ttl="2h")
    token = reader_token(srv, workdir)
    out = os.path.join(workdir, "db")
    cfg = write_config(workdir, srv, token, "", extra="vault: {login: {role: agent}}\n"
                       f"credentials:\n- {{path: database/creds/agentdb, directory: {out}, items: [{{key: password}}]}}\n")
    import subprocess
    from test_agent import AGENT
    r = subprocess.run([AGENT, "--config", cfg, "--once"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert sorted(e for e in os.listdir(out) if not e.startswith("..")) == ["password"]
    # A role the service account is not bound to: the login is refused, retried, given up.
    cfg2 = cfg.replace(".yaml", "-2.yaml")
    with open(cfg) as f, open(cfg2, "w") as g:
        g.write(f.read().replace("role: agent", "role: nobody"))
    r = subprocess.run([AGENT, "--config", cfg2, "--once", "--once-timeout", "3"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and "no Vault token" in r.stderr and "giving up" in r.stderr, r.stderr
    assert re.search(r"login: HTTP [45]\d\d", r.stderr), r.stderr


def test_a_new_token_means_credentials_read_again(srv, postgres, workdir, agents):  # noqa: F811
    """The server revokes a token's leases when the token ends. The agent's token here reaches
    its max TTL (4 s) long before the credentials' (1 h): at each new login the agent reads new
    credentials under the new token, before the old token (and its leases) end."""
    setup_vault(srv, postgres, default_ttl="1h", max_ttl="2h", token_ttl="3s", token_max_ttl="4s")
    token = reader_token(srv, workdir)
    out = os.path.join(workdir, "db")
    cfg = write_config(workdir, srv, token, "", extra="vault: {login: {role: agent}}\n"
                       f"credentials:\n- {{path: database/creds/agentdb, directory: {out}}}\n")
    agent = agents(cfg)
    assert wait_for(lambda: os.path.exists(os.path.join(out, "username")), 20), agent.logs()
    first = read(os.path.join(out, "username"))
    assert wait_for(lambda: read(os.path.join(out, "username")) != first, 20), agent.logs()
    assert "reading new credentials under it" in agent.logs()
    second, password = read(os.path.join(out, "username")), read(os.path.join(out, "password"))
    assert postgres.can_login(second, password)
    # The first token ended and the server revoked its lease: its user goes; the second stays.
    assert wait_for(lambda: not postgres.role_exists(first), 20)
    assert postgres.role_exists(read(os.path.join(out, "username")))


def test_env_credentials_need_restart(srv, workdir):
    token = reader_token(srv, workdir)
    cfg = write_config(workdir, srv, token, "", extra="exec: {on_change: signal}\n"
                       "env:\n- {name: U, credential: database/creds/agentdb, key: username}\n")
    import subprocess
    from test_agent import AGENT
    r = subprocess.run([AGENT, "--config", cfg, "run", "--", "true"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and "only exec.on_change: restart" in r.stderr, r.stderr
