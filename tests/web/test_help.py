"""The help data: free, public debt counselling per country, complete and well-formed."""

from __future__ import annotations

import json
import re
from datetime import date
from importlib import resources
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
    assert set(entry) >= {"country", "name", "what", "url", "phone", "checked"}
    assert entry["country"] in {"SE", "NO", "FI", "DK", "PL"} and entry["name"].strip()
    assert set(entry["what"]) >= set(LANGUAGES) and all(len(t) > 40 for t in entry["what"].values())
    assert _https(entry["url"]), entry["url"]
    if entry["phone"] is None:
        assert _https(entry["note"]), "an entry without a national number says where to book"
    else:
        assert PHONE.match(entry["phone"]), entry["phone"]
    assert date.fromisoformat(entry["checked"]) == date(2026, 11, 23)


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
