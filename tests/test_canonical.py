"""Canonical JSON is hashed and the hashes are stored and published (state hashes, log leaves, exposure
receipts): the encoder may change only if its bytes do not. These tests hold orjson's output to the
standard library's encoding that the register used before, on generated documents."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from enum import StrEnum

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from register.canonical import canonical_json


def reference(doc: object) -> bytes:
    """The encoding as it was first written with the standard library."""

    def default(value: object) -> str:
        if isinstance(value, datetime):
            return value.isoformat().replace("+00:00", "Z")
        raise TypeError(type(value).__name__)

    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False,
                      default=default).encode()


class Kind(StrEnum):
    loan = "instalment_loan"


scalars = (st.none() | st.booleans() | st.integers(min_value=-(2**63), max_value=2**63 - 1) | st.text()
           | st.datetimes(timezones=st.just(UTC)) | st.sampled_from(list(Kind)))
documents = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                         | st.dictionaries(st.text(max_size=8), inner, max_size=5), max_leaves=25)


@settings(max_examples=400)
@given(documents)
def test_same_bytes_as_the_standard_library(doc: object) -> None:
    assert canonical_json(doc) == reference(doc)


def test_utc_times_end_in_z_and_other_offsets_are_kept() -> None:
    t = datetime(2026, 11, 23, 9, 30, 0, 120000, tzinfo=UTC)
    assert canonical_json({"t": t}) == b'{"t":"2026-11-23T09:30:00.120000Z"}'
    cet = datetime(2026, 11, 23, 10, 30, tzinfo=timezone(timedelta(hours=1)))
    assert canonical_json([cet]) == reference([cet]) == b'["2026-11-23T10:30:00+01:00"]'


def test_keys_sort_by_code_point_and_text_stays_utf8() -> None:
    doc = {"ö": 1, "a": 2, "Z": 3, "å": "Skuld € 84 300 kr"}
    assert canonical_json(doc) == reference(doc) == '{"Z":3,"a":2,"å":"Skuld € 84 300 kr","ö":1}'.encode()


def test_values_outside_canonical_json_are_refused() -> None:
    with pytest.raises(TypeError):
        canonical_json({"x": object()})
    with pytest.raises(TypeError):
        canonical_json({1: "non-string key"})
