"""Nothing on the person's pages is cut or runs out of its box, from a 320 px phone to a 1280 px screen, in every
language (Finnish and bokmål at 320 px only), on both databases: for the person with the longest figures the
register can hold (balances, limits, payments and arrears at the largest amount a report may carry, in the
five currencies the population generator uses, with totals above that), the longest creditor names and
references, and something on every page (a late debt, two debts at one creditor, a guarantee, a repaid debt,
consents, a granted and a refused look, an open and an upheld dispute with a 200-word statement, a credit ban
being lifted).

For every visible element: its content is no wider than its box (scrollWidth <= clientWidth, 1 px of
rounding allowed), whether it clips (overflow hidden or clip) or lets it run out (visible); and every
line of text lies inside the viewport, so the page never scrolls sideways."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import BrowserContext

from tests.browser.conftest import TIMEOUT_MS
from tests.browser.data import Register, now_minus
from tests.browser.pages import LANGS, NEW_LANGS, sign_in

WIDTHS = (320, 375, 1280)
MAX = 10**15  # the largest amount a report may carry (Money, register/domain/types.py)
LONGEST = MAX - 1  # every digit shown: 9 999 999 999 999,99
CURRENCIES = ("SEK", "NOK", "EUR", "DKK", "PLN")  # the population generator's (register/population.py)
PAGES = ("/app/", "/app/debts", "/app/who-looked", "/app/who-looked/{event}", "/app/consents", "/app/disputes",
         "/app/disputes/new?debt={debt}", "/app/credit-ban", "/app/help", "/app/what-we-keep",
         "/app/statistics", "/app/notifications")  # fmt: skip

# Every visible element whose content is wider than its box, and every line of text that leaves the
# viewport. Hidden elements, the visually hidden ones (cut on purpose to 1 px) and the skip link (off
# screen until focused) are left out; so are scroll containers, which show all they hold by scrolling.
MEASURE = """() => {
  const vw = document.documentElement.clientWidth;
  const out = [];
  const name = el => el.tagName.toLowerCase() + (el.id ? '#' + el.id : '')
                     + (el.className && typeof el.className === 'string' ? '.' + el.className.split(' ').join('.') : '');
  const away = el => el.closest('.visually-hidden, .skip, [hidden]');
  if (document.documentElement.scrollWidth > vw + 1)
    out.push({what: 'page', scroll: document.documentElement.scrollWidth, client: vw, text: ''});
  for (const el of document.body.querySelectorAll('*')) {
    if (away(el)) continue;
    const s = getComputedStyle(el);
    if (s.display === 'none' || s.display === 'contents' || s.display === 'inline' || s.visibility === 'hidden') continue;
    if (['auto', 'scroll'].includes(s.overflowX)) continue;
    if (el.clientWidth === 0 && el.clientHeight === 0) continue;
    if (el.scrollWidth > el.clientWidth + 1)
      out.push({what: name(el), overflow: s.overflowX, scroll: el.scrollWidth, client: el.clientWidth,
                text: (el.innerText || '').trim().slice(0, 80)});
  }
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    if (!node.textContent.trim() || !node.parentElement || away(node.parentElement)) continue;
    if (getComputedStyle(node.parentElement).visibility === 'hidden') continue;
    // A data table wider than the screen scrolls in its own keyboard-reachable box (WCAG 1.4.10 names
    // data tables among what may scroll in two dimensions): its text is there by scrolling, not cut.
    if (node.parentElement.closest('.scroll')) continue;
    const range = document.createRange();
    range.selectNodeContents(node);
    for (const r of range.getClientRects()) {
      if (r.width === 0) continue;
      if (r.left < -1 || r.right > vw + 1)
        out.push({what: 'text in ' + name(node.parentElement), left: r.left, right: r.right, client: vw,
                  text: node.textContent.trim().slice(0, 80)});
    }
  }
  for (const el of document.querySelectorAll('.amount')) {  // an amount is whole: on one line
    const range = document.createRange();
    range.selectNodeContents(el);
    const tops = new Set([...range.getClientRects()].filter(r => r.width > 0).map(r => Math.round(r.top)));
    if (tops.size > 1) out.push({what: 'amount on ' + tops.size + ' lines', text: el.textContent});
  }
  return out;
}"""


def longest(reg: Register) -> dict[str, Any]:
    """The person with the longest figures, and something on every page."""
    person = reg.person()
    long_name = "Nordiska Kredit- och Finansieringsaktiebolaget " * 4  # 188 characters, of the 200 allowed
    one_word = "Överbelåningsförebyggandefinansieringsinstitutet" * 4  # a name without a space
    bank = reg.institution(name=long_name.strip(), contact={
        "phone": "+46 8 123 456 00 00 00", "email": "kundtjanst.konsumentkrediter@" + "a" * 50 + ".example",
        "url": "https://nordiska-kredit-och-finansieringsaktiebolaget.example/" + "kundtjanst/" * 8})
    other = reg.institution(name=one_word)
    collector = reg.institution("collector", name="Inkasso " + one_word)
    ref = "REF-" + "9" * 120  # a reference runs long too (up to 200 characters, no spaces)
    huge = {"balance": LONGEST, "original_amount": MAX, "monthly_payment": LONGEST, "overdue_amount": LONGEST,
            "days_past_due": 99_999, "status": "overdue"}
    mortgage = reg.report(bank, person, ref=ref + "-1", kind="mortgage", **huge)
    card = reg.report(bank, person, ref=ref + "-2", kind="credit_card", credit_limit=MAX, original_amount=None,
                      matures_on=None, **{k: v for k, v in huge.items() if k != "original_amount"})
    reg.report(collector, person, kind="collection_claim", status="in_collection", balance=LONGEST,
               original_amount=None, matures_on=None, overdue_amount=LONGEST, monthly_payment=LONGEST,
               collects={"institution_id": bank.id, "external_ref": ref + "-2"})
    for currency in CURRENCIES[1:]:
        reg.report(other, person, currency=currency, **huge)
    borrower = reg.person()
    reg.report(other, borrower, currency="SEK", balance=LONGEST, debtors=[
        {"country": borrower.country, "national_id": borrower.nid, "role": "primary"},
        {"country": person.country, "national_id": person.nid, "role": "guarantor"}])
    reg.report(other, person, ref=ref + "-3", status="closed", balance=0, overdue_amount=0, monthly_payment=0,
               as_of=now_minus(minutes=30))
    consent = reg.consent(person, bank)
    assert reg.exposure(bank, person, consent).status_code == 200
    revoked = reg.consent(person, bank, purpose="credit_limit_review")
    reg.call("DELETE", f"/v1/consents/{revoked}", person.headers, expect=200)
    assert reg.exposure(bank, person, "00000000-0000-4000-8000-000000000000").status_code == 403
    statement = " ".join(["Kreditupplysningen"] * 200)  # 200 long words, near the 4000 characters allowed
    reg.dispute(person, mortgage, text="Skulden " + "X" * 3000)  # a word longer than any screen
    upheld = reg.dispute(person, card, reason="repaid", text="Betald.")
    reg.answer(bank, upheld, "upheld", "Ingen betalning " + "Y" * 1000)
    reg.call("PUT", f"/v1/me/disputes/{upheld}/statement", person.headers, json={"statement": statement}, expect=200)
    reg.call("PUT", "/v1/me/credit-ban", person.headers, json={"reason": "identity_theft"}, expect=200)
    reg.call("DELETE", "/v1/me/credit-ban", person.headers, expect=202)
    events = reg.wait_for_proofs(person)
    return {"person": person, "event": events[0]["id"], "debt": card}


@pytest.fixture(scope="module")
def shown(served: Register) -> dict[str, Any]:
    return longest(served)


@pytest.fixture(scope="module")
def signed_in(chromium, served: Register, shown) -> Iterator[BrowserContext]:
    ctx = chromium.new_context(base_url=served.url, viewport={"width": 1280, "height": 900})
    ctx.set_default_timeout(TIMEOUT_MS)
    sign_in(ctx.new_page(), shown["person"])
    yield ctx
    ctx.close()


# Swedish, Polish and English at every width; Finnish and bokmål at the narrowest, where they break first.
SIZES = [(lang, width) for lang in LANGS for width in WIDTHS] + [(lang, WIDTHS[0]) for lang in NEW_LANGS]


class TestNothingIsCut:
    @pytest.mark.parametrize(("lang", "width"), SIZES)
    def test_every_page_at_every_width(self, width: int, lang: str, shown, signed_in: BrowserContext):
        page = signed_in.new_page()
        page.set_viewport_size({"width": width, "height": 900})
        found = {}
        try:
            for path in PAGES:
                url = path.format(**shown)
                response = page.goto(url + ("&" if "?" in url else "?") + f"lang={lang}")
                assert response is not None and response.status == 200, url
                if bad := page.evaluate(MEASURE):
                    found[url] = bad[:6]
        finally:
            page.close()
        assert not found, "\n".join(f"{url}: {bad}" for url, bad in found.items())
