"""`register seed`: a synthetic population loaded through the batch reporting path.

Lines come from `register.population` (deterministic by seed), are validated by `bulk.parse_doc` and
written by `bulk.apply_batch`, exactly as report lines are, in batches per institution: on PostgreSQL
that is COPY into the tables and a staging table for updates.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select, text
from sqlalchemy.orm import Session, sessionmaker

from register.crypto.fields import FieldCipher
from register.domain.permission import Principal, Role
from register.population import DEFAULT_INSTITUTIONS, generate, resolve_institution_ids
from register.services.bulk import apply_batch
from register.services.lines import LineError, Ready, parse_doc, prepare
from register.services.events import record_event
from register.services.institutions import create_institution
from register.storage.models import Institution
from register.storage.types import utcnow

BATCH = 5000


@dataclass
class SeedResult:
    persons: int
    lines: int = 0
    accepted: int = 0
    rejected: int = 0
    seconds: float = 0.0
    tokens: dict[str, dict[str, str]] = field(default_factory=dict)
    first_errors: list[str] = field(default_factory=list)


def ensure_institutions(sessions: sessionmaker[Session]) -> dict[str, dict[str, str]]:
    """The population's institutions, by key: created (with a new token) if missing, found by name if not
    (their token is then not known again: it was shown once)."""
    out: dict[str, dict[str, str]] = {}
    with sessions.begin() as s:
        for spec in DEFAULT_INSTITUTIONS:
            inst = s.execute(select(Institution).where(Institution.name == spec.name)).scalars().first()
            token = ""
            if inst is None:
                inst, token = create_institution(s, name=spec.name, role=Role(spec.role), org_number=None,
                                                 country=None, now=utcnow())
            out[spec.key] = {"id": inst.id, "name": inst.name, "role": inst.role, "token": token}
    return out


def seed_population(
    sessions: sessionmaker[Session], cipher: FieldCipher, *, persons: int, seed: int, country: str = "SE",
    allow_test: bool = False, progress: Callable[[SeedResult], None] | None = None, ref_prefix: str = "",
) -> SeedResult:
    started = time.perf_counter()
    insts = ensure_institutions(sessions)
    ids = {k: v["id"] for k, v in insts.items()}
    result = SeedResult(persons=persons, tokens=insts)
    now = utcnow()
    buffers: dict[str, list[Ready]] = defaultdict(list)

    def flush(key: str) -> None:
        lines = buffers.pop(key, [])
        if not lines:
            return
        with sessions.begin() as s:
            res = apply_batch(s, cipher, institution_id=ids[key], role=Role(insts[key]["role"]), lines=lines, now=now,
                              source=f"seed:{seed}")
        result.accepted += res.created + res.updated + res.unchanged
        result.rejected += len(res.errors)
        result.first_errors += [f"{e.code}: {e.detail}" for e in res.errors][: 5 - len(result.first_errors)]
        if progress:
            progress(result)

    for n, line in enumerate(generate(persons, seed=seed, country=country, ref_prefix=ref_prefix), start=1):
        result.lines += 1
        doc = resolve_institution_ids(line.doc, ids)
        parsed = parse_doc(n, doc, now=now, allow_test=allow_test)
        if isinstance(parsed, LineError):
            result.rejected += 1
            if len(result.first_errors) < 5:
                result.first_errors.append(f"{parsed.code}: {parsed.detail}")
            continue
        buffers[line.institution].append(prepare(parsed, cipher))  # generated refs are unique per institution
        if len(buffers[line.institution]) >= BATCH:
            flush(line.institution)
    for key in list(buffers):
        flush(key)
    with sessions.begin() as s:
        # A bulk load into tables that were small leaves the planner's statistics stale; refresh them now
        # rather than let the first queries plan against an empty table (or autovacuum do it under load).
        s.execute(text("ANALYZE"))
    with sessions.begin() as s:
        for inst in insts.values():
            principal = Principal(role=Role(inst["role"]), name=inst["name"], institution_id=inst["id"])
            record_event(s, principal=principal, action="report:seeded", now=utcnow(),
                         details={"persons": persons, "seed": seed})
    result.seconds = time.perf_counter() - started
    return result


def population_prefix(*, persons: int, seed: int, country: str) -> str:
    """What `register seed` puts before a population's external refs, e.g. `SE1000-1.NORDBANK-00000042`.
    The generator numbers every population's lines from 1, so without it a second population (another
    size, seed or country) loaded into the same register would report other people's debts under the
    first one's refs: overwriting them, or refused as stale. The same population again keeps its refs
    (and changes nothing)."""
    return f"{country}{persons}-{seed}."


def write_files(directory: Path, *, persons: int, seed: int, country: str, fmt: str,
                sessions: sessionmaker[Session] | None = None, ref_prefix: str = "") -> dict[str, Path]:
    """The same population as report files, one per institution (for the benchmarks). With a database,
    collection claims name the collected lender by its id; without, by its key."""
    from register.population import write_report_files

    ids = {k: v["id"] for k, v in ensure_institutions(sessions).items()} if sessions else None
    lines = generate(persons, seed=seed, country=country, ref_prefix=ref_prefix)
    if ids:
        lines = (type(ln)(ln.institution, resolve_institution_ids(ln.doc, ids)) for ln in lines)
    return write_report_files(lines, directory, fmt=fmt)

