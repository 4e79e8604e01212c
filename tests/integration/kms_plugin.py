#!/usr/bin/python3
"""A fake Kubernetes KMS v2 plugin for sigil's integration tests, written only from the
documented gRPC API (service v2.KeyManagementService: Status, Encrypt, Decrypt) with raw-bytes
gRPC handlers and the hand-written protobuf codec in kmsv2_format.

    /usr/bin/python3 kms_plugin.py --socket /path/plugin.sock --state /dir

Serves on unix:/path/plugin.sock until SIGTERM/SIGINT, then removes the socket and exits 0.
State directory:
  keys.json     key_id -> base64 32-byte KEK (created on demand), so a restart can still decrypt
  control.json  read on every call; see DEFAULT_CONTROL for its fields and set_control() to edit
  calls.jsonl   one JSON line per call (never any plaintext bytes)
Encrypt wraps with AES-256-GCM under the current key's KEK: nonce(12) || ct || tag, AAD = key_id.
Importable helpers for tests: start, stop, set_control, read_control, wrap, unwrap, calls.
"""
import argparse
import base64
import fcntl
import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
from concurrent import futures

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import grpc  # noqa: E402
from cryptography.exceptions import InvalidTag  # noqa: E402
from cryptography.hazmat.primitives.ciphers.aead import AESGCM  # noqa: E402

import kmsv2_format as fmt  # noqa: E402

SERVICE = "v2.KeyManagementService"
# Note: annotation keys must be fully qualified domain names for kube-apiserver (and any reader
# following it) to accept them, so the default key has no "/" in it.
DEFAULT_ANNOTATIONS = {"kek-version.kms.sigil.test": "1"}
DEFAULT_CONTROL = {
    "key_id": "key-1",        # the current key (its KEK is generated when first named)
    "healthz": "ok",
    "version": "v2",
    "delay_seconds": 0,       # sleep this long before answering any call
    "fail": False,            # abort every call with UNAVAILABLE
    "garbage": None,          # encrypt-short | encrypt-keyid-mismatch | decrypt-short |
                              # decrypt-random | status-empty-keyid
    "annotations": DEFAULT_ANNOTATIONS,  # str -> str, sent as bytes by Encrypt
}
_thread_lock = threading.Lock()


# ---------------------------------------------------------------- state files
def _atomic_write_json(path, obj):
    tmp = f"{path}.tmp.{os.getpid()}.{threading.get_ident()}"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=1, sort_keys=True)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


class _StateLock:
    """Serializes key creation and log appends across threads and processes (tests and plugin)."""

    def __init__(self, state_dir):
        self.path = os.path.join(state_dir, ".lock")

    def __enter__(self):
        _thread_lock.acquire()
        self.f = open(self.path, "a")
        fcntl.flock(self.f, fcntl.LOCK_EX)

    def __exit__(self, *exc):
        self.f.close()
        _thread_lock.release()


def _kek(state_dir, key_id, create):
    """The KEK for key_id, generating and saving one if `create`; None if unknown."""
    path = os.path.join(state_dir, "keys.json")
    with _StateLock(state_dir):
        keys = {}
        if os.path.exists(path):
            with open(path) as f:
                keys = json.load(f)
        if key_id not in keys:
            if not create:
                return None
            keys[key_id] = base64.b64encode(os.urandom(32)).decode()
            _atomic_write_json(path, keys)
        return base64.b64decode(keys[key_id])


def read_control(state_dir):
    """control.json merged over DEFAULT_CONTROL (a missing file means all defaults)."""
    control = dict(DEFAULT_CONTROL)
    try:
        with open(os.path.join(state_dir, "control.json")) as f:
            control.update(json.load(f))
    except FileNotFoundError:
        pass
    return control


def set_control(state_dir, **fields):
    """Updates control.json atomically, keeping fields not named here."""
    path = os.path.join(state_dir, "control.json")
    try:
        with open(path) as f:
            current = json.load(f)
    except FileNotFoundError:
        current = {}
    current.update(fields)
    _atomic_write_json(path, current)


def wrap(state_dir, plaintext, key_id):
    """What Encrypt returns as ciphertext for key_id (creating the key if it is new)."""
    nonce = os.urandom(12)
    return nonce + AESGCM(_kek(state_dir, key_id, True)).encrypt(nonce, plaintext, key_id.encode())


def unwrap(state_dir, ciphertext, key_id):
    """Offline Decrypt with the saved KEK; ValueError if the key is unknown or decryption fails."""
    kek = _kek(state_dir, key_id, False)
    if kek is None:
        raise ValueError(f"unknown key_id {key_id!r}")
    if len(ciphertext) < 12 + 16:
        raise ValueError("decryption failed: ciphertext too short")
    try:
        return AESGCM(kek).decrypt(ciphertext[:12], ciphertext[12:], key_id.encode())
    except InvalidTag:
        raise ValueError("decryption failed") from None


def calls(state_dir):
    """The recorded calls, oldest first, as dicts."""
    try:
        with open(os.path.join(state_dir, "calls.jsonl")) as f:
            return [json.loads(line) for line in f if line.strip()]
    except FileNotFoundError:
        return []


def _record(state_dir, entry):
    entry["time"] = time.time()
    with _StateLock(state_dir):
        with open(os.path.join(state_dir, "calls.jsonl"), "a") as f:
            f.write(json.dumps(entry, sort_keys=True) + "\n")


# ---------------------------------------------------------------- the gRPC service
class Plugin:
    def __init__(self, state_dir):
        self.state = state_dir

    def _begin(self, context, entry, schema, request):
        """Decodes the request, applies control.json's delay and failure mode; returns
        (decoded request, control). Aborts the call (after recording it) when it must fail."""
        try:
            req = fmt.decode_message(schema, request) if schema else {}
        except ValueError as e:
            self._abort(context, entry, grpc.StatusCode.INVALID_ARGUMENT, f"malformed request: {e}")
        control = read_control(self.state)
        _kek(self.state, control["key_id"], True)  # make sure the current key exists
        if control["delay_seconds"]:
            time.sleep(float(control["delay_seconds"]))
        entry["uid"] = req.get("uid", "")
        if control["fail"]:
            self._abort(context, entry, grpc.StatusCode.UNAVAILABLE, "plugin failing on purpose")
        return req, control

    def _abort(self, context, entry, code, message):
        entry["error"] = f"{code.name}: {message}"
        _record(self.state, entry)
        context.abort(code, message)  # raises

    def status(self, request, context):
        entry = {"method": "Status", "uid": "", "annotations": {}}
        _, control = self._begin(context, entry, None, request)
        key_id = "" if control["garbage"] == "status-empty-keyid" else control["key_id"]
        entry["key_id"] = key_id
        _record(self.state, entry)
        return fmt.encode_message(fmt.STATUS_RESPONSE, {
            "version": control["version"], "healthz": control["healthz"], "key_id": key_id})

    def encrypt(self, request, context):
        entry = {"method": "Encrypt"}
        req, control = self._begin(context, entry, fmt.ENCRYPT_REQUEST, request)
        key_id = control["key_id"]
        ciphertext = wrap(self.state, req["plaintext"], key_id)
        if control["garbage"] == "encrypt-short":
            ciphertext = b""
        if control["garbage"] == "encrypt-keyid-mismatch":
            key_id += "-mismatch"
        annotations = {k: str(v).encode() for k, v in (control["annotations"] or {}).items()}
        entry.update(key_id=key_id, plaintext_len=len(req["plaintext"]),
                     ciphertext_len=len(ciphertext), annotations=_b64(annotations))
        _record(self.state, entry)
        return fmt.encode_message(fmt.ENCRYPT_RESPONSE, {
            "ciphertext": ciphertext, "key_id": key_id, "annotations": annotations})

    def decrypt(self, request, context):
        entry = {"method": "Decrypt"}
        req, control = self._begin(context, entry, fmt.DECRYPT_REQUEST, request)
        entry.update(key_id=req["key_id"], ciphertext_len=len(req["ciphertext"]),
                     annotations=_b64(req["annotations"]))
        try:
            plaintext = unwrap(self.state, req["ciphertext"], req["key_id"])
        except ValueError as e:
            msg = "unknown key_id" if str(e).startswith("unknown") else "decryption failed"
            self._abort(context, entry, grpc.StatusCode.INVALID_ARGUMENT, msg)
        if control["garbage"] == "decrypt-short":
            plaintext = os.urandom(7)
        elif control["garbage"] == "decrypt-random":
            plaintext = os.urandom(32)
        entry["plaintext_len"] = len(plaintext)
        _record(self.state, entry)
        return fmt.encode_message(fmt.DECRYPT_RESPONSE, {"plaintext": plaintext})


def _b64(annotations):
    return {k: base64.b64encode(v).decode() for k, v in annotations.items()}


def serve(socket_path, state_dir):
    """Starts the gRPC server on the unix socket; returns the grpc.Server."""
    os.makedirs(state_dir, exist_ok=True)
    if os.path.exists(socket_path):
        os.unlink(socket_path)  # a stale socket from a killed plugin
    plugin = Plugin(state_dir)
    handlers = {name: grpc.unary_unary_rpc_method_handler(
        fn, request_deserializer=None, response_serializer=None)
        for name, fn in (("Status", plugin.status), ("Encrypt", plugin.encrypt),
                         ("Decrypt", plugin.decrypt))}
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16))
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
    if not server.add_insecure_port("unix:" + socket_path):
        raise RuntimeError(f"cannot listen on {socket_path}")
    server.start()
    return server


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--socket", required=True)
    ap.add_argument("--state", required=True)
    args = ap.parse_args(argv)
    stop_event = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop_event.set())
    signal.signal(signal.SIGINT, lambda *_: stop_event.set())
    server = serve(args.socket, args.state)
    print(f"kms plugin listening on {args.socket}", flush=True)
    while not stop_event.wait(0.5):
        pass
    server.stop(grace=1).wait()
    if os.path.exists(args.socket):
        os.unlink(args.socket)
    return 0


# ---------------------------------------------------------------- running it from tests
def start(socket, state_dir, timeout=10.0):
    """Launches the plugin as a subprocess and waits for its "listening" line; returns the Popen.
    Raises RuntimeError (after killing it) if the line does not come within `timeout` seconds."""
    proc = subprocess.Popen(
        [sys.executable or "/usr/bin/python3", os.path.abspath(__file__),
         "--socket", socket, "--state", state_dir], stdout=subprocess.PIPE)
    deadline, line = time.monotonic() + timeout, b""
    while not line.endswith(b"\n"):
        left = deadline - time.monotonic()
        ready = left > 0 and select.select([proc.stdout], [], [], left)[0]
        chunk = os.read(proc.stdout.fileno(), 1) if ready else b""
        if not chunk:
            proc.kill()
            proc.wait()
            raise RuntimeError(f"kms plugin did not start (exit {proc.returncode}, got {line!r})")
        line += chunk
    if not line.startswith(b"kms plugin listening on "):
        stop(proc)
        raise RuntimeError(f"unexpected first line from kms plugin: {line!r}")
    return proc


def stop(proc, timeout=10.0):
    """SIGTERMs a plugin started by start() and returns its exit status (kills it if stuck)."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if proc.stdout:
        proc.stdout.close()
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main())
