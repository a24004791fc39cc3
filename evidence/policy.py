"""Every permission decision of the service, in one place.

Routes and services never test roles themselves: they ask `decide()` about one object,
or `scope_for()` for the filter a list query must apply. Both are pure functions of the
principal, the action and the object's owning district, school and wearer, so the whole
matrix is unit-tested without a database or a web request.

Threat model notes:
- An object outside what the principal may see answers NOT_FOUND, never FORBIDDEN, so
  probing ids tells nobody which objects exist in another school or district.
- Administrators and oversight get no footage access from their role (separation of
  duties, DESIGN.md §1). A person who also holds a footage role gets it from that grant.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum, StrEnum

from evidence.roles import Grant, Role


class Kind(StrEnum):
    """What sort of object a decision is about; each kind has its own audience."""

    EVIDENCE = "evidence"  # footage items, derivatives, bookmarks, tags on them
    INCIDENT = "incident"
    ACCOUNT = "account"  # users and their grants
    SCHOOL = "school"
    DEVICE = "device"  # cameras, docks, wearers' registrations
    DISTRICT = "district"  # district-wide settings: retention, keys, categories


class Action(StrEnum):
    VIEW_EVIDENCE = "evidence.view"
    DOWNLOAD_EVIDENCE = "evidence.download"
    ANNOTATE_EVIDENCE = "evidence.annotate"  # bookmarks, tags, notes
    CATEGORISE_EVIDENCE = "evidence.categorise"
    REQUEST_REDACTION = "evidence.request_redaction"
    PRODUCE_REDACTION = "evidence.produce_redaction"
    PLACE_HOLD = "evidence.place_hold"
    VIEW_INCIDENT = "incident.view"
    MANAGE_INCIDENTS = "incident.manage"
    HANDLE_DISCLOSURE = "disclosure.handle"
    VIEW_ACTIVATION_STATS = "oversight.view_stats"
    REVIEW_ACTIVATIONS = "oversight.review_activations"
    VERIFY_LEDGER = "ledger.verify"
    MANAGE_USERS = "admin.users"
    MANAGE_SCHOOLS = "admin.schools"
    MANAGE_DEVICES = "admin.devices"
    MANAGE_RETENTION = "admin.retention"
    MANAGE_KEYS = "admin.keys"


#: The kind of object each action is about (None: no single object, e.g. a dashboard).
ACTION_KIND: dict[Action, Kind | None] = {
    Action.VIEW_EVIDENCE: Kind.EVIDENCE,
    Action.DOWNLOAD_EVIDENCE: Kind.EVIDENCE,
    Action.ANNOTATE_EVIDENCE: Kind.EVIDENCE,
    Action.CATEGORISE_EVIDENCE: Kind.EVIDENCE,
    Action.REQUEST_REDACTION: Kind.EVIDENCE,
    Action.PRODUCE_REDACTION: Kind.EVIDENCE,
    Action.PLACE_HOLD: Kind.EVIDENCE,
    Action.VIEW_INCIDENT: Kind.INCIDENT,
    Action.MANAGE_INCIDENTS: Kind.INCIDENT,
    Action.HANDLE_DISCLOSURE: Kind.EVIDENCE,
    Action.VIEW_ACTIVATION_STATS: None,
    Action.REVIEW_ACTIVATIONS: None,
    Action.VERIFY_LEDGER: None,
    Action.MANAGE_USERS: Kind.ACCOUNT,
    Action.MANAGE_SCHOOLS: Kind.SCHOOL,
    Action.MANAGE_DEVICES: Kind.DEVICE,
    Action.MANAGE_RETENTION: Kind.DISTRICT,
    Action.MANAGE_KEYS: Kind.DISTRICT,
}

#: What each role may do, before scope is applied.
ROLE_ACTIONS: dict[Role, frozenset[Action]] = {
    # Wearers act on their own recordings only (scope: their wearer ids).
    Role.WEARER: frozenset(
        {Action.VIEW_EVIDENCE, Action.ANNOTATE_EVIDENCE, Action.CATEGORISE_EVIDENCE}
    ),
    Role.SUPERVISOR: frozenset(
        {
            Action.VIEW_EVIDENCE,
            Action.ANNOTATE_EVIDENCE,
            Action.CATEGORISE_EVIDENCE,
            Action.REQUEST_REDACTION,
            Action.PLACE_HOLD,
            Action.VIEW_INCIDENT,
            Action.MANAGE_INCIDENTS,
            Action.REVIEW_ACTIVATIONS,
        }
    ),
    Role.RECORDS: frozenset(
        {
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
        }
    ),
    # Oversight sees aggregates and the ledger, never footage.
    Role.OVERSIGHT: frozenset({Action.VIEW_ACTIVATION_STATS, Action.VERIFY_LEDGER}),
    # Administrators run the system, never footage (separation of duties).
    Role.ADMIN: frozenset(
        {
            Action.MANAGE_USERS,
            Action.MANAGE_SCHOOLS,
            Action.MANAGE_DEVICES,
            Action.MANAGE_RETENTION,
            Action.MANAGE_KEYS,
            Action.VERIFY_LEDGER,
        }
    ),
}

#: Which roles may learn that an object of a kind exists at all (within their scope).
KIND_AUDIENCE: dict[Kind, frozenset[Role]] = {
    Kind.EVIDENCE: frozenset({Role.WEARER, Role.SUPERVISOR, Role.RECORDS}),
    Kind.INCIDENT: frozenset({Role.SUPERVISOR, Role.RECORDS}),
    Kind.ACCOUNT: frozenset({Role.ADMIN}),
    Kind.SCHOOL: frozenset({Role.ADMIN}),
    Kind.DEVICE: frozenset({Role.ADMIN}),
    Kind.DISTRICT: frozenset({Role.ADMIN}),
}


class Decision(Enum):
    ALLOW = "allow"
    FORBIDDEN = "forbidden"  # may see the object, may not do this to it (HTTP 403)
    NOT_FOUND = "not_found"  # may not know the object exists (HTTP 404)

    @property
    def allowed(self) -> bool:
        return self is Decision.ALLOW


@dataclass(frozen=True)
class Principal:
    """Who is asking: their district, role grants and the wearer records that are theirs."""

    user_id: int
    district_id: int
    grants: frozenset[Grant]
    wearer_ids: frozenset[int] = frozenset()

    def has_role(self, role: Role) -> bool:
        return any(g.role is role for g in self.grants)

    @property
    def roles(self) -> frozenset[Role]:
        return frozenset(g.role for g in self.grants)


@dataclass(frozen=True)
class Resource:
    """The object a decision is about, reduced to what the policy needs.

    school_id None means a district-level object. wearer_id names whose recording an
    evidence item is; it matters only to the wearer role."""

    kind: Kind
    district_id: int
    school_id: int | None
    wearer_id: int | None = None


def _grant_reaches(principal: Principal, grant: Grant, resource: Resource) -> bool:
    if grant.role is Role.WEARER:
        # A wearer's scope is their own recordings, wherever they were docked.
        return resource.kind is Kind.EVIDENCE and resource.wearer_id in principal.wearer_ids
    return grant.covers(resource.school_id)


def decide(principal: Principal, action: Action, resource: Resource | None = None) -> Decision:
    """Decide whether principal may perform action, on resource if given.

    Without a resource the question is "may this person use this function at all"
    (a page or a dashboard); the answer is ALLOW or FORBIDDEN."""
    if resource is None:
        if any(action in ROLE_ACTIONS[g.role] for g in principal.grants):
            return Decision.ALLOW
        return Decision.FORBIDDEN

    if resource.district_id != principal.district_id:
        return Decision.NOT_FOUND
    expected = ACTION_KIND[action]
    if expected is not None and expected is not resource.kind:
        raise ValueError(f"{action} is about {expected}, not {resource.kind}")

    audience = KIND_AUDIENCE[resource.kind]
    visible = any(
        g.role in audience and _grant_reaches(principal, g, resource) for g in principal.grants
    )
    if not visible:
        return Decision.NOT_FOUND
    if any(
        action in ROLE_ACTIONS[g.role] and _grant_reaches(principal, g, resource)
        for g in principal.grants
    ):
        return Decision.ALLOW
    return Decision.FORBIDDEN


@dataclass(frozen=True)
class Scope:
    """The filter a list query applies: rows of these schools, or of these wearers.

    district_wide means every school of the principal's district."""

    district_id: int
    district_wide: bool = False
    school_ids: frozenset[int] = field(default_factory=frozenset)
    wearer_ids: frozenset[int] = field(default_factory=frozenset)

    @property
    def empty(self) -> bool:
        return not (self.district_wide or self.school_ids or self.wearer_ids)

    def includes(self, school_id: int | None, wearer_id: int | None = None) -> bool:
        if self.district_wide:
            return True
        if school_id is not None and school_id in self.school_ids:
            return True
        return wearer_id is not None and wearer_id in self.wearer_ids


def scope_for(principal: Principal, action: Action) -> Scope:
    """The set of objects on which principal may perform action, as a query filter."""
    district_wide = False
    schools: set[int] = set()
    wearers: set[int] = set()
    for grant in principal.grants:
        if action not in ROLE_ACTIONS[grant.role]:
            continue
        if grant.role is Role.WEARER:
            wearers |= principal.wearer_ids
        elif grant.school_id is None:
            district_wide = True
        else:
            schools.add(grant.school_id)
    return Scope(principal.district_id, district_wide, frozenset(schools), frozenset(wearers))
