"""Hostile and careless clients (issue 15): each finding of the attack on the server has a test
here that failed before its fix, and the attacks that were refused from the start are kept from
regressing. Everything runs against the built binary over loopback, bounded in time."""
import base64
import concurrent.futures
import json
import os
import re
import socket
import ssl
import subprocess
import threading
import time

import pytest
import requests

from conftest import SIGIL, run, wait_for


def write(path, text, mode=0o600):
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)
    return path


def dev(start_server, workdir, config="", name="c.yaml"):
    args = ["--dev", "--listen", "127.0.0.1:0"]
    if config:
        args += ["--config", write(os.path.join(workdir, name), config)]
    return start_server(args)


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        return int(re.search(r"VmRSS:\s+(\d+) kB", f.read()).group(1))


def metric(s, name, labels=""):
    text = requests.get(s.url + "/metrics", headers=s.auth, verify=s.ca, timeout=10).text
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{" + labels) or (not labels and line.startswith(name + " ")):
            total += float(line.rsplit(" ", 1)[1])
    return total


def tls_connect(s, timeout=10):
    ctx = ssl.create_default_context(cafile=s.ca)
    raw = socket.create_connection(("127.0.0.1", s.port), timeout=timeout)
    return ctx.wrap_socket(raw, server_hostname="127.0.0.1")


def recv_all(sock, limit=1 << 20):
    data = b""
    try:
        while len(data) < limit:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    except (ConnectionResetError, ssl.SSLError, socket.timeout, TimeoutError):
        pass
    return data


# ---- connections: a cap, eviction of idle sockets, no log flood -----------------------------

def test_a_flood_of_idle_connections_cannot_lock_out_a_client(start_server, workdir):
    s = dev(start_server, workdir, "limits: {max_connections: 40}\n")
    held = []
    try:
        for _ in range(400):
            held.append(socket.create_connection(("127.0.0.1", s.port), timeout=5))
        # Health checks and an authenticated client still get through, promptly.
        for _ in range(5):
            start = time.time()
            assert requests.get(s.url + "/healthz", verify=s.ca, timeout=10).status_code == 200
            r = requests.get(s.url + "/api/v1/namespaces/default/secrets", headers=s.auth, verify=s.ca, timeout=10)
            assert r.status_code == 200 and time.time() - start < 5
        assert metric(s, "sigil_http_open_connections") <= 42
        assert metric(s, "sigil_http_connections_shed_total", 'action="evicted_idle"') > 0
    finally:
        for c in held:
            c.close()
    # The log says so at most once per 10 s, not once per connection.
    assert s.logs().count("connection limit reached") <= 2, s.logs()[-2000:]


def test_idle_sockets_cost_little_and_memory_comes_back(start_server, workdir):
    s = dev(start_server, workdir)
    pid = s.proc.pid
    requests.get(s.url + "/version", verify=s.ca, timeout=5)
    time.sleep(1)
    before = rss_kib(pid)
    held = [socket.create_connection(("127.0.0.1", s.port), timeout=5) for _ in range(3000)]
    wait_for(lambda: metric(s, "sigil_http_open_connections") >= 3000, timeout=30)
    during = rss_kib(pid)
    # Before the fix each connection cost ~100 KiB before any TLS byte: 3000 made ~300 MiB.
    assert during - before < 3000 * 12, (before, during)
    for c in held:
        c.close()
    # Handshaked connections that go idle, then close: the memory is given back (malloc_trim
    # after many closes), not kept by the allocator.
    tls = [tls_connect(s) for _ in range(300)]
    for t in tls:
        t.sendall(b"GET /version HTTP/1.1\r\nHost: x\r\n\r\n")
    for t in tls:
        t.recv(4096)
    peak = rss_kib(pid)
    for t in tls:
        t.close()
    wait_for(lambda: metric(s, "sigil_http_open_connections") <= 1, timeout=30)
    wait_for(lambda: rss_kib(pid) < before + 16 * 1024, timeout=30)
    assert rss_kib(pid) < max(peak, before + 16 * 1024)


def test_a_trickled_header_is_cut_at_the_read_deadline(start_server, workdir):
    s = dev(start_server, workdir, "limits: {read_timeout_seconds: 2, idle_timeout_seconds: 20}\n")
    t = tls_connect(s, timeout=30)
    start = time.time()
    closed_after = None
    request = b"GET /version HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 200
    try:
        for b in request:
            t.sendall(bytes([b]))
            time.sleep(0.25)
            if time.time() - start > 15:
                break
    except (BrokenPipeError, ConnectionResetError, ssl.SSLError, OSError):
        closed_after = time.time() - start
    if closed_after is None:
        t.settimeout(15)
        assert recv_all(t) == b""
        closed_after = time.time() - start
    # The whole request had 2 s from its first byte (not the 20 s idle deadline).
    assert closed_after < 6, closed_after


def test_method_tokens_do_not_grow_metrics(start_server, workdir):
    s = dev(start_server, workdir)
    for i in range(300):
        t = tls_connect(s)
        t.sendall(f"XMETHOD{i} /version HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        recv_all(t)
        t.close()
    text = requests.get(s.url + "/metrics", headers=s.auth, verify=s.ca, timeout=10).text
    series = [l for l in text.splitlines() if l.startswith("sigil_http_requests_total{")]
    assert len(series) < 30, series
    assert any('method="other"' in l for l in series)


def test_transfer_encoding_not_ending_in_chunked_is_refused_and_closed(start_server, workdir):
    s = dev(start_server, workdir)
    token = s.token
    for te in ["xchunked", "chunked, identity", "identity", "gzip"]:
        smuggled = (b"POST /api/v1/namespaces/default/secrets HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " +
                    token.encode() + b"\r\nContent-Type: application/json\r\nContent-Length: 57\r\n\r\n" +
                    b'{"apiVersion":"v1","kind":"Secret","metadata":{"name":"smuggled"}}'[:57])
        t = tls_connect(s)
        t.sendall(b"GET /version HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: " + te.encode() + b"\r\n\r\n" + smuggled)
        t.settimeout(10)
        data = recv_all(t)
        assert data.startswith(b"HTTP/1.1 400"), (te, data[:200])
        assert b"Transfer-Encoding" in data and data.count(b"HTTP/1.1") == 1, (te, data)
    r = requests.get(s.url + "/api/v1/namespaces/default/secrets/smuggled", headers=s.auth, verify=s.ca, timeout=10)
    assert r.status_code == 404
    # Both Content-Length and Transfer-Encoding (a classic smuggling vector): refused too.
    t = tls_connect(s)
    t.sendall(b"POST /version HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
    assert recv_all(t).startswith(b"HTTP/1.1 400")


def test_failed_logins_cannot_flood_the_log(start_server, workdir):
    s = dev(start_server, workdir)

    def bad(i):
        return requests.get(s.url + "/api/v1/namespaces", headers={"Authorization": f"Bearer bad-{i}"}, verify=s.ca,
                            timeout=30).status_code

    start = time.time()
    with concurrent.futures.ThreadPoolExecutor(30) as ex:
        assert set(ex.map(bad, range(60))) == {401}
    elapsed = time.time() - start
    lines = s.logs().count("authentication failed")
    # At most one line a second (each says how many were not logged), not one per failure.
    assert 1 <= lines <= elapsed + 2, (lines, elapsed)


def test_codings_besides_a_lone_chunked_are_refused_and_never_smuggle(start_server, workdir):
    s = dev(start_server, workdir)
    smuggled = b"GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
    for te, status in [(b"chunked, chunked", b"501"), (b"gzip, chunked", b"501"), (b"chunked\r\nTransfer-Encoding: chunked", b"400")]:
        t = tls_connect(s)
        t.sendall(b"POST /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: " + te + b"\r\n\r\n" + smuggled)
        data = recv_all(t)
        assert data.startswith(b"HTTP/1.1 " + status) and data.count(b"HTTP/1.1 ") == 1, (te, data[:300])
    t = tls_connect(s)
    t.sendall(b"POST /healthz HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggled)
    data = recv_all(t)
    assert data.startswith(b"HTTP/1.0 400") and len(re.findall(rb"(?m)^HTTP/1\.[01] \d{3}", data)) == 1, data[:300]


def test_a_refused_request_cannot_hold_its_connection(start_server, workdir):
    # Review: after an error answer the server drained input with a fresh deadline per read, so
    # a byte now and then kept the connection for ever.
    s = dev(start_server, workdir, "limits: {read_timeout_seconds: 20}\n")
    t = tls_connect(s, timeout=30)
    t.sendall(b"POST /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n")
    start = time.time()
    t.settimeout(2)
    assert t.recv(4096).startswith(b"HTTP/1.1 400")
    closed = None
    for _ in range(30):
        try:
            t.sendall(b"x")
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, OSError):
            closed = time.time() - start
            break
        time.sleep(1)
    assert closed is not None and closed < 9, closed


def test_the_connection_limit_holds_under_churn_and_sheds_the_right_connections(start_server, workdir):
    s = dev(start_server, workdir, "limits: {max_connections: 20}\n")
    # A client with a keep-alive connection that has made a request...
    real = tls_connect(s)
    real.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    assert real.recv(4096).startswith(b"HTTP/1.1 200")
    # ... outlives a flood of sockets that never send a byte (those go first).
    raw = [socket.create_connection(("127.0.0.1", s.port), timeout=5) for _ in range(30)]
    wait_for(lambda: metric(s, "sigil_http_connections_shed_total", 'action="evicted_idle"') >= 10, timeout=10)
    real.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    assert real.recv(4096).startswith(b"HTTP/1.1 200")
    # Half-sent requests cannot lock clients out either: an idle keep-alive connection goes
    # before them, then the oldest of them (a complete request is never cut).
    partial = []
    for _ in range(30):
        p = tls_connect(s)
        p.sendall(b"GET /healthz HTTP/1.1\r\n")
        partial.append(p)
    for _ in range(3):
        assert requests.get(s.url + "/healthz", verify=s.ca, timeout=10).status_code == 200
    for c in [real] + raw + partial:
        c.close()
    # Keep-alive clients busy on requests while new connections keep arriving: the count never
    # settles above the limit (review: a claimed connection that started a request stayed).
    stop = time.time() + 6

    def busy():
        sess = requests.Session()
        while time.time() < stop:
            try:
                sess.get(s.url + "/healthz", verify=s.ca, timeout=10)
            except requests.exceptions.RequestException:
                pass

    with concurrent.futures.ThreadPoolExecutor(24) as ex:
        for _ in range(24):
            ex.submit(busy)
    time.sleep(1)
    assert metric(s, "sigil_http_open_connections") <= 21


def test_throttled_refusals_cannot_hold_every_connection(start_server, workdir):
    # Failed logins from one address are answered after a growing delay (up to 5 s); a
    # connection waiting for such a refusal is shed like an idle one, so a flood of bad tokens
    # cannot fill the connection limit and lock everyone else out.
    s = dev(start_server, workdir, "limits: {max_connections: 20}\n")
    stop = time.time() + 12

    def attacker():
        while time.time() < stop:
            try:
                t = tls_connect(s, timeout=10)
                t.sendall(b"GET /api/v1/namespaces HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer bad\r\n\r\n")
                t.settimeout(10)
                t.recv(4096)
                t.close()
            except (OSError, ssl.SSLError):
                pass

    with concurrent.futures.ThreadPoolExecutor(40) as ex:
        for _ in range(40):
            ex.submit(attacker)
        time.sleep(3)
        ok = 0
        for _ in range(20):
            try:
                ok += requests.get(s.url + "/healthz", verify=s.ca, timeout=10).status_code == 200
            except requests.exceptions.RequestException:
                pass  # a new connection can still be shed mid-handshake: it looks like the flood's
            time.sleep(0.2)
        # Before, every slot held a delayed refusal and every new connection was closed (0 of
        # 20). A new connection is still shed about half the time while its handshake is
        # indistinguishable from the flood's (measured: 2 to 5 of 10 got through), so the test
        # asks only that some do, all while the flood lasts.
        assert time.time() < stop, "the checks outlasted the flood"
        assert ok >= 2, ok


# ---- requests in flight ---------------------------------------------------------------------

def test_too_many_requests_in_flight_get_429_in_each_faces_format(start_server, workdir):
    s = dev(start_server, workdir, "limits: {max_requests_inflight: 1, max_mutating_requests_inflight: 1}\n")
    for i in range(60):
        requests.post(s.url + "/api/v1/namespaces/default/secrets", headers=s.auth, verify=s.ca, timeout=10,
                      json={"apiVersion": "v1", "kind": "Secret", "metadata": {"name": f"s{i}"},
                            "stringData": {"k": "v" * 2000}})
    seen = {}
    stop = time.time() + 60
    lock = threading.Lock()

    def hammer(url, key):
        sess = requests.Session()
        while time.time() < stop:
            with lock:
                if key in seen:
                    return
            r = sess.get(url, headers=s.auth, verify=s.ca, timeout=10)
            if r.status_code == 429:
                with lock:
                    seen[key] = r
                return
            assert r.status_code == 200, r.text

    kube = s.url + "/api/v1/namespaces/default/secrets"
    vault = s.url + "/v1/sys/mounts"
    with concurrent.futures.ThreadPoolExecutor(16) as ex:
        futures = [ex.submit(hammer, kube, "kube") for _ in range(8)] + [ex.submit(hammer, vault, "vault") for _ in range(8)]
        for f in futures:
            f.result()
    assert "kube" in seen and "vault" in seen, seen
    k = seen["kube"]
    assert k.headers["Retry-After"] == "1"
    assert k.json()["kind"] == "Status" and k.json()["reason"] == "TooManyRequests" and k.json()["code"] == 429
    v = seen["vault"]
    assert v.headers["Retry-After"] == "1" and v.headers["Content-Type"] == "application/json"
    assert list(v.json()) == ["errors"]
    # Health endpoints are never refused.
    assert requests.get(s.url + "/healthz", verify=s.ca, timeout=10).status_code == 200
    assert metric(s, "sigil_requests_rejected_total") >= 2


def test_a_noisy_caller_cannot_take_the_seats_of_a_quiet_one(start_server, workdir):
    # A limit of 2: the noisy caller may hold one seat once the pool is half full, so any two of
    # its requests that overlap make one refused, while a quiet caller asking one at a time
    # always finds a seat (core/inflight.h). Deterministic however fast the server is.
    s = dev(start_server, workdir, "limits: {max_requests_inflight: 2}\n")
    r = requests.post(s.url + "/sigil/v1/tokens", json={"user": "noisy", "groups": ["system:masters"]}, headers=s.auth,
                      verify=s.ca, timeout=10)
    assert r.status_code == 201, r.text
    noisy = {"Authorization": "Bearer " + r.json()["token"]}
    url = s.url + "/api/v1/namespaces/default/secrets"
    stop = time.time() + 8
    refused = {"noisy": 0, "quiet": 0}
    served = {"noisy": 0, "quiet": 0}

    def loop(who, headers):
        sess = requests.Session()
        while time.time() < stop:
            code = sess.get(url, headers=headers, verify=s.ca, timeout=10).status_code
            assert code in (200, 429), code
            (refused if code == 429 else served)[who] += 1

    with concurrent.futures.ThreadPoolExecutor(26) as ex:
        futures = [ex.submit(loop, "noisy", noisy) for _ in range(24)] + [ex.submit(loop, "quiet", s.auth)]
        for f in futures:
            f.result()
    # The noisy caller is held to its share; the quiet one is never refused.
    assert refused["noisy"] > 0 and served["quiet"] > 0, (refused, served)
    assert refused["quiet"] == 0, (refused, served)


# ---- identities and defaults ----------------------------------------------------------------

def test_kubeconfig_grants_no_group_unless_asked(start_server, workdir, key_file):
    data = os.path.join(workdir, "data")
    s = start_server(["--data-dir", data, "--seal-key-file", key_file, "--listen", "127.0.0.1:0"])
    base = [SIGIL, "kubeconfig", "--data-dir", data, "--listen", f"127.0.0.1:{s.port}"]
    r = run(base, check=False)
    assert r.returncode != 0 and "--user" in r.stderr and r.stdout == ""

    def subject(out):
        cert = base64.b64decode(out.split("client-certificate-data: ")[1].split()[0])
        return subprocess.run(["openssl", "x509", "-noout", "-subject"], input=cert, capture_output=True).stdout.decode()

    r = run(base + ["--user", "bob"])
    assert "CN = bob" in subject(r.stdout) and "O =" not in subject(r.stdout) and r.stderr == ""
    r = run(base + ["--user", "root", "--group", "system:masters"])
    assert "O = system:masters" in subject(r.stdout) and "warning" in r.stderr and "cluster-admin" in r.stderr


def test_more_than_one_impersonate_user_header_is_refused(start_server, workdir):
    s = dev(start_server, workdir)
    t = tls_connect(s)
    t.sendall(b"GET /api/v1/namespaces/default/secrets HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + s.token.encode() +
              b"\r\nImpersonate-User: alice\r\nImpersonate-User: system:admin\r\nConnection: close\r\n\r\n")
    data = recv_all(t).decode()
    assert data.startswith("HTTP/1.1 400") and "more than one Impersonate-User header" in data
    # One is fine (root may impersonate).
    r = requests.get(s.url + "/api/v1/namespaces/default/secrets", verify=s.ca, timeout=10,
                     headers=dict(s.auth, **{"Impersonate-User": "alice"}))
    assert r.status_code == 403 and 'User "alice"' in r.json()["message"]


# ---- names longer than any key --------------------------------------------------------------

def test_overlong_names_get_the_apis_4xx_not_500(start_server, workdir):
    s = dev(start_server, workdir)
    h = s.auth
    long300, long600 = "a" * 300, "b" * 600
    base = s.url + "/api/v1/namespaces"
    checks = []
    for name in [long300, long600]:
        checks += [
            ("GET", f"{base}/default/secrets/{name}", None, 404),
            ("DELETE", f"{base}/default/secrets/{name}", None, 404),
            # PUT does not create a Secret (kube-apiserver: AllowCreateOnUpdate is false).
            ("PUT", f"{base}/default/secrets/{name}", {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}}, 404),
            ("POST", f"{base}/default/secrets", {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}}, 422),
            ("GET", f"{base}/{name}/secrets/x", None, 404),
            ("GET", f"{base}/{name}/secrets", None, 200),
            ("POST", f"{base}/{name}/secrets", {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "x"}}, 404),
            ("GET", f"{base}/{name}", None, 404),
            ("POST", base, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}, 422),
            ("GET", f"{s.url}/apis/rbac.authorization.k8s.io/v1/clusterroles/{name}", None, 404),
            # kube-apiserver takes RBAC names of any length; sigil holds them to 253 bytes.
            ("POST", f"{s.url}/apis/rbac.authorization.k8s.io/v1/clusterroles",
             {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": name}}, 422),
            ("GET", f"{s.url}/sigil/v1/namespaces/default/secrets/{name}/versions", None, 404),
            ("POST", f"{s.url}/sigil/v1/namespaces/default/secrets/{name}/rotate", None, 404),
        ]
    wrong = []
    for method, url, body, want in checks:
        r = requests.request(method, url, json=body, headers=h, verify=s.ca, timeout=10)
        if r.status_code != want or (r.status_code >= 400 and (r.json()["kind"] != "Status" or "storage key" in r.text)):
            wrong.append((method, url[len(s.url):len(s.url) + 60], len(url), r.status_code, r.text[:200]))
    assert not wrong, "\n".join(map(str, wrong))
    # The Vault face: a KV path longer than any key is refused in Vault's format.
    for path in [f"secret/data/{long600}", f"secret/metadata/{long600}", f"kubernetes/data/default/{long600}"]:
        r = requests.post(f"{s.url}/v1/{path}", json={"data": {"k": "v"}}, headers={"X-Vault-Token": s.token},
                          verify=s.ca, timeout=10)
        if not (400 <= r.status_code < 500) or list(r.json()) != ["errors"] or "storage key" in r.text:
            wrong.append(("POST", path[:40], r.status_code, r.text[:200]))
        r = requests.get(f"{s.url}/v1/{path}", headers={"X-Vault-Token": s.token}, verify=s.ca, timeout=10)
        if not (400 <= r.status_code < 500):
            wrong.append(("GET", path[:40], r.status_code, r.text[:200]))
    assert not wrong, "\n".join(map(str, wrong))


# ---- the audit trail ------------------------------------------------------------------------

def test_credentials_in_query_strings_stay_out_of_the_trail(start_server, workdir):
    log = os.path.join(workdir, "audit.log")
    s = dev(start_server, workdir, f"audit: {{log_path: {log}}}\n")
    r = requests.get(s.url + "/api/v1/namespaces?access_token=hunter2-query-token&limit=5", verify=s.ca, timeout=10,
                     headers={"Authorization": "Bearer not-a-valid-token"})
    assert r.status_code == 401
    r = requests.get(s.url + "/api/v1/namespaces?token=hunter3-query-token", headers=s.auth, verify=s.ca, timeout=10)
    assert r.status_code == 200
    text = open(log).read()
    assert "hunter2" not in text and "hunter3" not in text
    assert "access_token=REDACTED&limit=5" in text and "token=REDACTED" in text


def test_audit_verify_reports_a_cut_head(start_server, workdir):
    log = os.path.join(workdir, "audit.log")
    s = dev(start_server, workdir, f"audit: {{log_path: {log}}}\n")
    for i in range(6):
        requests.get(s.url + "/api/v1/namespaces", headers=s.auth, verify=s.ca, timeout=10)
    s.stop()
    r = run([SIGIL, "audit", "verify", log])
    assert "chain intact from the start of the trail" in r.stdout
    lines = open(log).read().splitlines(keepends=True)
    cut = os.path.join(workdir, "cut.log")
    write(cut, "".join(lines[3:]))
    r = run([SIGIL, "audit", "verify", cut], check=False)
    assert r.returncode == 1 and "head was cut" in r.stdout, r.stdout


# ---- attacks refused from the start: kept from regressing -----------------------------------

def test_path_tricks_and_smuggling_and_bombs_stay_refused(start_server, workdir):
    s = dev(start_server, workdir)
    requests.post(s.url + "/api/v1/namespaces", json={"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "other"}},
                  headers=s.auth, verify=s.ca, timeout=10)
    # Dot segments and encoded slashes never reach another object.
    for path in ["/api/v1/namespaces/default/secrets/../../other/secrets", "/api/v1/namespaces/default/secrets/%2e%2e",
                 "/api/v1/namespaces/default%2Fsecrets/x", "/api/v1/namespaces/default/secrets/a%2Fb"]:
        t = tls_connect(s)
        t.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {s.token}\r\nConnection: close\r\n\r\n".encode())
        status = recv_all(t).split(b" ", 2)[1]
        assert status in (b"400", b"404"), (path, status)
    # Two Content-Length headers that disagree.
    t = tls_connect(s)
    t.sendall(b"POST /version HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 40\r\n\r\nabc")
    assert recv_all(t).startswith(b"HTTP/1.1 400")
    # A nesting bomb is refused cleanly and the server carries on.
    bomb = "[" * 100000 + "]" * 100000
    r = requests.post(s.url + "/api/v1/namespaces/default/secrets", data=bomb, headers=dict(s.auth, **{"Content-Type": "application/json"}),
                      verify=s.ca, timeout=30)
    assert r.status_code == 400 and r.json()["kind"] == "Status"
    # A client certificate from another CA fails the handshake (it is not ignored).
    other = os.path.join(workdir, "other")
    os.makedirs(other)
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1",
                    "-subj", "/CN=system:admin/O=system:masters", "-keyout", f"{other}/k.pem", "-out", f"{other}/c.pem"],
                   check=True, capture_output=True)
    with pytest.raises((requests.exceptions.SSLError, requests.exceptions.ConnectionError)):
        requests.get(s.url + "/api/v1/namespaces/default/secrets", cert=(f"{other}/c.pem", f"{other}/k.pem"), verify=s.ca,
                     timeout=10)
    # Impersonation without the impersonate verb: refused. (A user with no rights at all.)
    r = requests.post(s.url + "/sigil/v1/tokens", json={"user": "nobody"}, headers=s.auth, verify=s.ca, timeout=10)
    assert r.status_code in (200, 201), r.text
    token = r.json()["token"]
    r = requests.get(s.url + "/api/v1/namespaces/default/secrets", verify=s.ca, timeout=10,
                     headers={"Authorization": "Bearer " + token, "Impersonate-User": "system:admin",
                              "Impersonate-Group": "system:masters"})
    assert r.status_code == 403
    assert requests.get(s.url + "/healthz", verify=s.ca, timeout=10).status_code == 200
