"""SQL of the `sequential_lookups` detection (SPEC.md "Signals"): while an exposure query is answered,
whether the same institution asked about a sequential neighbour of the number within the last hour.

One indexed probe: the neighbours' blind indexes reach their pseudonyms of this month (and of the last one
when the window crosses a month's start) through `uq_subject_pseudonyms_blind_index_epoch`, and the
events through `ix_access_events_subject` (subject, occurred_at). Nothing is written; the answer's event
records only the flag.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from register.storage.models import AccessEvent, SubjectPseudonym
from register.storage.pseudonyms import epoch_of

LOOKUP = "exposure:query"
_E, _P = AccessEvent, SubjectPseudonym


def asked_about_any(
    session: Session, *, blind_indexes: Sequence[bytes], institution_id: str, since: datetime, until: datetime,
) -> bool:
    """Whether the institution made an exposure query (any outcome) in [since, until) about any of these."""
    if not blind_indexes:
        return False
    epochs = sorted({epoch_of(since)[0], epoch_of(until)[0]})
    stmt = (select(_E.seq).join(_P, _P.pseudonym == _E.subject)
            .where(_P.blind_index.in_(list(blind_indexes)), _P.epoch.in_(epochs),
                   _E.occurred_at >= since, _E.occurred_at < until,
                   _E.actor_id == institution_id, _E.action == LOOKUP)
            .limit(1))
    return session.execute(stmt).first() is not None
