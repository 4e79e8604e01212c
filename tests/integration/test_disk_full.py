"""A full disk during commits: the data directory sits on a small tmpfs, the ledgered load
writes until the filesystem is full. Failed commits must be clean (RESOURCE_EXHAUSTED, nothing
half-written), reads keep working, writes succeed again once space is freed, and after the load
is killed the store opens and holds every acknowledged write intact. Needs root for the mount (CI runs as root); otherwise
skipped with the reason, and LMDB's own map-full path is covered by the unit tests."""
import os
import signal
import subprocess
import time

from conftest import SEED, STORETOOL, readline
from test_crash import PREFIX, check, dump, parse_ledger


def test_full_disk_fails_writes_cleanly_and_keeps_acknowledged_data(workdir, key_file, small_fs_4m):
    data_dir = os.path.join(small_fs_4m, "store")
    ledger = os.path.join(workdir, "ledger")
    filler = os.path.join(small_fs_4m, "filler")
    with open(filler, "wb") as f:
        f.write(b"\0" * (1 << 20))
    proc = subprocess.Popen([STORETOOL, "load", "--data-dir", data_dir, "--key-file", key_file, "--ledger", ledger,
                             "--writers", "4", "--seed", str(SEED), "--prefix", PREFIX],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        ready = readline(proc.stdout, timeout=30, what="the load to be ready")
    except AssertionError:
        proc.kill()
        raise
    assert ready.strip() == "ready"
    deadline = time.time() + 60
    full = False
    while time.time() < deadline and not full:
        time.sleep(0.5)
        with open(ledger) as f:
            full = " RESOURCE_EXHAUSTED" in f.read()
        assert proc.poll() is None, proc.stderr.read()
    assert full, "the filesystem never filled up"
    time.sleep(1)  # keep writing against the full disk for a while; reads continue too
    assert proc.poll() is None, "the load died on a full disk: " + proc.stderr.read()
    with open(ledger) as f:
        before = f.read().count("\nack ")
    os.unlink(filler)  # free space: writes must succeed again without a restart
    time.sleep(1.5)
    with open(ledger) as f:
        after = f.read().count("\nack ")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert after > before, "writes did not resume after space was freed"
    with open(ledger) as f:
        fails = [l for l in f if l.startswith("fail ")]
    assert fails and all(l.split()[-1] in ("RESOURCE_EXHAUSTED", "CONFLICT") for l in fails), fails[:5]
    revision, state = dump(data_dir, key_file)
    acked, unknown = parse_ledger(ledger)
    assert not check(acked, unknown, state, revision)
    assert sum(len(v) for v in acked.values()) > 0
