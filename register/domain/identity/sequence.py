"""Sequential neighbours of an identity number: the numbers a bulk scan in identity order asks about just
before or just after it (SPEC.md "Signals", `sequential_lookups`).

The individual (serial) part of the canonical number is stepped by one, down and up, and the check part
recomputed, by the country's module (`CountryRule.with_serial`). A serial whose check digit cannot be
formed (Norway's mod 11 giving 10), or that the country's rule refuses (a Norwegian or Danish serial
outside its birth year's century range), is never issued, so the step goes on to the next valid one (at
most three). Same birth date only: a scan that crosses a day is seen again on the next number.
"""

from __future__ import annotations

from register.domain.identity.national_id import _RULES, NationalId, parse_national_id
from register.domain.identity.rule import InvalidNationalId

_CENTURY_IN_SERIAL = {"NO", "DK"}  # a step may leave the birth year's range: checked by the country's rule
_MAX_STEPS = 3


def _valid(country: str, number: str) -> bool:
    try:
        parse_national_id(country, number, allow_test=True)
    except InvalidNationalId:
        return False
    return True


def neighbours(nid: NationalId) -> list[NationalId]:
    """The numbers just before and just after `nid` in its country's serial order (same birth date), each
    a valid number; fewer at the ends of the range."""
    rule = _RULES[nid.country]
    serial = int(nid.number[rule.serial])
    out = []
    for step in (-1, 1):
        for k in range(1, _MAX_STEPS + 1):
            number = rule.with_serial(nid.number, serial + step * k)
            if number is None:
                break
            if number and (nid.country not in _CENTURY_IN_SERIAL or _valid(nid.country, number)):
                out.append(NationalId(country=nid.country, number=number))
                break
    return out
