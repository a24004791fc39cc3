"""Sealing data keys under key-encryption keys, and wrapping them from docks to the service."""

from __future__ import annotations

import base64
import binascii
import hmac
import os
import re

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from evidence.errors import IntegrityError

KEY_SIZE = 32
"""Bytes in a DEK, a KEK and an X25519 key alike."""

_VERSION = b"\x01"
_NONCE_SIZE = 12
_TAG_SIZE = 16
SEALED_SIZE = len(_VERSION) + _NONCE_SIZE + KEY_SIZE + _TAG_SIZE
"""Bytes in a `seal_key` output: version, nonce, sealed DEK, tag."""
INGEST_WRAPPED_SIZE = len(_VERSION) + KEY_SIZE + KEY_SIZE + _TAG_SIZE
"""Bytes in a `wrap_for_ingest` output: version, ephemeral public key, sealed DEK, tag."""

_INGEST_INFO = b"bwc-evidence/1 dock dek wrap"
_PUBLIC_KEY_TEXT = re.compile(r"[A-Za-z0-9_-]{43}")


def _require_key(name: str, value: bytes) -> None:
    # Wrong-length keys are programming or configuration errors, never tampering:
    # they raise ValueError so they cannot hide among integrity failures.
    if not isinstance(value, bytes) or len(value) != KEY_SIZE:
        raise ValueError(f"{name} must be {KEY_SIZE} bytes")


def seal_key(kek: bytes, dek: bytes, aad: bytes) -> bytes:
    """Seal a 32-byte dek under a 32-byte kek with AES-256-GCM; `0x01 || nonce || ct+tag`.

    The nonce is 96 random bits, so one KEK may seal about 2**32 keys before the
    collision risk matters (NIST SP 800-38D); rotate KEKs long before that. aad is bound
    in: the caller encodes who the key belongs to, so a sealed key moved elsewhere fails."""
    _require_key("kek", kek)
    _require_key("dek", dek)
    nonce = os.urandom(_NONCE_SIZE)
    return _VERSION + nonce + AESGCM(kek).encrypt(nonce, dek, aad)


def open_key(kek: bytes, sealed: bytes, aad: bytes) -> bytes:
    """The dek sealed by `seal_key` under kek with the same aad.

    Any failure (wrong kek or aad, a flipped bit, truncation, an unknown version byte) is
    the same opaque `IntegrityError`: callers learn nothing about which check failed."""
    _require_key("kek", kek)
    if len(sealed) != SEALED_SIZE or sealed[:1] != _VERSION:
        raise IntegrityError("sealed key does not authenticate")
    nonce, body = sealed[1 : 1 + _NONCE_SIZE], sealed[1 + _NONCE_SIZE :]
    try:
        return AESGCM(kek).decrypt(nonce, body, aad)
    except InvalidTag:
        raise IntegrityError("sealed key does not authenticate") from None


# --- dock -> service ingest wrapping ------------------------------------------------------
#
# HPKE-style base mode (RFC 9180 in spirit, not its exact encoding): an ephemeral X25519
# key agrees a secret with the service's ingest key; HKDF-SHA256 turns it into a one-time
# AES-256-GCM key and nonce. The nonce is derived with the key, and the key is unique per
# ephemeral key pair, so no (key, nonce) pair is ever reused. Only the holder of the
# ingest private key can unwrap; the dock is not authenticated by this layer (its upload
# is, by the API's device credentials), so an attacker with the public key can wrap keys
# of their own, but cannot read or alter a dock's.


def new_ingest_keypair() -> tuple[bytes, bytes]:
    """A fresh X25519 ingest key pair as (raw 32-byte private, raw 32-byte public)."""
    private = X25519PrivateKey.generate()
    return private.private_bytes_raw(), private.public_key().public_bytes_raw()


def ingest_public_key(private_raw: bytes) -> bytes:
    """The raw public key of a raw X25519 private key (ValueError if not 32 bytes)."""
    _require_key("private key", private_raw)
    return X25519PrivateKey.from_private_bytes(private_raw).public_key().public_bytes_raw()


def _derive(shared: bytes, ephemeral_pub: bytes, recipient_pub: bytes) -> tuple[bytes, bytes]:
    okm = HKDF(
        algorithm=hashes.SHA256(),
        length=KEY_SIZE + _NONCE_SIZE,
        salt=ephemeral_pub + recipient_pub,
        info=_INGEST_INFO,
    ).derive(shared)
    return okm[:KEY_SIZE], okm[KEY_SIZE:]


def _agree(private: X25519PrivateKey, peer_raw: bytes) -> bytes | None:
    """The X25519 shared secret, or None for a low-order peer key (all-zero secret)."""
    try:
        shared = private.exchange(X25519PublicKey.from_public_bytes(peer_raw))
    except ValueError:  # OpenSSL refuses an all-zero result itself
        return None
    # Checked again here so the guarantee does not rest on the backend's behaviour.
    if hmac.compare_digest(shared, bytes(KEY_SIZE)):
        return None
    return shared


def wrap_for_ingest(dek: bytes, recipient_public: bytes, context: bytes) -> bytes:
    """Wrap a 32-byte dek to the service's ingest public key; `0x01 || eph_pub || ct+tag`.

    context binds the wrap to its upload (the encrypted object's id and the camera
    serial, say): `unwrap_from_dock` with any other context fails. A fresh ephemeral key
    per call means two wraps of the same dek share nothing. ValueError for a malformed
    or low-order recipient key: that is a bad enrolment, not tampering."""
    _require_key("dek", dek)
    _require_key("recipient public key", recipient_public)
    ephemeral = X25519PrivateKey.generate()
    ephemeral_pub = ephemeral.public_key().public_bytes_raw()
    shared = _agree(ephemeral, recipient_public)
    if shared is None:
        raise ValueError("recipient public key is a low-order point")
    key, nonce = _derive(shared, ephemeral_pub, recipient_public)
    return _VERSION + ephemeral_pub + AESGCM(key).encrypt(nonce, dek, context)


def unwrap_from_dock(wrapped: bytes, recipient_private: bytes, context: bytes) -> bytes:
    """The dek a dock wrapped with `wrap_for_ingest` to this private key and context.

    Everything in wrapped comes from the network and is untrusted. Any failure (wrong
    private key or context, a tampered ephemeral key or ciphertext, a low-order
    ephemeral key, a bad length or version byte) is the same opaque `IntegrityError`."""
    _require_key("recipient private key", recipient_private)
    if len(wrapped) != INGEST_WRAPPED_SIZE or wrapped[:1] != _VERSION:
        raise IntegrityError("wrapped key does not authenticate")
    ephemeral_pub = wrapped[1 : 1 + KEY_SIZE]
    body = wrapped[1 + KEY_SIZE :]
    private = X25519PrivateKey.from_private_bytes(recipient_private)
    shared = _agree(private, ephemeral_pub)
    if shared is None:
        raise IntegrityError("wrapped key does not authenticate")
    key, nonce = _derive(shared, ephemeral_pub, private.public_key().public_bytes_raw())
    try:
        return AESGCM(key).decrypt(nonce, body, context)
    except InvalidTag:
        raise IntegrityError("wrapped key does not authenticate") from None


def encode_public_key(public_raw: bytes) -> str:
    """A raw 32-byte public key as one line of unpadded base64url (43 characters)."""
    _require_key("public key", public_raw)
    return base64.urlsafe_b64encode(public_raw).rstrip(b"=").decode("ascii")


def decode_public_key(text: str) -> bytes:
    """The raw public key from `encode_public_key` text; ValueError if malformed.

    Strict: exactly 43 base64url characters whose unused low bits are zero, so each key
    has one spelling and a fingerprint compared at enrolment means what it says."""
    if not isinstance(text, str) or not _PUBLIC_KEY_TEXT.fullmatch(text):
        raise ValueError("public key must be 43 characters of unpadded base64url")
    try:
        raw = base64.urlsafe_b64decode(text + "=")
    except (binascii.Error, ValueError):
        raise ValueError("public key is not valid base64url") from None
    if encode_public_key(raw) != text:
        raise ValueError("public key is not canonically encoded")
    return raw
