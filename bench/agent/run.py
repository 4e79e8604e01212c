#!/usr/bin/python3
"""sigil-agent's cost and staleness: a dev server and one agent following N Secrets through a
service account's token. Measures

  - staleness: from sending a Secret update to the agent's ..data link pointing at the new
    version (busy-polled with readlink, so the figure is not a poll interval), beside the time
    the update's own answer took, over U updates;
  - footprint: the agent's resident size (RSS, and its private and proportional parts from
    /proc/PID/smaps_rollup) after the updates, and the CPU it used while idle for I seconds.

    /usr/bin/python3 bench/agent/run.py [secrets, default 10] [updates, default 200] [idle seconds, default 60]

Prints a Markdown table for docs/benchmarks.md."""
import base64
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

import requests

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("SIGIL_BIN_DIR", os.path.join(ROOT, "build", "bin"))
N = int(sys.argv[1]) if len(sys.argv) > 1 else 10
UPDATES = int(sys.argv[2]) if len(sys.argv) > 2 else 200
IDLE = int(sys.argv[3]) if len(sys.argv) > 3 else 60


def start_server(work):
    out = open(os.path.join(work, "server.out"), "w+")
    proc = subprocess.Popen([os.path.join(BIN, "sigil"), "server", "--dev", "--listen", "127.0.0.1:0", "--log-level", "warn"],
                            stdout=out, stderr=subprocess.STDOUT, text=True)
    for _ in range(100):
        out.seek(0)
        text = out.read()
        token = re.search(r"Root token \(shown once\): (\S+)", text)
        if token:
            return (proc, re.search(r"listening on (https://\S+)", text).group(1), re.search(r"VAULT_CACERT=(\S+)", text).group(1),
                    token.group(1))
        time.sleep(0.1)
    raise SystemExit("the server did not start:\n" + text)


def cpu_ticks(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def main():
    work = tempfile.mkdtemp(prefix="sigil-agent-bench-")
    proc, url, ca, root = start_server(work)
    s = requests.Session()
    s.verify = ca
    s.trust_env = False  # REQUESTS_CA_BUNDLE would override the session's CA
    s.headers["Authorization"] = "Bearer " + root
    agent = None
    try:
        api = url + "/api/v1/namespaces/default"
        s.post(api + "/serviceaccounts", json={"metadata": {"name": "agent"}}).raise_for_status()
        s.post(url + "/apis/rbac.authorization.k8s.io/v1/namespaces/default/roles",
               json={"metadata": {"name": "r"}, "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list", "watch"]}]}
               ).raise_for_status()
        s.post(url + "/apis/rbac.authorization.k8s.io/v1/namespaces/default/rolebindings",
               json={"metadata": {"name": "r"}, "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "r"},
                     "subjects": [{"kind": "ServiceAccount", "name": "agent", "namespace": "default"}]}).raise_for_status()
        tok = s.post(api + "/serviceaccounts/agent/token", json={"spec": {"expirationSeconds": 7200}}).json()["status"]["token"]
        with open(os.path.join(work, "token"), "w") as f:
            f.write(tok)
        sources = ""
        for i in range(N):
            s.post(api + "/secrets", json={"metadata": {"name": f"s{i}"}, "data": {"k": base64.b64encode(b"v0" * 512).decode()}}
                   ).raise_for_status()
            sources += f"- {{name: s{i}, directory: {work}/out/s{i}}}\n"
        cfg = os.path.join(work, "agent.yaml")
        with open(cfg, "w") as f:
            f.write(f"server: {url}\nca_file: {ca}\nauth: {{token_file: {work}/token}}\nsecrets:\n{sources}")
        agent = subprocess.Popen([os.path.join(BIN, "sigil-agent"), "--config", cfg, "--log-level", "warn"])
        link = os.path.join(work, "out", f"s{N - 1}", "..data")
        deadline = time.time() + 30
        while not os.path.lexists(link) and time.time() < deadline:
            time.sleep(0.05)
        lat, acks = [], []
        for u in range(1, UPDATES + 1):
            i = u % N
            link = os.path.join(work, "out", f"s{i}", "..data")
            before = os.readlink(link)
            body = {"metadata": {"name": f"s{i}"}, "data": {"k": base64.b64encode(f"v{u}".encode() * 512).decode()}}
            sent = time.perf_counter()
            s.put(api + f"/secrets/s{i}", json=body).raise_for_status()
            acks.append(time.perf_counter() - sent)
            while os.readlink(link) == before:
                if time.perf_counter() - sent > 10:
                    raise SystemExit(f"update {u} not rendered within 10 s")
            lat.append(time.perf_counter() - sent)
        lat.sort()
        acks.sort()
        rollup = open(f"/proc/{agent.pid}/smaps_rollup").read()
        kib = {k: int(re.search(k + r":\s+(\d+) kB", rollup).group(1)) for k in ("Rss", "Pss", "Private_Clean", "Private_Dirty")}
        t0 = cpu_ticks(agent.pid)
        time.sleep(IDLE)
        idle_ticks = cpu_ticks(agent.pid) - t0
        hz = os.sysconf("SC_CLK_TCK")
        pct = lambda xs, p: xs[min(len(xs) - 1, int(p * len(xs)))] * 1000
        print(f"| secrets followed | updates | PUT answered p50 / p99 | files swapped p50 / p99 / max | RSS | private | PSS | CPU idle {IDLE} s |")
        print("|---:|---:|---:|---:|---:|---:|---:|---:|")
        print(f"| {N} | {UPDATES} | {pct(acks, 0.5):.1f} / {pct(acks, 0.99):.1f} ms | "
              f"{pct(lat, 0.5):.1f} / {pct(lat, 0.99):.1f} / {lat[-1] * 1000:.1f} ms | {kib['Rss'] / 1024:.1f} MiB | "
              f"{(kib['Private_Clean'] + kib['Private_Dirty']) / 1024:.1f} MiB | {kib['Pss'] / 1024:.1f} MiB | "
              f"{idle_ticks * 1000 // hz} ms |")
    finally:
        if agent:
            agent.kill()
        proc.terminate()
        proc.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
