"""KMS v2 from both sides (kms/envelope.h, kms/plugin.h), with parts written independently of
sigil's code:

- kms_plugin.py: a KMS v2 plugin in Python (grpcio, hand-written protobuf) that records its calls
  and can rotate its key, slow down, fail or answer garbage on request;
- kmsv2_format.py: kube-apiserver's stored format (k8s:enc:kms:v2:<name>: + EncryptedObject, the
  HKDF-SHA256 extended-nonce seed scheme and the legacy AES_GCM_KEY type), encoder and decoder.

sigil -> kube: values sigil stores decode with the independent decoder and the plugin's keys;
kube -> sigil: values the independent encoder writes are read by sigil. Then the server with a
kms provider (rotation, plugin down, slow, garbage), and sigil as a client of sigil as a plugin."""
import base64
import json
import os
import time

import requests

import kms_plugin
import kmsv2_format as fmt
from conftest import STORETOOL, run, wait_for
from test_encryption_config_vectors import tool

KEY = "/registry/secrets/default/db-creds"
PLAINTEXT = b"k8s\x00\n\x0c\n\x02v1\x12\x06Secret\x12\x20password=s3cr3t-value-for-kms-tests"


def kms_config(workdir, socket, name="kms1", timeout="3s", extra=""):
    path = os.path.join(workdir, f"enc-{name}.yaml")
    with open(path, "w") as f:
        f.write("apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n"
                "  - resources: [secrets]\n    providers:\n"
                f"      - kms: {{apiVersion: v2, name: {name}, endpoint: 'unix://{socket}', timeout: {timeout}}}\n" + extra)
    os.chmod(path, 0o600)
    return path


class Plugin:
    """The independent plugin, started in a state directory under workdir."""

    def __init__(self, workdir, name="plugin"):
        self.state = os.path.join(workdir, name)
        os.makedirs(self.state, exist_ok=True)
        self.socket = os.path.join(self.state, "kms.sock")
        self.proc = None
        self.start()

    def start(self):
        self.proc = kms_plugin.start(self.socket, self.state)

    def stop(self):
        if self.proc:
            kms_plugin.stop(self.proc)
            self.proc = None

    def control(self, **fields):
        kms_plugin.set_control(self.state, **fields)

    def calls(self, method=None):
        return [c for c in kms_plugin.calls(self.state) if method is None or c["method"] == method]

    def unwrap(self, ciphertext, key_id, annotations):
        assert annotations == {k: v.encode() for k, v in kms_plugin.DEFAULT_ANNOTATIONS.items()}, annotations
        return kms_plugin.unwrap(self.state, ciphertext, key_id)


def test_sigil_writes_what_kube_apiserver_reads(workdir, key_file):
    plugin = Plugin(workdir)
    try:
        config = kms_config(workdir, plugin.socket)
        tool(workdir, key_file, "put", "--key", KEY, "--hex", PLAINTEXT.hex(), config=config)
        stored = bytes.fromhex(tool(workdir, key_file, "raw-get", "--key", KEY).stdout.strip())
        assert PLAINTEXT not in stored
        plain, obj = fmt.decrypt_value(stored, "kms1", KEY.encode(), plugin.unwrap)
        assert plain == PLAINTEXT
        assert obj["type"] == 1 and obj["key_id"] == "key-1"
        assert len(obj["encrypted_data"]) == 32 + 12 + len(PLAINTEXT) + 16
        # The write wrapped one seed (Encrypt of 32 bytes) and never sent the value itself.
        encrypts = plugin.calls("Encrypt")
        assert len(encrypts) == 1 and encrypts[0]["plaintext_len"] == 32, encrypts
        # Moved to another key, the value does not open (AAD = the storage key).
        other = "/registry/secrets/default/other"
        tool(workdir, key_file, "raw-put", "--key", other, "--hex", stored.hex())
        r = tool(workdir, key_file, "get", "--key", other, config=config, check=False)
        assert r.returncode != 0 and "kms kms1" in r.stderr, r.stderr
    finally:
        plugin.stop()


def test_the_configuration_the_guides_show_works(workdir, key_file):
    """The EncryptionConfiguration of the Kubernetes guides (kms without apiVersion, name myKMS,
    a unix socket), against a KMS v2 plugin: taken as v2, with a warning."""
    plugin = Plugin(workdir)
    try:
        path = os.path.join(workdir, "guide.yaml")
        with open(path, "w") as f:
            f.write("apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n"
                    "  - resources:\n      - secrets\n    providers:\n"
                    f"      - kms:\n          name: myKMS\n          endpoint: unix://{plugin.socket}\n"
                    "      - identity: {}\n")
        os.chmod(path, 0o600)
        r = tool(workdir, key_file, "put", "--key", KEY, "--hex", PLAINTEXT.hex(), config=path)
        assert "has no apiVersion" in r.stderr and "sigil uses v2" in r.stderr, r.stderr
        stored = bytes.fromhex(tool(workdir, key_file, "raw-get", "--key", KEY).stdout.strip())
        plain, _ = fmt.decrypt_value(stored, "myKMS", KEY.encode(), plugin.unwrap)
        assert plain == PLAINTEXT
        assert tool(workdir, key_file, "get", "--key", KEY, config=path).stdout.split() == [PLAINTEXT.hex(), "current"]
    finally:
        plugin.stop()


def test_sigil_reads_what_kube_apiserver_writes(workdir, key_file):
    plugin = Plugin(workdir)
    try:
        config = kms_config(workdir, plugin.socket)
        annotations = {k: v.encode() for k, v in kms_plugin.DEFAULT_ANNOTATIONS.items()}
        cases = [
            # (type, key_id, stale): the current key and the seed type are current; a legacy
            # AES_GCM_KEY value or an older key ID reads as stale.
            (1, "key-1", "current"),
            (0, "key-1", "stale"),
            (1, "key-0", "stale"),
        ]
        for i, (typ, key_id, want) in enumerate(cases):
            key = f"/registry/secrets/default/from-kube-{i}"
            seed = os.urandom(32)
            wrapped = kms_plugin.wrap(plugin.state, seed, key_id)
            stored = fmt.encrypt_value(PLAINTEXT, "kms1", key.encode(), seed, wrapped, key_id, annotations, type=typ)
            tool(workdir, key_file, "raw-put", "--key", key, "--hex", stored.hex())
            out = tool(workdir, key_file, "get", "--key", key, config=config).stdout.split()
            assert out == [PLAINTEXT.hex(), want], (typ, key_id, out)
        # Each value's seed was opened by the plugin with the key ID and annotations it names.
        decrypts = plugin.calls("Decrypt")
        assert {c["key_id"] for c in decrypts} == {"key-0", "key-1"}
        assert all(c["annotations"] == {k: base64.b64encode(v).decode() for k, v in annotations.items()} for c in decrypts)
    finally:
        plugin.stop()


def server_config(workdir, key_file, enc=None, extra=""):
    path = os.path.join(workdir, "sigil.yaml")
    with open(path, "w") as f:
        f.write(f"listen: 127.0.0.1:0\ndata_dir: {workdir}/data\nseal: {{type: key-file, key_file: {key_file}}}\n"
                + (f"encryption_config: {enc}\n" if enc else "") + extra)
    return path


def secret(name, value):
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name},
            "data": {"password": base64.b64encode(value.encode()).decode()}}


def create(s, name, value):
    return requests.post(s.url + "/api/v1/namespaces/default/secrets", json=secret(name, value), headers=s.auth,
                         verify=s.ca, timeout=10)


def read(s, name):
    return requests.get(s.url + f"/api/v1/namespaces/default/secrets/{name}", headers=s.auth, verify=s.ca, timeout=10)


def raw_value(workdir, name):
    return bytes.fromhex(run([STORETOOL, "raw-get", "--data-dir", os.path.join(workdir, "data", "store"),
                              "--key", f"/registry/secrets/default/{name}"]).stdout.strip())


def readyz(s):
    return requests.get(s.url + "/readyz?verbose", verify=s.ca, timeout=5)


def test_server_with_a_kms_provider_rotation_outage_and_recovery(start_server, workdir, key_file):
    plugin = Plugin(workdir)
    try:
        enc = kms_config(workdir, plugin.socket, timeout="1s")
        cfg = server_config(workdir, key_file, enc, "kms: {poll_interval_seconds: 1, poll_interval_unhealthy_seconds: 1, "
                                                    "write_seed_ttl_seconds: 4}\n")
        s = start_server(["--config", cfg])
        assert "[+]kms-providers ok" in readyz(s).text
        assert create(s, "before", "value-before").status_code == 201
        # The plugin rotates its key: within a poll, new writes use a seed wrapped under key-2.
        plugin.control(key_id="key-2")
        assert wait_for(lambda: any(c["key_id"] == "key-2" for c in plugin.calls("Encrypt")), timeout=10)
        assert create(s, "after", "value-after").status_code == 201
        assert base64.b64decode(read(s, "before").json()["data"]["password"]) == b"value-before"

        # The plugin goes away: reads of seeds already seen go on, writes go on for the seed's
        # TTL (4 s here, 3 min by default), then stop with a clear error; /readyz says why.
        plugin.stop()
        assert read(s, "after").status_code == 200
        assert wait_for(lambda: "[-]kms-providers failed" in readyz(s).text, timeout=10)
        assert wait_for(lambda: create(s, f"late-{time.time_ns()}", "x").status_code >= 500, timeout=15)
        r = create(s, "refused", "value-refused")
        assert r.status_code == 503 and "expired at" in r.json()["message"], r.text
        assert read(s, "before").status_code == 200
        # It comes back: writes resume without a restart.
        plugin.start()
        assert wait_for(lambda: create(s, f"back-{time.time_ns()}", "x").status_code == 201, timeout=15)
        assert wait_for(lambda: "[+]kms-providers ok" in readyz(s).text, timeout=10)
        s.stop()
        # On disk: KMS v2 values under the key ID of their time, opened by the independent decoder.
        for name, key_id, value in (("before", "key-1", b"value-before"), ("after", "key-2", b"value-after")):
            stored = raw_value(workdir, name)
            plain, obj = fmt.decrypt_value(stored, "kms1", f"/registry/secrets/default/{name}".encode(), plugin.unwrap)
            # (sigil stores the object as JSON: docs/formats.md)
            assert obj["key_id"] == key_id and json.loads(plain)["data"]["password"] == base64.b64encode(value).decode()
            assert base64.b64encode(value) not in stored
    finally:
        plugin.stop()


def test_slow_and_garbage_plugins_fail_clearly(start_server, workdir, key_file):
    plugin = Plugin(workdir)
    try:
        enc = kms_config(workdir, plugin.socket, timeout="1s")
        cfg = server_config(workdir, key_file, enc, "kms: {poll_interval_seconds: 1, poll_interval_unhealthy_seconds: 1}\n")
        s = start_server(["--config", cfg])
        assert create(s, "one", "value-one").status_code == 201
        s.stop()
        # A new server process must ask the plugin for the seed; the plugin is too slow.
        plugin.control(delay_seconds=3)
        token = s.token
        s = start_server(["--config", cfg])
        s.token = token
        t = time.time()
        r = read(s, "one")
        assert r.status_code == 503 and time.time() - t < 2.5, (r.status_code, r.text)
        assert "no answer within the timeout" in r.json()["message"] or "no state yet" in r.json()["message"], r.text
        assert "[-]kms-providers failed" in readyz(s).text
        # Garbage: a 7-byte "seed" cannot open anything.
        plugin.control(delay_seconds=0, garbage="decrypt-short")
        assert wait_for(lambda: "[+]kms-providers ok" in readyz(s).text, timeout=10)
        r = read(s, "one")
        assert r.status_code == 500 and "corrupt" in r.json()["message"], r.text
        assert "invalid seed length 7" in s.logs()
        # A plugin that wraps under another key ID than its Status reports: no new seed.
        plugin.control(garbage=None)
        # (a failed Decrypt is remembered for a second, so readers do not storm a failing plugin)
        assert wait_for(lambda: read(s, "one").status_code == 200, timeout=5)
        plugin.control(garbage="encrypt-keyid-mismatch", key_id="key-9")
        assert wait_for(lambda: "[-]kms-providers failed" in readyz(s).text, timeout=10)
        assert "not the key ID its Status reported" in s.logs()
        # An empty wrapped seed, and a Status without a key ID: refused too.
        plugin.control(garbage="encrypt-short", key_id="key-10")
        assert wait_for(lambda: "encrypted DEK source is empty" in s.logs(), timeout=10)
        plugin.control(garbage="status-empty-keyid")
        assert wait_for(lambda: "keyID is empty" in s.logs(), timeout=10)
        plugin.control(garbage=None)
        assert wait_for(lambda: "[+]kms-providers ok" in readyz(s).text, timeout=10)
        assert create(s, "two", "value-two").status_code == 201
        # Nothing of the values reached the log.
        assert "value-one" not in s.logs() and "value-two" not in s.logs()
    finally:
        plugin.stop()


def test_sigil_as_the_kms_plugin_of_another_sigil(start_server, workdir, key_file):
    # Server A is the plugin (its keys in its own store); server B stores Secrets with it.
    a_dir, b_dir = os.path.join(workdir, "a"), os.path.join(workdir, "b")
    os.makedirs(a_dir)
    os.makedirs(b_dir)
    socket = os.path.join(a_dir, "kms.sock")
    a = start_server(["--config", server_config(a_dir, key_file, extra=f"kms_plugin: {{socket: {socket}}}\n")])
    assert oct(os.stat(socket).st_mode & 0o777) == "0o600"
    keys = requests.get(a.url + "/v1/sys/kms-plugin/keys", headers={"X-Vault-Token": a.token}, verify=a.ca, timeout=5).json()
    first_key = keys["data"]["current_key_id"]
    assert first_key.startswith("sigil-kek-1-") and keys["data"]["socket"] == socket

    enc = kms_config(b_dir, socket, name="sigil-a")
    b = start_server(["--config", server_config(b_dir, key_file, enc, "kms: {poll_interval_seconds: 1}\n")])
    assert create(b, "db", "hunter2-through-a").status_code == 201
    assert base64.b64decode(read(b, "db").json()["data"]["password"]) == b"hunter2-through-a"

    # Rotation on A (sudo) changes the key ID B sees; B's next seed is wrapped under it.
    r = requests.post(a.url + "/v1/sys/kms-plugin/rotate", headers={"X-Vault-Token": a.token}, verify=a.ca, timeout=5)
    assert r.status_code == 200, r.text
    second_key = r.json()["data"]["key_id"]
    assert second_key.startswith("sigil-kek-2-")
    time.sleep(2.5)
    assert create(b, "db2", "second-value").status_code == 201
    b.stop()
    objs = {}
    for name in ("db", "db2"):
        stored = bytes.fromhex(run([STORETOOL, "raw-get", "--data-dir", os.path.join(b_dir, "data", "store"),
                                    "--key", f"/registry/secrets/default/{name}"]).stdout.strip())
        assert stored.startswith(b"k8s:enc:kms:v2:sigil-a:")
        objs[name] = fmt.decode_encrypted_object(stored[len(b"k8s:enc:kms:v2:sigil-a:"):])
    assert objs["db"]["key_id"] == first_key and objs["db2"]["key_id"] == second_key
    assert objs["db"]["type"] == 1 and objs["db"]["annotations"] == {}

    # B restarted reads both through A (one Decrypt per seed), A's trail has every call.
    token = b.token
    b = start_server(["--config", server_config(b_dir, key_file, enc)])
    b.token = token
    assert base64.b64decode(read(b, "db").json()["data"]["password"]) == b"hunter2-through-a"
    assert base64.b64decode(read(b, "db2").json()["data"]["password"]) == b"second-value"
    metrics = requests.get(a.url + "/metrics", headers=a.auth, verify=a.ca, timeout=5).text
    assert 'sigil_kms_plugin_calls_total{method="Encrypt",code="OK"}' in metrics
    assert 'sigil_kms_plugin_calls_total{method="Decrypt",code="OK"}' in metrics
    a.stop()
    trail = [json.loads(line) for line in open(os.path.join(a_dir, "data", "audit", "audit.log")) if line.strip()]
    kms_events = [e for e in trail if e.get("requestURI", "").startswith("/v2.KeyManagementService/")]
    assert {e["verb"] for e in kms_events} == {"encrypt", "decrypt"}
    assert all(e["user"]["username"] == "system:sigil:kms-plugin-client" for e in kms_events)
    assert {e["annotations"]["sigil.dev/kms-key-id"] for e in kms_events} == {first_key, second_key}
    raw_trail = open(os.path.join(a_dir, "data", "audit", "audit.log")).read()
    assert "hunter2" not in raw_trail and not os.path.exists(socket)


def seal_config(workdir, socket):
    path = os.path.join(workdir, "sigil.yaml")
    with open(path, "w") as f:
        f.write(f"listen: 127.0.0.1:0\ndata_dir: {workdir}/data\nseal: {{type: kms, endpoint: 'unix://{socket}', timeout_seconds: 1}}\n")
    return path


def test_kms_seal_unseals_through_the_plugin_and_waits_for_it(start_server, workdir):
    plugin = Plugin(workdir)
    try:
        cfg = seal_config(workdir, plugin.socket)
        s = start_server(["--config", cfg])
        token = s.token
        assert token, "a new store under the kms seal makes a root token"
        assert create(s, "sealed-by-kms", "behind-the-plugin").status_code == 201
        health = requests.get(s.url + "/v1/sys/health", verify=s.ca, timeout=5).json()
        assert health["sealed"] is False and health["initialized"] is True
        s.stop()
        # The root key exists only wrapped by the plugin: no key file, and the stored blob opens
        # with the plugin's key (and only then).
        blob = json.loads(bytes.fromhex(run([STORETOOL, "raw-get", "--data-dir", os.path.join(workdir, "data", "store"),
                                              "--key", "/sigil/core/kms-root-key"]).stdout.strip()))
        assert blob["key_id"] == "key-1"
        root = kms_plugin.unwrap(plugin.state, base64.b64decode(blob["ciphertext"]), blob["key_id"])
        assert len(root) == 32
        assert [c["plaintext_len"] for c in plugin.calls("Encrypt")] == [32]

        # The plugin rotates its key: the old key still opens the root key at the next start.
        plugin.control(key_id="key-2")
        s = start_server(["--config", cfg])
        s.token = token
        assert base64.b64decode(read(s, "sealed-by-kms").json()["data"]["password"]) == b"behind-the-plugin"
        s.stop()

        # Plugin down at start: the server serves sealed (503 on both faces) and unseals by itself
        # once the plugin answers, without a restart.
        plugin.stop()
        s = start_server(["--config", cfg])
        s.token = token
        assert read(s, "sealed-by-kms").status_code == 503
        status = requests.get(s.url + "/v1/sys/seal-status", verify=s.ca, timeout=5).json()
        assert status["sealed"] is True
        assert "the KMS seal's plugin did not answer" in s.logs()
        plugin.start()
        assert wait_for(lambda: read(s, "sealed-by-kms").status_code == 200, timeout=20)
        assert "behind-the-plugin" not in s.logs()
    finally:
        plugin.stop()


def test_sigils_plugin_answers_what_kube_apiserver_sends(start_server, workdir):
    """A raw gRPC client (grpcio, the independent protobuf codec) making kube-apiserver's calls:
    Status, Encrypt of a 32-byte seed with a uid, Decrypt with the key ID and no annotations."""
    import uuid

    import grpc

    socket = os.path.join(workdir, "kms.sock")
    s = start_server(["--dev", "--listen", "127.0.0.1:0", "--config",
                      server_config_dev(workdir, f"kms_plugin: {{socket: {socket}}}\n")])
    channel = grpc.insecure_channel("unix:" + socket, options=[("grpc.default_authority", "localhost")])

    def call(method, schema_in, values, schema_out):
        fn = channel.unary_unary(f"/v2.KeyManagementService/{method}")
        return fmt.decode_message(schema_out, fn(fmt.encode_message(schema_in, values), timeout=3))

    status = call("Status", (), {}, fmt.STATUS_RESPONSE)
    assert status["version"] == "v2" and status["healthz"] == "ok" and status["key_id"].startswith("sigil-kek-1-")
    seed = os.urandom(32)
    enc = call("Encrypt", fmt.ENCRYPT_REQUEST, {"plaintext": seed, "uid": str(uuid.uuid4())}, fmt.ENCRYPT_RESPONSE)
    assert enc["key_id"] == status["key_id"] and seed not in enc["ciphertext"] and not enc.get("annotations")
    dec = call("Decrypt", fmt.DECRYPT_REQUEST, {"ciphertext": enc["ciphertext"], "uid": str(uuid.uuid4()),
                                                "key_id": enc["key_id"]}, fmt.DECRYPT_RESPONSE)
    assert dec["plaintext"] == seed
    # Refusals: an unknown key ID, a ciphertext that does not authenticate, an empty plaintext.
    for method, schema, values, code in (
            ("Decrypt", fmt.DECRYPT_REQUEST, {"ciphertext": enc["ciphertext"], "uid": "u", "key_id": "nope"}, grpc.StatusCode.NOT_FOUND),
            ("Decrypt", fmt.DECRYPT_REQUEST, {"ciphertext": enc["ciphertext"][:-1] + b"x", "uid": "u", "key_id": enc["key_id"]},
             grpc.StatusCode.INVALID_ARGUMENT),
            ("Encrypt", fmt.ENCRYPT_REQUEST, {"plaintext": b"", "uid": "u"}, grpc.StatusCode.INVALID_ARGUMENT)):
        try:
            channel.unary_unary(f"/v2.KeyManagementService/{method}")(fmt.encode_message(schema, values), timeout=3)
            raise AssertionError(f"{method} {values} was not refused")
        except grpc.RpcError as e:
            assert e.code() == code, (method, e.code(), e.details())
    channel.close()
    assert s.logs().count("kms plugin listening") == 1 and base64.b64encode(seed).decode() not in s.logs()


def server_config_dev(workdir, text):
    path = os.path.join(workdir, "dev.yaml")
    with open(path, "w") as f:
        f.write(text)
    return path
