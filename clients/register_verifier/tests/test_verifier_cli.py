"""The command line: exit codes 0/1/2, messages, no tracebacks."""

from __future__ import annotations

import json

import httpx
import pytest

from fake_register import BASE_URL, MMD, ORIGIN, TOKEN, Signer, snapshot
from register_verifier import cli


@pytest.fixture
def run(fake, state_dir, capsys):
    """``run(*args, register=fake, clock=None) -> (code, stdout, stderr)`` with the mock transport injected."""

    def _run(*args, register=None, clock=None, factory=None, base=("--url", BASE_URL, "--state")):
        reg = register or fake
        argv = list(args)
        if argv and argv[0] in ("verify", "receipt") and "--url" not in argv:
            argv[1:1] = [*base, str(state_dir)]
        code = cli.main(argv, client_factory=factory or reg.factory, clock=clock or (lambda: reg.clock))
        out, err = capsys.readouterr()
        assert "Traceback" not in out + err
        return code, out, err

    return _run


def with_token(*args):
    return [*args, "--token", TOKEN]


class TestExitZero:
    def test_success_prints_one_paragraph(self, fake, run, state_dir):
        code, out, err = run(*with_token("verify", "--log-key", fake.vkey))
        assert code == 0 and err == ""
        lines = out.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("OK: audit log register.example/audit-log verified at size 8")
        assert str(state_dir) in out
        fake.add(4)
        fake.publish()
        code, out, _ = run(*with_token("verify", "--leaf-index", "1", "9", "--leaf-index", "11", "--full"))
        assert code == 0
        assert "size 8 -> 12" in out and "Leaves 1, 9, 11" in out and "Full audit: all 12 leaves" in out

    def test_token_from_the_environment(self, fake, run, monkeypatch):
        monkeypatch.setenv("REGISTER_TOKEN", TOKEN)
        code, _, _ = run("verify", "--log-key", fake.vkey)
        assert code == 0
        assert fake.requests[-1].headers["authorization"] == f"Bearer {TOKEN}"

    def test_trust_on_first_use_warns_loudly(self, fake, run, state_dir):
        code, out, err = run(*with_token("verify", "--trust-on-first-use"))
        assert code == 0
        assert "WARNING: TRUST ON FIRST USE" in err and fake.vkey in err
        assert "trusted on first use" in out
        assert (state_dir / "log-key").read_text().strip() == fake.vkey

    def test_trust_on_first_use_with_a_plus_in_the_key(self, run):
        # Base64 uses "+": about half of all Ed25519 keys have one in their vkey's key part. The key part
        # is everything after the second "+", not after the last one.
        seed = next(s for i in range(1000) for s in [f"plus {i}".encode()]
                    if "+" in Signer(ORIGIN, seed=s).vkey.split("+", 2)[2])
        from fake_register import FakeRegister

        plus = FakeRegister(signer=Signer(ORIGIN, seed=seed), leaves=3)
        code, out, err = run(*with_token("verify", "--trust-on-first-use"), register=plus)
        assert code == 0, out + err
        assert "trusted on first use" in out

    def test_receipt_subcommand_is_verify_receipt(self, fake, run, tmp_path):
        r = fake.receipt("evt-cli")
        fake.publish()
        path = tmp_path / "receipt.json"
        path.write_text(json.dumps({"total": 0, "receipt": r}))
        code, out, _ = run("receipt", str(path), "--url", BASE_URL, "--state", str(tmp_path / "a"),
                           "--token", TOKEN, "--log-key", fake.vkey)
        assert code == 0 and "Receipt evt-cli: included" in out
        code, out2, _ = run(*with_token("verify", "--log-key", fake.vkey, "--receipt", str(path)))
        assert code == 0 and "Receipt evt-cli: included" in out2

    def test_pending_receipt_exits_zero(self, fake, run, tmp_path):
        path = tmp_path / "r.json"
        path.write_text(json.dumps(fake.receipt("evt-p", logged=False)))
        code, out, _ = run(*with_token("verify", "--log-key", fake.vkey, "--receipt", str(path)))
        assert code == 0 and "PENDING" in out

    def test_help_and_version(self, run, capsys):
        assert cli.main(["--help"]) == 0
        assert "verify" in capsys.readouterr().out
        assert cli.main(["verify", "--help"]) == 0
        assert "--trust-on-first-use" in capsys.readouterr().out
        assert cli.main(["--version"]) == 0
        assert "register-verifier" in capsys.readouterr().out


class TestExitOne:
    def test_failure_is_one_line_plus_evidence(self, fake, run, state_dir):
        assert run(*with_token("verify", "--log-key", fake.vkey))[0] == 0
        before = snapshot(state_dir)
        del fake.leaves[4:]
        fake.publish()
        code, out, err = run(*with_token("verify"))
        assert code == 1 and out == ""
        first, rest = err.split("\n", 1)
        assert first == "FAILED: log shrank from 8 to 4"
        assert rest.startswith("evidence: {")
        evidence = json.loads(rest[len("evidence: "): rest.rindex("}") + 1])
        assert evidence["previous"]["size"] == 8 and evidence["new"]["size"] == 4
        assert "stored checkpoint was not changed" in err
        assert snapshot(state_dir) == before

    def test_other_key(self, fake, run):
        fake.publish(signer=Signer(ORIGIN))
        code, _, err = run(*with_token("verify", "--log-key", fake.vkey))
        assert code == 1 and err.startswith("FAILED: checkpoint not signed by the pinned log key\n")

    def test_tampered_leaf_full(self, fake, run):
        fake.served_leaves[6] = b"x"
        code, _, err = run(*with_token("verify", "--log-key", fake.vkey, "--full", "--page-size", "3"))
        assert code == 1 and "first bad leaf index 6" in err.splitlines()[0]

    def test_dropped_receipt(self, fake, run, tmp_path):
        path = tmp_path / "r.json"
        path.write_text(json.dumps(fake.receipt("evt-gone", logged=False)))
        code, _, err = run(*with_token("verify", "--log-key", fake.vkey, "--receipt", str(path)),
                           clock=lambda: fake.clock + MMD + 1)
        assert code == 1
        assert err.splitlines()[0].startswith("FAILED: the operator dropped an access it signed a receipt for")
        assert '"event_id": "evt-gone"' in err


class TestExitTwo:
    def expect_error(self, run, *args, match, **kw):
        code, out, err = run(*args, **kw)
        assert code == 2, (out, err)
        assert match in err
        return err

    def test_missing_required_arguments(self, run):
        self.expect_error(run, "verify", "--state", "x", base=(), match="--url")
        self.expect_error(run, base=(), match="usage")

    def test_no_token(self, fake, run, monkeypatch):
        monkeypatch.delenv("REGISTER_TOKEN", raising=False)
        self.expect_error(run, "verify", "--log-key", fake.vkey, match="ERROR: no regulator token")

    def test_wrong_token(self, fake, run):
        err = self.expect_error(run, "verify", "--token", "nope", "--log-key", fake.vkey, match="401")
        assert err.startswith("ERROR: GET /v1/audit/checkpoint answered 401")

    def test_connection_error(self, fake, run, state_dir):
        def down(request):
            raise httpx.ConnectError("connection refused", request=request)

        fake.fail = down
        err = self.expect_error(run, *with_token("verify", "--log-key", fake.vkey), match="cannot reach the register")
        assert err.count("\n") == 1
        assert not state_dir.exists()

    def test_server_error(self, fake, run):
        fake.fail = lambda r: httpx.Response(503, text="<html>down</html>")
        self.expect_error(run, *with_token("verify", "--log-key", fake.vkey), match="answered 503")

    def test_malformed_answer(self, fake, run):
        fake.current = {"size": "eight"}
        self.expect_error(run, *with_token("verify", "--log-key", fake.vkey), match="ERROR: GET /v1/audit/checkpoint")

    def test_first_run_without_a_key(self, run):
        self.expect_error(run, *with_token("verify"), match="--log-key VKEY")

    def test_log_key_and_tofu_are_exclusive(self, fake, run):
        self.expect_error(run, *with_token("verify", "--log-key", fake.vkey, "--trust-on-first-use"),
                          match="not allowed with")

    def test_key_mismatch(self, fake, run, state_dir):
        assert run(*with_token("verify", "--log-key", fake.vkey))[0] == 0
        before = snapshot(state_dir)
        self.expect_error(run, *with_token("verify", "--log-key", Signer(ORIGIN).vkey), match="new state dir")
        assert snapshot(state_dir) == before

    def test_leaf_index_past_the_end(self, fake, run):
        self.expect_error(run, *with_token("verify", "--log-key", fake.vkey, "--leaf-index", "8"),
                          match="not below the log size 8")

    def test_negative_leaf_index(self, fake, run):
        self.expect_error(run, *with_token("verify", "--log-key", fake.vkey, "--leaf-index", "-1"), match="usage")

    def test_unreadable_receipt(self, fake, run, tmp_path):
        self.expect_error(run, *with_token("verify", "--log-key", fake.vkey, "--receipt", str(tmp_path / "no")),
                          match="cannot read receipt file")

    def test_bad_url(self, fake, run, state_dir):
        self.expect_error(run, "verify", "--url", "register.example", "--state", str(state_dir), "--token", TOKEN,
                          base=(), match="http(s) URL")

    def test_state_path_is_a_file(self, fake, run, tmp_path):
        f = tmp_path / "file"
        f.write_text("x")
        self.expect_error(run, "verify", "--url", BASE_URL, "--state", str(f), "--token", TOKEN,
                          "--log-key", fake.vkey, base=(), match="not a directory")

    def test_internal_error_has_no_traceback(self, fake, run):
        def broken(url, token):
            raise RuntimeError("boom")

        self.expect_error(run, *with_token("verify", "--log-key", fake.vkey), factory=broken,
                          match="internal error (RuntimeError: boom)")
        with pytest.raises(RuntimeError):
            cli.main(["verify", "--url", BASE_URL, "--state", "s", "--token", "t", "--debug"], client_factory=broken)

    def test_default_factory_real_connection_refused(self, fake, state_dir, capsys):
        # no injected factory: a real httpx client against a closed local port
        code = cli.main(["verify", "--url", "http://127.0.0.1:9", "--state", str(state_dir), "--token", "t",
                         "--log-key", fake.vkey, "--timeout", "2"])
        out, err = capsys.readouterr()
        assert code == 2 and "cannot reach the register" in err and "Traceback" not in err

