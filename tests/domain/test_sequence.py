"""Sequential neighbours of identity numbers (register.domain.identity.sequence): what a scan in identity
order asks about next, valid numbers of the same birth date in every supported country."""

from __future__ import annotations

import random

import pytest

from register.domain.identity import SUPPORTED_COUNTRIES, NationalId, generate_national_id, parse_national_id
from register.domain.identity.national_id import _RULES
from register.domain.identity.sequence import neighbours


class TestNeighbours:
    @pytest.mark.parametrize("country", sorted(SUPPORTED_COUNTRIES))
    def test_they_are_valid_numbers_one_serial_away_on_the_same_birth_date(self, country):
        rng = random.Random(21)
        where = _RULES[country].serial
        for _ in range(200):
            nid = parse_national_id(country, generate_national_id(country, rng))
            found = neighbours(nid)
            assert 1 <= len(found) <= 2
            for n in found:
                assert parse_national_id(country, n.number, allow_test=True) == n  # a valid number
                assert n.number[: where.start] == nid.number[: where.start]  # the same birth date
                assert 1 <= abs(int(n.number[where]) - int(nid.number[where])) <= 3
            before = [n for n in found if int(n.number[where]) < int(nid.number[where])]
            assert len(before) <= 1

    def test_a_swedish_number_has_the_serials_on_either_side(self):
        nid = parse_national_id("SE", "19811218-9876")
        assert [n.number for n in neighbours(nid)] == ["198112189868", "198112189884"]

    def test_the_ends_of_the_range_have_one(self):
        first = NationalId(country="SE", number="198112180009")
        assert len(neighbours(first)) == 1 and neighbours(first)[0].number.startswith("19811218001")

    def test_a_norwegian_serial_that_cannot_be_issued_is_skipped(self):
        rng = random.Random(5)
        skipped = 0
        for _ in range(300):
            nid = parse_national_id("NO", generate_national_id("NO", rng))
            skipped += any(abs(int(n.number[6:9]) - int(nid.number[6:9])) > 1 for n in neighbours(nid))
        assert skipped > 0  # about one serial in five has no valid check digits
