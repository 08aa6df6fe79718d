"""The market: the institutions that report, and a report line with the institution that reports it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from register.domain.obligation import Kind
from register.population.figures import _KEY, _ROLES


@dataclass(frozen=True, slots=True)
class InstitutionSpec:
    """An institution of the synthetic market."""

    key: str  # stable short key: [a-z][a-z0-9_]*, also the prefix of its external refs
    name: str
    role: str  # "lender" | "collector"
    kinds: tuple[str, ...]  # kinds it reports (collectors: collection_claim)
    share: float  # market share among the lenders (or collectors) of those kinds


DEFAULT_INSTITUTIONS: tuple[InstitutionSpec, ...] = (
    InstitutionSpec("nordbank", "Nordbank AB", "lender",
                    ("mortgage", "instalment_loan", "credit_card", "overdraft", "vehicle_loan"), 0.40),
    InstitutionSpec("kortbolaget", "Kortbolaget AB", "lender", ("credit_card", "revolving_credit"), 0.35),
    InstitutionSpec("snabblan", "Snabblån Sverige AB", "lender", ("instalment_loan", "revolving_credit"), 0.20),
    InstitutionSpec("lanekompaniet", "Lånekompaniet Norden AB", "lender", ("instalment_loan",), 0.15),
    InstitutionSpec("betalasenare", "Betala Senare AB", "lender", ("buy_now_pay_later",), 1.0),
    InstitutionSpec("bilfinans", "Bilfinans Norden AB", "lender", ("vehicle_loan",), 0.60),
    InstitutionSpec("studiemedel", "Studiemedelsverket (demo)", "lender", ("student_loan",), 1.0),
    InstitutionSpec("inkasso", "Trygg Inkasso AB", "collector", ("collection_claim",), 0.60),
    InstitutionSpec("fordran", "Nordisk Fordran AB", "collector", ("collection_claim",), 0.40),
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Line:
    """One report line and the institution that reports it.

    `doc` has exactly the `ObligationReport` fields plus `external_ref`, JSON-ready: dates and times as
    ISO strings, amounts as integers in minor units, absent values as None. For a collection claim
    `doc["collects"]["institution_id"]` is the collected lender's key; for a line a collector holds,
    `doc["handed_to"]["institution_id"]` is that collector's key (see the module docstring).
    """

    institution: str
    doc: dict[str, Any]

    @property
    def collects_key(self) -> str | None:
        """The key of the lender whose line this collection claim collects (None for other lines)."""
        collects = self.doc.get("collects")
        return collects["institution_id"] if collects else None

    @property
    def handed_to_key(self) -> str | None:
        """The key of the collector whose claim holds this line now (None for other lines)."""
        handed_to = self.doc.get("handed_to")
        return handed_to["institution_id"] if handed_to else None


def resolve_institution_ids(doc: dict[str, Any], ids: Mapping[str, str]) -> dict[str, Any]:
    """The doc with the institution keys in `collects` and `handed_to` replaced by those institutions' ids
    from `ids`.

    Returns `doc` itself when it names no other line, else a shallow copy; raises KeyError for a key
    missing from `ids`.
    """
    named = [f for f in ("collects", "handed_to") if doc.get(f)]
    if not named:
        return doc
    out = dict(doc)
    for f in named:
        out[f] = {"institution_id": ids[doc[f]["institution_id"]], "external_ref": doc[f]["external_ref"]}
    return out



def check_institutions(institutions: tuple[InstitutionSpec, ...]) -> None:
    """Raises ValueError unless every institution has a valid, unique key, a role, known kinds and a share."""
    keys = set()
    valid_kinds = {k.value for k in Kind}
    for spec in institutions:
        if not _KEY.match(spec.key):
            raise ValueError(f"institution key {spec.key!r}: lower-case letters, digits and _ (max 40)")
        if spec.key in keys:
            raise ValueError(f"institution key {spec.key!r} appears twice")
        keys.add(spec.key)
        if spec.role not in _ROLES:
            raise ValueError(f"institution {spec.key!r}: role must be lender or collector")
        for kind in spec.kinds:
            if kind not in valid_kinds:
                raise ValueError(f"institution {spec.key!r}: unknown kind {kind!r}")
        if not spec.share > 0:
            raise ValueError(f"institution {spec.key!r}: share must be positive")

