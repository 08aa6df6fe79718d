"""Public statistics: no sign-in (SPEC.md, "Public statistics")."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from starlette.responses import Response

from register.api.deps import Public, StateDep
from register.api.openapi import errors
from register.api.schemas.statistics import StatisticsPublic
from register.services.statistics import as_csv, statistics_of

router = APIRouter(tags=["statistics"])
PublicDep = Annotated[None, Depends(Public())]


@router.get("/v1/statistics", response_model=StatisticsPublic, response_model_exclude_defaults=True,
            responses={200: {"content": {"text/csv": {"example": "section,country,kind,currency,bucket,month,state,"
                                                                  "measure,value,suppressed\r\n"}}}, **errors(422)})
def statistics(state: StateDep, _: PublicDep,
               format: Annotated[Literal["json", "csv"], Query(description="json (default) or csv")] = "json"):  # noqa: A002
    """Totals of live lines by country and kind, persons by arrears bucket, persons with a collection claim,
    lookups per month and disputes by state. A row resting on fewer than 10 persons is suppressed
    (`{"value": null, "suppressed": true}`); no margins are published. Computed at most once per
    `REGISTER_STATISTICS_SECONDS` per server process."""
    doc = statistics_of(state).current()
    if format == "csv":
        return Response(as_csv(doc), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": 'attachment; filename="register-statistics.csv"'})
    return doc
