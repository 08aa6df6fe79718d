"""`register seed`: a synthetic population through the batch reporting path, on both databases."""

from __future__ import annotations

import json
import os

import pytest
from sqlalchemy import func, select

from register import cli

from register.crypto.fields import FieldCipher
from register.crypto.keys import StaticKeys
from register.services.seed import seed_population
from register.storage.db import make_engine, make_sessionmaker
from register.storage.models import Obligation, ObligationVersion, Person
from tests.conftest import drop_pg_database
from tests.server import fresh_database


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


class TestSeedTwiceIntoOneDatabase:
    """`register seed` as an operator runs it, more than once into the same database: each population keeps
    its own references, so a second one adds people instead of overwriting (or being refused against) the
    first one's lines. A database of its own per test: the count of everything is the point."""

    @pytest.fixture
    def seed(self, backend, tmp_path, monkeypatch, capsys):
        url = fresh_database(backend, tmp_path)
        for key in [k for k in os.environ if k.startswith("REGISTER_")]:
            monkeypatch.delenv(key)
        monkeypatch.setenv("REGISTER_DATABASE_URL", url)
        monkeypatch.setenv("REGISTER_DATA_DIR", str(tmp_path / "data"))
        engine = make_engine(url, pool_size=1)

        def run(*args: str) -> dict:
            code = cli.main(["seed", *args])
            out = json.loads(capsys.readouterr().out)
            assert code == 0 and out["rejected"] == 0, out["first_errors"]
            return out

        try:
            yield run, make_sessionmaker(engine)
        finally:
            engine.dispose()
            if backend == "postgres":
                drop_pg_database(url)

    def test_populations_of_other_sizes_and_seeds_are_added_beside_the_first(self, seed):
        run, sessions = seed
        first = run("--persons", "120")
        bigger = run("--persons", "160")  # same seed: its lines 1, 2, ... are other people's debts
        other_seed = run("--persons", "120", "--seed", "2")
        with sessions() as s:
            live = s.execute(select(func.count()).select_from(Obligation)).scalar()
            assert live == first["lines"] + bigger["lines"] + other_seed["lines"]
            # Nothing of the first population was touched: one version per line, all from the first run.
            rewritten = s.execute(select(func.count()).select_from(ObligationVersion).where(
                ObligationVersion.version > 1)).scalar()
            assert rewritten == 0
            refs = s.execute(select(Obligation.external_ref)).scalars().all()
            assert {ref.split(".", 1)[0] for ref in refs} == {"SE120-1", "SE160-1", "SE120-2"}

    def test_the_same_population_again_changes_nothing(self, seed):
        run, sessions = seed
        first = run("--persons", "120")
        again = run("--persons", "120")
        assert again["accepted"] == again["lines"] == first["lines"]
        with sessions() as s:
            assert s.execute(select(func.count()).select_from(Obligation)).scalar() == first["lines"]
            assert s.execute(select(func.count()).select_from(ObligationVersion)).scalar() == first["lines"]
