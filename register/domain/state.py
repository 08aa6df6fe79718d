"""An obligation's columns and its state, as a report sets them: one mapping for single and batch reports.

The state is what a version records and what its hash is over (canonical JSON, register.canonical): the
reported fields, with persons by id.
"""

from __future__ import annotations

from typing import Any

from register.domain.obligation import ObligationReport

REPORTED_FIELDS = (
    "kind", "currency", "original_amount", "balance", "credit_limit", "monthly_payment", "interest_rate_bp",
    "opened_on", "matures_on", "status", "overdue_amount", "days_past_due", "original_creditor",
)  # fmt: skip


def fields_of(report: ObligationReport) -> dict[str, Any]:
    """The obligation columns a report sets: the one mapping, for single and batch reports alike."""
    values = report.__dict__  # the validated fields; read directly, this is on the batch path's every line
    out = {f: values[f] for f in REPORTED_FIELDS}
    out["kind"] = report.kind.value
    out["status"] = report.status.value
    out["collects_institution_id"] = report.collects.institution_id if report.collects else None
    out["collects_external_ref"] = report.collects.external_ref if report.collects else None
    out["handed_to_institution_id"] = report.handed_to.institution_id if report.handed_to else None
    out["handed_to_external_ref"] = report.handed_to.external_ref if report.handed_to else None
    out["registration_consent"] = report.registration_consent.model_dump(mode="json")
    out["as_of"] = report.as_of
    return out


def fields_of_line(line: dict[str, Any]) -> dict[str, Any]:
    """`fields_of` for a batch line as services.lines validates it: a dict of ReportLine's fields, nested
    models as dicts, enums as members, times in UTC. The same keys, values and order (tests/domain/test_fast_times.py
    holds the two equal)."""
    out = {f: line[f] for f in REPORTED_FIELDS}
    out["kind"] = line["kind"].value
    out["status"] = line["status"].value
    collects, handed_to = line["collects"], line["handed_to"]
    out["collects_institution_id"] = collects["institution_id"] if collects else None
    out["collects_external_ref"] = collects["external_ref"] if collects else None
    out["handed_to_institution_id"] = handed_to["institution_id"] if handed_to else None
    out["handed_to_external_ref"] = handed_to["external_ref"] if handed_to else None
    consent = line["registration_consent"]  # as model_dump(mode="json") gives it: a UTC time ends in Z
    out["registration_consent"] = {"reference": consent["reference"],
                                   "given_at": consent["given_at"].isoformat().replace("+00:00", "Z"),
                                   "method": consent["method"]}
    out["as_of"] = line["as_of"]
    return out


STATE_EXTRA = ("collects_institution_id", "collects_external_ref", "handed_to_institution_id",
               "handed_to_external_ref", "registration_consent", "as_of")  # beside REPORTED_FIELDS, in a state
_DATE_FIELDS = ("opened_on", "matures_on")


def state_of_fields(columns: dict[str, Any], debtors: list[tuple[str, str]]) -> dict[str, Any]:
    """state_of from obligation column values (`fields_of`'s output): the batch path's form."""
    state = {f: columns[f] for f in REPORTED_FIELDS}
    for f in _DATE_FIELDS:
        if state[f] is not None:
            state[f] = state[f].isoformat()
    state["collects"] = (
        {"institution_id": columns["collects_institution_id"], "external_ref": columns["collects_external_ref"]}
        if columns["collects_institution_id"]
        else None
    )
    if columns["handed_to_institution_id"]:  # only when reported: states (and hashes) from before it stay equal
        state["handed_to"] = {"institution_id": columns["handed_to_institution_id"],
                              "external_ref": columns["handed_to_external_ref"]}
    state["registration_consent"] = columns["registration_consent"]
    state["debtors"] = [{"person_id": p, "role": r} for p, r in sorted(debtors)]
    state["as_of"] = columns["as_of"].isoformat()
    return state
