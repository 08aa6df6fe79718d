"""Institution sign-in: OAuth2 client credentials with a signed JWT assertion (RFC 7523 `private_key_jwt`)."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import parse_qsl

from fastapi import APIRouter, Depends, Request, Response

from register.api import examples as ex
from register.api.deps import Public, SessionDep, StateDep
from register.api.openapi import errors
from register.api.schemas import AccessTokenResponse, AuthorizationServerMetadata, OAuthProblem
from register.crypto.client_assertion import ALLOWED_ALGS, JWT_BEARER
from register.errors import OAuthError, UnsupportedGrantType
from register.services.oauth import issue_access_token

router = APIRouter(tags=["oauth"])

TOKEN_PATH = "/v1/oauth/token"
FORM = "application/x-www-form-urlencoded"
MAX_ASSERTION_CHARS = 8192
MAX_FIELDS = 16


async def token_form(request: Request) -> dict[str, str]:
    """The token request's parameters (RFC 6749 section 4.4.2 and RFC 7521 section 4.2), read here
    rather than with FastAPI's Form, which needs python-multipart for a form of four fields."""
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type != FORM:
        raise OAuthError(f"send the parameters as {FORM}")
    try:
        pairs = parse_qsl((await request.body()).decode("utf-8"), keep_blank_values=True, max_num_fields=MAX_FIELDS)
    except (UnicodeDecodeError, ValueError):
        raise OAuthError("the body is not a valid form") from None
    form: dict[str, str] = {}
    for name, value in pairs:
        if name in form:
            raise OAuthError(f"{name} is given more than once")
        form[name] = value
    return form


def _required(form: dict[str, str], name: str) -> str:
    value = form.get(name)
    if not value:
        raise OAuthError(f"{name} is missing")
    return value


TOKEN_REQUEST_BODY = {
    "required": True,
    "content": {FORM: {
        "schema": {
            "type": "object",
            "required": ["grant_type", "client_assertion_type", "client_assertion"],
            "properties": {
                "grant_type": {"type": "string", "enum": ["client_credentials"]},
                "client_assertion_type": {"type": "string", "enum": [JWT_BEARER]},
                "client_assertion": {"type": "string", "maxLength": MAX_ASSERTION_CHARS,
                                     "description": "A JWT signed with one of the institution's registered keys"},
                "client_id": {"type": "string", "description": "Optional; if given, the assertion's iss"},
            },
        },
        "example": ex.TOKEN_REQUEST,
    }},
}  # fmt: skip


@router.post(
    TOKEN_PATH,
    response_model=AccessTokenResponse,
    dependencies=[Depends(Public())],  # the assertion authenticates
    responses=errors("invalid_request", "unsupported_grant_type", "invalid_client", 413,
                     models={400: OAuthProblem, 401: OAuthProblem}),
    openapi_extra={"requestBody": TOKEN_REQUEST_BODY},
)
def post_token(
    form: Annotated[dict[str, str], Depends(token_form)],
    request: Request,
    response: Response,
    session: SessionDep,
    state: StateDep,
):
    """Exchange a client assertion for a short-lived access token (RFC 6749 section 4.4, RFC 7523 section
    2.2). Send `grant_type=client_credentials`,
    `client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer` and
    `client_assertion`: a JWT signed (EdDSA or ES256) with a key the operator registered for the
    institution, its `kid` in the header, and the claims `iss` = `sub` = the institution's id, `aud` =
    the register's token audience (`REGISTER_OAUTH_AUDIENCE`), `iat`, `exp` (at most 5 minutes after
    `iat`) and a `jti` never used before. The answer's `access_token` works as a bearer token like the
    institution's `rgt_` token until `expires_in` seconds pass or the operator revokes it.

    Refusals are problem+json with RFC 6749's `error` member as well: `400 invalid_request` (a missing,
    repeated or unsupported parameter), `400 unsupported_grant_type`, `401 invalid_client` (the assertion
    does not authenticate: its algorithm, key, signature, audience, times or a replayed `jti`)."""
    grant_type = _required(form, "grant_type")
    if grant_type != "client_credentials":
        raise UnsupportedGrantType("only grant_type=client_credentials is supported")
    if _required(form, "client_assertion_type") != JWT_BEARER:
        raise OAuthError(f"client_assertion_type must be {JWT_BEARER}")
    assertion = _required(form, "client_assertion")
    if len(assertion) > MAX_ASSERTION_CHARS:
        raise OAuthError(f"client_assertion is longer than {MAX_ASSERTION_CHARS} characters")
    if "client_secret" in form:
        raise OAuthError("authenticate with client_assertion only, not with a client_secret")
    issued = issue_access_token(
        session, assertion=assertion, client_id=form.get("client_id") or None,
        audience=state.settings.resolved_oauth_audience, ttl=state.settings.access_token_seconds,
        now=state.clock(), request_id=request.state.request_id,
    )  # fmt: skip
    request.scope["state"]["actor"] = issued.institution_id
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    return AccessTokenResponse(access_token=issued.access_token, expires_in=issued.expires_in)


@router.get(
    "/.well-known/oauth-authorization-server",
    response_model=AuthorizationServerMetadata,
    dependencies=[Depends(Public())],  # what anyone needs before signing in
)
def authorization_server_metadata(request: Request, state: StateDep):
    """How to sign in as an institution (RFC 8414 authorization server metadata): the token endpoint,
    the accepted client authentication (`private_key_jwt`, EdDSA or ES256) and, in
    `client_assertion_audience`, the `aud` every client assertion must carry. The SDK reads it to sign
    without being told the audience."""
    issuer = str(request.base_url).rstrip("/")
    return AuthorizationServerMetadata(
        issuer=issuer, token_endpoint=issuer + TOKEN_PATH,
        token_endpoint_auth_methods_supported=["private_key_jwt"],
        token_endpoint_auth_signing_alg_values_supported=sorted(ALLOWED_ALGS),
        grant_types_supported=["client_credentials"], response_types_supported=[],
        client_assertion_audience=state.settings.resolved_oauth_audience,
    )  # fmt: skip
