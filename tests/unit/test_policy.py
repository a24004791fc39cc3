"""The permission matrix: every role x action x same school / other school / other district."""

from __future__ import annotations

import itertools

import pytest

from evidence.policy import (
    ACTION_KIND,
    Action,
    Decision,
    Kind,
    Principal,
    Resource,
    decide,
    scope_for,
)
from evidence.roles import Grant, Role

DISTRICT, OTHER_DISTRICT = 1, 2
SCHOOL, OTHER_SCHOOL = 10, 20
OWN_WEARER, OTHER_WEARER = 100, 200

# Written out by hand from DESIGN.md §1, independently of the policy's own tables.
EXPECTED_ALLOWED: dict[Role, set[Action]] = {
    Role.WEARER: {Action.VIEW_EVIDENCE, Action.ANNOTATE_EVIDENCE, Action.CATEGORISE_EVIDENCE},
    Role.SUPERVISOR: {
        Action.VIEW_EVIDENCE,
        Action.ANNOTATE_EVIDENCE,
        Action.CATEGORISE_EVIDENCE,
        Action.REQUEST_REDACTION,
        Action.PLACE_HOLD,
        Action.VIEW_INCIDENT,
        Action.MANAGE_INCIDENTS,
        Action.REVIEW_ACTIVATIONS,
    },
    Role.RECORDS: {
        Action.VIEW_EVIDENCE,
        Action.DOWNLOAD_EVIDENCE,
        Action.ANNOTATE_EVIDENCE,
        Action.CATEGORISE_EVIDENCE,
        Action.REQUEST_REDACTION,
        Action.PRODUCE_REDACTION,
        Action.PLACE_HOLD,
        Action.VIEW_INCIDENT,
        Action.MANAGE_INCIDENTS,
        Action.HANDLE_DISCLOSURE,
    },
    Role.OVERSIGHT: {Action.VIEW_ACTIVATION_STATS, Action.VERIFY_LEDGER},
    Role.ADMIN: {
        Action.MANAGE_USERS,
        Action.MANAGE_SCHOOLS,
        Action.MANAGE_DEVICES,
        Action.MANAGE_RETENTION,
        Action.MANAGE_KEYS,
        Action.VERIFY_LEDGER,
    },
}
FOOTAGE_ROLES = {Role.WEARER, Role.SUPERVISOR, Role.RECORDS}
OBJECT_ACTIONS = [a for a in Action if ACTION_KIND[a] is not None]


def principal(role: Role, school: int | None) -> Principal:
    return Principal(
        user_id=1,
        district_id=DISTRICT,
        grants=frozenset({Grant(role, school)}),
        wearer_ids=frozenset({OWN_WEARER}) if role is Role.WEARER else frozenset(),
    )


def resource(action: Action, *, district: int, school: int | None, wearer: int) -> Resource:
    kind = ACTION_KIND[action]
    assert kind is not None
    return Resource(kind, district, school, wearer if kind is Kind.EVIDENCE else None)


@pytest.mark.parametrize(
    ("role", "action"),
    list(itertools.product(Role, OBJECT_ACTIONS)),
    ids=lambda v: v.value,
)
def test_same_school_object_follows_the_role_table(role: Role, action: Action) -> None:
    # Every role school-scoped here; district-wide grants are tested below.
    who = principal(role, SCHOOL)
    target = resource(action, district=DISTRICT, school=SCHOOL, wearer=OWN_WEARER)
    decision = decide(who, action, target)
    if action in EXPECTED_ALLOWED[role]:
        assert decision is Decision.ALLOW
    else:
        assert decision is not Decision.ALLOW


@pytest.mark.parametrize(
    ("role", "action"),
    list(itertools.product(Role, OBJECT_ACTIONS)),
    ids=lambda v: v.value,
)
def test_other_school_object_is_not_found(role: Role, action: Action) -> None:
    who = principal(role, SCHOOL)
    target = resource(action, district=DISTRICT, school=OTHER_SCHOOL, wearer=OTHER_WEARER)
    assert decide(who, action, target) is Decision.NOT_FOUND


@pytest.mark.parametrize(
    ("role", "action"),
    list(itertools.product(Role, OBJECT_ACTIONS)),
    ids=lambda v: v.value,
)
def test_other_district_object_is_not_found_even_for_district_wide_roles(
    role: Role, action: Action
) -> None:
    school = SCHOOL if role in {Role.WEARER, Role.SUPERVISOR} else None
    who = principal(role, school)
    target = resource(action, district=OTHER_DISTRICT, school=SCHOOL, wearer=OWN_WEARER)
    assert decide(who, action, target) is Decision.NOT_FOUND


@pytest.mark.parametrize("role", [Role.RECORDS, Role.OVERSIGHT, Role.ADMIN], ids=str)
@pytest.mark.parametrize("action", OBJECT_ACTIONS, ids=str)
def test_district_wide_grant_reaches_every_school(role: Role, action: Action) -> None:
    who = principal(role, None)
    target = resource(action, district=DISTRICT, school=OTHER_SCHOOL, wearer=OTHER_WEARER)
    assert decide(who, action, target).allowed is (action in EXPECTED_ALLOWED[role])


@pytest.mark.parametrize(
    "action", [Action.VIEW_EVIDENCE, Action.ANNOTATE_EVIDENCE, Action.CATEGORISE_EVIDENCE], ids=str
)
def test_wearer_reaches_only_their_own_recordings_even_in_their_school(action: Action) -> None:
    who = principal(Role.WEARER, SCHOOL)
    own = Resource(Kind.EVIDENCE, DISTRICT, SCHOOL, OWN_WEARER)
    colleagues = Resource(Kind.EVIDENCE, DISTRICT, SCHOOL, OTHER_WEARER)
    assert decide(who, action, own) is Decision.ALLOW
    assert decide(who, action, colleagues) is Decision.NOT_FOUND


def test_wearer_keeps_access_to_own_footage_docked_at_another_school() -> None:
    who = principal(Role.WEARER, SCHOOL)
    elsewhere = Resource(Kind.EVIDENCE, DISTRICT, OTHER_SCHOOL, OWN_WEARER)
    assert decide(who, Action.VIEW_EVIDENCE, elsewhere) is Decision.ALLOW


@pytest.mark.parametrize("role", [Role.ADMIN, Role.OVERSIGHT], ids=str)
def test_admin_and_oversight_never_learn_footage_exists(role: Role) -> None:
    who = principal(role, None)
    item = Resource(Kind.EVIDENCE, DISTRICT, SCHOOL, OWN_WEARER)
    for action in Action:
        if ACTION_KIND[action] is Kind.EVIDENCE:
            assert decide(who, action, item) is Decision.NOT_FOUND
    assert scope_for(who, Action.VIEW_EVIDENCE).empty


def test_wearer_may_see_but_not_download_own_item() -> None:
    who = principal(Role.WEARER, SCHOOL)
    own = Resource(Kind.EVIDENCE, DISTRICT, SCHOOL, OWN_WEARER)
    assert decide(who, Action.DOWNLOAD_EVIDENCE, own) is Decision.FORBIDDEN


def test_school_admin_cannot_touch_district_level_objects() -> None:
    who = principal(Role.ADMIN, SCHOOL)
    district_account = Resource(Kind.ACCOUNT, DISTRICT, None)
    assert decide(who, Action.MANAGE_USERS, district_account) is Decision.NOT_FOUND
    assert (
        decide(who, Action.MANAGE_KEYS, Resource(Kind.DISTRICT, DISTRICT, None))
        is Decision.NOT_FOUND
    )


def test_a_second_grant_adds_its_own_scope_only() -> None:
    who = Principal(
        1, DISTRICT, frozenset({Grant(Role.ADMIN, None), Grant(Role.SUPERVISOR, SCHOOL)})
    )
    assert (
        decide(who, Action.VIEW_EVIDENCE, Resource(Kind.EVIDENCE, DISTRICT, SCHOOL))
        is Decision.ALLOW
    )
    assert (
        decide(who, Action.VIEW_EVIDENCE, Resource(Kind.EVIDENCE, DISTRICT, OTHER_SCHOOL))
        is Decision.NOT_FOUND
    )


@pytest.mark.parametrize("role", list(Role), ids=str)
@pytest.mark.parametrize("action", list(Action), ids=str)
def test_function_level_decision_follows_the_role_table(role: Role, action: Action) -> None:
    expected = Decision.ALLOW if action in EXPECTED_ALLOWED[role] else Decision.FORBIDDEN
    assert decide(principal(role, SCHOOL), action) is expected


def test_scope_for_lists_schools_and_own_wearer_ids() -> None:
    who = Principal(
        1,
        DISTRICT,
        frozenset({Grant(Role.SUPERVISOR, SCHOOL), Grant(Role.WEARER, OTHER_SCHOOL)}),
        wearer_ids=frozenset({OWN_WEARER}),
    )
    scope = scope_for(who, Action.VIEW_EVIDENCE)
    assert not scope.district_wide
    assert scope.school_ids == {SCHOOL}
    assert scope.wearer_ids == {OWN_WEARER}
    assert scope.includes(SCHOOL, OTHER_WEARER)
    assert scope.includes(OTHER_SCHOOL, OWN_WEARER)
    assert not scope.includes(OTHER_SCHOOL, OTHER_WEARER)
    # Supervisors manage incidents; a wearer grant adds nothing to that scope.
    assert scope_for(who, Action.MANAGE_INCIDENTS).wearer_ids == frozenset()


def test_action_about_the_wrong_kind_of_object_is_a_programming_error() -> None:
    who = principal(Role.ADMIN, None)
    with pytest.raises(ValueError, match="is about"):
        decide(who, Action.MANAGE_USERS, Resource(Kind.EVIDENCE, DISTRICT, SCHOOL))
