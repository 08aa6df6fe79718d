from __future__ import annotations

import json
from typing import Annotated, Literal

from fastapi import APIRouter, Header, Path, Request, Response
from starlette.concurrency import run_in_threadpool
from starlette.responses import StreamingResponse

from register.api import examples as ex
from register.api.deps import CanReadObligations, CanWriteObligations, SessionDep, StateDep
from register.api.openapi import errors, example_response
from register.api.schemas import ReportPublic
from register.errors import PayloadTooLarge
from register.services import report_upload as upload
from register.services import reports as svc

router = APIRouter(prefix="/v1/reports", tags=["reports"])
ReportId = Annotated[str, Path(max_length=36)]


class NDJSONResponse(StreamingResponse):
    media_type = "application/x-ndjson"  # for the OpenAPI document: the route sets it on its own response

BODY_DOC = {
    "required": True,
    "description": "One obligation per line: NDJSON (each line a PUT body plus `external_ref`) or CSV with a "
                   "header row (see SPEC.md). Any size; streamed.",
    "content": {"application/x-ndjson": {"schema": {"type": "string"}, "example": ex.REPORT_NDJSON},
                "text/csv": {"schema": {"type": "string"}, "example": ex.REPORT_CSV}},
}  # fmt: skip


@router.post(
    "",
    status_code=202,
    response_model=ReportPublic,
    responses={
        200: {"model": ReportPublic, "description": "The same Idempotency-Key and body: the first report"},
        **errors(401, 403, "idempotency_conflict", 413, 422, "empty_report"),
    },
    openapi_extra={"requestBody": BODY_DOC},
)
async def post_report(
    request: Request,
    response: Response,
    state: StateDep,
    principal: CanWriteObligations,
    mode: Literal["delta", "snapshot"] = "delta",
    format: Literal["ndjson", "csv"] | None = None,  # noqa: A002 - the query parameter's name
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
):
    """Upload a batch report of any size. It is stored durably (encrypted) before the 202 and processed in
    the background: follow it at `GET /v1/reports/{id}`. `mode=snapshot` also marks this institution's
    obligations missing from the file as no longer reported. The body is committed in chunks as it
    arrives (status `receiving`, not yet processed); a body that stops arriving for
    `REGISTER_BODY_TIMEOUT_SECONDS` is 408 and the upload expires, freeing its Idempotency-Key."""
    fmt = format or ("csv" if "csv" in request.headers.get("content-type", "") else "ndjson")
    limit = state.settings.max_report_bytes

    async def body():
        seen = 0
        async for piece in request.stream():
            seen += len(piece)
            if seen > limit:
                raise PayloadTooLarge(f"reports are limited to {limit} bytes", headers={"Connection": "close"})
            yield piece

    try:
        report = await upload.receive_report(
            state.sessions, state.cipher, principal=principal, body=body(), mode=mode, fmt=fmt,
            idempotency_key=idempotency_key, now=state.clock, request_id=request.state.request_id,
            run_sync=run_in_threadpool,
        )
    except upload.SameReport as same:
        response.status_code = 200
        report = await run_in_threadpool(svc.read_report, state.sessions, principal=principal,
                                         report_id=same.report_id)
    response.headers["Location"] = f"/v1/reports/{report.id}"
    if state.report_worker is not None:
        state.report_worker.wake()
    return svc.report_summary(report)


@router.get("/{report_id}", response_model=ReportPublic, responses=errors(401, 403, 404, 422))
def get_report(report_id: ReportId, session: SessionDep, principal: CanReadObligations):
    """A report's status (received, processing, done, failed), lines read, accepted, unchanged, rejected,
    progress and timing. Another institution's report is 404."""
    return svc.report_summary(svc.get_report(session, principal=principal, report_id=report_id))


@router.get(
    "/{report_id}/errors",
    response_class=NDJSONResponse,
    responses={200: example_response(ex.REPORT_ERRORS, NDJSONResponse.media_type), **errors(401, 403, 404, 422)},
)
def get_report_errors(report_id: ReportId, session: SessionDep, state: StateDep, principal: CanReadObligations):
    """Every rejected line as NDJSON `{line, code, detail}` (lines numbered from 1), streamed."""
    svc.get_report(session, principal=principal, report_id=report_id)

    def lines():
        for e in svc.iter_errors(state.sessions, report_id):
            yield json.dumps({"line": e.line, "code": e.code, "detail": e.detail}, ensure_ascii=False) + "\n"

    return StreamingResponse(lines(), media_type="application/x-ndjson")
