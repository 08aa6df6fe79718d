"""Who may do what. Every route names one permission (or is explicitly public); roles grant sets of them."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from register.domain.identity import NationalId


class Role(StrEnum):
    admin = "admin"
    collector = "collector"
    consumer = "consumer"
    lender = "lender"
    regulator = "regulator"


INSTITUTION_ROLES = (Role.lender, Role.collector, Role.regulator)


class Permission(StrEnum):
    audit_read = "audit:read"
    consents_attest = "consents:attest"
    consents_grant = "consents:grant"
    consents_read = "consents:read"
    consents_revoke = "consents:revoke"
    credentials_manage = "credentials:manage"  # institutions' keys and tokens
    disputes_answer = "disputes:answer"  # a creditor lists and answers disputes on its own lines
    events_read = "events:read"  # an institution's feed of changes and its webhooks
    exposure_as_of = "exposure:as_of"  # an answer as of a past moment: the regulator and the person only
    exposure_query = "exposure:query"
    exposure_read = "exposure:read"  # a stored answer: its lender, its person, the regulator
    institutions_create = "institutions:create"
    institutions_read = "institutions:read"
    log_read = "log:read"
    me_read = "me:read"
    me_write = "me:write"  # a person disputes a line, sets or lifts a credit ban
    obligations_read = "obligations:read"
    obligations_write = "obligations:write"


_REPORTER = frozenset({
    Permission.consents_attest, Permission.consents_read, Permission.disputes_answer, Permission.events_read,
    Permission.exposure_query,
    Permission.exposure_read, Permission.log_read, Permission.obligations_read, Permission.obligations_write,
})  # fmt: skip

GRANTS: dict[Role, frozenset[Permission]] = {
    Role.admin: frozenset({Permission.credentials_manage, Permission.institutions_create,
                           Permission.institutions_read}),
    Role.collector: _REPORTER,
    Role.consumer: frozenset({
        Permission.consents_grant, Permission.consents_read, Permission.consents_revoke, Permission.exposure_as_of,
        Permission.exposure_read, Permission.log_read, Permission.me_read, Permission.me_write,
    }),  # fmt: skip
    Role.lender: _REPORTER,
    Role.regulator: frozenset({Permission.audit_read, Permission.exposure_as_of, Permission.exposure_read,
                               Permission.institutions_read, Permission.log_read}),
}


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller: an institution (`institution_id`), a consumer (`national_id`, `subject`) or the operator."""

    role: Role
    name: str
    institution_id: str | None = None
    national_id: NationalId | None = None  # consumers only; its repr is masked
    subject: bytes | None = None  # consumers only: their blind index

    def can(self, permission: Permission) -> bool:
        return permission in GRANTS[self.role]

    @property
    def actor(self) -> str:
        return self.institution_id or self.role.value

    @property
    def actor_type(self) -> str:
        if self.institution_id:
            return "institution"
        return "consumer" if self.role is Role.consumer else "admin"
