"""Custody events in bulk: ledger leaves, their audit_events rows, the Merkle nodes and
each item's chain head, written by COPY instead of the per-event append path, but the
same bytes that path writes.

A leaf is the ledger's RFC 8785 JSON (audit/leaves.py) and its details commitment the
salted SHA-256 of audit/events.py; both are built here with string formatting for
speed and checked against the project's own functions on the first 2,000 events and on
one in 5,000 after that. Chains are real: seq counts up from 1 and prev is the previous
leaf's hash. What a human event did to the item (a tag, a bookmark, a category, a link
to an incident) is collected as it is generated, so the item's rows agree with its
custody timeline."""

from __future__ import annotations

import hashlib
import json
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
from _ui_scale_plan import (
    BOOKMARKED,
    CATEGORISED,
    DOWNLOADED,
    EXPORTED,
    FIXITY,
    FIXITY_FAILED,
    INCIDENT,
    LINKED,
    RECEIVED,
    STREAMED,
    TAGGED,
    UNTAGGED,
    VERIFIED,
    WIPED,
    Incidents,
    Schedule,
)

from audit import merkle
from audit.events import AuditEvent, EventType, details_commitment
from audit.leaves import ChainLink, build_leaf, rfc3339_millis

TYPES = {
    RECEIVED: EventType.EVIDENCE_RECEIVED,
    VERIFIED: EventType.EVIDENCE_VERIFIED,
    WIPED: EventType.CAMERA_WIPED,
    FIXITY: EventType.FIXITY_PASSED,
    FIXITY_FAILED: EventType.FIXITY_FAILED,
    STREAMED: EventType.EVIDENCE_STREAMED,
    DOWNLOADED: EventType.EVIDENCE_DOWNLOADED,
    TAGGED: EventType.EVIDENCE_TAGGED,
    UNTAGGED: EventType.EVIDENCE_UNTAGGED,
    CATEGORISED: EventType.EVIDENCE_CATEGORISED,
    BOOKMARKED: EventType.EVIDENCE_BOOKMARKED,
    LINKED: EventType.EVIDENCE_LINKED,
    EXPORTED: EventType.EVIDENCE_EXPORTED,
    INCIDENT: EventType.INCIDENT_CREATED,
}
LEAF_COLUMNS = (
    "log_id",
    "idx",
    "event_id",
    "leaf",
    "leaf_hash",
    "evidence_id",
    "seq",
    "appended_at",
)
AUDIT_COLUMNS = (
    "id",
    "district_id",
    "type",
    "occurred_at",
    "actor",
    "subject",
    "details",
    "details_salt",
    "details_sha256",
    "ledger_log_id",
    "ledger_index",
)
NODE_COLUMNS = ("log_id", "level", "idx", "hash")
PURPOSES = ("incident_review", "investigation", "complaint", "disclosure", "legal", "audit")
PURPOSE_WEIGHTS = np.array([0.45, 0.15, 0.12, 0.12, 0.06, 0.10])
BOOKMARK_NOTES = (
    "subject enters frame",
    "verbal warning",
    "staff member arrives",
    "item recovered",
    "camera obstructed",
    "parent arrives",
    "student leaves the area",
    "first aid given",
)
CHECK_FIRST, CHECK_EVERY = 2000, 5000
CHUNK = 1 << 20
TAG_ZIPF = 0.9


# RFC 8785 for what details hold here (ASCII strings, integers and null); and the
# serialisation SQLAlchemy's JSON type stores (json.dumps with its defaults).
_canonical = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode
_stored = json.JSONEncoder().encode


def commitment(details: dict[str, Any], salt: str) -> str:
    return hashlib.sha256(_canonical({"details": details, "salt": salt}).encode()).hexdigest()


def leaf_bytes(
    event_id: str,
    kind: str,
    when: str,
    details_sha256: str,
    actor: str,
    subject: str,
    device: str | None = None,
    evidence_id: str | None = None,
    media: str | None = None,
    seq: int = 0,
    prev: bytes | None = None,
) -> bytes:
    """audit.leaves.build_leaf's bytes: keys in RFC 8785 order, no whitespace."""
    dev = f',"device":"{device}"' if device else ""
    if evidence_id is None:
        return (
            f'{{"actor":"{actor}","details_sha256":"{details_sha256}"{dev},"id":"{event_id}",'
            f'"subject":"{subject}","time":"{when}","type":"{kind}","v":1}}'
        ).encode()
    back = f',"prev":"{prev.hex()}"' if prev is not None else ""
    return (
        f'{{"actor":"{actor}","details_sha256":"{details_sha256}"{dev},'
        f'"evidence_id":"{evidence_id}","id":"{event_id}","media_sha256":"{media}"{back},'
        f'"seq":{seq},"subject":"{subject}","time":"{when}","type":"{kind}","v":1}}'
    ).encode()


@dataclass
class ItemFacts:
    """What the event loop needs of every item, as plain lists (fast to index)."""

    ids: list[str]
    sha256: list[str]
    school: list[int]
    dock: list[int]
    serial: list[str]
    name_b64: list[str]
    size: list[int]
    stored_size: list[int]
    stored_sha256: list[str]
    duration_ms: list[int]
    start: list[float]


@dataclass
class Outcome:
    """What the events did to the items, and the ledger's state after them."""

    size: int
    frontier: list[bytes]
    seq: list[int]
    head_index: list[int]
    head_hash: list[bytes | None]
    category: list[int]
    last_fixity: list[float]
    tags: dict[int, dict[int, tuple[int, float]]] = field(default_factory=dict)
    bookmarks: list[tuple[int, int, int, str, float]] = field(default_factory=list)
    links: list[tuple[int, int, int, float]] = field(default_factory=list)
    checked: int = 0
    counts: dict[str, int] = field(default_factory=dict)


def _check(
    leaf: bytes,
    digest: str,
    details: dict[str, Any],
    salt: str,
    event: AuditEvent,
    chain: ChainLink | None,
) -> None:
    if details_commitment(details, salt) != digest:
        raise AssertionError(f"details commitment differs for {event.type}")
    if build_leaf(event, digest, chain) != leaf:
        raise AssertionError(f"leaf differs from audit.leaves.build_leaf for {event.type}")


def write_events(
    sched: Schedule,
    facts: ItemFacts,
    inc: Incidents,
    incident_ids: list[str],
    people: dict[str, Any],
    start_size: int,
    frontier: list[bytes],
    *,
    district_id: int,
    log_id: int,
    key_version: str,
    rng: np.random.Generator,
    leaves: Any,
    audits: Any,
    nodes: Any,
) -> Outcome:
    """Every scheduled event, in order, to the three COPY writers; the resulting state.

    people: docks [(id, school, pseudonym)], supervisors [(user id, pseudonym)] per
    school, records [(user id, pseudonym)], tags [(id, name)], categories [(id, name)]."""
    n = len(facts.ids)
    docks, supervisors, records = people["docks"], people["supervisors"], people["records"]
    tags, categories = people["tags"], people["categories"]
    out = Outcome(start_size, list(frontier), [0] * n, [-1] * n, [None] * n, [-1] * n, [0.0] * n)
    total = len(sched.kind)
    # Tags by popularity: Zipf over the district's tags (the first an eighth of all uses).
    tag_weights = 1.0 / np.arange(1, len(tags) + 1) ** TAG_ZIPF
    tag_weights /= tag_weights.sum()
    counts: dict[str, int] = {}
    linked: set[tuple[int, int]] = set()
    index = start_size
    token_hex = secrets.token_hex
    uuid4 = uuid.uuid4
    sha = hashlib.sha256
    dumps = _stored
    fromts = datetime.fromtimestamp
    append = merkle.append_to_frontier
    for base in range(0, total, CHUNK):
        size = min(CHUNK, total - base)
        # This chunk's events and random draws as plain lists (cheap to index).
        items = sched.item[base : base + size].tolist()
        kinds = sched.kind[base : base + size].tolist()
        times = sched.time[base : base + size].tolist()
        roll = rng.random(size).tolist()
        pick = rng.integers(0, 2**31 - 1, size).tolist()
        purpose = rng.choice(len(PURPOSES), size=size, p=PURPOSE_WEIGHTS).tolist()
        tag_pick = rng.choice(len(tags), size=size, p=tag_weights).tolist()
        for j in range(size):
            i, k, t, pos = items[j], kinds[j], times[j], base + j
            moment = fromts(t, UTC)
            when = rfc3339_millis(moment)
            event_id = str(uuid4())
            salt = token_hex(16)
            kind = TYPES[k]
            device = None
            r, p = roll[j], pick[j]
            if k == INCIDENT:
                school = int(inc.school[i])
                user_id, actor = supervisors[school]
                details: dict[str, Any] = {"number": inc.number[i], "title": inc.title[i]}
                subject = f"incident:{incident_ids[i]}"
                digest = commitment(details, salt)
                leaf = leaf_bytes(event_id, kind, when, digest, actor, subject)
                evidence_id = None
                seq = None
            else:
                evidence_id = facts.ids[i]
                school = facts.school[i]
                subject = f"evidence:{evidence_id}"
                if r < 0.35 and k in (STREAMED, TAGGED, BOOKMARKED, CATEGORISED, LINKED, UNTAGGED):
                    user_id, actor = records[p % len(records)]
                else:
                    user_id, actor = supervisors[school]
                if k == RECEIVED:
                    actor = device = docks[facts.dock[i]][2]
                    details = {
                        "upload": str(uuid4()),
                        "size": facts.size[i],
                        "camera_serial": facts.serial[i],
                        "file_name_b64": facts.name_b64[i],
                    }
                elif k == VERIFIED:
                    actor, device = "system", docks[facts.dock[i]][2]
                    details = {
                        "stored_sha256": facts.stored_sha256[i],
                        "stored_size": facts.stored_size[i],
                        "key_version": key_version,
                    }
                elif k == WIPED:
                    actor = device = docks[facts.dock[i]][2]
                    details = {"session_id": f"s{p:08x}{i:08x}"}
                elif k == FIXITY or k == FIXITY_FAILED:
                    actor = "system"
                    details = (
                        {}
                        if k == FIXITY
                        else {"problem": "the stored object failed authentication"}
                    )
                    out.last_fixity[i] = t
                elif k == STREAMED or k == DOWNLOADED:
                    if k == DOWNLOADED:
                        user_id, actor = records[p % len(records)]
                    note = f"IR-{p % 9000 + 1000}" if r > 0.75 else ""
                    details = {"purpose": PURPOSES[purpose[j]], "note": note, "user_id": user_id}
                elif k == EXPORTED:
                    actor = "cli"
                    details = {"size": facts.size[i]}
                elif k == CATEGORISED:
                    before = out.category[i]
                    new = p % len(categories)
                    if new == before:
                        new = (new + 1) % len(categories)
                    out.category[i] = new
                    details = {
                        "category": categories[new][1],
                        "previous": categories[before][1] if before >= 0 else None,
                    }
                elif k == BOOKMARKED:
                    at_ms = p % max(1, facts.duration_ms[i])
                    text = BOOKMARK_NOTES[p % len(BOOKMARK_NOTES)]
                    out.bookmarks.append((i, user_id, at_ms, text, t))
                    details = {"at_ms": at_ms, "note": text}
                elif k == LINKED:
                    choices = inc.by_school[school]
                    chosen = -1
                    if len(choices):
                        # One of the school's incidents that began shortly before it.
                        at = int(np.searchsorted(inc.starts[choices], facts.start[i] + 86_400.0))
                        chosen = int(choices[max(0, at - 1 - p % 3)])
                    if chosen >= 0 and (chosen, i) not in linked:
                        linked.add((chosen, i))
                        out.links.append((chosen, i, user_id, t))
                        details = {
                            "incident": incident_ids[chosen],
                            "incident_number": inc.number[chosen],
                        }
                    else:  # no incident to link (or linked already): a viewing instead
                        kind = EventType.EVIDENCE_STREAMED
                        details = {"purpose": "incident_review", "note": "", "user_id": user_id}
                else:  # TAGGED, UNTAGGED
                    held = out.tags.setdefault(i, {})
                    if k == UNTAGGED and held:
                        gone = next(iter(held))
                        del held[gone]
                        details = {"tag": tags[gone][1]}
                    else:
                        kind = EventType.EVIDENCE_TAGGED
                        chosen = tag_pick[j]
                        while chosen in held:
                            chosen = (chosen + 1) % len(tags)
                        held[chosen] = (user_id, t)
                        details = {"tag": tags[chosen][1]}
                seq = out.seq[i] + 1
                prev = out.head_hash[i]
                digest = commitment(details, salt)
                leaf = leaf_bytes(
                    event_id,
                    kind,
                    when,
                    digest,
                    actor,
                    subject,
                    device,
                    evidence_id,
                    facts.sha256[i],
                    seq,
                    prev,
                )
            leaf_hash = sha(b"\x00" + leaf).digest()
            if pos < CHECK_FIRST or pos % CHECK_EVERY == 0:
                chain = None if evidence_id is None else ChainLink(seq or 0, out.head_hash[i])
                event = AuditEvent(
                    kind,
                    moment,
                    district_id,
                    actor=actor,
                    subject=subject,
                    details=details,
                    device=device,
                    evidence_id=evidence_id,
                    media_sha256=facts.sha256[i] if evidence_id else None,
                    id=event_id,
                )
                _check(leaf, digest, details, salt, event, chain)
                out.checked += 1
            if evidence_id is not None:
                out.seq[i], out.head_hash[i], out.head_index[i] = seq or 0, leaf_hash, index
            out.frontier, completed = append(out.frontier, index, leaf_hash)
            leaves((log_id, index, event_id, leaf, leaf_hash, evidence_id, seq, moment))
            audits(
                (
                    event_id,
                    district_id,
                    str(kind),
                    moment,
                    actor,
                    subject,
                    dumps(details),
                    salt,
                    digest,
                    log_id,
                    index,
                )
            )
            for (level, node_index), node in completed:
                nodes((log_id, level, node_index, node))
            counts[kind.value] = counts.get(kind.value, 0) + 1
            index += 1
    out.size = index
    out.counts = counts
    return out
