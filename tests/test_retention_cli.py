"""`register retention plan|run` as an operator runs them: JSON counts, the same from plan and run,
`--now` moving the clock, and a second run deleting nothing."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from register.cli import main
from register.main import create_app
from register.storage.migrate import upgrade
from register.storage.types import utcnow
from tests.conftest import ADMIN_TOKEN, create_pg_database, drop_pg_database, make_settings
from tests.factories import debtor, make_institution, make_person, new_ref, obligation_body


def cli(capsys, monkeypatch, url: str, *args: str) -> tuple[int, dict]:  # noqa: ANN001
    monkeypatch.setenv("REGISTER_DATABASE_URL", url)
    code = main(["retention", *args])
    out = capsys.readouterr().out
    return code, json.loads(out) if out else {}


@pytest.fixture
def url(backend, tmp_path):  # noqa: ANN001, ANN201
    """An empty database of its own: a run deletes across the register."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'register.db'}"
        return
    pg = create_pg_database()
    try:
        yield pg
    finally:
        drop_pg_database(pg)


def test_plan_then_run_then_nothing(url, tmp_path, data_dir, keys, capsys, monkeypatch):  # noqa: ANN001
    upgrade(url)
    monkeypatch.setenv("REGISTER_DATA_DIR", str(tmp_path))
    app = create_app(make_settings(url, data_dir, retention_job=False), keys=keys)
    with TestClient(app) as client:
        lender = make_institution(client, {"Authorization": f"Bearer {ADMIN_TOKEN}"}, "lender")
        person = make_person(client, data_dir)
        ref = new_ref()
        for body in (obligation_body(debtors=[debtor(person)]),
                     obligation_body(debtors=[debtor(person)], status="closed", balance=0,
                                     as_of="2026-11-20T00:00:00Z")):
            assert client.put(f"/v1/obligations/{ref}", json=body, headers=lender.headers).status_code in (200, 201)
    app.state.register.engine.dispose()

    assert cli(capsys, monkeypatch, url, "plan")[1]["deleted"]["ended"] == 0
    later = (utcnow() + timedelta(days=99)).isoformat()
    code, planned = cli(capsys, monkeypatch, url, "plan", "--now", later)
    assert code == 0 and planned["deleted"]["ended"] == 1 and planned["deleted"]["person"] == 1
    code, ran = cli(capsys, monkeypatch, url, "run", "--now", later)
    assert code == 0 and ran == planned
    code, again = cli(capsys, monkeypatch, url, "run", "--now", later)
    assert code == 0 and set(again["deleted"].values()) == {0}


def test_a_time_without_a_zone_is_refused(capsys):  # noqa: ANN001
    with pytest.raises(SystemExit):
        main(["retention", "plan", "--now", "2027-01-01T00:00:00"])
    assert "time zone" in capsys.readouterr().err
