"""Institutions, their keys and tokens, and the token endpoint's metadata."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictStr, StringConstraints

from register.api import examples as ex
from register.domain.obligation import (
    StrictModel,
)
from register.domain.permission import Role
from register.domain.types import CountryCode, JsonObject


class ContactIn(StrictModel):
    """How a person reaches the institution about a debt: shown on the person's pages."""

    phone: Annotated[StrictStr, StringConstraints(min_length=3, max_length=40, pattern=r"^\+?[0-9 ()-]+$")] | None = None
    email: Annotated[StrictStr, StringConstraints(min_length=3, max_length=200, pattern=r"^[^@\s]+@[^@\s]+$")] | None = None
    url: Annotated[StrictStr, StringConstraints(max_length=300, pattern=r"^https://\S+$")] | None = None


class ContactPublic(BaseModel):
    phone: str | None = None
    email: str | None = None
    url: str | None = None


class InstitutionCreate(StrictModel):
    model_config = ConfigDict(json_schema_extra={"examples": [ex.INSTITUTION_CREATE]})

    name: Annotated[StrictStr, StringConstraints(min_length=1, max_length=200, strip_whitespace=True)]
    role: Annotated[Role, Field(description="lender, collector or regulator")]
    org_number: Annotated[StrictStr, StringConstraints(min_length=1, max_length=40)] | None = None
    country: CountryCode | None = None
    contact: ContactIn | None = Field(default=None, description="How a person reaches it about a debt")


class InstitutionPublic(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [ex.INSTITUTION]})

    id: str
    name: str
    role: str
    org_number: str | None = None
    country: str | None = None
    created_at: datetime


class InstitutionCreated(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [ex.INSTITUTION_CREATED]})

    id: str
    name: str
    role: str
    token: str = Field(description="Bearer token. Shown once: the register keeps only its hash.")


class InstitutionsPublic(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [ex.INSTITUTIONS]})

    items: list[InstitutionPublic]


class InstitutionKeyCreate(StrictModel):
    """A public key for signing client assertions: exactly one of `jwk` and `pem`."""

    model_config = ConfigDict(json_schema_extra={"examples": [ex.KEY_CREATE]})

    jwk: JsonObject | None = Field(default=None, description="A public JWK: OKP/Ed25519 or EC/P-256")
    pem: Annotated[StrictStr, StringConstraints(max_length=4096)] | None = Field(
        default=None, description="A PEM SubjectPublicKeyInfo (-----BEGIN PUBLIC KEY-----)"
    )
    kid: Annotated[StrictStr, StringConstraints(pattern=r"^[A-Za-z0-9._:-]{1,100}$")] | None = Field(
        default=None,
        description="The id assertions name in their header. Default: the JWK's kid, else its RFC 7638 thumbprint",
    )


class InstitutionKeyPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True, json_schema_extra={"examples": [ex.INSTITUTION_KEY]})

    kid: str
    algorithm: str = Field(description="EdDSA (Ed25519) or ES256 (P-256)")
    thumbprint: str = Field(description="RFC 7638 JWK thumbprint (SHA-256, base64url)")
    public_key: str = Field(description="PEM")
    created_at: datetime
    revoked_at: datetime | None


class InstitutionKeysPublic(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [ex.INSTITUTION_KEYS]})

    items: list[InstitutionKeyPublic]


class InstitutionKeyRevoked(InstitutionKeyPublic):
    model_config = ConfigDict(json_schema_extra={"examples": [ex.INSTITUTION_KEY_REVOKED]})

    access_tokens_revoked: int = Field(description="Live access tokens issued with this key, revoked with it")


class AccessTokensRevoked(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [ex.ACCESS_TOKENS_REVOKED]})

    institution_id: str
    access_tokens_revoked: int


class AccessTokenResponse(BaseModel):
    """RFC 6749 section 5.1."""

    model_config = ConfigDict(json_schema_extra={"examples": [ex.ACCESS_TOKEN]})

    access_token: str = Field(description="`rat_` and 32 random bytes: send it as `Authorization: Bearer ...`")
    token_type: Literal["Bearer"] = "Bearer"
    expires_in: int = Field(description="Seconds until it expires")


class AuthorizationServerMetadata(BaseModel):
    """RFC 8414 section 2, for the one grant the register has (client credentials with `private_key_jwt`),
    plus the audience its client assertions must carry."""

    model_config = ConfigDict(json_schema_extra={"examples": [ex.AUTHORIZATION_SERVER]})

    issuer: str = Field(description="This register's URL, as the request reached it")
    token_endpoint: str = Field(description="Where to exchange a client assertion for an access token")
    token_endpoint_auth_methods_supported: list[str]
    token_endpoint_auth_signing_alg_values_supported: list[str]
    grant_types_supported: list[str]
    response_types_supported: list[str] = Field(description="None: the register has no authorization endpoint")
    client_assertion_audience: str = Field(
        description="The `aud` a client assertion must carry (`REGISTER_OAUTH_AUDIENCE`). The register's "
        "setting, which need not be the URL it is reached at: sign for this value, not for `token_endpoint`")
