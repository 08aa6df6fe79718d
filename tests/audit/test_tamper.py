"""Tampering with the access log, done for real as a malicious operator would (triggers switched off,
plain SQL), on both databases. The operator's check (`register audit verify`) and the regulator's own
verifier must each catch it."""

from __future__ import annotations

import base64
import io
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Connection, create_engine, text

from register.audit import merkle
from register.audit.leaf import encode_leaf
from register.crypto.keys import StaticKeys
from register.main import create_app
from register.services.log_check import verify_log
from register.storage.migrate import upgrade
from register.storage.models import AccessEvent
from tests.api.test_exposure import query
from tests.conftest import ADMIN_TOKEN, create_pg_database, drop_pg_database, make_settings
from tests.factories import Inst, debtor, grant, make_institution, make_person, new_ref, obligation_body

TRIGGERS = {
    "access_events": ("access_events_no_update", "access_events_no_delete"),
    "log_leaves": ("log_leaves_no_update", "log_leaves_no_delete"),
    "log_nodes": ("log_nodes_no_update", "log_nodes_no_delete"),
    "log_checkpoints": ("log_checkpoints_no_update", "log_checkpoints_no_delete"),
}


@dataclass
class Env:
    backend: str
    url: str
    data_dir: Path
    app: FastAPI
    client: TestClient
    lender: Inst
    regulator_inst: Inst
    pinned_vkey: str = ""

    def integrate(self) -> None:
        state = self.app.state.register
        state.tlog.run_once(state.sessions, force_checkpoint=True)

    def traffic(self, n: int = 3) -> None:
        for _ in range(n):
            person = make_person(self.client, self.data_dir)
            self.client.put(f"/v1/obligations/{new_ref()}", json=obligation_body(debtors=[debtor(person)]),
                            headers=self.lender.headers)
            query(self.client, self.lender, person, grant(self.client, person.headers, self.lender.id))
        # a read about many persons: one event per person, inserted together (services.events.record_per_person)
        assert self.client.get("/v1/obligations", headers=self.lender.headers).status_code == 200

    def regulator(self, *, full: bool = False, leaf_indices: tuple[int, ...] = (), app: FastAPI | None = None
                  ) -> tuple[int, str]:
        """The regulator's own verifier (clients/register_verifier), over HTTP, with its own state dir and
        the log key it pinned on its first run."""
        from register_verifier import cli
        from register_verifier.client import RegisterClient

        transport = TestClient(app, raise_server_exceptions=False)._transport if app else self.client._transport
        args = ["verify", "--url", "http://testserver", f"--token={self.regulator_inst.token}",
                "--state", str(self.data_dir / "regulator-state"), "--log-key", self.pinned_vkey]
        args += ["--full"] if full else []
        args += ["--leaf-index", *map(str, leaf_indices)] if leaf_indices else []
        out, err = io.StringIO(), io.StringIO()
        with redirect_stdout(out), redirect_stderr(err):
            code = cli.main(args, client_factory=lambda url, token: RegisterClient(url, token, transport=transport))
        return code, out.getvalue() + err.getvalue()

    def fsck(self, app: FastAPI | None = None):
        state = (app or self.app).state.register
        with state.sessions() as session:
            return verify_log(session, state.tlog)

    @contextmanager
    def operator_sql(self) -> Iterator[Connection]:
        """A connection with the append-only triggers out of the way, as an operator with DDL rights has."""
        engine = create_engine(self.url)
        try:
            with engine.begin() as conn:
                if self.backend == "postgres":
                    conn.execute(text("SET LOCAL session_replication_role = replica"))
                else:
                    for names in TRIGGERS.values():
                        for name in names:
                            conn.execute(text(f"DROP TRIGGER IF EXISTS {name}"))
                yield conn
        finally:
            engine.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def env(request, tmp_path: Path) -> Iterator[Env]:
    url = f"sqlite:///{tmp_path / 'tamper.db'}" if request.param == "sqlite" else create_pg_database()
    upgrade(url)
    app = create_app(make_settings(url, tmp_path), keys=StaticKeys.generate())
    try:
        with TestClient(app, raise_server_exceptions=False) as client:
            admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
            e = Env(request.param, url, tmp_path, app, client, make_institution(client, admin, "lender"),
                    make_institution(client, admin, "regulator"))
            e.pinned_vkey = client.get("/v1/audit/log-key").json()["vkey"]
            e.traffic(4)
            e.integrate()
            code, out = e.regulator(full=True)  # the regulator's first run: pins the key, keeps the checkpoint
            assert code == 0, out
            yield e
    finally:
        app.state.register.engine.dispose()
        if request.param == "postgres":
            drop_pg_database(url)


def seqs(conn: Connection) -> list[int]:
    return list(conn.execute(text("SELECT event_seq FROM log_leaves ORDER BY leaf_index")).scalars())


def rebuild_tree(env: Env, conn: Connection) -> None:
    """What an operator covering their tracks does: recompute leaves and nodes from the events as they now
    are (keeping the old signed checkpoints, which are append-only and already published)."""
    conn.execute(text("DELETE FROM log_nodes"))
    conn.execute(text("DELETE FROM log_leaves"))
    conn.execute(text("DELETE FROM log_pending"))
    conn.execute(text("INSERT INTO log_pending (event_seq) SELECT seq FROM access_events"))


class TestOperatorCheck:
    def test_clean_log_passes(self, env):
        env.traffic(2)
        env.integrate()
        report = env.fsck()
        assert report.ok, [str(p) for p in report.problems]
        assert report.leaves > 10 and report.checkpoints >= 2 and report.nodes_checked > report.leaves
        code, out = env.regulator(full=True, leaf_indices=(0, report.leaves - 1))
        assert code == 0 and out.startswith("OK"), out

    def test_changed_field_is_caught_with_evidence(self, env):
        with env.operator_sql() as conn:
            seq = seqs(conn)[5]
            conn.execute(text("UPDATE access_events SET outcome = CASE WHEN outcome = 'refused' THEN 'granted' "
                              "ELSE 'refused' END WHERE seq = :s"), {"s": seq})
        report = env.fsck()
        assert not report.ok
        first = report.problems[0]
        assert first.leaf_index == 5 and first.expected and first.actual and first.expected != first.actual
        code, out = env.regulator(leaf_indices=(5,))
        assert code == 1 and "leaf 5" in out, out
        code, out = env.regulator(full=True)
        assert code == 1 and "first bad leaf index 5" in out, out

    def test_deleted_event_is_caught(self, env):
        with env.operator_sql() as conn:
            conn.execute(text("DELETE FROM access_events WHERE seq = :s"), {"s": seqs(conn)[3]})
        report = env.fsck()
        assert not report.ok and report.problems[0].leaf_index == 3 and "missing" in str(report.problems[0])
        code, out = env.regulator(full=True)
        assert code == 1 and "will not serve leaf 3" in out, out

    def test_swapped_events_are_caught(self, env):
        with env.operator_sql() as conn:
            a, b = seqs(conn)[2], seqs(conn)[7]
            rows = {r.seq: r for r in conn.execute(text("SELECT * FROM access_events WHERE seq IN (:a, :b)"),
                                                   {"a": a, "b": b})}
            cols = ["id", "occurred_at", "action", "outcome", "reason", "request_id", "subject", "consent_id",
                    "purpose", "actor_id", "actor_role", "actor_type", "details"]
            conn.execute(text("UPDATE access_events SET id = 'tmp' WHERE seq = :a"), {"a": a})
            for src, dst in ((a, b), (b, a)):
                values = {c: getattr(rows[src], c) for c in cols}
                if env.backend == "sqlite" or not isinstance(values["details"], str):
                    import json as _json
                    values["details"] = _json.dumps(values["details"]) if values["details"] is not None else None
                sets = ", ".join(f"{c} = :{c}" for c in cols)
                conn.execute(text(f"UPDATE access_events SET {sets} WHERE seq = :dst"), {**values, "dst": dst})
        report = env.fsck()
        assert not report.ok and report.problems[0].leaf_index == 2
        code, out = env.regulator(full=True)
        assert code == 1 and "first bad leaf index 2" in out, out

    def test_event_inserted_in_the_middle_is_caught(self, env):
        checkpoint_size = env.fsck().leaves
        with env.operator_sql() as conn:
            # Make room: move every later event one seq up, then put a forged event at seq 5.
            top = conn.execute(text("SELECT max(seq) FROM access_events")).scalar_one()
            for s in range(top, 4, -1):
                conn.execute(text("UPDATE access_events SET seq = :n WHERE seq = :s"), {"n": s + 1, "s": s})
            conn.execute(text(
                "INSERT INTO access_events (seq, id, occurred_at, actor_type, actor_role, action, outcome) "
                "VALUES (5, 'forged-0000', '2026-01-01 00:00:00', 'admin', 'admin', 'exposure:query', 'ok')"))
            rebuild_tree(env, conn)
        env.integrate()  # the tree now includes the forged event; the old checkpoints say otherwise
        report = env.fsck()
        assert not report.ok
        assert any(f"checkpoint at size {checkpoint_size}" in str(p) for p in report.problems)
        code, out = env.regulator()  # the consistency proof from the regulator's checkpoint cannot hold
        assert code == 1 and "consistency" in out.lower(), out

    def test_truncation_after_a_checkpoint_is_caught(self, env):
        kept = env.fsck().leaves
        env.traffic(2)
        env.integrate()
        assert env.regulator()[0] == 0  # the regulator has seen the longer log
        with env.operator_sql() as conn:
            conn.execute(text("DELETE FROM log_leaves WHERE leaf_index >= :k"), {"k": kept})
            conn.execute(text("DELETE FROM log_nodes WHERE (idx + 1) * (1 << level) > :k"), {"k": kept})
            conn.execute(text("DELETE FROM log_checkpoints WHERE size > :k"), {"k": kept})
        report = env.fsck()
        assert not report.ok
        assert any("neither in the tree nor queued" in str(p) for p in report.problems)
        code, out = env.regulator()
        assert code == 1 and "shrank" in out, out

    def test_full_cover_up_escapes_the_operator_check_but_not_the_regulator(self, env):
        """An operator who removes an event and then rebuilds and re-signs everything with the log key
        passes its own check (it holds the key); the regulator's saved checkpoint catches it."""
        with env.operator_sql() as conn:
            conn.execute(text("DELETE FROM access_events WHERE seq = :s"), {"s": seqs(conn)[1]})
            rebuild_tree(env, conn)
            conn.execute(text("DELETE FROM log_checkpoints"))
        env.traffic(1)
        env.integrate()
        assert env.fsck().ok
        code, out = env.regulator()
        assert code == 1 and "consistency" in out.lower(), out

    def test_replaced_log_key_is_caught(self, env, tmp_path):
        new_key = base64.b64encode(Ed25519PrivateKey.generate().private_bytes_raw()).decode()
        other = create_app(make_settings(env.url, tmp_path / "other", log_key=new_key), keys=StaticKeys.generate())
        try:
            report = env.fsck(other)
        finally:
            other.state.register.engine.dispose()
        assert not report.ok and "does not verify with the log key" in str(report.problems[0])
        other = create_app(make_settings(env.url, tmp_path / "other", log_key=new_key), keys=StaticKeys.generate())
        try:
            state = other.state.register
            state.tlog.run_once(state.sessions, force_checkpoint=True)  # a new head signed by the new key
            code, out = env.regulator(app=other)
        finally:
            other.state.register.engine.dispose()
        assert code == 1 and "not signed by the pinned log key" in out, out


class TestOperatorCommand:
    def test_cli_exits_1_and_prints_the_first_bad_leaf(self, env):
        with env.operator_sql() as conn:
            seq = seqs(conn)[4]
            conn.execute(text("UPDATE access_events SET action = 'consumer:consents:read' WHERE seq = :s"), {"s": seq})
            row = conn.execute(text("SELECT leaf_hash FROM log_leaves WHERE leaf_index = 4")).scalar_one()
        settings = env.app.state.register.settings
        run = subprocess.run(
            [sys.executable, "-m", "register.cli", "audit", "verify"], capture_output=True, text=True, timeout=120,
            env={"PATH": "/usr/bin:/bin", "REGISTER_DATABASE_URL": env.url, "REGISTER_DATA_DIR": str(env.data_dir),
                 "REGISTER_ADMIN_TOKEN": ADMIN_TOKEN, "REGISTER_LOG_ORIGIN": settings.log_origin},
        )
        assert run.returncode == 1, run.stdout + run.stderr
        assert "leaf 4:" in run.stdout and base64.b64encode(bytes(row)).decode() in run.stdout

    def test_cli_passes_a_clean_log(self, env):
        run = subprocess.run(
            [sys.executable, "-m", "register.cli", "audit", "verify"], capture_output=True, text=True, timeout=120,
            env={"PATH": "/usr/bin:/bin", "REGISTER_DATABASE_URL": env.url, "REGISTER_DATA_DIR": str(env.data_dir),
                 "REGISTER_ADMIN_TOKEN": ADMIN_TOKEN},
        )
        assert run.returncode == 0 and run.stdout.startswith("ok:"), run.stdout + run.stderr


def test_leaf_round_trip_through_the_database(env):
    """The event row, read back from either database, re-encodes to the bytes that were hashed."""
    env.integrate()  # including the regulator's own reads, made after the fixture integrated
    with env.app.state.register.sessions() as s:
        events = s.query(AccessEvent).all()
        leaves = {seq: h for seq, h in s.execute(text("SELECT event_seq, leaf_hash FROM log_leaves"))}
    assert events and all(merkle.leaf_hash(encode_leaf(e)) == bytes(leaves[e.seq]) for e in events)
