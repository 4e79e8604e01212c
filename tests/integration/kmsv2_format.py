"""An independent reader/writer of kube-apiserver's KMS v2 stored-value format, for checking
sigil from the outside. Written only from the documented format (not from sigil's sources), with
Debian's python3-cryptography and a hand-written protobuf wire codec (no python3-protobuf).

Stored value = b"k8s:enc:kms:v2:" + provider name + b":" + protobuf EncryptedObject:
    1 encryptedData (bytes)   2 keyID (string)   3 encryptedDEKSource (bytes)
    4 annotations (map<string, bytes>)   5 encryptedDEKSourceType (enum)
Type 1 (HKDF_SHA256_XNONCE_AES_GCM_SEED, the default): the plugin wraps a 32-byte seed;
    encryptedData = info(32) || nonce(12) || AES-256-GCM(DEK, nonce, plaintext, AAD=storage key),
    DEK = HKDF-Expand(SHA-256, PRK=seed, info, 32) (no extract step, no salt).
Type 0 (AES_GCM_KEY, legacy): the plugin wraps the 32-byte DEK itself;
    encryptedData = nonce(12) || AES-256-GCM(DEK, nonce, plaintext, AAD=storage key).
"""
import itertools
import os
import re
import struct

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand

PREFIX = b"k8s:enc:kms:v2:"
TYPE_AES_GCM_KEY = 0
TYPE_HKDF_SHA256_XNONCE_AES_GCM_SEED = 1

KEY_ID_MAX = 1024                # kube's KeyIDMaxSize
DEK_SOURCE_MAX = 1024            # kube's encryptedDEKSourceMaxSize
ANNOTATIONS_MAX = 32 * 1024      # kube's annotationsMaxSize: a total above this is rejected
INFO_SIZE, NONCE_SIZE, TAG_SIZE, SEED_SIZE = 32, 12, 16, 32

# ---------------------------------------------------------------- protobuf wire format
# A schema is a tuple of (field number, name, kind); kind is "bytes", "string", "enum" (varint)
# or "map" (map<string, bytes>: repeated entry messages with key = 1, value = 2).
WT_VARINT, WT_I64, WT_LEN, WT_I32 = 0, 1, 2, 5
_WIRE = {"bytes": WT_LEN, "string": WT_LEN, "map": WT_LEN, "enum": WT_VARINT}
_DEFAULT = {"bytes": b"", "string": "", "map": None, "enum": 0}


def encode_varint(n):
    """Unsigned LEB128; negative numbers are written as 64-bit two's complement, like protobuf."""
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def decode_varint(buf, pos):
    """Returns (value, new position); ValueError if truncated or longer than 10 bytes."""
    result = shift = 0
    for i in range(10):
        if pos >= len(buf):
            raise ValueError("truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result & ((1 << 64) - 1), pos
        shift += 7
    raise ValueError("varint longer than 10 bytes")


def tag(num, wire_type):
    return encode_varint((num << 3) | wire_type)


def field_bytes(num, data):
    """A length-delimited field (bytes, string, embedded message)."""
    if isinstance(data, str):
        data = data.encode()
    return tag(num, WT_LEN) + encode_varint(len(data)) + bytes(data)


def field_varint(num, value):
    return tag(num, WT_VARINT) + encode_varint(value)


def parse_fields(buf):
    """Splits a message into a list of (field number, wire type, value): ints for varint and
    fixed-width fields, bytes for length-delimited ones. Raises ValueError on malformed input."""
    buf = bytes(buf)
    pos, out = 0, []
    while pos < len(buf):
        key, pos = decode_varint(buf, pos)
        num, wt = key >> 3, key & 7
        if num == 0:
            raise ValueError("field number 0")
        if wt == WT_VARINT:
            value, pos = decode_varint(buf, pos)
        elif wt in (WT_I64, WT_I32):
            size = 8 if wt == WT_I64 else 4
            if pos + size > len(buf):
                raise ValueError(f"truncated fixed{size * 8} field {num}")
            value = int.from_bytes(buf[pos:pos + size], "little")
            pos += size
        elif wt == WT_LEN:
            size, pos = decode_varint(buf, pos)
            if pos + size > len(buf):
                raise ValueError(f"field {num}: length {size} runs past the end")
            value = buf[pos:pos + size]
            pos += size
        else:
            raise ValueError(f"field {num}: unsupported wire type {wt}")
        out.append((num, wt, value))
    return out


def encode_message(schema, values):
    """proto3 encoding: fields in field-number order, zero/empty values omitted. Map entries are
    sorted by key and (like kube's gogo-generated code) an empty value is left out of its entry."""
    out = bytearray()
    for num, name, kind in sorted(schema):
        v = values.get(name)
        if not v:
            continue
        if kind == "enum":
            out += field_varint(num, int(v))
        elif kind == "map":
            for k in sorted(v):
                val = v[k].encode() if isinstance(v[k], str) else bytes(v[k])
                out += field_bytes(num, field_bytes(1, k) + (field_bytes(2, val) if val else b""))
        else:
            out += field_bytes(num, v)
    return bytes(out)


def decode_message(schema, data):
    """Decodes `data` into {name: value}, with proto3 defaults for absent fields. Unknown fields
    are skipped; a known field with the wrong wire type or a string that is not UTF-8 raises
    ValueError. A repeated scalar field keeps its last value, as protobuf parsers do."""
    by_num = {num: (name, kind) for num, name, kind in schema}
    out = {name: ({} if kind == "map" else _DEFAULT[kind]) for _, name, kind in schema}
    for num, wt, value in parse_fields(data):
        if num not in by_num:
            continue
        name, kind = by_num[num]
        if wt != _WIRE[kind]:
            raise ValueError(f"field {name} ({num}) has wire type {wt}, want {_WIRE[kind]}")
        if kind == "string":
            try:
                out[name] = value.decode("utf-8")
            except UnicodeDecodeError:
                raise ValueError(f"field {name} is not valid UTF-8") from None
        elif kind == "map":
            entry = decode_message(((1, "key", "string"), (2, "value", "bytes")), value)
            out[name][entry["key"]] = entry["value"]
        else:
            out[name] = value
    return out


# The KMS v2 gRPC messages (package v2), for the plugin and for tests acting as its client.
STATUS_RESPONSE = ((1, "version", "string"), (2, "healthz", "string"), (3, "key_id", "string"))
ENCRYPT_REQUEST = ((1, "plaintext", "bytes"), (2, "uid", "string"))
ENCRYPT_RESPONSE = ((1, "ciphertext", "bytes"), (2, "key_id", "string"), (3, "annotations", "map"))
DECRYPT_REQUEST = ((1, "ciphertext", "bytes"), (2, "uid", "string"), (3, "key_id", "string"),
                   (4, "annotations", "map"))
DECRYPT_RESPONSE = ((1, "plaintext", "bytes"),)
ENCRYPTED_OBJECT = ((1, "encrypted_data", "bytes"), (2, "key_id", "string"),
                    (3, "encrypted_dek_source", "bytes"), (4, "annotations", "map"),
                    (5, "type", "enum"))

# ---------------------------------------------------------------- EncryptedObject
# kube's IsFullyQualifiedDomainName: a DNS-1123 subdomain (<= 253 chars) of at least two labels
# (each <= 63 chars); one trailing dot is allowed. Note "a.b/c" style keys are NOT valid.
_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?\Z")


def is_fqdn(name):
    if name.endswith("."):
        name = name[:-1]
    labels = name.split(".")
    return (0 < len(name) <= 253 and len(labels) >= 2
            and all(len(lb) <= 63 and _LABEL.match(lb) for lb in labels))


def validate_encrypted_object(obj):
    """The checks kube-apiserver applies to a decoded EncryptedObject; raises ValueError."""
    if obj["type"] not in (TYPE_AES_GCM_KEY, TYPE_HKDF_SHA256_XNONCE_AES_GCM_SEED):
        raise ValueError(f"unknown encryptedDEKSourceType: {obj['type']}")
    if not obj["encrypted_data"]:
        raise ValueError("encrypted data is empty")
    dek = obj["encrypted_dek_source"]
    if not dek:
        raise ValueError("encrypted DEK source is empty")
    if len(dek) > DEK_SOURCE_MAX:
        raise ValueError(f"encrypted DEK source is {len(dek)} bytes, over {DEK_SOURCE_MAX}")
    key_id = obj["key_id"].encode()
    if not key_id:
        raise ValueError("keyID is empty")
    if len(key_id) > KEY_ID_MAX:
        raise ValueError(f"keyID is {len(key_id)} bytes, over {KEY_ID_MAX}")
    total = 0
    for k, v in obj["annotations"].items():
        if not is_fqdn(k):
            raise ValueError(f"annotation key {k!r} is not a fully qualified domain name")
        total += len(k.encode()) + len(v)
    if total > ANNOTATIONS_MAX:
        raise ValueError(f"total size of annotations is {total}, over {ANNOTATIONS_MAX}")


def encode_encrypted_object(d):
    """Encodes a dict with keys encrypted_data, key_id, encrypted_dek_source, annotations and
    type (missing keys count as empty). Does not validate, so tests can build bad objects."""
    return encode_message(ENCRYPTED_OBJECT, d)


def decode_encrypted_object(b, validate=True):
    """Decodes (and by default validates) an EncryptedObject; ValueError when malformed."""
    obj = decode_message(ENCRYPTED_OBJECT, b)
    if validate:
        validate_encrypted_object(obj)
    return obj


# ---------------------------------------------------------------- the data encryption
def derive_dek(seed, info):
    """Type 1's DEK: HKDF-Expand(SHA-256, PRK = seed, info, 32 bytes), no extract, no salt."""
    return HKDFExpand(algorithm=hashes.SHA256(), length=32, info=info).derive(seed)


_counter = itertools.count(1)


def encrypt_value(plaintext, provider, aad, seed, wrapped, key_id, annotations=None, type=1):
    """Builds the value kube-apiserver would store. `seed` is the type-1 seed or, for type 0,
    the DEK; `wrapped` is the plugin's ciphertext of it (stored as encryptedDEKSource)."""
    if type == TYPE_HKDF_SHA256_XNONCE_AES_GCM_SEED:
        info, nonce = os.urandom(INFO_SIZE), os.urandom(NONCE_SIZE)
        data = info + nonce + AESGCM(derive_dek(seed, info)).encrypt(nonce, plaintext, aad)
    elif type == TYPE_AES_GCM_KEY:
        # kube's legacy nonce: 4 random bytes || 8-byte little-endian counter.
        nonce = os.urandom(4) + struct.pack("<Q", next(_counter))
        data = nonce + AESGCM(seed).encrypt(nonce, plaintext, aad)
    else:
        raise ValueError(f"unknown type {type}")
    obj = {"encrypted_data": data, "key_id": key_id, "encrypted_dek_source": wrapped,
           "annotations": dict(annotations or {}), "type": type}
    return PREFIX + provider.encode() + b":" + encode_encrypted_object(obj)


def decrypt_value(stored, provider, aad, unwrap):
    """Reads a stored value: checks the prefix, decodes and validates the EncryptedObject, gets
    the seed/DEK from unwrap(encryptedDEKSource, keyID, annotations) and decrypts the data.
    Returns (plaintext, decoded object); raises ValueError on any failure."""
    prefix = PREFIX + provider.encode() + b":"
    stored = bytes(stored)
    if not stored.startswith(prefix):
        raise ValueError(f"value does not start with {prefix!r}: {stored[:40]!r}")
    obj = decode_encrypted_object(stored[len(prefix):])
    secret = unwrap(obj["encrypted_dek_source"], obj["key_id"], obj["annotations"])
    data = obj["encrypted_data"]
    try:
        if obj["type"] == TYPE_HKDF_SHA256_XNONCE_AES_GCM_SEED:
            if len(secret) != SEED_SIZE:
                raise ValueError(f"seed is {len(secret)} bytes, want {SEED_SIZE}")
            if len(data) < INFO_SIZE + NONCE_SIZE + TAG_SIZE:
                raise ValueError(f"encrypted data is too short ({len(data)} bytes)")
            info, rest = data[:INFO_SIZE], data[INFO_SIZE:]
            plaintext = AESGCM(derive_dek(secret, info)).decrypt(
                rest[:NONCE_SIZE], rest[NONCE_SIZE:], aad)
        else:
            if len(secret) != 32:
                raise ValueError(f"DEK is {len(secret)} bytes, want 32")
            if len(data) < NONCE_SIZE + TAG_SIZE:
                raise ValueError(f"encrypted data is too short ({len(data)} bytes)")
            plaintext = AESGCM(secret).decrypt(data[:NONCE_SIZE], data[NONCE_SIZE:], aad)
    except InvalidTag:
        raise ValueError("decryption failed (wrong key, AAD or corrupted data)") from None
    return plaintext, obj
