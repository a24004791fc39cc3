"""The five roles and the scope a role grant carries."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    WEARER = "wearer"
    SUPERVISOR = "supervisor"
    RECORDS = "records"
    OVERSIGHT = "oversight"
    ADMIN = "admin"


#: Roles whose grant must name a school; the others may be district-wide.
SCHOOL_BOUND_ROLES = frozenset({Role.WEARER, Role.SUPERVISOR})


@dataclass(frozen=True)
class Grant:
    """One role held by a user, for one school or (school_id None) the whole district."""

    role: Role
    school_id: int | None = None

    @property
    def district_wide(self) -> bool:
        return self.school_id is None

    def covers(self, school_id: int | None) -> bool:
        """True when this grant's scope includes an object of school_id.

        An object with no school (district-level) is covered only by a district-wide
        grant: a school-scoped admin must not reach district settings."""
        if self.school_id is None:
            return True
        return school_id is not None and school_id == self.school_id
