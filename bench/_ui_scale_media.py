"""Real encrypted footage for the stream measurements, and checks that the loaded ledger
is one the service and a verifier accept.

The stream endpoint decrypts from the object store with the item's own data key, so
the items it reads are imported after the load through `bwc evidence import`
(app/vault_cli.py: sealed to the ingest key, staged, stored, read back, authenticated,
hashed), each with its own key and object; their custody events go through the
service's append path onto the loaded log. Half of them are at the supervisor's
schools. Then the service signs a checkpoint (LedgerService.checkpoint), and a few
random leaves are proved against it and a few chains walked, with the verifier's code."""

from __future__ import annotations

import argparse
import io
import json
import os
import re
from contextlib import redirect_stdout
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

from app.db import Database
from app.ledger import LedgerService
from app.vault_cli import cmd_evidence_import
from audit import merkle, offline_verify
from audit.adapters import ledger_sql
from audit.adapters.ledger_tables import LedgerLeaf
from evidence.adapters.sql.items import EvidenceItem

_IMPORTED = re.compile(r"as evidence ([0-9a-f-]{36}) ")


@dataclass(frozen=True)
class Media:
    evidence_id: str
    school_index: int
    path: Path
    size: int


def import_media(
    world: Any, count: int, size: int, t0: float, t1: float, rng: Any, folder: Path
) -> list[Media]:
    """count files of size random bytes (a player cannot tell), imported as recordings."""
    folder.mkdir(parents=True, exist_ok=True)
    mine = {0, 1, 2}  # the supervisor's schools are the first three
    others = [s for s in range(len(world.schools)) if s not in mine]
    media = []
    for k in range(count):
        school = k % 3 if k % 2 == 0 else others[int(rng.integers(0, len(others)))]
        cameras = [c for c in world.cameras if c[1] == school and c[2] >= 0]
        serial = cameras[int(rng.integers(0, len(cameras)))][3]
        path = folder / f"BWC9{k:04d}.MP4"
        path.write_bytes(os.urandom(size))
        recorded = datetime.fromtimestamp(float(rng.uniform(t0, t1 - 86_400)), UTC)
        out = io.StringIO()
        with redirect_stdout(out):
            cmd_evidence_import(
                world.settings,
                argparse.Namespace(
                    file=str(path), camera=serial, wearer=None, recorded_at=recorded.isoformat()
                ),
            )
        found = _IMPORTED.search(out.getvalue())
        if not found:
            raise RuntimeError(f"import of {path.name} said: {out.getvalue()!r}")
        media.append(Media(found.group(1), school, path, size))
    return media


def sign_and_check(world: Any, samples: int, rng: Any) -> dict[str, Any]:
    """Sign a checkpoint of the loaded log; prove random leaves and walk random chains."""
    database = Database(world.settings.database_url)
    try:
        size = LedgerService(database, world.settings).checkpoint(world.log_id)
        with database.sessions() as session:
            checkpoint = ledger_sql.latest_checkpoint(session, world.log_id)
            assert checkpoint is not None and size == checkpoint.size
            root = checkpoint.root_hash
            if ledger_sql.root_at(session, world.log_id, checkpoint.size) != root:
                raise AssertionError("the stored Merkle nodes do not give the signed root")
            for index in rng.integers(0, checkpoint.size, samples).tolist():
                leaf = ledger_sql.entries(session, world.log_id, index, index + 1)[0][1]
                proof = ledger_sql.inclusion_proof(session, world.log_id, index, checkpoint.size)
                offline_verify.verify_inclusion(
                    merkle.leaf_hash(leaf), index, checkpoint.size, proof, root
                )
            chains = _walk_chains(session, samples, rng)
            return {
                "checkpoint_size": checkpoint.size,
                "inclusion_proofs_verified": samples,
                "chains_walked": chains,
            }
    finally:
        database.dispose()


def _walk_chains(session: Any, samples: int, rng: Any) -> int:
    ids = list(
        session.scalars(
            select(EvidenceItem.id)
            .where(EvidenceItem.id >= f"{int(rng.integers(0, 16)):x}")
            .limit(samples)
        )
    )
    for evidence_id in ids:
        leaves = list(
            session.scalars(
                select(LedgerLeaf)
                .where(LedgerLeaf.evidence_id == evidence_id)
                .order_by(LedgerLeaf.idx)
            )
        )
        prev = None
        for n, row in enumerate(leaves, start=1):
            body = json.loads(row.leaf)
            if (
                row.seq != n
                or body["seq"] != n
                or body.get("prev") != (prev.hex() if prev else None)
            ):
                raise AssertionError(f"custody chain of {evidence_id} is broken at seq {n}")
            prev = bytes(row.leaf_hash)
    return len(ids)
