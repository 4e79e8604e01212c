"""Crash safety: SIGKILL a process writing through the store (barrier over LMDB, group commit)
at random moments, restart, and check that every acknowledged write is present and intact.

The workload (sigil-storetool load) runs 8 writers over 64 keys each (every 8th key shared by
all writers), 70% writes (a third of them compare-and-swap), 10% deletes, 20% reads. Each
value carries 8 fields that repeat (writer, seq, nonce) with a random payload and its
SHA-256, so a torn or mixed value is detected. The writers log to a ledger:
    invoke <id> <op> <key> <sha>       before the commit
    ack <id> <op> <key> <sha> <rev>    after the commit returned (durable)
    fail <id> <op> <key> <sha> <why>
where <id> is unique per operation.
The data directory is kept across kills, so damage would compound.

Rule per key after each restart (rev = the stored mod_revision):
 - present with (sha, rev): no acknowledged write to the key has a higher revision; if one has
   this revision it is this put; otherwise sha is one of the key's unacknowledged puts.
 - absent: the highest acknowledged write is not a put, unless a delete of the key was in
   flight (invoked, never acknowledged).
SIGIL_CRASH_KILLS sets the number of kills (default 50); SIGIL_TEST_SEED replays a run."""
import json
import os
import random
import signal
import subprocess
import time
from collections import defaultdict

from conftest import SEED, STORETOOL, readline, run

PREFIX = "/registry/secrets/crash/"


def parse_ledger(path):
    acked = defaultdict(list)   # key -> [(rev, op, sha)]
    invoked = {}                # id -> (key, op, sha)
    resolved = set()            # ids acknowledged or failed
    with open(path) as f:
        lines = f.read().split("\n")
    for line in lines:
        parts = line.split(" ")
        if len(parts) < 5:
            continue  # a torn last line from the kill
        kind, op_id, op, key, sha = parts[:5]
        if kind == "invoke":
            invoked[op_id] = (key, op, sha)
        elif kind == "ack" and len(parts) == 6:
            acked[key].append((int(parts[5]), op, sha))
            resolved.add(op_id)
        elif kind == "fail":
            resolved.add(op_id)
    unknown = defaultdict(list)  # key -> [(op, sha)] invoked and never resolved (in flight)
    for op_id, (key, op, sha) in invoked.items():
        if op_id not in resolved:
            unknown[key].append((op, sha))
    return acked, unknown


def dump(data_dir, key_file):
    r = run([STORETOOL, "dump", "--data-dir", data_dir, "--key-file", key_file, "--prefix", PREFIX], check=False)
    assert r.returncode == 0, f"store did not open cleanly or holds a torn value (exit {r.returncode}): {r.stderr}"
    lines = [json.loads(l) for l in r.stdout.splitlines() if l.strip()]
    return lines[0]["revision"], {l["key"]: (l["sha256"], l["mod_revision"]) for l in lines[1:]}


def check(acked, unknown, state, revision):
    errors = []
    max_acked = max((rev for v in acked.values() for rev, _, _ in v), default=0)
    if revision < max_acked:
        errors.append(f"store revision {revision} is behind acknowledged revision {max_acked}")
    for key in set(acked) | set(state) | set(unknown):
        writes = sorted(acked.get(key, []))
        last = writes[-1] if writes else None
        pending = unknown.get(key, [])
        if key in state:
            sha, rev = state[key]
            if last and rev < last[0]:
                errors.append(f"{key}: lost acknowledged {last[1]} at rev {last[0]}; store has rev {rev}")
            elif last and rev == last[0]:
                if last[1] == "delete" or last[2] != sha:
                    errors.append(f"{key}: rev {rev} holds a different value than the acknowledged {last[1]}")
            elif not any(op in ("put", "cas") and s == sha for op, s in pending):
                errors.append(f"{key}: value at rev {rev} was never written by an unacknowledged put")
        elif last and last[1] != "delete" and not any(op == "delete" for op, _ in pending):
            errors.append(f"{key}: acknowledged {last[1]} at rev {last[0]} is missing")
    return errors


def test_kill9_loses_no_acknowledged_write(workdir, key_file):
    kills = int(os.environ.get("SIGIL_CRASH_KILLS", "50"))
    rng = random.Random(SEED)
    data_dir = os.path.join(workdir, "store")
    ledger = os.path.join(workdir, "ledger")
    total_acks = 0
    for i in range(kills):
        proc = subprocess.Popen([STORETOOL, "load", "--data-dir", data_dir, "--key-file", key_file, "--ledger", ledger,
                                 "--writers", "8", "--seed", str(SEED + i), "--prefix", PREFIX],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            ready = readline(proc.stdout, timeout=30, what="the load to be ready")
        except AssertionError:
            proc.kill()
            raise
        assert ready.strip() == "ready", proc.stderr.read()
        time.sleep(rng.uniform(0.02, 1.5))
        proc.send_signal(signal.SIGKILL)
        _, err = proc.communicate()
        assert proc.returncode == -signal.SIGKILL, f"load exited on its own ({proc.returncode}): {err}"
        revision, state = dump(data_dir, key_file)
        acked, unknown = parse_ledger(ledger)
        errors = check(acked, unknown, state, revision)
        assert not errors, f"seed {SEED} kill {i}:\n" + "\n".join(errors[:20])
        total_acks = sum(len(v) for v in acked.values())
    print(f"{kills} kills, {total_acks} acknowledged writes, 0 lost (seed {SEED})")
    assert total_acks > kills, "the workload made too little progress to prove anything"


def test_checker_detects_a_lost_write():
    # The rules above must fail on the faults they exist to catch.
    acked = {"/k": [(5, "put", "aa")]}
    assert check(acked, {}, {}, 5)                                  # acknowledged put missing
    assert check(acked, {}, {"/k": ("bb", 5)}, 5)                    # different value at the acked rev
    assert check(acked, {}, {"/k": ("aa", 4)}, 5)                    # older revision: write lost
    assert check(acked, {}, {"/k": ("cc", 9)}, 9)                    # value nobody wrote
    assert check(acked, {}, {"/k": ("aa", 5)}, 3)                    # revision went backwards
    assert not check(acked, {}, {"/k": ("aa", 5)}, 5)
    assert not check(acked, {"/k": [("put", "cc")]}, {"/k": ("cc", 9)}, 9)  # in-flight put landed
    assert not check(acked, {"/k": [("delete", "-")]}, {}, 9)               # in-flight delete landed
