"""Writing C2SP signed notes, checkpoints, cosignatures and tlog-proofs (the service side).

Reading and verifying them is `offline_verify`'s job; everything written here is checked
in the tests by reading it back with that standalone verifier.

Private keys are kept in the Go `golang.org/x/mod/sumdb/note` signer-key format,
`PRIVATE+KEY+<name>+<keyid hex>+<base64(type || 32-byte Ed25519 seed)>`, so they can be
used with that ecosystem's tools too."""

from __future__ import annotations

import base64
from collections.abc import Sequence

from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from audit.offline_verify import (
    COSIGNATURE_V1,
    ED25519,
    TLOG_PROOF_HEADER,
    VerificationError,
    cosignature_message,
    key_id,
    parse_note,
)

PRIVATE_PREFIX = "PRIVATE+KEY+"


def new_signing_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def _raw_public(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def _seed(private_key: Ed25519PrivateKey) -> bytes:
    from cryptography.hazmat.primitives.serialization import NoEncryption, PrivateFormat

    return private_key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())


def verifier_key(name: str, public_key: Ed25519PublicKey, key_type: int = ED25519) -> str:
    """`name+keyid+base64(type||key)` for a log (0x01) or witness (0x04) key."""
    raw = _raw_public(public_key)
    blob = base64.b64encode(bytes([key_type]) + raw).decode()
    return f"{name}+{key_id(name, key_type, raw).hex()}+{blob}"


def cosignature_verifier_key(name: str, public_key: Ed25519PublicKey) -> str:
    return verifier_key(name, public_key, COSIGNATURE_V1)


def dump_private_key(private_key: Ed25519PrivateKey, name: str, key_type: int = ED25519) -> str:
    raw = _raw_public(private_key.public_key())
    blob = base64.b64encode(bytes([key_type]) + _seed(private_key)).decode()
    return f"{PRIVATE_PREFIX}{name}+{key_id(name, key_type, raw).hex()}+{blob}"


def dump_cosigning_key(private_key: Ed25519PrivateKey, name: str) -> str:
    return dump_private_key(private_key, name, COSIGNATURE_V1)


def _parse_private(text: str) -> tuple[str, int, Ed25519PrivateKey]:
    if not text.startswith(PRIVATE_PREFIX):
        raise VerificationError("a private key starts with PRIVATE+KEY+")
    parts = text[len(PRIVATE_PREFIX) :].strip().split("+", 2)
    if len(parts) != 3:
        raise VerificationError("a private key is PRIVATE+KEY+name+keyid+base64")
    name, hex_id, encoded = parts
    try:
        blob = base64.b64decode(encoded, validate=True)
    except ValueError:
        raise VerificationError("the private key is not valid base64") from None
    if len(blob) != 33 or blob[0] not in (ED25519, COSIGNATURE_V1):
        raise VerificationError("only Ed25519 private keys are supported")
    key = Ed25519PrivateKey.from_private_bytes(blob[1:])
    if key_id(name, blob[0], _raw_public(key.public_key())).hex() != hex_id.lower():
        raise VerificationError("the private key's id does not match its key")
    return name, blob[0], key


def load_private_key(text: str) -> Ed25519PrivateKey:
    return _parse_private(text)[2]


def load_cosigning_key(text: str) -> tuple[str, Ed25519PrivateKey]:
    """A witness key file: its name and key (written with type 0x04 or 0x01)."""
    name, _, key = _parse_private(text)
    return name, key


def format_checkpoint(
    origin: str, size: int, root_hash: bytes, extensions: Sequence[str] = ()
) -> str:
    if "\n" in origin or not origin or size < 0 or len(root_hash) != 32:
        raise ValueError("a checkpoint needs an origin line, a size and a 32-byte root")
    lines = [origin, str(size), base64.b64encode(root_hash).decode(), *extensions]
    return "\n".join(lines) + "\n"


def signature_line(name: str, key_id_: bytes, signature: bytes) -> str:
    return f"\u2014 {name} {base64.b64encode(key_id_ + signature).decode()}\n"


def sign_note(body: str, name: str, private_key: Ed25519PrivateKey) -> str:
    """A signed note: body, blank line, one Ed25519 signature line."""
    if not body.endswith("\n") or "\n\n" in body:
        raise ValueError("a note body is non-empty lines, each ending in a newline")
    signature = private_key.sign(body.encode())
    kid = key_id(name, ED25519, _raw_public(private_key.public_key()))
    return body + "\n" + signature_line(name, kid, signature)


def add_signatures(note_text: str, lines: Sequence[str]) -> str:
    """Append signature lines that the note does not carry yet."""
    present = set(note_text.splitlines(keepends=True))
    return note_text + "".join(line for line in lines if line not in present)


def cosign(
    note_text: str, witness_name: str, private_key: Ed25519PrivateKey, timestamp: int
) -> str:
    """A witness's cosignature/v1 line over the note's checkpoint body."""
    body = parse_note(note_text).body
    signature = private_key.sign(cosignature_message(body, timestamp))
    kid = key_id(witness_name, COSIGNATURE_V1, _raw_public(private_key.public_key()))
    return signature_line(witness_name, kid, timestamp.to_bytes(8, "big") + signature)


def format_tlog_proof(
    index: int, hashes: Sequence[bytes], checkpoint_text: str, extra: bytes | None = None
) -> str:
    lines = [TLOG_PROOF_HEADER]
    if extra is not None:
        lines.append("extra " + base64.b64encode(extra).decode())
    lines.append(f"index {index}")
    lines += [base64.b64encode(h).decode() for h in hashes]
    return "\n".join(lines) + "\n\n" + checkpoint_text


def inclusion_proof_json(index: int, tree_size: int, hashes: Sequence[bytes]) -> dict[str, object]:
    return {"leaf_index": index, "tree_size": tree_size, "hashes": [h.hex() for h in hashes]}


def consistency_proof_json(first: int, second: int, hashes: Sequence[bytes]) -> dict[str, object]:
    return {"first": first, "second": second, "hashes": [h.hex() for h in hashes]}
