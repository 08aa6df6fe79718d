from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Body, status

from register.api import examples as ex
from register.api.deps import CanCreateInstitutions, CanManageCredentials, CanReadInstitutions, SessionDep, StateDep
from register.api.openapi import errors
from register.api.schemas import (
    AccessTokensRevoked,
    InstitutionCreate,
    InstitutionCreated,
    InstitutionKeyCreate,
    InstitutionKeyPublic,
    InstitutionKeyRevoked,
    InstitutionKeysPublic,
    InstitutionPublic,
    InstitutionsPublic,
)
from register.services import credentials
from register.domain.permission import INSTITUTION_ROLES
from register.errors import InvalidInput
from register.services.institutions import create_institution, list_institutions

router = APIRouter(prefix="/v1/institutions", tags=["institutions"])


@router.post("", status_code=status.HTTP_201_CREATED, response_model=InstitutionCreated,
             responses=errors(401, 403, 413, 422, "invalid_role"))
def post_institution(body: InstitutionCreate, session: SessionDep, state: StateDep, _: CanCreateInstitutions):
    """Register a lender, collector or regulator (operator only). The token in the answer is shown once."""
    if body.role not in INSTITUTION_ROLES:
        raise InvalidInput("role must be lender, collector or regulator", code="invalid_role")
    inst, token = create_institution(
        session, name=body.name, role=body.role, org_number=body.org_number, country=body.country,
        now=state.clock(), contact=body.contact.model_dump() if body.contact else None,
    )
    return InstitutionCreated(id=inst.id, name=inst.name, role=inst.role, token=token)


@router.get("", response_model=InstitutionsPublic, responses=errors(401, 403))
def get_institutions(session: SessionDep, _: CanReadInstitutions):
    """Every registered institution (operator and regulators)."""
    return InstitutionsPublic(items=[InstitutionPublic.model_validate(i, from_attributes=True) for i in list_institutions(session)])


# --- credentials: keys for OAuth client assertions, access tokens, the rgt_ token (operator only) ----------


@router.post("/{institution_id}/keys", status_code=status.HTTP_201_CREATED, response_model=InstitutionKeyPublic,
             responses=errors(401, 403, 404, "key_exists", 413, 422, "invalid_key"))
def post_institution_key(
    institution_id: str,
    body: Annotated[InstitutionKeyCreate, Body(openapi_examples=ex.KEY_CREATES)],
    session: SessionDep,
    state: StateDep,
    principal: CanManageCredentials,
):
    """Register a public key (Ed25519 or P-256, as a JWK or PEM) the institution signs its OAuth client
    assertions with (`POST /v1/oauth/token`). Never send a private key: it is refused. The answer's `kid`
    is what assertions name in their header. To rotate: add the new key, switch the signer, revoke the old."""
    key = credentials.add_institution_key(
        session, principal=principal, institution_id=institution_id, jwk=body.jwk, pem=body.pem, kid=body.kid,
        now=state.clock(),
    )  # fmt: skip
    return InstitutionKeyPublic.model_validate(key)


@router.get("/{institution_id}/keys", response_model=InstitutionKeysPublic, responses=errors(401, 403, 404, 422))
def get_institution_keys(institution_id: str, session: SessionDep, _: CanManageCredentials):
    """The institution's keys, active and revoked, oldest first."""
    keys = credentials.list_institution_keys(session, institution_id=institution_id)
    return InstitutionKeysPublic(items=[InstitutionKeyPublic.model_validate(k) for k in keys])


@router.delete("/{institution_id}/keys/{kid}", response_model=InstitutionKeyRevoked,
               responses=errors(401, 403, 404, 422))
def delete_institution_key(institution_id: str, kid: str, session: SessionDep, state: StateDep,
                           principal: CanManageCredentials, background: BackgroundTasks):  # fmt: skip
    """Revoke a key: assertions signed with it are refused from now on, and the access tokens issued with
    it are revoked too (in other server processes within 2 s: SPEC section 7, "Processes and hosts"). A
    repeat is harmless."""
    key, revoked = credentials.revoke_institution_key(
        session, principal=principal, institution_id=institution_id, kid=kid, now=state.clock()
    )
    state.tokens.revoked(institution_id)
    background.add_task(state.tokens.advance)  # again once committed: other processes then read the revocation
    return InstitutionKeyRevoked.model_validate({**InstitutionKeyPublic.model_validate(key).model_dump(),
                                                 "access_tokens_revoked": revoked})  # fmt: skip


@router.delete("/{institution_id}/access-tokens", response_model=AccessTokensRevoked,
               responses=errors(401, 403, 404, 422))
def delete_access_tokens(institution_id: str, session: SessionDep, state: StateDep, principal: CanManageCredentials,
                         background: BackgroundTasks):  # fmt: skip
    """Revoke every live OAuth access token of the institution (in other server processes within 2 s:
    SPEC section 7, "Processes and hosts"). Its keys stay: it can sign in again; revoke a key to stop that."""
    revoked = credentials.revoke_institution_access_tokens(
        session, principal=principal, institution_id=institution_id, now=state.clock()
    )
    state.tokens.revoked(institution_id)
    background.add_task(state.tokens.advance)  # again once committed: other processes then read the revocation
    return AccessTokensRevoked(institution_id=institution_id, access_tokens_revoked=revoked)


@router.post("/{institution_id}/token", response_model=InstitutionCreated, responses=errors(401, 403, 404, 422))
def post_institution_token(institution_id: str, session: SessionDep, state: StateDep,
                           principal: CanManageCredentials, background: BackgroundTasks):  # fmt: skip
    """Rotate the institution's `rgt_` bearer token: a new one is returned, once; the old one stops working
    (in other server processes within 2 s: SPEC section 7, "Processes and hosts")."""
    inst, token = credentials.rotate_bearer_token(
        session, principal=principal, institution_id=institution_id, now=state.clock()
    )
    state.tokens.revoked(institution_id)
    background.add_task(state.tokens.advance)  # again once committed: other processes then read the revocation
    return InstitutionCreated(id=inst.id, name=inst.name, role=inst.role, token=token)
