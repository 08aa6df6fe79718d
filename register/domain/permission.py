"""Who may do what. Every route names one permission (or is explicitly public); roles grant sets of them."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    admin = "admin"
    collector = "collector"
    consumer = "consumer"
    lender = "lender"
    regulator = "regulator"


INSTITUTION_ROLES = (Role.lender, Role.collector, Role.regulator)


class Permission(StrEnum):
    institutions_create = "institutions:create"
    institutions_read = "institutions:read"
    obligations_read = "obligations:read"
    obligations_write = "obligations:write"


_REPORTER = frozenset({Permission.obligations_read, Permission.obligations_write})

GRANTS: dict[Role, frozenset[Permission]] = {
    Role.admin: frozenset({Permission.institutions_create, Permission.institutions_read}),
    Role.collector: _REPORTER,
    Role.consumer: frozenset(),
    Role.lender: _REPORTER,
    Role.regulator: frozenset({Permission.institutions_read}),
}


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller. `institution_id` is set for institutions, `person_id` for consumers."""

    role: Role
    name: str
    institution_id: str | None = None
    person_id: str | None = None

    def can(self, permission: Permission) -> bool:
        return permission in GRANTS[self.role]

    @property
    def actor(self) -> str:
        return self.institution_id or self.person_id or self.role.value
