"""Changing and closing incidents: title, window and wearers change (never the number
or school), each change logged; a closed incident takes no more footage and is not
offered; reopening restores that; other schools' people get 404."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from app import create_app
from audit.adapters.sql import AuditEventRow
from evidence.adapters.sql.items import Incident, incident_evidence
from evidence.adapters.sql.org import Wearer
from tests.e2e.conftest import World, csrf_token, signed_in
from tests.e2e.test_evidence_pages import _ids_on, _new_incident, _post, _upload
from tests.e2e.vault_support import Docks


def _incident(web: Flask, incident_id: str) -> Incident:
    with web.extensions["bwc.db"].sessions() as session:
        found = session.get(Incident, incident_id)
        assert found is not None
        return found


def _events(web: Flask, kind: str) -> list[dict[str, Any]]:
    with web.extensions["bwc.db"].sessions() as session:
        return list(
            session.scalars(select(AuditEventRow.details).where(AuditEventRow.type == kind))
        )


def _made(client: FlaskClient, world: World) -> str:
    made = _new_incident(client, world.schools["NHS"], "NHS-7", "Corridor argument")
    assert made.status_code == 302
    return str(made.headers["Location"].rsplit("/", 1)[1])


def test_a_supervisor_changes_an_incident_and_each_change_is_logged(
    web: Flask, world: World
) -> None:
    supervisor = signed_in(web, world, "supervisor")
    incident_id = _made(supervisor, world)
    edit = f"/incidents/{incident_id}/edit"
    form = supervisor.get(edit).get_data(as_text=True)
    assert 'value="Corridor argument"' in form and 'value="2026-11-30T08:55"' in form
    with web.extensions["bwc.db"].sessions() as session:
        north_wearer = session.scalars(
            select(Wearer).where(Wearer.school_id == world.schools["NHS"])
        ).first()
        south_wearer = session.scalars(
            select(Wearer).where(Wearer.school_id == world.schools["SMS"])
        ).first()
    assert north_wearer is not None and south_wearer is not None
    saved = _post(
        supervisor,
        edit,
        edit,
        {
            "title": "Corridor fight",
            "starts_at": "2026-11-30T08:50",
            "ends_at": "2026-11-30T09:30",
            "wearers": str(north_wearer.id),
            "number": "HIJACK-1",  # not a field: ignored
        },
    )
    assert saved.status_code == 302
    incident = _incident(web, incident_id)
    assert (incident.title, incident.number) == ("Corridor fight", "NHS-7")
    assert incident.starts_at.strftime("%H:%M") == "08:50"
    page = supervisor.get(f"/incidents/{incident_id}").get_data(as_text=True)
    assert north_wearer.display_name in page
    [change] = _events(web, "incident.changed")
    assert change["changed"] == ["title", "starts_at", "ends_at", "wearers"]

    unchanged = _post(
        supervisor,
        edit,
        edit,
        {
            "title": "Corridor fight",
            "starts_at": "2026-11-30T08:50",
            "ends_at": "2026-11-30T09:30",
            "wearers": str(north_wearer.id),
        },
    )
    assert unchanged.status_code == 302 and len(_events(web, "incident.changed")) == 1
    backwards = _post(
        supervisor,
        edit,
        edit,
        {"title": "t", "starts_at": "2026-11-30T08:50", "ends_at": "2026-11-30T08:00"},
    )
    assert backwards.status_code == 400 and "ends before it starts" in backwards.get_data(
        as_text=True
    )
    other_school = _post(
        supervisor,
        edit,
        edit,
        {"title": "t", "starts_at": "2026-11-30T08:50", "wearers": str(south_wearer.id)},
    )
    assert other_school.status_code == 400  # not one of the listed choices
    assert _incident(web, incident_id).title == "Corridor fight"


def test_a_changed_title_is_what_the_linked_footage_is_found_by(
    web: Flask, world: World, docks: Docks
) -> None:
    import os

    supervisor = signed_in(web, world, "supervisor")
    incident_id = _made(supervisor, world)  # "Corridor argument"
    linked = _upload(web, docks, south=False, plaintext=os.urandom(3000))
    _upload(web, docks, south=False, plaintext=os.urandom(3100))  # not linked
    page = f"/evidence/{linked}"
    assert (
        _post(supervisor, page, f"{page}/incidents", {"incident_id": incident_id}).status_code
        == 302
    )

    def found(word: str) -> list[str]:
        return _ids_on(supervisor.get(f"/evidence?q={word}").get_data(as_text=True))

    assert (found("argument"), found("queue")) == ([linked], [])
    edit = f"/incidents/{incident_id}/edit"
    saved = _post(supervisor, edit, edit, {"title": "Lunch queue", "starts_at": "2026-11-30T08:55"})
    assert saved.status_code == 302
    assert (found("argument"), found("queue")) == ([], [linked])


def test_a_closed_incident_takes_no_more_footage_until_reopened(
    web: Flask, world: World, docks: Docks
) -> None:
    import os

    supervisor = signed_in(web, world, "supervisor")
    incident_id = _made(supervisor, world)
    first = _upload(web, docks, south=False, plaintext=os.urandom(3000))
    second = _upload(web, docks, south=False, plaintext=os.urandom(3100))
    page = f"/evidence/{first}"
    assert (
        _post(supervisor, page, f"{page}/incidents", {"incident_id": incident_id}).status_code
        == 302
    )
    closed = _post(
        supervisor,
        f"/incidents/{incident_id}",
        f"/incidents/{incident_id}/close",
        {"reason": "resolved"},
    )
    assert closed.status_code == 302
    assert _incident(web, incident_id).closed_at is not None
    assert _events(web, "incident.closed")[0]["reason"] == "resolved"
    detail = supervisor.get(f"/incidents/{incident_id}").get_data(as_text=True)
    assert "closed" in detail and f"/evidence/{first}" in detail  # what was linked stays
    other_page = supervisor.get(f"/evidence/{second}").get_data(as_text=True)
    assert f'value="{incident_id}"' not in other_page  # not offered
    forced = _post(
        supervisor,
        f"/evidence/{second}",
        f"/evidence/{second}/incidents",
        {"incident_id": incident_id},
    )
    assert forced.status_code == 302
    assert "is closed" in supervisor.get(f"/evidence/{second}").get_data(as_text=True)
    with web.extensions["bwc.db"].sessions() as session:
        linked = set(
            session.scalars(
                select(incident_evidence.c.evidence_id).where(
                    incident_evidence.c.incident_id == incident_id
                )
            )
        )
    assert linked == {first}
    edit = supervisor.get(f"/incidents/{incident_id}/edit")
    assert edit.status_code == 200
    refused = _post(
        supervisor,
        f"/incidents/{incident_id}/edit",
        f"/incidents/{incident_id}/edit",
        {"title": "Changed while closed", "starts_at": "2026-11-30T08:55"},
    )
    assert refused.status_code == 400 and "reopen it" in refused.get_data(as_text=True)

    reopened = _post(
        supervisor, f"/incidents/{incident_id}", f"/incidents/{incident_id}/reopen", {}
    )
    assert reopened.status_code == 302 and _incident(web, incident_id).closed_at is None
    assert len(_events(web, "incident.reopened")) == 1
    assert f'value="{incident_id}"' in supervisor.get(f"/evidence/{second}").get_data(as_text=True)


def test_other_schools_and_roles_cannot_change_or_close(web: Flask, world: World) -> None:
    supervisor = signed_in(web, world, "supervisor")
    incident_id = _made(supervisor, world)
    outsider = signed_in(web, world, "south-supervisor")
    assert outsider.get(f"/incidents/{incident_id}/edit").status_code == 404
    token = csrf_token(outsider, "/evidence")
    for action in ("close", "reopen", "edit"):
        answer = outsider.post(
            f"/incidents/{incident_id}/{action}",
            data={"csrf_token": token, "title": "x", "starts_at": "2026-11-30T08:55"},
        )
        assert answer.status_code == 404, action
    assert _incident(web, incident_id).closed_at is None
    assert _incident(web, incident_id).title == "Corridor argument"
    for who in ("wearer", "oversight", "admin"):
        assert signed_in(web, world, who).get(f"/incidents/{incident_id}/edit").status_code in (
            403,
            404,
        )


def test_incident_times_are_typed_and_shown_on_the_districts_clock(
    world: World, docks: Docks
) -> None:
    # A district in Chicago: 08:55 typed in November is 14:55 UTC (CST, UTC-6), the
    # page says CST, the edit form gives back what was typed, the ledger stays UTC.
    chicago = create_app(
        world.settings.with_changes(time_zone="America/Chicago"), start_worker=False
    )
    try:
        supervisor = signed_in(chicago, world, "supervisor")
        incident_id = _made(supervisor, world)
        stored = _incident(chicago, incident_id)
        assert stored.starts_at == datetime(2026, 11, 30, 14, 55, tzinfo=UTC)
        assert stored.ends_at == datetime(2026, 11, 30, 15, 20, tzinfo=UTC)
        page = supervisor.get(f"/incidents/{incident_id}").get_data(as_text=True)
        assert "2026-11-30 08:55 CST" in page and "2026-11-30 09:20 CST" in page
        form = supervisor.get(f"/incidents/{incident_id}/edit").get_data(as_text=True)
        assert 'value="2026-11-30T08:55"' in form and "America/Chicago time" in form
        listing = supervisor.get("/incidents").get_data(as_text=True)
        assert "2026-11-30 08:55 CST" in listing
    finally:
        chicago.extensions["bwc.db"].dispose()
