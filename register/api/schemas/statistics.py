"""The public statistics (GET /v1/statistics)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from register.api import examples as ex


class Cell(BaseModel):
    value: int | None = Field(description="null when suppressed")
    suppressed: bool = Field(default=False, description="true when the row rests on fewer than `min_persons` persons")


class LinesRow(BaseModel):
    country: str | None = Field(description="The reporting institution's country")
    kind: str
    currency: str
    persons: Cell
    lines: Cell
    balance: Cell = Field(description="Sum of balances, in minor units of `currency`")


class ArrearsRow(BaseModel):
    country: str | None
    bucket: str = Field(description="A person's worst days past due over their live lines in the country: "
                                    "current, 1-30, 31-60, 61-90, 91-180, 181+")
    persons: Cell


class CollectionRow(BaseModel):
    country: str | None = Field(description="The collector's country")
    persons: Cell
    claims: Cell


class LookupsRow(BaseModel):
    month: str = Field(description="YYYY-MM, UTC")
    persons: Cell = Field(description="Distinct persons looked up in the month")
    granted: Cell
    refused: Cell


class DisputesRow(BaseModel):
    state: str = Field(description="open, overdue, corrected, upheld, withdrawn")
    persons: Cell
    disputes: Cell


class StatisticsPublic(BaseModel):
    """Aggregates over the whole register; every row resting on fewer than `min_persons` persons is suppressed."""

    model_config = ConfigDict(json_schema_extra={"examples": [ex.STATISTICS]})

    as_of: datetime = Field(description="When these figures were computed")
    min_persons: int
    obligations: list[LinesRow] = Field(description="Live lines (not closed, not retracted)")
    arrears: list[ArrearsRow]
    collection: list[CollectionRow]
    lookups: list[LookupsRow] = Field(description="Lenders' and collectors' exposure queries, the last 12 months")
    disputes: list[DisputesRow]
