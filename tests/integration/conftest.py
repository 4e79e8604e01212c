"""Shared fixtures for the integration tests: paths to the built binaries, key files, and a
running sigil server on a port chosen by the OS. Run with Debian's /usr/bin/python3."""
import io
import os
import re
import select
import signal
import subprocess
import tempfile
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("SIGIL_BIN_DIR", os.path.join(ROOT, "build", "bin"))
SIGIL = os.path.join(BIN, "sigil")
STORETOOL = os.path.join(BIN, "sigil-storetool")
SEED = int(os.environ.get("SIGIL_TEST_SEED", str(int(time.time()))))


def pytest_report_header(config):
    return f"sigil binaries: {BIN}; SIGIL_TEST_SEED={SEED}"


def run(args, check=True, **kw):
    """Runs a command, returning CompletedProcess with text output."""
    r = subprocess.run(args, capture_output=True, text=True, timeout=kw.pop("timeout", 60), **kw)
    if check and r.returncode != 0:
        raise AssertionError(f"{args} exited {r.returncode}\nstdout: {r.stdout}\nstderr: {r.stderr}")
    return r


def readline(pipe, timeout=10, what="a line"):
    """One line from a child's output pipe (`proc.stdout`, text or binary), waiting at most
    `timeout` seconds: a line that never comes (say, a dropped watch event) fails the test with
    a clear message instead of hanging it. Returns "" at end of file, as readline() does.

    Reads the file descriptor one byte at a time, so nothing past the line is taken into a
    buffer: a later readline() here or a plain read() of the pipe sees the rest. Do not mix
    with the pipe's own readline(), whose buffer this cannot see."""
    fd = pipe.fileno()
    deadline = time.monotonic() + timeout
    line = bytearray()
    while not line.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            raise AssertionError(f"no complete line within {timeout} s while waiting for {what}; got {bytes(line)!r}")
        b = os.read(fd, 1)
        if not b:
            break
        line += b
    return line.decode() if isinstance(pipe, io.TextIOBase) else bytes(line)


def wait_for(cond, timeout=20):
    """Whether `cond()` became true within `timeout` seconds (polled every 0.2 s)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if cond():
            return True
        time.sleep(0.2)
    return False


@pytest.fixture
def workdir():
    with tempfile.TemporaryDirectory(prefix="sigil-it-") as d:
        os.chmod(d, 0o700)
        yield d


@pytest.fixture
def key_file(workdir):
    path = os.path.join(workdir, "root.key")
    run([SIGIL, "operator", "generate-root-key", "--out", path])
    return path


def token_file_config(workdir, rows, mode=0o600):
    """Writes a kube-apiserver token file (CSV `rows`) with `mode` and a server config that
    uses it; returns the config's path."""
    tokens = os.path.join(workdir, "tokens.csv")
    with open(tokens, "w") as f:
        f.write(rows)
    os.chmod(tokens, mode)
    cfg = os.path.join(workdir, "c.yaml")
    with open(cfg, "w") as f:
        f.write(f"auth: {{token_file: {tokens}}}\n")
    return cfg


def token_kubeconfig(path, server, token):
    """Writes a kubeconfig that authenticates to `server` (a Server) with a bearer token."""
    with open(path, "w") as f:
        f.write(f"""apiVersion: v1
kind: Config
clusters: [{{name: s, cluster: {{server: "{server.url}", certificate-authority: "{server.ca}"}}}}]
users: [{{name: u, user: {{token: {token}}}}}]
contexts: [{{name: s, context: {{cluster: s, user: u}}}}]
current-context: s
""")
    return path


def tmpfs(workdir, size):
    """A small tmpfs under workdir (needs root; skips the test otherwise). Unmounted by the
    caller's fixture."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mnt = os.path.join(workdir, "small")
    os.mkdir(mnt)
    r = run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", mnt], check=False)
    if r.returncode != 0:
        pytest.skip("cannot mount tmpfs here: " + r.stderr.strip())
    return mnt


@pytest.fixture
def small_fs_1m(workdir):
    mnt = tmpfs(workdir, "1m")
    yield mnt
    run(["umount", "-l", mnt], check=False)


@pytest.fixture
def small_fs_4m(workdir):
    mnt = tmpfs(workdir, "4m")
    yield mnt
    run(["umount", "-l", mnt], check=False)


class Server:
    """A sigil server process. Stopped (SIGTERM, then SIGKILL) when the test ends."""

    def __init__(self, args, env=None):
        self.log_path = tempfile.mktemp(prefix="sigil-server-", suffix=".log")
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen([SIGIL, "server"] + args, stdout=subprocess.PIPE, stderr=self.log,
                                     text=True, env=env)
        self.url = None
        self.ca = None
        self.token = None  # the root token, when this start created it
        deadline = time.time() + 20
        lines = []
        while time.time() < deadline:
            try:
                line = readline(self.proc.stdout, timeout=max(0.1, deadline - time.time()), what="the server's start-up lines")
            except AssertionError:
                break  # reported below, with the log
            if not line:
                break
            lines.append(line)
            m = re.search(r"the root token is in (\S+) ", line)
            if m:
                with open(m.group(1)) as f:
                    self.token = f.read().strip()
            m = re.search(r"listening on (https://\S+)", line)
            if m:
                self.url = m.group(1)
                c = re.search(r"CA certificate: (\S+)\)", line)
                if c:
                    self.ca = c.group(1)
                if "dev server" not in line:
                    break
            m = re.search(r"VAULT_CACERT=(\S+)", line)
            if m:
                self.ca = m.group(1)
            m = re.search(r"Root token \(shown once\): (\S+)", line)
            if m:
                self.token = m.group(1)
                break
        if not self.url:
            self.stop()
            raise AssertionError("server did not start: " + "".join(lines) + self.logs())

    @property
    def auth(self):
        """Headers that authenticate as the root token."""
        assert self.token, "this server start did not create a root token"
        return {"Authorization": "Bearer " + self.token}

    @property
    def port(self):
        return int(self.url.rsplit(":", 1)[1])

    def logs(self):
        self.log.flush()
        with open(self.log_path) as f:
            return f.read()

    def stop(self, sig=signal.SIGTERM, timeout=20):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


@pytest.fixture
def start_server():
    servers = []

    def start(args, env=None):
        s = Server(args, env=env)
        servers.append(s)
        return s

    yield start
    for s in servers:
        s.stop()
        try:
            os.unlink(s.log_path)
        except OSError:
            pass


PG_BIN = os.environ.get("SIGIL_PG_BIN", "/usr/lib/postgresql/15/bin")


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Postgres:
    """A throwaway PostgreSQL 15 (Debian's postgresql package) in a temp dir, on a loopback port,
    with password (SCRAM) authentication and a superuser `sigiladmin`. Run as the `postgres`
    user when the tests run as root (initdb refuses root). stop() and start() keep the data."""

    ADMIN = "sigiladmin"

    def __init__(self):
        import secrets
        import shutil
        self.dir = tempfile.mkdtemp(prefix="sigil-pg-")
        os.chmod(self.dir, 0o755)
        self.data = os.path.join(self.dir, "data")
        self.log = os.path.join(self.dir, "pg.log")
        self.port = free_port()
        self.password = secrets.token_urlsafe(18)
        self.as_user = []
        if os.geteuid() == 0:
            import pwd
            pw = pwd.getpwnam("postgres")
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
            self.as_user = ["runuser", "-u", "postgres", "--"]
        pwfile = os.path.join(self.dir, "pw")
        with open(pwfile, "w") as f:
            f.write(self.password + "\n")
        if self.as_user:
            shutil.chown(pwfile, "postgres")
        run(self.as_user + [os.path.join(PG_BIN, "initdb"), "-D", self.data, "-U", self.ADMIN, "--pwfile", pwfile,
                            "--auth", "scram-sha-256", "--no-sync", "-E", "UTF8", "--locale", "C"], timeout=120)
        os.unlink(pwfile)
        self.start()

    def start(self):
        opts = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
        run(self.as_user + [os.path.join(PG_BIN, "pg_ctl"), "-D", self.data, "-l", self.log, "-o", opts, "-w", "start"], timeout=60)

    def stop(self):
        run(self.as_user + [os.path.join(PG_BIN, "pg_ctl"), "-D", self.data, "-m", "fast", "-w", "stop"], timeout=60)

    def url(self, db="postgres"):
        """A connection URL with Vault's templates for the credentials."""
        return f"postgresql://{{{{username}}}}:{{{{password}}}}@127.0.0.1:{self.port}/{db}?sslmode=disable"

    def psql(self, sql, user=None, password=None, db="postgres", check=True):
        """Runs `sql` as `user` (the superuser by default): (returncode, stdout, stderr)."""
        env = dict(os.environ, PGPASSWORD=password or self.password, PGCONNECT_TIMEOUT="5")
        r = subprocess.run([os.path.join(PG_BIN, "psql"), "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1",
                            "-p", str(self.port), "-U", user or self.ADMIN, "-d", db, "-c", sql],
                           capture_output=True, text=True, env=env, timeout=30)
        if check and r.returncode != 0:
            raise AssertionError(f"psql {sql!r} as {user or self.ADMIN} failed: {r.stderr}")
        return r.returncode, r.stdout.strip(), r.stderr.strip()

    def can_login(self, user, password):
        return self.psql("SELECT 1", user=user, password=password, check=False)[0] == 0

    def role_exists(self, user):
        return self.psql(f"SELECT count(*) FROM pg_roles WHERE rolname = '{user}'")[1] == "1"

    def destroy(self):
        import shutil
        try:
            self.stop()
        except AssertionError:
            pass
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres():
    if not os.path.exists(os.path.join(PG_BIN, "initdb")):
        pytest.fail(f"PostgreSQL 15 is not installed ({PG_BIN}/initdb); `make test` installs it (scripts/install-deps.sh)")
    pg = Postgres()
    yield pg
    pg.destroy()
