"""`bwc-verify`: the standalone offline verifier of custody-log evidence.

It imports only the Python standard library and `cryptography`, so a court, an auditor
or a witness can run this one file without trusting (or installing) the rest of the
project. It checks:

- RFC 9162 §2.1 Merkle trees: §2.1.3.2 inclusion and §2.1.4.2 consistency proofs, in
  the JSON form of DESIGN.md §4 or as C2SP tlog-proof@v1 text;
- C2SP signed notes (c2sp.org/signed-note) with Ed25519 keys (type 0x01), and
  checkpoints (c2sp.org/tlog-checkpoint) signed that way;
- C2SP witness cosignatures `cosignature/v1` (c2sp.org/tlog-cosignature, type 0x04);
- the completeness of one evidence item's custody chain (seq 1..n, each `prev` the leaf
  hash of the item's previous event).

Policy where the specifications leave room, chosen to be strict:

- Every hash is exactly 32 bytes and is rejected before any arithmetic otherwise. (One
  transparency-dev probe accepts two equal 12-byte "roots" at equal sizes; we do not.)
- Tree sizes, indices and timestamps in parsed text are at most 2**63 - 1, as in Go's
  implementations; inclusion and consistency proofs then have at most 64 hashes.
- base64 is RFC 4648 §4 with padding and zero pad bits (what every encoder writes).
- If any signature line by a key we were given fails to verify, the note is rejected
  (signed-note: "clients SHOULD reject the whole note"), even when another line by the
  same key verifies.
- A checkpoint's origin must equal the log key's name (tlog-checkpoint: SHOULD match).
- A signed note is at most 1,000,000 bytes with at most 100 signature lines (the spec
  asks verifiers to accept at least 16).

On the command line (`bwc-verify --help`), a leaf file (`--leaf`) holds the exact leaf
bytes, and a leaves file (`chain`) holds the exact bytes of each leaf, one per line,
separated by LF: a leaf is RFC 8785 canonical JSON, which never contains a raw newline.
Exit status: 0 every check holds, 1 a check failed, 2 a usage or file error."""

from __future__ import annotations

import argparse
import base64
import binascii
import hashlib
import json
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

HASH_SIZE = 32
ED25519 = 0x01
COSIGNATURE_V1 = 0x04
MAX_INT63 = 2**63 - 1
MAX_PROOF_HASHES = 64
MAX_NOTE_BYTES = 1_000_000
MAX_SIGNATURES = 100
TLOG_PROOF_HEADER = "c2sp.org/tlog-proof@v1"
EMPTY_TREE_ROOT = hashlib.sha256(b"").digest()

_SIGNATURE_PREFIX = "\u2014 "  # em dash, space
_DECIMAL = re.compile(r"0|[1-9][0-9]*")  # ASCII only, no leading zeros
_HEX_HASH = re.compile(r"[0-9a-f]{64}")
_HEX_KEY_ID = re.compile(r"[0-9a-fA-F]{8}")
_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f]")
# Unicode White_Space, which is what Go's unicode.IsSpace (and so the reference note
# package) refuses in key names.
_SPACES = frozenset(
    "\t\n\v\f\r \x85\xa0\u1680\u2028\u2029\u202f\u205f\u3000"
    + "".join(chr(c) for c in range(0x2000, 0x200B))
)


class VerificationError(Exception):
    """Evidence does not verify, or is malformed; the message says what, in one line."""


# --- RFC 9162 §2.1 Merkle tree -----------------------------------------------------------


def leaf_hash(leaf: bytes) -> bytes:
    """SHA-256(0x00 || leaf), RFC 9162 §2.1.1."""
    return hashlib.sha256(b"\x00" + leaf).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 || left || right), RFC 9162 §2.1.1."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def _check_hashes(hashes: Sequence[object], what: str) -> None:
    for h in hashes:
        if not isinstance(h, bytes) or len(h) != HASH_SIZE:
            raise VerificationError(f"{what}: every hash must be exactly 32 bytes")


def _check_count(value: object, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise VerificationError(f"{what} must be a non-negative integer")
    return value


def merkle_root(leaf_hashes: Sequence[bytes]) -> bytes:
    """RFC 9162 MTH over already-hashed leaves; SHA-256("") for the empty tree."""
    _check_hashes(leaf_hashes, "merkle_root")
    if not leaf_hashes:
        return EMPTY_TREE_ROOT
    level = list(leaf_hashes)
    # Pairing left to right and promoting an odd last node reproduces MTH's split at
    # the largest power of two below n, one level at a time.
    while len(level) > 1:
        paired = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0]


def root_from_inclusion_proof(
    leaf_hash: bytes, index: int, tree_size: int, proof: Sequence[bytes]
) -> bytes:
    """The root implied by an inclusion proof, by RFC 9162 §2.1.3.2 steps 1-4.

    The result means nothing until compared with a root the caller trusts: note that
    tree_size is not bound by the proof, only by the signed checkpoint it comes from."""
    _check_hashes([leaf_hash, *proof], "inclusion proof")
    _check_count(index, "the leaf index")
    _check_count(tree_size, "the tree size")
    if index >= tree_size:
        raise VerificationError(f"leaf index {index} is outside a tree of size {tree_size}")
    fn, sn = index, tree_size - 1
    r = leaf_hash
    for p in proof:
        if sn == 0:
            raise VerificationError("the inclusion proof has too many hashes")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise VerificationError("the inclusion proof has too few hashes")
    return r


def verify_inclusion(
    leaf_hash: bytes, index: int, tree_size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """RFC 9162 §2.1.3.2: raise unless the leaf hash is entry index of the tree with root."""
    _check_hashes([root], "inclusion proof root")
    if root_from_inclusion_proof(leaf_hash, index, tree_size, proof) != root:
        raise VerificationError(
            f"the proof does not lead from leaf {index} to the root of the tree of size {tree_size}"
        )


def verify_consistency(
    size1: int, size2: int, proof: Sequence[bytes], root1: bytes, root2: bytes
) -> None:
    """RFC 9162 §2.1.4.2: raise unless the tree (size2, root2) extends (size1, root1).

    size1 = 0 is refused as meaningless (every tree extends the empty one); equal sizes
    need an empty proof and equal roots, as in transparency-dev/merkle."""
    _check_hashes([root1, root2, *proof], "consistency proof")
    _check_count(size1, "the first tree size")
    _check_count(size2, "the second tree size")
    if size1 == 0:
        raise VerificationError("a consistency proof from the empty tree is meaningless")
    if size2 < size1:
        raise VerificationError(f"tree size {size2} is smaller than tree size {size1}")
    if size1 == size2:
        if proof:
            raise VerificationError("a consistency proof between equal sizes must be empty")
        if root1 != root2:
            raise VerificationError(f"two different roots for the tree of size {size1}")
        return
    if not proof:
        raise VerificationError("the consistency proof is empty")
    path = list(proof)
    if size1 & (size1 - 1) == 0:  # an exact power of 2: the old root is the first node
        path.insert(0, root1)
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise VerificationError("the consistency proof has too many hashes")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise VerificationError("the consistency proof has too few hashes")
    if fr != root1:
        raise VerificationError(f"the proof does not lead to the root of the tree of size {size1}")
    if sr != root2:
        raise VerificationError(f"the proof does not lead to the root of the tree of size {size2}")


# --- Proof JSON (DESIGN.md §4) -------------------------------------------------------------


@dataclass(frozen=True)
class InclusionProof:
    leaf_index: int
    tree_size: int
    hashes: list[bytes]


@dataclass(frozen=True)
class ConsistencyProof:
    first: int
    second: int
    hashes: list[bytes]


def _json_object(obj: object, keys: set[str], what: str) -> dict[str, Any]:
    if not isinstance(obj, dict) or set(obj) != keys:
        raise VerificationError(f"{what} must be a JSON object with exactly {sorted(keys)}")
    return obj


def _json_size(obj: dict[str, Any], key: str) -> int:
    value = obj[key]
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_INT63:
        raise VerificationError(f"{key} must be an integer from 0 to 2**63-1")
    return value


def _json_hashes(obj: dict[str, Any]) -> list[bytes]:
    hashes = obj["hashes"]
    if not isinstance(hashes, list) or len(hashes) > MAX_PROOF_HASHES:
        raise VerificationError(f"hashes must be a list of at most {MAX_PROOF_HASHES} strings")
    for h in hashes:
        if not isinstance(h, str) or not _HEX_HASH.fullmatch(h):
            raise VerificationError("each proof hash must be 64 lowercase hex digits")
    return [bytes.fromhex(h) for h in hashes]


def inclusion_proof_from_json(obj: object) -> InclusionProof:
    """`{"leaf_index": i, "tree_size": n, "hashes": [hex, ...]}` with 0 <= i < n."""
    o = _json_object(obj, {"leaf_index", "tree_size", "hashes"}, "an inclusion proof")
    index, size = _json_size(o, "leaf_index"), _json_size(o, "tree_size")
    if index >= size:
        raise VerificationError(f"leaf_index {index} is outside a tree of size {size}")
    return InclusionProof(index, size, _json_hashes(o))


def consistency_proof_from_json(obj: object) -> ConsistencyProof:
    """`{"first": m, "second": n, "hashes": [hex, ...]}` with m <= n."""
    o = _json_object(obj, {"first", "second", "hashes"}, "a consistency proof")
    first, second = _json_size(o, "first"), _json_size(o, "second")
    if first > second:
        raise VerificationError(f"first ({first}) is larger than second ({second})")
    return ConsistencyProof(first, second, _json_hashes(o))


# --- C2SP signed notes ---------------------------------------------------------------------


def key_id(name: str, key_type: int, public_key: bytes) -> bytes:
    """SHA-256(name || 0x0A || type || public key)[:4], c2sp.org/signed-note."""
    return hashlib.sha256(name.encode() + b"\n" + bytes([key_type]) + public_key).digest()[:4]


def _b64decode(text: str, what: str) -> bytes:
    """RFC 4648 §4 base64 with padding; refuses anything an encoder would not write."""
    try:
        raw = binascii.a2b_base64(text.encode("ascii"), strict_mode=True)
    except (UnicodeEncodeError, binascii.Error):
        raise VerificationError(f"{what} is not valid base64") from None
    if base64.b64encode(raw).decode() != text:
        raise VerificationError(f"{what} is not canonical base64")
    return raw


def valid_key_name(name: str) -> bool:
    """Non-empty UTF-8, no Unicode spaces, no plus signs, no control characters."""
    return (
        bool(name)
        and "+" not in name
        and not any(c in _SPACES or "\ud800" <= c <= "\udfff" for c in name)
        and not _CONTROL.search(name)
    )


def _printable(text: str, limit: int = 80) -> str:
    """A string from the evidence made safe to print on one line of a terminal."""
    shown = "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in text[:limit])
    return shown + ("…" if len(text) > limit else "")


def _show(text: str) -> str:
    return repr(_printable(text))


@dataclass(frozen=True)
class VerifierKey:
    name: str
    key_id: bytes
    key_type: int
    public_key: Ed25519PublicKey = field(compare=False, repr=False)

    @property
    def public_key_bytes(self) -> bytes:
        return self.public_key.public_bytes_raw()


def parse_verifier_key(vkey: str) -> VerifierKey:
    """Parse `<name>+<8 hex key ID>+<base64(type || 32-byte Ed25519 key)>`.

    Types 0x01 (note signatures) and 0x04 (cosignature/v1) are accepted; the key ID
    must be the one the name, type and key imply, so a typo cannot go unnoticed."""
    if not isinstance(vkey, str) or len(vkey) > 1000:
        raise VerificationError("a verifier key is a short line of text")
    name, _, rest = vkey.strip(" \t\r\n").partition("+")
    hex_id, sep, encoded = rest.partition("+")
    if not sep or not valid_key_name(name) or not _HEX_KEY_ID.fullmatch(hex_id):
        raise VerificationError("a verifier key is <name>+<8 hex digit key ID>+<base64 key>")
    blob = _b64decode(encoded, "the verifier key")
    if not blob or blob[0] not in (ED25519, COSIGNATURE_V1):
        kind = f"0x{blob[0]:02x}" if blob else "missing"
        raise VerificationError(
            f"verifier key type {kind} is not Ed25519 (0x01) or cosignature/v1 (0x04)"
        )
    if len(blob) != 1 + 32:
        raise VerificationError("an Ed25519 verifier key holds 32 bytes of public key")
    if key_id(name, blob[0], blob[1:]) != bytes.fromhex(hex_id):
        raise VerificationError(
            f"the key ID {hex_id} does not match the name and key of {_show(name)}"
        )
    try:
        public_key = Ed25519PublicKey.from_public_bytes(blob[1:])
    except ValueError:
        raise VerificationError("the verifier key is not an Ed25519 public key") from None
    return VerifierKey(name, bytes.fromhex(hex_id), blob[0], public_key)


def as_cosignature_key(key: VerifierKey) -> VerifierKey:
    """The same Ed25519 key as a cosignature/v1 witness key (type 0x04 key ID).

    Witnesses often publish their key as a type 0x01 vkey; tlog-cosignature computes
    the key ID of its signature lines with type 0x04 over the same public key."""
    if key.key_type == COSIGNATURE_V1:
        return key
    raw = key.public_key_bytes
    return VerifierKey(
        key.name, key_id(key.name, COSIGNATURE_V1, raw), COSIGNATURE_V1, key.public_key
    )


@dataclass(frozen=True)
class NoteSignature:
    name: str
    key_id: bytes
    signature: bytes  # the bytes after the key ID
    line: str  # the whole line, with its final newline


@dataclass(frozen=True)
class Note:
    body: str  # the signed text, with its final newline
    signatures: list[NoteSignature]


def _check_text(text: object, what: str, limit: int) -> str:
    if not isinstance(text, str) or len(text) > limit:
        raise VerificationError(f"{what} must be text of at most {limit} bytes")
    try:
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError:
        raise VerificationError(f"{what} is not valid UTF-8") from None
    if size > limit:
        raise VerificationError(f"{what} must be text of at most {limit} bytes")
    if _CONTROL.search(text):
        hint = " (CRLF line endings?)" if "\r" in text else ""
        raise VerificationError(f"{what} contains a control character other than newline{hint}")
    return text


def _parse_signature_line(line: str) -> NoteSignature:
    if not line.startswith(_SIGNATURE_PREFIX):
        raise VerificationError("a signature line must start with an em dash (U+2014) and a space")
    name, _, encoded = line[len(_SIGNATURE_PREFIX) :].partition(" ")
    if not valid_key_name(name) or not encoded:
        raise VerificationError("a signature line is '— <key name> <base64 signature>'")
    blob = _b64decode(encoded, "a note signature")
    if len(blob) < 5:
        raise VerificationError("a note signature is a 4-byte key ID and at least one byte")
    return NoteSignature(name, blob[:4], blob[4:], line + "\n")


def parse_note(text: str) -> Note:
    """Split a signed note into its text and signature lines; verify nothing yet.

    The text runs up to and including the newline before the last blank line; every
    line after it must be a well-formed signature line ("— name base64")."""
    _check_text(text, "a signed note", MAX_NOTE_BYTES)
    split = text.rfind("\n\n")
    if split < 0:
        raise VerificationError("a signed note needs a blank line before its signatures")
    body, block = text[: split + 1], text[split + 2 :]
    if not block.endswith("\n"):
        raise VerificationError("a signed note must end with signature lines and a newline")
    lines = block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise VerificationError(f"a signed note may carry at most {MAX_SIGNATURES} signatures")
    return Note(body, [_parse_signature_line(line) for line in lines])


def _ed25519_valid(public_key: Ed25519PublicKey, signature: bytes, message: bytes) -> bool:
    if len(signature) != 64:
        return False
    try:
        public_key.verify(signature, message)
    except InvalidSignature:
        return False
    return True


def verify_note(text: str, key: VerifierKey) -> Note:
    """Return the note if key (type 0x01) signed it; raise otherwise.

    Lines from other keys are ignored, as the spec requires; every line with key's
    name and key ID must verify, and there must be at least one."""
    if key.key_type != ED25519:
        raise VerificationError("signed notes are verified with Ed25519 (type 0x01) keys")
    note = parse_note(text)
    mine = [s for s in note.signatures if s.name == key.name and s.key_id == key.key_id]
    if not mine:
        raise VerificationError(f"the note carries no signature by {_show(key.name)}")
    message = note.body.encode()
    for sig in mine:
        if not _ed25519_valid(key.public_key, sig.signature, message):
            raise VerificationError(
                f"the signature by {_show(key.name)} does not verify: the text was changed "
                "or signed with another key"
            )
    return note


# --- Checkpoints and cosignatures ------------------------------------------------------------


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    size: int
    root_hash: bytes
    extensions: list[str]


def parse_checkpoint(body: str) -> Checkpoint:
    """Parse a c2sp.org/tlog-checkpoint note text (no signatures).

    Three or more non-empty lines: origin, decimal tree size without leading zeros,
    base64 32-byte root hash, then any opaque extension lines."""
    _check_text(body, "a checkpoint", MAX_NOTE_BYTES)
    if not body.endswith("\n"):
        raise VerificationError("a checkpoint's text must end with a newline")
    lines = body[:-1].split("\n")
    if len(lines) < 3 or not all(lines):
        raise VerificationError(
            "a checkpoint is at least three non-empty lines: origin, tree size, root hash"
        )
    origin, size_text, root_text, *extensions = lines
    if not _DECIMAL.fullmatch(size_text) or int(size_text) > MAX_INT63:
        raise VerificationError("the checkpoint's tree size must be a decimal number")
    root = _b64decode(root_text, "the checkpoint's root hash")
    if len(root) != HASH_SIZE:
        raise VerificationError("the checkpoint's root hash must be 32 bytes")
    return Checkpoint(origin, int(size_text), root, extensions)


def verify_checkpoint(text: str, key: VerifierKey) -> Checkpoint:
    """A checkpoint signed by the log key (type 0x01) whose name is the origin."""
    checkpoint = parse_checkpoint(verify_note(text, key).body)
    if checkpoint.origin != key.name:
        raise VerificationError(
            f"the checkpoint's origin {_show(checkpoint.origin)} is not the log key's name "
            f"{_show(key.name)}"
        )
    return checkpoint


def cosignature_message(body: str, timestamp: int) -> bytes:
    """What a cosignature/v1 signs: two header lines, then the whole checkpoint text."""
    return f"cosignature/v1\ntime {timestamp}\n".encode() + body.encode()


def verify_cosignature(note_text: str, key: VerifierKey) -> int:
    """Check the witness's cosignature/v1 on a checkpoint; return its POSIX timestamp.

    A signature line is `— <name> base64(key ID (4) || timestamp (8, big-endian) ||
    Ed25519 signature (64))`, the key ID computed with type 0x04 (a type 0x01 key is
    converted). This does not check the log's own signature: see verify_checkpoint."""
    witness = as_cosignature_key(key)
    note = parse_note(note_text)
    parse_checkpoint(note.body)  # cosignature/v1 is defined over checkpoints only
    mine = [s for s in note.signatures if s.name == witness.name and s.key_id == witness.key_id]
    if not mine:
        raise VerificationError(f"the note carries no cosignature by {_show(witness.name)}")
    timestamps = []
    for sig in mine:
        if len(sig.signature) != 8 + 64:
            raise VerificationError(
                f"the cosignature by {_show(witness.name)} is not a timestamp and an Ed25519 "
                "signature"
            )
        timestamp = int.from_bytes(sig.signature[:8], "big")
        message = cosignature_message(note.body, timestamp)
        if timestamp > MAX_INT63 or not _ed25519_valid(
            witness.public_key, sig.signature[8:], message
        ):
            raise VerificationError(f"the cosignature by {_show(witness.name)} does not verify")
        timestamps.append(timestamp)
    return timestamps[0]


# --- C2SP tlog-proof@v1 --------------------------------------------------------------------


@dataclass(frozen=True)
class TlogProof:
    extra: bytes | None  # opaque and NOT authenticated
    index: int
    hashes: list[bytes]
    checkpoint_text: str  # the signed checkpoint note, verbatim


def parse_tlog_proof(text: str) -> TlogProof:
    """Parse c2sp.org/tlog-proof@v1: header, optional `extra`, `index`, hashes, blank
    line, then a signed checkpoint note (parsed here, its signature not yet checked)."""
    _check_text(text, "a tlog-proof", MAX_NOTE_BYTES + 8192)
    head, separator, checkpoint_text = text.partition("\n\n")
    if not separator:
        raise VerificationError("a tlog-proof needs a blank line before its checkpoint")
    lines = head.split("\n")
    if lines[0] != TLOG_PROOF_HEADER:
        raise VerificationError(f"a tlog-proof starts with the line {TLOG_PROOF_HEADER}")
    rest = lines[1:]
    extra = None
    if rest and rest[0].startswith("extra "):
        extra = _b64decode(rest.pop(0)[len("extra ") :], "the tlog-proof's extra data")
    if not rest or not rest[0].startswith("index "):
        raise VerificationError("a tlog-proof needs an 'index N' line")
    index_text = rest.pop(0)[len("index ") :]
    if not _DECIMAL.fullmatch(index_text) or int(index_text) > MAX_INT63:
        raise VerificationError("the tlog-proof's index must be a decimal number")
    if len(rest) > MAX_PROOF_HASHES:
        raise VerificationError(f"a tlog-proof has at most {MAX_PROOF_HASHES} proof hashes")
    hashes = [_b64decode(line, "a tlog-proof hash") for line in rest]
    _check_hashes(hashes, "tlog-proof")
    parse_checkpoint(parse_note(checkpoint_text).body)
    return TlogProof(extra, int(index_text), hashes, checkpoint_text)


def verify_tlog_proof(text: str, leaf: bytes, key: VerifierKey) -> Checkpoint:
    """The leaf (exact bytes) is entry `index` of the tree the embedded checkpoint,
    signed by the log key, commits to. The extra data is not looked at."""
    proof = parse_tlog_proof(text)
    checkpoint = verify_checkpoint(proof.checkpoint_text, key)
    verify_inclusion(
        leaf_hash(leaf), proof.index, checkpoint.size, proof.hashes, checkpoint.root_hash
    )
    return checkpoint


# --- Custody chains ------------------------------------------------------------------------


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        raise VerificationError("a leaf repeats a JSON key")
    return dict(pairs)


def _refuse_constant(name: str) -> None:
    raise VerificationError(f"a leaf contains {name}, which is not JSON")


def _event(leaf: bytes, position: int) -> Any:
    if not isinstance(leaf, bytes):
        raise VerificationError("leaves must be bytes")
    try:
        return json.loads(
            leaf.decode("utf-8"),
            object_pairs_hook=_no_duplicate_keys,
            parse_constant=_refuse_constant,
        )
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise VerificationError(f"the leaf at position {position} is not UTF-8 JSON") from None


def _walk_chains(leaves: Sequence[bytes], only: str | None) -> dict[str, int]:
    heads: dict[str, tuple[int, bytes]] = {}  # item -> (last seq, its leaf hash)
    for position, leaf in enumerate(leaves, start=1):
        event = _event(leaf, position)
        if not isinstance(event, dict) or "evidence_id" not in event:
            continue
        item = event["evidence_id"]
        if only is not None and item != only:
            continue
        if not isinstance(item, str):
            raise VerificationError(f"the leaf at position {position} has a non-text evidence_id")
        seq, prev = event.get("seq"), event.get("prev")
        last_seq, last_hash = heads.get(item, (0, b""))
        where = f"evidence {_show(item)}, leaf at position {position}"
        if not isinstance(seq, int) or isinstance(seq, bool):
            raise VerificationError(f"{where}: the event has no integer seq")
        if seq != last_seq + 1:
            kind = "repeats" if seq <= last_seq else "skips to"
            raise VerificationError(
                f"{where}: expected seq {last_seq + 1}, but the event {kind} {seq}"
            )
        if seq == 1 and prev is not None:
            raise VerificationError(f"{where}: seq 1 must not have a prev link")
        if seq > 1 and prev != last_hash.hex():
            raise VerificationError(
                f"{where}: seq {seq} does not link to the leaf hash of seq {seq - 1}"
            )
        heads[item] = (seq, leaf_hash(leaf))
    return {item: seq for item, (seq, _) in heads.items()}


def check_chains(leaves: Sequence[bytes]) -> dict[str, int]:
    """Check every evidence item's custody chain in one pass; return events per item.

    The same rules as check_item_chain, for all items at once; a leaf that is not UTF-8
    JSON, or a broken chain of any item, raises."""
    return _walk_chains(leaves, None)


def check_item_chain(leaves: Sequence[bytes], evidence_id: str) -> int:
    """Check one evidence item's custody chain in leaves (log order); return its length.

    The item's events (`"evidence_id": evidence_id`) must carry seq 1, 2, ... n with no
    gap or repeat, seq 1 no `prev`, and every later one `prev` = the lowercase hex leaf
    hash of the item's previous event. Every leaf must be UTF-8 JSON (each is parsed,
    so an event cannot hide behind an escaped id); other items' events are skipped.
    This proves the chain unbroken from its start; that nothing follows event n needs
    the whole log checked against a signed checkpoint."""
    count = _walk_chains(leaves, evidence_id).get(evidence_id)
    if count is None:
        raise VerificationError(f"no events of evidence {_show(evidence_id)} among the leaves")
    return count


# --- Command line ----------------------------------------------------------------------------


class _UsageError(Exception):
    """Bad arguments or unreadable files: exit status 2."""


def _read_bytes(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise _UsageError(f"cannot read {path}: {exc.strerror or exc}") from None


def _read_text(path: str) -> str:
    try:
        return _read_bytes(path).decode("utf-8")
    except UnicodeDecodeError:
        raise VerificationError(f"{path} is not UTF-8 text") from None


def _read_json(path: str) -> object:
    try:
        return json.loads(_read_text(path), parse_constant=_refuse_constant)
    except (ValueError, RecursionError):
        raise VerificationError(f"{path} is not JSON") from None


def _read_keys(path: str) -> tuple[VerifierKey, list[VerifierKey]]:
    """The log's key (first line) and any witness keys; blank and # lines are skipped."""
    try:
        text = _read_bytes(path).decode("utf-8")
    except UnicodeDecodeError:
        raise _UsageError(f"{path} is not UTF-8 text") from None
    keys = []
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip() and not line.lstrip().startswith("#"):
            try:
                keys.append(parse_verifier_key(line))
            except VerificationError as exc:
                raise _UsageError(f"{path} line {number}: {exc}") from None
    if not keys:
        raise _UsageError(f"{path} holds no verifier key")
    if keys[0].key_type != ED25519:
        raise _UsageError(f"{path}: the first key must be the log's Ed25519 (type 0x01) key")
    return keys[0], keys[1:]


def _utc(timestamp: int) -> str:
    try:
        return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (OverflowError, ValueError, OSError):
        return f"unix time {timestamp}"


def _checkpoint_ok(text: str, log: VerifierKey, witnesses: list[VerifierKey]) -> Checkpoint:
    checkpoint = verify_checkpoint(text, log)
    print(
        f"ok: checkpoint of {_printable(checkpoint.origin)} at tree size {checkpoint.size} "
        f"is signed by the log key {log.name}+{log.key_id.hex()}"
    )
    note = parse_note(text)
    for witness in witnesses:
        cosig = as_cosignature_key(witness)
        if not any(s.name == cosig.name and s.key_id == cosig.key_id for s in note.signatures):
            print(f"note: no cosignature by witness {witness.name}")
            continue
        timestamp = verify_cosignature(text, witness)
        print(f"ok: cosigned by witness {witness.name} at {_utc(timestamp)} ({timestamp})")
    return checkpoint


def _cmd_checkpoint(args: argparse.Namespace) -> None:
    log, witnesses = _read_keys(args.key)
    _checkpoint_ok(_read_text(args.checkpoint), log, witnesses)


def _check_leaf(leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes) -> None:
    try:
        verify_inclusion(leaf_hash(leaf), index, size, proof, root)
    except VerificationError as exc:
        hint = ""
        if leaf.endswith(b"\n"):
            hint = " (the leaf file ends with a newline, which is part of the leaf's bytes)"
        raise VerificationError(f"{exc}{hint}") from None


def _cmd_inclusion(args: argparse.Namespace) -> None:
    log, witnesses = _read_keys(args.key)
    leaf = _read_bytes(args.leaf)
    given = _read_text(args.checkpoint) if args.checkpoint else None
    if args.tlog_proof:
        tlog = parse_tlog_proof(_read_text(args.tlog_proof))
        checkpoint = _checkpoint_ok(tlog.checkpoint_text, log, witnesses)
        if given is not None and verify_checkpoint(given, log) != checkpoint:
            raise VerificationError("the tlog-proof's checkpoint is not the --checkpoint given")
        index, hashes = tlog.index, tlog.hashes
        if tlog.extra is not None:
            print(f"note: the proof's {len(tlog.extra)} bytes of extra data are not authenticated")
    else:
        if given is None:
            raise _UsageError("--proof needs --checkpoint (or use --tlog-proof)")
        checkpoint = _checkpoint_ok(given, log, witnesses)
        proof = inclusion_proof_from_json(_read_json(args.proof))
        if proof.tree_size != checkpoint.size:
            raise VerificationError(
                f"the proof is for tree size {proof.tree_size}, the checkpoint is for "
                f"{checkpoint.size}"
            )
        index, hashes = proof.leaf_index, proof.hashes
    _check_leaf(leaf, index, checkpoint.size, hashes, checkpoint.root_hash)
    print(
        f"ok: the leaf (leaf hash {leaf_hash(leaf).hex()}) is entry {index} of "
        f"{_printable(checkpoint.origin)} at tree size {checkpoint.size}"
    )


def _cmd_consistency(args: argparse.Namespace) -> None:
    log, witnesses = _read_keys(args.key)
    old = _checkpoint_ok(_read_text(args.old), log, witnesses)
    new = _checkpoint_ok(_read_text(args.new), log, witnesses)
    proof = consistency_proof_from_json(_read_json(args.proof))
    if (proof.first, proof.second) != (old.size, new.size):
        raise VerificationError(
            f"the proof is from size {proof.first} to {proof.second}, the checkpoints are "
            f"sizes {old.size} and {new.size}"
        )
    if old.size == 0:
        # RFC 9162 defines no proof from the empty tree: every tree extends it.
        if proof.hashes or old.root_hash != EMPTY_TREE_ROOT:
            raise VerificationError("a checkpoint of size 0 must have the empty tree's root")
    else:
        verify_consistency(old.size, new.size, proof.hashes, old.root_hash, new.root_hash)
    print(f"ok: the tree of size {new.size} extends the tree of size {old.size}: append-only")


def _leaf_lines(path: str) -> list[bytes]:
    """One leaf per line, the exact leaf bytes: JCS (RFC 8785) output has no raw newline."""
    data = _read_bytes(path)
    lines = data.split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    for number, line in enumerate(lines, start=1):
        if not line:
            raise VerificationError(f"{path} line {number} is empty; leaves are one per line")
        if line.endswith(b"\r"):
            raise VerificationError(
                f"{path} line {number} ends with a carriage return; leaves are exact bytes, "
                "one per line, separated by LF"
            )
    return lines


def _cmd_chain(args: argparse.Namespace) -> None:
    if (args.key is None) != (args.checkpoint is None):
        raise _UsageError("--key and --checkpoint go together")
    leaves = _leaf_lines(args.leaves)
    count = check_item_chain(leaves, args.evidence_id)
    print(
        f"ok: evidence {args.evidence_id} has an unbroken custody chain of {count} events "
        f"(seq 1 to {count}) among {len(leaves)} leaves"
    )
    if args.key is None:
        print("note: give --key and --checkpoint to show that no later event was left out")
        return
    log, witnesses = _read_keys(args.key)
    checkpoint = _checkpoint_ok(_read_text(args.checkpoint), log, witnesses)
    if len(leaves) != checkpoint.size:
        raise VerificationError(
            f"the file holds {len(leaves)} leaves, the checkpoint's tree has {checkpoint.size}"
        )
    if merkle_root([leaf_hash(leaf) for leaf in leaves]) != checkpoint.root_hash:
        raise VerificationError("the leaves are not the log the checkpoint commits to")
    print(
        f"ok: the leaves are the whole log at tree size {checkpoint.size}, so the chain of "
        f"evidence {args.evidence_id} is complete up to that checkpoint"
    )


def _cmd_bundle(args: argparse.Namespace) -> None:
    raise _UsageError(
        "export-bundle verification is not available yet in this version; check a bundle's "
        "parts with the checkpoint, inclusion, consistency and chain commands"
    )


_COMMANDS = ("checkpoint", "inclusion", "consistency", "chain", "bundle")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bwc-verify",
        description="Verify BWC Evidence custody-log material offline (C2SP checkpoints, "
        "cosignatures and tlog-proofs; RFC 9162 proofs; custody chains).",
        epilog="Exit status: 0 every check holds, 1 a check failed, 2 a usage or file error. "
        "A key file holds verifier keys (name+keyid+base64), one per line: the log's first, "
        "then any witnesses' whose cosignatures should be reported.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    key_help = "file of verifier keys: the log's first, then any witnesses'"

    cp = sub.add_parser("checkpoint", help="verify a signed checkpoint and its cosignatures")
    cp.add_argument("--key", required=True, help=key_help)
    cp.add_argument("checkpoint", help="the signed checkpoint note")
    cp.set_defaults(func=_cmd_checkpoint)

    inc = sub.add_parser("inclusion", help="verify that a leaf is in a checkpointed tree")
    inc.add_argument("--key", required=True, help=key_help)
    inc.add_argument("--leaf", required=True, help="file holding the exact leaf bytes")
    inc.add_argument("--checkpoint", help="the signed checkpoint note")
    how = inc.add_mutually_exclusive_group(required=True)
    how.add_argument("--proof", help="inclusion proof JSON {leaf_index, tree_size, hashes}")
    how.add_argument("--tlog-proof", help="a c2sp.org/tlog-proof@v1 file (holds its checkpoint)")
    inc.set_defaults(func=_cmd_inclusion)

    con = sub.add_parser("consistency", help="verify that a newer checkpoint extends an older")
    con.add_argument("--key", required=True, help=key_help)
    con.add_argument(
        "--proof", required=True, help="consistency proof JSON {first, second, hashes}"
    )
    con.add_argument("old", help="the older signed checkpoint")
    con.add_argument("new", help="the newer signed checkpoint")
    con.set_defaults(func=_cmd_consistency)

    chain = sub.add_parser("chain", help="verify an evidence item's custody chain")
    chain.add_argument("--evidence-id", required=True)
    chain.add_argument("--key", help=key_help + " (with --checkpoint)")
    chain.add_argument(
        "--checkpoint", help="signed checkpoint of the whole log given in LEAVES (optional)"
    )
    chain.add_argument(
        "leaves", help="file of leaves in log order: the exact leaf bytes, one per line"
    )
    chain.set_defaults(func=_cmd_chain)

    bundle = sub.add_parser("bundle", help="verify an export bundle (not available yet)")
    bundle.add_argument("path")
    bundle.set_defaults(func=_cmd_bundle)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run bwc-verify; return 0 (all checks hold), 1 (a check failed) or 2 (usage/IO)."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    if len(args_list) == 1 and not args_list[0].startswith("-") and args_list[0] not in _COMMANDS:
        args_list.insert(0, "bundle")  # DESIGN.md §7: `bwc-verify BUNDLE`
    try:
        args = build_parser().parse_args(args_list)
    except SystemExit as exc:  # argparse has printed help or a usage message
        return 0 if exc.code == 0 else 2
    func: Callable[[argparse.Namespace], None] = args.func
    try:
        func(args)
    except VerificationError as exc:
        print(f"FAILED: {exc}", file=sys.stderr)
        return 1
    except _UsageError as exc:
        print(f"bwc-verify: error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # a bug here must still not look like success or a traceback
        print(f"bwc-verify: internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
