"""Several processes appending at once, and a process killed in the middle of an append."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db import Database
from audit import merkle, offline_verify
from audit.adapters import ledger_sql
from audit.adapters.ledger_tables import LedgerLeaf
from evidence.adapters.sql.org import District

ROOT = Path(__file__).resolve().parents[2]


def _worker(url: str, district_id: int, count: int, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(  # noqa: S603  (our own test worker, fixed arguments)
        [
            sys.executable,
            "-m",
            "tests.integration.append_worker",
            url,
            str(district_id),
            str(count),
            *extra,
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def _assert_whole_log_verifies(session: Session, log_id: int) -> int:
    size = ledger_sql.current_size(session, log_id)
    indices = list(
        session.scalars(
            select(LedgerLeaf.idx).where(LedgerLeaf.log_id == log_id).order_by(LedgerLeaf.idx)
        )
    )
    assert indices == list(range(size)), "indices must be contiguous from 0, without repeats"
    leaves = dict(ledger_sql.entries(session, log_id, 0, size))
    root = ledger_sql.root_at(session, log_id, size)
    for index in range(size):
        proof = ledger_sql.inclusion_proof(session, log_id, index, size)
        offline_verify.verify_inclusion(merkle.leaf_hash(leaves[index]), index, size, proof, root)
    return size


@pytest.mark.postgres
@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_concurrent_appenders_get_contiguous_unique_indices(
    database: Database, session: Session, district: District
) -> None:
    log_id = ledger_sql.log_of(session, district.id).id
    before = ledger_sql.current_size(session, log_id)
    per_worker, workers = 60, 4
    procs = [_worker(database.url, district.id, per_worker) for _ in range(workers)]
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        assert f"committed {per_worker}" in out
    session.expire_all()
    assert _assert_whole_log_verifies(session, log_id) == before + per_worker * workers


def test_concurrent_appenders_on_sqlite_wait_their_turn(
    database: Database, session: Session, district: District
) -> None:
    log_id = ledger_sql.log_of(session, district.id).id
    before = ledger_sql.current_size(session, log_id)
    procs = [_worker(database.url, district.id, 25) for _ in range(3)]
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
    session.expire_all()
    assert _assert_whole_log_verifies(session, log_id) == before + 75


def test_process_killed_mid_append_leaves_no_gap_or_half_leaf(
    database: Database, session: Session, district: District
) -> None:
    log_id = ledger_sql.log_of(session, district.id).id
    before = ledger_sql.current_size(session, log_id)
    proc = _worker(database.url, district.id, 5, "--hang-mid-append")
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.strip() == "mid-append":
            break
    else:
        pytest.fail(f"worker ended early: {proc.communicate()[1]}")
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    session.expire_all()
    assert _assert_whole_log_verifies(session, log_id) == before + 5
    # The log carries on at the next index.
    follow = _worker(database.url, district.id, 1)
    _, err = follow.communicate(timeout=120)
    assert follow.returncode == 0, err
    session.expire_all()
    assert _assert_whole_log_verifies(session, log_id) == before + 6
