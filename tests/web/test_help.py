"""The help data: free, public debt counselling per country, complete and well-formed."""

from __future__ import annotations

import json
import re
from datetime import date
from importlib import resources
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from register.web.i18n import LANGUAGES

DOC = json.loads((resources.files("register.web") / "help.json").read_text(encoding="utf-8"))
ENTRIES = DOC["entries"]
PHONE = re.compile(r"^\+?[0-9][0-9 -]{5,18}[0-9]$")


def _https(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme == "https" and bool(parts.netloc) and "." in parts.netloc and " " not in url


@pytest.mark.parametrize("entry", ENTRIES, ids=[e["name"] for e in ENTRIES])
def test_every_entry_is_complete(entry):
    assert set(entry) >= {"country", "name", "what", "url", "phone", "checked", "source", "confirmed"}
    assert entry["country"] in {"SE", "NO", "FI", "DK", "PL"} and entry["name"].strip()
    assert set(entry["what"]) >= set(LANGUAGES) and all(len(t) > 40 for t in entry["what"].values())
    assert _https(entry["url"]), entry["url"]
    if entry["phone"] is None:
        assert _https(entry["note"]), "an entry without a national number says where to book"
    else:
        assert PHONE.match(entry["phone"]), entry["phone"]
    assert date.fromisoformat(entry["checked"]) == date(2026, 11, 23)
    assert _https(entry["source"]), "the official page its facts are checked against"
    assert entry["confirmed"] is True or len(entry["unconfirmed"]) > 20, "an unconfirmed entry says what is missing"


@pytest.mark.parametrize("entry", [e for e in ENTRIES if e["country"] in ("FI", "NO")], ids=lambda e: e["name"])
def test_finland_and_norway_speak_finnish_and_bokmal(entry):
    assert set(entry["what"]) >= {"fi", "nb"}
    assert entry["what"]["fi"] != entry["what"]["en"] and entry["what"]["nb"] != entry["what"]["en"]


def test_spec_lists_every_entrys_source_date_and_state():
    """The operator reads which entries still need confirming in SPEC.md; it must say what help.json says."""
    spec = (Path(__file__).resolve().parents[2] / "SPEC.md").read_text(encoding="utf-8")
    rows = {line.split("|")[1].strip(): line for line in spec.splitlines() if line.startswith("| ")}
    for entry in ENTRIES:
        row = rows.get(entry["name"])
        assert row, f"SPEC.md has no row for {entry['name']}"
        assert entry["source"] in row and entry["checked"] in row, row
        assert ("not confirmed" in row) == (not entry["confirmed"]), row


def test_every_country_the_register_serves_has_help():
    by_country = {c: [e["name"] for e in ENTRIES if e["country"] == c] for c in ("SE", "NO", "FI", "DK", "PL")}
    assert all(by_country.values()), by_country
    names = " ".join(e["name"] for e in ENTRIES)
    for must in ("budget- och skuldrådgivning", "Kronofogden", "NAV", "Takuusäätiö", "talous- ja velkaneuvonta",
                 "Nieodpłatna pomoc prawna", "Rzecznik Finansowy"):
        assert must.lower() in names.lower(), must
    assert any(e["phone"] == "55 55 33 39" for e in ENTRIES), "NAV's advice line"


def test_the_help_page_lists_every_entry(app):
    from tests.web.pages import new_client

    page = new_client(app).get("/app/help").text
    for entry in ENTRIES:
        assert entry["name"] in page and entry["url"] in page
    # "Checked on" only for an entry an operator confirmed: the page claims no check nobody made
    assert page.count('class="checked"') == sum(1 for e in ENTRIES if e["confirmed"])


@pytest.mark.parametrize(("lang", "country", "words"), [("fi", "FI", "Takuusäätiön maksuton Velkalinja"),
                                                         ("nb", "NO", "NAVs gratis telefon")])
def test_a_finnish_or_norwegian_reader_sees_their_countrys_help_first_in_their_language(app, lang, country, words):
    from tests.web.pages import new_client

    page = new_client(app, **{"Accept-Language": f"{lang}-{country}"}).get("/app/help").text
    assert f'<html lang="{lang}">' in page and words in page
    first = page.index('<section aria-labelledby="help-')
    assert page.index(f'id="help-{country}"') == page.index('id="help-', first), "their own country first"
