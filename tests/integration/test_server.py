"""The sigil binary through its public interface: start-up, TLS, health endpoints, limits,
slow clients, graceful shutdown, and clear refusals on bad configuration."""
import json
import os
import signal
import socket
import ssl
import stat
import subprocess
import threading
import time

import pytest
import requests

from conftest import SIGIL, readline, run


def write(path, text, mode=0o600):
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)
    return path


def prod_config(workdir, key_file, extra=""):
    return write(os.path.join(workdir, "sigil.yaml"),
                 f"listen: 127.0.0.1:0\ndata_dir: {workdir}/data\nseal: {{type: key-file, key_file: {key_file}}}\n" + extra)


def test_dev_server_serves_kubernetes_version_over_verified_tls(start_server):
    s = start_server(["--dev", "--listen", "127.0.0.1:0"])
    r = requests.get(s.url + "/version", verify=s.ca, timeout=5)
    assert r.status_code == 200
    v = r.json()
    assert (v["major"], v["minor"]) == ("1", "32") and v["gitVersion"].startswith("v1.32.")
    for path in ("/healthz", "/livez", "/readyz"):
        assert requests.get(s.url + path, verify=s.ca, timeout=5).text == "ok"
    assert "[+]storage ok" in requests.get(s.url + "/readyz?verbose", verify=s.ca, timeout=5).text
    metrics = requests.get(s.url + "/metrics", verify=s.ca, headers=s.auth, timeout=5).text
    assert "sigil_http_requests_total" in metrics and "# TYPE sigil_http_request_duration_seconds histogram" in metrics
    # Plain HTTP is not served.
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(f"http://127.0.0.1:{s.port}/version", timeout=5)


def test_unknown_paths_get_api_error_formats(start_server):
    s = start_server(["--dev", "--listen", "127.0.0.1:0"])
    r = requests.get(s.url + "/api/v1/namespaces/default/secrets/x", verify=s.ca, headers=s.auth, timeout=5)
    assert r.status_code == 404
    assert r.json()["kind"] == "Status" and r.json()["reason"] == "NotFound"
    r = requests.get(s.url + "/v1/secret/data/x", verify=s.ca, headers=s.auth, timeout=5)
    assert r.status_code == 404 and "errors" in r.json()


def test_dev_mode_leaves_nothing_behind_and_disables_core_dumps(start_server):
    s = start_server(["--dev", "--listen", "127.0.0.1:0"])
    dev_dir = os.path.dirname(s.ca)
    assert os.path.isdir(dev_dir)
    with open(f"/proc/{s.proc.pid}/limits") as f:
        core = [l for l in f if l.startswith("Max core file size")][0].split()
    assert core[4:6] == ["0", "0"]
    assert s.stop() == 0
    assert not os.path.exists(dev_dir)


def test_production_start_restart_and_private_files(workdir, key_file, start_server):
    old = os.umask(0)
    try:
        s = start_server(["--config", prod_config(workdir, key_file)])
    finally:
        os.umask(old)
    assert requests.get(s.url + "/readyz", verify=s.ca, timeout=5).text == "ok"
    assert s.stop() == 0
    data = os.path.join(workdir, "data")
    for root, dirs, files in os.walk(data):
        for d in dirs:
            assert stat.S_IMODE(os.stat(os.path.join(root, d)).st_mode) == 0o700, d
        for f in files:
            mode = stat.S_IMODE(os.stat(os.path.join(root, f)).st_mode)
            allowed = {0o644} if f.endswith(".crt") else {0o600}
            assert mode in allowed, (f, oct(mode))
    # The same store and generated certificate serve again after a restart.
    s2 = start_server(["--config", prod_config(workdir, key_file)])
    assert requests.get(s2.url + "/readyz", verify=s2.ca, timeout=5).text == "ok"


@pytest.mark.parametrize("case", ["world_readable_key", "missing_key", "short_key", "wrong_key",
                                  "bad_yaml", "unknown_key", "no_data_dir", "bad_encryption_config"])
def test_bad_configuration_is_refused_clearly(workdir, key_file, case):
    cfg = prod_config(workdir, key_file)
    expect = ""
    if case == "world_readable_key":
        os.chmod(key_file, 0o644)
        expect = "must not be accessible to group or others"
    elif case == "missing_key":
        cfg = prod_config(workdir, os.path.join(workdir, "nope.key"))
        expect = "No such file"
    elif case == "short_key":
        write(key_file, "c2hvcnQ=\n")
        expect = "root key must be 32 bytes"
    elif case == "wrong_key":
        r = subprocess.Popen([SIGIL, "server", "--config", cfg], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            readline(r.stdout, timeout=20, what="the first start's first line")
        finally:
            r.send_signal(signal.SIGTERM)
            r.wait(timeout=20)
        os.unlink(key_file)
        run([SIGIL, "operator", "generate-root-key", "--out", key_file])
        expect = "cannot be decrypted with this root key"
    elif case == "bad_yaml":
        cfg = write(os.path.join(workdir, "bad.yaml"), "listen: [unclosed\n")
        expect = "config:"
    elif case == "unknown_key":
        cfg = prod_config(workdir, key_file, "lisen: 1\n")
        expect = 'unknown key "lisen"'
    elif case == "no_data_dir":
        cfg = write(os.path.join(workdir, "nodata.yaml"), f"seal: {{key_file: {key_file}}}\n")
        expect = "data_dir is required"
    elif case == "bad_encryption_config":
        enc = write(os.path.join(workdir, "enc.yaml"),
                    "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n"
                    "  - resources: [secrets]\n    providers:\n      - aesgcm:\n          keys:\n"
                    "            - name: k\n              secret: dG9vc2hvcnQ=\n")
        cfg = prod_config(workdir, key_file, f"encryption_config: {enc}\n")
        expect = "secret is not of the expected length, got 8"
    r = run([SIGIL, "server", "--config", cfg], check=False, timeout=20)
    assert r.returncode == 1, r.stdout + r.stderr
    assert expect in r.stderr, r.stderr
    assert "dG9vc2hvcnQ" not in r.stderr


def test_identity_encryption_config_warns_at_start(workdir, key_file, start_server):
    enc = write(os.path.join(workdir, "enc.yaml"),
                "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n"
                "  - resources: [secrets]\n    providers:\n      - identity: {}\n")
    s = start_server(["--config", prod_config(workdir, key_file, f"encryption_config: {enc}\n")])
    assert "PLAINTEXT" in s.logs() and "resource=secrets" in s.logs()


def test_limits_and_slow_clients(workdir, key_file, start_server):
    s = start_server(["--config", prod_config(workdir, key_file,
                                              "limits: {max_body_bytes: 1024, max_header_bytes: 4096, "
                                              "read_timeout_seconds: 2, idle_timeout_seconds: 3, handshake_timeout_seconds: 2}\n")])
    r = requests.post(s.url + "/api/v1/namespaces/default/secrets", data=b"x" * 5000, verify=s.ca, headers=s.auth, timeout=5)
    assert r.status_code == 413 and r.json()["reason"] == "RequestEntityTooLarge"
    r = requests.get(s.url + "/version", headers={"X-Big": "h" * 8000}, verify=s.ca, timeout=5)
    assert r.status_code == 431
    ctx = ssl.create_default_context(cafile=s.ca)

    def slow_client():
        # Sends half a request and stalls (slowloris): the server must hang up.
        raw = socket.create_connection(("127.0.0.1", s.port))
        tls = ctx.wrap_socket(raw, server_hostname="127.0.0.1")
        tls.sendall(b"GET /version HTTP/1.1\r\nHost: x\r\n")
        tls.settimeout(10)
        start = time.time()
        try:
            data = tls.recv(100)
        except (ConnectionResetError, ssl.SSLError):
            data = b""
        return time.time() - start, data

    elapsed, data = slow_client()
    assert data == b"" and elapsed < 6, (elapsed, data)
    # A client that connects and never starts TLS is dropped after the handshake deadline.
    raw = socket.create_connection(("127.0.0.1", s.port))
    raw.settimeout(10)
    start = time.time()
    assert raw.recv(10) == b"" and time.time() - start < 6
    # Meanwhile other clients are served.
    assert requests.get(s.url + "/version", verify=s.ca, timeout=5).status_code == 200


def test_graceful_shutdown_finishes_and_exits_zero(start_server):
    s = start_server(["--dev", "--listen", "127.0.0.1:0"])
    session = requests.Session()
    assert session.get(s.url + "/version", verify=s.ca, timeout=5).status_code == 200  # idle keep-alive conn
    start = time.time()
    assert s.stop() == 0
    # Idle connections do not hold shutdown up: one that did would hold it for the 20 s grace
    # period. (The bound leaves room for a sanitized build's exit-time leak scan.)
    assert time.time() - start < 12
    assert "stopped" in s.logs()


def test_json_logs(start_server):
    s = start_server(["--dev", "--listen", "127.0.0.1:0", "--log-format", "json", "--log-level", "debug"])
    requests.get(s.url + "/version", verify=s.ca, timeout=5)
    s.stop()
    lines = [json.loads(l) for l in s.logs().splitlines() if l.strip()]
    assert any(l["msg"] == "sigil server started" for l in lines)
    assert any(l["msg"] == "request" and l["path"] == "/version" for l in lines)


def test_offline_rotate_refused_while_running_then_works(workdir, key_file, start_server):
    cfg = prod_config(workdir, key_file)
    s = start_server(["--config", cfg])
    r = run([SIGIL, "operator", "rotate", "--config", cfg], check=False)
    assert r.returncode == 1 and "in use by another sigil process" in r.stderr
    s.stop()
    r = run([SIGIL, "operator", "rotate", "--config", cfg])
    assert "new writes use term 2" in r.stdout
    r = run([SIGIL, "operator", "rotate", "--config", cfg])
    assert "term 3" in r.stdout and "Terms: 1, 2, 3" in r.stdout
    s2 = start_server(["--config", cfg])
    assert requests.get(s2.url + "/readyz", verify=s2.ca, timeout=5).text == "ok"


def test_sigterm_right_after_start_always_drains(start_server):
    # Regression: SIGTERM was blocked only in the main thread, from Run() on; a signal sent
    # just after the "listening" line could be delivered to the storage writer thread, which
    # still had it unblocked, and kill the process (exit -15) instead of draining it.
    for _ in range(15):
        s = start_server(["--dev", "--listen", "127.0.0.1:0"])
        assert s.stop() == 0, s.logs()


def open_connections(s):
    text = requests.get(s.url + "/metrics", verify=s.ca, timeout=5, headers={"Connection": "close", **s.auth}).text
    return int([l for l in text.splitlines() if l.startswith("sigil_http_open_connections ")][0].split()[1])


def test_connections_are_released(start_server):
    # Regression: each session kept a reference to itself, so none was ever freed.
    s = start_server(["--dev", "--listen", "127.0.0.1:0"])
    for _ in range(20):
        requests.get(s.url + "/version", verify=s.ca, timeout=5, headers={"Connection": "close"})
    deadline = time.time() + 5
    while open_connections(s) > 1 and time.time() < deadline:
        time.sleep(0.1)
    assert open_connections(s) <= 1  # only the metrics request itself may still be open
