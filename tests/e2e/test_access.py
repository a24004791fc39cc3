"""Authorisation on real routes: role homes, admin scope, 404 for other schools, errors."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient

from .conftest import World, csrf_token, sign_in


@pytest.mark.parametrize(
    ("person", "section", "absent"),
    [
        ("wearer", "home-wearer", "Users</a>"),
        ("supervisor", "home-supervisor", "Users</a>"),
        ("records", "home-records", "Users</a>"),
        ("oversight", "home-oversight", "Users</a>"),
        ("admin", "home-admin", "home-supervisor"),
    ],
)
def test_each_role_lands_on_its_own_home(
    client: FlaskClient, world: World, person: str, section: str, absent: str
) -> None:
    sign_in(client, world.people[person])
    page = client.get("/home").get_data(as_text=True)
    assert f'id="{section}"' in page
    assert absent not in page


@pytest.mark.parametrize("person", ["wearer", "supervisor", "records", "oversight"])
def test_non_admins_are_refused_admin_pages(client: FlaskClient, world: World, person: str) -> None:
    sign_in(client, world.people[person])
    assert client.get("/admin/users").status_code == 403
    assert client.get("/admin/schools").status_code == 403
    uid = world.people["admin"].user_id
    # A specific account is an object: those who may not see accounts get 404.
    assert client.get(f"/admin/users/{uid}").status_code == 404


def test_school_admin_gets_404_for_another_schools_account(
    client: FlaskClient, world: World
) -> None:
    sign_in(client, world.people["north-admin"])
    own = world.people["supervisor"].user_id
    other = world.people["south-supervisor"].user_id
    district_level = world.people["records"].user_id
    assert client.get(f"/admin/users/{own}").status_code == 200
    assert client.get(f"/admin/users/{other}").status_code == 404
    assert client.get(f"/admin/users/{district_level}").status_code == 404
    token = csrf_token(client, f"/admin/users/{own}")
    assert (
        client.post(f"/admin/users/{other}/disable", data={"csrf_token": token}).status_code == 404
    )
    listing = client.get("/admin/users").get_data(as_text=True)
    assert "south-supervisor" not in listing and "supervisor" in listing


def test_school_admin_cannot_grant_district_wide_roles(client: FlaskClient, world: World) -> None:
    sign_in(client, world.people["north-admin"])
    own = world.people["supervisor"].user_id
    token = csrf_token(client, f"/admin/users/{own}")
    response = client.post(
        f"/admin/users/{own}/grants", data={"csrf_token": token, "role": "admin", "school": ""}
    )
    assert response.status_code in (302, 404)
    page = client.get(f"/admin/users/{own}").get_data(as_text=True)
    assert "admin · whole district" not in page


def test_admin_creates_a_user_who_must_enrol_mfa(client: FlaskClient, world: World) -> None:
    sign_in(client, world.people["admin"])
    token = csrf_token(client, "/admin/users/new")
    response = client.post(
        "/admin/users/new",
        data={
            "csrf_token": token,
            "username": "t.jones",
            "display_name": "T <b>Jones</b>",
            "password": "a brand new password",
            "role": "wearer",
            "school": str(world.schools["SMS"]),
            "badge": "TCH-0042",
        },
    )
    assert response.status_code == 302
    detail = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "T &lt;b&gt;Jones&lt;/b&gt;" in detail and "<b>Jones</b>" not in detail
    assert "Not set up" in detail


def test_admin_form_errors_are_explained_not_crashed(client: FlaskClient, world: World) -> None:
    sign_in(client, world.people["admin"])
    token = csrf_token(client, "/admin/users/new")
    response = client.post(
        "/admin/users/new",
        data={
            "csrf_token": token,
            "username": "wearer",
            "display_name": "Dup",
            "password": "a brand new password",
            "role": "wearer",
            "school": str(world.schools["NHS"]),
        },
    )
    assert response.status_code == 200
    assert "already exists" in response.get_data(as_text=True)


_SOME_ID = "00000000-0000-4000-8000-000000000000"


def test_every_post_route_needs_a_csrf_token(client: FlaskClient, world: World, app: Flask) -> None:
    sign_in(client, world.people["admin"])
    uid = world.people["supervisor"].user_id
    paths = [
        f"/admin/users/{uid}/disable",
        f"/admin/users/{uid}/unlock",
        f"/admin/users/{uid}/reset-mfa",
        f"/admin/users/{uid}/grants",
        f"/admin/users/{uid}/grants/revoke",
        "/admin/users/new",
        "/admin/schools",
        "/admin/lockouts/unlock",
        "/logout",
        "/account",
        "/login",
        "/login/code",
        "/login/enrol",
        "/ledger/audit",
        f"/evidence/{_SOME_ID}/tags",
        f"/evidence/{_SOME_ID}/tags/1/remove",
        f"/evidence/{_SOME_ID}/category",
        f"/evidence/{_SOME_ID}/bookmarks",
        f"/evidence/{_SOME_ID}/playback-copy",
        f"/evidence/{_SOME_ID}/incidents",
        f"/evidence/{_SOME_ID}/incidents/{_SOME_ID}/unlink",
        "/evidence/bulk",
        "/incidents/new",
        f"/incidents/{_SOME_ID}/edit",
        f"/incidents/{_SOME_ID}/close",
        f"/incidents/{_SOME_ID}/reopen",
        "/admin/cameras",
        "/admin/cameras/1/assign",
        "/admin/cameras/1/retire",
        "/admin/cameras/1/restore",
        "/admin/docks",
        "/admin/docks/1/revoke",
        "/admin/categories",
        "/admin/categories/1",
        "/admin/categories/1/retire",
        "/admin/categories/1/restore",
    ]
    # Every form-handling endpoint of the app is in the list above.
    adapter = app.url_map.bind("localhost")
    covered = {adapter.match(path, method="POST")[0] for path in paths}
    post_endpoints = {
        rule.endpoint
        for rule in app.url_map.iter_rules()
        if "POST" in (rule.methods or set()) and not rule.rule.startswith("/api/")
    }
    assert post_endpoints <= covered
    for path in paths:
        response = client.post(path, data={"role": "admin"})
        assert response.status_code == 400, path
    assert client.get("/home").status_code == 200  # nothing above took effect


def test_unexpected_errors_show_no_stack_trace(app: Flask) -> None:
    def explode() -> str:
        raise RuntimeError("secret internal detail")

    app.add_url_rule("/explode", "explode", explode)
    app.add_url_rule("/api/v1/explode", "api_explode", explode)
    client = app.test_client()
    page = client.get("/explode")
    assert page.status_code == 500
    text = page.get_data(as_text=True)
    assert "Traceback" not in text and "secret internal detail" not in text
    api = client.get("/api/v1/explode")
    assert api.status_code == 500 and api.is_json
    assert "secret internal detail" not in api.get_data(as_text=True)


def test_api_errors_are_json(client: FlaskClient) -> None:
    response = client.get("/api/v1/no-such-thing")
    assert response.status_code == 404
    assert response.json == {
        "error": {"status": 404, "title": "Not Found", "detail": response.json["error"]["detail"]}
    }
    assert client.get("/api/v1/health").json == {"status": "ok"}


def test_unknown_pages_get_a_helpful_404(client: FlaskClient) -> None:
    page = client.get("/nowhere")
    assert page.status_code == 404
    assert "home page" in page.get_data(as_text=True)
