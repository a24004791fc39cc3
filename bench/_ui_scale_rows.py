"""The rows of the generated history, built from the plan: evidence items as the
service's ingest writes them (app/ingest.py `_new_item`: names, sizes, hashes, the
object key and a wrapped key of the real length, times, flags, fixity state) and the
RECORD_START and RECORD_STOP activation events each camera's log reports."""

from __future__ import annotations

import base64
import json
import os
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from _ui_scale_custody import ItemFacts, Outcome
from _ui_scale_plan import FLAGS, Recordings, note_text
from _ui_scale_world import CATEGORIES, World

from evidence.crypto.segments import DEFAULT_SEGMENT_SIZE, ciphertext_size
from evidence.search_text import compose as compose_search_text
from evidence.vault import original_key

ITEM_COLUMNS = (
    "id",
    "district_id",
    "school_id",
    "camera_id",
    "wearer_id",
    "dock_id",
    "category_id",
    "status",
    "file_identity",
    "file_name",
    "file_name_b64",
    "media_type",
    "size",
    "sha256",
    "object_key",
    "wrapped_key",
    "key_version",
    "recorded_start",
    "recorded_end",
    "camera_recorded_start",
    "clock_offset_ms",
    "ingested_at",
    "retain_until",
    "flags",
    "notes",
    "search_text",
    "object_id",
    "segment_size",
    "stored_size",
    "stored_sha256",
    "integrity",
    "last_fixity_at",
)
ACTIVATION_COLUMNS = (
    "district_id",
    "school_id",
    "camera_id",
    "wearer_id",
    "dock_id",
    "evidence_id",
    "session_id",
    "seq",
    "event",
    "camera_time",
    "corrected_time",
    "trigger",
    "reason",
    "file_name",
    "received_at",
)


def ts(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC)


def item_facts(rec: Recordings, world: World) -> tuple[ItemFacts, list[str]]:
    n = rec.n
    ids = [str(uuid.uuid4()) for _ in range(n)]
    names = []
    for no, flag in zip(rec.file_no.tolist(), rec.flag.tolist(), strict=True):
        names.append(f"clip_{no}.mov" if flag == 1 else f"BWC{no:05d}.MP4")
    sizes = rec.size.tolist()
    facts = ItemFacts(
        ids=ids,
        sha256=[os.urandom(32).hex() for _ in range(n)],
        school=rec.school.tolist(),
        dock=rec.dock.tolist(),
        serial=[world.cameras[c][3] for c in rec.camera.tolist()],
        name_b64=[base64.b64encode(name.encode()).decode() for name in names],
        size=sizes,
        stored_size=[ciphertext_size(s) for s in sizes],
        stored_sha256=[os.urandom(32).hex() for _ in range(n)],
        duration_ms=((rec.end - rec.start) * 1000).astype(np.int64).tolist(),
        start=rec.start.tolist(),
    )
    return facts, names


def item_rows(
    rec: Recordings,
    facts: ItemFacts,
    names: list[str],
    out: Outcome,
    world: World,
    tampered: set[int],
    titles: dict[int, list[str]],
) -> Any:
    """titles: each item's linked incidents' titles (its search text holds them, and its
    tags' names, as the service's refresh_search_text writes it)."""
    retention = dict(CATEGORIES)
    for i in range(rec.n):
        timed = bool(rec.timed[i])
        start, end, ingested = ts(rec.start[i]), ts(rec.end[i]), ts(rec.ingested[i])
        offset = int(rec.offset_ms[i])
        camera_start = (start + timedelta(milliseconds=offset)).strftime("%Y-%m-%dT%H:%M:%S")
        category = out.category[i]
        name = world.categories[category][1] if category >= 0 else None
        flag = int(rec.flag[i])
        notes = note_text(int(rec.note[i])) if rec.note[i] >= 0 else None
        tag_names = [world.tags[tag][1] for tag in out.tags.get(i, {})]
        yield (
            facts.ids[i],
            world.district_id,
            world.schools[facts.school[i]],
            world.cameras[rec.camera[i]][0],
            world.wearers[rec.wearer[i]][0] if rec.wearer[i] >= 0 else None,
            world.docks[facts.dock[i]][0],
            world.categories[category][0] if category >= 0 else None,
            "verified",
            f"{names[i]}@{camera_start}",
            names[i],
            facts.name_b64[i],
            "video/mp4",
            facts.size[i],
            facts.sha256[i],
            original_key(facts.ids[i]),
            base64.b64encode(os.urandom(world.wrapped_key_bytes)).decode(),
            world.key_version,
            start if timed else None,
            end if timed else None,
            camera_start if timed else None,
            offset if timed else None,
            ingested,
            ingested + timedelta(days=retention[name]) if name else None,
            json.dumps([FLAGS[flag]] if flag >= 0 else []),
            notes,
            compose_search_text(names[i], notes, tag_names, titles.get(i, [])),
            os.urandom(16).hex(),
            DEFAULT_SEGMENT_SIZE,
            facts.stored_size[i],
            facts.stored_sha256[i],
            "tampered" if i in tampered else "ok",
            ts(out.last_fixity[i]) if out.last_fixity[i] else ingested,
        )


def activation_rows(rec: Recordings, facts: ItemFacts, names: list[str], world: World) -> Any:
    """RECORD_START and RECORD_STOP from each camera's log, linked to the item."""
    for i in range(rec.n):
        camera_id, _, _, _ = world.cameras[rec.camera[i]]
        wearer = world.wearers[rec.wearer[i]][0] if rec.wearer[i] >= 0 else None
        offset = timedelta(milliseconds=int(rec.offset_ms[i]))
        session = f"s{i:012x}"
        for seq, event, t in (
            (2 * int(rec.file_no[i]) - 1, "RECORD_START", rec.start[i]),
            (2 * int(rec.file_no[i]), "RECORD_STOP", rec.end[i]),
        ):
            corrected = ts(t)
            yield (
                world.district_id,
                world.schools[facts.school[i]],
                camera_id,
                wearer,
                world.docks[facts.dock[i]][0],
                facts.ids[i],
                session,
                seq,
                event,
                (corrected + offset).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
                corrected,
                "button" if event == "RECORD_START" else None,
                None,
                names[i],
                ts(rec.ingested[i]),
            )
