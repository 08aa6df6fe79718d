"""Files: the report lines as one NDJSON or CSV file per institution, and a CSV row back to a report line."""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import IO, Any

from register.population.figures import _KEY
from register.population.market import Line

CSV_COLUMNS: tuple[str, ...] = (
    "external_ref", "kind", "currency", "original_amount", "balance", "credit_limit", "monthly_payment",
    "interest_rate_bp", "opened_on", "matures_on", "status", "overdue_amount", "days_past_due",
    "original_creditor", "collects_institution_id", "collects_external_ref", "handed_to_institution_id",
    "handed_to_external_ref", "debtors", "registration_consent_reference", "registration_consent_given_at", "registration_consent_method", "as_of",
)  # fmt: skip

_INT_COLUMNS = frozenset(
    {"original_amount", "balance", "credit_limit", "monthly_payment", "interest_rate_bp", "overdue_amount",
     "days_past_due"}
)  # fmt: skip
_PLAIN_COLUMNS = ("external_ref", "kind", "currency", "original_amount", "balance", "credit_limit",
                  "monthly_payment", "interest_rate_bp", "opened_on", "matures_on", "status", "overdue_amount",
                  "days_past_due", "original_creditor")  # fmt: skip
_INT = re.compile(r"^-?[0-9]+$")


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        raise ValueError("booleans have no CSV spelling here")
    return str(value)


def to_csv_row(doc: Mapping[str, Any]) -> list[str]:
    """One report line (the JSON shape) as a CSV row in CSV_COLUMNS order; null is the empty cell.

    Debtors are `COUNTRY:NUMBER:ROLE` joined by `|`; a part containing `:` or `|` (or empty) cannot be
    written and raises ValueError, as does an empty string value (it would read back as null).
    """
    row = []
    for column in _PLAIN_COLUMNS:
        value = doc.get(column)
        if value == "":
            raise ValueError(f"{column}: an empty string cannot be told from null in CSV")
        row.append(_cell(value))
    for name in ("collects", "handed_to"):
        ref = doc.get(name)
        if ref:
            for part in ("institution_id", "external_ref"):
                if not ref.get(part):
                    raise ValueError(f"{name}.{part} is required")
            row += [str(ref["institution_id"]), str(ref["external_ref"])]
        else:
            row += ["", ""]
    parts = []
    for d in doc.get("debtors") or ():
        bits = (d["country"], d["national_id"], d["role"])
        if any(not b or ":" in b or "|" in b for b in bits):
            raise ValueError("a debtor's country, number or role is empty or contains ':' or '|'")
        parts.append(":".join(bits))
    row.append("|".join(parts))
    cons = doc.get("registration_consent")
    if cons:
        for part in ("reference", "given_at", "method"):
            if cons.get(part) in (None, ""):
                raise ValueError(f"registration_consent.{part} is required")
        row += [str(cons["reference"]), str(cons["given_at"]), str(cons["method"])]
    else:
        row += ["", "", ""]
    as_of = doc.get("as_of")
    if as_of == "":
        raise ValueError("as_of: an empty string cannot be told from null in CSV")
    row.append(_cell(as_of))
    return row


def from_csv_row(row: Mapping[str, str]) -> dict[str, Any]:
    """A CSV row (a csv.DictReader dict) back to the JSON shape: every field present, null for an empty
    (or missing) cell, integers for the integer columns. Raises ValueError for a malformed cell."""
    doc: dict[str, Any] = {}
    for column in _PLAIN_COLUMNS:
        value = row.get(column) or ""
        if value == "":
            doc[column] = None
        elif column in _INT_COLUMNS:
            if not _INT.match(value):
                raise ValueError(f"{column} is not an integer")
            doc[column] = int(value)
        else:
            doc[column] = value
    for name in ("collects", "handed_to"):
        inst, ref = row.get(f"{name}_institution_id") or "", row.get(f"{name}_external_ref") or ""
        if inst or ref:
            if not (inst and ref):
                raise ValueError(f"{name} needs both {name}_institution_id and {name}_external_ref")
            doc[name] = {"institution_id": inst, "external_ref": ref}
        else:
            doc[name] = None
    debtors_cell = row.get("debtors") or ""
    debtors = []
    if debtors_cell:
        for part in debtors_cell.split("|"):
            bits = part.split(":")
            if len(bits) != 3:
                raise ValueError("debtors are COUNTRY:NUMBER:ROLE separated by |")
            debtors.append({"country": bits[0], "national_id": bits[1], "role": bits[2]})
    doc["debtors"] = debtors
    cons = [row.get(f"registration_consent_{p}") or "" for p in ("reference", "given_at", "method")]
    if any(cons):
        if not all(cons):
            raise ValueError("registration_consent needs reference, given_at and method")
        doc["registration_consent"] = {"reference": cons[0], "given_at": cons[1], "method": cons[2]}
    else:
        doc["registration_consent"] = None
    doc["as_of"] = row.get("as_of") or None
    corrects = row.get("corrects_dispute") or ""  # optional column: a dispute this line corrects
    if corrects:
        doc["corrects_dispute"] = corrects
    return doc


def write_report_files(lines: Iterable[Line], directory: Path, *, fmt: str = "ndjson") -> dict[str, Path]:
    """Stream `lines` into one file per institution, `<key>.ndjson` or `<key>.csv` (with a header row),
    in `directory` (created if missing; existing files of those names are replaced). Returns
    key -> path for every institution that had at least one line."""
    if fmt not in ("ndjson", "csv"):
        raise ValueError("fmt must be ndjson or csv")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    files: dict[str, IO[str]] = {}
    writers: dict[str, Any] = {}
    paths: dict[str, Path] = {}
    dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
    try:
        for line in lines:
            key = line.institution
            fh = files.get(key)
            if fh is None:
                if not _KEY.match(key):
                    raise ValueError(f"institution key {key!r} cannot name a file")
                path = directory / f"{key}.{fmt}"
                fh = files[key] = path.open("w", encoding="utf-8", newline="", buffering=1 << 20)
                paths[key] = path
                if fmt == "csv":
                    writers[key] = csv.writer(fh, lineterminator="\n")
                    writers[key].writerow(CSV_COLUMNS)
            if fmt == "csv":
                writers[key].writerow(to_csv_row(line.doc))
            else:
                fh.write(dumps(line.doc))
                fh.write("\n")
    finally:
        for fh in files.values():
            fh.close()
    return paths
