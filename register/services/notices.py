"""Notices to persons (SPEC.md, "Notices"): the person chooses an address, which events and how often;
the register tells them of each lookup (or in a daily digest) by e-mail, after the lookup committed.

- `put`/`get`/`delete` are the person's own (`/v1/me/notifications` and the page /app/notifications): the
  address is kept only as ciphertext bound to its row; a new address is unconfirmed and gets one mail, the
  confirmation link. Only a POST of the token confirms it (a mail scanner that fetches the link turns
  nothing on).
- `Notifier.collect` reads the access events the log integrator has numbered since its cursor and queues a
  notice for each lookup of a subscribed person, moving the cursor in the same transaction: across
  restarts nothing is queued twice or skipped. It never writes on the lookup's own path.
- `Notifier.deliver` sends what is due over SMTP; a notice leaves the queue only when the server accepted
  it. A server down or refusing moves the next attempt on with backoff (up to an hour), without end.

Mail texts are composed by a `Composer` the face hands in (register/web/notice_mail.py: the pages'
catalogues); they name the institution and purpose and link to the pages, and never carry the identity
number or any amount.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import secrets
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from sqlalchemy.orm import Session, sessionmaker

from register.crypto.fields import FieldCipher
from register.domain.permission import Principal
from register.errors import InvalidInput, NotFound
from register.services.events import record_event
from register.services.mail import Mail, MailError, SmtpMailer
from register.storage import notifications as store
from register.storage import outbox
from register.storage.event_tables import OutboxCursor
from register.storage.notice_tables import Notice, NotificationSubscription
from register.storage.types import utcnow

log = logging.getLogger("register.notices")

EVENTS = ("lookup", "consent", "dispute", "credit_ban")
WIRED = frozenset(EVENTS)  # lookups from the access log; consents, disputes and credit bans from the outbox
DIGESTS = ("none", "daily")
PAGES = {"lookup": "/app/who-looked", "consent": "/app/consents", "dispute": "/app/disputes",
         "credit_ban": "/app/credit-ban"}
CONFIRM_DAYS = 7
RESEND_AFTER = timedelta(minutes=10)
MAX_BACKOFF = 3600.0
LEASE = timedelta(minutes=5)
# The AAD names the column itself, as every encrypted column's does: a field-key rotation re-encrypts these
# (storage.keys.ENCRYPTED) with the same table, column and row id.
TABLE, EMAIL, BODY = "notification_subscriptions", "email_enc", "body_enc"
_EMAIL = re.compile(r"^[^@\s<>\"',;()\[\]\\]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$")


# The language of a person's notices when they choose none: their identity's country's, as the pages'
# `register.web.i18n.language_of_country` (a test keeps the two the same; services cannot import the pages).
COUNTRY_LANGUAGES = {"SE": "sv", "FI": "fi", "NO": "nb", "PL": "pl"}


def default_language(country: str | None) -> str:
    return COUNTRY_LANGUAGES.get(country or "", "en")


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def check_email(email: str) -> str:
    email = email.strip()
    if len(email) > 254 or not _EMAIL.match(email):
        raise InvalidInput("not an e-mail address", code="invalid_email")
    return email


def _events(events: list[str]) -> str:
    unknown = sorted(set(events) - set(EVENTS))
    if unknown:
        raise InvalidInput(f"unknown events: {', '.join(unknown)}; known: {', '.join(EVENTS)}", code="invalid_events")
    return ",".join(e for e in EVENTS if e in events)


def _encrypt_body(cipher: FieldCipher, notice_id: str, body: dict[str, Any]) -> bytes:
    return cipher.encrypt(json.dumps(body).encode(), table="notices", column=BODY, row_id=notice_id)


def _decrypt_body(cipher: FieldCipher, notice: Notice) -> dict[str, Any]:
    return json.loads(cipher.decrypt(notice.body_enc, table="notices", column=BODY, row_id=notice.id))


def email_of(cipher: FieldCipher, sub: NotificationSubscription) -> str:
    """The address, decrypted: for the person themself and the mail it goes to only; never log it."""
    return cipher.decrypt(sub.email_enc, table=TABLE, column=EMAIL, row_id=sub.id).decode()


def state(cipher: FieldCipher, sub: NotificationSubscription | None, *, waiting: int = 0) -> dict[str, Any]:
    if sub is None:
        return {"enabled": False, "email": None, "events": [], "digest": "none", "language": None,
                "confirmed": False, "confirmed_at": None, "waiting": 0}
    return {"enabled": sub.confirmed_at is not None, "email": email_of(cipher, sub),
            "events": [e for e in sub.events.split(",") if e], "digest": sub.digest, "language": sub.language,
            "confirmed": sub.confirmed_at is not None, "confirmed_at": sub.confirmed_at, "waiting": waiting}


def kept(session: Session, cipher: FieldCipher, *, principal: Principal) -> dict[str, Any] | None:
    """The notice address as what-we-keep shows it, or None: kept while notices are on and the register
    knows the person; an address not confirmed only until its link expires (`kept_until`)."""
    assert principal.subject is not None
    sub = store.subscription_of(session, principal.subject)
    if sub is None:
        return None
    return {"email": email_of(cipher, sub), "confirmed": sub.confirmed_at is not None,
            "kept_until": None if sub.confirmed_at is not None else sub.token_expires_at}


def get(session: Session, cipher: FieldCipher, *, principal: Principal, now: datetime,
        request_id: str | None) -> dict[str, Any]:  # fmt: skip
    assert principal.subject is not None
    sub = store.subscription_of(session, principal.subject)
    record_event(session, principal=principal, action="consumer:notifications:read", now=now, request_id=request_id)
    return state(cipher, sub, waiting=store.waiting_count(session, sub.id) if sub else 0)


def put(session: Session, cipher: FieldCipher, *, principal: Principal, email: str, events: list[str], digest: str,
        language: str, now: datetime, request_id: str | None) -> dict[str, Any]:  # fmt: skip
    """Store the person's choice. A new or changed address is unconfirmed until the link in the one mail
    sent to it is followed and confirmed; the same confirmed address stays confirmed. The same unconfirmed
    address gets a new link at most every RESEND_AFTER (saving again is no way to flood an inbox)."""
    assert principal.subject is not None and principal.national_id is not None
    email, kinds = check_email(email), _events(events)
    if digest not in DIGESTS:
        raise InvalidInput(f"digest must be one of {', '.join(DIGESTS)}", code="invalid_digest")
    sub = store.subscription_of(session, principal.subject)
    if sub is not None and email_of(cipher, sub).lower() != email.lower():
        store.delete_subscriptions(session, [sub.id])  # the old address and what waited for it go
        session.expunge(sub)
        sub = None
    if sub is None:
        sub = NotificationSubscription(id=str(uuid.uuid4()), blind_index=principal.subject, created_at=now,
                                       country=principal.national_id.country, language=language, events=kinds,
                                       digest=digest, updated_at=now)  # fmt: skip
        sub.email_enc = cipher.encrypt(email.encode(), table=TABLE, column=EMAIL, row_id=sub.id)
    sent_at = sub.token_expires_at - timedelta(days=CONFIRM_DAYS) if sub.token_expires_at else None
    token = None
    if sub.confirmed_at is None and (sent_at is None or now - sent_at >= RESEND_AFTER):
        token = secrets.token_urlsafe(32)
        sub.token_hash, sub.token_expires_at = token_hash(token), now + timedelta(days=CONFIRM_DAYS)
    sub.events, sub.digest, sub.language, sub.updated_at = kinds, digest, language, now
    store.save_subscription(session, sub)
    if token is not None:
        store.delete_waiting(session, sub.id, kind="confirm")  # an older link, not sent yet, would not work
        notice_id = str(uuid.uuid4())
        store.add_notice(session, {"id": notice_id, "subscription_id": sub.id, "kind": "confirm", "event_id": None,
                                   "body_enc": _encrypt_body(cipher, notice_id, {"token": token}), "attempts": 0,
                                   "next_attempt_at": now, "created_at": now})  # fmt: skip
    record_event(session, principal=principal, action="consumer:notifications:write", now=now, request_id=request_id,
                 details={"events": kinds.split(",") if kinds else [], "digest": digest})
    return state(cipher, sub, waiting=store.waiting_count(session, sub.id))


def delete(session: Session, *, principal: Principal, now: datetime, request_id: str | None) -> None:
    """Turn notices off: the address and every notice still waiting are deleted."""
    assert principal.subject is not None
    sub = store.subscription_of(session, principal.subject)
    if sub is None:
        raise NotFound("no notices are set up")
    store.delete_subscriptions(session, [sub.id])
    record_event(session, principal=principal, action="consumer:notifications:delete", now=now, request_id=request_id)


def pending_confirmation(session: Session, *, token: str, now: datetime) -> bool:
    """Whether this token confirms an address now (the page shows its button or says the link is spent).
    Reads only."""
    sub = store.subscription_by_token(session, token_hash(token)) if token else None
    return sub is not None and sub.token_expires_at is not None and sub.token_expires_at > now


def confirm(session: Session, *, token: str, now: datetime) -> NotificationSubscription:
    """Confirm the address the token was sent to; the token is spent. NotFound for an unknown, spent or
    expired token."""
    sub = store.subscription_by_token(session, token_hash(token), lock=True) if token else None
    if sub is None or sub.token_expires_at is None or sub.token_expires_at <= now:
        raise NotFound("this confirmation link is unknown, used or expired", code="invalid_confirmation")
    sub.confirmed_at, sub.token_hash, sub.token_expires_at, sub.updated_at = now, None, None, now
    store.save_subscription(session, sub)
    return sub


# --- the notifier -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Item:
    """One thing to tell (a lookup), as a mail or a digest line says it."""

    institution: str
    purpose: str | None
    outcome: str
    occurred_at: datetime
    type: str = "lookup"  # or an outbox event type: consent.given, dispute.opened, credit_ban.set, ...


class Composer(Protocol):
    def confirmation(self, *, language: str, link: str) -> tuple[str, str]: ...

    def notice(self, *, language: str, country: str, items: list[Item], link: str) -> tuple[str, str]: ...


def next_digest(at: datetime) -> datetime:
    """When a daily digest holding something that happened at `at` is sent: the next midnight, UTC."""
    day = at.astimezone(UTC).date() + timedelta(days=1)
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def backoff(attempts: int, base: float) -> timedelta:
    return timedelta(seconds=min(base * 2 ** min(attempts, 20), MAX_BACKOFF))


class Notifier:
    def __init__(self, sessions: sessionmaker[Session], cipher: FieldCipher, mailer: SmtpMailer, composer: Composer,
                 *, public_url: str, retry_seconds: float = 30.0, clock: Callable[[], datetime] = utcnow,
                 batch: int = 500) -> None:  # fmt: skip
        self.sessions, self.cipher, self.mailer, self.composer = sessions, cipher, mailer, composer
        self.public_url, self.retry_seconds, self.clock, self.batch = public_url.rstrip("/"), retry_seconds, clock, batch

    def collect(self) -> int:
        """Queue notices for the lookups the log numbered since the cursor; returns how many were queued."""
        queued = 0
        while True:
            with self.sessions.begin() as s:
                position = store.lock_cursor(s)
                upto = store.last_leaf_after(s, position, self.batch)
                if upto is None:
                    return queued
                for row in store.lookups_for_subscribers(s, after=position, upto=upto):
                    notice_id = str(uuid.uuid4())
                    body = {"institution": row.institution or "", "purpose": row.purpose, "outcome": row.outcome,
                            "occurred_at": row.occurred_at.isoformat()}
                    due = next_digest(row.occurred_at) if row.digest == "daily" else row.occurred_at
                    store.add_notice(s, {"id": notice_id, "subscription_id": row.subscription_id, "kind": "lookup",
                                         "event_id": row.event_id, "body_enc": _encrypt_body(self.cipher, notice_id, body),
                                         "attempts": 0, "next_attempt_at": due, "created_at": self.clock()})  # fmt: skip
                    queued += 1
                store.move_cursor(s, upto)

    def collect_changes(self) -> int:
        """Queue notices for the outbox's changes (consents, disputes, credit bans) about subscribed persons,
        as a consumer of its own with its own cursor (storage.outbox); returns how many were queued."""
        queued = 0
        while True:
            now = self.clock()
            with self.sessions.begin() as s:
                if outbox.take_cursor(s, store.OUTBOX_CONSUMER, now=now) is None:
                    return queued  # another notifier holds it and is moving it on
                after = int(s.get(OutboxCursor, store.OUTBOX_CONSUMER).last_seq)
                rows, last = store.outbox_for_subscribers(s, after=after, limit=self.batch)
                if last is None:
                    return queued
                for row in rows:
                    notice_id = str(uuid.uuid4())
                    body = {"institution": row["institution"], "purpose": row["data"].get("purpose"),
                            "outcome": row["data"].get("outcome", "ok"), "type": row["type"],
                            "occurred_at": row["occurred_at"].isoformat()}
                    due = next_digest(row["occurred_at"]) if row["digest"] == "daily" else row["occurred_at"]
                    store.add_notice(s, {"id": notice_id, "subscription_id": row["subscription_id"],
                                         "kind": row["type"].split(".")[0], "event_id": row["event_id"],
                                         "body_enc": _encrypt_body(self.cipher, notice_id, body), "attempts": 0,
                                         "next_attempt_at": due, "created_at": now})  # fmt: skip
                    queued += 1
                outbox.move_cursor(s, store.OUTBOX_CONSUMER, last_seq=last, now=now)

    def _mails(self, claimed: list[tuple[Notice, NotificationSubscription]]) -> list[tuple[list[str], Mail]]:
        """The mails to send for the claimed notices: a confirmation each, a lookup each, or one digest of a
        subscription's due lookups."""
        out: list[tuple[list[str], Mail]] = []
        digests: dict[str, list[tuple[Notice, NotificationSubscription]]] = {}
        for notice, sub in claimed:
            to = email_of(self.cipher, sub)
            body = _decrypt_body(self.cipher, notice)
            if notice.kind == "confirm":
                url = f"{self.public_url}/app/notifications/confirm?token={body['token']}"
                subject, text = self.composer.confirmation(language=sub.language, link=url)
            elif sub.digest == "daily":
                digests.setdefault(sub.id, []).append((notice, sub))
                continue
            else:
                item = _item(body)
                subject, text = self.composer.notice(language=sub.language, country=sub.country, items=[item],
                                                     link=self._link([item]))
            out.append(([notice.id], Mail(to=to, subject=subject, text=text, language=sub.language)))
        for group in digests.values():
            sub = group[0][1]
            items = sorted((_item(_decrypt_body(self.cipher, n)) for n, _ in group), key=lambda i: i.occurred_at)
            subject, text = self.composer.notice(language=sub.language, country=sub.country, items=items,
                                                 link=self._link(items))
            out.append(([n.id for n, _ in group],
                        Mail(to=email_of(self.cipher, sub), subject=subject, text=text, language=sub.language)))
        return out

    def _link(self, items: list[Item]) -> str:
        """The page a notice links to: the one showing what it tells of (the overview for a mixed digest)."""
        pages = {PAGES.get(i.type.split(".")[0], "/app/") for i in items}
        return self.public_url + (pages.pop() if len(pages) == 1 else "/app/")

    def deliver(self) -> tuple[int, int]:
        """Send what is due; (mails sent, mails kept for a later attempt)."""
        sent = kept = 0
        while True:
            now = self.clock()
            with self.sessions.begin() as s:
                claimed = store.claim_due(s, now=now, lease_until=now + LEASE, limit=self.batch)
                for n, _ in claimed:
                    s.expunge(n)
            if not claimed:
                return sent, kept
            mails = self._mails(claimed)
            attempts = {n.id: n.attempts for n, _ in claimed}
            try:
                results = self.mailer.send([m for _, m in mails])
                error = "refused"
            except MailError as exc:
                results, error = [False] * len(mails), str(exc)
            done = [i for (ids, _), ok in zip(mails, results, strict=True) if ok for i in ids]
            failed = [ids for (ids, _), ok in zip(mails, results, strict=True) if not ok]
            with self.sessions.begin() as s:
                store.delete_notices(s, done)
                for ids in failed:
                    at = self.clock() + backoff(attempts[ids[0]], self.retry_seconds)
                    store.retry_notices(s, ids, at=at, error=error)
            sent, kept = sent + len(mails) - len(failed), kept + len(failed)
            if failed:
                log.warning("notices not sent, will retry", extra={"kept": len(failed), "error": error})
                return sent, kept
            if len(claimed) < self.batch:
                return sent, kept

    def run_once(self) -> tuple[int, int, int]:
        """(notices queued, mails sent, mails kept for later)."""
        queued = self.collect() + self.collect_changes()
        sent, kept = self.deliver() if self.mailer.configured else (0, 0)
        return queued, sent, kept


def _item(body: dict[str, Any]) -> Item:
    return Item(institution=body["institution"], purpose=body.get("purpose"), outcome=body["outcome"],
                occurred_at=datetime.fromisoformat(body["occurred_at"]), type=body.get("type", "lookup"))


class NoticeWorker:
    """The server's background notifier: `run_once` every `interval` seconds until stopped. Several
    server processes may each run one: the cursor's lock and the claimed rows keep them apart."""

    def __init__(self, notifier: Notifier, interval: float) -> None:
        self.notifier, self.interval = notifier, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="notices", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.notifier.run_once()
            except Exception:  # noqa: BLE001 - the next pass retries; nothing leaves the queue unsent
                log.exception("notifier pass failed; will retry")


def pending(sessions: sessionmaker[Session], *, now: datetime) -> dict[str, int]:
    """What waits to be sent (for the operator: `register notices status`); no address or content."""
    with sessions() as s:
        total, due, failed = store.pending_counts(s, now=now)
    return {"waiting": total, "due": due, "failed_at_least_once": failed}
