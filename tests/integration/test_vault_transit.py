"""The transit engine through unchanged hvac 0.11.2: keys (create, read, list, config, rotate,
trim, delete), encrypt/decrypt/rewrap with batch_input, derived keys, min_decryption_version,
datakeys, HMAC and verify, signing (Ed25519, ECDSA on three curves with ASN.1 or JWS, RSA with
PSS or PKCS#1 v1.5) verified independently, RSA encryption, export, backup and restore, random
and hash. Ciphertexts have Vault's layout (nonce, ciphertext,
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
        root.write("transit/keys/signer", type="rsa-1024")
    with pytest.raises(hvac.exceptions.InvalidRequest, match="convergent"):
        t.create_key("conv", derived=True, convergent_encryption=True)
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


def test_ecdsa_curves_jws_and_rsa_verified_independently(srv):
    """ECDSA P-384 and P-521 (ASN.1 and JWS marshaling) and RSA (PSS and PKCS#1 v1.5 signatures,
    OAEP encryption), each checked with python3-cryptography against the published public key."""
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, padding, utils
    root = hvac.Client(url=srv.url, token=srv.token, verify=srv.ca)
    root.sys.enable_secrets_engine("transit")
    t = root.secrets.transit
    message = b"sign me too"
    for curve, size in [("p384", 48), ("p521", 66)]:
        t.create_key("ec-" + curve, key_type="ecdsa-" + curve)
        pub = serialization.load_pem_public_key(t.read_key("ec-" + curve)["data"]["keys"]["1"]["public_key"].encode())
        assert pub.curve.key_size in (384, 521)
        sig = t.sign_data("ec-" + curve, b64(message), hash_algorithm="sha2-384")["data"]["signature"]
        pub.verify(base64.b64decode(sig[9:]), message, ec.ECDSA(hashes.SHA384()))
        jws = t.sign_data("ec-" + curve, b64(message), hash_algorithm="sha2-384", marshaling_algorithm="jws")["data"]["signature"]
        raw = base64.urlsafe_b64decode(jws[9:] + "=" * (-len(jws[9:]) % 4))
        assert len(raw) == 2 * size and "=" not in jws
        r, s_ = int.from_bytes(raw[:size], "big"), int.from_bytes(raw[size:], "big")
        pub.verify(utils.encode_dss_signature(r, s_), message, ec.ECDSA(hashes.SHA384()))
        assert t.verify_signed_data("ec-" + curve, b64(message), signature=jws, hash_algorithm="sha2-384",
                                    marshaling_algorithm="jws")["data"]["valid"] is True
        assert t.verify_signed_data("ec-" + curve, b64(b"nope"), signature=jws, hash_algorithm="sha2-384",
                                    marshaling_algorithm="jws")["data"]["valid"] is False

    t.create_key("rsa", key_type="rsa-2048")
    key = t.read_key("rsa")["data"]
    assert key["supports_signing"] and key["supports_encryption"] and key["supports_decryption"]
    pub = serialization.load_pem_public_key(key["keys"]["1"]["public_key"].encode())
    pss = t.sign_data("rsa", b64(message))["data"]["signature"]  # PSS, sha2-256 by default
    pub.verify(base64.b64decode(pss[9:]), message, padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.AUTO),
               hashes.SHA256())
    pkcs = t.sign_data("rsa", b64(message), hash_algorithm="sha2-512", signature_algorithm="pkcs1v15")["data"]["signature"]
    pub.verify(base64.b64decode(pkcs[9:]), message, padding.PKCS1v15(), hashes.SHA512())
    assert t.verify_signed_data("rsa", b64(message), signature=pkcs, hash_algorithm="sha2-512",
                                signature_algorithm="pkcs1v15")["data"]["valid"] is True
    assert t.verify_signed_data("rsa", b64(message), signature=pkcs, hash_algorithm="sha2-512")["data"]["valid"] is False
    with pytest.raises(hvac.exceptions.InvalidRequest, match="jws"):
        t.sign_data("rsa", b64(message), marshaling_algorithm="jws")
    # Encryption: OAEP with SHA-256, which an independent implementation can produce too.
    ct = t.encrypt_data("rsa", b64(b"rsa secret"))["data"]["ciphertext"]
    assert base64.b64decode(t.decrypt_data("rsa", ct)["data"]["plaintext"]) == b"rsa secret"
    outside = pub.encrypt(b"made elsewhere", padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None))
    assert base64.b64decode(t.decrypt_data("rsa", "vault:v1:" + b64(outside))["data"]["plaintext"]) == b"made elsewhere"
    with pytest.raises(hvac.exceptions.InvalidRequest, match="decryption error"):
        t.decrypt_data("rsa", "vault:v1:" + b64(b"\x01" * 256))


def test_derived_keys_export_backup_restore_trim(srv):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF
    from cryptography.hazmat.primitives import hashes
    root = hvac.Client(url=srv.url, token=srv.token, verify=srv.ca)
    root.sys.enable_secrets_engine("transit")
    t = root.secrets.transit

    # Derived keys: the context selects the key (HKDF-SHA256 of the key, info = context).
    t.create_key("tenant", derived=True, exportable=True)
    assert t.read_key("tenant")["data"]["derived"] is True and t.read_key("tenant")["data"]["kdf"] == "hkdf_sha256"
    ctx_a, ctx_b = b64(b"tenant-a"), b64(b"tenant-b")
    ct = t.encrypt_data("tenant", b64(b"per tenant"), context=ctx_a)["data"]["ciphertext"]
    assert base64.b64decode(t.decrypt_data("tenant", ct, context=ctx_a)["data"]["plaintext"]) == b"per tenant"
    with pytest.raises(hvac.exceptions.InvalidRequest, match="authentication failed"):
        t.decrypt_data("tenant", ct, context=ctx_b)
    with pytest.raises(hvac.exceptions.InvalidRequest, match="missing 'context'"):
        t.encrypt_data("tenant", b64(b"x"))
    batch = t.encrypt_data("tenant", None, batch_input=[{"plaintext": b64(b"1"), "context": ctx_a},
                                                         {"plaintext": b64(b"2")}])["data"]["batch_results"]
    assert batch[0]["ciphertext"].startswith("vault:v1:") and "context" in batch[1]["error"]
    # The derivation is Vault's: an independent HKDF over the exported key opens the ciphertext.
    exported = base64.b64decode(t.export_key("tenant", "encryption-key", version=1)["data"]["keys"]["1"])
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"tenant-a").derive(exported)
    raw = base64.b64decode(ct[len("vault:v1:"):])
    assert AESGCM(derived).decrypt(raw[:12], raw[12:], None) == b"per tenant"

    # Export: only exportable keys; exportable cannot be switched off.
    t.create_key("private")
    with pytest.raises(hvac.exceptions.InvalidRequest, match="not exportable"):
        t.export_key("private", "encryption-key")
    with pytest.raises(hvac.exceptions.InvalidRequest, match="cannot be made non-exportable"):
        t.update_key_configuration("tenant", exportable=False)
    t.create_key("ecx", key_type="ecdsa-p256", exportable=True)
    pem = t.export_key("ecx", "signing-key")["data"]["keys"]["1"]
    assert pem.startswith("-----BEGIN EC PRIVATE KEY-----")
    priv = serialization.load_pem_private_key(pem.encode(), password=None)
    published = serialization.load_pem_public_key(t.read_key("ecx")["data"]["keys"]["1"]["public_key"].encode())
    assert priv.public_key().public_numbers() == published.public_numbers()
    hk = t.export_key("ecx", "hmac-key", version="latest")["data"]["keys"]
    assert list(hk) == ["1"] and len(base64.b64decode(hk["1"])) == 32
    with pytest.raises(hvac.exceptions.InvalidRequest, match="not supported for type"):
        t.export_key("ecx", "encryption-key")

    # Backup and restore: only with allow_plaintext_backup; the restored key decrypts old data.
    with pytest.raises(hvac.exceptions.InvalidRequest, match="plaintext backup is disallowed"):
        t.backup_key("tenant")
    t.update_key_configuration("tenant", allow_plaintext_backup=True)
    t.rotate_key("tenant")
    backup = t.backup_key("tenant")["data"]["backup"]
    t.restore_key(backup, name="tenant-copy")
    assert base64.b64decode(t.decrypt_data("tenant-copy", ct, context=ctx_a)["data"]["plaintext"]) == b"per tenant"
    assert t.read_key("tenant-copy")["data"]["latest_version"] == 2
    with pytest.raises(hvac.exceptions.InvalidRequest, match="already exists"):
        t.restore_key(backup, name="tenant-copy")
    t.restore_key(backup, name="tenant-copy", force=True)
    with pytest.raises(hvac.exceptions.InvalidRequest, match="not a sigil transit key backup"):
        t.restore_key(b64(b'{"format": "vault"}'), name="x")

    # Trim: versions below min_available_version are gone for good, within the minimums.
    with pytest.raises(hvac.exceptions.InvalidRequest, match="higher than min decryption version"):
        t.trim_key("tenant", 2)
    t.update_key_configuration("tenant", min_decryption_version=2)
    t.trim_key("tenant", 2)
    key = t.read_key("tenant")["data"]
    assert list(key["keys"]) == ["2"] and key["min_available_version"] == 2
    assert list(t.export_key("tenant", "encryption-key")["data"]["keys"]) == ["2"]

    # auto_rotate_period: 0 or at least an hour (rotation then happens on the first use after it).
    with pytest.raises(hvac.exceptions.InvalidRequest, match="at least an hour"):
        root.write("transit/keys/tenant/config", auto_rotate_period="10m")
    root.write("transit/keys/tenant/config", auto_rotate_period="24h")
    assert t.read_key("tenant")["data"]["auto_rotate_period"] == 86400
