"""A batch file and a single report that add the same new person at the same time: the batch takes the
person the other transaction added, where it used to fail on `uq_persons_blind_index` (PostgreSQL: the
batch read no such person, then its COPY waited for the other transaction and hit the unique constraint
when that committed). On SQLite the write lock orders the two; the test holds there too."""

from __future__ import annotations

import json
import threading
import time

from sqlalchemy import select, text

from register.domain.identity import parse_national_id
from register.domain.permission import Role
from register.services.bulk import apply_batch
from register.services.lines import parse_doc, prepare
from register.services.identities import resolve_person
from register.storage.models import Obligation, ObligationDebtor
from register.storage.types import utcnow
from tests.factories import national_id, new_ref, obligation_body


def _wait_until_blocked(sessions, backend: str) -> None:
    """Until the batch's transaction waits on the other one's lock (PostgreSQL); SQLite cannot say: a pause."""
    if backend != "postgres":
        time.sleep(0.3)
        return
    for _ in range(200):
        with sessions() as s:
            if s.execute(text("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                              "AND datname = current_database()")).scalar():
                return
        time.sleep(0.05)
    raise AssertionError("the batch never waited for the other transaction")


def test_a_person_added_meanwhile_by_a_single_report_is_taken_not_an_error(app, lender, backend):
    state = app.state.register
    nid = national_id()
    ref = new_ref()
    doc = {**obligation_body(debtors=[{"country": "SE", "national_id": nid, "role": "primary"}]), "external_ref": ref}
    ready = prepare(parse_doc(1, json.dumps(doc).encode(), now=utcnow(), allow_test=False), state.cipher)

    other = state.sessions()
    other.begin()
    person = resolve_person(other, state.cipher, parse_national_id("SE", nid))  # added, not yet committed
    failures: list[BaseException] = []

    def batch() -> None:
        try:
            with state.sessions.begin() as s:
                apply_batch(s, state.cipher, institution_id=lender.id, role=Role.lender, lines=[ready], now=utcnow(), source="test")
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            failures.append(exc)

    worker = threading.Thread(target=batch)
    worker.start()
    _wait_until_blocked(state.sessions, backend)
    other.commit()
    worker.join(timeout=60)
    other.close()
    assert not failures, failures
    with state.sessions() as s:
        ob = s.execute(select(Obligation).where(Obligation.external_ref == ref)).scalar_one()
        debtors = s.execute(select(ObligationDebtor.person_id).where(ObligationDebtor.obligation_id == ob.id)).all()
    assert [d.person_id for d in debtors] == [person.id]
