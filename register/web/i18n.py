"""Languages of the person's pages: the catalogues (gettext .po, read at start, no compile step), the choice
of language for a request, and amounts and times formatted for it with Babel.

Notices sent to a person (no request to choose from) use the same catalogues and formats:
`translations(lang)` and `Formats(lang, country)`, with the language the person chose, else
`language_of_country(country)` of their identity.

The choice, first match wins: `?lang=` (the visible switch, remembered in a cookie), the cookie, the
browser's Accept-Language, English.
"""

from __future__ import annotations

import io
import re
from datetime import UTC, date, datetime
from decimal import Decimal
from functools import cache
from importlib import resources
from zoneinfo import ZoneInfo

from babel import Locale
from babel.dates import format_date, format_datetime
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_currency, format_decimal, format_percent, get_currency_precision
from babel.support import Translations
from markupsafe import Markup, escape
from starlette.requests import Request

# Complete; the switch offers these, in this order, each named in its own language.
LANGUAGES = {"sv": "Svenska", "fi": "Suomi", "nb": "Norsk bokmål", "pl": "Polski", "en": "English"}
# Tags a browser sends for a language the pages speak under another code: Norwegian ("no") and nynorsk
# ("nn") readers get bokmål, the written Norwegian nearest to both.
LANGUAGE_ALIASES = {"no": "nb", "nn": "nb"}
# The country whose help a visitor not signed in sees first, by the language they read; and back, the
# language of a person with that country's identity number (Danish is not spoken here: English).
LANGUAGE_COUNTRIES = {"sv": "SE", "fi": "FI", "nb": "NO", "pl": "PL"}
COUNTRY_LANGUAGES = {country: lang for lang, country in LANGUAGE_COUNTRIES.items()}
DEFAULT_LANGUAGE = "en"
LANG_COOKIE = "register_lang"
# The person's own time zone, by the country of their identity (the register itself keeps UTC).
TIME_ZONES = {"SE": "Europe/Stockholm", "NO": "Europe/Oslo", "FI": "Europe/Helsinki", "DK": "Europe/Copenhagen",
              "PL": "Europe/Warsaw"}  # fmt: skip
DEFAULT_TIME_ZONE = "Europe/Stockholm"
# CLDR's currency spacing, which Babel leaves out: a currency code touching a digit gets a no-break space
# ("SEK 194,174.69", not "SEK194,174.69"); a symbol such as € or zł does not.
_CODE_TOUCHES_DIGIT = re.compile(r"(?<=[A-Za-z])(?=\d)|(?<=\d)(?=[A-Za-z])")


def catalogue_path(lang: str):
    return resources.files("register.web") / "locale" / lang / "LC_MESSAGES" / "messages.po"


@cache
def translations(lang: str) -> Translations:
    """The language's catalogue, compiled in memory. English is the source language: its catalogue is
    complete too (a test checks), so a wording can change without touching the templates."""
    with catalogue_path(lang).open("rb") as f:
        catalog = read_po(f, locale=lang)
    buf = io.BytesIO()
    write_mo(buf, catalog)
    buf.seek(0)
    return Translations(fp=buf, domain="messages")


def choose_language(request: Request) -> str:
    asked = request.query_params.get("lang")
    if asked in LANGUAGES:
        return asked
    remembered = request.cookies.get(LANG_COOKIE)
    if remembered in LANGUAGES:
        return remembered
    header = request.headers.get("accept-language", "")
    return _by_language(header) or DEFAULT_LANGUAGE


def language_of_country(country: str | None) -> str:
    return COUNTRY_LANGUAGES.get(country or "", DEFAULT_LANGUAGE)


def _preferences(header: str) -> list[str]:
    """Accept-Language as a list, most wanted first (q=0 means not wanted)."""
    ranked = []
    for i, part in enumerate(header.split(",")[:20]):
        tag, _, params = part.strip().partition(";")
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        if tag and q > 0:
            ranked.append((-q, i, tag.strip()))
    return [tag for _, _, tag in sorted(ranked)]


def _by_language(header: str) -> str | None:
    """The first wanted language the pages speak, by its language part (sv-FI is Swedish, pl-PL Polish;
    no-NO and nn-NO bokmål): "nb-NO,no;q=0.9,en;q=0.5" is bokmål, not the English a whole-tag match
    would find first."""
    for tag in _preferences(header):
        lang = tag.split("-")[0].lower()
        lang = LANGUAGE_ALIASES.get(lang, lang)
        if lang in LANGUAGES:
            return lang
    return None


class Formats:
    """Amounts (integer minor units), dates and times for one language and time zone."""

    def __init__(self, lang: str, country: str | None = None) -> None:
        self.lang = lang
        self.locale = Locale.parse(lang)
        self.zone = ZoneInfo(TIME_ZONES.get(country or "", DEFAULT_TIME_ZONE))

    def money(self, minor: int | None, currency: str) -> str:
        if minor is None:
            return "–"
        digits = get_currency_precision(currency)
        value = Decimal(minor).scaleb(-digits)
        if minor % 10**digits == 0:  # "84 300 kr", not "84 300,00 kr"
            pattern = self.locale.currency_formats["standard"].pattern.replace(".00", "")
            text = format_currency(value, currency, format=pattern, locale=self.locale, currency_digits=False)
        else:
            text = format_currency(value, currency, locale=self.locale)
        return _CODE_TOUCHES_DIGIT.sub("\xa0", text)

    def amount(self, minor: int | None, currency: str) -> Markup:
        """An amount as the pages show it: one unit that moves to the next line whole, and breaks only
        when it is wider than the whole line (the style sheet's `.amount`)."""
        return Markup('<span class="amount">%s</span>') % escape(self.money(minor, currency))

    def number(self, n: int) -> str:
        return format_decimal(n, locale=self.locale)

    def percent(self, share: float | None) -> str:
        """A share (0.25) as the language writes a percentage ("25 %" in Swedish); "–" when there is none."""
        return "–" if share is None else format_percent(share, format="#,##0.#%", locale=self.locale)

    def decimal(self, value: float | None) -> str:
        return "–" if value is None else format_decimal(value, format="#,##0.##", locale=self.locale)

    def datetime(self, value: datetime | str | None) -> str:
        if value is None:
            return "–"
        if isinstance(value, str):
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        local = self._local(value)
        # With the zone's abbreviation (CET, CEST, EET): the person may be elsewhere, and the lender's
        # letter may give another zone's time. Babel's own zone names are "+0100" in English.
        zone = local.tzname() or ""
        return f"{format_datetime(local, 'medium', tzinfo=local.tzinfo, locale=self.locale)}\xa0{zone}".strip()

    def date(self, value: datetime | date | str | None) -> str:
        if value is None:
            return "–"
        if isinstance(value, str):
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        if isinstance(value, datetime):
            value = self._local(value).date()
        return format_date(value, "long", locale=self.locale)

    def _local(self, value: datetime) -> datetime:
        """In the person's time zone; in UTC for a time kept from before the API bounded times (e.g. a ban
        until 9999-12-31T23:59:59Z, which has no local equivalent east of UTC)."""
        if value.tzinfo is None:  # as Babel reads a naive time: UTC
            value = value.replace(tzinfo=UTC)
        try:
            return value.astimezone(self.zone)
        except OverflowError:
            return value.astimezone(UTC)
