"""`register seed`: a synthetic population through the batch reporting path, on both databases."""

from __future__ import annotations

from sqlalchemy import func, select

from register.crypto.fields import FieldCipher
from register.crypto.keys import StaticKeys
from register.services.seed import seed_population
from register.storage.db import make_engine, make_sessionmaker
from register.storage.models import Obligation, ObligationVersion, Person


class TestSeed:
    def test_population_loads_through_the_report_path(self, database_url):
        engine = make_engine(database_url, pool_size=2)
        sessions = make_sessionmaker(engine)
        cipher = FieldCipher(StaticKeys.generate())
        try:
            result = seed_population(sessions, cipher, persons=400, seed=11)
            assert result.rejected == 0, result.first_errors
            assert result.accepted == result.lines > 400 * 0.5
            with sessions() as s:
                claims = s.execute(select(Obligation).where(Obligation.kind == "collection_claim",
                                                            Obligation.institution_id.in_(
                                                                [v["id"] for v in result.tokens.values()]))
                                   ).scalars().all()
                # Every claim collects a loan that its lender really reported, and that lender names the claim
                # back (handed_to): the link is confirmed, so the debt is counted once.
                assert claims
                for claim in claims:
                    target = s.execute(select(Obligation.handed_to_institution_id, Obligation.handed_to_external_ref)
                                       .where(Obligation.institution_id == claim.collects_institution_id,
                                              Obligation.external_ref == claim.collects_external_ref)).one_or_none()
                    assert target is not None, claim.external_ref
                    assert tuple(target) == (claim.institution_id, claim.external_ref)
                versions = s.execute(select(func.count()).select_from(ObligationVersion).where(
                    ObligationVersion.request_id == "seed:11")).scalar()
                assert versions == result.lines and s.execute(select(func.count()).select_from(Person)).scalar()
                ids = [v["id"] for v in result.tokens.values()]
                stored = s.execute(select(func.count()).select_from(Obligation).where(
                    Obligation.institution_id.in_(ids))).scalar()
                assert stored == result.lines
            # Loading the same population again changes nothing: every line is an identical repeat.
            again = seed_population(sessions, cipher, persons=400, seed=11)
            assert again.rejected == 0 and again.accepted == again.lines
            with sessions() as s:
                assert s.execute(select(func.count()).select_from(ObligationVersion).where(
                    ObligationVersion.request_id == "seed:11")).scalar() == result.lines
        finally:
            engine.dispose()
