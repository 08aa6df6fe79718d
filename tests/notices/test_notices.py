"""Notices to persons, end to end through a real SMTP server in this process (aiosmtpd), on both
databases: what a person turns on, what they receive for a lookup, and what they never receive."""

from __future__ import annotations

import re
import socket
import uuid
from collections.abc import Iterator
from datetime import timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest
from aiosmtpd.controller import Controller

from register.domain.identity import parse_national_id
from register.domain.permission import Principal, Role
from register.services import identities
from register.services.events import record_event
from register.services.mail import SmtpMailer
from register.services.notices import Notifier, default_language
from register.storage.notice_tables import NotificationSubscription
from register.web.i18n import COUNTRY_LANGUAGES, language_of_country
from register.web.notice_mail import MailComposer
from tests.factories import debtor, grant, make_person, new_ref, obligation_body

PUBLIC = "https://register.example"


class Inbox:
    """What the SMTP server received: every message, parsed, with its envelope recipients."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], EmailMessage]] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: ANN001, N802 - aiosmtpd's hook
        self.messages.append((list(envelope.rcpt_tos), message_from_bytes(envelope.content, policy=policy.default)))
        return "250 OK"

    def to(self, address: str) -> list[EmailMessage]:
        return [m for rcpt, m in self.messages if address in rcpt]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SmtpServer:
    def __init__(self) -> None:
        self.inbox, self.port = Inbox(), free_port()
        self.controller: Controller | None = None

    def start(self) -> None:
        self.controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self) -> None:
        if self.controller:
            self.controller.stop()
            self.controller = None


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def notifier(app, smtp: SmtpServer) -> Notifier:
    state = app.state.register
    return Notifier(state.sessions, state.cipher, SmtpMailer(host="127.0.0.1", port=smtp.port, sender="register@example"),
                    MailComposer(PUBLIC), public_url=PUBLIC, retry_seconds=1.0, clock=lambda: state.clock())


def integrate(app) -> None:
    state = app.state.register
    state.tlog.run_once(state.sessions)


def borrower(client, data_dir, lender, country="SE"):
    person = make_person(client, data_dir, country)
    r = client.put(f"/v1/obligations/{new_ref()}", json=obligation_body(debtors=[debtor(person)], original_amount=987654,
                                                                        balance=123456), headers=lender.headers)
    assert r.status_code == 201, r.text
    return person, grant(client, person.headers, lender.id, days=60)


def lookup(client, lender, person, consent):
    r = client.post("/v1/exposure", json={"country": person.country, "national_id": person.nid,
                                          "purpose": "credit_application", "consent_id": consent},
                    headers=lender.headers)
    assert r.status_code == 200, r.text
    return r


def subscribe(client, person, email: str, **body) -> dict:
    r = client.put("/v1/me/notifications", json={"email": email, "events": ["lookup"], "digest": "none", **body},
                   headers=person.headers)
    assert r.status_code == 200, r.text
    return r.json()


def token_in(mail: EmailMessage) -> str:
    found = re.search(r"/app/notifications/confirm\?token=([A-Za-z0-9_-]+)", mail.get_content())
    assert found, mail.get_content()
    return found.group(1)


def confirm(client, token: str) -> None:
    page = client.get("/app/notifications/confirm", params={"token": token})
    assert page.status_code == 200
    csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', page.text).group(1)
    r = client.post("/app/notifications/confirm", data={"token": token, "csrf": csrf})
    assert r.status_code == 200, r.text


def subscribed(client, app, notifier, smtp, person, **body) -> str:
    email = f"p-{uuid.uuid4().hex[:10]}@example.org"
    subscribe(client, person, email, **body)
    notifier.run_once()
    [mail] = smtp.inbox.to(email)
    confirm(client, token_in(mail))
    return email


class TestTurningOn:
    def test_an_unconfirmed_address_gets_the_confirmation_and_nothing_else(self, app, client, data_dir, lender,
                                                                          notifier, smtp):
        person, consent = borrower(client, data_dir, lender)
        email = f"p-{uuid.uuid4().hex[:10]}@example.org"
        state = subscribe(client, person, email)
        assert state["confirmed"] is False and state["enabled"] is False and state["email"] == email
        lookup(client, lender, person, consent)
        integrate(app)
        notifier.run_once()
        [mail] = smtp.inbox.to(email)
        assert "/app/notifications/confirm?token=" in mail.get_content() and PUBLIC in mail.get_content()
        assert client.get("/v1/me/notifications", headers=person.headers).json()["confirmed"] is False

    def test_fetching_the_link_alone_turns_nothing_on(self, app, client, data_dir, lender, notifier, smtp):
        person, consent = borrower(client, data_dir, lender)
        email = f"p-{uuid.uuid4().hex[:10]}@example.org"
        subscribe(client, person, email)
        notifier.run_once()
        token = token_in(smtp.inbox.to(email)[0])
        for _ in range(3):  # a mail scanner fetching the link, as often as it likes
            page = client.get("/app/notifications/confirm", params={"token": token})
            assert page.status_code == 200 and 'method="post"' in page.text
            # the token in the address goes nowhere else: no Referer to any link, no cache
            assert page.headers["referrer-policy"] == "no-referrer" and page.headers["cache-control"] == "no-store"
        assert client.get("/v1/me/notifications", headers=person.headers).json()["confirmed"] is False
        # a POST without the page's csrf is refused, and confirms nothing
        assert client.post("/app/notifications/confirm", data={"token": token, "csrf": "0" * 64}).status_code == 403
        assert client.get("/v1/me/notifications", headers=person.headers).json()["confirmed"] is False
        confirm(client, token)
        assert client.get("/v1/me/notifications", headers=person.headers).json()["enabled"] is True
        # the token is spent
        assert client.get("/app/notifications/confirm", params={"token": token}).status_code == 404

    def test_the_address_is_encrypted_at_rest(self, app, client, data_dir, lender):
        person, _ = borrower(client, data_dir, lender)
        email = f"secret-{uuid.uuid4().hex[:10]}@example.org"
        subscribe(client, person, email)
        with app.state.register.sessions() as s:
            rows = s.query(NotificationSubscription).all()
        assert rows and all(email.encode() not in bytes(r.email_enc) for r in rows)

    def test_delete_turns_it_off_and_forgets_the_address(self, app, client, data_dir, lender, notifier, smtp):
        person, consent = borrower(client, data_dir, lender)
        email = subscribed(client, app, notifier, smtp, person)
        assert client.delete("/v1/me/notifications", headers=person.headers).json()["enabled"] is False
        assert client.get("/v1/me/notifications", headers=person.headers).json() == {
            "enabled": False, "email": None, "events": [], "digest": "none", "language": None, "confirmed": False,
            "confirmed_at": None, "waiting": 0}
        lookup(client, lender, person, consent)
        integrate(app)
        notifier.run_once()
        assert len(smtp.inbox.to(email)) == 1  # the confirmation only
        assert client.delete("/v1/me/notifications", headers=person.headers).status_code == 404


class TestLookupNotices:
    def test_a_lookup_sends_exactly_one_notice(self, app, client, data_dir, lender, notifier, smtp):
        person, consent = borrower(client, data_dir, lender)
        email = subscribed(client, app, notifier, smtp, person)
        lookup(client, lender, person, consent)
        integrate(app)
        notifier.run_once()
        notifier.run_once()  # a second pass finds nothing new
        mails = smtp.inbox.to(email)
        assert len(mails) == 2, [m["Subject"] for m in mails]  # the confirmation, and the one notice
        notice = mails[1]
        text = notice.get_content()
        assert lender.name in notice["Subject"] and lender.name in text
        assert "kreditansökan" in text  # the purpose, in the person's language (SE: Swedish)
        assert f"{PUBLIC}/app/who-looked" in text
        assert notice["Content-Language"] == "sv"
        words = " ".join(text.split())  # natural Swedish for an institution the person may not know
        assert "Om du inte känner igen företaget eller myndigheten, kontakta dem" in words
        assert "institutet" not in words

    def test_a_notice_has_neither_identity_number_nor_amounts(self, app, client, data_dir, lender, notifier, smtp):
        person, consent = borrower(client, data_dir, lender)
        email = subscribed(client, app, notifier, smtp, person)
        lookup(client, lender, person, consent)
        integrate(app)
        notifier.run_once()
        raw = smtp.inbox.to(email)[-1].as_string()
        digits = re.sub(r"\D", "", person.nid)
        assert person.nid not in raw and digits not in re.sub(r"\D", "", raw)
        for amount in ("987654", "987 654", "9876,54", "9 876,54", "123456", "1 234,56", "1234,56"):
            assert amount not in raw.replace("\xa0", " ")

    def test_a_rolled_back_lookup_sends_nothing(self, app, client, data_dir, lender, notifier, smtp):
        person, consent = borrower(client, data_dir, lender)
        email = subscribed(client, app, notifier, smtp, person)
        state = app.state.register
        nid = parse_national_id(person.country, person.nid, allow_test=True)
        principal = Principal(role=Role.lender, name=lender.name, institution_id=lender.id)
        with state.sessions() as s:
            s.begin()
            record_event(s, principal=principal, action="exposure:query", now=state.clock(), outcome="granted",
                         subject=identities.blind_index(state.cipher, nid), purpose="credit_application")
            s.flush()
            s.rollback()
        integrate(app)
        notifier.run_once()
        assert len(smtp.inbox.to(email)) == 1  # the confirmation only

    def test_smtp_down_then_up_delivers_without_loss(self, app, client, data_dir, lender, notifier, smtp, clock):
        person, consent = borrower(client, data_dir, lender)
        email = subscribed(client, app, notifier, smtp, person)
        smtp.stop()
        for _ in range(3):
            lookup(client, lender, person, consent)
        integrate(app)
        queued, sent, kept = notifier.run_once()
        assert queued == 3 and sent == 0 and kept >= 1
        clock.advance(seconds=1)
        assert notifier.run_once()[1] == 0  # still down: kept again, with a longer wait
        smtp.start()
        assert notifier.run_once() == (0, 0, 0)  # the backoff has not passed yet
        clock.advance(hours=2)
        notifier.run_once()
        assert len(smtp.inbox.to(email)) == 1 + 3
        notifier.run_once()
        assert len(smtp.inbox.to(email)) == 1 + 3  # and never twice

    def test_a_daily_digest_holds_the_days_lookups_in_one_mail(self, app, client, data_dir, lender, notifier, smtp,
                                                               clock):
        person, consent = borrower(client, data_dir, lender)
        email = subscribed(client, app, notifier, smtp, person, digest="daily")
        lookup(client, lender, person, consent)
        lookup(client, lender, person, consent)
        integrate(app)
        notifier.run_once()
        assert len(smtp.inbox.to(email)) == 1
        clock.advance(days=1)
        notifier.run_once()
        mails = smtp.inbox.to(email)
        assert len(mails) == 2 and mails[1].get_content().count(lender.name) == 2

    @pytest.mark.parametrize("country,lang,words", [("FI", "fi", "luottohakemu"), ("NO", "nb", "kredittsøknad")])
    def test_finnish_and_norwegian_persons_are_told_in_their_language(self, app, client, data_dir, lender, notifier,
                                                                      smtp, country, lang, words):
        person, consent = borrower(client, data_dir, lender, country)
        email = subscribed(client, app, notifier, smtp, person)
        assert client.get("/v1/me/notifications", headers=person.headers).json()["language"] == lang
        lookup(client, lender, person, consent)
        integrate(app)
        notifier.run_once()
        notice = smtp.inbox.to(email)[-1]
        assert notice["Content-Language"] == lang and words in notice.get_content().lower()


def test_the_default_language_is_the_pages_one():
    for country in (*COUNTRY_LANGUAGES, "DK", None):
        assert default_language(country) == language_of_country(country)


class TestChangeNotices:
    """Consents, disputes and credit bans come from the outbox (storage.outbox), read as a consumer of its own."""

    def test_a_credit_ban_set_is_told_once_to_whoever_asked_for_it(self, app, client, data_dir, lender, notifier,
                                                                 smtp):
        person, _ = borrower(client, data_dir, lender)
        email = subscribed(client, app, notifier, smtp, person, events=["credit_ban"])
        assert client.put("/v1/me/credit-ban", json={"reason": "identity_theft"}, headers=person.headers).status_code == 200
        notifier.run_once()
        notifier.run_once()
        mails = smtp.inbox.to(email)
        assert len(mails) == 2 and "kreditspärr" in mails[1].get_content()
        assert f"{PUBLIC}/app/credit-ban" in mails[1].get_content()

    def test_kinds_not_chosen_are_not_told(self, app, client, data_dir, lender, notifier, smtp):
        person, consent = borrower(client, data_dir, lender)
        email = subscribed(client, app, notifier, smtp, person, events=["lookup"])
        assert client.put("/v1/me/credit-ban", json={"reason": "identity_theft"}, headers=person.headers).status_code == 200
        notifier.run_once()
        assert len(smtp.inbox.to(email)) == 1

    def test_a_dispute_opened_names_the_creditor(self, app, client, data_dir, lender, notifier, smtp):
        person, _ = borrower(client, data_dir, lender, "NO")
        email = subscribed(client, app, notifier, smtp, person, events=["dispute"])
        line = client.get("/v1/me/obligations", headers=person.headers).json()["obligations"][0]["id"]
        r = client.post("/v1/me/disputes", json={"obligation": line, "reason": "not_mine", "text": "Not my loan."},
                        headers=person.headers)
        assert r.status_code == 201, r.text
        notifier.run_once()
        mails = smtp.inbox.to(email)
        assert len(mails) == 2 and lender.name in mails[1].get_content() and mails[1]["Content-Language"] == "nb"


class TestChangingTheAddress:
    def test_a_new_address_starts_unconfirmed_and_the_old_one_hears_nothing_more(self, app, client, data_dir, lender,
                                                                                 notifier, smtp):
        person, consent = borrower(client, data_dir, lender)
        old = subscribed(client, app, notifier, smtp, person)
        new = f"p-{uuid.uuid4().hex[:10]}@example.org"
        state = subscribe(client, person, new)
        assert state["email"] == new and state["confirmed"] is False
        lookup(client, lender, person, consent)
        integrate(app)
        notifier.run_once()
        assert len(smtp.inbox.to(old)) == 1  # its confirmation, from before
        assert len(smtp.inbox.to(new)) == 1 and "/app/notifications/confirm?token=" in smtp.inbox.to(new)[0].get_content()

    def test_saving_the_same_confirmed_address_keeps_it_confirmed(self, app, client, data_dir, lender, notifier, smtp):
        person, _ = borrower(client, data_dir, lender)
        email = subscribed(client, app, notifier, smtp, person)
        state = subscribe(client, person, email.upper(), digest="daily")
        assert state["confirmed"] is True and state["digest"] == "daily" and state["waiting"] == 0
        notifier.run_once()
        assert len(smtp.inbox.to(email)) == 1

    @pytest.mark.parametrize("email", ["not-an-address", "a@b", "x@example.org\r\nBcc: y@example.org", "a" * 250 + "@example.org"])
    def test_what_is_not_an_address_is_refused(self, client, data_dir, lender, email):
        person = make_person(client, data_dir)
        r = client.put("/v1/me/notifications", json={"email": email}, headers=person.headers)
        assert r.status_code == 422 and r.headers["content-type"].startswith("application/problem+json")


class TestNoFlooding:
    def test_saving_an_unconfirmed_address_again_sends_no_new_link_for_ten_minutes(self, app, client, data_dir,
                                                                                  notifier, smtp, clock):
        person = make_person(client, data_dir)
        email = f"p-{uuid.uuid4().hex[:10]}@example.org"
        for _ in range(5):
            subscribe(client, person, email)
            notifier.run_once()
        assert len(smtp.inbox.to(email)) == 1
        clock.advance(minutes=11)
        subscribe(client, person, email)
        notifier.run_once()
        first, second = smtp.inbox.to(email)
        # the newest link confirms; the older one is spent
        assert client.get("/app/notifications/confirm", params={"token": token_in(first)}).status_code == 404
        confirm(client, token_in(second))
        assert client.get("/v1/me/notifications", headers=person.headers).json()["confirmed"] is True


def test_the_readme_notices_call_names_the_language_and_the_api_takes_it_as_pasted(client, data_dir):
    """README's PUT /v1/me/notifications body, as pasted, is accepted, and its optional `language` is kept;
    the README names every language the field allows."""
    import json
    import typing
    from pathlib import Path

    from register.api.schemas.me import NotificationsSet

    readme = (Path(__file__).parents[2] / "README.md").read_text()
    call = re.search(r"-X PUT \$R/v1/me/notifications .*?-d '(\{.*?\})'", readme, re.S)
    assert call, "README shows no PUT /v1/me/notifications call"
    body = json.loads(call.group(1))
    assert "language" in body
    allowed = typing.get_args(typing.get_args(NotificationsSet.model_fields["language"].annotation)[0])
    section = readme[readme.index("## Being told of every lookup"):readme.index("## Told, not polling")]
    assert all(f"`{code}`" in section for code in allowed), allowed
    person = make_person(client, data_dir)
    r = client.put("/v1/me/notifications", json=body, headers=person.headers)
    assert r.status_code == 200, r.text
    assert client.get("/v1/me/notifications", headers=person.headers).json()["language"] == body["language"]
