from __future__ import annotations

from fastapi import APIRouter, status

from register.api.deps import CanCreateInstitutions, CanReadInstitutions, SessionDep, StateDep
from register.api.openapi import errors
from register.api.schemas import InstitutionCreate, InstitutionCreated, InstitutionPublic, InstitutionsPublic
from register.domain.permission import INSTITUTION_ROLES
from register.errors import InvalidInput
from register.services.institutions import create_institution
from register.storage.institutions import list_institutions

router = APIRouter(prefix="/v1/institutions", tags=["institutions"])


@router.post("", status_code=status.HTTP_201_CREATED, response_model=InstitutionCreated,
             responses=errors(401, 403, 413, 422, "invalid_role"))
def post_institution(body: InstitutionCreate, session: SessionDep, state: StateDep, _: CanCreateInstitutions):
    """Register a lender, collector or regulator (operator only). The token in the answer is shown once."""
    if body.role not in INSTITUTION_ROLES:
        raise InvalidInput("role must be lender, collector or regulator", code="invalid_role")
    inst, token = create_institution(
        session, name=body.name, role=body.role, org_number=body.org_number, country=body.country,
        now=state.clock(),
    )
    return InstitutionCreated(id=inst.id, name=inst.name, role=inst.role, token=token)


@router.get("", response_model=InstitutionsPublic, responses=errors(401, 403))
def get_institutions(session: SessionDep, _: CanReadInstitutions):
    """Every registered institution (operator and regulators)."""
    return InstitutionsPublic(items=[InstitutionPublic.model_validate(i, from_attributes=True) for i in list_institutions(session)])
