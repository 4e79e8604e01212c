"""sigil-agent (issue 18): Secrets rendered into directories as the kubelet lays out a secret
volume, kept current by watch, through a service account's token that may only read them.
An application-like reader checks that no read is ever torn or finds a file missing while the
Secret is updated, rotated on demand, deleted and re-created, and across restarts of the
agent and of the server."""
import base64
import os
import re
import signal
import subprocess
import threading
import time

import pytest
import requests

from conftest import BIN, free_port, wait_for

AGENT = os.path.join(BIN, "sigil-agent")
NS = "default"


def b64(s):
    return base64.b64encode(s.encode()).decode()


def put_secret(s, name, data, ns=NS, annotations=None):
    body = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": ns},
            "data": {k: b64(v) for k, v in data.items()}}
    if annotations:
        body["metadata"]["annotations"] = annotations
    url = f"{s.url}/api/v1/namespaces/{ns}/secrets"
    r = requests.put(f"{url}/{name}", json=body, headers=s.auth, verify=s.ca, timeout=10)
    if r.status_code == 404:
        r = requests.post(url, json=body, headers=s.auth, verify=s.ca, timeout=10)
    assert r.status_code in (200, 201), r.text
    return r.json()["metadata"]["resourceVersion"]


def delete_secret(s, name, ns=NS):
    r = requests.delete(f"{s.url}/api/v1/namespaces/{ns}/secrets/{name}", headers=s.auth, verify=s.ca, timeout=10)
    assert r.status_code == 200, r.text


def reader_token(s, workdir, ns=NS):
    """A service account that may get, list and watch Secrets in `ns` and nothing else, and a
    token for it in a file, as a projected token would be mounted."""
    def post(path, body):
        r = requests.post(s.url + path, json=body, headers=s.auth, verify=s.ca, timeout=10)
        assert r.status_code in (200, 201, 409), r.text
        return r.json()
    post(f"/api/v1/namespaces/{ns}/serviceaccounts", {"metadata": {"name": "agent"}})
    post(f"/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/roles",
         {"metadata": {"name": "secret-reader"},
          "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list", "watch"]}]})
    post(f"/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/rolebindings",
         {"metadata": {"name": "agent-reads"},
          "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "secret-reader"},
          "subjects": [{"kind": "ServiceAccount", "name": "agent", "namespace": ns}]})
    tr = post(f"/api/v1/namespaces/{ns}/serviceaccounts/agent/token",
              {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {"expirationSeconds": 3600}})
    path = os.path.join(workdir, "sa-token")
    with open(path, "w") as f:
        f.write(tr["status"]["token"] + "\n")
    os.chmod(path, 0o600)
    return path


def write_config(workdir, s, token_file, secrets, name="agent.yaml", extra=""):
    path = os.path.join(workdir, name)
    with open(path, "w") as f:
        f.write(f"server: {s.url}\nca_file: {s.ca}\nauth: {{token_file: {token_file}}}\n"
                f"backoff: {{min_milliseconds: 100, max_milliseconds: 1000}}\n{extra}" + (f"secrets:\n{secrets}" if secrets else ""))
    return path


class Agent:
    def __init__(self, config, *args):
        self.log_path = config + ".log"
        self.log = open(self.log_path, "a")
        self.proc = subprocess.Popen([AGENT, "--config", config, *args], stdout=self.log, stderr=self.log)

    def logs(self):
        self.log.flush()
        with open(self.log_path) as f:
            return f.read()

    def stop(self, sig=signal.SIGTERM):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


@pytest.fixture
def agents():
    started = []

    def start(config, *args):
        a = Agent(config, *args)
        started.append(a)
        return a

    yield start
    for a in started:
        a.stop(signal.SIGKILL)


def run_once(config, *args, timeout=60):
    return subprocess.run([AGENT, "--config", config, "--once", *args], capture_output=True, text=True, timeout=timeout)


def read(path):
    with open(path) as f:
        return f.read()


@pytest.fixture
def srv(start_server, workdir):
    return start_server(["--dev", "--listen", "127.0.0.1:0"])


def test_once_renders_the_kubelet_layout_and_exits(srv, workdir):
    put_secret(srv, "db", {"password": "s3cret-value-1", "user": "app", "ca.crt": "-----PEM-----"})
    token = reader_token(srv, workdir)
    whole, chosen = os.path.join(workdir, "whole"), os.path.join(workdir, "chosen")
    cfg = write_config(workdir, srv, token, f"""
- {{name: db, directory: {whole}}}
- name: db
  directory: {chosen}
  mode: 0440
  items: [{{key: password, path: conf/pw, mode: 0400}}, {{key: user}}]
""")
    r = run_once(cfg)
    assert r.returncode == 0, r.stderr
    assert "s3cret-value-1" not in r.stderr + r.stdout

    # The kubelet's layout: ..data -> ..<timestamp>, one symlink per top-level name.
    entries = sorted(os.listdir(whole))
    versions = [e for e in entries if re.fullmatch(r"\.\.\d{4}_\d\d_\d\d_\d\d_\d\d_\d\d\.\w{6}", e)]
    assert len(versions) == 1, entries
    assert sorted(set(entries) - set(versions)) == ["..data", "ca.crt", "password", "user"], entries
    assert os.readlink(os.path.join(whole, "..data")) == versions[0]
    for key in ("password", "user", "ca.crt"):
        assert os.readlink(os.path.join(whole, key)) == "..data/" + key
        assert oct(os.stat(os.path.join(whole, key)).st_mode & 0o777) == oct(0o644)  # kubelet's defaultMode
    assert read(os.path.join(whole, "password")) == "s3cret-value-1"
    assert read(os.path.join(whole, "ca.crt")) == "-----PEM-----"
    assert oct(os.stat(os.path.join(whole, versions[0])).st_mode & 0o777) == oct(0o755)

    assert sorted(e for e in os.listdir(chosen) if not e.startswith("..")) == ["conf", "user"]
    assert read(os.path.join(chosen, "conf", "pw")) == "s3cret-value-1"
    assert os.stat(os.path.join(chosen, "conf", "pw")).st_mode & 0o777 == 0o400
    assert os.stat(os.path.join(chosen, "user")).st_mode & 0o777 == 0o440

    # Run again with nothing changed: the same version stays.
    assert run_once(cfg).returncode == 0
    assert os.readlink(os.path.join(whole, "..data")) == versions[0]


def test_once_failures_are_clear_and_exit_nonzero(srv, workdir):
    token = reader_token(srv, workdir)
    out = os.path.join(workdir, "out")
    # A missing Secret: an error, unless optional.
    r = run_once(write_config(workdir, srv, token, f"- {{name: nope, directory: {out}}}\n", "a.yaml"))
    assert r.returncode == 1 and "the Secret does not exist" in r.stderr, r.stderr
    r = run_once(write_config(workdir, srv, token, f"- {{name: nope, directory: {out}, optional: true}}\n", "b.yaml"))
    assert r.returncode == 0, r.stderr
    # A Secret the service account may not read (another namespace): the server's refusal.
    requests.post(srv.url + "/api/v1/namespaces", json={"metadata": {"name": "other"}}, headers=srv.auth, verify=srv.ca, timeout=10)
    put_secret(srv, "x", {"k": "v"}, ns="other")
    r = run_once(write_config(workdir, srv, token, f"- {{namespace: other, name: x, directory: {out}}}\n", "c.yaml"))
    assert r.returncode == 1 and "HTTP 403" in r.stderr and "forbidden" in r.stderr, r.stderr
    # A key that is not in the Secret: refused as the kubelet refuses the volume.
    put_secret(srv, "db", {"password": "p"})
    r = run_once(write_config(workdir, srv, token, f"- {{name: db, directory: {out}, items: [{{key: nokey}}]}}\n", "d.yaml"))
    assert r.returncode == 1 and 'has no key' in r.stderr and 'nokey' in r.stderr, r.stderr
    assert not os.path.exists(os.path.join(out, "..data"))
    # A configuration mistake: exit 2 and the field's path.
    r = run_once(write_config(workdir, srv, token, f"- {{name: db, directory: {out}, mod: 0400}}\n", "e.yaml"))
    assert r.returncode == 2 and 'secrets[0]: unknown field "mod"' in r.stderr, r.stderr
    # No server: retried until the timeout, then exit 1.
    dead = type("S", (), {"url": f"https://127.0.0.1:{free_port()}", "ca": srv.ca})
    started = time.time()
    r = run_once(write_config(workdir, dead, token, f"- {{name: db, directory: {out}}}\n", "f.yaml"), "--once-timeout", "2")
    assert r.returncode == 1 and "giving up" in r.stderr, r.stderr
    assert time.time() - started < 15
    # A bad token: refused by the server, said so.
    bad = os.path.join(workdir, "bad-token")
    with open(bad, "w") as f:
        f.write("not-a-token")
    r = run_once(write_config(workdir, srv, bad, f"- {{name: db, directory: {out}}}\n", "g.yaml"))
    assert r.returncode == 1 and "HTTP 401" in r.stderr, r.stderr
    assert "not-a-token" not in r.stderr


class Reader:
    """An application reading its secret files in a loop, as a program that re-reads them on
    every use would. Every value is `<version>:<padding>:<version>`; a torn read or a missing
    file is recorded."""

    def __init__(self, directory, keys):
        self.paths = [os.path.join(directory, k) for k in keys]
        self.errors = []
        self.reads = 0
        self.seen = set()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.loop, daemon=True)
        self.thread.start()

    def loop(self):
        while not self.stop.is_set():
            for p in self.paths:
                try:
                    v = read(p)
                except OSError as e:
                    self.errors.append(f"{p}: {e}")
                    continue
                m = re.fullmatch(r"(v\d+):x+:(v\d+)", v)
                if not m or m.group(1) != m.group(2):
                    self.errors.append(f"{p}: torn read of {len(v)} bytes")
                else:
                    self.seen.add(m.group(1))
                self.reads += 1

    def finish(self):
        self.stop.set()
        self.thread.join(10)
        return self.errors


def value(n):
    return f"v{n}:" + "x" * 6000 + f":v{n}"


def test_follows_updates_rotation_delete_and_recreate_without_a_torn_read(srv, workdir, agents):
    put_secret(srv, "app", {"a": value(0), "b": value(0)})
    token = reader_token(srv, workdir)
    out = os.path.join(workdir, "app")
    agent = agents(write_config(workdir, srv, token, f"- {{name: app, directory: {out}}}\n"))
    assert wait_for(lambda: os.path.exists(os.path.join(out, "a")), 15), agent.logs()
    reader = Reader(out, ["a", "b"])
    latencies = []
    for n in range(1, 31):
        put_secret(srv, "app", {"a": value(n), "b": value(n)})
        acked = time.time()
        assert wait_for(lambda: read(os.path.join(out, "a")) == value(n) and read(os.path.join(out, "b")) == value(n), 10), agent.logs()
        latencies.append(time.time() - acked)
    # Rotation on demand (sigil's /rotate): a rotated key is a new value, the other stays.
    put_secret(srv, "app", {"a": value(31), "b": value(31), "token": "t0"},
               annotations={"sigil.dev/rotation-period": "720h", "sigil.dev/rotation-keys": "token"})
    assert wait_for(lambda: os.path.exists(os.path.join(out, "token")), 10)
    r = requests.post(f"{srv.url}/sigil/v1/namespaces/{NS}/secrets/app/rotate", headers=srv.auth, verify=srv.ca, timeout=10)
    assert r.status_code in (200, 201), r.text
    assert wait_for(lambda: read(os.path.join(out, "token")) != "t0", 10), agent.logs()
    # Deleted: the last files stay (the default), the agent says so, and a re-created Secret
    # is rendered again.
    delete_secret(srv, "app")
    assert wait_for(lambda: "the Secret was deleted; keeping its last files" in agent.logs(), 10), agent.logs()
    assert read(os.path.join(out, "a")) == value(31)
    put_secret(srv, "app", {"a": value(32), "b": value(32)})
    assert wait_for(lambda: read(os.path.join(out, "b")) == value(32), 10), agent.logs()
    # A key that is gone loses its link (removed just after the swap, as the kubelet does).
    assert wait_for(lambda: not os.path.lexists(os.path.join(out, "token")), 5)
    time.sleep(0.3)
    errors = reader.finish()
    assert errors == [], errors[:5]
    assert reader.reads > 100 and len(reader.seen) > 5, (reader.reads, reader.seen)
    # Old versions are removed a second after they were replaced.
    assert wait_for(lambda: len([e for e in os.listdir(out) if e.startswith("..") and e != "..data"]) == 1, 5), os.listdir(out)
    latencies.sort()
    print(f"update-to-file latency over {len(latencies)} updates: p50 {latencies[len(latencies) // 2] * 1000:.0f} ms, "
          f"max {latencies[-1] * 1000:.0f} ms")
    logs = agent.logs()
    assert "v12:" not in logs and "xxxxxxxx" not in logs
    assert agent.stop() == 0


def test_on_delete_remove_takes_the_files_away(srv, workdir, agents):
    put_secret(srv, "gone", {"k": "v1"})
    token = reader_token(srv, workdir)
    out = os.path.join(workdir, "gone")
    os.makedirs(out)
    with open(os.path.join(out, "mine"), "w") as f:
        f.write("not the agent's")
    agent = agents(write_config(workdir, srv, token, f"- {{name: gone, directory: {out}, on_delete: remove}}\n"))
    assert wait_for(lambda: os.path.exists(os.path.join(out, "k")), 15), agent.logs()
    delete_secret(srv, "gone")
    assert wait_for(lambda: os.listdir(out) == ["mine"], 10), (os.listdir(out), agent.logs())


def test_a_secret_created_after_the_agent_started_is_rendered(srv, workdir, agents):
    token = reader_token(srv, workdir)
    out = os.path.join(workdir, "later")
    agent = agents(write_config(workdir, srv, token, f"- {{name: later, directory: {out}}}\n"))
    assert wait_for(lambda: "waiting for it" in agent.logs(), 10), agent.logs()
    put_secret(srv, "later", {"k": "v"})
    assert wait_for(lambda: os.path.exists(os.path.join(out, "k")) and read(os.path.join(out, "k")) == "v", 10), agent.logs()


def test_agent_and_server_restarts(start_server, workdir, key_file, agents):
    port = free_port()
    args = ["--data-dir", workdir + "/data", "--seal-key-file", key_file, "--listen", f"127.0.0.1:{port}"]
    s = start_server(args)
    put_secret(s, "app", {"a": value(1), "b": value(1)})
    token = reader_token(s, workdir)
    out = os.path.join(workdir, "app")
    cfg = write_config(workdir, s, token, f"- {{name: app, directory: {out}}}\n")
    agent = agents(cfg)
    assert wait_for(lambda: os.path.exists(os.path.join(out, "a")), 15), agent.logs()
    reader = Reader(out, ["a", "b"])

    # The agent restarts: what changed meanwhile is rendered when it is back.
    assert agent.stop() == 0
    put_secret(s, "app", {"a": value(2), "b": value(2)})
    agent = agents(cfg)
    assert wait_for(lambda: read(os.path.join(out, "a")) == value(2), 15), agent.logs()

    # The server restarts under a running agent: the agent reconnects (backoff), resumes or
    # lists again, and follows changes made after the restart.
    s.stop()
    time.sleep(1.5)
    s2 = start_server(args)
    s2.token = s.token
    put_secret(s2, "app", {"a": value(3), "b": value(3)})
    assert wait_for(lambda: read(os.path.join(out, "a")) == value(3), 30), agent.logs()
    assert "retrying" in agent.logs()
    # A SIGKILLed server too, with an update right after it is back.
    s2.stop(signal.SIGKILL)
    s3 = start_server(args)
    s3.token = s.token
    put_secret(s3, "app", {"a": value(4), "b": value(4)})
    assert wait_for(lambda: read(os.path.join(out, "b")) == value(4), 30), agent.logs()
    errors = reader.finish()
    assert errors == [], errors[:5]
    assert agent.proc.poll() is None

    # Footprint: the agent's resident size while following one Secret.
    with open(f"/proc/{agent.proc.pid}/status") as f:
        rss_kib = int(re.search(r"VmRSS:\s+(\d+) kB", f.read()).group(1))
    print(f"sigil-agent RSS: {rss_kib} KiB")
    if "ASAN_OPTIONS" not in os.environ:  # a sanitized build's shadow memory is another matter
        assert rss_kib < 20 * 1024, rss_kib


# ---- sigil-agent run -- CMD: Secrets in the environment ---------------------------------------

PROGRAM = """
echo "start $$ ${DB_PASSWORD-unset} ${API_token-unset} ${API_other-unset}" >> "$OUT"
trap 'echo "usr1 $$" >> "$OUT"' USR1
trap 'echo "term $$" >> "$OUT"; exit 0' TERM
while true; do sleep 0.05; done
"""


def lines(path):
    try:
        with open(path) as f:
            return f.read().splitlines()
    except FileNotFoundError:
        return []


def run_agent(agents, workdir, s, token, extra, program=PROGRAM, secrets=""):
    out = os.path.join(workdir, "program.out")
    cfg = write_config(workdir, s, token, secrets, name="run.yaml", extra=extra)
    os.environ["OUT"] = out  # inherited by the agent, and by the program through it
    try:
        a = agents(cfg, "run", "--", "/bin/sh", "-c", program)
    finally:
        del os.environ["OUT"]
    return a, out


ENV = """env:
- {name: DB_PASSWORD, secret: db, key: password}
- {secret: api, prefix: API_}
"""


def test_run_starts_the_program_with_secrets_and_restarts_it_on_change(srv, workdir, agents):
    put_secret(srv, "db", {"password": "pw1-c4n4ry", "user": "u"})
    put_secret(srv, "api", {"token": "tok-c4n4ry", "bad-key": "x"})
    token = reader_token(srv, workdir)
    agent, out = run_agent(agents, workdir, srv, token, ENV + "exec: {stop_timeout_seconds: 5}\n")
    assert wait_for(lambda: len(lines(out)) == 1, 15), agent.logs()
    first = lines(out)[0].split()
    assert first[0] == "start" and first[2:] == ["pw1-c4n4ry", "tok-c4n4ry", "unset"], first
    assert "not a valid variable name" in agent.logs()  # bad-key is left out, said so

    put_secret(srv, "db", {"password": "pw2-c4n4ry", "user": "u"})
    assert wait_for(lambda: any(l.startswith("start") and " pw2-c4n4ry " in l for l in lines(out)), 15), (lines(out), agent.logs())
    ls = lines(out)
    assert ls[1] == "term " + first[1], ls  # the old program was asked to stop first
    second = ls[2].split()
    assert second[1] != first[1] and second[2:] == ["pw2-c4n4ry", "tok-c4n4ry", "unset"], ls
    # A new key of a whole-Secret entry is a new variable: restarted again.
    put_secret(srv, "api", {"token": "tok-c4n4ry", "bad-key": "x", "other": "o"})
    assert wait_for(lambda: any(l.endswith(" pw2-c4n4ry tok-c4n4ry o") for l in lines(out)), 15), (lines(out), agent.logs())
    assert "c4n4ry" not in agent.logs()  # no value in the agent's log

    # SIGTERM to the agent reaches the program; the agent exits with its status.
    agent.proc.send_signal(signal.SIGTERM)
    assert agent.proc.wait(timeout=15) == 0, agent.logs()
    assert lines(out)[-1].startswith("term "), lines(out)


def test_run_signal_mode_keeps_the_program_and_the_files_current(srv, workdir, agents):
    put_secret(srv, "db", {"password": "p1"})
    put_secret(srv, "api", {"token": "t1"})
    token = reader_token(srv, workdir)
    files = os.path.join(workdir, "files")
    agent, out = run_agent(agents, workdir, srv, token, ENV + "exec: {on_change: signal, signal: SIGUSR1}\n",
                           secrets=f"- {{name: db, directory: {files}}}\n")
    assert wait_for(lambda: len(lines(out)) == 1, 15), agent.logs()
    assert read(os.path.join(files, "password")) == "p1"  # files are in place before the program starts
    pid = lines(out)[0].split()[1]
    put_secret(srv, "db", {"password": "p2"})
    assert wait_for(lambda: f"usr1 {pid}" in lines(out), 15), (lines(out), agent.logs())
    assert read(os.path.join(files, "password")) == "p2"
    assert [l for l in lines(out) if l.startswith("start")] == [lines(out)[0]]  # never restarted


def test_run_waits_for_a_missing_secret_and_passes_on_the_exit_status(srv, workdir, agents):
    token = reader_token(srv, workdir)
    agent, out = run_agent(agents, workdir, srv, token, "env:\n- {name: DB_PASSWORD, secret: db, key: password}\n"
                                                       "- {name: OPT, secret: db, key: nokey, optional: true}\n",
                           program='echo "start $DB_PASSWORD ${OPT-unset}" >> "$OUT"; exit 3')
    assert wait_for(lambda: "not starting the program yet" in agent.logs(), 10), agent.logs()
    assert lines(out) == []
    put_secret(srv, "db", {"password": "late"})
    assert agent.proc.wait(timeout=15) == 3, agent.logs()
    assert lines(out) == ["start late unset"]


def test_run_kills_a_program_that_ignores_its_stop_signal(srv, workdir, agents):
    put_secret(srv, "db", {"password": "p1"})
    put_secret(srv, "api", {"token": "t1"})
    token = reader_token(srv, workdir)
    agent, out = run_agent(agents, workdir, srv, token, ENV + "exec: {stop_timeout_seconds: 1}\n",
                           program='echo "start $$" >> "$OUT"; trap "" TERM; while true; do sleep 0.05; done')
    assert wait_for(lambda: len(lines(out)) == 1, 15), agent.logs()
    agent.proc.send_signal(signal.SIGTERM)
    assert agent.proc.wait(timeout=15) == 128 + signal.SIGKILL, agent.logs()
    assert "did not stop in time" in agent.logs()


def test_run_refusals(srv, workdir):
    token = reader_token(srv, workdir)
    cfg = write_config(workdir, srv, token, "", name="env.yaml", extra=ENV)
    r = subprocess.run([AGENT, "--config", cfg], capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and "env is only used by" in r.stderr, r.stderr
    r = subprocess.run([AGENT, "--config", cfg, "--once", "run", "--", "true"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and "do not go together" in r.stderr, r.stderr
    put_secret(srv, "db", {"password": "p"})
    put_secret(srv, "api", {"token": "t"})
    r = subprocess.run([AGENT, "--config", cfg, "run", "--", "/nonexistent/program"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 127 and "cannot start the program" in r.stderr, r.stderr


# ---- a hostile or broken server -------------------------------------------------------------

class FakeApi:
    """An HTTPS server that answers the agent's LIST and WATCH with whatever a test says, and
    counts the requests."""

    def __init__(self, workdir, list_body, watch_lines):
        import datetime
        import http.server
        import ipaddress
        import ssl
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fake")])
        now = datetime.datetime.now(datetime.timezone.utc)
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                .serial_number(1).not_valid_before(now - datetime.timedelta(hours=1))
                .not_valid_after(now + datetime.timedelta(hours=1))
                .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
                .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
                .sign(key, hashes.SHA256()))
        self.ca = os.path.join(workdir, "fake-ca.pem")
        keyfile = os.path.join(workdir, "fake-key.pem")
        with open(self.ca, "wb") as f:
            f.write(cert.public_bytes(serialization.Encoding.PEM))
        with open(keyfile, "wb") as f:
            f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
        self.requests = []
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_GET(self):
                fake.requests.append(self.path)
                if "watch=1" in self.path:
                    body = "".join(l + "\n" for l in watch_lines).encode()
                else:
                    body = list_body.encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(body)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.ca, keyfile)
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()


GOOD_LIST = '{"kind":"SecretList","metadata":{"resourceVersion":"5"},"items":[{"metadata":{"name":"app","resourceVersion":"5"},"data":{"k":"djE="}}]}'


@pytest.mark.parametrize("case,list_body,watch_lines", [
    # Shapes nobody should send: each once made the agent abort (an uncaught JSON type error).
    ("list without metadata", '{"items":[]}', []),
    ("object not an object", GOOD_LIST, ['{"type":"ADDED","object":"x"}']),
    ("numeric resourceVersion", GOOD_LIST, ['{"type":"BOOKMARK","object":{"metadata":{"resourceVersion":5}}}']),
    ("error code of another type", GOOD_LIST, ['{"type":"ERROR","object":{"code":"410","message":7}}']),
    ("data of another type", GOOD_LIST, ['{"type":"MODIFIED","object":{"metadata":{"name":"app","resourceVersion":"6"},"data":[1]}}']),
    # Watches that end at once, or expire at once, once made it reconnect without pause.
    ("watch ends at once", GOOD_LIST, ['{"type":"BOOKMARK","object":{"metadata":{"resourceVersion":"6"}}}']),
    ("watch expires at once", GOOD_LIST, ['{"type":"ERROR","object":{"kind":"Status","code":410,"message":"too old"}}']),
])
def test_a_broken_server_costs_retries_not_the_agent(workdir, agents, case, list_body, watch_lines):
    fake = FakeApi(workdir, list_body, watch_lines)
    try:
        token = os.path.join(workdir, "t")
        with open(token, "w") as f:
            f.write("tok")
        out = os.path.join(workdir, "out")
        cfg = os.path.join(workdir, "fake.yaml")
        with open(cfg, "w") as f:
            f.write(f"server: {fake.url}\nca_file: {fake.ca}\nauth: {{token_file: {token}}}\n"
                    f"backoff: {{min_milliseconds: 200, max_milliseconds: 2000}}\nsecrets:\n- {{name: app, directory: {out}}}\n")
        agent = agents(cfg)
        time.sleep(3)
        assert agent.proc.poll() is None, agent.logs()
        assert "retrying" in agent.logs(), agent.logs()
        # With a 200 ms backoff doubling to 2 s, 3 s allow about 5 attempts (a LIST and a
        # WATCH each); a spin made about 12 requests a second.
        assert len(fake.requests) <= 14, (len(fake.requests), agent.logs()[-2000:])
        assert agent.stop() == 0, agent.logs()
    finally:
        fake.close()
