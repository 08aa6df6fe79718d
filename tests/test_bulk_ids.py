"""The batch path makes its own UUIDs (for speed): they must be real version-4 UUIDs, distinct, and in
the same text form as str(uuid.uuid4()), because the single-report path and every reader expect it."""

from __future__ import annotations

import uuid

from register.services.bulk import _new_id


def test_batch_ids_are_random_version_4_uuids_in_canonical_text() -> None:
    ids = [_new_id() for _ in range(20_000)]
    assert len(set(ids)) == len(ids)
    for text in ids:
        parsed = uuid.UUID(text)
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122
        assert str(parsed) == text
    # all four variant nibbles occur: the variant bits are set, the rest stays random
    assert {t[19] for t in ids} == set("89ab")
