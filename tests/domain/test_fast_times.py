"""The batch path checks a line's dates and times inside pydantic-core first (domain.types, FastTimestamp and
FastIsoDate) and falls back to the reference types (Timestamp, IsoDate) for whatever they refuse. That is only
right if they never accept what the reference refuses, nor read a spelling as another value: tried here on
many spellings near the edges (offsets, fractions, separators, impossible days, the ends of the range), and
on whole lines through services.lines."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from register.domain.state import fields_of, fields_of_line
from register.domain.types import FastIsoDate, FastTimestamp, IsoDate, Timestamp
from register.services import lines
from tests.factories import obligation_body

_FAST_TIME, _TIME = TypeAdapter(FastTimestamp), TypeAdapter(Timestamp)
_FAST_DATE, _DATE = TypeAdapter(FastIsoDate), TypeAdapter(IsoDate)

_when = st.datetimes(min_value=datetime(1899, 12, 30), max_value=datetime(9999, 12, 31, 23, 59, 59))


@st.composite
def _dates(draw: st.DrawFn) -> str:
    """A date as a client may spell it: valid, or with one field out of place."""
    day = draw(_when).date().isoformat()
    return draw(st.one_of(st.just(day), st.builds(_mutated, st.just(day), st.integers(0, 99))))


@st.composite
def _times(draw: st.DrawFn) -> str:
    """A time in one of the spellings the reference accepts (separators, seconds or none, 1-6 fraction digits,
    Z or z or an offset), or that spelling with one field out of place."""
    when = draw(_when)
    text = when.strftime("%Y-%m-%d") + draw(st.sampled_from("Tt ")) + when.strftime("%H:%M")
    if draw(st.booleans()):
        text += when.strftime(":%S")
        digits = draw(st.integers(0, 6))
        text += f".{when.microsecond:06d}"[: digits + 1] if digits else ""
    sign = draw(st.sampled_from("+-"))
    text += draw(st.one_of(st.sampled_from(["Z", "z"]), st.builds(lambda h, m: f"{sign}{h:02d}:{m:02d}",
                                                                  st.integers(0, 23), st.integers(0, 59))))
    return draw(st.one_of(st.just(text), st.builds(_mutated, st.just(text), st.integers(0, 99))))


_EDGES = ["00", "13", "24", "32", "60", "61", "99", "1", "0000", "10000", "+0100", "+24:00", "", "_", ".", "1234567",
          "\u0662\u0660"]


def _mutated(text: str, seed: int) -> str:
    """`text` with one run of digits (or one other character) replaced by a value near an edge."""
    runs = [m.span() for m in re.finditer(r"[0-9]+|[^0-9]", text)]
    start, end = runs[seed % len(runs)]
    return text[:start] + _EDGES[seed // len(runs) % len(_EDGES)] + text[end:]


def _outcome(adapter: TypeAdapter, value: object) -> object:
    try:
        return adapter.validate_json(json.dumps(value))
    except ValidationError:
        return None


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(_times(), st.text(max_size=30), st.integers(), st.floats(allow_nan=False), st.none()))
@example("2026-10-30T08:21:00.1234567Z")
@example("0001-01-01T00:00:00+14:00")
@example("9999-12-30T23:00:00-14:00")
@example("1899-12-31T23:00:00-02:00")
@example("9999-12-30T23:59:59.999999Z")
@example("1900-01-01T00:00:00+00:01")
@example("2024-02-29T12:00Z")
@example("2023-02-29T12:00Z")
@example("２０２６-10-30T08:21:00Z")
def test_a_fast_time_is_one_the_reference_accepts_with_the_same_value(value: object) -> None:
    fast = _outcome(_FAST_TIME, value)
    if fast is not None:
        reference = _outcome(_TIME, value)
        assert reference is not None, value
        assert fast.astimezone(UTC) == reference and reference.tzinfo is UTC  # type: ignore[attr-defined]
        assert fast.astimezone(UTC).isoformat() == reference.isoformat()  # type: ignore[attr-defined]


@settings(max_examples=2000, deadline=None)
@given(st.one_of(_dates(), st.text(max_size=12), st.integers(), st.none()))
@example("1899-12-31")
@example("1900-01-01")
@example("9999-12-31")
@example("2023-02-29")
@example("2024-02-29")
def test_a_fast_date_is_one_the_reference_accepts_with_the_same_value(value: object) -> None:
    fast = _outcome(_FAST_DATE, value)
    if fast is not None:
        assert _outcome(_DATE, value) == fast, value


def _line(**overrides: object) -> dict:
    return {**obligation_body(), "external_ref": "R-1", **overrides}


def test_a_line_reads_as_the_reference_reads_it_through_either_path() -> None:
    """Times in UTC (with the same tzinfo the single report's path gives), and a line the fast types refuse gets
    the reference's own error, word for word."""
    good = _line(as_of="2026-11-30T09:15:00+01:00", opened_on="2020-02-29",
                 registration_consent={"reference": "A-1", "given_at": "2020-02-29 10:00:00.5-02:30", "method": "paper"})
    raw = json.dumps(good).encode()
    fast, reference = lines._validated(raw), lines.ReportLine.model_validate_json(raw)
    assert fast == reference.model_dump()
    # what the columns store, in the same order, with the same JSON for the consent
    assert list(fields_of_line(fast).items()) == list(fields_of(reference).items())
    assert fast["as_of"].tzinfo is UTC and fast["registration_consent"]["given_at"].tzinfo is UTC
    assert lines._validated(good) == reference.model_dump()  # a CSV line arrives as a dict
    for bad in (_line(as_of="2026-11-30T09:15:00"), _line(as_of="2026-02-30T09:15:00Z"), _line(matures_on="2026-13-01"),
                _line(as_of="0001-01-01T00:00:00+14:00"), _line(opened_on=20200101), _line(as_of="2026-11-30T09:15:00+0100")):
        raw = json.dumps(bad).encode()
        try:
            lines.ReportLine.model_validate_json(raw)
        except ValidationError as exc:
            expected = exc.errors(include_context=False)
        else:
            raise AssertionError(f"the reference accepts {bad}")
        try:
            lines._validated(raw)
        except ValidationError as exc:
            assert exc.errors(include_context=False) == expected
        else:
            raise AssertionError(f"the batch path accepts {bad}")


_REF = {"institution_id": "b7d5c3e0-0000-4000-8000-000000000001", "external_ref": "C-1"}
_CONSENT = {"reference": "A-1", "given_at": "2024-02-28T10:00:00Z", "method": "paper"}
_DEBTOR = {"country": "SE", "national_id": "19870108-4009", "role": "primary"}


def _variants() -> list[dict]:
    """Lines the reference refuses, one rule each, and some it accepts with a value changed (a stripped text,
    an optional field absent or null), for every kind of field the line has, nested ones included."""
    bad = {"kind": ["loan", None, 1], "currency": ["sek", "SEKK", 1, None], "balance": [True, 1.0, "1", -1, 10**15 + 1, None],
           "original_amount": [True, "100"], "interest_rate_bp": [100_001, -1, 1.5], "days_past_due": [None, 100_001, False],
           "overdue_amount": [None, "0"], "status": ["Current", None], "original_creditor": ["", "   ", "x" * 201, 1],
           "external_ref": ["", "a b", "x" * 201, None, 5], "corrects_dispute": ["not-a-uuid", 1],
           "debtors": [[], [_DEBTOR] * 11, None, [{**_DEBTOR, "extra": 1}], [{**_DEBTOR, "country": "se"}],
                       [{**_DEBTOR, "role": "owner"}], [{**_DEBTOR, "national_id": ""}], [{"country": "SE", "role": "primary"}]],
           "collects": [{**_REF, "institution_id": "X"}, {**_REF, "extra": 1}, {"external_ref": "C-1"}, "C-1"],
           "handed_to": [{**_REF, "external_ref": "a b"}, []],
           "registration_consent": [{**_CONSENT, "method": "Paper"}, {**_CONSENT, "extra": 1}, {**_CONSENT, "reference": " "},
                                    {"reference": "A-1", "given_at": "2024-02-28T10:00:00Z"}, None],
           "unknown_field": [1]}
    out = [_line(**{name: value}) for name, values in bad.items() for value in values]
    out += [{k: v for k, v in _line().items() if k != name} for name in ("kind", "balance", "status", "as_of", "debtors",
                                                                          "registration_consent", "external_ref")]
    good = [_line(original_creditor="  Bank  "), _line(original_amount=None, credit_limit=None), _line(collects=_REF),
            _line(handed_to=_REF, corrects_dispute="b7d5c3e0-0000-4000-8000-000000000002"),
            {k: v for k, v in _line().items() if k not in ("original_amount", "opened_on", "matures_on", "interest_rate_bp")},
            _line(registration_consent={**_CONSENT, "reference": " A-2 "}), _line(debtors=[_DEBTOR, {**_DEBTOR, "role": "guarantor"}])]
    return out + good


def test_a_line_is_accepted_or_refused_as_the_reference_does_for_every_kind_of_field() -> None:
    """The batch path's plain-dict validation is built from ReportLine's own fields (services.lines, `_doc_type`):
    whatever it accepts, the reference accepts with the same values; whatever the reference refuses, it refuses
    with the reference's own errors. Tried as JSON and as a dict (a CSV line)."""
    refused = accepted = 0
    for doc in _variants():
        for given_as in (json.dumps(doc).encode(), doc):
            try:
                reference = (lines.ReportLine.model_validate_json(given_as) if isinstance(given_as, bytes)
                             else lines.ReportLine.model_validate(given_as))
            except ValidationError as exc:
                refused += 1
                try:
                    lines._validated(given_as)
                except ValidationError as fast_exc:
                    assert fast_exc.errors(include_context=False) == exc.errors(include_context=False), doc
                else:
                    raise AssertionError(f"the batch path accepts {doc}")
                continue
            accepted += 1
            fast = lines._validated(given_as)
            assert fast == reference.model_dump(), doc
            assert list(fields_of_line(fast).items()) == list(fields_of(reference).items()), doc
    assert refused > 100 and accepted >= 14  # the variants are what they say
