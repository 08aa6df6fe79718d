"""Languages: every message translated in every catalogue, the choice of language, and amounts and dates
formatted for it. No database needed except for the page checks."""

from __future__ import annotations

import re

import pytest
from babel.messages.pofile import read_po

from register.web.i18n import LANGUAGES, Formats, choose_language, language_of_country, translations
from register.web.messages import catalogue_file, extract_messages
from tests.factories import grant, make_person
from tests.web.conftest import report
from tests.web.pages import new_client, sign_in
from tests.web.test_pages import PAGES, look, text

PLACEHOLDER = re.compile(r"%\((\w+)\)[sd]")


def _ids(message_id) -> tuple[str, ...]:
    return message_id if isinstance(message_id, tuple) else (message_id,)


class TestCatalogues:
    @pytest.mark.parametrize("lang", sorted(LANGUAGES))
    def test_every_message_is_translated(self, lang):
        template = extract_messages()
        assert len(template) > 150, "the extraction found the templates and the labels"
        with catalogue_file(lang).open("rb") as f:
            catalog = read_po(f, locale=lang)
        missing, empty, wrong = [], [], []
        for message in template:
            if not message.id:
                continue
            found = catalog.get(message.id, context=message.context)
            if found is None:
                missing.append(message.id)
                continue
            strings = _ids(found.string)
            if isinstance(message.id, tuple) and len(strings) != catalog.num_plurals or not all(strings):
                empty.append(message.id)
                continue
            wanted = set(PLACEHOLDER.findall(" ".join(_ids(message.id))))
            if any(set(PLACEHOLDER.findall(s)) - wanted for s in strings) or wanted - set(
                    PLACEHOLDER.findall(" ".join(strings))) - {"num"}:
                wrong.append(message.id)
        assert not missing, f"{lang}: not in the catalogue (run `make messages`, then translate): {missing}"
        assert not empty, f"{lang}: no translation: {empty}"
        assert not wrong, f"{lang}: placeholders differ from the message's: {wrong}"

    def test_no_catalogue_keeps_messages_nobody_uses(self):
        used = {m.id for m in extract_messages() if m.id}
        for lang in LANGUAGES:
            with catalogue_file(lang).open("rb") as f:
                stale = {m.id for m in read_po(f, locale=lang) if m.id} - used
            assert not stale, (lang, stale)


class _Request:
    def __init__(self, query="", cookie=None, header=""):
        self.query_params = dict([query.split("=")]) if query else {}
        self.cookies = {"register_lang": cookie} if cookie else {}
        self.headers = {"accept-language": header}


class TestChoice:
    @pytest.mark.parametrize(("query", "cookie", "header", "lang"), [
        ("", None, "", "en"),
        ("", None, "sv-SE,sv;q=0.9,en;q=0.8", "sv"),
        ("", None, "pl", "pl"),
        ("", None, "de-DE,pl;q=0.5", "pl"),
        ("", None, "sv-FI", "sv"),
        ("", None, "en;q=0.1,sv;q=0.9", "sv"),
        ("", None, "pl;q=0,fr", "en"),
        ("", "pl", "sv", "pl"),
        ("lang=sv", "pl", "en", "sv"),
        ("lang=xx", None, "pl", "pl"),
        ("", None, "fi-FI,fi;q=0.9,en;q=0.8", "fi"),
        ("", None, "nb-NO,no;q=0.9,en;q=0.5", "nb"),
        ("", None, "no", "nb"),
        ("", None, "nn-NO,en;q=0.5", "nb"),
        ("", None, "sv-FI,en;q=0.5", "sv"),
        ("", None, "de,fi;q=0.3", "fi"),
        ("lang=nb", "fi", "sv", "nb"),
        ("", "fi", "nb", "fi"),
    ])
    def test_query_then_cookie_then_accept_language(self, query, cookie, header, lang):
        assert choose_language(_Request(query, cookie, header)) == lang


    def test_a_notice_without_a_request_speaks_the_language_of_the_persons_country(self):
        assert [language_of_country(c) for c in ("SE", "FI", "NO", "PL", "DK", None)] == ["sv", "fi", "nb", "pl",
                                                                                          "en", "en"]
        assert translations(language_of_country("NO")).gettext("Free help with debts") == "Gratis hjelp med gjeld"
        assert translations(language_of_country("FI")).ngettext("%(num)d day", "%(num)d days", 3) == "%(num)d päivää"


class TestFormats:
    def test_amounts_in_minor_units_for_each_language(self):
        assert Formats("sv").money(8_430_000, "SEK") == "84\xa0300\xa0kr"
        assert Formats("pl").money(8_430_050, "PLN") == "84\xa0300,50\xa0zł"
        assert Formats("en").money(8_430_000, "EUR") == "€84,300"
        assert Formats("en").money(12_345, "JPY") == "¥12,345"

    def test_finnish_and_bokmal_amounts(self):
        assert Formats("fi").money(8_430_000, "EUR") == "84\xa0300\xa0€"
        assert Formats("fi").money(8_430_050, "EUR") == "84\xa0300,50\xa0€"
        assert Formats("nb").money(8_430_000, "NOK") == "84\xa0300\xa0kr"
        assert Formats("nb").money(8_430_050, "NOK") == "84\xa0300,50\xa0kr"
        assert Formats("nb").money(19_417_469, "SEK") == "194\xa0174,69\xa0SEK"
        assert Formats("fi").number(1_234_567) == "1\xa0234\xa0567"

    def test_a_currency_code_is_spaced_from_its_digits(self):
        assert Formats("en").money(19_417_469, "SEK") == "SEK\xa0194,174.69"  # not SEK194,174.69
        assert Formats("sv").money(19_417_469, "PLN") == "194\xa0174,69\xa0PLN"
        assert Formats("en").amount(100, "NOK") == '<span class="amount">NOK\xa01</span>'

    def test_times_in_the_persons_own_time_zone(self):
        from datetime import UTC, datetime

        at = datetime(2026, 11, 23, 23, 30, tzinfo=UTC)
        assert Formats("sv", "SE").date(at) == "24 november 2026"
        assert "00:30" in Formats("sv", "SE").datetime(at)
        assert Formats("sv", "SE").datetime(at).endswith("\xa0CET")
        assert Formats("en", "FI").datetime(datetime(2026, 7, 1, 9, 0, tzinfo=UTC)) == "Jul 1, 2026, 12:00:00\u202fPM\xa0EEST"
        assert "2026" in Formats("pl", "PL").date(at)
        assert Formats("fi", "FI").date(at) == "24. marraskuuta 2026"
        assert Formats("fi", "FI").datetime(datetime(2026, 7, 1, 9, 0, tzinfo=UTC)) == "1.7.2026 12.00.00\xa0EEST"
        assert Formats("nb", "NO").date(at) == "24. november 2026"
        assert Formats("nb", "NO").datetime(at).endswith("00:30:00\xa0CET")

    def test_a_time_with_no_local_equivalent_is_shown_in_utc(self):
        """A ban until 9999-12-31T23:59:59Z, stored before the API bounded times, has no Stockholm time
        (a day past the last one Python has): its page was a 500."""
        from datetime import UTC, datetime

        end = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)
        assert Formats("sv", "SE").date(end) == "31 december 9999"
        assert "23:59" in Formats("sv", "SE").datetime(end)


class TestPages:
    def test_html_lang_and_the_visible_switch(self, app):
        client = new_client(app, **{"Accept-Language": "pl-PL,pl;q=0.9"})
        page = client.get("/app/help").text
        assert '<html lang="pl">' in page and "Bezpłatna pomoc w sprawie długów" in page
        for code, name in LANGUAGES.items():
            assert f'href="?lang={code}" lang="{code}"' in page and name in page
        r = client.get("/app/help?lang=sv")
        assert '<html lang="sv">' in r.text and "Gratis hjälp med skulder" in r.text
        assert "register_lang=sv" in r.headers["set-cookie"]
        assert '<html lang="sv">' in client.get("/app/help").text, "the choice is remembered"
        assert '<html lang="en">' in client.get("/app/sign-in?lang=en").text


def _untranslated(lang: str) -> list[str]:
    """English sentences of the catalogue that the language words differently: none may be on its pages."""
    english = translations("en")
    other = translations(lang)
    return [m.id for m in extract_messages() if isinstance(m.id, str) and "%(" not in m.id and m.id.count(" ") >= 2
            and other.gettext(m.id) != english.gettext(m.id)]  # fmt: skip


class TestEveryPageInEveryLanguage:
    @pytest.mark.parametrize("lang", sorted(LANGUAGES))
    def test_each_page_speaks_the_language_whole(self, app, client, lender, regulator, data_dir, lang):
        """A Finnish person with a late debt, a consent, a look, a dispute and a credit ban: every page, the
        proof, the dispute form, sign-in and a missing page render in the language, with nothing left in
        English (a message that skipped the catalogue, or a label not passed through it)."""
        person = make_person(client, data_dir, "FI")
        debt = report(client, lender, person, status="overdue", overdue_amount=500_000, days_past_due=40)
        look(client, lender, person, grant(client, person.headers, lender.id))
        client.post("/v1/audit/checkpoints", headers=regulator.headers)
        event = client.get("/v1/me/access-log", headers=person.headers).json()["items"][0]["id"]
        browser = sign_in(app, person)
        disputed = browser.post("/app/disputes", {"debt": debt, "reason": "wrong_amount", "text": "Liian suuri."})
        assert disputed.status_code == 303
        assert browser.post("/app/credit-ban", {"reason": "identity_theft", "until": ""}).status_code == 303
        english = _untranslated(lang) if lang != "en" else []
        urls = (*PAGES, f"/app/who-looked/{event}", f"/app/disputes/new?debt={debt}", "/app/no-such-page")
        for url in urls:
            r = browser.get(url + ("&" if "?" in url else "?") + f"lang={lang}")
            assert r.status_code == (404 if "no-such" in url else 200), (url, r.status_code)
            assert f'<html lang="{lang}">' in r.text, url
            left = [m for m in english if m in text(r.text)]
            assert not left, f"{url} in {lang}: {left}"
        signed_out = new_client(app).get(f"/app/sign-in?lang={lang}")
        assert f'<html lang="{lang}">' in signed_out.text
        assert not [m for m in english if m in text(signed_out.text)]


@pytest.mark.parametrize("lang", sorted(LANGUAGES))
def test_the_desk_speaks_the_language_whole(app, client, admin_headers, regulator, lender, lang):
    """The regulator's desk: sign-in, where to look, an institution, the access log and a missing signal,
    with nothing left in English."""
    from tests.web.desk import staff_sign_in

    english = _untranslated(lang) if lang != "en" else []
    desk = staff_sign_in(app, regulator)
    urls = ("/regulator/", f"/regulator/institutions/{lender.id}", "/regulator/events",
            "/regulator/signals/00000000-0000-0000-0000-000000000000")
    for url in urls:
        r = desk.get(f"{url}?lang={lang}")
        assert r.status_code == (404 if "signals/" in url else 200), (url, r.status_code)
        assert f'<html lang="{lang}">' in r.text
        left = [m for m in english if m in text(r.text)]
        assert not left, f"{url} in {lang}: {left}"
    signed_out = new_client(app).get(f"/regulator/sign-in?lang={lang}")
    assert not [m for m in english if m in text(signed_out.text)]
