"""The transit engine (first slice) through unchanged hvac 0.11.2: keys (create, read, list,
config, rotate, delete), encrypt/decrypt/rewrap with batch_input, min_decryption_version,
datakeys, HMAC and verify, random and hash. Ciphertexts have Vault's layout (nonce, ciphertext,
tag); data keys work with an independent AES-GCM (python3-cryptography); hashes match Python's.
Plaintexts never reach the disk or the audit trail."""
import base64
import hashlib
import hmac
import os
import secrets

import hvac
import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM


@pytest.fixture
def srv(start_server, workdir, key_file):
    return start_server(["--data-dir", workdir + "/data", "--seal-key-file", key_file, "--listen", "127.0.0.1:0"])


def b64(b):
    return base64.b64encode(b).decode()


def test_transit_round_trips_rotation_and_batches(srv, workdir):
    root = hvac.Client(url=srv.url, token=srv.token, verify=srv.ca)
    root.sys.enable_secrets_engine("transit")
    t = root.secrets.transit
    t.create_key("orders")
    t.create_key("chacha", key_type="chacha20-poly1305")
    with pytest.raises(hvac.exceptions.InvalidRequest, match="not supported"):
        t.create_key("signer", key_type="rsa-2048")
    key = t.read_key("orders")["data"]
    assert key["type"] == "aes256-gcm96" and key["latest_version"] == 1 and list(key["keys"]) == ["1"], key
    assert "key" not in str(key["keys"]) and key["exportable"] is False
    assert sorted(t.list_keys()["data"]["keys"]) == ["chacha", "orders"]

    canary = b"transit-canary-" + secrets.token_hex(8).encode()
    for name in ["orders", "chacha"]:
        ct = t.encrypt_data(name, b64(canary))["data"]["ciphertext"]
        assert ct.startswith("vault:v1:")
        assert base64.b64decode(t.decrypt_data(name, ct)["data"]["plaintext"]) == canary
    ct1 = t.encrypt_data("orders", b64(b"first"))["data"]["ciphertext"]
    raw = base64.b64decode(ct1[len("vault:v1:"):])
    assert len(raw) == 12 + len(b"first") + 16  # nonce | ciphertext | tag, as Vault lays it out

    # Rotation: new ciphertexts use v2, old ones still decrypt, rewrap moves them to v2.
    t.rotate_key("orders")
    ct2 = t.encrypt_data("orders", b64(b"second"))["data"]["ciphertext"]
    assert ct2.startswith("vault:v2:")
    assert base64.b64decode(t.decrypt_data("orders", ct1)["data"]["plaintext"]) == b"first"
    rewrapped = t.rewrap_data("orders", ct1)["data"]["ciphertext"]
    assert rewrapped.startswith("vault:v2:") and base64.b64decode(t.decrypt_data("orders", rewrapped)["data"]["plaintext"]) == b"first"
    t.update_key_configuration("orders", min_decryption_version=2)
    with pytest.raises(hvac.exceptions.InvalidRequest, match="too old"):
        t.decrypt_data("orders", ct1)
    with pytest.raises(hvac.exceptions.InvalidRequest, match="authentication failed"):
        t.decrypt_data("orders", "vault:v2:" + b64(b"\0" * 12 + b"forged-ciphertext-and-tag"))
    with pytest.raises(hvac.exceptions.InvalidRequest, match="no prefix"):
        t.decrypt_data("orders", "not-a-ciphertext")

    # Batches: each item answered on its own.
    batch = t.encrypt_data("orders", None, batch_input=[{"plaintext": b64(b"a")}, {"plaintext": b64(b"b")}])["data"]["batch_results"]
    assert len(batch) == 2 and all(r["ciphertext"].startswith("vault:v2:") for r in batch)
    out = t.decrypt_data("orders", None, batch_input=[{"ciphertext": batch[0]["ciphertext"]}, {"ciphertext": "junk"},
                                                {"ciphertext": batch[1]["ciphertext"]}])["data"]["batch_results"]
    assert base64.b64decode(out[0]["plaintext"]) == b"a" and "error" in out[1] and base64.b64decode(out[2]["plaintext"]) == b"b"

    # encrypt/<new name> makes the key, as Vault does.
    assert t.encrypt_data("made-on-use", b64(b"x"))["data"]["ciphertext"].startswith("vault:v1:")
    assert t.read_key("made-on-use")["data"]["latest_version"] == 1

    # Delete only when allowed.
    with pytest.raises(hvac.exceptions.InvalidRequest, match="deletion is not allowed"):
        t.delete_key("chacha")
    t.update_key_configuration("chacha", deletion_allowed=True)
    t.delete_key("chacha")
    with pytest.raises(hvac.exceptions.InvalidPath):
        t.read_key("chacha")

    for dirpath, _, names in os.walk(workdir):
        for n in names:
            with open(os.path.join(dirpath, n), "rb") as f:
                data = f.read()
            assert canary not in data and b64(canary).encode() not in data, n


def test_datakeys_hmac_random_and_hash(srv):
    root = hvac.Client(url=srv.url, token=srv.token, verify=srv.ca)
    root.sys.enable_secrets_engine("transit", path="tr")
    t = root.secrets.transit
    t.create_key("k", mount_point="tr")
    dk = t.generate_data_key("k", key_type="plaintext", bits=256, mount_point="tr")["data"]
    plain = base64.b64decode(dk["plaintext"])
    assert len(plain) == 32
    assert base64.b64decode(t.decrypt_data("k", dk["ciphertext"], mount_point="tr")["data"]["plaintext"]) == plain
    wrapped = t.generate_data_key("k", key_type="wrapped", mount_point="tr")["data"]
    assert "plaintext" not in wrapped and wrapped["ciphertext"].startswith("vault:v1:")
    # A data key works with an independent AES-GCM: the point of a data key.
    nonce = os.urandom(12)
    assert AESGCM(plain).decrypt(nonce, AESGCM(plain).encrypt(nonce, b"x", None), None) == b"x"

    mac = t.generate_hmac("k", b64(b"message"), mount_point="tr")["data"]["hmac"]
    assert mac.startswith("vault:v1:") and len(base64.b64decode(mac[9:])) == 32
    assert t.verify_signed_data("k", b64(b"message"), hmac=mac, mount_point="tr")["data"]["valid"] is True
    assert t.verify_signed_data("k", b64(b"other"), hmac=mac, mount_point="tr")["data"]["valid"] is False
    mac512 = t.generate_hmac("k", b64(b"message"), algorithm="sha2-512", mount_point="tr")["data"]["hmac"]
    assert len(base64.b64decode(mac512[9:])) == 64

    r = t.generate_random_bytes(n_bytes=48, output_format="hex", mount_point="tr")["data"]["random_bytes"]
    assert len(bytes.fromhex(r)) == 48
    for algo, ref in [("sha2-256", hashlib.sha256), ("sha2-512", hashlib.sha512)]:
        got = t.hash_data(b64(b"abc"), algorithm=algo, output_format="hex", mount_point="tr")["data"]["sum"]
        assert got == ref(b"abc").hexdigest(), algo
    # SHA-3 (hvac 0.11.2 does not know the names yet; Vault serves them).
    got = root.write("tr/hash/sha3-256", input=b64(b"abc"), format="base64")["data"]["sum"]
    assert base64.b64decode(got) == hashlib.sha3_256(b"abc").digest()
    with pytest.raises(hvac.exceptions.InvalidRequest):
        root.write("tr/hash/md5", input=b64(b"abc"))


def test_signing_keys_verified_independently(srv):
    """ed25519 and ecdsa-p256 keys: sign and verify through sigil, and verify the same signatures
    with python3-cryptography against the public keys sigil publishes."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    root = hvac.Client(url=srv.url, token=srv.token, verify=srv.ca)
    root.sys.enable_secrets_engine("transit")
    t = root.secrets.transit
    message = b"sign me"
    t.create_key("ed", key_type="ed25519")
    t.create_key("ec", key_type="ecdsa-p256")
    ed = t.read_key("ed")["data"]
    assert ed["supports_signing"] is True and ed["supports_encryption"] is False
    sig = t.sign_data("ed", b64(message))["data"]["signature"]
    assert sig.startswith("vault:v1:")
    Ed25519PublicKey.from_public_bytes(base64.b64decode(ed["keys"]["1"]["public_key"])).verify(
        base64.b64decode(sig[9:]), message)
    assert t.verify_signed_data("ed", b64(message), signature=sig)["data"]["valid"] is True
    assert t.verify_signed_data("ed", b64(b"other"), signature=sig)["data"]["valid"] is False

    pem = t.read_key("ec")["data"]["keys"]["1"]["public_key"]
    pub = serialization.load_pem_public_key(pem.encode())
    for algo, h in [("sha2-256", hashes.SHA256()), ("sha2-512", hashes.SHA512())]:
        sig = t.sign_data("ec", b64(message), hash_algorithm=algo)["data"]["signature"]
        pub.verify(base64.b64decode(sig[9:]), message, ec.ECDSA(h))
        assert t.verify_signed_data("ec", b64(message), signature=sig, hash_algorithm=algo)["data"]["valid"] is True
        with pytest.raises(InvalidSignature):
            pub.verify(base64.b64decode(sig[9:]), b"other", ec.ECDSA(h))

    # Rotation: old signatures still verify; a signing key does not encrypt.
    old = t.sign_data("ed", b64(message))["data"]["signature"]
    t.rotate_key("ed")
    assert t.sign_data("ed", b64(message))["data"]["signature"].startswith("vault:v2:")
    assert t.verify_signed_data("ed", b64(message), signature=old)["data"]["valid"] is True
    with pytest.raises(hvac.exceptions.InvalidRequest, match="does not support encryption"):
        t.encrypt_data("ed", b64(message))
    with pytest.raises(hvac.exceptions.InvalidRequest, match="does not support signing"):
        t.create_key("sym")
        t.sign_data("sym", b64(message))


def test_review_regressions(srv):
    """encrypt/<new> with a signing type made the key and then failed; random accepted any
    source segment."""
    root = hvac.Client(url=srv.url, token=srv.token, verify=srv.ca)
    root.sys.enable_secrets_engine("transit")
    with pytest.raises(hvac.exceptions.InvalidRequest, match="does not support encryption"):
        root.write("transit/encrypt/e1", plaintext=b64(b"x"), type="ed25519")
    with pytest.raises(hvac.exceptions.InvalidPath):
        root.secrets.transit.read_key("e1")
    with pytest.raises(hvac.exceptions.InvalidRequest):
        root.write("transit/random/hex/16")
    assert len(base64.b64decode(root.write("transit/random/platform/16")["data"]["random_bytes"])) == 16
