"""The data model on both databases: relations, constraints and time handling."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from alembic import command
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.db import Database, alembic_config
from evidence.adapters.sql.items import (
    Bookmark,
    Category,
    Derivative,
    EvidenceItem,
    Incident,
    Tag,
    evidence_tags,
    incident_evidence,
    incident_wearers,
    refresh_search_text,
    tag_link,
)
from evidence.adapters.sql.org import Camera, District, Dock, RoleGrant, School, User, Wearer

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


def _user(session: Session, district: District, name: str) -> User:
    user = User(
        district_id=district.id,
        username=name,
        display_name=name,
        pseudonym=f"u-{uuid.uuid4().hex[:12]}",
        password_hash="x",
        created_at=NOW,
    )
    session.add(user)
    session.flush()
    return user


def _camera(
    session: Session, district: District, school: School, serial: str, wearer: Wearer | None = None
) -> Camera:
    camera = Camera(
        district_id=district.id,
        school_id=school.id,
        serial=serial,
        profile="bwc-msc/1",
        assigned_wearer_id=wearer.id if wearer else None,
        registered_at=NOW,
    )
    session.add(camera)
    session.flush()
    return camera


def _item(
    session: Session,
    district: District,
    school: School,
    camera: Camera,
    wearer: Wearer | None,
    **overrides: object,
) -> EvidenceItem:
    fields: dict[str, object] = dict(
        id=str(uuid.uuid4()),
        district_id=district.id,
        school_id=school.id,
        camera_id=camera.id,
        wearer_id=wearer.id if wearer else None,
        status="verified",
        file_identity="BWC00001.MP4@2026-11-24T08:00:00Z",
        file_name="BWC00001.MP4",
        file_name_b64="QldDMDAwMDEuTVA0",
        media_type="video/mp4",
        size=1234,
        sha256="ab" * 32,
        object_key=f"originals/{uuid.uuid4()}",
        recorded_start=NOW - timedelta(hours=1),
        ingested_at=NOW,
        flags=["clock_skew"],
    )
    fields.update(overrides)
    item = EvidenceItem(**fields)
    session.add(item)
    session.flush()
    return item


def test_the_whole_organisation_and_evidence_graph_round_trips(
    session: Session, district: District, schools: tuple[School, School]
) -> None:
    north, _ = schools
    officer = _user(session, district, "officer")
    wearer = Wearer(
        district_id=district.id,
        school_id=north.id,
        badge="SRO-0001",
        display_name="Officer",
        user_id=officer.id,
        created_at=NOW,
    )
    session.add(wearer)
    session.flush()
    camera = _camera(session, district, north, "BWC-0002", wearer)
    dock = Dock(
        district_id=district.id,
        school_id=north.id,
        name="North office",
        pseudonym="d-1",
        created_at=NOW,
    )
    category = Category(
        district_id=district.id, name="Use of force", retention_days=2555, created_at=NOW
    )
    tag = Tag(district_id=district.id, name="corridor")
    session.add_all([dock, category, tag])
    session.flush()
    item = _item(session, district, north, camera, wearer, dock_id=dock.id, category_id=category.id)
    session.add(
        Derivative(
            id=str(uuid.uuid4()),
            evidence_id=item.id,
            kind="proxy",
            media_type="video/mp4",
            size=99,
            sha256="cd" * 32,
            object_key=f"derivatives/{uuid.uuid4()}",
            created_at=NOW,
            details={"codec": "h264"},
        )
    )
    session.execute(
        insert(evidence_tags).values(tag_link(item, tag.id, added_by=officer.id, added_at=NOW))
    )
    incident = Incident(
        id=str(uuid.uuid4()),
        district_id=district.id,
        school_id=north.id,
        number="2026-0001",
        title="Hallway <b>incident</b>",
        starts_at=NOW - timedelta(hours=2),
        ends_at=NOW,
        created_at=NOW,
    )
    session.add(incident)
    session.flush()
    session.execute(
        insert(incident_evidence).values(
            incident_id=incident.id, evidence_id=item.id, linked_at=NOW
        )
    )
    session.execute(insert(incident_wearers).values(incident_id=incident.id, wearer_id=wearer.id))
    session.add(
        Bookmark(
            evidence_id=item.id, user_id=officer.id, at_ms=12_500, note="door opens", created_at=NOW
        )
    )
    session.commit()
    session.expunge_all()

    stored = session.get(EvidenceItem, item.id)
    assert stored is not None
    assert stored.recorded_start == NOW - timedelta(hours=1)
    assert stored.recorded_start.tzinfo is not None and stored.ingested_at.utcoffset() == timedelta(
        0
    )
    assert stored.flags == ["clock_skew"]
    assert session.scalar(select(Derivative.details).where(Derivative.evidence_id == item.id)) == {
        "codec": "h264"
    }
    assert session.scalar(select(Incident.title)) == "Hallway <b>incident</b>"
    assert session.scalar(select(Bookmark.at_ms)) == 12_500


def test_camera_serial_is_unique_within_a_district(
    session: Session, district: District, schools: tuple[School, School]
) -> None:
    north, south = schools
    _camera(session, district, north, "BWC-0007")
    with pytest.raises(IntegrityError):
        _camera(session, district, south, "BWC-0007")


def test_same_camera_file_and_hash_map_to_one_item(
    session: Session, district: District, schools: tuple[School, School]
) -> None:
    north, _ = schools
    camera = _camera(session, district, north, "BWC-0003")
    _item(session, district, north, camera, None)
    with pytest.raises(IntegrityError):
        _item(session, district, north, camera, None)


@pytest.mark.parametrize(("field", "value"), [("status", "deleted"), ("size", -1)])
def test_evidence_item_check_constraints(
    session: Session, district: District, schools: tuple[School, School], field: str, value: object
) -> None:
    north, _ = schools
    camera = _camera(session, district, north, "BWC-0004")
    with pytest.raises(IntegrityError):
        _item(session, district, north, camera, None, **{field: value})


def test_wearer_and_supervisor_grants_must_name_a_school(
    session: Session, district: District
) -> None:
    user = _user(session, district, "nobody")
    session.add(RoleGrant(user_id=user.id, role="supervisor", school_id=None, granted_at=NOW))
    with pytest.raises(IntegrityError):
        session.flush()


def test_unknown_roles_are_refused_by_the_database(session: Session, district: District) -> None:
    user = _user(session, district, "nobody2")
    session.add(RoleGrant(user_id=user.id, role="superuser", school_id=None, granted_at=NOW))
    with pytest.raises(IntegrityError):
        session.flush()


def test_foreign_keys_are_enforced(session: Session, district: District) -> None:
    session.add(School(district_id=district.id + 999, code="X", name="Nowhere", created_at=NOW))
    with pytest.raises(IntegrityError):
        session.flush()


def test_naive_datetimes_are_refused(session: Session) -> None:
    session.add(District(code="naive", name="Naive", created_at=datetime(2026, 1, 1)))
    with pytest.raises(Exception, match="naive datetime"):
        session.flush()


def _search_graph(session: Session, district: District, school: School) -> list[EvidenceItem]:
    """Two items: one with notes, two tags and two linked incidents; one bare."""
    camera = _camera(session, district, school, "BWC-0007")
    tagged = _item(session, district, school, camera, None, notes="Door held OPEN")
    bare = _item(
        session,
        district,
        school,
        camera,
        None,
        file_name="Élève_01.MP4",
        file_identity="other",
        sha256="cd" * 32,
    )
    for name in ("Corridor", "bus-line"):
        tag = Tag(district_id=district.id, name=name)
        session.add(tag)
        session.flush()
        session.execute(insert(evidence_tags).values(tag_link(tagged, tag.id, added_at=NOW)))
    for number, title in (("2026-0007", "Fight in the GYM"), ("2026-0008", "Lunch queue")):
        incident = Incident(
            id=str(uuid.uuid4()),
            district_id=district.id,
            school_id=school.id,
            number=number,
            title=title,
            starts_at=NOW,
            created_at=NOW,
        )
        session.add(incident)
        session.flush()
        session.execute(
            insert(incident_evidence).values(
                incident_id=incident.id, evidence_id=tagged.id, linked_at=NOW
            )
        )
    return [tagged, bare]


TAGGED_TEXT = "\n".join(
    ["bwc00001.mp4", "door held open", "bus-line", "corridor", "fight in the gym", "lunch queue"]
)


def test_search_text_is_refreshed_from_name_notes_tags_and_titles(
    session: Session, district: District, schools: tuple[School, School]
) -> None:
    tagged, bare = _search_graph(session, district, schools[0])
    assert tagged.search_text == ""  # nothing keeps it but refresh_search_text
    refresh_search_text(session, [tagged.id, bare.id])
    session.commit()
    session.expunge_all()
    texts = dict(session.execute(select(EvidenceItem.id, EvidenceItem.search_text)).all())
    assert texts == {tagged.id: TAGGED_TEXT, bare.id: "élève_01.mp4"}


def test_the_migration_fills_in_the_search_text_of_existing_items(
    database: Database, session: Session, district: District, schools: tuple[School, School]
) -> None:
    tagged, bare = _search_graph(session, district, schools[0])
    ids = (tagged.id, bare.id)
    session.commit()
    session.close()
    config = alembic_config(database.url)
    command.downgrade(config, "0012")  # items, tags and links stay; the column goes
    command.upgrade(config, "head")
    with database.sessions() as fresh:
        texts = dict(fresh.execute(select(EvidenceItem.id, EvidenceItem.search_text)).all())
    assert texts == {ids[0]: TAGGED_TEXT, ids[1]: "élève_01.mp4"}
