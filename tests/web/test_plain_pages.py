"""What a newcomer reads on their pages, without guessing: times with their zone, which of two debts at one
creditor a dispute or an event is about, no made-up consent on a refused look, one end time for a ban being
lifted (on the overview too), a too-long statement given back with its words counted, the proof in words
before its hashes, and icons that every font can show."""

from __future__ import annotations

import html
import re
from datetime import datetime, timedelta

from register.web.i18n import Formats
from tests.factories import debtor, grant, make_person, obligation_body
from tests.web.pages import sign_in
from tests.web.test_pages import PAGES, look, text

MADE_UP_CONSENT = "00000000-0000-4000-8000-000000000000"
# Signs every common font has (DejaVu, Liberation, Noto, Segoe UI); anything else is drawn (inline SVG).
FONT_SAFE_ICONS = {"✓", "✗", "!", "?", "↻", "–", "○"}


def _report(client, inst, person, ref: str, **overrides) -> str:
    overrides.setdefault("debtors", [debtor(person)])
    r = client.put(f"/v1/obligations/{ref}", json=obligation_body(**overrides), headers=inst.headers)
    assert r.status_code == 201, r.text
    return r.json()["id"]


def _two_cards(client, lender, person) -> tuple[str, str]:
    card = {"kind": "credit_card", "credit_limit": 5_000_000, "original_amount": None, "matures_on": None}
    return (_report(client, lender, person, "CARD-1111", balance=1_000_000, **card),
            _report(client, lender, person, "CARD-2222", balance=2_000_000, **card))


def _my_disputes(client, person) -> dict[str, dict]:
    return {d["obligation"]: d for d in client.get("/v1/me/disputes", headers=person.headers).json()["items"]}


class TestTimes:
    def test_every_time_says_its_zone(self, app, client, lender, person, clock):
        grant(client, person.headers, lender.id)
        page = text(sign_in(app, person).get("/app/consents").text)
        given = re.search(r"Given (.+?) – ", page)
        assert given, page
        assert re.search(r"\b(CET|CEST)$", given.group(1)), f"no time zone in {given.group(1)!r}"

    def test_in_the_persons_own_zone(self, app, client, lender, data_dir):
        finn = make_person(client, data_dir, "FI")
        grant(client, finn.headers, lender.id)
        page = text(sign_in(app, finn).get("/app/consents").text)
        assert re.search(r"Given .+? (EET|EEST) – ", page), page


class TestTwoDebtsAtOneCreditor:
    def test_disputes_name_the_kind_and_the_reference(self, app, client, lender, person):
        one, two = _two_cards(client, lender, person)
        browser = sign_in(app, person)
        for debt in (one, two):
            r = browser.post("/app/disputes", {"debt": debt, "reason": "wrong_amount", "text": "Too high."})
            assert r.status_code == 303, r.text
        page = browser.get("/app/disputes").text
        for ref in ("CARD-1111", "CARD-2222"):
            heading = f"<h2>{html.escape(lender.name)}: Credit card, reference {ref}</h2>"
            assert heading in page, heading
            assert f"Withdraw the dispute<span class=\"visually-hidden\"> ({html.escape(lender.name)}: Credit card, " \
                   f"reference {ref})</span>" in page, "each withdraw button names its own debt"

    def test_the_dispute_form_and_the_debts_name_the_reference(self, app, client, lender, person):
        one, two = _two_cards(client, lender, person)
        browser = sign_in(app, person)
        assert f"{lender.name}: Credit card, reference CARD-2222: SEK 20,000 owed." in text(
            browser.get(f"/app/disputes/new?debt={two}").text)
        debts = text(browser.get("/app/debts").text)
        assert f"{lender.name}: Credit card, reference CARD-1111" in debts
        assert f"{lender.name}: Credit card, reference CARD-2222" in debts

    def test_who_looked_names_the_debt_a_creditor_handled(self, app, client, lender, person):
        one, two = _two_cards(client, lender, person)
        r = client.post("/v1/me/disputes", headers=person.headers,
                        json={"obligation": two, "reason": "repaid", "text": "Paid in May."})
        assert r.status_code == 201, r.text
        r = client.post(f"/v1/disputes/{r.json()['id']}/answer", headers=lender.headers,
                        json={"outcome": "upheld", "explanation": "Not received."})
        assert r.status_code == 200, r.text
        page = text(sign_in(app, person).get("/app/who-looked").text)
        answered = page[page.index(f"{lender.name}: Answered your dispute"):]
        assert answered.index("Which debt Credit card, reference CARD-2222") < answered.index("Proof that this")
        assert "Which debt Credit card, reference CARD-1111" in page, "the report of the other card names it"


class TestRefusedLook:
    def test_only_the_persons_own_consent_is_shown(self, client, lender, browser):
        person = browser.person
        revoked = grant(client, person.headers, lender.id)
        client.delete(f"/v1/consents/{revoked}", headers=person.headers)
        for consent in (MADE_UP_CONSENT, revoked):
            r = client.post("/v1/exposure", headers=lender.headers, json={
                "country": person.country, "national_id": person.nid, "purpose": "credit_application",
                "consent_id": consent})
            assert r.status_code == 403
        page = browser.get("/app/who-looked").text
        refused = [text(e) for e in page.split('<li class="event"') if "status-refused" in e]
        (made_up,) = [e for e in refused if "there was no consent" in e]
        (own,) = [e for e in refused if "revoked" in e]
        assert "Refused : you had revoked the consent" in own and f"Consent {revoked[:8]}" in own
        assert "Refused : there was no consent" in made_up and "Consent used" not in made_up
        assert MADE_UP_CONSENT[:8] not in page and f'href="/app/consents#consent-{revoked}"' in page


class TestBanBeingLifted:
    def test_says_when_it_ends_once_and_the_overview_says_it_too(self, app, client, person, clock):
        browser = sign_in(app, person)
        assert browser.post("/app/credit-ban", {"reason": "identity_theft", "until": ""}).status_code == 303
        browser.post("/app/credit-ban/lift")
        ends = client.get("/v1/me/credit-ban", headers=person.headers).json()["lift_effective_at"]
        shown = text(Formats("en", person.country).datetime(ends))
        assert re.search(r"(CET|CEST)$", shown)
        page = text(browser.get("/app/credit-ban").text)
        assert page.count(shown) == 1, page
        assert "When you lift it" not in page, "a ban being lifted does not last until lifted"
        assert f"Ends {shown}, because you asked to lift it" in page
        overview = text(browser.get("/app/").text)
        assert f"You asked to lift it: it ends at {shown}." in overview

    def test_an_end_date_before_the_lift_is_the_end(self, app, client, person, clock):
        browser = sign_in(app, person)
        day = (clock.now + timedelta(days=3)).date().isoformat()
        assert browser.post("/app/credit-ban", {"reason": "self_control", "until": day}).status_code == 303
        until = datetime.fromisoformat(client.get("/v1/me/credit-ban", headers=person.headers).json()["until"])
        clock.advance(seconds=(until - clock.now - timedelta(minutes=30)).total_seconds())
        browser = sign_in(app, person)
        browser.post("/app/credit-ban/lift")  # takes effect in an hour: after the ban's own end
        lift = client.get("/v1/me/credit-ban", headers=person.headers).json()["lift_effective_at"]
        page = text(browser.get("/app/credit-ban").text)
        assert "You asked to lift the ban." in page and "because you asked to lift it" not in page
        assert text(Formats("en", person.country).datetime(lift)) not in page, "it ends once: on its own date"
        assert "You asked to lift it" not in text(browser.get("/app/").text)


class TestLongStatement:
    def test_over_200_words_comes_back_with_the_text_and_a_word_count(self, app, client, lender, person):
        debt = _report(client, lender, person, "LOAN-77")
        r = client.post("/v1/me/disputes", headers=person.headers,
                        json={"obligation": debt, "reason": "repaid", "text": "Paid."})
        dispute = r.json()["id"]
        client.post(f"/v1/disputes/{dispute}/answer", headers=lender.headers,
                    json={"outcome": "upheld", "explanation": "Not received."})
        browser = sign_in(app, person)
        statement = " ".join(f"word{i}" for i in range(230))
        r = browser.post(f"/app/disputes/{dispute}/statement", {"statement": statement})
        assert r.status_code == 422
        textarea = re.search(rf'<textarea id="statement-{dispute}"[^>]*>(.*?)</textarea>', r.text, re.S)
        assert textarea and textarea.group(1) == statement, "the person's words are given back"
        page = text(r.text)
        assert "Your statement has 230 words, more than the 200 that are shown, so it is not saved." in page
        assert "Words: 230 of at most 200" in page
        assert _my_disputes(client, person)[debt]["statement"] is None

    def test_the_counter_shows_a_saved_statement_too(self, app, client, lender, person):
        debt = _report(client, lender, person, "LOAN-78")
        dispute = client.post("/v1/me/disputes", headers=person.headers,
                              json={"obligation": debt, "reason": "repaid", "text": "Paid."}).json()["id"]
        client.post(f"/v1/disputes/{dispute}/answer", headers=lender.headers,
                    json={"outcome": "upheld", "explanation": "Not received."})
        browser = sign_in(app, person)
        assert browser.post(f"/app/disputes/{dispute}/statement", {"statement": "I paid in May."}).status_code == 303
        assert "Words: 4 of at most 200" in text(browser.get("/app/disputes").text)


class TestProofInWords:
    def test_words_before_the_hashes(self, app, client, lender, regulator, browser):
        consent = grant(client, browser.person.headers, lender.id)
        look(client, lender, browser.person, consent)
        assert client.post("/v1/audit/checkpoints", headers=regulator.headers).status_code == 200
        event = next(e for e in client.get("/v1/me/access-log", headers=browser.person.headers).json()["items"]
                     if e["action"] == "exposure:query")
        page = html.unescape(text(browser.get(f"/app/who-looked/{event['id']}").text))
        words = page.index("What this shows, in words")
        hashes = page.index("For checking it yourself")
        for fact in (f"Who {lender.name}", "What Looked at your debts", "When ", "Outcome Allowed",
                     "only grows", "would no longer match the signature"):
            assert words < page.index(fact, words) < hashes, fact
        assert hashes < page.index('"action": "exposure:query"') < page.index("The inclusion proof", hashes)


class TestIcons:
    def test_every_icon_is_drawn_or_in_every_font(self, app, client, lender, person, clock):
        _report(client, lender, person, "OLD-1", as_of=(clock.now - timedelta(days=60)).isoformat())
        browser = sign_in(app, person)
        browser.post("/app/credit-ban", {"reason": "identity_theft", "until": ""})
        look(client, lender, person, grant(client, person.headers, lender.id))
        browser.post("/app/credit-ban/lift")
        pages = [*PAGES, "/app/credit-ban?lift=1"]
        icons = []
        for url in pages:
            page = browser.get(url).text
            assert "⏱" not in page and "⛔" not in page, url
            icons += [(url, inner) for inner in re.findall(r'<span class="icon[^"]*" aria-hidden="true">(.*?)</span>',
                                                            page, re.S)]
        drawn = [i for _, i in icons if i.startswith("<svg")]
        assert len(drawn) >= 3, "the stale debt, the ban and the lift are drawn"
        assert not [(url, i) for url, i in icons if not i.startswith("<svg") and i.strip() not in FONT_SAFE_ICONS]
