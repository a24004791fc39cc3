"""The standalone verifier (bwc-verify) on an exported set of events.

The set is made by the service's own code: events appended through SqlEventRecorder
(evidence items get real custody chains), a checkpoint signed by LedgerService, leaves
read with ledger_sql.entries and inclusion proofs with ledger_sql.inclusion_proof,
written to files. The verifier then runs from a copy of audit/offline_verify.py in a
fresh interpreter that loads nothing else of this project."""

from __future__ import annotations

import hashlib
import json
import os
import random
import secrets
import shutil
import statistics
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from _common import ROOT
from _ledger_append import failed_login
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import func, select

from app.db import Database
from app.ledger import LedgerService
from app.settings import Settings
from audit import notes
from audit.adapters import ledger_sql
from audit.adapters.checkpoints_sql import create_signer_file
from audit.adapters.ledger_tables import LedgerLeaf
from audit.adapters.sql import SqlEventRecorder
from audit.events import AuditEvent, EventType

DRIVER = Path(__file__).with_name("_verify_driver.py")
VERIFIER = ROOT / "audit" / "offline_verify.py"
ITEMS = 100  # evidence items in the set; four events in five are custody events
BATCH = 250  # events per transaction while building the set (setup, not measured)


def _custody_event(district_id: int, item: str) -> AuditEvent:
    # The event vocabulary has no evidence types yet; the integration tests use this
    # type for chained events too. The leaf carries evidence_id, seq and prev either way.
    return AuditEvent(
        type=EventType.LOGIN_SUCCEEDED,
        occurred_at=datetime.now(UTC),
        district_id=district_id,
        actor="u-" + secrets.token_hex(12),
        subject="evidence:" + item,
        evidence_id=item,
        media_sha256=hashlib.sha256(item.encode()).hexdigest(),
        details={"purpose": "review"},
    )


def build_and_export(
    url: str, district_id: int, events: int, data_dir: Path, folder: Path
) -> dict[str, Any]:
    """Grow the district log to `events` leaves, sign it, export it to folder."""
    rng = random.Random(7)
    items = [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(ITEMS)]
    database = Database(url)
    started = time.perf_counter()
    with database.sessions() as session:
        log = ledger_sql.log_of(session, district_id)
        log_id, origin, have = log.id, log.origin, log.size
    n = have
    while n < events:
        with database.transaction() as session:
            recorder = SqlEventRecorder(session)
            for _ in range(min(BATCH, events - n)):
                if n % 5 == 0:
                    recorder.record(failed_login(district_id, n))
                else:
                    recorder.record(_custody_event(district_id, rng.choice(items)))
                n += 1
    appended = time.perf_counter()

    settings = Settings(data_dir=data_dir, database_url=url)
    assert settings.ledger_key_file is not None
    create_signer_file(settings.ledger_key_file, "bench-ledger")
    service = LedgerService(database, settings)
    size = service.checkpoint(log_id)
    assert size == events, f"signed size {size}, expected {events}"

    (folder / "leaves").mkdir(parents=True)
    (folder / "proofs").mkdir()
    with database.sessions() as session:
        checkpoint = ledger_sql.latest_checkpoint(session, log_id)
        assert checkpoint is not None
        (folder / "checkpoint.note").write_text(checkpoint.note)
        (folder / "log.vkey").write_text(service.signer.verifier_key(origin) + "\n")
        chains = dict(
            session.execute(
                select(LedgerLeaf.evidence_id, func.max(LedgerLeaf.seq))
                .where(LedgerLeaf.log_id == log_id, LedgerLeaf.evidence_id.is_not(None))
                .group_by(LedgerLeaf.evidence_id)
            ).all()
        )
        leaves: list[bytes] = []
        while len(leaves) < size:
            leaves += [leaf for _, leaf in ledger_sql.entries(session, log_id, len(leaves), size)]
        for index, leaf in enumerate(leaves):
            hashes = ledger_sql.inclusion_proof(session, log_id, index, size)
            (folder / "leaves" / f"{index:06d}.leaf").write_bytes(leaf)
            (folder / "proofs" / f"{index:06d}.json").write_text(
                json.dumps(notes.inclusion_proof_to_json(index, size, hashes))
            )
    (folder / "leaves.txt").write_bytes(b"".join(leaf + b"\n" for leaf in leaves))
    (folder / "manifest.json").write_text(json.dumps({"size": size, "chains": chains}))
    shutil.copyfile(VERIFIER, folder / "bwc_verify.py")
    database.dispose()
    return {
        "events": size,
        "evidence_items": len(chains),
        "custody_events": sum(chains.values()),
        "build_s": appended - started,
        "sign_and_export_s": time.perf_counter() - appended,
        "export_bytes": sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()),
    }


def _run_driver(mode: str, folder: Path) -> dict[str, Any]:
    started = time.perf_counter()
    out = subprocess.run(  # noqa: S603  (our interpreter and our own driver script)
        [sys.executable, "-I", str(DRIVER), mode, str(folder)],
        capture_output=True,
        text=True,
        check=False,
        timeout=1800,
    )
    wall = time.perf_counter() - started
    if out.returncode != 0:
        raise RuntimeError(f"verifier driver ({mode}) failed:\n{out.stderr}")
    result: dict[str, Any] = json.loads(out.stdout)
    if result["project_modules_loaded"]:
        raise RuntimeError(f"the verifier loaded {result['project_modules_loaded']}")
    return result | {"seconds": wall}


def _one_cli_process(folder: Path, repeats: int = 7) -> float:
    """Median wall time of one `bwc-verify inclusion ...` process (interpreter included)."""
    argv = [
        sys.executable,
        "-I",
        str(folder / "bwc_verify.py"),
        "inclusion",
        "--key",
        str(folder / "log.vkey"),
        "--leaf",
        str(folder / "leaves" / "000000.leaf"),
        "--checkpoint",
        str(folder / "checkpoint.note"),
        "--proof",
        str(folder / "proofs" / "000000.json"),
    ]
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run(argv, capture_output=True, check=True, timeout=60)  # noqa: S603
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def raw_crypto_limits() -> dict[str, float]:
    """hashlib SHA-256 (bulk and 65-byte Merkle-node messages) and Ed25519 verifies."""
    blob = os.urandom(64 << 20)
    bulk = []
    for _ in range(3):
        started = time.perf_counter()
        hashlib.sha256(blob).digest()
        bulk.append(time.perf_counter() - started)
    node = b"\x01" + os.urandom(64)
    count = 200_000
    small = []
    for _ in range(3):
        started = time.perf_counter()
        for _ in range(count):
            hashlib.sha256(node).digest()
        small.append(time.perf_counter() - started)
    key = Ed25519PrivateKey.generate()
    public, message = key.public_key(), os.urandom(120)
    signature = key.sign(message)
    verifies = 3000
    ed = []
    for _ in range(3):
        started = time.perf_counter()
        for _ in range(verifies):
            public.verify(signature, message)
        ed.append(time.perf_counter() - started)
    return {
        "sha256_bulk_GB_per_s": len(blob) / min(bulk) / 1e9,
        "sha256_node_hashes_per_s": count / min(small),
        "ed25519_verifies_per_s": verifies / min(ed),
    }


def _crypto_floor(hashes: int, verifies: int, raw: dict[str, float]) -> float:
    """Seconds the hashing and signature checks alone take at the raw rates."""
    return hashes / raw["sha256_node_hashes_per_s"] + verifies / raw["ed25519_verifies_per_s"]


def verifier_benchmark(url: str, district_id: int, events: int, tmp: Path) -> dict[str, Any]:
    folder = tmp / "export"
    exported = build_and_export(url, district_id, events, tmp / "verifier-data", folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    n, custody = exported["events"], exported["custody_events"]
    library = _run_driver("library", folder)
    cli = _run_driver("cli", folder)
    one_process = _one_cli_process(folder)
    raw = raw_crypto_limits()
    # Hash work each mode must do: leaf hashes for the proofs, the proof hashes, the
    # whole-log root (n leaf + n-1 node hashes) and the chain walk's leaf hashes.
    library_hashes = n + library["proof_hashes"] + (2 * n - 1) + custody
    items = len(manifest["chains"])
    cli_hashes = n + library["proof_hashes"] + items * (2 * n - 1) + custody
    library_floor = _crypto_floor(library_hashes, library["signature_verifications"], raw)
    cli_floor = _crypto_floor(cli_hashes, cli["signature_verifications"], raw)
    return {
        "set": exported,
        "library": library | {"crypto_floor_s": library_floor},
        "cli": cli | {"crypto_floor_s": cli_floor},
        "one_cli_process_s": one_process,
        "projected_cli_processes_s": one_process * cli["commands"],
        "raw": raw,
    }
