#!/usr/bin/python3
"""Dynamic PostgreSQL credentials: issuance per second beside raw CREATE ROLE + DROP ROLE pairs
per second on the same PostgreSQL in the same run, then a storm: N credentials expiring within
the same minute, the time until PostgreSQL has none of them left, and a Kubernetes-face read
benchmark's p99 during the storm beside its baseline.

    /usr/bin/python3 bench/database/run.py [N, default 2000] [seconds per rate run, default 10]

Needs wrk and pgbench (Debian's postgresql). Starts a throwaway PostgreSQL 15 (the integration
tests' fixture) and a sigil server with LMDB storage. Prints Markdown for docs/benchmarks.md."""
import base64
import os
import re
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
import conftest  # noqa: E402
import hvac  # noqa: E402
import requests  # noqa: E402

N = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
SECONDS = int(sys.argv[2]) if len(sys.argv) > 2 else 10
CONNS = 8


def wrk(url, script, seconds, conns, env):
    out = subprocess.run(["wrk", "-t2", f"-c{conns}", f"-d{seconds}s", "--latency", "-s", script, url],
                         capture_output=True, text=True, env=env).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p99 = re.search(r"\n\s+99%\s+(\S+)", out).group(1)
    p50 = re.search(r"\n\s+50%\s+(\S+)", out).group(1)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return rps, p50, p99, int(non2xx.group(1)) if non2xx else 0


def main():
    pg = conftest.Postgres()
    work = tempfile.mkdtemp(prefix="sigil-dbbench-")
    key = os.path.join(work, "seal.key")
    with open(key, "wb") as f:
        f.write(os.urandom(32))
    os.chmod(key, 0o600)
    srv = conftest.Server(["--data-dir", work + "/data", "--seal-key-file", key, "--listen", "127.0.0.1:0", "--log-level", "warn"])
    try:
        run(pg, srv)
    finally:
        srv.stop()
        pg.destroy()
        subprocess.run(["rm", "-rf", work])


def run(pg, srv):
    root = hvac.Client(url=srv.url, token=srv.token, verify=srv.ca)
    root.sys.enable_secrets_engine("database")
    root.secrets.database.configure(name="pg", plugin_name="postgresql-database-plugin", allowed_roles="*",
                                    connection_url=pg.url(), username=pg.ADMIN, password=pg.password,
                                    max_open_connections=16)
    create = ["CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}'"]
    root.secrets.database.create_role("bench", db_name="pg", creation_statements=create, default_ttl="1h")
    env = dict(os.environ, SIGIL_TOKEN=srv.token, PGPASSWORD=pg.password)

    # Raw PostgreSQL: CREATE ROLE + DROP ROLE pairs, same concurrency, same statement.
    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as f:
        f.write("\\set r random(1, 2000000000)\n"
                "CREATE ROLE \"raw-:r\" WITH LOGIN PASSWORD 'Abcdefghij-123456789' VALID UNTIL '2099-01-01';\n"
                "DROP ROLE \"raw-:r\";\n")
        script = f.name
    out = subprocess.run([os.path.join(conftest.PG_BIN, "pgbench"), "-n", "-c", str(CONNS), "-j", "2", "-T", str(SECONDS),
                          "-f", script, "-h", "127.0.0.1", "-p", str(pg.port), "-U", pg.ADMIN, "postgres"],
                         capture_output=True, text=True, env=env)
    os.unlink(script)
    m = re.search(r"tps = ([\d.]+)", out.stdout)
    if not m:
        raise SystemExit("pgbench failed: " + out.stdout + out.stderr)
    raw = float(m.group(1))

    creds_url = srv.url + "/v1/database/creds/bench"
    script = os.path.join(ROOT, "bench", "database", "creds.lua")
    rps, p50, p99, errors = wrk(creds_url, script, SECONDS, CONNS, env)
    made = int(pg.psql("SELECT count(*) FROM pg_roles WHERE rolname LIKE 'v-root-bench-%'")[1])
    print(f"| raw PostgreSQL CREATE ROLE + DROP ROLE pairs ({CONNS} connections, pgbench) | {raw:.0f}/s |")
    print(f"| sigil `GET database/creds/bench` ({CONNS} connections, wrk) | {rps:.0f}/s, p50 {p50}, p99 {p99}, "
          f"{errors} errors; {made} users in PostgreSQL | {rps / raw:.2f} of raw |")
    t = time.time()
    root.sys.revoke_prefix("database/creds/bench")
    while int(pg.psql("SELECT count(*) FROM pg_roles WHERE rolname LIKE 'v-root-bench-%'")[1]) > 0:
        time.sleep(0.5)
    print(f"| revoke-prefix of those {made} leases, until PostgreSQL has none | {time.time() - t:.1f} s |")

    # The storm: N credentials with a 60 s TTL, made as fast as they can be, so they expire
    # within the same minute; a Kubernetes-face read benchmark runs meanwhile.
    root.secrets.database.create_role("storm", db_name="pg", creation_statements=create, default_ttl="60s")
    auth = {"Authorization": "Bearer " + srv.token}
    ns = srv.url + "/api/v1/namespaces/default/secrets"
    requests.post(ns, json={"metadata": {"name": "bench-get"}, "data": {"v": base64.b64encode(b"x" * 1024).decode()}},
                  headers=auth, verify=srv.ca).raise_for_status()
    get_script = os.path.join(ROOT, "bench", "http", "get.lua")
    base = wrk(ns + "/bench-get", get_script, 10, 16, env)
    t0 = time.time()
    made = 0
    while made < N:
        wrk(srv.url + "/v1/database/creds/storm", script, 2, CONNS, env)
        made = int(pg.psql("SELECT count(*) FROM pg_roles WHERE rolname LIKE 'v-root-storm-%'")[1])
    t_made = time.time()
    results = {}

    def reads():
        time.sleep(max(0, t0 + 60 - time.time()))  # from the first expiry
        results["storm"] = wrk(ns + "/bench-get", get_script, 20, 16, env)

    th = threading.Thread(target=reads)
    th.start()
    # Polled every 2 s, as the token storm polls: each poll is a psql process and a SCRAM login,
    # load on the two cores the read benchmark measures.
    while int(pg.psql("SELECT count(*) FROM pg_roles WHERE rolname LIKE 'v-root-storm-%'")[1]) > 0:
        time.sleep(2)
    t_done = time.time()
    th.join()
    print(f"| storm: {made} credentials made in {t_made - t0:.1f} s (TTL 60 s) | all dropped in PostgreSQL "
          f"{t_done - (t_made + 60):.1f} s after the last expiry |")
    print(f"| Kubernetes-face GET, 16 connections: baseline | {base[0]:.0f}/s, p50 {base[1]}, p99 {base[2]} |")
    s = results["storm"]
    print(f"| the same GET during the storm's revocations | {s[0]:.0f}/s, p50 {s[1]}, p99 {s[2]} |")


if __name__ == "__main__":
    main()
