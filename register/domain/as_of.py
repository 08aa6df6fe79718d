"""Answers as of a past moment: who may ask, why, and about when. Pure: no storage, no I/O.

Rules:
- Only the regulator (supervision, a complaint it handles) and the person it is about may ask; never a
  lender or a collector, whose look at a person needs that person's consent now, not then.
- The purpose is `complaint` or `supervision`, and no consent is named: none is needed, none is checked.
- The moment asked about (`state_as_of`) is not in the future.
- A line is in the answer when its latest version recorded at or before that moment names the person
  and neither retracts it nor leaves it out of a snapshot (`retracted`, `unreported`).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from register.domain.permission import Role
from register.errors import AsOfNotAllowed, InvalidInput

AS_OF_ROLES = frozenset({Role.regulator, Role.consumer})
OUT_CHANGES = frozenset({"retracted", "unreported"})


class ReviewPurpose(StrEnum):
    complaint = "complaint"
    supervision = "supervision"


def check_as_of(role: Role, *, purpose: str, consent_id: str | None, state_as_of: datetime, now: datetime) -> None:
    if role not in AS_OF_ROLES:
        raise AsOfNotAllowed(f"the {role.value} role may not ask for an answer as of a past moment; only the "
                             "regulator and the person it is about may")
    if purpose not in ReviewPurpose.__members__:
        raise InvalidInput("an answer as of a past moment is asked for with purpose complaint or supervision",
                           code="invalid_as_of",
                           errors=[{"loc": ["body", "purpose"], "msg": "complaint or supervision"}])
    if consent_id is not None:
        raise InvalidInput("an answer as of a past moment names no consent", code="invalid_as_of",
                           errors=[{"loc": ["body", "consent_id"], "msg": "not with as_of"}])
    if state_as_of > now:
        raise InvalidInput("as_of is in the future", code="invalid_as_of",
                           errors=[{"loc": ["body", "as_of"], "msg": "not after now"}])
