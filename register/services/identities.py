"""National identities in and out: validate, find or create the person, and show them masked."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy.orm import Session

from register.crypto.fields import FieldCipher
from register.domain.identity import InvalidNationalId, NationalId, parse_national_id
from register.errors import InvalidInput, InvalidNationalIdentity
from register.services.lines import COLUMN, TABLE
from register.storage import persons as person_store
from register.storage.models import Person
from register.storage.types import utcnow



def parse_identity(country: str, raw: str, *, allow_test: bool, loc: Sequence[str | int] = ("body",)) -> NationalId:
    try:
        return parse_national_id(country, raw, allow_test=allow_test)
    except InvalidNationalId as exc:
        where = ".".join(str(p) for p in loc[1:]) or "national_id"
        raise InvalidNationalIdentity(
            f"{where} is not a valid {exc.country or 'national'} identity number: {exc.reason}",
            errors=[{"loc": list(loc), "msg": exc.reason}],
        ) from None


def parse_debtor_identities(debtors: Sequence, *, allow_test: bool) -> list[NationalId]:
    """Validate every debtor's number; the error names the debtor's index. The same person twice is refused."""
    nids = [
        parse_identity(d.country, d.national_id, allow_test=allow_test, loc=("body", "debtors", i, "national_id"))
        for i, d in enumerate(debtors)
    ]
    seen: dict[NationalId, int] = {}
    for i, nid in enumerate(nids):
        if nid in seen:
            raise InvalidInput(
                f"debtors.{i} is the same person as debtors.{seen[nid]}",
                code="duplicate_debtor",
                errors=[{"loc": ["body", "debtors", i, "national_id"], "msg": "same person as another debtor"}],
            )
        seen[nid] = i
    return nids


def blind_index(cipher: FieldCipher, nid: NationalId) -> bytes:
    """The identity's index under the active blind-index key (what new records and access events carry)."""
    return cipher.blind_index(nid.blind_index_input())


def blind_indexes(cipher: FieldCipher, nid: NationalId) -> list[bytes]:
    """Every blind-index value this identity number may have now: under the active key first, then under
    the other live key while a blind-index rotation runs (SPEC.md section 8, "Key lifecycle"). What a
    lookup of stored subjects (access events, persons) matches during a rotation. After the rotation only
    the new key's value is left: records still carrying a destroyed key's value can no longer be tied to
    anyone, which is what retiring the key is for."""
    return cipher.blind_indexes(nid.blind_index_input())


def resolve_person(session: Session, cipher: FieldCipher, nid: NationalId) -> Person:
    values = blind_indexes(cipher, nid)

    def make() -> Person:
        pid = str(uuid.uuid4())
        enc = cipher.encrypt(nid.number.encode(), table=TABLE, column=COLUMN, row_id=pid)
        return Person(id=pid, country=nid.country, blind_index=values[0], national_id_enc=enc, created_at=utcnow(),
                      blind_index_next=values[1] if len(values) > 1 else None)

    return person_store.get_or_create_person(session, values, make)


def find_person(session: Session, cipher: FieldCipher, nid: NationalId) -> Person | None:
    return person_store.get_person_by_blind_index(session, blind_index(cipher, nid))


def reveal(cipher: FieldCipher, person: Person) -> NationalId:
    """Decrypt a person's identity. Only for masking and for the person themself; never log the result."""
    number = cipher.decrypt(person.national_id_enc, table=TABLE, column=COLUMN, row_id=person.id).decode()
    return parse_national_id(person.country, number, allow_test=True)


def masked(cipher: FieldCipher, person: Person) -> str:
    return reveal(cipher, person).masked()
