"""Shutdown with watches: SIGTERM while watches open, end, and are abandoned by their clients
must exit 0 (regression: the server aborted with a double free at exit when a watch's client
left before the watch had registered its end-of-stream callback; test_watches_end_cleanly
caught it intermittently under load)."""
import socket
import ssl
import threading
import time

import requests


def _abandon_watch(s, path):
    """Sends a watch request and closes the connection as soon as the answer's header arrives."""
    ctx = ssl.create_default_context(cafile=s.ca)
    host, port = s.url.split("//")[1].rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname=host) as tls:
            tls.sendall((f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: {s.auth['Authorization']}\r\n\r\n").encode())
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = tls.recv(4096)
                if not chunk:
                    break
                head += chunk
            assert head.startswith(b"HTTP/1.1 200"), head[:200]


def test_sigterm_after_abandoned_and_open_watches_exits_cleanly(start_server):
    s = start_server(["--dev", "--listen", "127.0.0.1:0"])
    paths = ["/api/v1/secrets?watch=true", "/api/v1/namespaces/default/secrets?watch=true&allowWatchBookmarks=true",
             "/api/v1/namespaces?watch=true&resourceVersion=0"]
    threads = [threading.Thread(target=lambda i=i: [_abandon_watch(s, paths[(i + j) % 3]) for j in range(10)])
               for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    open_watches = [requests.get(s.url + p, verify=s.ca, headers=s.auth, stream=True, timeout=10) for p in paths]
    start = time.time()
    assert s.stop() == 0, s.logs()
    assert time.time() - start < 10
    for r in open_watches:
        r.close()
