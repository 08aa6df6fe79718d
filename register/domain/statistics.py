"""Public statistics: what the register may say about everyone without saying anything about anyone. Pure.

Every figure is a cell `{"value": N}`. A cell that rests on 1 to `MIN_PERSONS` - 1 persons is
suppressed, `{"value": null, "suppressed": true}`, with every other figure of its row: a count of lines,
a sum of balances or a count of lookups about 3 persons says something about those 3. The register
publishes no margins (no total over the rows of a table), so a suppressed row cannot be had back by
subtracting the others from a total.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from typing import Any

MIN_PERSONS = 10

# Arrears buckets, by a person's worst days past due over their live lines in one country.
BUCKETS = (("current", 0, 0), ("1-30", 1, 30), ("31-60", 31, 60), ("61-90", 61, 90), ("91-180", 91, 180),
           ("181+", 181, None))  # fmt: skip


def bucket_of(days_past_due: int) -> str:
    for name, low, high in BUCKETS:
        if days_past_due >= low and (high is None or days_past_due <= high):
            return name
    raise ValueError(f"days past due cannot be negative: {days_past_due}")


def cell(value: int | None) -> dict[str, Any]:
    return {"value": value}


SUPPRESSED: dict[str, Any] = {"value": None, "suppressed": True}


def row(keys: Mapping[str, Any], persons: int, figures: Mapping[str, int], *, min_persons: int = MIN_PERSONS) -> dict[str, Any]:
    """One row: its keys, then `persons` and each figure as cells, all suppressed under `min_persons`."""
    hidden = 0 < persons < min_persons  # nobody at all says nothing about anyone
    out: dict[str, Any] = dict(keys)
    out["persons"] = dict(SUPPRESSED) if hidden else cell(persons)
    for name, value in figures.items():
        out[name] = dict(SUPPRESSED) if hidden else cell(value)
    return out


CSV_COLUMNS = ("section", "country", "kind", "currency", "bucket", "month", "state", "measure", "value", "suppressed")


def to_csv(doc: Mapping[str, Any], sections: Iterable[str]) -> str:
    """Every cell of the document as one CSV line (RFC 4180): its section, its keys, the measure, the value
    (empty when suppressed) and whether it was suppressed."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for section in sections:
        for r in doc[section]:
            keys = {k: v for k, v in r.items() if not isinstance(v, dict)}
            for measure, c in r.items():
                if not isinstance(c, dict):
                    continue
                writer.writerow([section, *(keys.get(k, "") for k in CSV_COLUMNS[1:7]), measure,
                                 "" if c["value"] is None else c["value"], "true" if c.get("suppressed") else "false"])
    return out.getvalue()
