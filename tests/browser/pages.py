"""What a person does in the browser, and what the tests measure there: signing in through the development
sign-in page, moving by keyboard, the focus indicator, target sizes, and identity numbers in a page."""

from __future__ import annotations

import re
from typing import Any

from playwright.sync_api import Locator, Page

from tests.browser.data import Person

LANGS = ("sv", "pl", "en")  # every check, at every width
# Finnish and bokmål: axe on every page and the fit at the narrowest width only, where the longer words
# would break out first (each more check in two more languages costs minutes of browser time).
NEW_LANGS = ("fi", "nb")
MAX_TABS = 80


def sign_in(page: Page, person: Person, *, lang: str = "sv", next_page: str = "/app/") -> None:
    """Sign in as a person would on the development sign-in page: choose "the test identity I type
    below", the country, type the number, press the button."""
    page.goto(f"/app/sign-in?lang={lang}&next={next_page}")
    page.locator("label[for=typed]").click()
    page.locator("#country").select_option(person.country)
    page.locator("#national_id").fill(person.nid)
    page.locator("form.dev-sign-in button[type=submit]").click()
    page.wait_for_url(f"**{next_page}")


def spellings(person: Person) -> list[str]:
    """Every common printed spelling of the person's full identity number."""
    digits = re.sub(r"\D", "", person.nid)
    forms = {person.nid, digits}
    if person.country == "SE":  # 12 digits, and the 10-digit form with - or + before the last four
        short = digits[2:]
        forms |= {f"{digits[:8]}-{digits[8:]}", short, f"{short[:6]}-{short[6:]}", f"{short[:6]}+{short[6:]}",
                  f"{digits[:8]} {digits[8:]}", f"{short[:6]} {short[6:]}"}
    elif person.country in ("DK", "FI"):
        forms |= {f"{person.nid[:6]}{person.nid[7:]}", f"{digits[:6]} {digits[6:]}"}
    return sorted(forms)


def assert_no_identity(html: str, person: Person, where: str) -> None:
    for form in spellings(person):
        assert form not in html, f"{where} shows the full identity number ({form!r})"


# The focused element's visible focus indicator: an outline or a box shadow.
FOCUS_STYLE = """() => {
  const el = document.activeElement;
  if (!el || el === document.body) return null;
  const s = getComputedStyle(el);
  return {tag: el.tagName.toLowerCase(), text: (el.innerText || el.value || el.id || '').trim().slice(0, 60),
          outline: s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) > 0
            ? s.outlineStyle + ' ' + s.outlineWidth : null,
          shadow: s.boxShadow !== 'none' ? s.boxShadow : null,
          focusVisible: el.matches(':focus-visible')};
}"""


def focused(page: Page) -> dict[str, Any] | None:
    return page.evaluate(FOCUS_STYLE)


def tab_to(page: Page, target: Locator) -> list[dict[str, Any]]:
    """Press Tab from the top of the page until `target` has the focus; returns every element focused on
    the way (each checked by the caller for a visible focus indicator). Fails if Tab never reaches it."""
    page.evaluate("() => { document.activeElement && document.activeElement.blur(); window.scrollTo(0, 0); }")
    handle = target.element_handle()
    assert handle is not None
    seen = []
    for _ in range(MAX_TABS):
        page.keyboard.press("Tab")
        seen.append(focused(page))
        if page.evaluate("el => document.activeElement === el", handle):
            return seen
    raise AssertionError(f"Tab never reached {target}; focused on the way: {[s and s['text'] for s in seen]}")


def invisible_focus(seen: list[dict[str, Any] | None]) -> list[dict[str, Any]]:
    return [s for s in seen if s and not (s["outline"] or s["shadow"])]


# Interactive targets and their boxes. A link inside running text (its block has other words) is exempt
# (WCAG 2.5.8's inline exception); hidden inputs and invisible elements are not targets.
TARGETS = """(root) => {
  const sel = 'a[href], button, input:not([type=hidden]), select, textarea, summary, [role=button], '
            + '[tabindex]:not([tabindex="-1"])';
  const out = [];
  for (const el of root.querySelectorAll(sel)) {
    const r = el.getBoundingClientRect();
    const s = getComputedStyle(el);
    if (r.width === 0 || r.height === 0 || s.visibility === 'hidden') continue;
    let inline = false;
    if (el.tagName === 'A' && s.display === 'inline') {
      let block = el.parentElement;
      while (block && getComputedStyle(block).display === 'inline') block = block.parentElement;
      const own = (el.innerText || '').replace(/\\s+/g, ' ').trim();
      const all = (block ? block.innerText : '').replace(/\\s+/g, ' ').trim();
      inline = all.length > own.length + 1;
    }
    out.push({tag: el.tagName.toLowerCase(),
              text: (el.innerText || el.value || el.id || el.name || '').trim().slice(0, 60),
              width: Math.round(r.width * 10) / 10, height: Math.round(r.height * 10) / 10, inline});
  }
  return out;
}"""


def small_targets(page: Page, root: str = "body") -> list[dict[str, Any]]:
    boxes = page.locator(root).evaluate(TARGETS)
    return [b for b in boxes if not b["inline"] and (b["width"] < 24 or b["height"] < 24)]


def t(lang: str, message: str, **values: Any) -> str:
    """A page's wording in `lang`, from the pages' own catalogue (the tests find things by what they say)."""
    from register.web.i18n import translations

    return translations(lang).gettext(message) % values if values else translations(lang).gettext(message)
