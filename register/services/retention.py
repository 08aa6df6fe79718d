"""Retention: delete what the register no longer may keep, on a schedule (SPEC.md, "Retention").

`plan` counts what a run at `now` would delete; `run` deletes it and returns the same counts. A run
deletes obligations (each with its versions, debtors and disputes) and persons in batches, each batch
one transaction that locks its rows and decides again (`domain.retention.due`) on what is committed
then, and each report file in a transaction of its own: a run killed at any point leaves nothing
half-deleted, and the next run deletes only what is left. A report arriving for an obligation while it
runs either holds the line's lock (the run skips it: the next run decides again) or comes after the
deletion (it finds no line and creates it anew).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from register.config import Settings
from register.domain.retention import OBLIGATION_RULES, Ended, Policy, Rule, due, parse_by_country
from register.storage import notifications as notice_store
from register.storage import outbox as outbox_store
from register.storage import pseudonyms as pseudonym_store
from register.storage import retention as store
from register.storage import webhooks as webhook_store
from register.storage.db import make_engine, make_sessionmaker
from register.storage.types import utcnow

log = logging.getLogger("register.retention")
BATCH = 500
PERSONS = "person"  # the count of persons forgotten, beside the rules' counts
# Notice addresses deleted (SPEC.md, "Notices"): never confirmed within the link's life, or of a person the
# register no longer knows (forgotten, or every event about them past its period).
NOTICE_ADDRESSES = "notice_address"
COUNTED = (*OBLIGATION_RULES, Rule.exposure_answer, Rule.report_file, Rule.access_event)


def policy_of(settings: Settings) -> Policy:
    days = {rule: getattr(settings, f"retention_{rule.value}_days") for rule in Rule if rule is not Rule.report_file}
    days[Rule.report_file] = settings.report_file_days
    try:
        by_country = parse_by_country(settings.retention_by_country)
    except ValueError as exc:
        raise ValueError(f"REGISTER_RETENTION_BY_COUNTRY: {exc}") from None
    return Policy(days=days, by_country=by_country, event_feed_days=settings.event_feed_days,
                  webhook_delivery_days=settings.webhook_delivery_days)


@dataclass
class Counts:
    """What a run deletes (or would), by rule, and persons forgotten. `deleted["access_event"]`: the
    monthly pseudonyms destroyed because their month's events passed their period, and
    `access_events_pseudonymised` the events they linked, which from then on name nobody.
    `access_events_past_period`: access events older than their period; they stay, as the log's leaves
    (SPEC.md)."""

    now: datetime
    deleted: dict[str, int] = field(default_factory=lambda: {**{r.value: 0 for r in COUNTED}, PERSONS: 0,
                                                             NOTICE_ADDRESSES: 0})
    access_events_past_period: int = 0
    access_events_pseudonymised: int = 0
    feed_events: int = 0  # outbox events past REGISTER_EVENT_FEED_DAYS
    webhook_deliveries: int = 0  # delivered or dead-lettered deliveries past REGISTER_WEBHOOK_DELIVERY_DAYS

    def as_json(self) -> dict[str, Any]:
        return {"now": self.now.isoformat().replace("+00:00", "Z"), "deleted": dict(self.deleted),
                "access_events_past_period": self.access_events_past_period,
                "access_events_pseudonymised": self.access_events_pseudonymised,
                "feed_events": self.feed_events, "webhook_deliveries": self.webhook_deliveries}


Progress = Callable[[str, int], None]  # (what, how many so far), after each committed step


def _ended(row: Any) -> Ended:
    return Ended(kind=row.kind, status=row.status, updated_at=row.updated_at, retracted_at=row.retracted_at,
                 had_arrears=bool(row.had_arrears), country=row.country)


def _due_obligations(sessions: sessionmaker[Session], policy: Policy, now: datetime) -> Iterator[tuple[str, Rule]]:
    """(id, rule) of every obligation due at `now`, read in pages of their own short transactions."""
    before = policy.latest_cutoff(OBLIGATION_RULES, now)
    after = ""
    while True:
        with sessions() as s:
            rows = store.ended_obligations(s, before=before, after_id=after, limit=BATCH)
        for row in rows:
            rule = due(_ended(row), policy, now)
            if rule is not None:
                yield row.id, rule
        if len(rows) < BATCH:
            return
        after = rows[-1].id


def _answer_cutoffs(policy: Policy, now: datetime) -> tuple[datetime, dict[str, datetime]]:
    rule = Rule.exposure_answer
    return policy.cutoff(rule, now), {c: policy.cutoff(rule, now, c) for c, r in policy.by_country.items() if rule in r}


def _consents_until(policy: Policy, now: datetime) -> datetime:
    """A consent that ended after this moment may be the basis of a stored answer still kept: it (and its
    person) stays. Every answer was given while its consent was in force, so before the consent ended."""
    return policy.earliest_cutoff(Rule.exposure_answer, now)


def plan(sessions: sessionmaker[Session], policy: Policy, *, now: datetime) -> Counts:
    """What `run` at `now` would delete, deleting nothing."""
    counts = Counts(now=now)
    due_ids: set[str] = set()
    for obligation_id, rule in _due_obligations(sessions, policy, now):
        counts.deleted[rule.value] += 1
        due_ids.add(obligation_id)
    default, by_country = _answer_cutoffs(policy, now)
    with sessions() as s:
        counts.deleted[Rule.exposure_answer.value] = store.count_exposure_answers(s, default=default,
                                                                                  by_country=by_country)
        counts.deleted[Rule.report_file.value] = len(store.report_files(s, cutoff=policy.cutoff(Rule.report_file, now)))
        held = _consents_until(policy, now)
        forgotten = store.count_forgettable_persons(s, now=now, consents_until=held)
        # Persons whose every obligation is due, and who hold no consent or ban: forgotten once those go.
        named = sorted(store.persons_named(s, sorted(due_ids)))
        left = store.obligations_naming(s, named)
        freed = [p for p in named if left[p] <= due_ids]
        forgotten += len(store.persons_without_holds(s, freed, now=now, consents_until=held))
        counts.deleted[PERSONS] = forgotten
        events_cutoff = policy.cutoff(Rule.access_event, now)
        counts.access_events_past_period = store.count_access_events(s, cutoff=events_cutoff)
        keys, linked = pseudonym_store.count_expired(s, cutoff=events_cutoff)
        counts.deleted[Rule.access_event.value], counts.access_events_pseudonymised = keys, linked
        # Only those due now (a person forgotten by this run loses theirs at the run, not counted here).
        counts.deleted[NOTICE_ADDRESSES] = len(set(notice_store.expired_unconfirmed(s, before=now, limit=10**9))
                                               | set(notice_store.unlinked(s, limit=10**9)))
    return counts


def _noop(what: str, n: int) -> None:
    return None


def run(sessions: sessionmaker[Session], policy: Policy, *, now: datetime, progress: Progress = _noop,
        batch: int = BATCH) -> Counts | None:
    """Delete everything due at `now`, in transactions of up to `batch` things, each thing whole; None if
    another run holds the lock. `progress(what, how many so far)` is called after each commit."""
    with sessions.begin() as guard:  # held to the end of the run (PostgreSQL: an advisory lock)
        if not store.try_lock_retention(guard):
            return None
        return _run(sessions, policy, now=now, progress=progress, batch=batch)


def _delete_obligations(sessions: sessionmaker[Session], policy: Policy, now: datetime, ids: list[str],
                        counts: Counts, progress: Progress) -> None:
    """One transaction: lock these (once due) obligations, decide again on what is committed now, delete
    those still due, whole."""
    with sessions.begin() as s:
        decided = [(row.id, due(_ended(row), policy, now)) for row in store.lock_obligations(s, ids)]
        gone = [(i, rule) for i, rule in decided if rule is not None]  # the others changed: a report came first
        store.delete_obligations(s, [i for i, _ in gone])
    for _, rule in gone:
        counts.deleted[rule.value] += 1
    if gone:
        progress("obligations", sum(counts.deleted[r.value] for r in OBLIGATION_RULES))


def _run(sessions: sessionmaker[Session], policy: Policy, *, now: datetime, progress: Progress, batch: int) -> Counts:
    counts = Counts(now=now)
    page: list[str] = []
    for obligation_id, _ in _due_obligations(sessions, policy, now):  # read page by page, as it deletes
        page.append(obligation_id)
        if len(page) == batch:
            _delete_obligations(sessions, policy, now, page, counts, progress)
            page = []
    if page:
        _delete_obligations(sessions, policy, now, page, counts, progress)

    default, by_country = _answer_cutoffs(policy, now)
    while True:
        with sessions.begin() as s:
            n = store.delete_exposure_answers(s, default=default, by_country=by_country, limit=batch)
        counts.deleted[Rule.exposure_answer.value] += n
        if n:
            progress(Rule.exposure_answer.value, counts.deleted[Rule.exposure_answer.value])
        if n < batch:
            break

    cutoff = policy.cutoff(Rule.report_file, now)
    with sessions() as s:
        report_ids = store.report_files(s, cutoff=cutoff)
    for report_id in report_ids:
        with sessions.begin() as s:
            if not store.delete_report_file(s, report_id, cutoff=cutoff):
                continue
        counts.deleted[Rule.report_file.value] += 1
        progress(Rule.report_file.value, counts.deleted[Rule.report_file.value])

    held = _consents_until(policy, now)
    after = ""
    while True:
        with sessions() as s:
            ids = store.forgettable_persons(s, now=now, consents_until=held, after_id=after, limit=batch)
        if ids:
            with sessions.begin() as s:
                counts.deleted[PERSONS] += store.forget_persons(s, ids, now=now, consents_until=held)
            progress(PERSONS, counts.deleted[PERSONS])
        if len(ids) < batch:
            break
        after = ids[-1]

    # Access events past their period: their month's pseudonym is destroyed, each batch one transaction.
    events_cutoff = policy.cutoff(Rule.access_event, now)
    while True:
        with sessions.begin() as s:
            keys, linked = pseudonym_store.delete_expired(s, cutoff=events_cutoff, limit=batch)
        counts.deleted[Rule.access_event.value] += keys
        counts.access_events_pseudonymised += linked
        if keys:
            progress(Rule.access_event.value, counts.deleted[Rule.access_event.value])
        if keys < batch:
            break

    # Notice addresses: after persons and pseudonyms, so a person forgotten above loses theirs in this run.
    while True:
        with sessions.begin() as s:
            ids = sorted(set(notice_store.expired_unconfirmed(s, before=now, limit=batch))
                         | set(notice_store.unlinked(s, limit=batch)))
            n = notice_store.delete_subscriptions(s, ids)
        counts.deleted[NOTICE_ADDRESSES] += n
        if n:
            progress(NOTICE_ADDRESSES, counts.deleted[NOTICE_ADDRESSES])
        if len(ids) < batch:
            break

    with sessions() as s:
        counts.access_events_past_period = store.count_access_events(s, cutoff=events_cutoff)
    counts.feed_events, counts.webhook_deliveries = _delete_told(sessions, policy, now, batch)
    return counts


def _delete_told(sessions: sessionmaker[Session], policy: Policy, now: datetime, batch: int) -> tuple[int, int]:
    """The feed's events past REGISTER_EVENT_FEED_DAYS, and finished webhook deliveries past theirs."""
    found = [0, 0]
    for i, (delete, days) in enumerate(((outbox_store.delete_older_than, policy.event_feed_days),
                                        (webhook_store.delete_finished_before, policy.webhook_delivery_days))):
        while True:
            with sessions.begin() as s:
                n = delete(s, now - timedelta(days=days), limit=batch)
            found[i] += n
            if n < batch:
                break
    return found[0], found[1]


@contextmanager
def operator_sessions(settings: Settings) -> Iterator[sessionmaker[Session]]:
    """Sessions for one operator command (`register retention ...`), the engine disposed after it."""
    engine = make_engine(settings.resolved_database_url, pool_size=2)
    try:
        yield make_sessionmaker(engine)
    finally:
        engine.dispose()


class _Stopped(Exception):
    pass


class RetentionJob:
    """The server's background retention: `run` every `interval` seconds (the first after one interval).
    Several server processes may each have one: the lock lets one run at a time, and the others skip."""

    def __init__(self, sessions: sessionmaker[Session], policy: Policy, interval: float,
                 clock: Callable[[], datetime] = utcnow) -> None:  # fmt: skip
        self.sessions, self.policy, self.interval, self.clock = sessions, policy, interval, clock
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="retention", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _check(self, what: str, n: int) -> None:
        if self._stop.is_set():
            raise _Stopped

    def run_once(self) -> Counts | None:
        try:
            counts = run(self.sessions, self.policy, now=self.clock(), progress=self._check)
        except _Stopped:  # the server is stopping: what was deleted is whole; the next run goes on
            return None
        if counts is not None:
            log.info("retention run", extra={"deleted": counts.deleted})
        return counts

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.run_once()
            except Exception:  # noqa: BLE001 - the next pass retries; each deletion is whole or not at all
                log.exception("retention run failed; will retry")
