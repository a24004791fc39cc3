"""Writing C2SP signed notes, checkpoints, cosignatures and tlog-proofs (the service side).

Reading and verifying them is `offline_verify`'s job, and everything written here is
parsed back with it before it is returned, so we never publish what our own standalone
verifier would refuse.

Private keys are strings in the Go `golang.org/x/mod/sumdb/note` signer-key format,
`PRIVATE+KEY+<name>+<key ID hex>+<base64(0x01 || 32-byte Ed25519 seed)>`, which
`note.NewSigner` reads and `note.GenerateKey` writes. A witness's cosigning key is kept
the same way with type byte 0x04 (and the type 0x04 key ID): Go's note package has no
cosigner key string, so that form is ours."""

from __future__ import annotations

import base64
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from audit.offline_verify import (
    COSIGNATURE_V1,
    ED25519,
    HASH_SIZE,
    MAX_INT63,
    TLOG_PROOF_HEADER,
    ConsistencyProof,
    InclusionProof,
    VerificationError,
    cosignature_message,
    key_id,
    parse_checkpoint,
    parse_note,
    parse_tlog_proof,
    valid_key_name,
)

PRIVATE_PREFIX = "PRIVATE+KEY+"
MAX_ORIGIN_BYTES = 255  # torchwood and the ML-DSA cosignature format cap origins here
_HEX_KEY_ID = re.compile(r"[0-9a-fA-F]{8}")
_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f]")


def new_signing_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def _raw_public(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes_raw()


def _seed(private_key: Ed25519PrivateKey) -> bytes:
    return private_key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())


def _check_key_type(key_type: int) -> None:
    if key_type not in (ED25519, COSIGNATURE_V1):
        raise ValueError("key type must be 0x01 (Ed25519 notes) or 0x04 (cosignature/v1)")


def verifier_key(name: str, public_key: Ed25519PublicKey, key_type: int = ED25519) -> str:
    """`name+keyid+base64(type||key)` for a log (0x01) or witness (0x04) key."""
    _check_key_type(key_type)
    if not valid_key_name(name):
        raise ValueError("a key name is non-empty, without spaces or plus signs")
    raw = _raw_public(public_key)
    blob = base64.b64encode(bytes([key_type]) + raw).decode()
    return f"{name}+{key_id(name, key_type, raw).hex()}+{blob}"


def cosignature_verifier_key(name: str, public_key: Ed25519PublicKey) -> str:
    return verifier_key(name, public_key, COSIGNATURE_V1)


@dataclass(frozen=True)
class SignerKey:
    name: str
    key_type: int
    private_key: Ed25519PrivateKey = field(repr=False, compare=False)


def dump_private_key(private_key: Ed25519PrivateKey, name: str, key_type: int = ED25519) -> str:
    """The Go note signer-key string (type 0x01), or our type 0x04 cosigner analogue.

    Anyone holding it can sign as name: write it only to owner-readable files."""
    _check_key_type(key_type)
    if not valid_key_name(name):
        raise ValueError("a key name is non-empty, without spaces or plus signs")
    raw = _raw_public(private_key.public_key())
    blob = base64.b64encode(bytes([key_type]) + _seed(private_key)).decode()
    return f"{PRIVATE_PREFIX}{name}+{key_id(name, key_type, raw).hex()}+{blob}"


def dump_cosigning_key(private_key: Ed25519PrivateKey, name: str) -> str:
    return dump_private_key(private_key, name, COSIGNATURE_V1)


def parse_signer_key(text: str) -> SignerKey:
    """Read a private key string; its key ID must match the key it derives."""
    text = text.strip()
    if not text.startswith(PRIVATE_PREFIX):
        raise VerificationError("a private key starts with PRIVATE+KEY+")
    name, _, rest = text[len(PRIVATE_PREFIX) :].partition("+")
    hex_id, sep, encoded = rest.partition("+")
    if not sep or not valid_key_name(name) or not _HEX_KEY_ID.fullmatch(hex_id):
        raise VerificationError("a private key is PRIVATE+KEY+<name>+<key ID>+<base64 key>")
    try:
        blob = base64.b64decode(encoded, validate=True)
    except ValueError:
        raise VerificationError("the private key is not valid base64") from None
    if len(blob) != 33 or blob[0] not in (ED25519, COSIGNATURE_V1):
        raise VerificationError("only Ed25519 private keys (type 0x01 or 0x04) are supported")
    key = Ed25519PrivateKey.from_private_bytes(blob[1:])
    if key_id(name, blob[0], _raw_public(key.public_key())) != bytes.fromhex(hex_id):
        raise VerificationError("the private key's ID does not match its name and key")
    return SignerKey(name, blob[0], key)


def load_private_key(text: str) -> Ed25519PrivateKey:
    return parse_signer_key(text).private_key


def load_cosigning_key(text: str) -> tuple[str, Ed25519PrivateKey]:
    """A witness key string: its name and key (written with type 0x04 or 0x01)."""
    signer = parse_signer_key(text)
    return signer.name, signer.private_key


def format_checkpoint(
    origin: str, size: int, root_hash: bytes, extensions: Sequence[str] = ()
) -> str:
    """The c2sp.org/tlog-checkpoint note text (unsigned), ending in a newline.

    The origin doubles as the log key's name, so it must be a valid key name too."""
    if not valid_key_name(origin) or len(origin.encode()) > MAX_ORIGIN_BYTES:
        raise ValueError("an origin is 1-255 bytes without spaces, plus signs or controls")
    if isinstance(size, bool) or not 0 <= size <= MAX_INT63:
        raise ValueError("a tree size is an integer from 0 to 2**63-1")
    if len(root_hash) != HASH_SIZE:
        raise ValueError("a root hash is 32 bytes")
    for line in extensions:
        if not line or "\n" in line or _CONTROL.search(line):
            raise ValueError("extension lines are non-empty single lines of text")
    lines = [origin, str(size), base64.b64encode(root_hash).decode(), *extensions]
    return "\n".join(lines) + "\n"


def signature_line(name: str, key_id_: bytes, signature: bytes) -> str:
    return f"\u2014 {name} {base64.b64encode(key_id_ + signature).decode()}\n"


def sign_note(body: str, name: str, private_key: Ed25519PrivateKey) -> str:
    """The full signed note: body, blank line, one Ed25519 (type 0x01) signature line."""
    if not valid_key_name(name):
        raise ValueError("a key name is non-empty, without spaces or plus signs")
    if not body.endswith("\n") or _CONTROL.search(body):
        raise ValueError("a note's text ends with a newline and has no other controls")
    kid = key_id(name, ED25519, _raw_public(private_key.public_key()))
    note = body + "\n" + signature_line(name, kid, private_key.sign(body.encode()))
    _parse_back(note, body)
    return note


def _parse_back(note_text: str, body: str) -> None:
    try:
        parsed = parse_note(note_text)
    except VerificationError as exc:
        raise ValueError(f"the note would not parse: {exc}") from None
    if parsed.body != body:
        raise ValueError("the note's text would not read back unchanged")


def add_signatures(note_text: str, extra_signature_lines: Sequence[str]) -> str:
    """Append signature lines (each "— name base64\\n") the note does not carry yet."""
    body = parse_note(note_text).body
    present = set(note_text.splitlines(keepends=True))
    added = ""
    for line in extra_signature_lines:
        if not line.startswith("\u2014 ") or not line.endswith("\n") or line.count("\n") != 1:
            raise ValueError("a signature line is '— <name> <base64>' and a newline")
        if line not in present:
            present.add(line)
            added += line
    result = note_text + added
    _parse_back(result, body)
    return result


def cosign(
    note_text: str, witness_name: str, private_key: Ed25519PrivateKey, timestamp: int
) -> str:
    """A witness's cosignature/v1 signature line over the note's checkpoint text.

    The caller (the witness) must first have checked the checkpoint's signature and its
    consistency with the last checkpoint it cosigned: this only signs."""
    if not valid_key_name(witness_name):
        raise ValueError("a key name is non-empty, without spaces or plus signs")
    if isinstance(timestamp, bool) or not 0 <= timestamp <= MAX_INT63:
        raise ValueError("a cosignature timestamp is from 0 to 2**63-1 seconds")
    body = parse_note(note_text).body
    parse_checkpoint(body)  # cosignature/v1 is defined over checkpoints only
    signature = private_key.sign(cosignature_message(body, timestamp))
    kid = key_id(witness_name, COSIGNATURE_V1, _raw_public(private_key.public_key()))
    return signature_line(witness_name, kid, timestamp.to_bytes(8, "big") + signature)


def format_tlog_proof(
    index: int, hashes: Sequence[bytes], checkpoint_text: str, extra: bytes | None = None
) -> str:
    """c2sp.org/tlog-proof@v1 text: header, optional extra, index, hashes, checkpoint."""
    lines = [TLOG_PROOF_HEADER]
    if extra is not None:
        lines.append("extra " + base64.b64encode(extra).decode())
    lines.append(f"index {index}")
    lines += [base64.b64encode(h).decode() for h in hashes]
    text = "\n".join(lines) + "\n\n" + checkpoint_text
    try:
        parsed = parse_tlog_proof(text)
    except VerificationError as exc:
        raise ValueError(f"the tlog-proof would not parse: {exc}") from None
    if (parsed.index, parsed.hashes, parsed.extra) != (index, list(hashes), extra):
        raise ValueError("the tlog-proof would not read back unchanged")
    return text


def inclusion_proof_to_json(
    leaf_index: int, tree_size: int, hashes: Sequence[bytes]
) -> dict[str, object]:
    """`{"leaf_index": i, "tree_size": n, "hashes": [lowercase hex, ...]}` (DESIGN §4)."""
    return {"leaf_index": leaf_index, "tree_size": tree_size, "hashes": [h.hex() for h in hashes]}


def consistency_proof_to_json(
    first: int, second: int, hashes: Sequence[bytes]
) -> dict[str, object]:
    """`{"first": m, "second": n, "hashes": [lowercase hex, ...]}` (DESIGN §4)."""
    return {"first": first, "second": second, "hashes": [h.hex() for h in hashes]}


def proof_to_json(proof: InclusionProof | ConsistencyProof) -> dict[str, object]:
    if isinstance(proof, InclusionProof):
        return inclusion_proof_to_json(proof.leaf_index, proof.tree_size, proof.hashes)
    return consistency_proof_to_json(proof.first, proof.second, proof.hashes)


# Earlier names, kept for callers written against them.
inclusion_proof_json = inclusion_proof_to_json
consistency_proof_json = consistency_proof_to_json
