"""No national identity is stored in plain text, in any common spelling, in either database."""

from __future__ import annotations

import re
from pathlib import Path

from sqlalchemy import create_engine, make_url, text

from register.domain.identity import parse_national_id
from tests.factories import make_institution, national_id, new_ref, obligation_body


def spellings(country: str, raw: str) -> set[str]:
    """Every common way to write the number: as given, normalised, with and without separators."""
    nid = parse_national_id(country, raw, allow_test=True)
    digits = re.sub(r"\D", "", raw)
    out = {raw, nid.number, digits, re.sub(r"[-+]", "", nid.number)}
    if country == "SE":
        out |= {nid.number[2:], f"{nid.number[2:8]}-{nid.number[8:]}", f"{nid.number[:8]}-{nid.number[8:]}"}
    if country in ("NO", "DK", "PL"):
        out |= {f"{digits[:6]}-{digits[6:]}", f"{digits[:6]} {digits[6:]}"}
    # The long tail (last digits) alone would match random bytes; the spellings above are all >= 10 chars.
    return {s for s in out if len(s) >= 10}


def _raw_postgres_bytes(url: str) -> bytes:
    engine = create_engine(url)
    chunks: list[bytes] = []
    with engine.connect() as conn:
        tables = conn.execute(text("select tablename from pg_tables where schemaname = 'public'")).scalars().all()
        for table in tables:
            # Text rendering of every row (bytea appears as hex, so check its decoded bytes too).
            for row in conn.execute(text(f'select t::text from "{table}" t')).scalars():
                chunks.append(row.encode())
            for col in conn.execute(text(
                "select column_name from information_schema.columns where table_name = :t and data_type = 'bytea'"
            ), {"t": table}).scalars():
                chunks += [bytes(v) for v in conn.execute(text(f'select "{col}" from "{table}"')).scalars() if v]
    engine.dispose()
    return b"\n".join(chunks)


def _raw_sqlite_bytes(url: str) -> bytes:
    path = Path(make_url(url).database)
    return b"".join(p.read_bytes() for p in (path, Path(f"{path}-wal")) if p.exists())


class TestNoPlaintextIdentity:
    def test_reported_identities_are_not_in_the_database(self, client, admin_headers, app, database_url, backend):
        lender = make_institution(client, admin_headers, "lender")
        numbers = [("SE", national_id("SE")), ("SE", national_id("SE").replace("-", "")),
                   ("NO", national_id("NO")), ("FI", national_id("FI")), ("DK", national_id("DK")),
                   ("PL", national_id("PL"))]
        for country, number in numbers:
            body = obligation_body(debtors=[{"country": country, "national_id": number, "role": "primary"}])
            r = client.put(f"/v1/obligations/{new_ref()}", json=body, headers=lender.headers)
            assert r.status_code == 201, r.text
        raw = _raw_sqlite_bytes(database_url) if backend == "sqlite" else _raw_postgres_bytes(database_url)
        assert len(raw) > 1000  # the dump really holds the data
        for country, number in numbers:
            for spelling in spellings(country, number):
                assert spelling.encode() not in raw, f"{country} identity found in {backend} as {spelling!r}"
