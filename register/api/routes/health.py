from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text
from starlette.responses import JSONResponse, PlainTextResponse, Response

from register.api import examples as ex
from register.api.deps import Public, StateDep
from register.api.openapi import example_response

router = APIRouter(tags=["operations"])
PublicDep = Annotated[None, Depends(Public())]


@router.get(
    "/healthz",
    responses={200: example_response(ex.HEALTHY),
               503: example_response(ex.UNHEALTHY, description="The database does not answer")},
)
def healthz(state: StateDep, _: PublicDep):
    """200 when the database answers, 503 when it does not. No authentication."""
    try:
        with state.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception:  # noqa: BLE001 - any failure to reach the database is "unhealthy"
        return JSONResponse({"status": "unavailable", "database": "unreachable"}, status_code=503)
    return {"status": "ok", "database": "ok"}


@router.get("/livez", responses={200: example_response(ex.ALIVE)})
def livez(_: PublicDep):
    """200 while the process serves requests; touches nothing else (liveness, and the benchmarks' baseline)."""
    return {"status": "alive"}


@router.get("/metrics", response_class=PlainTextResponse, responses={200: example_response(ex.METRICS, "text/plain")})
def metrics(request: Request, _: PublicDep):
    """Prometheus text format: requests by route and status, latency histograms."""
    return Response(generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST)
