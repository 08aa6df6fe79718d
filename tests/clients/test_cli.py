"""`register-client` against the real app (in-process, through `build_app(transport=...)`), on both
databases: what an institution's operator types, what they see, and the exit status a batch job reads."""

from __future__ import annotations

import json
import sys

import pytest
from register_client import RegisterClient
from register_client.cli import build_app
from typer.testing import CliRunner

from tests.clients.conftest import (
    BASE_URL,
    consumer_token,
    invalid_national_id,
    ndjson,
    report_line,
)
from tests.clients.test_sdk import NO_CONSENT
from tests.factories import debtor, in_days, make_institution, new_ref, obligation_body


@pytest.fixture
def run(transport):
    """`run(*args, token=..., input=...)`: the CLI as a user runs it, configured through the environment."""
    runner = CliRunner()

    def invoke(*args: str, token: str | None = None, url: str = BASE_URL, input: str | None = None):
        env = {"REGISTER_URL": url, "REGISTER_TOKEN": token, "COLUMNS": "200"}
        return runner.invoke(build_app(transport=transport), list(args), env=env, input=input)

    return invoke


def assert_one_line_error(result, code: int, text: str) -> None:
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output and result.exception is None or isinstance(result.exception, SystemExit)
    lines = [x for x in result.stderr.splitlines() if x.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: ") and text in lines[0], result.stderr


class TestReport:
    def test_summary_and_rejected_lines(self, run, lender, person, tmp_path):
        path = tmp_path / "daily.ndjson"
        bad_id = invalid_national_id(person.nid)
        path.write_text(ndjson([
            report_line(person), "{not json",
            report_line(debtors=[{"country": "SE", "national_id": bad_id, "role": "primary"}]),
        ]))
        result = run("report", str(path), "--poll-interval", "0.05", token=lender.token)
        assert result.exit_code == 1, result.output  # a batch job sees that lines were refused
        assert "done" in result.stdout and "accepted 1, unchanged 0, rejected 2" in result.stdout
        assert "Rejected lines" in result.stdout
        assert "validation_error" in result.stdout and "invalid_national_id" in result.stdout
        assert bad_id not in result.output and person.nid not in result.output

    def test_clean_csv_exits_zero(self, run, lender, person, tmp_path):
        path = tmp_path / "daily.csv"
        path.write_text("external_ref,kind,currency,balance,status,debtors,registration_consent_reference,"
                        "registration_consent_given_at,registration_consent_method,as_of\n"
                        f"{new_ref()},instalment_loan,SEK,1500,current,SE:{person.nid}:primary,A-1,"
                        "2026-01-01T00:00:00Z,e_signature,2026-11-01T00:00:00Z\n")
        result = run("report", str(path), token=lender.token)
        assert result.exit_code == 0, result.output
        assert "accepted 1, unchanged 0, rejected 0" in result.stdout and "Rejected lines" not in result.stdout

    def test_json_for_machines(self, run, lender, tmp_path):
        path = tmp_path / "daily.ndjson"
        path.write_text(ndjson([report_line(), report_line(balance=-1)]))
        result = run("report", str(path), "--json", token=lender.token)
        doc = json.loads(result.stdout)
        assert (doc["report"]["accepted"], doc["report"]["rejected"]) == (1, 1)
        assert doc["errors"] == [{"line": 2, "code": "validation_error", "detail": doc["errors"][0]["detail"]}]

    def test_no_wait(self, run, lender, tmp_path):
        path = tmp_path / "daily.ndjson"
        path.write_text(ndjson([report_line()]))
        result = run("report", str(path), "--no-wait", token=lender.token)
        assert result.exit_code == 0 and result.stdout.startswith("Report ") and "received" in result.stdout

    def test_an_empty_file(self, run, lender, tmp_path):
        path = tmp_path / "empty.ndjson"
        path.write_text("")
        assert_one_line_error(run("report", str(path), token=lender.token), 1, "the report is empty")

    def test_a_missing_file_is_a_usage_error(self, run, lender, tmp_path):
        result = run("report", str(tmp_path / "nope.ndjson"), token=lender.token)
        assert result.exit_code == 2 and "does not exist" in result.output


class TestObligationsList:
    def test_table_and_json(self, run, lender, transport):
        refs = [new_ref() for _ in range(3)]
        with RegisterClient(BASE_URL, lender.token, transport=transport) as sdk:
            for ref in refs:
                sdk.put_obligation(ref, obligation_body(balance=123456))
        table = run("obligations", "list", token=lender.token)
        assert table.exit_code == 0 and all(ref in table.stdout for ref in refs)
        assert "1 234.56" in table.stdout and "3 obligations" in table.stdout
        lines = run("obligations", "list", "--json", "--limit", "2", token=lender.token).stdout.splitlines()
        assert [json.loads(x)["external_ref"] for x in lines] == refs[:2]


class TestExposure:
    def _consent(self, transport, lender, person, purpose="credit_application") -> str:
        with RegisterClient(BASE_URL, consumer_token(person), transport=transport) as me:
            return me.grant_consent({"institution_id": lender.id, "purpose": purpose, "expires_at": in_days(30)}).id

    def test_table_of_totals_and_lines(self, run, lender, person, transport):
        with RegisterClient(BASE_URL, lender.token, transport=transport) as sdk:
            sdk.put_obligation(new_ref(), obligation_body(debtors=[debtor(person)], balance=4_500_000))
        consent = self._consent(transport, lender, person)
        result = run("exposure", "--country", "SE", "--national-id", person.nid, "--purpose", "credit_application",
                     "--consent", consent, token=lender.token)
        assert result.exit_code == 0, result.output
        assert "Own debt" in result.stdout and "45 000.00" in result.stdout and lender.name in result.stdout
        assert person.nid not in result.stdout and f"{person.nid[:8]}-****" in result.stdout

    def test_json_and_the_number_from_stdin(self, run, lender, person, transport):
        consent = self._consent(transport, lender, person)
        result = run("exposure", "--country", "se", "--national-id", "-", "--purpose", "credit_application",
                     "--consent", consent, "--json", token=lender.token, input=person.nid + "\n")
        doc = json.loads(result.stdout)
        assert doc["consent_id"] == consent and doc["totals"] == {} and doc["receipt"]["event_id"]

    def test_no_consent(self, run, lender, person):
        result = run("exposure", "--country", "SE", "--national-id", person.nid, "--purpose", "credit_application",
                     "--consent", NO_CONSENT, token=lender.token)
        assert_one_line_error(result, 1, "No valid consent: no consent with that id [consent_missing, HTTP 403")

    def test_invalid_national_id(self, run, lender, person):
        bad = invalid_national_id(person.nid)
        result = run("exposure", "--country", "SE", "--national-id", bad, "--purpose", "credit_application",
                     "--consent", NO_CONSENT, token=lender.token)
        assert_one_line_error(result, 1, "Invalid national identity number: national_id is not a valid SE")
        assert bad not in result.output

    def test_unknown_purpose_is_a_usage_error(self, run, lender, person):
        result = run("exposure", "--country", "SE", "--national-id", person.nid, "--purpose", "curiosity",
                     "--consent", NO_CONSENT, token=lender.token)
        assert result.exit_code == 2 and "curiosity" in result.output


class TestConsentsList:
    def test_masked_consents(self, run, lender, person, transport):
        consent = self._grant(transport, lender, person)
        result = run("consents", "list", token=lender.token)
        assert result.exit_code == 0 and consent in result.stdout and "active" in result.stdout
        assert person.nid not in result.stdout
        assert json.loads(run("consents", "list", "--json", token=lender.token).stdout)["id"] == consent

    def _grant(self, transport, lender, person) -> str:
        return TestExposure._consent(self, transport, lender, person)


class TestConfiguration:
    def test_bad_token(self, run):
        result = run("obligations", "list", token="rgt_not-a-token")
        assert_one_line_error(result, 1, "Authentication required")

    def test_no_token(self, run):
        assert_one_line_error(run("consents", "list"), 2, "no token: pass --token or set REGISTER_TOKEN")

    def test_input_refused_before_sending(self, run, lender):
        result = run("exposure", "--country", "SWE", "--national-id", "1", "--purpose", "credit_application",
                     "--consent", NO_CONSENT, token=lender.token)
        assert_one_line_error(result, 2, "invalid input: country: String should match pattern")

    def test_server_down(self, closed_port):
        url = f"http://127.0.0.1:{closed_port}"
        result = CliRunner().invoke(build_app(), ["--url", url, "--token", "rgt_x", "--retries", "1",
                                                  "obligations", "list"])
        assert_one_line_error(result, 3, f"cannot reach the register at {url}")

    def test_options_override_the_environment(self, run, lender, client, admin_headers):
        other = make_institution(client, admin_headers, "lender")
        result = run("--token", other.token, "consents", "list", "--json", token=lender.token)
        assert result.exit_code == 0 and result.stdout == ""  # the other lender's (empty) list


class TestAuditVerify:
    def test_the_regulators_verifier(self, run, client, admin_headers, lender, transport, tmp_path):
        regulator = make_institution(client, admin_headers, "regulator")
        with RegisterClient(BASE_URL, regulator.token, transport=transport) as reg:
            reg.make_checkpoint()
            vkey = reg.log_key().vkey
        state = tmp_path / "audit-state"
        first = run("audit", "verify", "--state", str(state), "--log-key", vkey, token=regulator.token)
        assert first.exit_code == 0, first.output
        assert first.stdout.startswith("OK: audit log") and "Log key pinned now" in first.stdout
        again = run("audit", "verify", "--state", str(state), "--full", token=regulator.token)
        assert again.exit_code == 0 and "Full audit" in again.stdout

    def test_a_lender_checks_checkpoints_but_cannot_read_leaves(self, run, lender, client, admin_headers,
                                                                transport, tmp_path):
        with RegisterClient(BASE_URL, lender.token, transport=transport) as sdk:
            sdk.put_obligation(new_ref(), obligation_body())  # an access event, so the log has a leaf
            vkey = sdk.log_key().vkey
        regulator = make_institution(client, admin_headers, "regulator")
        with RegisterClient(BASE_URL, regulator.token, transport=transport) as reg:
            reg.make_checkpoint()
        state = str(tmp_path / "s")
        first = run("audit", "verify", "--state", state, "--log-key", vkey, token=lender.token)
        assert first.exit_code == 0, first.output
        result = run("audit", "verify", "--state", state, "--full", token=lender.token)
        assert result.exit_code == 2 and "403" in result.stderr and "Traceback" not in result.output, result.output

    def test_without_the_verifier_installed(self, run, lender, tmp_path, monkeypatch):
        monkeypatch.setitem(sys.modules, "register_verifier", None)  # import fails as if not installed
        result = run("audit", "verify", "--state", str(tmp_path / "s"), token=lender.token)
        assert_one_line_error(result, 2, "pip install ./clients/register_verifier")
