"""EncryptionConfiguration formats in both directions, checked with an implementation written
here from the documented kube-apiserver format (docs/formats.md; k8s.io/apiserver
pkg/storage/value/encrypt), using Python's cryptography and PyNaCl, independent of sigil's
code:

  aescbc     k8s:enc:aescbc:v1:<name>:    IV(16) | AES-CBC(P | PKCS#7)
  aesgcm     k8s:enc:aesgcm:v1:<name>:    nonce(12) | AES-GCM(P, AAD = etcd key) | tag(16)
  secretbox  k8s:enc:secretbox:v1:<name>: nonce(24) | tag(16) | XSalsa20(P)

sigil -> kube: sigil writes through its barrier; we read the raw stored value and decrypt it.
kube -> sigil: we encrypt as kube-apiserver would and store the raw bytes; sigil reads them."""
import base64
import os

import nacl.secret
import pytest
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from conftest import STORETOOL, run

KEY = "/registry/secrets/default/db-creds"
# Stored objects begin with the protobuf magic; any bytes work, these look like the real thing.
PLAINTEXT = b"k8s\x00\n\x0c\n\x02v1\x12\x06Secret\x12\x20password=s3cr3t-value-for-vectors"


def kube_encrypt(provider, name, key, plaintext, aad):
    prefix = f"k8s:enc:{provider}:v1:{name}:".encode()
    if provider == "aescbc":
        iv = os.urandom(16)
        padder = padding.PKCS7(128).padder()
        padded = padder.update(plaintext) + padder.finalize()
        enc = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
        return prefix + iv + enc.update(padded) + enc.finalize()
    if provider == "aesgcm":
        nonce = os.urandom(12)
        return prefix + nonce + AESGCM(key).encrypt(nonce, plaintext, aad)
    if provider == "secretbox":
        nonce = os.urandom(24)
        # PyNaCl's encrypt returns nonce | tag | ciphertext, exactly kube's layout.
        return prefix + bytes(nacl.secret.SecretBox(key).encrypt(plaintext, nonce))
    raise ValueError(provider)


def kube_decrypt(provider, name, key, stored, aad):
    prefix = f"k8s:enc:{provider}:v1:{name}:".encode()
    assert stored.startswith(prefix), stored[:40]
    body = stored[len(prefix):]
    if provider == "aescbc":
        iv, ct = body[:16], body[16:]
        assert len(ct) % 16 == 0 and len(ct) >= 16
        dec = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
        padded = dec.update(ct) + dec.finalize()
        unpadder = padding.PKCS7(128).unpadder()
        return unpadder.update(padded) + unpadder.finalize()
    if provider == "aesgcm":
        assert len(body) == 12 + len(PLAINTEXT) + 16
        return AESGCM(key).decrypt(body[:12], body[12:], aad)
    if provider == "secretbox":
        assert len(body) == 24 + 16 + len(PLAINTEXT)
        return nacl.secret.SecretBox(key).decrypt(body[24:], body[:24])
    raise ValueError(provider)


def write_config(workdir, provider, keys, name="enc.yaml", identity_first=False):
    lines = ["apiVersion: apiserver.config.k8s.io/v1", "kind: EncryptionConfiguration", "resources:",
             "  - resources: [secrets]", "    providers:"]
    if identity_first:
        lines.append("      - identity: {}")
    lines += [f"      - {provider}:", "          keys:"]
    for kname, kbytes in keys:
        lines += [f"            - name: {kname}", f"              secret: {base64.b64encode(kbytes).decode()}"]
    path = os.path.join(workdir, name)
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    os.chmod(path, 0o600)
    return path


def tool(workdir, key_file, *args, config=None, check=True):
    cmd = [STORETOOL, args[0], "--data-dir", os.path.join(workdir, "store")]
    if args[0] not in ("raw-get", "raw-put"):
        cmd += ["--key-file", key_file]
    if config:
        cmd += ["--encryption-config", config]
    return run(cmd + list(args[1:]), check=check)


CASES = [("aescbc", 32), ("aescbc", 16), ("aesgcm", 32), ("aesgcm", 24), ("aesgcm", 16), ("secretbox", 32)]


@pytest.mark.parametrize("provider,size", CASES)
def test_sigil_writes_what_kube_apiserver_reads(workdir, key_file, provider, size):
    key = os.urandom(size)
    config = write_config(workdir, provider, [("key1", key)])
    tool(workdir, key_file, "put", "--key", KEY, "--hex", PLAINTEXT.hex(), config=config)
    stored = bytes.fromhex(tool(workdir, key_file, "raw-get", "--key", KEY).stdout.strip())
    assert kube_decrypt(provider, "key1", key, stored, KEY.encode()) == PLAINTEXT
    assert PLAINTEXT not in stored


@pytest.mark.parametrize("provider,size", CASES)
def test_sigil_reads_what_kube_apiserver_writes(workdir, key_file, provider, size):
    key = os.urandom(size)
    other = os.urandom(size)
    # The value's key is the second one configured: it must decrypt and read as stale.
    config = write_config(workdir, provider, [("new", other), ("key1", key)])
    stored = kube_encrypt(provider, "key1", key, PLAINTEXT, KEY.encode())
    tool(workdir, key_file, "raw-put", "--key", KEY, "--hex", stored.hex())
    out = tool(workdir, key_file, "get", "--key", KEY, config=config).stdout.split()
    assert bytes.fromhex(out[0]) == PLAINTEXT
    assert out[1] == "stale"
    # With the value's key first, it is current.
    config2 = write_config(workdir, provider, [("key1", key)], name="enc2.yaml")
    out = tool(workdir, key_file, "get", "--key", KEY, config=config2).stdout.split()
    assert out == [PLAINTEXT.hex(), "current"]


@pytest.mark.parametrize("provider", ["aescbc", "aesgcm", "secretbox"])
def test_wrong_key_is_a_clean_data_loss_error(workdir, key_file, provider):
    config = write_config(workdir, provider, [("key1", os.urandom(32))])
    stored = kube_encrypt(provider, "key1", os.urandom(32), PLAINTEXT, KEY.encode())
    tool(workdir, key_file, "raw-put", "--key", KEY, "--hex", stored.hex())
    r = tool(workdir, key_file, "get", "--key", KEY, config=config, check=False)
    # aescbc has no MAC: a wrong key is caught by the padding check in almost every case
    # (1 in ~256 random keys yields valid padding; then the bytes are garbage, as upstream).
    if provider == "aescbc" and r.returncode == 0:
        assert bytes.fromhex(r.stdout.split()[0]) != PLAINTEXT
        return
    assert r.returncode == 4, r.stderr
    assert "DATA_LOSS" in r.stderr
    assert "s3cr3t" not in r.stderr + r.stdout


def test_aesgcm_value_moved_to_another_key_fails(workdir, key_file):
    key = os.urandom(32)
    config = write_config(workdir, "aesgcm", [("key1", key)])
    stored = kube_encrypt("aesgcm", "key1", key, PLAINTEXT, KEY.encode())
    tool(workdir, key_file, "raw-put", "--key", "/registry/secrets/default/other", "--hex", stored.hex())
    r = tool(workdir, key_file, "get", "--key", "/registry/secrets/default/other", config=config, check=False)
    assert r.returncode == 4 and "DATA_LOSS" in r.stderr


def test_identity_reads_plaintext_only_when_configured(workdir, key_file):
    tool(workdir, key_file, "raw-put", "--key", KEY, "--hex", PLAINTEXT.hex())
    r = tool(workdir, key_file, "get", "--key", KEY, check=False)
    assert r.returncode == 4 and "not encrypted" in r.stderr
    config = write_config(workdir, "aesgcm", [("k", os.urandom(32))], identity_first=True)
    out = tool(workdir, key_file, "get", "--key", KEY, config=config).stdout.split()
    assert out == [PLAINTEXT.hex(), "current"]


# aescbc at block-aligned lengths: PKCS#7 then pads with a whole block of 16 bytes of 0x10, the
# case that an implementation which skips the padding when the input is aligned, or strips it
# wrongly, gets wrong. PLAINTEXT above is 53 bytes, never aligned. 0 is the empty value.
ALIGNED = [0, 16, 48]


def aligned_plaintext(n):
    return (PLAINTEXT * 2)[:n]


def get_value(workdir, key_file, config):
    """sigil's reading of KEY through `config`: (plaintext, "current" or "stale")."""
    hex_value, state = tool(workdir, key_file, "get", "--key", KEY, config=config).stdout.rstrip("\n").split(" ")
    return bytes.fromhex(hex_value), state


@pytest.mark.parametrize("size", [16, 32])
@pytest.mark.parametrize("n", ALIGNED)
def test_aescbc_block_aligned_sigil_writes_what_kube_apiserver_reads(workdir, key_file, size, n):
    key = os.urandom(size)
    plaintext = aligned_plaintext(n)
    config = write_config(workdir, "aescbc", [("key1", key)])
    tool(workdir, key_file, "put", "--key", KEY, "--hex", plaintext.hex(), config=config)
    stored = bytes.fromhex(tool(workdir, key_file, "raw-get", "--key", KEY).stdout.strip())
    assert kube_decrypt("aescbc", "key1", key, stored, KEY.encode()) == plaintext
    # IV, the plaintext's blocks, and one whole block of padding.
    assert len(stored) == len(b"k8s:enc:aescbc:v1:key1:") + 16 + n + 16
    assert get_value(workdir, key_file, config) == (plaintext, "current")


@pytest.mark.parametrize("size", [16, 32])
@pytest.mark.parametrize("n", ALIGNED)
def test_aescbc_block_aligned_sigil_reads_what_kube_apiserver_writes(workdir, key_file, size, n):
    key = os.urandom(size)
    plaintext = aligned_plaintext(n)
    stored = kube_encrypt("aescbc", "key1", key, plaintext, KEY.encode())
    assert len(stored) == len(b"k8s:enc:aescbc:v1:key1:") + 16 + n + 16
    tool(workdir, key_file, "raw-put", "--key", KEY, "--hex", stored.hex())
    config = write_config(workdir, "aescbc", [("key1", key)])
    assert get_value(workdir, key_file, config) == (plaintext, "current")
