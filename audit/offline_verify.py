"""`bwc-verify`: the standalone offline verifier of custody-log evidence.

It depends only on the Python standard library and `cryptography`, so a court, an
auditor or a witness can run it without trusting (or installing) the rest of this
project. It checks:

- C2SP signed notes and tlog-checkpoints, signed with Ed25519 (key type 0x01);
- C2SP tlog-cosignature `cosignature/v1` witness signatures (key type 0x04);
- RFC 9162 §2.1.3.2 inclusion and §2.1.4.2 consistency proofs, in our JSON form
  (DESIGN.md §4) or as C2SP `tlog-proof@v1`;
- the completeness of one evidence item's custody chain (seq 1..n, each `prev` the leaf
  hash of the item's previous event).

Hashes must be exactly 32 bytes: malformed input is rejected before any arithmetic."""

from __future__ import annotations

import argparse
import base64
import binascii
import hashlib
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

HASH_SIZE = 32
ED25519 = 0x01
COSIGNATURE_V1 = 0x04
MAX_NOTE_BYTES = 1 << 16
MAX_SIGNATURES = 100
TLOG_PROOF_HEADER = "c2sp.org/tlog-proof@v1"
MAX_PROOF_HASHES = 64


class VerificationError(Exception):
    """Something does not verify; the message says what."""


# --- RFC 9162 Merkle tree ---------------------------------------------------------------


def leaf_hash(leaf: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + leaf).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def merkle_root(leaf_hashes: Sequence[bytes]) -> bytes:
    """RFC 9162 MTH over already-hashed leaves (SHA-256 of "" for the empty tree)."""
    if not leaf_hashes:
        return hashlib.sha256(b"").digest()
    level = list(leaf_hashes)
    # Pairing left to right and promoting an odd last node gives exactly MTH's
    # largest-power-of-two split.
    while len(level) > 1:
        paired = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0]


def _check_hashes(hashes: Sequence[bytes], what: str) -> None:
    for h in hashes:
        if not isinstance(h, bytes) or len(h) != HASH_SIZE:
            raise VerificationError(f"{what}: every hash must be 32 bytes")


def root_from_inclusion_proof(
    leaf_hash_: bytes, index: int, tree_size: int, proof: Sequence[bytes]
) -> bytes:
    """RFC 9162 §2.1.3.2: the root implied by an inclusion proof."""
    _check_hashes([leaf_hash_, *proof], "inclusion proof")
    if tree_size < 1 or not 0 <= index < tree_size:
        raise VerificationError(f"index {index} is outside a tree of size {tree_size}")
    fn, sn = index, tree_size - 1
    r = leaf_hash_
    for p in proof:
        if sn == 0:
            raise VerificationError("inclusion proof is too long")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise VerificationError("inclusion proof is too short")
    return r


def verify_inclusion(
    leaf_hash_: bytes, index: int, tree_size: int, proof: Sequence[bytes], root: bytes
) -> None:
    _check_hashes([root], "root")
    if root_from_inclusion_proof(leaf_hash_, index, tree_size, proof) != root:
        raise VerificationError(f"leaf {index} is not in the tree of size {tree_size}")


def verify_consistency(
    size1: int, size2: int, proof: Sequence[bytes], root1: bytes, root2: bytes
) -> None:
    """RFC 9162 §2.1.4.2: the tree of size2 extends the tree of size1."""
    _check_hashes([root1, root2, *proof], "consistency proof")
    if size1 < 1:
        raise VerificationError("a consistency proof needs a first size of at least 1")
    if size2 < size1:
        raise VerificationError(f"size {size2} is smaller than size {size1}")
    if size1 == size2:
        if proof:
            raise VerificationError("equal sizes need an empty proof")
        if root1 != root2:
            raise VerificationError(f"two different roots at size {size1}")
        return
    if not proof:
        raise VerificationError("consistency proof is empty")
    path = list(proof)
    if size1 & (size1 - 1) == 0:  # a power of two: the old root is the first node
        path.insert(0, root1)
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise VerificationError("consistency proof is too long")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise VerificationError("consistency proof is too short")
    if fr != root1:
        raise VerificationError(f"the proof does not lead to the root at size {size1}")
    if sr != root2:
        raise VerificationError(f"the proof does not lead to the root at size {size2}")


# --- Proof JSON (DESIGN.md §4) ------------------------------------------------------------


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


def _count(obj: dict[str, Any], key: str) -> int:
    value = obj.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise VerificationError(f"{key} must be a non-negative integer")
    return value


def _hex_hashes(obj: dict[str, Any]) -> list[bytes]:
    hashes = obj.get("hashes")
    if not isinstance(hashes, list) or len(hashes) > MAX_PROOF_HASHES:
        raise VerificationError("hashes must be a list of at most 64 hex strings")
    out = []
    for h in hashes:
        if not isinstance(h, str) or len(h) != 2 * HASH_SIZE or h != h.lower():
            raise VerificationError("each hash must be 64 lowercase hex digits")
        try:
            out.append(bytes.fromhex(h))
        except ValueError:
            raise VerificationError("each hash must be 64 lowercase hex digits") from None
    return out


def inclusion_proof_from_json(obj: Any) -> InclusionProof:
    if not isinstance(obj, dict):
        raise VerificationError("an inclusion proof is a JSON object")
    return InclusionProof(_count(obj, "leaf_index"), _count(obj, "tree_size"), _hex_hashes(obj))


def consistency_proof_from_json(obj: Any) -> ConsistencyProof:
    if not isinstance(obj, dict):
        raise VerificationError("a consistency proof is a JSON object")
    return ConsistencyProof(_count(obj, "first"), _count(obj, "second"), _hex_hashes(obj))


# --- C2SP signed notes ----------------------------------------------------------------------


def key_id(name: str, key_type: int, public_key: bytes) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + bytes([key_type]) + public_key).digest()[:4]


def _b64(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise VerificationError(f"{what} is not valid base64") from None


def _valid_name(name: str) -> bool:
    return bool(name) and "+" not in name and all(c > " " for c in name)


@dataclass(frozen=True)
class VerifierKey:
    name: str
    key_id: bytes
    key_type: int
    public_key: Ed25519PublicKey = field(compare=False)
    raw: bytes = b""


def parse_verifier_key(vkey: str) -> VerifierKey:
    """Parse `name+keyid+base64(type||key)`, checking that the key id matches."""
    parts = vkey.strip().split("+", 2)
    if len(parts) != 3 or not _valid_name(parts[0]) or len(parts[1]) != 8:
        raise VerificationError("a verifier key is name+keyid+base64key")
    name, hex_id, encoded = parts
    try:
        claimed = bytes.fromhex(hex_id)
    except ValueError:
        raise VerificationError("the key id must be 8 hex digits") from None
    blob = _b64(encoded, "the verifier key")
    if len(blob) != 33 or blob[0] not in (ED25519, COSIGNATURE_V1):
        raise VerificationError("only Ed25519 (0x01) and cosignature/v1 (0x04) keys are known")
    if key_id(name, blob[0], blob[1:]) != claimed:
        raise VerificationError("the verifier key's id does not match its name and key")
    return VerifierKey(
        name, claimed, blob[0], Ed25519PublicKey.from_public_bytes(blob[1:]), blob[1:]
    )


def as_cosignature_key(key: VerifierKey) -> VerifierKey:
    """The same Ed25519 key used as a cosignature/v1 (type 0x04) witness key."""
    return VerifierKey(
        key.name, key_id(key.name, COSIGNATURE_V1, key.raw), COSIGNATURE_V1, key.public_key, key.raw
    )


@dataclass(frozen=True)
class NoteSignature:
    name: str
    key_id: bytes
    signature: bytes
    line: str


@dataclass(frozen=True)
class Note:
    body: str
    signatures: list[NoteSignature]


def parse_note(text: str) -> Note:
    """Split a signed note into its body (with final newline) and signature lines."""
    if not isinstance(text, str) or len(text.encode()) > MAX_NOTE_BYTES:
        raise VerificationError("a signed note must be text of at most 64 KiB")
    separator = text.rfind("\n\n")
    if separator < 0 or not text.endswith("\n"):
        raise VerificationError("a signed note needs a blank line and signature lines")
    body, sig_block = text[: separator + 1], text[separator + 2 :]
    if "\r" in text or any(not line for line in body.splitlines()):
        raise VerificationError("the note body must be non-empty lines ending in newlines")
    signatures = []
    for line in sig_block.splitlines():
        if not line.startswith("\u2014 "):
            raise VerificationError("signature lines start with an em dash and a space")
        parts = line[2:].split(" ")
        if len(parts) != 2 or not _valid_name(parts[0]):
            raise VerificationError("a signature line is '— name base64'")
        blob = _b64(parts[1], "a signature")
        if len(blob) < 5:
            raise VerificationError("a signature is too short")
        signatures.append(NoteSignature(parts[0], blob[:4], blob[4:], line + "\n"))
    if not signatures or len(signatures) > MAX_SIGNATURES:
        raise VerificationError("a signed note has 1 to 100 signatures")
    return Note(body, signatures)


def verify_note(text: str, key: VerifierKey) -> Note:
    """At least one signature on the note must be a valid Ed25519 signature by key."""
    note = parse_note(text)
    if key.key_type != ED25519:
        raise VerificationError("notes are verified with Ed25519 (type 0x01) keys")
    for sig in note.signatures:
        if sig.name == key.name and sig.key_id == key.key_id and len(sig.signature) == 64:
            try:
                key.public_key.verify(sig.signature, note.body.encode())
            except InvalidSignature:
                continue
            return note
    raise VerificationError(f"no valid signature by {key.name} on the note")


# --- Checkpoints and cosignatures -----------------------------------------------------------


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    size: int
    root_hash: bytes
    extensions: list[str]


def parse_checkpoint(body: str) -> Checkpoint:
    lines = body.split("\n")
    if len(lines) < 4 or lines[-1] != "":
        raise VerificationError("a checkpoint body has origin, size and root lines")
    origin, size_text, root_text = lines[0], lines[1], lines[2]
    if not origin:
        raise VerificationError("a checkpoint needs an origin")
    if not size_text.isdigit() or (size_text != "0" and size_text.startswith("0")):
        raise VerificationError("the checkpoint size must be a decimal number")
    root = _b64(root_text, "the checkpoint root")
    if len(root) != HASH_SIZE:
        raise VerificationError("the checkpoint root must be 32 bytes")
    return Checkpoint(origin, int(size_text), root, lines[3:-1])


def verify_checkpoint(text: str, key: VerifierKey) -> Checkpoint:
    note = verify_note(text, key)
    checkpoint = parse_checkpoint(note.body)
    if checkpoint.origin != key.name:
        raise VerificationError(f"checkpoint origin {checkpoint.origin} is not {key.name}")
    return checkpoint


def cosignature_message(body: str, timestamp: int) -> bytes:
    return f"cosignature/v1\ntime {timestamp}\n".encode() + body.encode()


def verify_cosignature(note_text: str, key: VerifierKey) -> int:
    """Verify the witness's cosignature/v1 on the note; return its timestamp (seconds)."""
    key = key if key.key_type == COSIGNATURE_V1 else as_cosignature_key(key)
    note = parse_note(note_text)
    for sig in note.signatures:
        if sig.name != key.name or sig.key_id != key.key_id or len(sig.signature) != 72:
            continue
        timestamp = int.from_bytes(sig.signature[:8], "big")
        try:
            key.public_key.verify(sig.signature[8:], cosignature_message(note.body, timestamp))
        except InvalidSignature:
            continue
        return timestamp
    raise VerificationError(f"no valid cosignature by witness {key.name}")


# --- C2SP tlog-proof@v1 ---------------------------------------------------------------------


@dataclass(frozen=True)
class TlogProof:
    extra: bytes | None
    index: int
    hashes: list[bytes]
    checkpoint_text: str


def parse_tlog_proof(text: str) -> TlogProof:
    if len(text.encode()) > MAX_NOTE_BYTES * 2:
        raise VerificationError("the proof is too large")
    head, separator, checkpoint_text = text.partition("\n\n")
    if not separator:
        raise VerificationError("a tlog-proof needs a blank line before its checkpoint")
    lines = head.split("\n")
    if lines[0] != TLOG_PROOF_HEADER:
        raise VerificationError(f"a tlog-proof starts with {TLOG_PROOF_HEADER}")
    rest = lines[1:]
    extra = None
    if rest and rest[0].startswith("extra "):
        extra = _b64(rest[0][6:], "extra data")
        rest = rest[1:]
    if not rest or not rest[0].startswith("index ") or not rest[0][6:].isdigit():
        raise VerificationError("a tlog-proof needs an 'index N' line")
    index = int(rest[0][6:])
    hashes = [_b64(line, "a proof hash") for line in rest[1:]]
    if len(hashes) > MAX_PROOF_HASHES:
        raise VerificationError("too many proof hashes")
    _check_hashes(hashes, "tlog-proof")
    return TlogProof(extra, index, hashes, checkpoint_text)


def verify_tlog_proof(text: str, leaf: bytes, key: VerifierKey) -> Checkpoint:
    proof = parse_tlog_proof(text)
    checkpoint = verify_checkpoint(proof.checkpoint_text, key)
    verify_inclusion(
        leaf_hash(leaf), proof.index, checkpoint.size, proof.hashes, checkpoint.root_hash
    )
    return checkpoint


# --- Custody chains -------------------------------------------------------------------------


def check_item_chain(leaves: Sequence[bytes], evidence_id: str) -> int:
    """All of one item's events, in log order: seq 1..n, each linked to the one before."""
    expected_seq, previous = 1, None
    for leaf in leaves:
        try:
            event = json.loads(leaf)
        except (ValueError, UnicodeDecodeError):
            raise VerificationError("a leaf is not JSON") from None
        if not isinstance(event, dict) or event.get("evidence_id") != evidence_id:
            continue
        seq, prev = event.get("seq"), event.get("prev")
        if seq != expected_seq:
            raise VerificationError(
                f"evidence {evidence_id}: expected event seq {expected_seq}, found {seq}"
            )
        if (previous is None and prev is not None) or (
            previous is not None and prev != previous.hex()
        ):
            raise VerificationError(
                f"evidence {evidence_id}: event {seq} does not link to the event before it"
            )
        previous = leaf_hash(leaf)
        expected_seq += 1
    if expected_seq == 1:
        raise VerificationError(f"no events of evidence {evidence_id}")
    return expected_seq - 1


# --- Command line ---------------------------------------------------------------------------


class _UsageError(Exception):
    pass


def _read(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise _UsageError(f"cannot read {path}: {exc}") from None


def _keys(path: str) -> list[VerifierKey]:
    lines = [line.strip() for line in _read(path).splitlines() if line.strip()]
    if not lines:
        raise _UsageError(f"{path} holds no verifier key")
    return [parse_verifier_key(line) for line in lines]


def _report_cosignatures(note_text: str, witnesses: list[VerifierKey]) -> None:
    for witness in witnesses:
        try:
            timestamp = verify_cosignature(note_text, witness)
            print(f"ok: cosigned by witness {witness.name} at unix time {timestamp}")
        except VerificationError:
            print(f"note: no valid cosignature by witness {witness.name}")


def _cmd_checkpoint(args: argparse.Namespace) -> None:
    keys = _keys(args.key)
    text = _read(args.checkpoint)
    checkpoint = verify_checkpoint(text, keys[0])
    print(
        f"ok: checkpoint of {checkpoint.origin} at size {checkpoint.size} is signed by "
        f"{keys[0].name}"
    )
    _report_cosignatures(text, keys[1:])


def _leaf_bytes(path: str) -> bytes:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise _UsageError(f"cannot read {path}: {exc}") from None
    return data


def _cmd_inclusion(args: argparse.Namespace) -> None:
    keys = _keys(args.key)
    leaf = _leaf_bytes(args.leaf)
    if args.tlog_proof:
        checkpoint = verify_tlog_proof(_read(args.tlog_proof), leaf, keys[0])
        index = parse_tlog_proof(_read(args.tlog_proof)).index
    else:
        if not args.checkpoint or not args.proof:
            raise _UsageError("give --checkpoint and --proof, or --tlog-proof")
        checkpoint = verify_checkpoint(_read(args.checkpoint), keys[0])
        proof = inclusion_proof_from_json(_json(args.proof))
        if proof.tree_size != checkpoint.size:
            raise VerificationError(
                f"the proof is for size {proof.tree_size}, the checkpoint is size {checkpoint.size}"
            )
        verify_inclusion(
            leaf_hash(leaf), proof.leaf_index, proof.tree_size, proof.hashes, checkpoint.root_hash
        )
        index = proof.leaf_index
    print(f"ok: the leaf is entry {index} of {checkpoint.origin} at size {checkpoint.size}")


def _json(path: str) -> Any:
    try:
        return json.loads(_read(path))
    except ValueError:
        raise VerificationError(f"{path} is not JSON") from None


def _cmd_consistency(args: argparse.Namespace) -> None:
    keys = _keys(args.key)
    old = verify_checkpoint(_read(args.old), keys[0])
    new = verify_checkpoint(_read(args.new), keys[0])
    proof = consistency_proof_from_json(_json(args.proof))
    if (proof.first, proof.second) != (old.size, new.size):
        raise VerificationError("the proof's sizes do not match the two checkpoints")
    verify_consistency(old.size, new.size, proof.hashes, old.root_hash, new.root_hash)
    print(f"ok: size {new.size} of {new.origin} extends size {old.size}")


def _cmd_chain(args: argparse.Namespace) -> None:
    leaves = []
    for number, line in enumerate(_read(args.leaves).splitlines(), start=1):
        if line.strip():
            try:
                leaves.append(base64.b64decode(line.strip(), validate=True))
            except (binascii.Error, ValueError):
                raise VerificationError(f"line {number} is not a base64 leaf") from None
    count = check_item_chain(leaves, args.evidence_id)
    print(f"ok: evidence {args.evidence_id} has a complete chain of {count} events")


def _cmd_bundle(args: argparse.Namespace) -> None:
    raise _UsageError("export-bundle verification is not available in this release yet")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bwc-verify",
        description="Verify BWC Evidence custody-log material offline. Exit status: 0 all "
        "checks hold, 1 a check failed, 2 a usage or file error.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    cp = sub.add_parser("checkpoint", help="verify a signed checkpoint (and cosignatures)")
    cp.add_argument(
        "--key", required=True, help="file of verifier keys: the log's first, then any witnesses'"
    )
    cp.add_argument("checkpoint", help="the signed checkpoint note")
    cp.set_defaults(func=_cmd_checkpoint)
    inc = sub.add_parser("inclusion", help="verify that a leaf is in a checkpointed tree")
    inc.add_argument("--key", required=True, help="file with the log's verifier key")
    inc.add_argument("--leaf", required=True, help="file holding the exact leaf bytes")
    inc.add_argument("--checkpoint", help="the signed checkpoint note")
    inc.add_argument("--proof", help="inclusion proof JSON {leaf_index, tree_size, hashes}")
    inc.add_argument("--tlog-proof", help="a c2sp.org/tlog-proof@v1 file instead")
    inc.set_defaults(func=_cmd_inclusion)
    con = sub.add_parser("consistency", help="verify that a newer checkpoint extends an older")
    con.add_argument("--key", required=True, help="file with the log's verifier key")
    con.add_argument("--proof", required=True, help="consistency proof JSON")
    con.add_argument("old", help="the older signed checkpoint")
    con.add_argument("new", help="the newer signed checkpoint")
    con.set_defaults(func=_cmd_consistency)
    chain = sub.add_parser("chain", help="verify an evidence item's custody chain")
    chain.add_argument("--evidence-id", required=True)
    chain.add_argument("leaves", help="file of leaves in log order, one base64 leaf per line")
    chain.set_defaults(func=_cmd_chain)
    bundle = sub.add_parser("bundle", help="verify an export bundle (not yet available)")
    bundle.add_argument("path")
    bundle.set_defaults(func=_cmd_bundle)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return 0 if exc.code == 0 else 2
    try:
        args.func(args)
    except VerificationError as exc:
        print(f"FAILED: {exc}", file=sys.stderr)
        return 1
    except _UsageError as exc:
        print(f"bwc-verify: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
