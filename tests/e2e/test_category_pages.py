"""Categories administration: district administrators add, rename, retire and restore
categories, each a ledger event; retired ones stay on items but are not offered; names
are escaped; nobody else reaches the page."""

from __future__ import annotations

import os
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from audit.adapters.sql import AuditEventRow
from evidence.adapters.sql.items import Category, EvidenceItem
from tests.e2e.conftest import World, csrf_token, signed_in
from tests.e2e.test_evidence_pages import _upload
from tests.e2e.vault_support import Docks


def _categories(web: Flask) -> dict[str, Category]:
    with web.extensions["bwc.db"].sessions() as session:
        return {c.name: c for c in session.scalars(select(Category))}


def _events(web: Flask, kind: str) -> list[dict[str, Any]]:
    with web.extensions["bwc.db"].sessions() as session:
        return list(
            session.scalars(select(AuditEventRow.details).where(AuditEventRow.type == kind))
        )


def _add(client: FlaskClient, name: str, description: str = "") -> Any:
    token = csrf_token(client, "/admin/categories")
    return client.post(
        "/admin/categories",
        data={"csrf_token": token, "name": name, "description": description},
    )


def test_an_administrator_adds_renames_retires_and_restores_a_category(
    web: Flask, world: World
) -> None:
    admin = signed_in(web, world, "admin")
    assert 'href="/admin/categories"' in admin.get("/home").get_data(as_text=True)
    assert "No categories yet" in admin.get("/admin/categories").get_data(as_text=True)
    added = _add(admin, "  Use   of force ", "Any restraint.")
    assert added.status_code == 302
    made = _categories(web)["Use of force"]  # whitespace collapsed
    assert made.description == "Any restraint."
    assert _events(web, "admin.category_created")[0]["name"] == "Use of force"

    duplicate = _add(admin, "use OF force")
    assert duplicate.status_code == 400
    assert "already exists" in duplicate.get_data(as_text=True)
    assert len(_categories(web)) == 1

    token = csrf_token(admin, "/admin/categories")
    renamed = admin.post(
        f"/admin/categories/{made.id}",
        data={"csrf_token": token, "name": "Physical intervention", "description": ""},
    )
    assert renamed.status_code == 302
    changed = _categories(web)["Physical intervention"]
    assert changed.id == made.id and changed.description is None
    [event] = _events(web, "admin.category_changed")
    assert (event["previous"], event["name"]) == ("Use of force", "Physical intervention")

    admin.post(f"/admin/categories/{made.id}/retire", data={"csrf_token": token})
    assert _categories(web)["Physical intervention"].retired_at is not None
    assert "retired" in admin.get("/admin/categories").get_data(as_text=True)
    admin.post(f"/admin/categories/{made.id}/restore", data={"csrf_token": token})
    assert _categories(web)["Physical intervention"].retired_at is None
    assert len(_events(web, "admin.category_retired")) == 1
    assert len(_events(web, "admin.category_restored")) == 1


def test_bad_names_are_refused_and_names_are_escaped(web: Flask, world: World) -> None:
    admin = signed_in(web, world, "admin")
    assert _add(admin, "").status_code == 400  # the form says a name is required
    assert _add(admin, "x" * 101).status_code == 400
    bell = _add(admin, "bell\x07")
    assert bell.status_code == 400 and "cannot be shown" in bell.get_data(as_text=True)
    _add(admin, "<script>alert(1)</script>")
    page = admin.get("/admin/categories").get_data(as_text=True)
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;" in page


def test_a_retired_category_stays_on_items_but_is_not_offered(
    web: Flask, world: World, docks: Docks
) -> None:
    admin = signed_in(web, world, "admin")
    _add(admin, "Safeguarding concern")
    _add(admin, "No incident")
    cats = _categories(web)
    safeguarding, routine = cats["Safeguarding concern"], cats["No incident"]
    evidence_id = _upload(web, docks, south=False, plaintext=os.urandom(3000))
    supervisor = signed_in(web, world, "supervisor")
    item_url = f"/evidence/{evidence_id}"
    token = csrf_token(supervisor, item_url)
    supervisor.post(
        f"{item_url}/category", data={"csrf_token": token, "category_id": str(routine.id)}
    )
    admin_token = csrf_token(admin, "/admin/categories")
    admin.post(f"/admin/categories/{routine.id}/retire", data={"csrf_token": admin_token})

    page = supervisor.get(item_url).get_data(as_text=True)
    assert f'<option value="{routine.id}" selected>No incident</option>' in page
    listing = supervisor.get("/evidence").get_data(as_text=True)
    assert "No incident (retired)" in listing  # still a filter
    bulk = listing.split('name="action"', 1)[1]
    assert f'<option value="{routine.id}">' not in bulk  # not offered to set

    supervisor.post(
        f"{item_url}/category", data={"csrf_token": token, "category_id": str(safeguarding.id)}
    )
    again = supervisor.post(
        f"{item_url}/category", data={"csrf_token": token, "category_id": str(routine.id)}
    )
    assert again.status_code == 302
    assert "is retired" in supervisor.get(item_url).get_data(as_text=True)
    with web.extensions["bwc.db"].sessions() as session:
        item = session.get(EvidenceItem, evidence_id)
        assert item is not None and item.category_id == safeguarding.id


@pytest.mark.parametrize("who", ["supervisor", "records", "oversight", "wearer", "north-admin"])
def test_only_district_administrators_reach_categories(web: Flask, world: World, who: str) -> None:
    admin = signed_in(web, world, "admin")
    _add(admin, "Incident")
    category = _categories(web)["Incident"]
    other = signed_in(web, world, who)
    assert 'href="/admin/categories"' not in other.get("/home").get_data(as_text=True)
    assert other.get("/admin/categories").status_code in (403, 404)
    token = csrf_token(other, "/account")
    for path in (
        f"/admin/categories/{category.id}",
        f"/admin/categories/{category.id}/retire",
        "/admin/categories",
    ):
        answer = other.post(path, data={"csrf_token": token, "name": "Hijacked"})
        assert answer.status_code in (403, 404), (who, path)
    assert set(_categories(web)) == {"Incident"}
    assert _categories(web)["Incident"].retired_at is None


def test_another_districts_category_answers_404(web: Flask, world: World) -> None:
    from datetime import UTC, datetime

    from app.accounts import admin as accounts

    with web.extensions["bwc.db"].transaction() as session:
        other = accounts.create_district(session, "d2", "Other", actor="cli", now=datetime.now(UTC))
        theirs = Category(district_id=other.id, name="Theirs", created_at=datetime.now(UTC))
        session.add(theirs)
        session.flush()
        theirs_id = theirs.id
    admin = signed_in(web, world, "admin")
    token = csrf_token(admin, "/admin/categories")
    assert "Theirs" not in admin.get("/admin/categories").get_data(as_text=True)
    for path in (f"/admin/categories/{theirs_id}", f"/admin/categories/{theirs_id}/retire"):
        answer = admin.post(path, data={"csrf_token": token, "name": "Mine now"})
        assert answer.status_code == 404
    assert (
        admin.post("/admin/categories/999999/retire", data={"csrf_token": token}).status_code == 404
    )
    assert _categories(web)["Theirs"].retired_at is None
