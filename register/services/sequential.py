"""Bulk lookups in identity order (SPEC.md "Signals", `sequential_lookups`), detected while an exposure
query is answered: the only moment the register sees the identity number. The number's sequential
neighbours (register.domain.identity.sequence) are blind-indexed and one probe asks whether the same
institution looked any of them up within the last `WINDOW`; the answer's access event then carries
`details.sequential = true`, and nothing else: never the number, nor the neighbours' indexes.

The exposure service makes one call, `flag(...)`, after the number is parsed and before its events are
written; the flag goes into the details of every event the query writes from then on. The PostgreSQL lane
asks the same question inside its one read statement (`neighbour_indexes`, `LenderConnection.read`).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from register.crypto.fields import FieldCipher
from register.domain.identity import NationalId
from register.domain.identity.sequence import neighbours
from register.services.identities import blind_index
from register.storage.sequential import asked_about_any

WINDOW = timedelta(hours=1)  # a neighbour asked about this long before counts


def neighbour_indexes(cipher: FieldCipher, nid: NationalId) -> list[bytes]:
    """The blind indexes of `nid`'s serial neighbours (at most two): what the probe looks for. The PostgreSQL
    lane (services.exposure.answer_on_lane) asks its probe in its one read statement with these."""
    return [blind_index(cipher, n) for n in neighbours(nid)]


def flag(session: Session, cipher: FieldCipher, nid: NationalId, *, institution_id: str,
         now: datetime) -> dict[str, bool]:
    """`{"sequential": True}` when the institution asked about a neighbour of `nid` within WINDOW before
    `now`, else `{}`: to be merged into the details of the query's access event."""
    near = neighbour_indexes(cipher, nid)
    found = asked_about_any(session, blind_indexes=near, institution_id=institution_id, since=now - WINDOW,
                            until=now)
    return {"sequential": True} if found else {}
