"""Screenshots of each page as a person sees it, for the README: taken on both databases (so a page that
breaks on either shows here), and written to docs/screenshots/ from the SQLite run when
REGISTER_UPDATE_SCREENSHOTS=1, so that an ordinary test run leaves the checked-in pictures alone (their
dates and times change on every run).

    REGISTER_UPDATE_SCREENSHOTS=1 .venv/bin/python -m pytest tests/browser/test_screenshots.py -k sqlite
"""

from __future__ import annotations

import io
import os
import random
from datetime import date
from pathlib import Path

import pytest
from PIL import Image
from playwright.sync_api import BrowserContext

from register.domain.identity import generate_national_id
from tests.browser.conftest import TIMEOUT_MS
from tests.browser.data import Register, story
from tests.browser.pages import sign_in
from tests.browser.test_desk import seed, staff_sign_in

DOCS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
WIDTH = 1100
PHONE = 375
MAX_BYTES = 300_000
# name: (path, language[, width]). Swedish, as a person in Sweden sees them, the overview in Finnish,
# Norwegian bokmål, Polish and English, and on a phone.
SHOTS = {
    "sign-in": ("/app/sign-in", "sv"),
    "overview": ("/app/", "sv"),
    "overview-fi": ("/app/", "fi"),
    "overview-nb": ("/app/", "nb"),
    "overview-pl": ("/app/", "pl"),
    "overview-en": ("/app/", "en"),
    "overview-phone": ("/app/", "sv", PHONE),
    "debts": ("/app/debts", "sv"),
    "dispute-form": ("/app/disputes/new?debt={card}", "sv"),
    "who-looked": ("/app/who-looked", "sv"),
    "proof": ("/app/who-looked/{event}", "sv"),
    "consents": ("/app/consents", "sv"),
    "disputes": ("/app/disputes", "sv"),
    "credit-ban": ("/app/credit-ban", "sv"),
    "help": ("/app/help", "sv"),
    "what-we-keep": ("/app/what-we-keep", "sv"),
    "statistics": ("/app/statistics", "en"),
    "notifications": ("/app/notifications", "fi"),
}
# The regulator's desk, in English: where to look, one signal's evidence, an institution, the access log.
DESK_SHOTS = {
    "desk-overview": "/regulator/",
    "desk-signal": "/regulator/signals/{signal}",
    "desk-institution": "/regulator/institutions/{lender}",
    "desk-events": "/regulator/events?institution={lender}",
}


def small_png(png: bytes) -> bytes:
    """The screenshot in 256 colours: the pages are flat colours and text, so it looks the same at about a
    third of the size (the help page is 370 KB as Chromium writes it)."""
    image = Image.open(io.BytesIO(png)).convert("RGB")
    out = io.BytesIO()
    image.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(out, "PNG",
                                                                                              optimize=True)
    return out.getvalue()


@pytest.fixture
def target(served: Register, tmp_path: Path) -> Path:
    if served.backend == "sqlite" and os.environ.get("REGISTER_UPDATE_SCREENSHOTS") == "1":
        DOCS.mkdir(parents=True, exist_ok=True)
        return DOCS
    return tmp_path


class TestScreenshots:
    def test_every_page_as_a_person_sees_it(self, chromium, served: Register, target: Path):
        person = served.person(nid=generate_national_id("SE", random.Random(4), birth_date=date(1984, 3, 12)))
        s = story(served, person=person, lender_name="Nordbank AB", collector_name="Inkasso Norr AB")
        served.dispute(person, s.late, reason="wrong_amount", text="Jag betalade 5 000 kr i oktober.")
        served.answer(s.lender, served.dispute(person, s.loan, reason="repaid", text="Lånet är betalt i maj."),
                      "upheld", "Betalningen i maj gällde ett annat lån; detta lån löper som avtalat.")
        event = next(e["id"] for e in served.wait_for_proofs(person)  # the lender's look, for the proof page
                     if e["action"] == "exposure:query" and e["outcome"] == "granted")
        context: BrowserContext = chromium.new_context(base_url=served.url, viewport={"width": WIDTH, "height": 800},
                                                       device_scale_factor=1, locale="sv-SE")
        context.set_default_timeout(TIMEOUT_MS)
        try:
            page = context.new_page()
            for name, (path, lang, *width) in SHOTS.items():
                if name == "overview":
                    sign_in(page, person, lang="sv")
                wide = width[0] if width else WIDTH
                page.set_viewport_size({"width": wide, "height": 800})
                url = path.format(card=s.late, event=event)
                response = page.goto(url + ("&" if "?" in url else "?") + f"lang={lang}")
                assert response and response.status == 200, name
                png = small_png(page.screenshot(full_page=True, type="png", animations="disabled", caret="hide"))
                assert Image.open(io.BytesIO(png)).width == wide and len(png) < MAX_BYTES, (name, len(png))
                (target / f"{name}.png").write_bytes(png)
        finally:
            context.close()

    def test_the_regulators_desk(self, chromium, served: Register, target: Path):
        shown = seed(served, regulator_name="Finanstilsynet (demo)", first="Nordiska Kredit AB")
        context: BrowserContext = chromium.new_context(base_url=served.url, viewport={"width": WIDTH, "height": 800},
                                                       device_scale_factor=1, locale="en-GB")
        context.set_default_timeout(TIMEOUT_MS)
        try:
            page = context.new_page()
            staff_sign_in(page, "Finanstilsynet (demo)", lang="en")
            for name, path in DESK_SHOTS.items():
                url = path.format(**shown)
                response = page.goto(url + ("&" if "?" in url else "?") + "lang=en")
                assert response and response.status == 200, name
                png = small_png(page.screenshot(full_page=True, type="png", animations="disabled", caret="hide"))
                assert Image.open(io.BytesIO(png)).width == WIDTH and len(png) < MAX_BYTES, (name, len(png))
                (target / f"{name}.png").write_bytes(png)
        finally:
            context.close()
