"""The batch path's lookup of persons by blind index (storage.bulk.persons_by_blind_index), on both databases:
during a blind-index rotation a person may be known by either index, and the lookup gives each key asked for
back with the id of the person it names, whichever column holds it. Many keys at once, as a batch asks."""

from __future__ import annotations

import os
import uuid

from sqlalchemy import insert, select, text

from register.storage import bulk
from register.storage.models import Obligation, Person
from register.storage.types import utcnow
from tests.factories import debtor, make_institution, make_person, new_ref, obligation_body


def test_a_person_is_found_by_its_index_or_by_the_one_a_rotation_is_moving_it_to(app):
    sessions = app.state.register.sessions
    plain, moving, rotated = ([(str(uuid.uuid4()), os.urandom(32), os.urandom(32)) for _ in range(300)]
                              for _ in range(3))
    with sessions.begin() as s:
        s.execute(insert(Person), [{"id": pid, "country": "SE", "blind_index": old, "national_id_enc": b"\0",
                                    "created_at": utcnow(), "blind_index_next": new if rows is not plain else None}
                                   for rows in (plain, moving, rotated) for pid, old, new in rows])
    unknown = [os.urandom(32) for _ in range(300)]
    # plain persons by their index; persons mid-rotation by the new index (batches under the new key), others
    # by the old one (a batch still under the old key)
    asked = [old for _, old, _ in plain] + [new for _, _, new in moving] + [old for _, old, _ in rotated] + unknown
    with sessions.begin() as s:
        found = bulk.persons_by_blind_index(s, asked)
    expected = ({(pid, old) for pid, old, _ in plain} | {(pid, new) for pid, _, new in moving}
                | {(pid, old) for pid, old, _ in rotated})
    assert sorted(found) == sorted(expected)


def test_a_batch_locks_the_lines_it_names_of_its_own_institution_and_no_other(app, client, admin_headers, data_dir,
                                                                            backend):
    """storage.bulk.obligations_for_update: the institution's lines with those references (a reference of another
    institution's is not its line), and on PostgreSQL the planner's settings it changes for the statement are
    back for the rest of the batch's transaction."""
    bank, other = make_institution(client, admin_headers), make_institution(client, admin_headers)
    person = make_person(client, data_dir)
    refs = [new_ref() for _ in range(3)]
    for inst, ref in [(bank, r) for r in refs] + [(other, refs[0])]:
        r = client.put(f"/v1/obligations/{ref}", json=obligation_body(debtors=[debtor(person)]), headers=inst.headers)
        assert r.status_code in (200, 201), r.text
    sessions = app.state.register.sessions
    with sessions.begin() as s:
        rows = bulk.obligations_for_update(s, institution_id=bank.id, refs=[refs[0], refs[2], "NOT-REPORTED"])
        ids = dict(s.execute(select(Obligation.external_ref, Obligation.id).where(Obligation.institution_id == bank.id)).all())
        assert sorted((r.external_ref, r.id, r.version) for r in rows) == sorted(
            [(refs[0], ids[refs[0]], 1), (refs[2], ids[refs[2]], 1)])
        if backend == "postgres":
            settings = ("enable_seqscan", "enable_bitmapscan")
            assert [s.execute(text(f"SHOW {name}")).scalar() for name in settings] == ["on"] * 2
