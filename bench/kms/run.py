#!/usr/bin/python3
"""Secret writes and reads through the Kubernetes face with three ways of encrypting them, side by
side in one run: sigil's own keyring (the default), an EncryptionConfiguration aesgcm provider,
and a kms v2 provider whose plugin is another sigil (kms_plugin.socket) on the same machine.
Then the KMS hot paths from Google Benchmark (build/bench/sigil_kms_bench). Needs wrk.

    /usr/bin/python3 bench/kms/run.py [seconds per run, default 10] [connections, default 16]

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
SECS = int(sys.argv[1]) if len(sys.argv) > 1 else 10
CONNS = int(sys.argv[2]) if len(sys.argv) > 2 else 16


def start(args, work, name):
    out = open(os.path.join(work, name + ".out"), "w+")
    proc = subprocess.Popen([os.path.join(BIN, "sigil"), "server", "--dev", "--listen", "127.0.0.1:0",
                             "--log-level", "warn"] + args, stdout=out, stderr=subprocess.STDOUT, text=True)
    for _ in range(100):
        out.seek(0)
        text = out.read()
        token = re.search(r"Root token \(shown once\): (\S+)", text)
        if token:
            url = re.search(r"listening on (https://\S+)", text).group(1)
            ca = re.search(r"VAULT_CACERT=(\S+)", text).group(1)
            return proc, url, ca, token.group(1)
        time.sleep(0.1)
    raise SystemExit(f"{name} did not start:\n{text}")


def wrk(url, script, token):
    env = dict(os.environ, SIGIL_TOKEN=token)
    out = subprocess.run(["wrk", "-t", "2", "-c", str(CONNS), "-d", f"{SECS}s", "--latency", "-s", script, url],
                         capture_output=True, text=True, env=env).stdout
    rps = re.search(r"Requests/sec:\s+(\S+)", out).group(1)
    p50 = re.search(r"\s50%\s+(\S+)", out).group(1)
    p99 = re.search(r"\s99%\s+(\S+)", out).group(1)
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return rps + (f" (non-2xx: {bad.group(1)})" if bad else ""), p50, p99


def main():
    if not shutil.which("wrk"):
        raise SystemExit("wrk is needed (apt-get install wrk)")
    work = tempfile.mkdtemp(prefix="sigil-kmsbench-")
    procs = []
    try:
        socket = os.path.join(work, "kms.sock")
        with open(os.path.join(work, "plugin.yaml"), "w") as f:
            f.write(f"kms_plugin: {{socket: {socket}}}\naudit: {{enabled: false}}\n")
        plugin, *_ = start(["--config", os.path.join(work, "plugin.yaml")], work, "plugin")
        procs.append(plugin)
        configs = {"sigil keyring (default)": None}
        head = "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n  - resources: [secrets]\n    providers:\n"
        for name, provider in (("EncryptionConfiguration aesgcm", f"      - aesgcm: {{keys: [{{name: k1, secret: {base64.b64encode(os.urandom(32)).decode()}}}]}}\n"),
                               ("EncryptionConfiguration kms v2 (plugin: another sigil)", f"      - kms: {{apiVersion: v2, name: sigil, endpoint: 'unix://{socket}'}}\n")):
            path = os.path.join(work, f"enc-{len(configs)}.yaml")
            with open(path, "w") as f:
                f.write(head + provider)
            os.chmod(path, 0o600)
            configs[name] = path
        rows = []
        for name, enc in configs.items():
            args = ["--encryption-provider-config", enc] if enc else []
            proc, url, ca, token = start(args, work, "server")
            try:
                auth = {"Authorization": "Bearer " + token}
                ns = url + "/api/v1/namespaces/default/secrets"
                value = base64.b64encode(b"\0" * 1026).decode()
                requests.post(ns, json={"metadata": {"name": "bench-get"}, "data": {"value": value}}, headers=auth, verify=ca).raise_for_status()
                for i in range(64):
                    requests.post(ns, json={"metadata": {"name": f"bench-put-{i}"}}, headers=auth, verify=ca).raise_for_status()
                get = wrk(ns + "/bench-get", os.path.join(ROOT, "bench/http/get.lua"), token)
                put = wrk(ns, os.path.join(ROOT, "bench/http/put.lua"), token)
                rows.append((name, get, put))
            finally:
                proc.terminate()
                proc.wait()
        print(f"Secrets of about 1 KiB, dev servers, root token, {CONNS} connections, {SECS} s per run, {os.cpu_count()} cores; wrk, the server and the plugin share the machine.\n")
        print("| encryption | GET req/s | GET p50 | GET p99 | PUT (durable) req/s | PUT p50 | PUT p99 |")
        print("|---|---|---|---|---|---|---|")
        for name, get, put in rows:
            print(f"| {name} | {get[0]} | {get[1]} | {get[2]} | {put[0]} | {put[1]} | {put[2]} |")
        bench = os.path.join(ROOT, "build", "bench", "sigil_kms_bench")
        if os.path.exists(bench):
            print("\nKMS hot paths (build/bench/sigil_kms_bench):\n\n```")
            out = subprocess.run([bench, "--benchmark_min_time=1"], capture_output=True, text=True).stdout
            print("\n".join(line for line in out.splitlines() if line.startswith("BM_") or line.startswith("Benchmark")))
            print("```")
    finally:
        for p in procs:
            p.terminate()
            p.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
