"""SQL of the `sequential_lookups` detection (SPEC.md "Signals"): while an exposure query is answered,
whether the same institution asked about a sequential neighbour of the number within the last hour.

Two small indexed reads, the second only when needed: the neighbours' pseudonyms of this month (and of the
last one when the window crosses a month's start) through `uq_subject_pseudonyms_blind_index_epoch`; most
numbers' neighbours were never asked about this month, and the probe ends there. Otherwise the events about
those pseudonyms in the window, through `ix_access_events_subject` (subject, occurred_at), are read and
the institution's looked for among them: the institution is deliberately not a condition of the statement,
since with it a planner may walk the institution's own (busy) `ix_access_events_actor` range instead,
measured at 110 ms on a lender with 4,000 lookups in the hour. Nothing is written; the answer's event
records only the flag.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import bindparam, or_, select
from sqlalchemy.orm import Session

from register.storage.models import AccessEvent, SubjectPseudonym
from register.storage.pseudonyms import epoch_of

LOOKUP = "exposure:query"
_E, _P = AccessEvent, SubjectPseudonym
PER_PERSON_LIMIT = 1000  # events about two persons in one hour: more is not a person, and is not read
# One shape for every call (two blind indexes, two months: repeated when there is one), so the statement
# is compiled once and cached; `in_` with a list would be rendered again on each call.
_PSEUDONYMS = select(_P.pseudonym).where(
    or_(_P.blind_index == bindparam("a"), _P.blind_index == bindparam("b")),
    or_(_P.epoch == bindparam("e1"), _P.epoch == bindparam("e2")))
_EVENTS = (select(_E.actor_id, _E.action)
           .where(or_(*(_E.subject == bindparam(f"p{i}") for i in range(1, 5))),
                  _E.occurred_at >= bindparam("since"), _E.occurred_at < bindparam("until"))
           .limit(PER_PERSON_LIMIT))


def asked_about_any(
    session: Session, *, blind_indexes: Sequence[bytes], institution_id: str, since: datetime, until: datetime,
) -> bool:
    """Whether the institution made an exposure query (any outcome) in [since, until) about any of these
    (at most two: a number's neighbours; the window at most a month long)."""
    if not blind_indexes:
        return False
    assert len(blind_indexes) <= 2
    conn = session.connection()  # Core on the session's connection: a fifth of the ORM's CPU per call
    pseudonyms = [row[0] for row in conn.execute(_PSEUDONYMS, {
        "a": blind_indexes[0], "b": blind_indexes[-1], "e1": epoch_of(since)[0], "e2": epoch_of(until)[0]})]
    if not pseudonyms:
        return False
    padded = (pseudonyms * 4)[:4]  # two indexes in two months at most
    rows = conn.execute(_EVENTS, {"p1": padded[0], "p2": padded[1], "p3": padded[2], "p4": padded[3],
                                  "since": since, "until": until})
    return any(actor == institution_id and action == LOOKUP for actor, action in rows)
