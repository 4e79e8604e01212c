#!/usr/bin/python3
"""Soak test: mixed load against one dev-mode sigil server for a long time (30 minutes by
default), watching its memory, file descriptors and latency.

    /usr/bin/python3 bench/soak/run.py [--minutes 30] [--bin build/bin/sigil] [--out DIR]
                                        [--rate-scale 1.0] [--config FILE]

Not part of `make test`. Starts its own `sigil server --dev` (as bench/http/run.sh does: a
free loopback port, the root token as a bearer token, TLS verified against the dev CA) with
its store in a temporary directory, and runs, all at once, for the whole duration:

  k8s_get      GETs of 50 Secrets (1 KiB values) on one keep-alive connection
  k8s_write    creates, updates (PUT) and deletes of 32 Secrets (1 KiB values)
  list         LIST of the namespace, whole or paginated (limit/continue)
  vault_read   KV v2 reads (secret/ and the same Secrets through kubernetes/)
  vault_write  KV v2 writes (1 KiB values) of 32 keys
  watch        three watches (?watch=true) held open and re-opened when they end, as a
               reflector does (from the last resourceVersion; re-list on 410)
  churn        a new TLS connection for every request
  bad          deliberate bad requests: malformed JSON, invalid names, unknown paths, missing
               objects, a malformed HTTP request, bad tokens (expected 4xx: "deliberate")
  slow         a client that sends its request headers a byte a second until the server cuts
               it off (being cut is expected; being answered, or never cut, is an error)

Every 10 s it samples the server's RSS (VmRSS, RssAnon, RssFile from /proc/PID/status), open
fds, threads, CPU, open connections (/metrics) and the store's size, and each workload's
p50/p99 latency in that window. At the end it writes samples.csv and soak.png (RSS and p99 over
time) to --out (default: a new /tmp/sigil-soak-* directory) and prints a summary.

PASS needs: RSS growth after the warm-up (min(5 min, duration/3)) of at most 5 %, no
unexpected answer or connection error, the server alive to the end, no 5xx in its own metrics
and a clean exit on SIGTERM. Exit status 1 on FAIL, 2 on a setup problem.

The plot needs Debian's python3-matplotlib (apt-get install -y python3-matplotlib).
--rate-scale multiplies every workload's request rate (default rates: about 450 requests/s
in all, for 2 cores shared by the server and this script). --config passes a config file to
the server (dev mode refuses a data_dir and ignores the seal), e.g. to try other limits."""
import argparse
import base64
import collections
import csv
import http.client
import json
import math
import os
import random
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NS = "soak"
READ_SECRETS = 50
WRITE_SECRETS = 32
VAULT_KEYS = 32
SAMPLE_SECONDS = 10
GROWTH_LIMIT_PCT = 5.0
# Requests per second of each paced workload at --rate-scale 1.
# About 450 requests/s in all: on 2 cores, roughly 30 % of one core for the server and 20 % for
# this script, leaving room for latency to mean something.
RATES = {"k8s_get": 180, "k8s_write": 60, "list": 6, "vault_read": 120, "vault_write": 45, "churn": 24, "bad": 8,
         "bad_token": 0.5}
# Workloads whose latency is kept per window (and plotted).
LATENCY = ["k8s_get", "k8s_write", "list", "vault_read", "vault_write", "churn"]
MAX_EXAMPLES = 20


def value_1k():
    return base64.b64encode(os.urandom(1024)).decode()


def pct(sorted_values, q):
    if not sorted_values:
        return None
    return sorted_values[max(0, math.ceil(q * len(sorted_values)) - 1)]


class Stats:
    """Counters and per-window latencies, shared by every thread."""

    def __init__(self):
        self.lock = threading.Lock()
        self.requests = collections.Counter()      # kind -> answered as expected
        self.deliberate = collections.Counter()    # deliberate bad request kind -> answered as expected
        self.notes = collections.Counter()         # things that are fine but worth counting
        self.errors = collections.Counter()        # unexpected: kind -> count
        self.examples = []                         # the first few unexpected results
        self.window = collections.defaultdict(list)
        self.window_requests = 0
        self.window_errors = 0
        self.slow_cuts = []                        # seconds from the slow client's first byte to the cut

    def ok(self, kind, latency=None, deliberate=False):
        with self.lock:
            (self.deliberate if deliberate else self.requests)[kind] += 1
            self.window_requests += 1
            if latency is not None:
                self.window[kind].append(latency)

    def note(self, kind, n=1):
        with self.lock:
            self.notes[kind] += n

    def error(self, kind, detail):
        with self.lock:
            self.errors[kind] += 1
            self.window_errors += 1
            first = len(self.examples) < MAX_EXAMPLES
            if first:
                self.examples.append((time.strftime("%H:%M:%S"), kind, detail))
        if first:
            print(f"  unexpected: {kind}: {detail}", flush=True)

    def take_window(self):
        with self.lock:
            w, n, e = self.window, self.window_requests, self.window_errors
            self.window = collections.defaultdict(list)
            self.window_requests = self.window_errors = 0
        out = {}
        for kind in LATENCY:
            v = sorted(w.get(kind, []))
            out[kind] = (len(v), pct(v, 0.50), pct(v, 0.99))
        return out, n, e


class Soak:
    def __init__(self, args):
        self.args = args
        self.stats = Stats()
        self.stop = threading.Event()
        self.proc = None
        self.open_streams = set()   # sockets of watches and the slow client, shut at the end
        self.streams_lock = threading.Lock()

    # ---- the server -------------------------------------------------------------------------

    def start_server(self):
        self.tmp = tempfile.mkdtemp(prefix="sigil-soak-store-")
        cmd = [self.args.bin, "server", "--dev", "--listen", "127.0.0.1:0", "--log-level", "warn"]
        if self.args.config:
            cmd += ["--config", self.args.config]
        self.out_path = os.path.join(self.args.out, "sigil.out")
        self.err_path = os.path.join(self.args.out, "sigil.err")
        env = dict(os.environ, TMPDIR=self.tmp)  # the dev store goes to $TMPDIR
        self.proc = subprocess.Popen(cmd, stdout=open(self.out_path, "w"), stderr=open(self.err_path, "w"),
                                     stdin=subprocess.DEVNULL, env=env)
        deadline = time.time() + 30
        text = ""
        while time.time() < deadline:
            with open(self.out_path) as f:
                text = f.read()
            if "Root token (shown once)" in text or self.proc.poll() is not None:
                break
            time.sleep(0.1)
        m = re.search(r"listening on https://([0-9.]+):(\d+)", text)
        ca = re.search(r"VAULT_CACERT=(\S+)", text)
        tok = re.search(r"Root token \(shown once\): (\S+)", text)
        store = re.search(r"storage is in (\S+) ", text)
        if not (m and ca and tok):
            with open(self.err_path) as f:
                raise SystemExit(f"the server did not start ({cmd}):\n{text}{f.read()}")
        self.host, self.port = m.group(1), int(m.group(2))
        self.ca, self.token = ca.group(1), tok.group(1)
        self.store_dir = store.group(1) if store else None
        self.ctx = ssl.create_default_context(cafile=self.ca)
        self.k8s_auth = {"Authorization": "Bearer " + self.token}
        self.vault_auth = {"X-Vault-Token": self.token}
        print(f"server pid {self.proc.pid} at https://{self.host}:{self.port} (store {self.store_dir})", flush=True)

    def stop_server(self):
        """SIGTERM, as an operator stops it; returns the exit code (None if it had to be killed)."""
        if self.proc is None:
            return None
        if self.proc.poll() is not None:
            return self.proc.returncode
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=40)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return None

    def connect(self, timeout=30):
        c = http.client.HTTPSConnection(self.host, self.port, context=self.ctx, timeout=timeout)
        c.connect()
        return c

    # ---- requests ---------------------------------------------------------------------------

    def k8s_headers(self, body=False):
        h = dict(self.k8s_auth)
        if body:
            h["Content-Type"] = "application/json"
        return h

    def vault_headers(self):
        return dict(self.vault_auth, **{"Content-Type": "application/json"})

    def setup_request(self, method, path, body, headers, expect):
        c = self.connect()
        try:
            c.request(method, path, body=body, headers=headers)
            r = c.getresponse()
            data = r.read()
        finally:
            c.close()
        if r.status not in expect:
            raise SystemExit(f"setup: {method} {path}: {r.status} {data[:300]!r}")
        return data

    def setup(self):
        h = self.k8s_headers(True)
        self.setup_request("POST", "/api/v1/namespaces", json.dumps({"metadata": {"name": NS}}), h, (201,))
        for i in range(READ_SECRETS):
            body = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": f"soak-read-{i}", "labels": {"soak": "r"}},
                    "data": {"value": value_1k()}}
            self.setup_request("POST", f"/api/v1/namespaces/{NS}/secrets", json.dumps(body), h, (201,))
        for i in range(VAULT_KEYS):
            self.setup_request("POST", f"/v1/secret/data/soak-{i}", json.dumps({"data": {"value": value_1k()}}),
                               self.vault_headers(), (200,))

    def paced(self, rate):
        """Yields `rate` times a second until the end (no bursts to catch up when behind)."""
        interval = 1.0 / rate
        nxt = time.monotonic()
        while not self.stop.is_set():
            yield
            nxt += interval
            delay = nxt - time.monotonic()
            if delay > 0:
                self.stop.wait(delay)
            else:
                nxt = time.monotonic()

    class Conn:
        """One worker's keep-alive connection; reopened when the server closes it."""

        def __init__(self, soak, timeout=30, keepalive=True):
            self.soak, self.timeout, self.keepalive, self.c = soak, timeout, keepalive, None

        def request(self, method, path, body=None, headers=None):
            """(status, body, seconds, response); raises on a connection or protocol error."""
            if self.c is None:
                self.c = self.soak.connect(self.timeout)
            t0 = time.monotonic()
            try:
                self.c.request(method, path, body=body, headers=headers or {})
                r = self.c.getresponse()
                data = r.read()
            except BaseException:
                self.close()
                raise
            dt = time.monotonic() - t0
            if r.will_close or not self.keepalive:
                self.close()
            return r.status, data, dt, r

        def close(self):
            if self.c is not None:
                try:
                    self.c.close()
                except OSError:
                    pass
                self.c = None

    def call(self, conn, kind, method, path, body=None, headers=None, expect=(200,), check=None, deliberate=False):
        """Sends one request and records it: answered with an expected status (and, for check,
        a body it accepts) is fine, anything else is an unexpected error. Returns the parsed
        JSON body (or None)."""
        try:
            status, data, dt, _ = conn.request(method, path, body, headers)
        except (OSError, http.client.HTTPException) as e:
            self.stats.error(f"{kind}:{type(e).__name__}", f"{method} {path}: {e!r}")
            return None
        if status not in expect:
            self.stats.error(f"{kind}:{status}", f"{method} {path}: {status} {data[:300]!r}")
            return None
        doc = None
        if check is not None:
            try:
                doc = json.loads(data)
            except ValueError as e:
                problem = f"not JSON: {e}"
            else:
                try:
                    problem = check(doc)
                except Exception as e:  # a body of another shape
                    problem = f"{type(e).__name__}: {e}"
            if problem:
                self.stats.error(f"{kind}:bad-body", f"{method} {path}: {problem}: {data[:300]!r}")
                return None
        self.stats.ok(kind, dt, deliberate)
        return doc

    # ---- workloads --------------------------------------------------------------------------

    def w_k8s_get(self):
        conn = self.Conn(self)
        for _ in self.paced(RATES["k8s_get"] * self.args.rate_scale):
            name = f"soak-read-{random.randrange(READ_SECRETS)}"
            self.call(conn, "k8s_get", "GET", f"/api/v1/namespaces/{NS}/secrets/{name}", headers=self.k8s_headers(),
                      check=lambda d, n=name: None if d.get("metadata", {}).get("name") == n and d.get("data", {}).get("value")
                      else "not the Secret asked for")
        conn.close()

    def w_k8s_write(self):
        conn = self.Conn(self)
        exists = [False] * WRITE_SECRETS
        base = f"/api/v1/namespaces/{NS}/secrets"
        for _ in self.paced(RATES["k8s_write"] * self.args.rate_scale):
            i = random.randrange(WRITE_SECRETS)
            name = f"soak-w-{i}"
            body = json.dumps({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "labels": {"soak": "w"}},
                               "data": {"value": value_1k()}})
            if not exists[i]:
                ok = self.call(conn, "k8s_write", "POST", base, body, self.k8s_headers(True), expect=(201,),
                               check=lambda d: None if d.get("kind") == "Secret" else "not a Secret")
                exists[i] = True
            elif random.random() < 0.75:
                ok = self.call(conn, "k8s_write", "PUT", f"{base}/{name}", body, self.k8s_headers(True), expect=(200,),
                               check=lambda d: None if d.get("kind") == "Secret" else "not a Secret")
            else:
                ok = self.call(conn, "k8s_write", "DELETE", f"{base}/{name}", None, self.k8s_headers(), expect=(200,),
                               check=lambda d: None if d.get("kind") in ("Secret", "Status") else "not a Secret or Status")
                exists[i] = False
            if ok is None and not self.stop.is_set():
                # After an unexpected answer learn the truth, so that one error does not cascade.
                try:
                    status, _, _, _ = conn.request("GET", f"{base}/{name}", headers=self.k8s_headers())
                    exists[i] = status == 200
                except (OSError, http.client.HTTPException):
                    pass
        conn.close()

    def w_list(self):
        conn = self.Conn(self)
        base = f"/api/v1/namespaces/{NS}/secrets"

        def is_list(d):
            return None if d.get("kind") == "SecretList" and isinstance(d.get("items"), list) else "not a SecretList"

        for n, _ in enumerate(self.paced(RATES["list"] * self.args.rate_scale)):
            if n % 2 == 0:
                d = self.call(conn, "list", "GET", base, headers=self.k8s_headers(), check=is_list)
                if d is not None and sum(1 for it in d["items"] if it["metadata"]["name"].startswith("soak-read-")) != READ_SECRETS:
                    self.stats.error("list:incomplete", f"GET {base}: {len(d['items'])} items, not every soak-read-*")
                continue
            # Paginated, as kubectl get --chunk-size does.
            cont, pages, names = "", 0, 0
            while not self.stop.is_set():
                q = "?limit=25" + ("&continue=" + urllib.parse.quote(cont) if cont else "")
                d = self.call(conn, "list", "GET", base + q, headers=self.k8s_headers(), check=is_list)
                if d is None:
                    break
                pages += 1
                names += sum(1 for it in d["items"] if it["metadata"]["name"].startswith("soak-read-"))
                cont = d.get("metadata", {}).get("continue", "")
                if not cont:
                    if names != READ_SECRETS:
                        self.stats.error("list:incomplete", f"paginated list: {names} soak-read-* in {pages} pages")
                    break
                if pages > 100:
                    self.stats.error("list:endless", "paginated list: more than 100 pages")
                    break
        conn.close()

    def w_vault_read(self):
        conn = self.Conn(self)

        def has_value(d):
            return None if (d.get("data") or {}).get("data", {}).get("value") else "no data.data.value"

        for _ in self.paced(RATES["vault_read"] * self.args.rate_scale):
            if random.random() < 0.25:
                path = f"/v1/kubernetes/data/{NS}/soak-read-{random.randrange(READ_SECRETS)}"
            else:
                path = f"/v1/secret/data/soak-{random.randrange(VAULT_KEYS)}"
            self.call(conn, "vault_read", "GET", path, headers=self.vault_headers(), check=has_value)
        conn.close()

    def w_vault_write(self):
        conn = self.Conn(self)
        for _ in self.paced(RATES["vault_write"] * self.args.rate_scale):
            path = f"/v1/secret/data/soak-{random.randrange(VAULT_KEYS)}"
            self.call(conn, "vault_write", "POST", path, json.dumps({"data": {"value": value_1k()}}), self.vault_headers(),
                      check=lambda d: None if (d.get("data") or {}).get("version") else "no data.version")
        conn.close()

    def w_churn(self):
        for n, _ in enumerate(self.paced(RATES["churn"] * self.args.rate_scale)):
            conn = self.Conn(self, keepalive=False)
            t0 = time.monotonic()
            try:
                conn.c = self.connect()  # the handshake counts in this workload's latency
            except (OSError, http.client.HTTPException) as e:
                self.stats.error(f"churn:{type(e).__name__}", f"connect: {e!r}")
                continue
            if n % 2 == 0:
                path, h = f"/api/v1/namespaces/{NS}/secrets/soak-read-{random.randrange(READ_SECRETS)}", self.k8s_headers()
            else:
                path, h = f"/v1/secret/data/soak-{random.randrange(VAULT_KEYS)}", self.vault_headers()
            try:
                status, data, _, _ = conn.request("GET", path, headers=h)
            except (OSError, http.client.HTTPException) as e:
                self.stats.error(f"churn:{type(e).__name__}", f"GET {path}: {e!r}")
                continue
            finally:
                conn.close()
            if status != 200:
                self.stats.error(f"churn:{status}", f"GET {path}: {status} {data[:300]!r}")
            else:
                self.stats.ok("churn", time.monotonic() - t0)

    def bad_requests(self):
        base = f"/api/v1/namespaces/{NS}/secrets"
        k8s, vault = self.k8s_headers(True), self.vault_headers()
        return [
            ("k8s_malformed_json", "POST", base, '{"metadata": {"name": ', k8s, 400),
            ("k8s_invalid_name", "POST", base, json.dumps({"metadata": {"name": "Bad_Name!"}, "data": {}}), k8s, 422),
            ("k8s_unknown_resource", "GET", f"/api/v1/namespaces/{NS}/nothings", None, k8s, 404),
            ("k8s_missing_secret", "GET", f"{base}/no-such-secret", None, k8s, 404),
            ("unknown_path", "GET", "/no/such/path", None, k8s, 404),
            ("vault_unknown_mount", "GET", "/v1/no-such-mount/data/x", None, vault, 404),
            ("vault_missing_key", "GET", "/v1/secret/data/no-such-key", None, vault, 404),
            ("vault_malformed_json", "POST", "/v1/secret/data/soak-bad", "{bad json", vault, 400),
        ]

    def w_bad(self):
        conn = self.Conn(self)
        reqs = self.bad_requests()
        for n, _ in enumerate(self.paced(RATES["bad"] * self.args.rate_scale)):
            if n % (len(reqs) + 1) == len(reqs):
                self.malformed_http()
                continue
            kind, method, path, body, headers, expect = reqs[n % (len(reqs) + 1)]
            self.call(conn, kind, method, path, body, headers, expect=(expect,), deliberate=True)
        conn.close()

    def malformed_http(self):
        """Garbage where a request line should be: 400. (The server then reads and discards
        until the client closes, so read one response and close.)"""
        try:
            raw = socket.create_connection((self.host, self.port), timeout=30)
            with self.ctx.wrap_socket(raw, server_hostname=self.host) as s:
                s.sendall(b"THIS IS NOT HTTP\r\n\r\n")
                r = http.client.HTTPResponse(s, method="GET")
                r.begin()
                r.read()
                status = r.status
        except (OSError, http.client.HTTPException) as e:
            self.stats.error(f"malformed_http:{type(e).__name__}", repr(e))
            return
        if status == 400:
            self.stats.ok("malformed_http", deliberate=True)
        else:
            self.stats.error(f"malformed_http:{status}", "a request line of garbage was not answered with 400")

    def w_bad_token(self):
        """Bad credentials; the server delays these after five a minute from one address (up
        to 5 s), so they have a thread of their own."""
        conn = self.Conn(self, timeout=30)
        for n, _ in enumerate(self.paced(RATES["bad_token"] * self.args.rate_scale)):
            if n % 2 == 0:
                self.call(conn, "k8s_bad_token", "GET", f"/api/v1/namespaces/{NS}/secrets",
                          headers={"Authorization": "Bearer sgl_" + "A" * 43}, expect=(401,), deliberate=True)
            else:
                self.call(conn, "vault_bad_token", "GET", "/v1/secret/data/soak-0",
                          headers={"X-Vault-Token": "hvs." + "A" * 24}, expect=(403,), deliberate=True)
        conn.close()

    def guard(self, fn, *args):
        """Runs a workload; a bug in this script that ends it is an error, and it starts again."""
        def run():
            while not self.stop.is_set():
                try:
                    fn(*args)
                    return
                except Exception as e:
                    import traceback
                    self.stats.error(f"client:{fn.__name__}:{type(e).__name__}", traceback.format_exc()[-600:])
                    self.stop.wait(1)
        return run

    def track(self, sock, add=True):
        with self.streams_lock:
            (self.open_streams.add if add else self.open_streams.discard)(sock)

    def w_watch(self, name, path, selector, from_last):
        """A watch held open and re-opened when it ends, as client-go's reflector does: list,
        then watch from the list's resourceVersion, then from the last event's; re-list on 410.
        With from_last False every watch starts without a resourceVersion (initial ADDEDs)."""
        kind = "watch"
        rv = None
        stall = 70  # seconds without a byte: bookmarks come every minute, writes far more often
        while not self.stop.is_set():
            q = {}
            if selector:
                q["labelSelector"] = selector
            if from_last and rv is None:
                conn = self.Conn(self)
                d = self.call(conn, "watch_list", "GET", path + ("?" + urllib.parse.urlencode(q) if q else ""),
                              headers=self.k8s_headers(), check=lambda d: None if "items" in d else "not a list")
                conn.close()
                if d is None:
                    self.stop.wait(1)
                    continue
                rv = d["metadata"]["resourceVersion"]
            timeout = random.randint(30, 90)
            q.update({"watch": "true", "timeoutSeconds": str(timeout), "allowWatchBookmarks": "true"})
            if from_last:
                q["resourceVersion"] = rv
            target = path + "?" + urllib.parse.urlencode(q)
            t0 = time.monotonic()
            try:
                c = http.client.HTTPSConnection(self.host, self.port, context=self.ctx, timeout=stall)
                c.connect()
            except OSError as e:
                self.stats.error(f"{kind}:{type(e).__name__}", f"{name}: connect: {e!r}")
                self.stop.wait(1)
                continue
            sock = c.sock
            self.track(sock)
            events, expired, ended = 0, False, "eof"
            try:
                c.request("GET", target, headers=self.k8s_headers())
                r = c.getresponse()
                if r.status != 200:
                    self.stats.error(f"{kind}:{r.status}", f"{name}: GET {target}: {r.status} {r.read()[:300]!r}")
                    self.stop.wait(1)
                    continue
                self.stats.ok(kind)
                while True:
                    line = r.readline()
                    if not line:
                        break
                    if not line.strip():
                        continue
                    ev = json.loads(line)
                    t = ev.get("type")
                    if t == "ERROR":
                        code = (ev.get("object") or {}).get("code")
                        if code == 410:
                            expired = True  # history no longer kept: re-list, as a reflector does
                            continue
                        self.stats.error(f"{kind}:ERROR-event", f"{name}: {line[:300]!r}")
                        continue
                    if t not in ("ADDED", "MODIFIED", "DELETED", "BOOKMARK"):
                        self.stats.error(f"{kind}:bad-event", f"{name}: {line[:300]!r}")
                        continue
                    events += 1
                    if t == "BOOKMARK":
                        self.stats.note("watch bookmarks")
                    obj_rv = ((ev.get("object") or {}).get("metadata") or {}).get("resourceVersion")
                    if obj_rv:
                        rv = obj_rv
            except (OSError, http.client.HTTPException, ValueError) as e:
                ended = e
            finally:
                self.track(sock, add=False)
                c.close()
            self.stats.note("watch events", events)
            if self.stop.is_set():
                break
            elapsed = time.monotonic() - t0
            if ended != "eof":
                if isinstance(ended, (socket.timeout, TimeoutError)):
                    self.stats.error(f"{kind}:stalled", f"{name}: no byte for {stall} s ({events} events)")
                else:
                    self.stats.error(f"{kind}:{type(ended).__name__}", f"{name}: after {elapsed:.1f} s, {events} events: {ended!r}")
            elif expired:
                self.stats.note("watch 410 Expired (re-listed)")
                rv = None
            elif elapsed < timeout - 3:
                self.stats.error(f"{kind}:ended-early", f"{name}: ended after {elapsed:.1f} s of timeoutSeconds={timeout}")
            else:
                self.stats.note("watches ended by timeoutSeconds")

    def w_slow(self):
        """Sends a request's headers a byte a second. The server must cut the connection off
        (its read deadlines); an answer, or no cut before the request is complete, is an error."""
        pad = "x" * 400
        req = (f"GET /version HTTP/1.1\r\nHost: {self.host}\r\nUser-Agent: sigil-soak-slowloris\r\n"
               f"X-Padding: {pad}\r\n\r\n").encode()
        while not self.stop.is_set():
            try:
                raw = socket.create_connection((self.host, self.port), timeout=30)
                s = self.ctx.wrap_socket(raw, server_hostname=self.host)
            except (OSError, ssl.SSLError) as e:
                self.stats.error(f"slow:{type(e).__name__}", f"connect: {e!r}")
                self.stop.wait(1)
                continue
            self.track(s)
            s.settimeout(1.0)
            t0 = time.monotonic()
            cut, answer = None, b""
            try:
                for i in range(len(req)):
                    if self.stop.is_set():
                        break
                    try:
                        s.sendall(req[i:i + 1])
                    except (OSError, ssl.SSLError) as e:
                        cut = f"send: {type(e).__name__}"
                        break
                    try:
                        data = s.recv(4096)  # waits up to 1 s: the pace
                    except (socket.timeout, TimeoutError):
                        continue
                    except (OSError, ssl.SSLError) as e:
                        cut = f"recv: {type(e).__name__}"
                        break
                    if not data:
                        cut = "eof"
                        break
                    answer = data
                    break
                else:
                    answer = answer or b"(nothing yet: the whole request was sent)"
            finally:
                self.track(s, add=False)
                try:
                    s.close()
                except OSError:
                    pass
            elapsed = time.monotonic() - t0
            if self.stop.is_set():
                break
            if cut is not None:
                with self.stats.lock:
                    self.stats.slow_cuts.append(elapsed)
                self.stats.ok("slow_client_cut", deliberate=True)
                self.stats.note(f"slow client cut ({cut})")
            else:
                self.stats.error("slow:not-cut", f"after {elapsed:.0f} s and {i + 1} bytes the server answered: {answer[:200]!r}")
            self.stop.wait(1)

    # ---- sampling ---------------------------------------------------------------------------

    def proc_sample(self):
        pid = self.proc.pid
        st = {}
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                k, _, v = line.partition(":")
                st[k] = v.strip()
        kib = lambda k: int(st.get(k, "0 kB").split()[0])  # noqa: E731
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        return {"rss_kib": kib("VmRSS"), "rss_anon_kib": kib("RssAnon"), "rss_file_kib": kib("RssFile"),
                "fds": len(os.listdir(f"/proc/{pid}/fd")), "threads": int(st.get("Threads", 0)), "cpu_s": cpu}

    def metrics(self):
        """The server's own counters: open connections, answers by code, commit failures."""
        try:
            c = self.connect(timeout=30)
            try:
                c.request("GET", "/metrics", headers=self.k8s_headers())
                r = c.getresponse()
                text = r.read().decode()
            finally:
                c.close()
        except (OSError, http.client.HTTPException) as e:
            self.stats.error(f"metrics:{type(e).__name__}", repr(e))
            return None
        if r.status != 200:
            self.stats.error(f"metrics:{r.status}", text[:300])
            return None
        m = {"codes": collections.Counter()}
        for line in text.splitlines():
            g = re.match(r'sigil_http_requests_total\{code="(\d+)",method="(\w+)"\} (\d+)', line)
            if g:
                m["codes"][int(g.group(1))] += int(g.group(3))
            g = re.match(r"(sigil_http_open_connections|sigil_storage_commit_failures_total) (\S+)", line)
            if g:
                m[g.group(1)] = float(g.group(2))
        return m

    def store_kib(self):
        if not self.store_dir or not os.path.isdir(self.store_dir):
            return 0
        total = 0
        for dirpath, _, files in os.walk(self.store_dir):
            for f in files:
                try:
                    total += os.stat(os.path.join(dirpath, f)).st_blocks * 512
                except OSError:
                    pass
        return total // 1024

    # ---- the run ----------------------------------------------------------------------------

    def run(self):
        a = self.args
        duration = a.minutes * 60
        warm = min(300.0, duration / 3)
        self.start_server()
        self.setup()
        workers = [threading.Thread(target=self.guard(f), name=f.__name__, daemon=True) for f in
                   (self.w_k8s_get, self.w_k8s_write, self.w_list, self.w_vault_read, self.w_vault_write,
                    self.w_churn, self.w_bad, self.w_bad_token)]
        streams = [threading.Thread(target=self.guard(self.w_watch, *args), name="watch-" + args[0], daemon=True) for args in
                   (("soak-reflector", f"/api/v1/namespaces/{NS}/secrets", None, True),
                    ("all-namespaces", "/api/v1/secrets", None, False),
                    ("soak-labelled", f"/api/v1/namespaces/{NS}/secrets", "soak=w", True))]
        streams.append(threading.Thread(target=self.guard(self.w_slow), name="slow", daemon=True))
        print(f"load for {a.minutes:g} min (warm-up {warm / 60:.1f} min), rate scale {a.rate_scale:g}; "
              f"samples every {SAMPLE_SECONDS} s; output in {a.out}", flush=True)
        t_start = time.monotonic()
        ps = self.proc_sample()
        samples = [dict(t_s=0.0, **{k: v for k, v in ps.items() if k != "cpu_s"}, cpu_pct=None, connections=0,
                        store_kib=self.store_kib(), requests=0, errors=0,
                        **{f"{w}_{x}": None for w in LATENCY for x in ("n", "p50_ms", "p99_ms")})]
        print(f"  {0:6.0f} s  rss {ps['rss_kib'] / 1024:7.1f} MiB (anon {ps['rss_anon_kib'] / 1024:6.1f})"
              f"  fds {ps['fds']:4d}  (after setup, before the load)", flush=True)
        last_cpu, last_t = ps["cpu_s"], t_start
        client_cpu0 = sum(os.times()[:2])
        for t in workers + streams:
            t.start()
        died = False
        try:
            k = 0
            while True:
                k += 1
                target = t_start + k * SAMPLE_SECONDS
                while time.monotonic() < target:
                    time.sleep(min(1.0, target - time.monotonic()))
                    if self.proc.poll() is not None:
                        break
                if self.proc.poll() is not None:
                    self.stats.error("server:died", f"exit status {self.proc.returncode} at {time.monotonic() - t_start:.0f} s")
                    died = True
                    break
                now = time.monotonic()
                ps = self.proc_sample()
                lat, nreq, nerr = self.stats.take_window()
                m = self.metrics() or {}
                cpu_pct = 100.0 * (ps["cpu_s"] - last_cpu) / (now - last_t) if last_cpu is not None else None
                last_cpu, last_t = ps["cpu_s"], now
                row = dict(t_s=round(now - t_start, 1), **{k2: v for k2, v in ps.items() if k2 != "cpu_s"},
                           cpu_pct=None if cpu_pct is None else round(cpu_pct, 1),
                           connections=int(m.get("sigil_http_open_connections", 0)), store_kib=self.store_kib(),
                           requests=nreq, errors=nerr)
                for w in LATENCY:
                    n, p50, p99 = lat[w]
                    row[f"{w}_n"] = n
                    row[f"{w}_p50_ms"] = None if p50 is None else round(p50 * 1000, 2)
                    row[f"{w}_p99_ms"] = None if p99 is None else round(p99 * 1000, 2)
                samples.append(row)
                self.last_metrics = m or getattr(self, "last_metrics", {})
                print(f"  {row['t_s']:6.0f} s  rss {row['rss_kib'] / 1024:7.1f} MiB (anon {row['rss_anon_kib'] / 1024:6.1f})"
                      f"  fds {row['fds']:4d}  conns {row['connections']:3d}  cpu {row['cpu_pct'] or 0:5.1f}%"
                      f"  {nreq / SAMPLE_SECONDS:6.1f} req/s  errors {nerr}"
                      f"  p99 get {row['k8s_get_p99_ms']} ms, write {row['k8s_write_p99_ms']} ms", flush=True)
                if now - t_start >= duration - 0.5:
                    break
        finally:
            self.client_cpu_pct = 100.0 * (sum(os.times()[:2]) - client_cpu0) / max(1.0, time.monotonic() - t_start)
            self.stop.set()
            for t in workers:
                t.join(timeout=30)
            with self.streams_lock:
                socks = list(self.open_streams)
            for s in socks:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            for t in streams:
                t.join(timeout=10)
            stuck = [t.name for t in workers + streams if t.is_alive()]
            if stuck:
                self.stats.error("client:stuck", f"threads still running at the end: {stuck}")
            final_metrics = self.metrics() if not died and self.proc.poll() is None else None
            code = self.stop_server()
            shutil.rmtree(self.tmp, ignore_errors=True)
        return samples, warm, duration, final_metrics or getattr(self, "last_metrics", {}), code, died

    def report(self, samples, warm, duration, final_metrics, code, died):
        s = self.stats
        if code != 0 and not died:
            s.error("server:exit", f"exit status {code} after SIGTERM" if code is not None else "did not stop in 40 s: killed")
        server_5xx = {c: n for c, n in (final_metrics or {}).get("codes", {}).items() if c >= 500}
        if server_5xx:
            s.error("server:5xx", f"the server's /metrics counts 5xx answers: {server_5xx}")
        if (final_metrics or {}).get("sigil_storage_commit_failures_total"):
            s.error("server:commit-failures", f"{final_metrics['sigil_storage_commit_failures_total']:.0f}")
        with open(self.err_path) as f:
            log = f.read().splitlines()

        write_csv(os.path.join(self.args.out, "samples.csv"), samples)
        png = os.path.join(self.args.out, "soak.png")
        plot(png, samples, warm, self.args)

        print()
        print(f"== sigil soak: {self.args.minutes:g} min, rate scale {self.args.rate_scale:g}, {os.cpu_count()} cores, "
              f"binary {self.args.bin}")
        ok_growth = False
        after = [r for r in samples if r["t_s"] >= warm - 0.5]
        if after and len(samples) >= 3:
            base, end = after[0], samples[-1]
            peak = max(after, key=lambda r: r["rss_kib"])
            growth = 100.0 * (end["rss_kib"] - base["rss_kib"]) / base["rss_kib"]
            ok_growth = growth <= GROWTH_LIMIT_PCT
            print(f"RSS at {base['t_s'] / 60:.1f} min (end of warm-up): {base['rss_kib'] / 1024:.1f} MiB "
                  f"(anon {base['rss_anon_kib'] / 1024:.1f}, file {base['rss_file_kib'] / 1024:.1f})")
            print(f"RSS at end ({end['t_s'] / 60:.1f} min): {end['rss_kib'] / 1024:.1f} MiB "
                  f"(anon {end['rss_anon_kib'] / 1024:.1f}, file {end['rss_file_kib'] / 1024:.1f}); "
                  f"peak after warm-up {peak['rss_kib'] / 1024:.1f} MiB at {peak['t_s'] / 60:.1f} min")
            print(f"RSS growth after warm-up: {growth:+.2f} % (limit {GROWTH_LIMIT_PCT:g} %)")
            print(f"RSS after setup, before the load: {samples[0]['rss_kib'] / 1024:.1f} MiB")
            print(f"fds: {base['fds']} at warm-up, {end['fds']} at end (max {max(r['fds'] for r in samples)}); "
                  f"threads {end['threads']}; store {end['store_kib'] / 1024:.1f} MiB on disk at end")
            cpu = [r["cpu_pct"] for r in samples if r["cpu_pct"] is not None]
            if cpu:
                print(f"server CPU: mean {sum(cpu) / len(cpu):.0f} % of one core (max {max(cpu):.0f} %); "
                      f"this script: {getattr(self, 'client_cpu_pct', 0):.0f} % of one core")
            for w in LATENCY:
                p99s = [r[f"{w}_p99_ms"] for r in after if r[f"{w}_p99_ms"] is not None]
                p50s = [r[f"{w}_p50_ms"] for r in after if r[f"{w}_p50_ms"] is not None]
                if p99s:
                    print(f"  {w:12s} after warm-up: p50 median {sorted(p50s)[len(p50s) // 2]:.2f} ms; "
                          f"p99 per 10 s: median {sorted(p99s)[len(p99s) // 2]:.2f} ms, worst {max(p99s):.2f} ms")
        else:
            print("too few samples for a growth figure")
        elapsed = samples[-1]["t_s"] if samples else 1
        print("requests answered as expected: " + ", ".join(f"{k} {v} ({v / elapsed:.1f}/s)" for k, v in sorted(s.requests.items())))
        print("deliberate bad requests answered as expected (4xx / cut): "
              + ", ".join(f"{k} {v}" for k, v in sorted(s.deliberate.items())))
        if s.slow_cuts:
            print(f"slow client: cut {len(s.slow_cuts)} times, {min(s.slow_cuts):.0f}-{max(s.slow_cuts):.0f} s after its first byte")
        print("notes: " + ", ".join(f"{k} {v}" for k, v in sorted(s.notes.items())))
        if final_metrics:
            print("server's /metrics, answers by code: " + ", ".join(f"{c} {n}" for c, n in sorted(final_metrics["codes"].items())))
        print(f"server exit status after SIGTERM: {code}; {len(log)} lines on its stderr (log level warn)"
              + (" (first ones below)" if log else ""))
        for line in log[:10]:
            print("  | " + line[:300])
        total_err = sum(s.errors.values())
        print(f"unexpected errors: {total_err}" + (" (" + ", ".join(f"{k} {v}" for k, v in sorted(s.errors.items())) + ")" if total_err else ""))
        for when, kind, detail in s.examples[:10]:
            print(f"  {when} {kind}: {detail}")
        print(f"wrote {os.path.join(self.args.out, 'samples.csv')} and {png}")
        passed = ok_growth and total_err == 0 and not died
        reasons = []
        if not ok_growth:
            reasons.append(f"RSS growth above {GROWTH_LIMIT_PCT:g} %")
        if total_err:
            reasons.append(f"{total_err} unexpected errors")
        print("PASS" if passed else "FAIL: " + "; ".join(reasons))
        return passed


def write_csv(path, samples):
    if not samples:
        return
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(samples[0].keys()))
        w.writeheader()
        for r in samples:
            w.writerow({k: "" if v is None else v for k, v in r.items()})


def import_pyplot():
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        return plt
    except ImportError:
        return None


def plot(path, samples, warm, args):
    plt = import_pyplot()
    if plt is None or not samples:
        return
    t = [r["t_s"] / 60 for r in samples]
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(10, 7.5), sharex=True)
    ax1.plot(t, [r["rss_kib"] / 1024 for r in samples], label="VmRSS")
    ax1.plot(t, [r["rss_anon_kib"] / 1024 for r in samples], "--", label="RssAnon")
    ax1.plot(t, [r["rss_file_kib"] / 1024 for r in samples], ":", label="RssFile (LMDB map, binary)")
    after = [r for r in samples if r["t_s"] >= warm - 0.5]
    if after:
        limit = after[0]["rss_kib"] * (1 + GROWTH_LIMIT_PCT / 100) / 1024
        ax1.axhline(limit, color="red", linewidth=0.8, label=f"warm-up RSS + {GROWTH_LIMIT_PCT:g} %")
    for ax in (ax1, ax2):
        ax.axvline(warm / 60, color="grey", linewidth=0.8, linestyle="--")
        ax.grid(True, alpha=0.3)
    ax1.set_ylabel("MiB")
    ax1.set_ylim(bottom=0)
    ax1.set_title(f"sigil soak: server memory ({args.minutes:g} min, warm-up to the dashed line)")
    ax1.legend(loc="lower right", fontsize=8)
    top = 0
    for w in LATENCY:
        pts = [(x, r[f"{w}_p99_ms"]) for x, r in zip(t, samples) if r[f"{w}_p99_ms"] is not None]
        if pts:
            ax2.plot([p[0] for p in pts], [p[1] for p in pts], label=w, linewidth=1)
            top = max(top, max(p[1] for p in pts))
    ax2.set_yscale("log")
    if top:
        ax2.set_ylim(top=top * 4)  # room for the legend
    ax2.set_ylabel("p99 per 10 s window, ms")
    ax2.set_xlabel("minutes")
    ax2.set_title("p99 latency seen by the clients (churn: with the TLS handshake)")
    ax2.legend(loc="upper center", fontsize=8, ncol=len(LATENCY))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, default=30)
    p.add_argument("--bin", default=os.path.join(ROOT, "build", "bin", "sigil"))
    p.add_argument("--out", default=None, help="output directory (default: a new /tmp/sigil-soak-*)")
    p.add_argument("--rate-scale", type=float, default=1.0, help="multiplies every workload's request rate")
    p.add_argument("--config", default=None, help="a server config file (limits, storage...) for the dev server")
    a = p.parse_args()
    if import_pyplot() is None:
        print("soak.png needs matplotlib: apt-get install -y python3-matplotlib (then run with /usr/bin/python3)",
              file=sys.stderr)
        return 2
    if not os.access(a.bin, os.X_OK):
        print(f"no sigil binary at {a.bin} (build it, or pass --bin)", file=sys.stderr)
        return 2
    a.bin = os.path.abspath(a.bin)
    if a.minutes * 60 < 3 * SAMPLE_SECONDS:
        print("--minutes: at least 0.5", file=sys.stderr)
        return 2
    if a.out is None:
        a.out = tempfile.mkdtemp(prefix="sigil-soak-")
    os.makedirs(a.out, exist_ok=True)
    soak = Soak(a)
    try:
        result = soak.run()
    except BaseException:
        soak.stop.set()
        soak.stop_server()
        if getattr(soak, "tmp", None):
            shutil.rmtree(soak.tmp, ignore_errors=True)
        raise
    return 0 if soak.report(*result) else 1


if __name__ == "__main__":
    sys.exit(main())
