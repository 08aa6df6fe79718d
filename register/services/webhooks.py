"""Institutions' webhooks: registration, secret rotation, the deliveries list, and the outbox consumer that
delivers events to them signed per Standard Webhooks (https://www.standardwebhooks.com).

Each delivery is a POST of `{"id", "seq", "type", "timestamp", "data"}` with the headers `webhook-id`
(the event's id: the same on every retry), `webhook-timestamp` (Unix seconds of this attempt) and
`webhook-signature`: `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`, keyed by the secret's bytes
(`whsec_<base64>`). For 24 hours after a rotation the previous secret signs too (two signatures,
space-separated), so a receiver can switch secrets without losing a delivery.

Server-side request forgery: in production a URL must be https and every address its host resolves to
must be public (not loopback, private, link-local, multicast, reserved, shared or unspecified); in
development http and loopback are allowed too. The check runs when the webhook is registered and again
at every delivery, which then connects to the very address it checked (TLS still verifies the name), so a
host that resolves to a public address at registration and to an internal one later (DNS rebinding) is
refused. Redirects are not followed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import json
import os
import random
import socket
import uuid
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
from sqlalchemy.orm import Session, sessionmaker

from register.crypto.fields import FieldCipher
from register.domain.permission import Principal
from register.errors import InvalidInput, NotFound
from register.storage import outbox
from register.storage import webhooks as store
from register.storage.event_tables import OutboxEvent, Webhook

TABLE = "webhooks"
ROTATION_OVERLAP = timedelta(hours=24)
CLAIM = 50  # deliveries claimed per transaction
Resolver = Callable[[str, int], list[str]]


# --- signing ---------------------------------------------------------------------------------------


def new_secret() -> str:
    return "whsec_" + base64.b64encode(os.urandom(24)).decode()


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """One `v1,<signature>` for this secret."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    mac = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def _secrets(w: Webhook, cipher: FieldCipher, now: datetime) -> list[str]:
    out = [cipher.decrypt(w.secret_enc, table=TABLE, column="secret_enc", row_id=w.id).decode()]
    if w.previous_secret_enc is not None and w.previous_until is not None and now < w.previous_until:
        out.append(cipher.decrypt(w.previous_secret_enc, table=TABLE, column="previous_secret_enc",
                                  row_id=w.id).decode())
    return out


# --- where a webhook may point ---------------------------------------------------------------------


def system_resolver(host: str, port: int) -> list[str]:
    return sorted({info[4][0] for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)})


def _refusal(ip: ipaddress.IPv4Address | ipaddress.IPv6Address, production: bool) -> str | None:
    mapped = getattr(ip, "ipv4_mapped", None)
    if mapped is not None:
        ip = mapped
    if ip.is_loopback:
        return None if not production else "a loopback address"
    if ip.is_multicast:
        return "a multicast address"
    if ip.is_link_local:
        return "a link-local address"
    if ip.is_unspecified or ip.is_reserved:
        return "a reserved address"
    if ip.is_private or not ip.is_global:
        return "a private address"
    return None


def check_url(url: str, *, production: bool, resolve: Resolver = system_resolver) -> tuple[str, int, str]:
    """Refuse a URL a webhook may not point at (see the module docstring); else (host, port, the address to
    connect to). Raises InvalidInput with code `webhook_url_refused`."""

    def refuse(why: str) -> InvalidInput:
        return InvalidInput(f"the webhook URL is refused: {why}", code="webhook_url_refused",
                            errors=[{"loc": ["body", "url"], "msg": why}])

    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise refuse("not a URL") from None
    if not parts.scheme:
        raise refuse("not an absolute URL (such as https://lender.example/hooks)")
    schemes = ("https",) if production else ("https", "http")
    if parts.scheme not in schemes:
        raise refuse("only https" if production else "only http or https")
    if not parts.hostname or parts.username is not None or parts.password is not None:
        raise refuse("a host is needed, and no user name or password")
    host, port = parts.hostname, port or (443 if parts.scheme == "https" else 80)
    try:
        addresses = [ipaddress.ip_address(host)] if _is_ip(host) else [
            ipaddress.ip_address(a.split("%")[0]) for a in resolve(host, port)]
    except (OSError, ValueError):
        raise refuse("the host does not resolve") from None
    if not addresses:
        raise refuse("the host does not resolve")
    for ip in addresses:
        why = _refusal(ip, production)
        if why is not None:
            raise refuse(f"the host resolves to {why}")
    return host, port, str(addresses[0])


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return False


# --- the institution's requests --------------------------------------------------------------------


def _check_events(events: list[str]) -> list[str]:
    """The types or prefixes an institution can receive; a person's own events (a credit ban) are refused
    by name, since no webhook would ever be sent one."""
    known = set(outbox.INSTITUTION_TYPES) | set(outbox.INSTITUTION_PREFIXES)
    person_only = set(outbox.PERSON_ONLY_TYPES) | {t.split(".")[0] for t in outbox.PERSON_ONLY_TYPES}
    theirs = [e for e in events if e in person_only]
    bad = [e for e in events if e not in known and e not in person_only]
    if not events:
        raise InvalidInput("name at least one event type", code="invalid_events",
                           errors=[{"loc": ["body", "events"], "msg": "name at least one event type"}])
    if theirs:
        why = (f"{', '.join(theirs)}: these events go only to the person (a credit ban is theirs alone), "
               "never to an institution")
        raise InvalidInput(why, code="invalid_events", errors=[{"loc": ["body", "events"], "msg": why}])
    if bad:
        raise InvalidInput(f"unknown event types: {', '.join(bad)}", code="invalid_events",
                           errors=[{"loc": ["body", "events"], "msg": "unknown event type"}])
    return sorted(set(events))


def matches(patterns: list[str], type_: str) -> bool:
    """An event type is wanted if named, or if its prefix (`consent` for `consent.given`) is."""
    return type_ in patterns or type_.split(".")[0] in patterns


def create_webhook(session: Session, cipher: FieldCipher, *, principal: Principal, url: str, events: list[str],
                   production: bool, now: datetime, resolve: Resolver = system_resolver) -> tuple[Webhook, str]:
    assert principal.institution_id is not None
    check_url(url, production=production, resolve=resolve)
    w_id, secret = str(uuid.uuid4()), new_secret()
    w = store.add_webhook(session, Webhook(
        id=w_id, institution_id=principal.institution_id, url=url, events=_check_events(events),
        secret_enc=cipher.encrypt(secret.encode(), table=TABLE, column="secret_enc", row_id=w_id), created_at=now))
    return w, secret


def _mine(session: Session, principal: Principal, webhook_id: str, *, for_update: bool = False) -> Webhook:
    w = store.get_webhook(session, webhook_id, institution_id=principal.institution_id, for_update=for_update)
    if w is None:
        raise NotFound("no webhook of yours with that id")
    return w


def rotate_secret(session: Session, cipher: FieldCipher, *, principal: Principal, webhook_id: str,
                  now: datetime) -> tuple[Webhook, str]:
    """A new secret; the one it replaces keeps signing (beside it) for 24 hours."""
    w = _mine(session, principal, webhook_id, for_update=True)
    old = cipher.decrypt(w.secret_enc, table=TABLE, column="secret_enc", row_id=w.id)
    secret = new_secret()
    w.secret_enc = cipher.encrypt(secret.encode(), table=TABLE, column="secret_enc", row_id=w.id)
    w.previous_secret_enc = cipher.encrypt(old, table=TABLE, column="previous_secret_enc", row_id=w.id)
    w.previous_until = now + ROTATION_OVERLAP
    session.flush()
    return w, secret


def list_webhooks(session: Session, *, principal: Principal) -> list[Webhook]:
    assert principal.institution_id is not None
    return store.webhooks_of(session, [principal.institution_id])


def get_webhook(session: Session, *, principal: Principal, webhook_id: str) -> Webhook:
    """The institution's own webhook; another's is NotFound, as if it did not exist."""
    return _mine(session, principal, webhook_id)


def delete_webhook(session: Session, *, principal: Principal, webhook_id: str) -> Webhook:
    w = _mine(session, principal, webhook_id, for_update=True)
    store.delete_webhook(session, w.id)
    return w


def webhook_deliveries(session: Session, *, principal: Principal, webhook_id: str, state: str | None,
                       before: tuple[datetime, str] | None, limit: int) -> list[Any]:
    w = _mine(session, principal, webhook_id)
    return store.deliveries(session, webhook_id=w.id, state=state, before=before, limit=limit)


# --- delivering: the outbox consumer ---------------------------------------------------------------


@dataclass
class Backoff:
    """Exponential backoff with jitter: attempt n (1, 2, ...) failed, wait base * 2^(n-1), at most `cap`,
    times a random factor in [0.5, 1] so that receivers coming back are not hit all at once."""

    base: float = 5.0
    cap: float = 6 * 3600.0
    max_attempts: int = 16

    def delay(self, attempts: int) -> timedelta:
        seconds = min(self.cap, self.base * 2 ** (attempts - 1))
        return timedelta(seconds=seconds * random.uniform(0.5, 1.0))  # noqa: S311 - jitter, not a secret


def body_of(event: OutboxEvent) -> bytes:
    return json.dumps({"id": event.id, "seq": event.seq, "type": event.type,
                       "timestamp": event.occurred_at.isoformat().replace("+00:00", "Z"), "data": event.data},
                      separators=(",", ":"), sort_keys=True).encode()


class WebhookConsumer:
    """Delivers the outbox to institutions' webhooks (services.dispatch.Consumer)."""

    name = "webhooks"

    def __init__(self, cipher: FieldCipher, *, production: bool, timeout: float = 10.0,
                 backoff: Backoff | None = None, resolve: Resolver = system_resolver) -> None:
        self.cipher, self.production, self.timeout = cipher, production, timeout
        self.backoff, self.resolve = backoff or Backoff(), resolve

    def due(self, session: Session, *, now: datetime) -> bool:
        return store.any_due(session, now=now)

    def take(self, session: Session, events: list[OutboxEvent], *, now: datetime) -> None:
        """One pending delivery per event and webhook of its institution that wants its type."""
        hooks: dict[str, list[Webhook]] = {}
        for w in store.webhooks_of(session, {e.institution_id for e in events if e.institution_id}):
            hooks.setdefault(w.institution_id, []).append(w)
        store.add_deliveries(session, [
            {"id": str(uuid.uuid4()), "webhook_id": w.id, "institution_id": w.institution_id, "event_seq": e.seq,
             "event_id": e.id, "event_type": e.type, "state": store.PENDING, "attempts": 0, "next_attempt_at": now,
             "created_at": now}
            for e in events for w in hooks.get(e.institution_id or "", []) if matches(w.events, e.type)
        ])  # fmt: skip

    def deliver(self, sessions: sessionmaker[Session], *, now: datetime) -> int:
        """Send every delivery due at `now`; how many were attempted."""
        lease = timedelta(seconds=self.timeout + 30)
        total = 0
        # The HTTP client is made for the first delivery only: making one costs ~20 ms of CPU (its TLS context),
        # which each pass of a busy register's dispatcher paid, with nothing to deliver (BENCHMARKS.md, twelfth round).
        with ExitStack() as opened:
            http: httpx.Client | None = None
            while True:
                with sessions.begin() as s:
                    claimed = store.claim_due(s, now=now, limit=CLAIM,
                                              lease_until=lambda n: now + max(lease, self.backoff.delay(n)))
                    jobs = [self._job(s, d, now) for d in claimed]
                for job in jobs:
                    outcome: tuple[int | None, str | None] = (None, job["error"])
                    if job["error"] is None:
                        if http is None:
                            http = opened.enter_context(httpx.Client(timeout=self.timeout, follow_redirects=False))
                        outcome = self._send(http, job, now)
                    with sessions.begin() as s:
                        self._record(s, job, outcome, now)
                total += len(jobs)
                if len(claimed) < CLAIM:
                    return total

    def _job(self, session: Session, d: Any, now: datetime) -> dict[str, Any]:
        job: dict[str, Any] = {"id": d.id, "attempts": d.attempts, "event_id": d.event_id, "error": None}
        w = store.get_webhook(session, d.webhook_id)
        event = outbox.events_by_seq(session, [d.event_seq]).get(d.event_seq)
        if w is None or event is None:
            job["error"] = "the webhook was deleted" if w is None else "the event is past the feed's retention"
            job["final"] = True
            return job
        job.update(url=w.url, body=body_of(event), secrets=_secrets(w, self.cipher, now))
        return job

    def _send(self, http: httpx.Client, job: dict[str, Any], now: datetime) -> tuple[int | None, str | None]:
        try:
            host, port, address = check_url(job["url"], production=self.production, resolve=self.resolve)
        except InvalidInput as exc:
            return None, exc.detail
        parts = urlsplit(job["url"])
        pinned = f"[{address}]" if ":" in address else address
        target = urlunsplit((parts.scheme, f"{pinned}:{port}", parts.path or "/", parts.query, ""))
        ts = int(now.timestamp())
        headers = {
            "content-type": "application/json", "user-agent": "register-webhooks/1", "webhook-id": job["event_id"],
            "webhook-timestamp": str(ts), "host": parts.netloc.rsplit("@", 1)[-1],
            "webhook-signature": " ".join(sign(s, job["event_id"], ts, job["body"]) for s in job["secrets"]),
        }  # fmt: skip
        try:  # the status is all that counts: the answer's body is never read (a receiver cannot stall us with it)
            with http.stream("POST", target, content=job["body"], headers=headers,
                             extensions={"sni_hostname": host}) as r:
                status = r.status_code
        except httpx.TimeoutException:
            return None, "timed out"
        except httpx.HTTPError as exc:
            return None, f"{type(exc).__name__}: could not deliver"
        return status, None if 200 <= status < 300 else f"answered {status}"

    def _record(self, session: Session, job: dict[str, Any], outcome: tuple[int | None, str | None],
                now: datetime) -> None:
        status, error = outcome
        if error is None:
            state, next_at = store.DELIVERED, None
        elif job.get("final") or job["attempts"] >= self.backoff.max_attempts:
            state, next_at = store.DEAD, None
        else:
            state, next_at = store.PENDING, now + self.backoff.delay(job["attempts"])
        store.finish_attempt(session, job["id"], attempts=job["attempts"], state=state, status=status, error=error,
                             now=now, next_attempt_at=next_at)


def consumer_from(settings: Any, cipher: FieldCipher) -> WebhookConsumer:
    """The webhook consumer as the settings describe it (REGISTER_WEBHOOK_*; production from REGISTER_ENV)."""
    return WebhookConsumer(cipher, production=settings.env == "prod", timeout=settings.webhook_timeout_seconds,
                           backoff=Backoff(base=settings.webhook_backoff_seconds,
                                           cap=settings.webhook_backoff_max_seconds,
                                           max_attempts=settings.webhook_max_attempts))
