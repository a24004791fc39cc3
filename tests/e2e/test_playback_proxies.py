"""Playback proxies, end to end on SQLite and PostgreSQL: a video docked through the tus
API gets a playback check; an HEVC original gets a verified H.264 proxy with its own
hash and custody events while the original stays exactly as it was; the player streams
the proxy; failures say why and can be retried; jobs run once, in-process or on RQ."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select, update

from app import create_app, jobs
from app.fixity import check_fixity
from app.jobs import JobContext
from app.rotation import rotate_keys
from audit.adapters.ledger_tables import LedgerLeaf
from audit.adapters.sql import AuditEventRow
from evidence.adapters.sql.items import Derivative, EvidenceItem
from evidence.adapters.sql.jobs import Job
from evidence.media.probe import probe
from tests.e2e.conftest import World, csrf_token, signed_in
from tests.e2e.test_evidence_pages import _upload
from tests.e2e.vault_support import Docks
from tests.media_factory import make_clip

PURPOSE = "purpose=incident_review"


def _ctx(web: Flask) -> JobContext:
    return JobContext(
        web.extensions["bwc.settings"], web.extensions["bwc.db"], web.extensions["bwc.vault"]
    )


def _jobs_of(web: Flask, evidence_id: str) -> list[Job]:
    with web.extensions["bwc.db"].sessions() as session:
        return list(
            session.scalars(
                select(Job).where(Job.evidence_id == evidence_id).order_by(Job.created_at)
            )
        )


def _proxy(web: Flask, evidence_id: str) -> Derivative | None:
    with web.extensions["bwc.db"].sessions() as session:
        return session.scalars(
            select(Derivative).where(Derivative.evidence_id == evidence_id)
        ).first()


def _stored_bytes(web: Flask, key: str) -> bytes:
    return b"".join(web.extensions["bwc.vault"].store.iter_bytes(key))


def _leaves(web: Flask, evidence_id: str) -> list[dict[str, Any]]:
    with web.extensions["bwc.db"].sessions() as session:
        rows = session.scalars(
            select(LedgerLeaf.leaf)
            .where(LedgerLeaf.evidence_id == evidence_id)
            .order_by(LedgerLeaf.idx)
        )
        return [json.loads(leaf) for leaf in rows]


def test_an_hevc_original_gets_a_verified_proxy_and_stays_exactly_as_it_was(
    web: Flask, world: World, docks: Docks
) -> None:
    clip = make_clip(codec="libx265", seconds=2.0)
    evidence_id = _upload(web, docks, south=False, plaintext=clip)
    [job] = _jobs_of(web, evidence_id)
    assert (job.kind, job.status) == (jobs.PLAYBACK_PROXY, "queued")
    with web.extensions["bwc.db"].sessions() as session:
        item = session.get(EvidenceItem, evidence_id)
        assert item is not None
        original_key, original_sha = item.object_key, item.sha256
    stored_before = hashlib.sha256(_stored_bytes(web, original_key)).hexdigest()

    assert jobs.work_once(_ctx(web)) == 1
    [job] = _jobs_of(web, evidence_id)
    assert job.status == "done" and job.result["needed"] is True
    assert "HEVC" in str(job.result["reason"])
    proxy = _proxy(web, evidence_id)
    assert proxy is not None and proxy.kind == "proxy" and proxy.wrapped_key
    assert proxy.sha256 != original_sha and proxy.details["source_sha256"] == original_sha

    # The original: same bytes stored, same hash, and it still passes fixity.
    assert original_sha == hashlib.sha256(clip).hexdigest()
    assert hashlib.sha256(_stored_bytes(web, original_key)).hexdigest() == stored_before
    fixity = check_fixity(
        web.extensions["bwc.db"],
        web.extensions["bwc.vault"],
        evidence_id,
        actor="cli",
        now=datetime.now(UTC),
    )
    assert fixity.ok and fixity.sha256 == original_sha
    # The proxy's object is ciphertext: it never holds the plaintext.
    assert _stored_bytes(web, proxy.object_key)[:4] != b"\x00\x00\x00\x20"

    # Custody: the proxy's creation and verification carry its own hash, in the
    # item's chain after the original's received and verified events.
    leaves = _leaves(web, evidence_id)
    types = [leaf["type"] for leaf in leaves]
    assert types[:2] == ["evidence.received", "evidence.verified"]
    made = [leaf for leaf in leaves if leaf["type"].startswith("evidence.derivative_")]
    assert [m["type"] for m in made] == [
        "evidence.derivative_created",
        "evidence.derivative_verified",
        "evidence.derivative_fixity_passed",  # the fixity check above covers the copy
    ]
    assert {m["media_sha256"] for m in made} == {proxy.sha256}

    # The player streams the proxy: ranged, and its bytes are the recorded hash.
    supervisor = signed_in(web, world, "supervisor")
    page = supervisor.get(f"/evidence/{evidence_id}?{PURPOSE}").get_data(as_text=True)
    assert "rendition=proxy" in page and "Playing a browser copy" in page
    assert proxy.sha256 in page and original_sha in page
    stream = f"/evidence/{evidence_id}/stream?{PURPOSE}&rendition=proxy"
    part = supervisor.get(stream, headers={"Range": "bytes=0-99"})
    assert part.status_code == 206 and part.mimetype == "video/mp4"
    assert part.headers["Content-Range"] == f"bytes 0-99/{proxy.size}"
    whole = supervisor.get(stream).get_data()
    assert hashlib.sha256(whole).hexdigest() == proxy.sha256
    played = probe(io.BytesIO(whole), len(whole))
    assert played.plays_in_browsers and played.video_codec == "h264" and played.faststart
    streamed = [leaf for leaf in _leaves(web, evidence_id) if leaf["type"] == "evidence.streamed"]
    assert [s["media_sha256"] for s in streamed] == [proxy.sha256]
    with web.extensions["bwc.db"].sessions() as session:
        details = session.scalars(
            select(AuditEventRow.details).where(
                AuditEventRow.type == "evidence.streamed",
                AuditEventRow.subject == f"evidence:{evidence_id}",
            )
        ).one()
    assert details["rendition"] == "proxy" and details["derivative"] == proxy.id

    # The original is still what downloads; a proxy is never offered as a download.
    records = signed_in(web, world, "records")
    assert (
        records.get(f"/evidence/{evidence_id}/download?{PURPOSE}&rendition=proxy").status_code
        == 404
    )
    download = records.get(f"/evidence/{evidence_id}/download?{PURPOSE}")
    assert hashlib.sha256(download.get_data()).hexdigest() == original_sha

    # Another school's people cannot reach the proxy either.
    outsider = signed_in(web, world, "south-supervisor")
    assert outsider.get(stream).status_code == 404
    assert jobs.work_once(_ctx(web)) == 0  # nothing left to do


def _fixity(web: Flask, evidence_id: str) -> Any:
    return check_fixity(
        web.extensions["bwc.db"],
        web.extensions["bwc.vault"],
        evidence_id,
        actor="cli",
        now=datetime.now(UTC),
    )


def test_fixity_checks_the_proxy_too_and_sets_a_damaged_one_aside(
    web: Flask, world: World, docks: Docks
) -> None:
    evidence_id = _upload(web, docks, south=False, plaintext=make_clip(codec="libx265"))
    jobs.work_once(_ctx(web))
    proxy = _proxy(web, evidence_id)
    assert proxy is not None

    sound = _fixity(web, evidence_id)
    assert sound.ok and [(d.derivative_id, d.ok) for d in sound.derivatives] == [(proxy.id, True)]
    leaves = _leaves(web, evidence_id)
    passed = [x for x in leaves if x["type"] == "evidence.derivative_fixity_passed"]
    assert [x["media_sha256"] for x in passed] == [proxy.sha256]

    # Someone with the storage folder flips one byte of the proxy's ciphertext.
    stored = web.extensions["bwc.vault"].store._root / f"{proxy.object_key}.obj"
    data = bytearray(stored.read_bytes())
    data[len(data) // 2] ^= 0x01
    stored.chmod(0o600)
    stored.write_bytes(bytes(data))

    damaged = _fixity(web, evidence_id)
    assert damaged.ok, "the original is sound; only its copy was damaged"
    [copy] = damaged.damaged_derivatives
    assert copy.derivative_id == proxy.id and "authentication" in (copy.problem or "")
    with web.extensions["bwc.db"].sessions() as session:
        row = session.get(Derivative, proxy.id)
        item = session.get(EvidenceItem, evidence_id)
        assert row is not None and row.integrity == "damaged"
        assert item is not None and item.integrity == "ok"
    types = [x["type"] for x in _leaves(web, evidence_id)]
    assert types.count("evidence.derivative_fixity_failed") == 1

    # The damaged copy is never served; the page offers to make a new one, which works.
    supervisor = signed_in(web, world, "supervisor")
    stream = f"/evidence/{evidence_id}/stream?{PURPOSE}&rendition=proxy"
    assert supervisor.get(stream).status_code == 404
    url = f"/evidence/{evidence_id}?{PURPOSE}"
    page = supervisor.get(url).get_data(as_text=True)
    assert "rendition=proxy" not in page and "failed its integrity check" in page
    token = csrf_token(supervisor, url)
    asked = supervisor.post(f"/evidence/{evidence_id}/playback-copy", data={"csrf_token": token})
    assert asked.status_code == 302
    assert jobs.work_once(_ctx(web)) == 1
    with web.extensions["bwc.db"].sessions() as session:
        copies = list(
            session.scalars(select(Derivative).where(Derivative.evidence_id == evidence_id))
        )
    assert sorted(c.integrity for c in copies) == ["damaged", "ok"]
    remade = next(c for c in copies if c.integrity == "ok")
    whole = supervisor.get(stream).get_data()
    assert hashlib.sha256(whole).hexdigest() == remade.sha256
    # The set-aside copy is not checked again: it stays on record as damaged.
    assert [d.derivative_id for d in _fixity(web, evidence_id).derivatives] == [remade.id]


def test_key_rotation_rewraps_the_proxy_key_and_records_it(
    web: Flask, world: World, docks: Docks
) -> None:
    evidence_id = _upload(web, docks, south=False, plaintext=make_clip(codec="libx265"))
    jobs.work_once(_ctx(web))
    before = _proxy(web, evidence_id)
    assert before is not None
    report = rotate_keys(
        web.extensions["bwc.db"], web.extensions["bwc.vault"], actor="cli", now=datetime.now(UTC)
    )
    assert report.derivatives == 1
    after = _proxy(web, evidence_id)
    assert after is not None and after.key_version == report.version != before.key_version
    assert after.wrapped_key != before.wrapped_key and after.object_key == before.object_key
    rekeyed = [x for x in _leaves(web, evidence_id) if x["type"] == "evidence.derivative_rekeyed"]
    assert [x["media_sha256"] for x in rekeyed] == [before.sha256]
    supervisor = signed_in(web, world, "supervisor")
    whole = supervisor.get(f"/evidence/{evidence_id}/stream?{PURPOSE}&rendition=proxy")
    assert hashlib.sha256(whole.get_data()).hexdigest() == before.sha256


def test_an_original_browsers_play_gets_no_proxy(web: Flask, world: World, docks: Docks) -> None:
    clip = make_clip(codec="libx264", faststart=True)
    evidence_id = _upload(web, docks, south=False, plaintext=clip)
    assert jobs.work_once(_ctx(web)) == 1
    [job] = _jobs_of(web, evidence_id)
    assert job.status == "done" and job.result["needed"] is False
    assert _proxy(web, evidence_id) is None
    page = signed_in(web, world, "supervisor").get(f"/evidence/{evidence_id}?{PURPOSE}")
    text = page.get_data(as_text=True)
    assert f"/evidence/{evidence_id}/stream?" in text and "rendition=proxy" not in text


def test_an_h264_original_with_its_index_last_gets_a_proxy(
    web: Flask, world: World, docks: Docks
) -> None:
    evidence_id = _upload(web, docks, south=False, plaintext=make_clip(codec="libx264"))
    jobs.work_once(_ctx(web))
    [job] = _jobs_of(web, evidence_id)
    assert job.status == "done" and "faststart" in str(job.result["reason"])
    assert _proxy(web, evidence_id) is not None


def test_an_unreadable_video_fails_with_a_reason_and_can_be_asked_for_again(
    web: Flask, world: World, docks: Docks
) -> None:
    evidence_id = _upload(web, docks, south=False, plaintext=b"\x00\x01 not an mp4 " * 300)
    jobs.work_once(_ctx(web))
    [job] = _jobs_of(web, evidence_id)
    assert job.status == "failed" and "not a readable recording" in (job.error or "")
    assert _proxy(web, evidence_id) is None
    assert "evidence.derivative_failed" in [leaf["type"] for leaf in _leaves(web, evidence_id)]

    supervisor = signed_in(web, world, "supervisor")
    url = f"/evidence/{evidence_id}?{PURPOSE}"
    page = supervisor.get(url).get_data(as_text=True)
    assert "A browser copy could not be made: not a readable recording" in page
    token = csrf_token(supervisor, url)
    again = supervisor.post(f"/evidence/{evidence_id}/playback-copy", data={"csrf_token": token})
    assert again.status_code == 302
    assert [j.status for j in _jobs_of(web, evidence_id)] == ["failed", "queued"]
    twice = supervisor.post(f"/evidence/{evidence_id}/playback-copy", data={"csrf_token": token})
    assert twice.status_code == 302 and len(_jobs_of(web, evidence_id)) == 2  # one at a time
    outsider = signed_in(web, world, "south-supervisor")
    other_token = csrf_token(outsider, "/evidence")
    refused = outsider.post(
        f"/evidence/{evidence_id}/playback-copy", data={"csrf_token": other_token}
    )
    assert refused.status_code == 404 and len(_jobs_of(web, evidence_id)) == 2


def test_a_job_is_claimed_once_and_a_stale_one_is_queued_again(
    web: Flask, world: World, docks: Docks
) -> None:
    evidence_id = _upload(web, docks, south=False, plaintext=make_clip(codec="libx264"))
    [job] = _jobs_of(web, evidence_id)
    database = web.extensions["bwc.db"]
    now = datetime.now(UTC)
    assert jobs.claim(database, job.id, now) is True
    assert jobs.claim(database, job.id, now) is False
    assert jobs.requeue_stale(database, now) == 0  # running, but not for long
    with database.transaction() as session:
        session.execute(
            update(Job).where(Job.id == job.id).values(started_at=now - timedelta(hours=3))
        )
    assert jobs.requeue_stale(database, now) == 1
    [again] = _jobs_of(web, evidence_id)
    assert again.status == "queued" and again.attempts == 1


def test_the_in_process_worker_runs_what_is_submitted(
    web: Flask, world: World, docks: Docks
) -> None:
    evidence_id = _upload(web, docks, south=False, plaintext=make_clip(codec="libx265"))
    [job] = _jobs_of(web, evidence_id)
    done = threading.Event()
    ctx = _ctx(web)
    real_run = jobs.run_claimed

    def run_and_signal(context: JobContext, job_id: str) -> str:
        status = real_run(context, job_id)
        done.set()
        return status

    worker = jobs.InProcessWorker(ctx, poll_seconds=3600)  # only a submit wakes it
    try:
        jobs.run_claimed = run_and_signal  # type: ignore[assignment]
        worker.start()
        worker.submit(job.id)
        assert done.wait(120), "the worker never ran the submitted job"
    finally:
        worker.stop()
        jobs.run_claimed = real_run  # type: ignore[assignment]
    assert _jobs_of(web, evidence_id)[0].status == "done"
    assert _proxy(web, evidence_id) is not None


def test_rq_workers_take_jobs_from_redis(
    world: World, docks: Docks, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from redis import Redis
    from rq import Queue, SimpleWorker

    settings = dataclasses.replace(world.settings, redis_url=redis_url)
    connection = Redis.from_url(redis_url)
    queue_name = f"bwc-test-{threading.get_ident()}-{id(settings)}"
    monkeypatch.setattr(jobs, "RQ_QUEUE", queue_name)
    monkeypatch.setattr(jobs, "_served", {})
    queue = Queue(queue_name, connection=connection)
    real_init = jobs.RqDispatcher.__init__

    def on_test_queue(self: jobs.RqDispatcher, url: str, queue: str = queue_name) -> None:
        real_init(self, url, queue)

    monkeypatch.setattr(jobs.RqDispatcher, "__init__", on_test_queue)
    web = create_app(settings, start_worker=False)
    try:
        assert isinstance(web.extensions["bwc.jobs"], jobs.RqDispatcher)
        evidence_id = _upload(web, docks, south=False, plaintext=make_clip(codec="libx265"))
        assert queue.count == 1  # the upload's playback check went to Redis
        jobs.serve_context(_ctx(web))
        SimpleWorker([queue], connection=connection).work(burst=True)
        [job] = _jobs_of(web, evidence_id)
        assert job.status == "done" and _proxy(web, evidence_id) is not None
        assert queue.count == 0
    finally:
        queue.delete(delete_jobs=True)
        web.extensions["bwc.db"].dispose()
