"""A real app (migrated SQLite or PostgreSQL database) with users of every role."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pyotp
import pytest
from flask import Flask
from flask.testing import FlaskClient

from app import create_app
from app.accounts import admin as accounts
from app.db import Database, upgrade
from app.settings import Settings
from evidence.roles import Grant, Role
from tests.e2e.vault_support import Docks, equip
from tests.fast_hashing import fast_password_hashing  # noqa: F401

PASSWORD = "correct horse battery staple"
CSRF = re.compile(
    r'name="csrf_token" type="hidden" value="([^"]+)"|'
    r'name="csrf_token" value="([^"]+)"'
)


@dataclass(frozen=True)
class Person:
    username: str
    secret: str
    user_id: int


@dataclass
class World:
    settings: Settings
    people: dict[str, Person]
    schools: dict[str, int]


def seed(settings: Settings) -> World:
    now = datetime.now(UTC)
    database = Database(settings.database_url)
    people: dict[str, Person] = {}
    with database.transaction() as session:
        district = accounts.create_district(session, "d1", "District", actor="cli", now=now)
        north = accounts.create_school(session, district, "NHS", "North", actor="cli", now=now)
        south = accounts.create_school(session, district, "SMS", "South", actor="cli", now=now)
        specs = {
            "wearer": [Grant(Role.WEARER, north.id)],
            "supervisor": [Grant(Role.SUPERVISOR, north.id)],
            "records": [Grant(Role.RECORDS)],
            "oversight": [Grant(Role.OVERSIGHT)],
            "admin": [Grant(Role.ADMIN)],
            "north-admin": [Grant(Role.ADMIN, north.id)],
            "south-teacher": [Grant(Role.WEARER, south.id)],
            "south-supervisor": [Grant(Role.SUPERVISOR, south.id)],
        }
        for name, grants in specs.items():
            secret = pyotp.random_base32()
            user = accounts.create_user(
                session,
                district,
                username=name,
                display_name=name,
                password=PASSWORD,
                grants=grants,
                actor="cli",
                now=now,
                totp_secret=secret,
            )
            people[name] = Person(name, secret, user.id)
        newcomer = accounts.create_user(
            session,
            district,
            username="newcomer",
            display_name="New Comer",
            password=PASSWORD,
            grants=[Grant(Role.SUPERVISOR, south.id)],
            actor="cli",
            now=now,
        )
        people["newcomer"] = Person("newcomer", "", newcomer.id)
        schools = {"NHS": north.id, "SMS": south.id}
    database.dispose()
    return World(settings, people, schools)


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, db_url: str) -> Path:
    """The environment of a `bwc` command: a data dir of its own and the test database."""
    monkeypatch.setenv("BWC_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("BWC_DATABASE_URL", db_url)
    return tmp_path


@pytest.fixture
def world(db_url: str, tmp_path: Path) -> World:
    settings = Settings(
        data_dir=tmp_path,
        database_url=db_url,
        secret_key="test-secret-key-" + "x" * 32,
        checkpoint_seconds=0,
        lockout_threshold=3,
        address_threshold=50,
    )
    upgrade(db_url)
    return seed(settings)


@pytest.fixture
def app(world: World) -> Iterator[Flask]:
    flask_app = create_app(world.settings)
    yield flask_app
    flask_app.extensions["bwc.db"].dispose()


@pytest.fixture
def docks(world: World) -> Docks:
    """A keyring, ingest key, a camera and an enrolled dock at each school."""
    return equip(world.settings)


@pytest.fixture
def web(world: World, docks: Docks) -> Iterator[Flask]:
    """The app with docks equipped and no background threads."""
    flask_app = create_app(world.settings, start_worker=False)
    yield flask_app
    flask_app.extensions["bwc.db"].dispose()


def signed_in(flask_app: Flask, world: World, who: str) -> FlaskClient:
    """A client of flask_app signed in (password and TOTP) as world's person `who`."""
    client = flask_app.test_client()
    sign_in(client, world.people[who])
    return client


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def csrf_token(client: FlaskClient, path: str) -> str:
    page = client.get(path)
    assert page.status_code == 200, (path, page.status_code)
    match = CSRF.search(page.get_data(as_text=True))
    assert match, f"no CSRF token on {path}"
    return match.group(1) or match.group(2)


def submit_password(client: FlaskClient, username: str, password: str = PASSWORD):  # type: ignore[no-untyped-def]
    token = csrf_token(client, "/login")
    return client.post(
        "/login", data={"csrf_token": token, "username": username, "password": password}
    )


def sign_in(client: FlaskClient, person: Person, *, step_offset: int = 0) -> None:
    """Password then TOTP. A code is accepted once, so a second sign-in of the same
    person within 30 s passes step_offset=1 (the next code, within the allowed drift)."""
    response = submit_password(client, person.username)
    assert response.status_code == 302 and response.headers["Location"] == "/login/code"
    token = csrf_token(client, "/login/code")
    done = client.post(
        "/login/code",
        data={
            "csrf_token": token,
            "code": pyotp.TOTP(person.secret).at(time.time() + 30 * step_offset),
        },
    )
    assert done.status_code == 302, done.get_data(as_text=True)[:500]
