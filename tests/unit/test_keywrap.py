"""Sealing DEKs under KEKs and wrapping them from docks: round trips and every tampering."""

from __future__ import annotations

import os

import pytest

from evidence.crypto import keywrap
from evidence.errors import IntegrityError

KEK = bytes(range(32))
DEK = bytes(range(100, 132))
AAD = b'{"evidence_id":"e1","object":"o1"}'
CONTEXT = bytes.fromhex("00112233445566778899aabbccddeeff") + b"CAM-0042"

# X25519 public keys of small order (libsodium's blocklist) and their non-canonical
# spellings: each gives an all-zero shared secret with any private key.
LOW_ORDER_POINTS = [
    "0000000000000000000000000000000000000000000000000000000000000000",
    "0100000000000000000000000000000000000000000000000000000000000000",
    "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
    "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
    "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "0000000000000000000000000000000000000000000000000000000000000080",
]


def flipped(data: bytes, index: int) -> bytes:
    out = bytearray(data)
    out[index] ^= 0x01
    return bytes(out)


# --- seal_key / open_key ---------------------------------------------------------------


def test_sealed_key_opens_with_the_same_kek_and_aad() -> None:
    sealed = keywrap.seal_key(KEK, DEK, AAD)
    assert sealed[0] == 0x01
    assert len(sealed) == keywrap.SEALED_SIZE == 1 + 12 + 32 + 16
    assert DEK not in sealed
    assert keywrap.open_key(KEK, sealed, AAD) == DEK


def test_each_seal_of_the_same_key_uses_a_fresh_nonce() -> None:
    first, second = keywrap.seal_key(KEK, DEK, AAD), keywrap.seal_key(KEK, DEK, AAD)
    assert first[1:13] != second[1:13]
    assert first != second


def test_open_key_rejects_the_wrong_kek() -> None:
    sealed = keywrap.seal_key(KEK, DEK, AAD)
    with pytest.raises(IntegrityError):
        keywrap.open_key(bytes(32), sealed, AAD)


def test_open_key_rejects_other_associated_data() -> None:
    sealed = keywrap.seal_key(KEK, DEK, AAD)
    with pytest.raises(IntegrityError):
        keywrap.open_key(KEK, sealed, AAD.replace(b"e1", b"e2"))
    with pytest.raises(IntegrityError):
        keywrap.open_key(KEK, sealed, b"")


def test_open_key_rejects_a_flipped_bit_anywhere() -> None:
    sealed = keywrap.seal_key(KEK, DEK, AAD)
    for index in range(len(sealed)):  # version byte, nonce, ciphertext and tag alike
        with pytest.raises(IntegrityError):
            keywrap.open_key(KEK, flipped(sealed, index), AAD)


def test_open_key_rejects_truncation_and_extension() -> None:
    sealed = keywrap.seal_key(KEK, DEK, AAD)
    for length in range(len(sealed)):
        with pytest.raises(IntegrityError):
            keywrap.open_key(KEK, sealed[:length], AAD)
    with pytest.raises(IntegrityError):
        keywrap.open_key(KEK, sealed + b"\x00", AAD)


def test_open_key_rejects_an_unknown_version_byte() -> None:
    sealed = keywrap.seal_key(KEK, DEK, AAD)
    with pytest.raises(IntegrityError):
        keywrap.open_key(KEK, b"\x02" + sealed[1:], AAD)


def test_integrity_errors_say_nothing_about_the_cause() -> None:
    sealed = keywrap.seal_key(KEK, DEK, AAD)
    messages = set()
    for bad in (flipped(sealed, 0), flipped(sealed, 5), flipped(sealed, 40), sealed[:-1]):
        with pytest.raises(IntegrityError) as caught:
            keywrap.open_key(KEK, bad, AAD)
        error = caught.value  # no chained InvalidTag says which check failed
        assert error.__cause__ is None
        assert error.__context__ is None or error.__suppress_context__
        messages.add(str(caught.value))
    assert len(messages) == 1


@pytest.mark.parametrize("kek", [b"", bytes(16), bytes(33)])
def test_seal_key_refuses_a_kek_of_the_wrong_size(kek: bytes) -> None:
    with pytest.raises(ValueError, match="kek"):
        keywrap.seal_key(kek, DEK, AAD)


def test_seal_key_refuses_a_dek_of_the_wrong_size() -> None:
    with pytest.raises(ValueError, match="dek"):
        keywrap.seal_key(KEK, DEK[:16], AAD)


# --- dock -> service ingest wrapping ---------------------------------------------------


@pytest.fixture(scope="module")
def ingest_keys() -> tuple[bytes, bytes]:
    return keywrap.new_ingest_keypair()


def test_ingest_keypair_is_raw_x25519(ingest_keys: tuple[bytes, bytes]) -> None:
    private, public = ingest_keys
    assert len(private) == len(public) == 32
    assert keywrap.ingest_public_key(private) == public
    assert keywrap.new_ingest_keypair()[0] != private


def test_dock_wrap_unwraps_with_the_ingest_private_key(ingest_keys: tuple[bytes, bytes]) -> None:
    private, public = ingest_keys
    wrapped = keywrap.wrap_for_ingest(DEK, public, CONTEXT)
    assert wrapped[0] == 0x01
    assert len(wrapped) == keywrap.INGEST_WRAPPED_SIZE == 1 + 32 + 32 + 16
    assert DEK not in wrapped
    assert keywrap.unwrap_from_dock(wrapped, private, CONTEXT) == DEK


def test_each_dock_wrap_uses_a_fresh_ephemeral_key(ingest_keys: tuple[bytes, bytes]) -> None:
    private, public = ingest_keys
    first = keywrap.wrap_for_ingest(DEK, public, CONTEXT)
    second = keywrap.wrap_for_ingest(DEK, public, CONTEXT)
    assert first[1:33] != second[1:33]
    assert first[33:] != second[33:]
    assert keywrap.unwrap_from_dock(second, private, CONTEXT) == DEK


def test_unwrap_from_dock_rejects_another_private_key(ingest_keys: tuple[bytes, bytes]) -> None:
    _, public = ingest_keys
    wrapped = keywrap.wrap_for_ingest(DEK, public, CONTEXT)
    other_private, _ = keywrap.new_ingest_keypair()
    with pytest.raises(IntegrityError):
        keywrap.unwrap_from_dock(wrapped, other_private, CONTEXT)


def test_unwrap_from_dock_rejects_a_replay_under_another_context(
    ingest_keys: tuple[bytes, bytes],
) -> None:
    private, public = ingest_keys
    wrapped = keywrap.wrap_for_ingest(DEK, public, CONTEXT)
    for other in (CONTEXT[:-1] + b"3", os.urandom(16) + b"CAM-0042", b""):
        with pytest.raises(IntegrityError):
            keywrap.unwrap_from_dock(wrapped, private, other)


def test_unwrap_from_dock_rejects_any_flipped_bit(ingest_keys: tuple[bytes, bytes]) -> None:
    private, public = ingest_keys
    wrapped = keywrap.wrap_for_ingest(DEK, public, CONTEXT)
    # Byte 0 is the version, 1..32 the ephemeral public key, then ciphertext and tag.
    for index in range(len(wrapped)):
        with pytest.raises(IntegrityError):
            keywrap.unwrap_from_dock(flipped(wrapped, index), private, CONTEXT)


def test_unwrap_from_dock_rejects_a_substituted_ephemeral_key(
    ingest_keys: tuple[bytes, bytes],
) -> None:
    private, public = ingest_keys
    wrapped = keywrap.wrap_for_ingest(DEK, public, CONTEXT)
    other = keywrap.wrap_for_ingest(DEK, public, CONTEXT)
    with pytest.raises(IntegrityError):
        keywrap.unwrap_from_dock(wrapped[:1] + other[1:33] + wrapped[33:], private, CONTEXT)


def test_unwrap_from_dock_rejects_truncation_and_extension(
    ingest_keys: tuple[bytes, bytes],
) -> None:
    private, public = ingest_keys
    wrapped = keywrap.wrap_for_ingest(DEK, public, CONTEXT)
    for length in range(len(wrapped)):
        with pytest.raises(IntegrityError):
            keywrap.unwrap_from_dock(wrapped[:length], private, CONTEXT)
    with pytest.raises(IntegrityError):
        keywrap.unwrap_from_dock(wrapped + b"\x00", private, CONTEXT)


@pytest.mark.parametrize("point", LOW_ORDER_POINTS)
def test_unwrap_from_dock_rejects_a_low_order_ephemeral_key(
    ingest_keys: tuple[bytes, bytes], point: str
) -> None:
    private, public = ingest_keys
    wrapped = keywrap.wrap_for_ingest(DEK, public, CONTEXT)
    forged = wrapped[:1] + bytes.fromhex(point) + wrapped[33:]
    with pytest.raises(IntegrityError):
        keywrap.unwrap_from_dock(forged, private, CONTEXT)


@pytest.mark.parametrize("point", LOW_ORDER_POINTS[:3])
def test_wrap_for_ingest_refuses_a_low_order_recipient_key(point: str) -> None:
    with pytest.raises(ValueError, match="low-order"):
        keywrap.wrap_for_ingest(DEK, bytes.fromhex(point), CONTEXT)


def test_wrap_for_ingest_refuses_malformed_inputs(ingest_keys: tuple[bytes, bytes]) -> None:
    _, public = ingest_keys
    with pytest.raises(ValueError, match="dek"):
        keywrap.wrap_for_ingest(DEK[:31], public, CONTEXT)
    with pytest.raises(ValueError, match="recipient"):
        keywrap.wrap_for_ingest(DEK, public[:31], CONTEXT)


# --- public key text -------------------------------------------------------------------


def test_public_key_text_round_trips(ingest_keys: tuple[bytes, bytes]) -> None:
    _, public = ingest_keys
    text = keywrap.encode_public_key(public)
    assert len(text) == 43 and "=" not in text and "\n" not in text
    assert keywrap.decode_public_key(text) == public
    assert keywrap.encode_public_key(bytes([0xFB] * 32)).startswith("-_")  # url alphabet


@pytest.mark.parametrize(
    "text",
    [
        "",
        "A" * 42,
        "A" * 44,
        "A" * 43 + "=",
        "A" * 43 + "\n",
        "+" + "A" * 42,  # standard alphabet, not url-safe
        "A" * 42 + "B",  # unused low bits set: a second spelling of some key
        "A" * 21 + " " + "A" * 21,
    ],
)
def test_decode_public_key_rejects_malformed_text(text: str) -> None:
    with pytest.raises(ValueError):
        keywrap.decode_public_key(text)
