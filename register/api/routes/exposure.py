from __future__ import annotations

import orjson
from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, Response

from register.api.deps import CanQueryExposure, StateDep, in_transaction
from register.api.openapi import errors
from register.api.schemas import ExposurePublic, ExposureRequest, ProblemWithReceipt
from register.services.exposure import query_exposure

router = APIRouter(prefix="/v1/exposure", tags=["exposure"])


@router.post(
    "",
    response_model=ExposurePublic,
    responses=errors(
        401, 403, "consent_missing", "consent_mismatch", "consent_revoked", "consent_expired", 413, 422,
        "invalid_national_id", 429, "quota_exceeded", "attested_rate_limited", "attested_quota_exceeded",
        models={403: ProblemWithReceipt, 429: ProblemWithReceipt},
    ),
)
async def post_exposure(body: ExposureRequest, request: Request, state: StateDep, principal: CanQueryExposure):
    """A person's total exposure, for a lender holding their active consent for this purpose. Refused
    with 403 (consent_missing, consent_expired, consent_revoked, consent_mismatch) otherwise, and with 429
    and Retry-After over the institution's rate (rate_limited) or daily quota (quota_exceeded), or, with an
    attested consent, over the lower attested rate (attested_rate_limited) or attested daily quota
    (attested_quota_exceeded). Granted or refused, the query is recorded in the access log that the person
    and the regulator read."""
    # The lender's hot path: the whole answer, its transaction included, in one thread-pool call (see
    # deps.in_transaction); the access event is durable before the answer is sent.
    now, request_id = state.clock(), request.state.request_id
    answer = await run_in_threadpool(in_transaction, state, lambda session: query_exposure(
        session, state.cipher, principal=principal, country=body.country, national_id=body.national_id,
        purpose=body.purpose, consent_id=body.consent_id, now=now, request_id=request_id,
        allow_test_ids=state.settings.accept_test_identities, tlog=state.tlog, limits=state.exposure_limits,
    ))
    # Already JSON-ready and built to ExposurePublic (a test holds it to that model): re-validating it here
    # cost 0.5 ms of a 6.7 ms request. Encoded by orjson, as compact as JSONResponse's: the standard
    # library's encoder was 3.3 % of the server's GIL time under load (py-spy), orjson a tenth of that.
    # orjson refuses integers past 64 bits (a total over many lines at the largest amounts could be one):
    # those answers go through the standard library, as before.
    try:
        body = orjson.dumps(answer)
    except TypeError:
        return JSONResponse(answer)
    return Response(body, media_type="application/json")
