from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text
from starlette.responses import JSONResponse, Response

from register.api.deps import Public, StateDep

router = APIRouter(tags=["operations"])
PublicDep = Annotated[None, Depends(Public())]


@router.get("/healthz")
def healthz(state: StateDep, _: PublicDep):
    """200 when the database answers, 503 when it does not. No authentication."""
    try:
        with state.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception:  # noqa: BLE001 - any failure to reach the database is "unhealthy"
        return JSONResponse({"status": "unavailable", "database": "unreachable"}, status_code=503)
    return {"status": "ok", "database": "ok"}


@router.get("/livez")
def livez(_: PublicDep):
    """200 while the process serves requests; touches nothing else (liveness, and the benchmarks' baseline)."""
    return {"status": "alive"}


@router.get("/metrics")
def metrics(request: Request, _: PublicDep):
    """Prometheus text format: requests by route and status, latency histograms."""
    return Response(generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST)
