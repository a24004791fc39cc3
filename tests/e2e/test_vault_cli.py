"""`bwc cameras|docks|evidence|keys` as an operator uses them."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from sqlalchemy import select

from app.db import Database
from audit.adapters.ledger_tables import LedgerLeaf
from evidence.adapters.sql.items import EvidenceItem
from tests.e2e.test_cli import run


def _setup(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "init")[0] == 0
    assert run(capsys, "schools", "add", "NHS", "North High")[0] == 0
    code, out, err = run(
        capsys, "cameras", "add", "BWC-0002", "--profile", "bwc-msc/1", "--school", "NHS"
    )
    assert code == 0, err


def _items(db_url: str) -> list[EvidenceItem]:
    database = Database(db_url)
    try:
        with database.sessions() as session:
            return list(session.scalars(select(EvidenceItem)))
    finally:
        database.dispose()


def _event_types(db_url: str, evidence_id: str) -> list[str]:
    database = Database(db_url)
    try:
        with database.sessions() as session:
            leaves = session.scalars(
                select(LedgerLeaf.leaf)
                .where(LedgerLeaf.evidence_id == evidence_id)
                .order_by(LedgerLeaf.idx)
            )
            return [json.loads(leaf)["type"] for leaf in leaves]
    finally:
        database.dispose()


def test_init_creates_a_private_keyring_and_an_ingest_key(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "init")
    assert code == 0 and "generated local keyring" in out and "generated ingest key i1" in out
    assert stat.S_IMODE((env / "keyring.json").stat().st_mode) == 0o600
    code, out, _ = run(capsys, "init")
    assert code == 0 and "keyring" not in out and "ingest key" not in out


def test_import_export_verify_and_rotate(
    env: Path, capsys: pytest.CaptureFixture[str], db_url: str, tmp_path: Path
) -> None:
    _setup(capsys)
    clip = tmp_path / "from-elsewhere.mp4"
    clip.write_bytes(os.urandom(3 * 1024 * 1024 + 77))

    code, out, err = run(
        capsys,
        "evidence",
        "import",
        str(clip),
        "--camera",
        "BWC-0002",
        "--recorded-at",
        "2026-11-30T09:15:00Z",
    )
    assert code == 0, err
    (item,) = _items(db_url)
    assert f"evidence {item.id}" in out and item.size == clip.stat().st_size
    assert item.file_name == "from-elsewhere.mp4" and item.media_type == "video/mp4"
    assert item.recorded_start is not None and item.recorded_start.hour == 9
    # No plaintext anywhere in the data dir.
    needle = clip.read_bytes()[1000:1064]
    for path in env.rglob("*"):
        if path.is_file() and path != clip:
            assert needle not in path.read_bytes(), f"plaintext found in {path}"

    again = run(capsys, "evidence", "import", str(clip), "--camera", "BWC-0002")
    assert again[0] == 0 and "already held" in again[1]
    assert len(_items(db_url)) == 1

    out_file = tmp_path / "exported.mp4"
    code, out, err = run(capsys, "evidence", "export", item.id, "--out", str(out_file))
    assert code == 0, err
    assert out_file.read_bytes() == clip.read_bytes()
    code, _, err = run(capsys, "evidence", "export", item.id, "--out", str(out_file))
    assert code == 1 and "exists" in err

    code, out, err = run(capsys, "evidence", "verify", "--all")
    assert code == 0 and "fixity ok for 1 item(s)" in out, err

    code, out, err = run(capsys, "keys", "rotate")
    assert code == 0 and "k2" in out and "re-wrapped 1 item key(s)" in out, err
    rotated = _items(db_url)[0]
    assert rotated.key_version == "k2" and rotated.wrapped_key != item.wrapped_key
    assert rotated.stored_sha256 == item.stored_sha256  # the object was not re-encrypted
    code, out, _ = run(capsys, "evidence", "export", item.id, "--out", str(tmp_path / "2.mp4"))
    assert code == 0 and (tmp_path / "2.mp4").read_bytes() == clip.read_bytes()

    types = _event_types(db_url, item.id)
    assert types[:2] == ["evidence.received", "evidence.verified"]
    assert {"evidence.exported", "evidence.fixity_passed", "evidence.rekeyed"} <= set(types)


def test_verify_marks_a_tampered_item_and_exits_1(
    env: Path, capsys: pytest.CaptureFixture[str], db_url: str, tmp_path: Path
) -> None:
    _setup(capsys)
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(os.urandom(2 * 1024 * 1024))
    assert run(capsys, "evidence", "import", str(clip), "--camera", "BWC-0002")[0] == 0
    (item,) = _items(db_url)
    stored = env / "objects" / f"{item.object_key}.obj"
    stored.chmod(0o600)
    data = bytearray(stored.read_bytes())
    data[len(data) // 2] ^= 1
    stored.write_bytes(bytes(data))
    code, out, err = run(capsys, "evidence", "verify", item.id)
    assert code == 1 and "TAMPERED" in out and "marked tampered" in err
    assert _items(db_url)[0].integrity == "tampered"
    assert _event_types(db_url, item.id)[-1] == "evidence.fixity_failed"
    code, _, err = run(capsys, "evidence", "export", item.id, "--out", str(tmp_path / "x.mp4"))
    assert code == 1 and not (tmp_path / "x.mp4").exists()


def test_rotation_resumes_after_an_interruption(
    env: Path,
    capsys: pytest.CaptureFixture[str],
    db_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from app import rotation

    _setup(capsys)
    for n in range(5):
        clip = tmp_path / f"c{n}.mp4"
        clip.write_bytes(os.urandom(5000 + n))
        assert run(capsys, "evidence", "import", str(clip), "--camera", "BWC-0002")[0] == 0
    monkeypatch.setattr(rotation, "BATCH", 2)
    calls = {"n": 0}
    original = rotation.encode_wrapped

    def failing(wrapped):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError("power cut")
        return original(wrapped)

    monkeypatch.setattr(rotation, "encode_wrapped", failing)
    assert run(capsys, "keys", "rotate")[0] == 1
    versions = sorted(i.key_version or "" for i in _items(db_url))
    assert versions == ["k1", "k1", "k1", "k2", "k2"]  # the first batch committed

    monkeypatch.setattr(rotation, "encode_wrapped", original)
    code, out, err = run(capsys, "keys", "rotate")
    assert code == 0 and "finished rotating to key version k2" in out, err
    assert {i.key_version for i in _items(db_url)} == {"k2"}
    code, out, _ = run(capsys, "keys", "rotate")  # nothing pending: a new version
    assert code == 0 and "rotated to key version k3" in out
    assert run(capsys, "evidence", "verify", "--all")[0] == 0


def test_clear_errors(env: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    _setup(capsys)
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"x" * 100)
    code, _, err = run(capsys, "evidence", "import", str(clip), "--camera", "BWC-9999")
    assert code == 1 and "not registered" in err
    code, _, err = run(capsys, "evidence", "import", str(tmp_path / "nope"), "--camera", "BWC-0002")
    assert code == 1 and "not a readable file" in err
    code, _, err = run(
        capsys,
        "evidence",
        "export",
        "1b4e28ba-2fa1-11d2-883f-0016d3cca427",
        "--out",
        str(tmp_path / "o"),
    )
    assert code == 1 and "no stored evidence item" in err
    code, _, err = run(
        capsys, "cameras", "add", "BWC-0002", "--profile", "bwc-msc/1", "--school", "NHS"
    )
    assert code == 1 and "already registered" in err
    code, _, err = run(capsys, "evidence", "verify")
    assert code == 1 and "--all" in err


def test_docks_add_prints_a_token_and_revoke_ends_the_dock(
    env: Path, capsys: pytest.CaptureFixture[str], db_url: str
) -> None:
    from datetime import UTC, datetime

    from app.devices import dock_for_credential, enrol_dock

    _setup(capsys)
    code, out, _ = run(capsys, "docks", "add", "Front office", "--school", "NHS")
    assert code == 0
    token = out.strip().splitlines()[-1]
    database = Database(db_url)
    with database.transaction() as session:
        _, credential = enrol_dock(session, token, now=datetime.now(UTC))
    code, out, _ = run(capsys, "docks", "revoke", "Front office")
    assert code == 0 and "revoked" in out
    with database.sessions() as session:
        assert dock_for_credential(session, credential) is None
    database.dispose()
    assert run(capsys, "docks", "revoke", "Nowhere")[0] == 1
