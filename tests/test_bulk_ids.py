"""The batch path makes its own UUIDs (for speed): they must be real UUIDs, distinct, and in the same text
form as str(uuid.uuid4()), because the single-report path and every reader expect it. They are version 7
(RFC 9562): time-ordered, so that the rows a daily file adds go to the right-hand edge of the primary-key
indexes instead of a random page each."""

from __future__ import annotations

import time
import uuid

from register.services.lines import time_ordered_id


def test_batch_ids_are_version_7_uuids_in_canonical_text() -> None:
    ids = [time_ordered_id() for _ in range(20_000)]
    assert len(set(ids)) == len(ids)
    for text in ids:
        parsed = uuid.UUID(text)
        assert parsed.version == 7 and parsed.variant == uuid.RFC_4122
        assert str(parsed) == text
    # all four variant nibbles occur: the variant bits are set, the rest stays random
    assert {t[19] for t in ids} == set("89ab")


def test_batch_ids_carry_the_time_they_were_made_and_sort_by_it() -> None:
    """The first 48 bits are Unix milliseconds: an id made later sorts after one made a millisecond or more
    earlier, as text (PostgreSQL's and SQLite's order of the id columns) as well as in bytes."""
    before = time.time_ns() // 1_000_000
    first = [time_ordered_id() for _ in range(1_000)]
    time.sleep(0.002)
    later = [time_ordered_id() for _ in range(1_000)]
    after = time.time_ns() // 1_000_000
    for text in first + later:
        assert before <= uuid.UUID(text).int >> 80 <= after
    assert max(first) < min(later)
    assert max(uuid.UUID(t).bytes for t in first) < min(uuid.UUID(t).bytes for t in later)
    # 74 bits stay random: ids made in one millisecond still differ, and not in sequence
    assert len({t[15:] for t in first}) == len(first)


def test_ids_stay_distinct_across_threads_and_a_forked_process() -> None:
    """Ids come from a buffer of random bytes: two threads must never take the same bytes, and a process
    forked with a half-used buffer (the fork server's children) must not repeat its parent's ids."""
    import os
    import threading

    time_ordered_id()  # the buffer now holds bytes a fork would copy
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its ids, back through the pipe
        os.close(read)
        os.write(write, "\n".join(time_ordered_id() for _ in range(200)).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as f:
        child = f.read().split("\n")
    os.waitpid(pid, 0)
    parent = [time_ordered_id() for _ in range(200)]
    assert len(child) == 200 and not set(child) & set(parent)

    per_thread: list[list[str]] = [[] for _ in range(4)]
    threads = [threading.Thread(target=lambda out=out: out.extend(time_ordered_id() for _ in range(5_000))) for out in per_thread]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ids = [i for out in per_thread for i in out]
    assert len(ids) == 20_000 and len(set(ids)) == len(ids)
