"""RFC 9457 problem documents, as the OpenAPI document describes them."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from register.api import examples as ex
from register.api.schemas.exposure import ReceiptPublic


class Problem(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [ex.PROBLEM]})

    type: str
    title: str
    status: int
    detail: str
    code: str
    request_id: str | None = None
    errors: list[dict[str, Any]] | None = None


class OAuthProblem(Problem):
    """A token endpoint refusal: a problem with RFC 6749's `error` (= `code`) and `error_description`."""

    model_config = ConfigDict(json_schema_extra={"examples": [ex.OAUTH_PROBLEM]})

    error: str = Field(description="invalid_request, invalid_client or unsupported_grant_type")
    error_description: str | None = None


class ProblemWithReceipt(Problem):
    model_config = ConfigDict(json_schema_extra={"examples": [ex.PROBLEM_WITH_RECEIPT]})

    receipt: ReceiptPublic | None = None
