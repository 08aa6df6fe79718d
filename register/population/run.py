"""One run of the generator: its seeded RNG, the country's money, the calendar and the market.

`start_run` does the setup once; the makers of persons and debts (persons.py, lines.py, loans.py, ...) read
what they need from the `Run` into locals of their own closures, because the generator is written for speed
(a million persons in under 40 s on a small shared VM): closures over locals, one dict per line built once,
and few calls per line. Nothing here draws from the RNG, so the order of the draws is the makers' alone.
"""

from __future__ import annotations

import random
from bisect import bisect
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from register.domain.currency import MINOR_UNITS
from register.domain.obligation import Kind
from register.population.figures import _COUNTRIES, _MIN_OPEN_BACK, _TROUBLE, _TROUBLE_FACTOR, _nice_step
from register.population.market import InstitutionSpec, Line


@dataclass(slots=True)
class Run:
    """The state one run shares between its makers (the mutable parts are shared objects, never rebound)."""

    rng: random.Random
    rand: Callable[[], float]
    lognorm: Callable[[float, float], float]
    country: str
    currency: str
    factor: float  # the country's amounts against SEK
    shift: int  # the country's rate shift in bp
    late_bp: int  # the country's late-payment interest in bp
    unit: int  # minor units in a major unit
    asof_ord: int  # the day ordinal of the given as_of
    open_max: int  # the latest opened_on
    day_of: Callable[[int], str | None]  # day ordinal -> ISO date, if already made
    day: Callable[[int], str]  # day ordinal -> ISO date
    as_ofs: list[str]  # every line's possible as_of: 0-3 days before the given one, to the minute
    names: dict[str, str]  # institution key -> name
    prefixes: dict[str, str]  # institution key -> external ref prefix
    counters: dict[str, int]  # institution key -> refs given so far
    lender: Callable[[str], str | None]  # kind -> a lender's key drawn by share (None: nobody reports it)
    collectors: tuple[tuple[str, ...], tuple[float, ...]]  # keys and cumulative shares
    has_collector: bool
    trouble_p: list[dict[str, float]]  # by appetite: kind -> chance of falling behind
    money: Callable[[float, int], int]  # SEK, SEK step -> minor units of the country, on a nice step
    whole: Callable[[float], int]  # minor units rounded to a whole major unit
    rate: Callable[[int, int], int]  # a rate drawn in the Swedish range, shifted to the country
    out: list[Line]  # the current person's lines
    recent: list[tuple[str, int]]  # (national id, age) of the last persons, for guarantors


def start_run(seed: int, country: str, at: datetime, institutions: tuple[InstitutionSpec, ...],
              ref_prefix: str) -> Run:  # fmt: skip
    """The setup of one run (arguments already checked by `generate`)."""
    rng = random.Random(f"register.population:{seed}:{country}")
    rand = rng.random
    currency, factor, shift, late_bp = _COUNTRIES[country]
    unit = 10 ** MINOR_UNITS[currency]
    asof_ord = at.date().toordinal()
    day_of, day, as_ofs = _calendar(at)
    names, prefixes, counters, lender, collectors, has_collector = _market(institutions, ref_prefix, rand)
    money, whole, rate = _money(factor, unit, shift, rand)
    return Run(
        rng=rng, rand=rand, lognorm=rng.lognormvariate, country=country, currency=currency, factor=factor,
        shift=shift,
        late_bp=late_bp, unit=unit, asof_ord=asof_ord, open_max=asof_ord - _MIN_OPEN_BACK, day_of=day_of, day=day,
        as_ofs=as_ofs, names=names, prefixes=prefixes, counters=counters, lender=lender, collectors=collectors,
        has_collector=has_collector, trouble_p=_trouble_chances(), money=money, whole=whole, rate=rate, out=[],
        recent=[],
    )  # fmt: skip


def _calendar(at: datetime) -> tuple[Callable[[int], str | None], Callable[[int], str], list[str]]:
    """ISO dates by day ordinal (made once each), and each line's possible as_of: 0-3 days before `at`."""
    days: dict[int, str] = {}  # day ordinal -> ISO date
    day_of = days.get

    def day(ordinal: int) -> str:
        s = day_of(ordinal)
        if s is None:
            s = days[ordinal] = date.fromordinal(ordinal).isoformat()
        return s

    base = at.replace(second=0, microsecond=0)
    as_ofs = [(base - timedelta(minutes=m)).strftime("%Y-%m-%dT%H:%M:%SZ") for m in range(3 * 1440 + 1)]
    return day_of, day, as_ofs


def _market(
    institutions: tuple[InstitutionSpec, ...], ref_prefix: str, rand: Callable[[], float]
) -> tuple[dict[str, str], dict[str, str], dict[str, int], Callable[[str], str | None],
           tuple[tuple[str, ...], tuple[float, ...]], bool]:  # fmt: skip
    """Institutions: lenders by kind (keys and cumulative shares), collectors, names, ref counters."""
    names = {s.key: s.name for s in institutions}
    prefixes = {s.key: ref_prefix + s.key.upper() + "-" for s in institutions}
    counters = dict.fromkeys(names, 0)

    def shares(specs: list[InstitutionSpec]) -> tuple[tuple[str, ...], tuple[float, ...]]:
        total = sum(s.share for s in specs)
        cum, acc = [], 0.0
        for s in specs[:-1]:
            acc += s.share
            cum.append(acc / total)
        return tuple(s.key for s in specs), tuple(cum)

    lenders = {
        kind.value: shares(specs)
        for kind in Kind
        if kind is not Kind.collection_claim
        for specs in [[s for s in institutions if s.role == "lender" and kind.value in s.kinds]]
        if specs
    }
    collector_specs = [s for s in institutions if s.role == "collector" and "collection_claim" in s.kinds]
    collectors = shares(collector_specs)

    def lender(kind: str) -> str | None:
        entry = lenders.get(kind)
        if entry is None:
            return None
        keys, cum = entry
        return keys[bisect(cum, rand())] if cum else keys[0]

    return names, prefixes, counters, lender, collectors, bool(collector_specs)


def _trouble_chances() -> list[dict[str, float]]:
    """By appetite (low, medium, high): kind -> the chance that a credit of that kind falls behind."""
    return [{k.value: _TROUBLE[a] * _TROUBLE_FACTOR.get(k.value, 1.0) for k in Kind} for a in range(3)]


def _money(
    factor: float, unit: int, shift: int, rand: Callable[[], float]
) -> tuple[Callable[[float, int], int], Callable[[float], int], Callable[[int, int], int]]:
    """Money: SEK figures scaled to the country, rounded to a nice local step, in minor units; rates."""
    steps: dict[int, int] = {}

    def money(sek: float, step_sek: int) -> int:
        step = steps.get(step_sek)
        if step is None:
            step = steps[step_sek] = _nice_step(step_sek * factor)
        return max(1, round(sek * factor / step)) * step * unit

    def whole(minor: float) -> int:
        """Minor units rounded to a whole major unit (payments)."""
        return max(unit, round(minor / unit) * unit)

    def rate(low: int, high: int) -> int:
        return max(0, low + int(rand() * ((high - low) // 10 + 1)) * 10 + shift)

    return money, whole, rate
