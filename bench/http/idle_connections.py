"""What held-open connections cost the server, and whether it gets the memory back.

Starts a dev server, samples its resident size (VmRSS) at each step:
  1. N plain TCP connections that never send a byte (a descriptor flood), then closed;
  2. M TLS connections that finish the handshake, make one request and stay open, then closed;
and after each close, RSS at once and again after the server's periodic malloc_trim (every 10 s).

Usage: /usr/bin/python3 bench/http/idle_connections.py [N=5000] [M=1000] [--bin build/bin/sigil]
"""
import argparse
import os
import re
import socket
import ssl
import subprocess
import tempfile
import time


def rss(pid):
    with open(f"/proc/{pid}/status") as f:
        return int(re.search(r"VmRSS:\s+(\d+) kB", f.read()).group(1)) / 1024


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("n", nargs="?", type=int, default=5000)
    ap.add_argument("m", nargs="?", type=int, default=1000)
    ap.add_argument("--bin", default="build/bin/sigil")
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="sigil-idle-")
    proc = subprocess.Popen([a.bin, "server", "--dev", "--listen", "127.0.0.1:0", "--log-level", "warn"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=dict(os.environ, TMPDIR=tmp))
    url = ca = None
    while not (url and ca):
        line = proc.stdout.readline()
        if not line:
            raise SystemExit("server did not start")
        m = re.search(r"listening on (https://\S+)", line)
        url = url or (m and m.group(1))
        m = re.search(r"CA certificate: (\S+)\)", line) or re.search(r"VAULT_CACERT=(\S+)", line)
        ca = ca or (m and m.group(1))
    port = int(url.rsplit(":", 1)[1])
    time.sleep(1)
    print(f"{'step':58} RSS MiB")
    print(f"{'started':58} {rss(proc.pid):7.1f}")
    base = rss(proc.pid)
    held = [socket.create_connection(("127.0.0.1", port)) for _ in range(a.n)]
    time.sleep(2)
    r = rss(proc.pid)
    print(f"{f'{a.n} idle TCP connections (no TLS byte)':58} {r:7.1f}   {(r - base) * 1024 / a.n:.1f} KiB each")
    for c in held:
        c.close()
    time.sleep(0.5)
    print(f"{'closed, at once':58} {rss(proc.pid):7.1f}")
    time.sleep(11)
    print(f"{'closed, after the periodic trim':58} {rss(proc.pid):7.1f}")
    base = rss(proc.pid)
    ctx = ssl.create_default_context(cafile=ca)
    tls = []
    for _ in range(a.m):
        t = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)), server_hostname="127.0.0.1")
        t.sendall(b"GET /version HTTP/1.1\r\nHost: x\r\n\r\n")
        t.recv(8192)
        tls.append(t)
    time.sleep(2)
    r = rss(proc.pid)
    print(f"{f'{a.m} TLS connections idle after one request':58} {r:7.1f}   {(r - base) * 1024 / a.m:.1f} KiB each")
    for t in tls:
        t.close()
    time.sleep(0.5)
    print(f"{'closed, at once':58} {rss(proc.pid):7.1f}")
    time.sleep(11)
    print(f"{'closed, after the periodic trim':58} {rss(proc.pid):7.1f}")
    proc.terminate()
    proc.wait()


if __name__ == "__main__":
    main()
