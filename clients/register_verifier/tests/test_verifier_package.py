"""Packaging, independence from the register, the state dir, the HTTP client, the fake's own tree."""

from __future__ import annotations

import ast
import json
import os
import pathlib
import subprocess
import sys
import tomllib

import httpx
import pytest

import register_verifier
from fake_register import BASE_URL, TOKEN, FakeRegister, consistency_proof, inclusion_path, leaf_hash, mth
from register_verifier.client import HTTPStatusError, ProtocolError, RegisterClient
from register_verifier.merkle import root_from_leaf_hashes, verify_consistency, verify_inclusion
from register_verifier.state import State, StateError, atomic_write

PKG = pathlib.Path(__file__).resolve().parents[1]
SRC = PKG / "src"
TESTS = PKG / "tests"


class TestIndependence:
    def test_every_module_imports_without_loading_register(self):
        code = (
            "import sys; sys.path.insert(0, sys.argv[1]);"
            "import register_verifier, register_verifier.client, register_verifier.verify,"
            " register_verifier.state, register_verifier.cli, register_verifier.merkle, register_verifier.note;"
            "from register_verifier.cli import main; assert main(['--version']) == 0;"
            "bad = [m for m in sys.modules if m == 'register' or m.startswith('register.')];"
            "assert not bad, bad"
        )
        subprocess.run([sys.executable, "-c", code, str(SRC)], check=True, cwd=PKG.parents[1], capture_output=True)

    @pytest.mark.parametrize("path", sorted(SRC.rglob("*.py")) + sorted(TESTS.rglob("*.py")), ids=lambda p: p.name)
    def test_no_source_file_imports_register(self, path):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            else:
                continue
            assert not any(n == "register" or n.startswith("register.") for n in names), (path, names)


class TestPackage:
    def test_public_api(self):
        assert register_verifier.__version__
        for name in register_verifier.__all__:
            assert hasattr(register_verifier, name), name
        assert {"RegisterClient", "State", "run_verify", "VerificationError", "UsageError"} <= set(
            register_verifier.__all__
        )

    def test_pyproject(self):
        meta = tomllib.loads((PKG / "pyproject.toml").read_text())
        project = meta["project"]
        assert project["name"] == "register-verifier"
        assert sorted(d.split(">")[0].split("=")[0].strip() for d in project["dependencies"]) == ["cryptography", "httpx"]
        assert project["scripts"] == {"register-verifier": "register_verifier.cli:main"}
        assert meta["tool"]["setuptools"]["package-dir"] == {"": "src"}


class TestState:
    def test_atomic_write_replaces_and_leaves_no_temp_files(self, tmp_path):
        target = tmp_path / "checkpoint"
        atomic_write(target, b"one")
        atomic_write(target, b"two")
        assert target.read_bytes() == b"two"
        assert [p.name for p in tmp_path.iterdir()] == ["checkpoint"]

    def test_interrupted_write_keeps_the_old_file(self, tmp_path, monkeypatch):
        target = tmp_path / "checkpoint"
        atomic_write(target, b"old")

        def fail(*a):
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(os, "replace", fail)
        with pytest.raises(OSError):
            atomic_write(target, b"new")
        assert target.read_bytes() == b"old"
        assert [p.name for p in tmp_path.iterdir()] == ["checkpoint"]

    def test_commit_failure_is_a_state_error(self, tmp_path, monkeypatch):
        state = State(tmp_path / "s")
        monkeypatch.setattr(os, "replace", lambda *a: (_ for _ in ()).throw(OSError(13, "Permission denied")))
        with pytest.raises(StateError, match="Permission denied"):
            state.commit(log_key="k", checkpoint_note=b"n", history_entry={})

    def test_commit_and_read_back(self, tmp_path):
        state = State(tmp_path / "s")
        assert state.read_log_key() is None and state.read_checkpoint() is None and state.read_history() == []
        state.commit(log_key="name+00000000+AA==", checkpoint_note=b"note 1\n", history_entry={"size": 1})
        state.commit(log_key="name+00000000+AA==", checkpoint_note=b"note 2\n", history_entry={"size": 2})
        assert state.read_log_key() == "name+00000000+AA=="
        assert state.read_checkpoint() == b"note 2\n"
        assert state.read_history() == [{"size": 1}, {"size": 2}]
        assert (tmp_path / "s" / "log-key").read_text() == "name+00000000+AA==\n"
        with pytest.raises(StateError, match="pinned log key"):
            state.commit(log_key="other+00000000+AA==", checkpoint_note=b"x\n", history_entry={})
        assert state.read_checkpoint() == b"note 2\n"

    def test_bad_state_files(self, tmp_path):
        (tmp_path / "f").write_text("x")
        with pytest.raises(StateError, match="not a directory"):
            State(tmp_path / "f")
        d = tmp_path / "d"
        d.mkdir()
        (d / "log-key").write_text("a\nb\n")
        with pytest.raises(StateError, match="exactly one"):
            State(d).read_log_key()
        (d / "history.jsonl").write_text('{"size": 1}\nnot json\n')
        with pytest.raises(StateError, match="line 2"):
            State(d).read_history()


class TestClient:
    def test_bearer_token_and_no_redirects(self, fake):
        fake.fail = lambda r: httpx.Response(302, headers={"location": "https://evil.example/"}) if r.url.path.endswith(
            "checkpoint") else None
        with fake.client() as client:
            with pytest.raises(HTTPStatusError, match="302"):
                client.checkpoint()
        assert all(r.url.host == "register.test" for r in fake.requests)
        assert fake.requests[0].headers["authorization"] == f"Bearer {TOKEN}"

    def test_log_key_needs_no_token(self, fake):
        with fake.client(token=None) as client:
            assert client.log_key().vkey == fake.vkey
            with pytest.raises(HTTPStatusError) as info:
                client.checkpoint()
        assert info.value.status == 401 and info.value.code == "unauthenticated"

    def test_base_url_path_prefix_is_kept(self, fake):
        seen = []

        def handler(request):
            seen.append(request.url.path)
            return httpx.Response(200, json=fake.current)

        with RegisterClient(BASE_URL + "/api", TOKEN, transport=httpx.MockTransport(handler)) as client:
            client.checkpoint()
        assert seen == ["/api/v1/audit/checkpoint"]

    def test_lookup_by_hash_404_other_code_is_an_error(self, fake):
        fake.fail = lambda r: httpx.Response(404, json={"code": "no_such_tree", "title": "x", "status": 404})
        with fake.client() as client, pytest.raises(HTTPStatusError, match="no_such_tree"):
            client.inclusion_proof_by_hash(b"\x00" * 32, 8)

    def test_lookup_by_hash_not_found_is_none(self, fake):
        with fake.client() as client:
            assert client.inclusion_proof_by_hash(b"\x00" * 32, 8) is None
            found = client.inclusion_proof_by_hash(leaf_hash(fake.leaves[3]), 8)
        assert found.leaf_index == 3 and found.tree_size == 8

    @pytest.mark.parametrize(
        "body,match",
        [
            ({"first": 1, "second": 2, "proof": ["not base64!"]}, "proof\\[0\\]"),
            ({"first": 1, "second": 2, "proof": ["AAAA"[:3]]}, "base64"),
            ({"first": 1, "second": 2}, "missing field 'proof'"),
            ({"first": True, "second": 2, "proof": []}, "'first' must be a non-negative integer"),
            ([1, 2], "expected a JSON object"),
        ],
    )
    def test_malformed_answers(self, fake, body, match):
        fake.fail = lambda r: httpx.Response(200, json=body)
        with fake.client() as client, pytest.raises(ProtocolError, match=match):
            client.consistency_proof(1, 2)

    def test_non_json_answer(self, fake):
        fake.fail = lambda r: httpx.Response(200, text="<html>")
        with fake.client() as client, pytest.raises(ProtocolError, match="not JSON"):
            client.checkpoint()

    def test_checkpoints_listing(self, fake):
        fake.fail = lambda r: httpx.Response(200, json={"items": [fake.current]}) if r.url.path.endswith(
            "checkpoints") else None
        with fake.client() as client:
            [item] = client.checkpoints(since=0, limit=10)
        assert item.size == 8 and item.note == fake.current["note"].encode()
        assert fake.requests[-1].url.params["since"] == "0"


class TestFakeTree:
    """The fake register's recursive tree agrees with the verifier's RFC 9162 verification."""

    def test_proofs_verify_for_all_small_trees(self):
        hashes = [leaf_hash(b"%d" % i) for i in range(33)]
        for n in range(1, 34):
            root = mth(hashes[:n])
            assert root == root_from_leaf_hashes(hashes[:n])
            for i in range(n):
                verify_inclusion(hashes[i], i, n, inclusion_path(i, hashes[:n]), root)
            for m in range(1, n + 1):
                verify_consistency(m, n, consistency_proof(m, hashes[:n]), mth(hashes[:m]), root)

    def test_fake_answers_json(self):
        reg = FakeRegister(leaves=3)
        with reg.client() as client:
            assert client.leaves(0, 3).leaves == tuple(reg.leaves)
        assert json.loads(reg.current["note"].split("\n")[1]) == 3
