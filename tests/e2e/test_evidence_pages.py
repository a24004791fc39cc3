"""The evidence list and item pages: scope, filters, search, keyset pages, purpose before
playback, watermark, custody timeline with downloadable proofs, escaping."""

from __future__ import annotations

import base64
import os
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import insert, select

from app.db import Database
from app.evidence_search import SORTS, Filters, search
from audit import offline_verify
from evidence.adapters.sql.items import (
    Category,
    EvidenceItem,
    Incident,
    Tag,
    evidence_tags,
    incident_evidence,
    refresh_search_text,
    tag_link,
)
from evidence.adapters.sql.org import Camera, Wearer
from evidence.policy import Scope
from tests.e2e.conftest import World, signed_in
from tests.e2e.vault_support import (
    NORTH_CAMERA,
    SOUTH_CAMERA,
    Docks,
    seal,
    tus_headers,
)

NOW = datetime(2026, 11, 3, 9, 0, tzinfo=UTC)


def _upload(app: Flask, docks: Docks, *, south: bool, plaintext: bytes) -> str:
    """A real verified item through the tus API; its evidence id."""
    api = app.test_client()
    credential = docks.south_credential if south else docks.north_credential
    sealed = seal(docks, plaintext, camera=SOUTH_CAMERA if south else NORTH_CAMERA)
    created = api.post(
        "/api/v1/uploads/",
        headers=tus_headers(
            credential,
            **{"Upload-Length": str(len(sealed.ciphertext)), "Upload-Metadata": sealed.header},
        ),
    )
    assert created.status_code == 201, created.get_data(as_text=True)
    location = created.headers["Location"]
    done = api.patch(
        location,
        data=sealed.ciphertext,
        headers=tus_headers(
            credential,
            **{"Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"},
        ),
    )
    assert done.status_code == 204, done.get_data(as_text=True)
    receipt = api.get(location + "/receipt", headers=tus_headers(credential)).get_json()
    return str(receipt["evidence_id"])


@pytest.fixture
def items(web: Flask, docks: Docks) -> dict[str, str]:
    return {
        "north": _upload(web, docks, south=False, plaintext=os.urandom(5000)),
        "south": _upload(web, docks, south=True, plaintext=os.urandom(6000)),
    }


def _ids_on(page: str) -> list[str]:
    return re.findall(r'href="/evidence/([0-9a-f-]{36})"', page)


def test_each_role_lists_only_what_it_may_view(
    web: Flask, world: World, items: dict[str, str]
) -> None:
    expected = {
        "supervisor": {items["north"]},
        "wearer": {items["north"]},
        "south-teacher": {items["south"]},
        "south-supervisor": {items["south"]},
        "records": {items["north"], items["south"]},
    }
    for who, visible in expected.items():
        page = signed_in(web, world, who).get("/evidence")
        assert page.status_code == 200, who
        assert set(_ids_on(page.get_data(as_text=True))) == visible, who
    for who in ("oversight", "admin"):
        assert signed_in(web, world, who).get("/evidence").status_code == 403, who


def test_another_schools_or_wearers_item_is_404_by_page_stream_api_and_proof(
    web: Flask, world: World, items: dict[str, str]
) -> None:
    south = items["south"]
    for who in ("wearer", "supervisor", "oversight", "admin"):
        client = signed_in(web, world, who)
        for url in (
            f"/evidence/{south}",
            f"/evidence/{south}?purpose=investigation",
            f"/evidence/{south}/stream?purpose=investigation",
            f"/api/v1/evidence/{south}/content?purpose=investigation",
            f"/evidence/{south}/custody/0/proof",
        ):
            assert client.get(url).status_code == 404, (who, url)


def test_playback_waits_for_a_purpose_and_the_viewing_joins_the_custody_timeline(
    web: Flask, world: World, items: dict[str, str]
) -> None:
    north = items["north"]
    client = signed_in(web, world, "supervisor")
    first = client.get(f"/evidence/{north}").get_data(as_text=True)
    assert 'id="purpose-form"' in first and "<video" not in first
    chosen = client.get(f"/evidence/{north}?purpose=incident_review&note=IR-7")
    page = chosen.get_data(as_text=True)
    src = re.search(r'<video[^>]* src="([^"]+)"', page)
    assert src, page
    assert "purpose=incident_review" in src.group(1)
    assert 'class="watermark"' in page and "supervisor" in page
    # The purpose is remembered for this item in this session only.
    assert "<video" in client.get(f"/evidence/{north}").get_data(as_text=True)
    streamed = client.get(src.group(1).replace("&amp;", "&"), headers={"Range": "bytes=0-99"})
    assert streamed.status_code == 206
    timeline = client.get(f"/evidence/{north}").get_data(as_text=True)
    row = re.search(r"<tr>\s*<td>3</td>.*?</tr>", timeline, re.S)
    assert row, timeline
    assert "evidence.streamed" in row.group(0) and "supervisor" in row.group(0)
    assert "Reviewing an incident" in row.group(0) and "IR-7" in row.group(0)
    other = signed_in(web, world, "records")
    assert "<video" not in other.get(f"/evidence/{north}").get_data(as_text=True)


def test_the_wearer_watching_their_own_recording_sees_no_watermark(
    web: Flask, world: World, items: dict[str, str]
) -> None:
    client = signed_in(web, world, "wearer")
    page = client.get(f"/evidence/{items['north']}?purpose=wearer_review").get_data(as_text=True)
    assert "<video" in page and 'class="watermark"' not in page


def test_a_purpose_outside_the_list_or_an_overlong_note_is_refused(
    web: Flask, world: World, items: dict[str, str]
) -> None:
    client = signed_in(web, world, "supervisor")
    assert client.get(f"/evidence/{items['north']}?purpose=curiosity").status_code == 400
    long_note = "x" * 600
    url = f"/evidence/{items['north']}?purpose=investigation&note={long_note}"
    assert client.get(url).status_code == 400


def test_a_custody_proof_downloads_and_verifies_offline(
    web: Flask, world: World, items: dict[str, str]
) -> None:
    web.extensions["bwc.ledger"].checkpoint_all()
    client = signed_in(web, world, "records")
    timeline = client.get(f"/evidence/{items['south']}").get_data(as_text=True)
    links = re.findall(r'href="(/evidence/[^"]+/custody/(\d+)/proof)"', timeline)
    assert len(links) == 2  # received and verified, both in the signed checkpoint
    answer = client.get(links[1][0])
    assert answer.status_code == 200
    assert answer.headers["Content-Disposition"].startswith("attachment")
    body = answer.get_json()
    key_text = client.get("/api/v1/ledger/key").get_data(as_text=True).splitlines()[0]
    checkpoint = offline_verify.verify_checkpoint(
        body["checkpoint"], offline_verify.parse_verifier_key(key_text)
    )
    proof = body["inclusion_proof"]
    offline_verify.verify_inclusion(
        offline_verify.leaf_hash(base64.b64decode(body["leaf"])),
        proof["leaf_index"],
        checkpoint.size,
        [bytes.fromhex(h) for h in proof["hashes"]],
        checkpoint.root_hash,
    )
    assert int(links[1][1]) == proof["leaf_index"]


# --- many items, made directly in the database ----------------------------------------


def _bulk(
    world: World, count: int, *, same_time: int = 0, camera_serial: str = NORTH_CAMERA
) -> list[str]:
    """count north items recorded a minute apart (the first same_time share one time)."""
    database = Database(world.settings.database_url)
    ids = []
    try:
        with database.transaction() as session:
            camera = session.scalars(select(Camera).where(Camera.serial == camera_serial)).one()
            for n in range(count):
                item_id = str(uuid.uuid4())
                ids.append(item_id)
                when = NOW - timedelta(minutes=0 if n < same_time else n)
                session.add(
                    EvidenceItem(
                        id=item_id,
                        district_id=camera.district_id,
                        school_id=camera.school_id,
                        camera_id=camera.id,
                        wearer_id=camera.assigned_wearer_id,
                        status="verified",
                        file_identity=f"{camera_serial}-F{n:05d}.MP4",
                        file_name=f"F{n:05d}.MP4",
                        file_name_b64="",
                        media_type="video/mp4",
                        size=1000 + n,
                        sha256=f"{n:064x}",
                        object_key=f"originals/{item_id}",
                        recorded_start=when,
                        ingested_at=NOW + timedelta(hours=1, seconds=n),
                        flags=["clock_skew"] if n % 10 == 0 else [],
                    )
                )
            session.flush()
            refresh_search_text(session, ids)
    finally:
        database.dispose()
    return ids


def _walk(client: FlaskClient, url: str) -> list[str]:
    seen: list[str] = []
    pages = 0
    while url:
        page = client.get(url)
        assert page.status_code == 200, page.get_data(as_text=True)[:300]
        text = page.get_data(as_text=True)
        seen += _ids_on(text)
        nxt = re.search(r'href="([^"]+)" rel="next"', text)
        url = nxt.group(1).replace("&amp;", "&") if nxt else ""
        pages += 1
        assert pages < 50
    return seen


@pytest.mark.parametrize("sort", ["recorded_desc", "recorded_asc", "ingested_desc"])
def test_keyset_pages_visit_every_item_once_in_order_even_with_equal_times(
    web: Flask, world: World, docks: Docks, sort: str
) -> None:
    ids = _bulk(world, 123, same_time=60)
    seen = _walk(signed_in(web, world, "supervisor"), f"/evidence?sort={sort}")
    assert sorted(seen) == sorted(ids) and len(seen) == len(set(seen))
    database = Database(world.settings.database_url)
    try:
        with database.sessions() as session:
            rows = {i.id: i for i in session.scalars(select(EvidenceItem))}
    finally:
        database.dispose()
    column = "ingested_at" if sort.startswith("ingested") else "recorded_start"
    keys = [(getattr(rows[i], column), i) for i in seen]
    assert keys == sorted(keys, reverse=sort.endswith("desc"))


def _every_page(session: Any, scope: Scope, filters: Filters) -> list[str]:
    seen: list[str] = []
    cursor = None
    while True:
        page = search(session, scope, filters, cursor)
        seen += [item.id for item in page.items]
        if page.next_cursor is None:
            return seen
        cursor = page.next_cursor
        assert len(seen) < 1000


@pytest.mark.parametrize("sort", sorted(SORTS))
def test_a_scope_of_several_schools_lists_what_one_query_lists(
    world: World, docks: Docks, sort: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Branch by branch (one per school, merged) must give exactly the pages of the
    # single query over the whole scope, with or without the tag-ordered walk.
    north = _bulk(world, 70, same_time=20)
    south = _bulk(world, 45, same_time=10, camera_serial=SOUTH_CAMERA)
    database = Database(world.settings.database_url)
    try:
        with database.transaction() as session:
            items = {i.id: i for i in session.scalars(select(EvidenceItem))}
            district = items[north[0]].district_id
            tag = Tag(district_id=district, name="stairwell")
            session.add(tag)
            session.flush()
            for item_id in north[::3] + south[::2]:
                session.execute(
                    insert(evidence_tags).values(tag_link(items[item_id], tag.id, added_at=NOW))
                )
            refresh_search_text(session, items)
            schools = frozenset({items[north[0]].school_id, items[south[0]].school_id})
            tagged = set(north[::3] + south[::2])
        scope = Scope(district, school_ids=schools)
        with database.sessions() as session:
            for filters in (
                Filters(sort=sort),
                Filters(sort=sort, tag="Stairwell"),
                Filters(sort=sort, tag="stairwell", recorded_from=NOW.date()),
                Filters(sort=sort, tag="stairwell", school_id=items[south[0]].school_id),
            ):
                merged = _every_page(session, scope, filters)
                monkeypatch.setattr("app.evidence_search.MAX_BRANCHES", 1)
                single = _every_page(session, scope, filters)
                monkeypatch.undo()
                assert merged == single, filters
                expected = set(north + south) if filters.tag is None else tagged
                if filters.school_id is not None:
                    expected = set(south[::2])
                if filters.recorded_from is not None:
                    midnight = NOW.replace(hour=0, minute=0)
                    expected = {i for i in expected if items[i].recorded_start >= midnight}
                assert set(merged) == expected and len(merged) == len(expected), filters
                column = "ingested_at" if sort.startswith("ingested") else "recorded_start"
                keys = [(getattr(items[i], column), i) for i in merged]
                assert keys == sorted(keys, reverse=sort.endswith("desc"))
    finally:
        database.dispose()


@pytest.mark.parametrize(
    ("few_matches", "estimate"),
    [(50_000, None), (0, None), (50_000, 10**9)],
    ids=["looked-up", "walked", "estimated-common"],
)
def test_filters_and_text_search_narrow_the_list(
    web: Flask,
    world: World,
    docks: Docks,
    few_matches: int,
    estimate: int | None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Every search plan: rare words looked up in the indexes, common ones walked, and
    # words the database's statistics call common walked without a look-up.
    monkeypatch.setattr("app.evidence_search.FEW_MATCHES", few_matches)
    if estimate is not None:
        monkeypatch.setattr(
            "app.evidence_search._estimated_matches", lambda session, condition: estimate
        )
    ids = _bulk(world, 30)
    database = Database(world.settings.database_url)
    try:
        with database.transaction() as session:
            district = session.get(EvidenceItem, ids[0]).district_id  # type: ignore[union-attr]
            school = session.get(EvidenceItem, ids[0]).school_id  # type: ignore[union-attr]
            tag = Tag(district_id=district, name="Corridor")
            category = Category(district_id=district, name="Use of force", created_at=NOW)
            incident = Incident(
                id=str(uuid.uuid4()),
                district_id=district,
                school_id=school,
                number="INC-42",
                title="Fight near the gym",
                starts_at=NOW,
                created_at=NOW,
            )
            session.add_all([tag, category, incident])
            session.flush()
            session.execute(
                insert(evidence_tags).values(
                    tag_link(session.get(EvidenceItem, ids[3]), tag.id, added_at=NOW)  # type: ignore[arg-type]
                )
            )
            session.execute(
                insert(incident_evidence).values(
                    incident_id=incident.id, evidence_id=ids[4], linked_at=NOW
                )
            )
            item5 = session.get(EvidenceItem, ids[5])
            assert item5 is not None
            item5.notes = "Pupil asked for the camera to be switched off"
            item5.category_id = category.id
            refresh_search_text(session, ids)
            incident_id, category_id = incident.id, category.id
    finally:
        database.dispose()
    client = signed_in(web, world, "supervisor")

    def listed(query: str) -> set[str]:
        page = client.get("/evidence?" + query)
        assert page.status_code == 200, (query, page.get_data(as_text=True)[:300])
        return set(_ids_on(page.get_data(as_text=True)))

    assert listed("q=corridor") == {ids[3]}
    assert listed("tag=corridor") == {ids[3]}
    assert listed("q=GYM+fight") == {ids[4]}
    assert listed(f"incident_id={incident_id}") == {ids[4]}
    assert listed("q=switched") == {ids[5]}
    assert listed(f"category_id={category_id}") == {ids[5]}
    assert listed("q=100%25") == set()  # % is matched literally, not as a wildcard
    assert listed("flag=clock_skew") == {ids[0], ids[10], ids[20]}
    assert listed("flag=clock%5Fskew") == {ids[0], ids[10], ids[20]}
    day = (NOW - timedelta(minutes=3)).date().isoformat()
    assert listed(f"recorded_from={day}&recorded_to={day}") == set(ids)
    assert listed("recorded_from=2030-01-01") == set()
    assert "Nothing matches these filters" in client.get("/evidence?q=nothingmatches").get_data(
        as_text=True
    )


@pytest.mark.parametrize(
    "query",
    [
        "after=not-a-cursor",
        "sort=sideways",
        "recorded_from=yesterday",
        "recorded_from=2026-11-05&recorded_to=2026-11-01",
        "school_id=abc",
        "status=lost",
        "flag=DROP%20TABLE",
        "q=" + "x" * 101,
    ],
)
def test_bad_list_queries_get_a_clear_error(
    web: Flask, world: World, docks: Docks, query: str
) -> None:
    page = signed_in(web, world, "supervisor").get("/evidence?" + query)
    assert page.status_code == 400
    assert 'role="alert"' in page.get_data(as_text=True)


def test_camera_and_user_supplied_text_renders_escaped(
    web: Flask, world: World, docks: Docks
) -> None:
    ids = _bulk(world, 1)
    evil = '<script>alert("x")</script>'
    database = Database(world.settings.database_url)
    try:
        with database.transaction() as session:
            item = session.get(EvidenceItem, ids[0])
            assert item is not None
            item.file_name = evil
            item.notes = evil
            item.flags = ["<b>flag</b>"]
            tag = Tag(district_id=item.district_id, name=evil[:64])
            session.add(tag)
            session.flush()
            session.execute(insert(evidence_tags).values(tag_link(item, tag.id, added_at=NOW)))
            refresh_search_text(session, [item.id])
            wearer = session.get(Wearer, item.wearer_id)
            assert wearer is not None
            wearer.display_name = evil
    finally:
        database.dispose()
    client = signed_in(web, world, "supervisor")
    for url in ("/evidence", f"/evidence/{ids[0]}"):
        page = client.get(url).get_data(as_text=True)
        assert "<script>alert" not in page, url
        assert "&lt;script&gt;alert" in page, url
        assert "<b>flag</b>" not in page


# --- tags, category, bookmarks --------------------------------------------------------


def _post(client: FlaskClient, page_url: str, action: str, data: dict[str, str]):  # type: ignore[no-untyped-def]
    page = client.get(page_url).get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token, page[:500]
    return client.post(action, data={"csrf_token": token.group(1), **data})


def test_tags_category_and_bookmarks_are_saved_shown_and_logged(
    web: Flask, world: World, items: dict[str, str]
) -> None:
    north = items["north"]
    database = Database(world.settings.database_url)
    try:
        with database.transaction() as session:
            item = session.get(EvidenceItem, north)
            assert item is not None
            category = Category(district_id=item.district_id, name="Safeguarding", created_at=NOW)
            session.add(category)
            session.flush()
            category_id = category.id
    finally:
        database.dispose()
    client = signed_in(web, world, "supervisor")
    page = f"/evidence/{north}"
    # ingest wrote the item's search text: found by its file name, any case
    assert _ids_on(client.get("/evidence?q=bwc00001.mp4").get_data(as_text=True)) == [north]
    assert _ids_on(client.get("/evidence?q=corridor").get_data(as_text=True)) == []
    added = _post(client, page, f"{page}/tags", {"tag": "  Corridor   Fight "})
    assert added.status_code == 302
    assert _ids_on(client.get("/evidence?q=corridor").get_data(as_text=True)) == [north]
    again = _post(client, page, f"{page}/tags", {"tag": "corridor fight"})  # same tag, any case
    assert again.status_code == 302
    assert (
        _post(client, page, f"{page}/category", {"category_id": str(category_id)}).status_code
        == 302
    )
    assert (
        _post(client, page, f"{page}/bookmarks", {"at": "1:23", "note": "door opens"}).status_code
        == 302
    )
    shown = client.get(page).get_data(as_text=True)
    assert shown.count('<span class="tag">Corridor Fight</span>') == 2  # details and editor
    assert "<strong>1:23</strong> door opens" in shown
    assert "Safeguarding" in shown
    types = re.findall(r"<td>(evidence\.[a-z_]+)</td>", shown)
    assert types.count("evidence.tagged") == 1  # tagging twice is one change
    assert {"evidence.categorised", "evidence.bookmarked"} <= set(types)
    assert set(_ids_on(client.get("/evidence?tag=corridor+fight").get_data(as_text=True))) == {
        north
    }
    tag_id = re.search(rf"{page}/tags/(\d+)/remove", shown)
    assert tag_id
    removed = _post(client, page, f"{page}/tags/{tag_id.group(1)}/remove", {})
    assert removed.status_code == 302
    after = client.get(page).get_data(as_text=True)
    assert "Corridor Fight</span>" not in after and "evidence.untagged" in after
    assert _ids_on(client.get("/evidence?q=corridor").get_data(as_text=True)) == []


@pytest.mark.parametrize(
    ("path", "data", "message"),
    [
        ("tags", {"tag": ""}, "write the tag to add"),
        ("tags", {"tag": "x" * 65}, "limited to 64 characters"),
        ("tags", {"tag": "bad\u202etag"}, "cannot be shown"),
        ("bookmarks", {"at": "soon", "note": "x"}, "minutes:seconds"),
        ("bookmarks", {"at": "1:75", "note": "x"}, "go up to 59"),
        ("bookmarks", {"at": "0:05", "note": "  "}, "say what happens"),
        ("category", {"category_id": "999999"}, "choose one of the listed categories"),
    ],
)
def test_bad_annotations_are_refused_with_a_message_and_change_nothing(
    web: Flask, world: World, items: dict[str, str], path: str, data: dict[str, str], message: str
) -> None:
    client = signed_in(web, world, "supervisor")
    page = f"/evidence/{items['north']}"
    answer = _post(client, page, f"{page}/{path}", data)
    assert answer.status_code == 302
    shown = client.get(page).get_data(as_text=True)
    assert message in shown and "flash-error" in shown
    assert not {"evidence.tagged", "evidence.bookmarked", "evidence.categorised"} & set(
        re.findall(r"<td>(evidence\.[a-z_]+)</td>", shown)
    )


def test_annotating_needs_the_form_token_and_the_right_to_the_item(
    web: Flask, world: World, items: dict[str, str]
) -> None:
    north = items["north"]
    client = signed_in(web, world, "supervisor")
    assert client.post(f"/evidence/{north}/tags", data={"tag": "x"}).status_code == 400  # no CSRF
    other = signed_in(web, world, "south-supervisor")
    own = f"/evidence/{items['south']}"
    token = re.search(r'name="csrf_token" value="([^"]+)"', other.get(own).get_data(as_text=True))
    assert token
    for path in ("tags", "bookmarks", "category", "tags/1/remove"):
        answer = other.post(
            f"/evidence/{north}/{path}",
            data={"csrf_token": token.group(1), "tag": "x", "at": "1", "note": "x"},
        )
        assert answer.status_code == 404, path
    wearer = signed_in(web, world, "wearer")  # wearers tag and categorise their own clips
    assert (
        _post(wearer, f"/evidence/{north}", f"/evidence/{north}/tags", {"tag": "mine"}).status_code
        == 302
    )


# --- incidents and bulk actions -------------------------------------------------------


def _new_incident(client: FlaskClient, school_id: int, number: str, title: str, **extra: str):  # type: ignore[no-untyped-def]
    return _post(
        client,
        "/incidents/new",
        "/incidents/new",
        {
            "school": str(school_id),
            "number": number,
            "title": title,
            "starts_at": "2026-11-30T08:55",
            "ends_at": "2026-11-30T09:20",
            **extra,
        },
    )


def test_an_incident_is_recorded_linked_to_footage_and_shown_escaped(
    web: Flask, world: World, items: dict[str, str]
) -> None:
    client = signed_in(web, world, "supervisor")
    north = items["north"]
    evil = '<img src=x onerror="alert(1)">Fight'
    made = _new_incident(client, world.schools["NHS"], "NHS-1", evil)
    assert made.status_code == 302, made.get_data(as_text=True)[:500]
    incident_url = made.headers["Location"]
    incident_id = incident_url.rsplit("/", 1)[1]
    linked = _post(
        client, f"/evidence/{north}", f"/evidence/{north}/incidents", {"incident_id": incident_id}
    )
    assert linked.status_code == 302
    page = client.get(incident_url).get_data(as_text=True)
    assert f"/evidence/{north}" in page
    assert "<img src=x" not in page and "&lt;img src=x" in page
    detail = client.get(f"/evidence/{north}").get_data(as_text=True)
    assert "evidence.linked_to_incident" in detail and "<img src=x" not in detail
    assert set(
        _ids_on(client.get(f"/evidence?incident_id={incident_id}").get_data(as_text=True))
    ) == {north}
    assert set(_ids_on(client.get("/evidence?q=fight").get_data(as_text=True))) == {north}
    assert _ids_on(client.get("/evidence?q=onerror").get_data(as_text=True)) == [north]
    duplicate = _new_incident(client, world.schools["NHS"], "NHS-1", "again")
    assert duplicate.status_code == 200 and "already used" in duplicate.get_data(as_text=True)
    backwards = _new_incident(
        client, world.schools["NHS"], "NHS-2", "t", ends_at="2026-11-30T08:00"
    )
    assert "ends before it starts" in backwards.get_data(as_text=True)
    # Another school's supervisor cannot see it, link to it or create at North.
    other = signed_in(web, world, "south-supervisor")
    assert other.get(incident_url).status_code == 404
    assert "NHS-1" not in other.get("/incidents").get_data(as_text=True)
    assert _new_incident(other, world.schools["NHS"], "NHS-3", "t").status_code == 400
    unlinked = _post(
        client, f"/evidence/{north}", f"/evidence/{north}/incidents/{incident_id}/unlink", {}
    )
    assert unlinked.status_code == 302
    assert "evidence.unlinked_from_incident" in client.get(f"/evidence/{north}").get_data(
        as_text=True
    )
    assert _ids_on(client.get("/evidence?q=fight").get_data(as_text=True)) == []
    for who in ("wearer", "oversight", "admin"):
        assert signed_in(web, world, who).get("/incidents").status_code == 403, who


def test_bulk_actions_change_every_selected_item_or_none(
    web: Flask, world: World, docks: Docks, items: dict[str, str]
) -> None:
    ids = _bulk(world, 3)
    client = signed_in(web, world, "records")
    tagged = _post(
        client,
        "/evidence",
        "/evidence/bulk",
        {"ids": ids[:2], "action": "tag", "tag": "reviewed"},  # type: ignore[dict-item]
    )
    assert tagged.status_code == 302
    assert set(_ids_on(client.get("/evidence?tag=reviewed").get_data(as_text=True))) == set(ids[:2])
    # The north supervisor selecting a South item changes nothing and learns nothing.
    supervisor = signed_in(web, world, "supervisor")
    mixed = _post(
        supervisor,
        "/evidence",
        "/evidence/bulk",
        {"ids": [ids[2], items["south"]], "action": "tag", "tag": "sneaky"},  # type: ignore[dict-item]
    )
    assert mixed.status_code == 404
    assert _ids_on(client.get("/evidence?tag=sneaky").get_data(as_text=True)) == []
    refused = _post(
        client, "/evidence", "/evidence/bulk", {"ids": ids[:1], "action": "tag", "tag": ""}
    )  # type: ignore[dict-item]
    assert refused.status_code == 302
    assert "Nothing was changed" in client.get("/evidence").get_data(as_text=True)
    empty = _post(client, "/evidence", "/evidence/bulk", {"action": "tag", "tag": "x"})
    assert empty.status_code == 302
    assert client.post("/evidence/bulk", data={"ids": ids[0], "action": "tag"}).status_code == 400


def test_a_file_that_is_not_a_recording_offers_no_player(
    web: Flask, world: World, docks: Docks
) -> None:
    ids = _bulk(world, 1)
    database = Database(world.settings.database_url)
    try:
        with database.transaction() as session:
            item = session.get(EvidenceItem, ids[0])
            assert item is not None
            item.media_type, item.object_id = "text/plain", "00" * 16
    finally:
        database.dispose()
    client = signed_in(web, world, "supervisor")
    page = client.get(f"/evidence/{ids[0]}?purpose=audit").get_data(as_text=True)
    assert "<video" not in page and "not a recording (text/plain)" in page


def test_long_wearer_and_camera_lists_are_asked_for_by_badge_and_serial(
    web: Flask, world: World, items: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.web import evidence_pages

    monkeypatch.setattr(evidence_pages, "MAX_CHOICES", 0)
    records = signed_in(web, world, "records")
    page = records.get("/evidence").get_data(as_text=True)
    assert 'name="wearer"' in page and 'name="camera"' in page
    assert 'name="wearer_id"' not in page
    by_badge = records.get("/evidence?wearer=WEARER").get_data(as_text=True)
    assert set(_ids_on(by_badge)) == {items["north"]}
    assert 'value="WEARER"' in by_badge  # shown back in the form
    by_serial = records.get(f"/evidence?camera={SOUTH_CAMERA}").get_data(as_text=True)
    assert set(_ids_on(by_serial)) == {items["south"]}
    unknown = records.get("/evidence?wearer=NOBODY")
    assert unknown.status_code == 400 and "no wearer with badge NOBODY" in unknown.get_data(
        as_text=True
    )
    # Another school's badge is not found for a supervisor, as if it did not exist.
    outsider = signed_in(web, world, "south-supervisor")
    hidden = outsider.get("/evidence?wearer=WEARER")
    assert hidden.status_code == 400 and _ids_on(hidden.get_data(as_text=True)) == []
    assert "no wearer with badge WEARER" in hidden.get_data(as_text=True)


def test_the_databases_estimate_of_a_words_matches_comes_from_its_statistics(
    web: Flask, world: World, docks: Docks
) -> None:
    from app.evidence_search import _estimated_matches, _text_clause

    _bulk(world, 30)
    database = Database(world.settings.database_url)
    try:
        with database.sessions() as session:
            estimate = _estimated_matches(session, _text_clause("f0001"))
            if database.engine.dialect.name == "postgresql":
                assert estimate is not None and estimate >= 1  # the planner's rows
            else:
                assert estimate is None  # SQLite: always looked up when few
    finally:
        database.dispose()
