from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request, Response, status

from register.api.deps import (
    CanAttestConsents, CanGrantConsents, CanReadConsents, CanRevokeConsents, SessionDep, StateDep,
)
from register.api.openapi import errors
from register.api.presenters import consent_public
from register.api.schemas import AttestedConsentCreate, ConsentCreate, ConsentPublic, ConsentsPublic, DebtorSubject
from register.domain.permission import Role
from register.services import consents as svc
from register.services import identities, me
from register.services.institutions import institution_name

router = APIRouter(prefix="/v1/consents", tags=["consents"])
ConsentId = Annotated[str, Path(max_length=36, description="The consent's id")]


@router.post("", status_code=status.HTTP_201_CREATED, response_model=ConsentPublic,
             responses=errors(401, 403, 413, 422, "invalid_consent", "unknown_institution"))
def post_consent(body: ConsentCreate, request: Request, session: SessionDep, state: StateDep, principal: CanGrantConsents):
    """The signed-in person lets one institution look at their debts, for one purpose, until `expires_at`
    (at most 90 days)."""
    now = state.clock()
    c = svc.grant_consent(session, state.cipher, principal=principal, institution_id=body.institution_id,
                          purpose=body.purpose, expires_at=body.expires_at, now=now,
                          request_id=request.state.request_id)
    return consent_public(c, now=now, name=institution_name(session, c.institution_id))


@router.post("/attested", status_code=status.HTTP_201_CREATED, response_model=ConsentPublic,
             responses={200: {"model": ConsentPublic, "description": "A repeat: the consent this reference names"},
                        **errors(401, 403, "reference_reused", 413, 422, "invalid_national_id", "invalid_consent")})
def post_attested_consent(
    body: AttestedConsentCreate, request: Request, response: Response, session: SessionDep, state: StateDep,
    principal: CanAttestConsents,
):
    """Record a consent this institution collected itself (e.g. a signed credit application), with its
    evidence. It is marked attested everywhere, and the person can see and revoke it.

    `evidence.reference` names one consent of this institution: the same reference for the same person
    and purpose again is a repeat, answered 200 with the consent recorded first, as it stands (not
    extended, and still revoked if the person revoked it); for another person or purpose it is
    `409 reference_reused`. Lookups with attested consents have their own, lower rate and daily quota."""
    now = state.clock()
    nid = identities.parse_identity(body.country, body.national_id,
                                    allow_test=state.settings.accept_test_identities, loc=("body", "national_id"))
    c, created = svc.attest_consent(session, state.cipher, principal=principal, nid=nid, purpose=body.purpose,
                                    expires_at=body.expires_at, evidence=body.evidence.model_dump(mode="json"),
                                    now=now, request_id=request.state.request_id)
    if not created:
        response.status_code = status.HTTP_200_OK
    return consent_public(c, now=now, name=principal.name,
                          subject=DebtorSubject(country=nid.country, national_id_masked=nid.masked()))


@router.get("", response_model=ConsentsPublic, responses=errors(401, 403))
def list_consents(request: Request, session: SessionDep, state: StateDep, principal: CanReadConsents):
    """A person sees their own consents; a lender or collector sees those granted to it, identities masked,
    and each person it names finds the read in their access log."""
    now = state.clock()
    if principal.role is Role.consumer:
        rows = me.my_consents(session, state.cipher, principal=principal, now=now, request_id=request.state.request_id)
        return ConsentsPublic(items=[consent_public(c, now=now, name=n) for c, n in rows])
    rows = svc.consents_granted_to(session, principal=principal, now=now, request_id=request.state.request_id)
    subjects = {p.id: DebtorSubject(country=p.country, national_id_masked=identities.masked(state.cipher, p))
                for _, p in rows}  # fmt: skip
    return ConsentsPublic(items=[consent_public(c, now=now, name=principal.name, subject=subjects[p.id])
                                 for c, p in rows])


@router.delete("/{consent_id}", response_model=ConsentPublic, responses=errors(401, 403, 404, 422))
def delete_consent(consent_id: ConsentId, request: Request, session: SessionDep, state: StateDep, principal: CanRevokeConsents):
    """Revoke a consent at once (the person it names only). Revoking twice is harmless."""
    now = state.clock()
    c = svc.revoke_consent(session, state.cipher, principal=principal, consent_id=consent_id, now=now,
                           request_id=request.state.request_id)
    return consent_public(c, now=now, name=institution_name(session, c.institution_id))
