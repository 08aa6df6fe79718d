"""Languages: every message translated in every catalogue, the choice of language, and amounts and dates
formatted for it. No database needed except for the page checks."""

from __future__ import annotations

import re

import pytest
from babel.messages.pofile import read_po

from register.web.i18n import LANGUAGES, Formats, choose_language
from register.web.messages import catalogue_file, extract_messages
from tests.web.pages import new_client

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
    ])
    def test_query_then_cookie_then_accept_language(self, query, cookie, header, lang):
        assert choose_language(_Request(query, cookie, header)) == lang


class TestFormats:
    def test_amounts_in_minor_units_for_each_language(self):
        assert Formats("sv").money(8_430_000, "SEK") == "84\xa0300\xa0kr"
        assert Formats("pl").money(8_430_050, "PLN") == "84\xa0300,50\xa0zł"
        assert Formats("en").money(8_430_000, "EUR") == "€84,300"
        assert Formats("en").money(12_345, "JPY") == "¥12,345"

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
