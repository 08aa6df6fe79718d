"""The batch path's lookup of persons by blind index (storage.bulk.persons_by_blind_index), on both databases:
during a blind-index rotation a person may be known by either index, and the lookup gives each key asked for
back with the id of the person it names, whichever column holds it. Many keys at once, as a batch asks."""

from __future__ import annotations

import os
import uuid

from sqlalchemy import insert

from register.storage import bulk
from register.storage.models import Person
from register.storage.types import utcnow


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
