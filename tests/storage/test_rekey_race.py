"""A blind-index key rotation moves a person's rows keyed by blind index (the months' pseudonyms, the choice
of notices) to the new index while requests keep running under the new key. A request that makes such a row
under the new key after the rotation's batch looked (its month's first access event, a saved choice) met the
move on the unique key, and the rotation stopped (`tests/test_key_rotation_load.py` caught it under load).
Both databases; on PostgreSQL the request commits from another connection in the middle of the batch's
transaction, just before the move. On SQLite every transaction holds the write lock from its BEGIN
(storage.writer_gate), so a request comes before the batch or after it, never in the middle."""

from __future__ import annotations

import os
import uuid

from sqlalchemy import event, insert, select

from register.services import keys as key_service
from register.storage import notifications as notice_store
from register.storage import pseudonyms
from register.storage.models import Person, SubjectPseudonym
from register.storage.notice_tables import NotificationSubscription
from register.storage.types import utcnow


def _person(sessions) -> str:
    pid = str(uuid.uuid4())
    with sessions.begin() as s:
        s.execute(insert(Person).values(id=pid, country="SE", blind_index=os.urandom(32), national_id_enc=b"\0",
                                        created_at=utcnow()))
    return pid


def _rotate_one(app, pid: str, fix, meanwhile, statement: str) -> None:
    """Run the rotation's batch loop with `fix` for person `pid` only; `meanwhile` (a request under the new key,
    in a transaction of its own) commits as the batch is about to run `statement` (PostgreSQL), or before the
    batch begins (SQLite)."""
    sessions = app.state.register.sessions
    engine = sessions.kw["bind"]
    done: list[bool] = []

    def before(conn, cursor, sql, params, context, executemany) -> None:
        if not done and sql.lstrip().upper().startswith(statement):
            done.append(True)
            meanwhile()

    if engine.dialect.name == "sqlite":
        meanwhile()
        done.append(True)
    event.listen(engine, "before_cursor_execute", before)
    try:
        key_service._each_person(sessions, "test", 500, lambda *a: None,
                                 lambda s, row: fix(s) if row.id == pid else None)
    finally:
        event.remove(engine, "before_cursor_execute", before)
    assert done


def test_a_months_pseudonym_made_under_the_new_key_meanwhile_is_kept_beside_the_moved_one(app):
    sessions = app.state.register.sessions
    old, new = os.urandom(32), os.urandom(32)
    epoch, end = pseudonyms.epoch_of(utcnow())
    moved, made = os.urandom(32), os.urandom(32)
    with sessions.begin() as s:
        s.execute(insert(SubjectPseudonym).values(pseudonym=moved, blind_index=old, epoch=epoch, epoch_end=end))

    def request() -> None:  # the month's first answer about this person under the new key
        with sessions.begin() as s:
            s.execute(insert(SubjectPseudonym).values(pseudonym=made, blind_index=new, epoch=epoch, epoch_end=end))

    _rotate_one(app, _person(sessions), lambda s: pseudonyms.rekey(s, old, new), request, "UPDATE SUBJECT_PSEUDONYMS")
    with sessions() as s:
        rows = {bytes(p): (bytes(b), e, end_) for p, b, e, end_ in s.execute(
            select(SubjectPseudonym.pseudonym, SubjectPseudonym.blind_index, SubjectPseudonym.epoch,
                   SubjectPseudonym.epoch_end).where(SubjectPseudonym.pseudonym.in_([moved, made])))}
        assert rows[made][:2] == (new, epoch)
        assert rows[moved][0] == new and rows[moved][1].startswith("r")  # moved, under a label of its own
        assert sorted(pseudonyms.pseudonyms_for(s, new)) == sorted([moved, made])  # the person's log has both
        assert pseudonyms.pseudonyms_for(s, old) == []


def test_a_choice_of_notices_saved_under_the_new_key_meanwhile_is_the_one_kept(app):
    sessions = app.state.register.sessions
    old, new = os.urandom(32), os.urandom(32)
    now = utcnow()

    def subscription(blind_index: bytes) -> dict:
        return {"id": str(uuid.uuid4()), "blind_index": blind_index, "country": "SE", "language": "en",
                "events": "exposure", "digest": "none", "created_at": now, "updated_at": now, "email_enc": b"\0"}

    first, newest = subscription(old), subscription(new)
    with sessions.begin() as s:
        s.execute(insert(NotificationSubscription).values(**first))

    def request() -> None:  # the person signs in under the new key and saves their choice again
        with sessions.begin() as s:
            s.execute(insert(NotificationSubscription).values(**newest))

    _rotate_one(app, _person(sessions), lambda s: notice_store.rekey(s, old, new), request,
                "UPDATE NOTIFICATION_SUBSCRIPTIONS")
    with sessions() as s:
        assert notice_store.subscription_of(s, new).id == newest["id"]
        assert notice_store.subscription_of(s, old) is None
        assert s.get(NotificationSubscription, first["id"]) is None
