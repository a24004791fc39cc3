"""Checking a receipt offline before anything is wiped (DESIGN.md §5, rule 7).

The dock trusts only the log verifier key it pinned at enrolment: the checkpoint must
be signed by that key, the leaf must be included in that checkpoint, and the leaf
itself must say that this evidence item, with this SHA-256, was verified. A receipt
that fails any check is treated as no receipt: the camera keeps the file."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from audit import offline_verify


class ReceiptInvalid(Exception):
    """The receipt does not prove a verified copy; the message says which check failed."""


@dataclass(frozen=True)
class VerifiedCopy:
    evidence_id: str
    sha256: str
    leaf_index: int
    tree_size: int
    duplicate: bool


def verify_receipt(receipt: dict[str, Any], log_key: str, expected_sha256: str) -> VerifiedCopy:
    """A verified copy of a file hashing to expected_sha256, or ReceiptInvalid."""
    if receipt.get("status") != "verified":
        raise ReceiptInvalid(f"the receipt says {receipt.get('status')!r}, not verified")
    try:
        key = offline_verify.parse_verifier_key(log_key)
        checkpoint = offline_verify.verify_checkpoint(str(receipt["checkpoint"]), key)
        leaf = str(receipt["leaf"]).encode("utf-8")
        proof = receipt["inclusion_proof"]
        index, size = int(proof["leaf_index"]), int(proof["tree_size"])
        if index != int(receipt["leaf_index"]) or size != checkpoint.size:
            raise ReceiptInvalid("the proof is not for this leaf and checkpoint")
        offline_verify.verify_inclusion(
            offline_verify.leaf_hash(leaf),
            index,
            size,
            [bytes.fromhex(h) for h in proof["hashes"]],
            checkpoint.root_hash,
        )
        event = json.loads(leaf)
    except offline_verify.VerificationError as exc:
        raise ReceiptInvalid(str(exc)) from None
    except (KeyError, TypeError, ValueError) as exc:
        raise ReceiptInvalid(f"the receipt is malformed: {exc.__class__.__name__}") from None
    if event.get("type") != "evidence.verified":
        raise ReceiptInvalid("the proved leaf is not a verification event")
    if event.get("media_sha256") != expected_sha256 or receipt.get("sha256") != expected_sha256:
        raise ReceiptInvalid("the proved hash is not the hash of this camera file")
    if event.get("evidence_id") != receipt.get("evidence_id"):
        raise ReceiptInvalid("the proved leaf names another evidence item")
    return VerifiedCopy(
        evidence_id=str(event["evidence_id"]),
        sha256=expected_sha256,
        leaf_index=index,
        tree_size=size,
        duplicate=bool(receipt.get("duplicate")),
    )
