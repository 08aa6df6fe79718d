"""`register-client` against the real app (in-process, through `build_app(transport=...)`), on both
databases: what an institution's operator types, what they see, and the exit status a batch job reads."""

from __future__ import annotations

import json
import re
import sys
from datetime import timedelta

import httpx
import pytest
from register_client import RegisterClient
from register_client.cli import build_app
from rich.cells import cell_len
from typer.testing import CliRunner

from tests.clients.conftest import (
    BASE_URL,
    DISPUTE_TEXT,
    consumer_token,
    invalid_national_id,
    ndjson,
    open_dispute,
    report_line,
    set_credit_ban,
)
from tests.clients.test_retry import Flaky
from tests.clients.test_sdk import CSV_HEADER, NO_CONSENT
from tests.factories import debtor, in_days, make_institution, new_ref, obligation_body

# A terminal this wide, as rich sees one (TTY_COMPATIBLE), without colours to strip.
TERMINAL = {"TTY_COMPATIBLE": "1", "NO_COLOR": "1", "TERM": "xterm"}
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


@pytest.fixture
def run(transport):
    """`run(*args, token=..., input=...)`: the CLI as a user runs it, configured through the environment.
    `env` adds to (or, with None, removes from) that environment; `via` replaces the transport."""
    runner = CliRunner()

    def invoke(*args: str, token: str | None = None, url: str = BASE_URL, input: str | None = None,
               env: dict[str, str | None] | None = None, via=None):
        environment = {"REGISTER_URL": url, "REGISTER_TOKEN": token, "COLUMNS": "200", **(env or {})}
        return runner.invoke(build_app(transport=via or transport), list(args), env=environment, input=input)

    return invoke


def plain(text: str) -> str:
    return ANSI.sub("", text)


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
        assert "done" in result.stdout and "lines read 3, accepted 1, unchanged 0, rejected 2" in result.stdout
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
        # The register counts the file's lines; the CSV header is one of them, and the summary says so.
        assert "lines read 2 (including the header), accepted 1" in result.stdout

    def test_csv_without_a_csv_suffix(self, run, lender, person, tmp_path):
        path = tmp_path / "daily.txt"
        path.write_text(CSV_HEADER + f"{new_ref()},credit_card,SEK,1500,50000,current,SE:{person.nid}:primary,A-1,"
                                     "2026-01-01T00:00:00Z,e_signature,2026-11-01T00:00:00Z\n")
        result = run("report", str(path), token=lender.token)
        assert result.exit_code == 0, result.output
        assert "lines read 2 (including the header), accepted 1, unchanged 0, rejected 0" in result.stdout

    def test_a_file_of_unknown_format_is_a_usage_error(self, run, lender, tmp_path):
        path = tmp_path / "daily.dat"
        path.write_text("LOAN-1;instalment_loan;SEK;1500\n")
        result = run("report", str(path), token=lender.token)
        assert_one_line_error(result, 2, "cannot tell whether daily.dat is CSV or NDJSON")
        assert "pass --format csv or --format ndjson" in result.stderr
        assert run("report", str(path), "--format", "csv", token=lender.token).exit_code == 1  # sent, and refused

    def test_the_same_key_again_says_it_was_not_applied_again(self, run, lender, tmp_path):
        path = tmp_path / "daily.ndjson"
        path.write_text(ndjson([report_line()]))
        key = ["--idempotency-key", new_ref()]
        first = run("report", str(path), *key, token=lender.token)
        assert first.exit_code == 0 and "already received" not in first.stdout, first.output
        again = run("report", str(path), *key, token=lender.token)
        repeat = r"\(already received at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC; not applied again\)"
        assert again.exit_code == 0 and re.search(repeat, again.stdout.splitlines()[0]), again.output
        assert re.search(repeat, run("report", str(path), *key, "--no-wait", token=lender.token).stdout)
        assert json.loads(run("report", str(path), *key, "--json", token=lender.token).stdout)["repeated"] is True
        assert json.loads(run("report", str(path), "--json", token=lender.token).stdout)["repeated"] is False

    def test_status_and_errors_after_no_wait(self, run, lender, tmp_path):
        path = tmp_path / "daily.ndjson"
        path.write_text(ndjson([report_line(), report_line(balance=-1), "{not json"]))
        sent = run("report", str(path), "--no-wait", token=lender.token)
        report_id = re.fullmatch(r"Report (\S+): received\n", sent.stdout).group(1)
        status = run("report-status", report_id, token=lender.token)
        assert status.exit_code == 1, status.output  # as `report`: lines were rejected
        assert f"Report {report_id}: done" in status.stdout and "accepted 1, unchanged 0, rejected 2" in status.stdout
        doc = json.loads(run("report-status", report_id, "--json", token=lender.token).stdout)
        assert (doc["id"], doc["status"], doc["rejected"]) == (report_id, "done", 2)
        errors = run("report-errors", report_id, token=lender.token)
        assert errors.exit_code == 0 and "Rejected lines" in errors.stdout and "validation_error" in errors.stdout
        lines = run("report-errors", report_id, "--json", token=lender.token).stdout.splitlines()
        assert [(e["line"], e["code"]) for e in map(json.loads, lines)] == [(2, "validation_error"),
                                                                            (3, "validation_error")]
        assert len(run("report-errors", report_id, "--json", "--limit", "1", token=lender.token).stdout.splitlines()) == 1

    def test_status_of_a_clean_report_waits_and_exits_zero(self, run, lender, tmp_path):
        path = tmp_path / "daily.ndjson"
        path.write_text(ndjson([report_line()]))
        report_id = run("report", str(path), "--no-wait", "--json", token=lender.token).stdout
        report_id = json.loads(report_id)["id"]
        status = run("report-status", report_id, "--wait", "--poll-interval", "0.05", token=lender.token)
        assert status.exit_code == 0 and "lines read 1, accepted 1" in status.stdout, status.output
        errors = run("report-errors", report_id, token=lender.token)
        assert errors.exit_code == 0 and errors.stdout == "No rejected lines.\n"

    @pytest.mark.parametrize("command", ["report-status", "report-errors"])
    def test_a_report_id_that_is_not_a_uuid(self, run, lender, command):
        assert_one_line_error(run(command, "abc", token=lender.token), 2, "report id must be a UUID")

    def test_another_institutions_report_is_not_found(self, run, lender, client, admin_headers, tmp_path):
        path = tmp_path / "daily.ndjson"
        path.write_text(ndjson([report_line()]))
        report_id = json.loads(run("report", str(path), "--no-wait", "--json", token=lender.token).stdout)["id"]
        other = make_institution(client, admin_headers, "lender")
        assert_one_line_error(run("report-status", report_id, token=other.token), 1, "HTTP 404")

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

    def test_json_is_printed_exactly(self, run, lender, transport):
        # Not read as rich markup or emoji codes: "[old name]" and ":x:" stay as the register sent them.
        with RegisterClient(BASE_URL, lender.token, transport=transport) as sdk:
            sdk.put_obligation(new_ref(), obligation_body(original_creditor="Bank [old name] :x:"))
        [line] = run("obligations", "list", "--json", token=lender.token).stdout.splitlines()
        assert json.loads(line)["original_creditor"] == "Bank [old name] :x:"

    def test_more_than_the_limit_says_how_to_go_on(self, run, lender, transport):
        refs = [new_ref() for _ in range(5)]
        with RegisterClient(BASE_URL, lender.token, transport=transport) as sdk:
            for ref in refs:
                sdk.put_obligation(ref, obligation_body())
        shown, cursor, pages = [], [], 0
        while True:  # what a person does: run it again with the --cursor it names
            result = run("obligations", "list", "--limit", "2", *cursor, token=lender.token)
            assert result.exit_code == 0, result.output
            shown += [ref for ref in refs if ref in result.stdout]
            pages += 1
            more = re.search(r"More obligations follow: add --cursor (\S+) to go on from here, or --limit 0 for all",
                             result.stderr)
            if not more:
                break
            cursor = ["--cursor", more.group(1)]
        assert shown == refs and pages == 3  # 2 + 2 + 1, and the last one says no more
        assert "5 obligations" in run("obligations", "list", "--limit", "0", token=lender.token).stdout

    def test_json_lines_stay_records_and_the_cursor_goes_to_stderr(self, run, lender, transport):
        refs = [new_ref() for _ in range(3)]
        with RegisterClient(BASE_URL, lender.token, transport=transport) as sdk:
            for ref in refs:
                sdk.put_obligation(ref, obligation_body())
        first = run("obligations", "list", "--json", "--limit", "2", token=lender.token)
        assert [json.loads(x)["external_ref"] for x in first.stdout.splitlines()] == refs[:2]
        cursor = re.search(r"--cursor (\S+)", first.stderr).group(1)
        rest = run("obligations", "list", "--json", "--cursor", cursor, token=lender.token)
        assert [json.loads(x)["external_ref"] for x in rest.stdout.splitlines()] == refs[2:]
        assert "More" not in rest.stderr

    def test_exactly_the_limit_is_not_called_more(self, run, lender, transport):
        with RegisterClient(BASE_URL, lender.token, transport=transport) as sdk:
            for _ in range(2):
                sdk.put_obligation(new_ref(), obligation_body())
        result = run("obligations", "list", "--limit", "2", token=lender.token)
        assert result.exit_code == 0 and "2 obligations" in result.stdout and "More" not in result.stderr

    def test_a_cursor_it_did_not_print_is_refused_in_one_line(self, run, lender):
        assert_one_line_error(run("obligations", "list", "--cursor", "not-a-cursor", token=lender.token), 1,
                              "invalid_cursor")

    def test_an_unknown_status_is_a_usage_error(self, run, lender):
        result = run("obligations", "list", "--status", "late", token=lender.token)
        assert result.exit_code == 2 and "late" in result.output
        assert run("obligations", "list", "--status", "overdue", token=lender.token).exit_code == 0


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

    def test_a_credit_ban_and_a_disputed_line_are_shown_in_words(self, run, lender, person, transport, client):
        with RegisterClient(BASE_URL, lender.token, transport=transport) as sdk:
            line_id = sdk.put_obligation(new_ref(), obligation_body(debtors=[debtor(person)], balance=4_500_000)).id
            sdk.put_obligation(new_ref(), obligation_body(debtors=[debtor(person)], balance=1_000))
        open_dispute(client, person, line_id)
        set_credit_ban(client, person)
        consent = self._consent(transport, lender, person)
        args = ("exposure", "--country", "SE", "--national-id", person.nid, "--purpose", "credit_application",
                "--consent", consent)
        result = run(*args, token=lender.token)
        assert result.exit_code == 0, result.output
        banner = [x for x in result.stdout.splitlines() if x.startswith("CREDIT BAN: ")]
        assert len(banner) == 1 and "(identity_theft)" in banner[0] and "logged as made during the ban" in banner[0]
        disputed = [x for x in result.stdout.splitlines() if "DISPUTED" in x]
        assert len(disputed) == 1 and "45 000.00" in disputed[0]  # the disputed line, not the other
        doc = json.loads(run(*args, "--json", token=lender.token).stdout)
        assert doc["credit_ban"]["active"] is True and doc["credit_ban"]["reason"] == "identity_theft"
        assert sorted(line["disputed"] for line in doc["obligations"]) == [False, True]

    def test_no_banner_without_a_ban(self, run, lender, person, transport):
        consent = self._consent(transport, lender, person)
        result = run("exposure", "--country", "SE", "--national-id", person.nid, "--purpose", "credit_application",
                     "--consent", consent, token=lender.token)
        assert result.exit_code == 0 and "CREDIT BAN" not in result.stdout and "DISPUTED" not in result.stdout

    def test_json_and_the_number_from_stdin(self, run, lender, person, transport):
        consent = self._consent(transport, lender, person)
        result = run("exposure", "--country", "se", "--national-id", "-", "--purpose", "credit_application",
                     "--consent", consent, "--json", token=lender.token, input=person.nid + "\n")
        doc = json.loads(result.stdout)
        assert doc["consent_id"] == consent and doc["totals"] == {} and doc["receipt"]["event_id"]
        assert doc["credit_ban"]["active"] is False

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

    def test_a_consent_id_that_is_not_a_uuid_is_a_usage_error(self, run, lender, person):
        result = run("exposure", "--country", "SE", "--national-id", person.nid, "--purpose", "credit_application",
                     "--consent", "abc", token=lender.token)
        assert_one_line_error(result, 2, "consent id must be a UUID")

    def test_unknown_purpose_is_a_usage_error(self, run, lender, person):
        result = run("exposure", "--country", "SE", "--national-id", person.nid, "--purpose", "curiosity",
                     "--consent", NO_CONSENT, token=lender.token)
        assert result.exit_code == 2 and "curiosity" in result.output


class TestDisputes:
    """`disputes list/show/answer`, as a creditor's operator answers people in time."""

    def _disputed(self, transport, client, lender, person, text: str = DISPUTE_TEXT) -> tuple[str, dict]:
        ref = new_ref()
        with RegisterClient(BASE_URL, lender.token, transport=transport) as sdk:
            line_id = sdk.put_obligation(ref, obligation_body(debtors=[debtor(person)])).id
        return ref, open_dispute(client, person, line_id, text=text)

    def test_list_as_a_table_and_as_json(self, run, transport, client, lender, person):
        long_text = DISPUTE_TEXT + " The bank's own letter of 3 November confirms it, and I attach it here."
        ref, d = self._disputed(transport, client, lender, person, text=long_text)
        result = run("disputes", "list", "--state", "open", token=lender.token)
        assert result.exit_code == 0, result.output
        [row] = [x for x in result.stdout.splitlines() if d["id"] in x]  # one line per dispute in a pipe
        assert ref in row and "repaid" in row and " open " in row and d["deadline"][:10] in row
        assert "I paid this card in full" in row and long_text not in row and "…" in row  # shortened
        assert "1 dispute, 1 awaiting an answer" in result.stdout and "OVERDUE" not in result.stdout
        [doc] = [json.loads(x) for x in run("disputes", "list", "--json", token=lender.token).stdout.splitlines()]
        assert (doc["id"], doc["external_ref"], doc["text"], doc["state"]) == (d["id"], ref, long_text, "open")

    def test_none(self, run, lender):
        result = run("disputes", "list", token=lender.token)
        assert result.exit_code == 0 and result.stdout == "No disputes.\n"
        assert run("disputes", "list", "--json", token=lender.token).stdout == ""

    def test_overdue_is_marked_in_words(self, run, transport, client, lender, person, clock):
        _, d = self._disputed(transport, client, lender, person)
        clock.now += timedelta(days=31)
        result = run("disputes", "list", "--state", "overdue", token=lender.token, env=TERMINAL)
        assert result.exit_code == 0, result.output
        [row] = [x for x in plain(result.stdout).splitlines() if d["id"] in x]
        assert "OVERDUE" in row and "1 OVERDUE (past the deadline" in result.stdout
        answer = run("disputes", "answer", d["id"], "--outcome", "upheld", "--explanation", "Right as reported.",
                     token=lender.token)
        assert answer.exit_code == 0 and "after its deadline (logged as late)" in answer.stdout, answer.output

    def test_an_unknown_state_is_a_usage_error(self, run, lender):
        result = run("disputes", "list", "--state", "late", token=lender.token)
        assert result.exit_code == 2 and "late" in result.output

    def test_show_prints_the_whole_text(self, run, transport, client, lender, person):
        text = "First line of what happened.\nSecond line, with [brackets] kept."
        ref, d = self._disputed(transport, client, lender, person, text=text)
        result = run("disputes", "show", d["id"], token=lender.token)
        assert result.exit_code == 0, result.output
        assert f"Dispute {d['id']}: open (answer by " in result.stdout and ref in result.stdout
        whole = "The person wrote:\n  First line of what happened.\n  Second line, with [brackets] kept.\n"
        assert whole in result.stdout
        assert json.loads(run("disputes", "show", d["id"], "--json", token=lender.token).stdout)["text"] == text

    def test_the_persons_words_cannot_drive_the_terminal(self, run, transport, client, lender, person):
        _, d = self._disputed(transport, client, lender, person, text="Wrong \x1b]0;owned\x07\x1b[2Jamount")
        for args in (("disputes", "list"), ("disputes", "show", d["id"])):
            result = run(*args, token=lender.token)
            assert result.exit_code == 0 and "\x1b" not in result.stdout and "\x07" not in result.stdout
            assert "Wrong" in result.stdout and "amount" in result.stdout

    def test_answer_then_a_second_answer_is_refused(self, run, transport, client, lender, person):
        ref, d = self._disputed(transport, client, lender, person)
        result = run("disputes", "answer", d["id"], "--outcome", "corrected", "--explanation",
                     "We had missed your payment; the card now shows it.", token=lender.token)
        assert result.exit_code == 0, result.output
        assert result.stdout.startswith(f"Dispute {d['id']}: corrected, answered ")
        assert f"Report the corrected line {ref} too" in result.stdout
        again = run("disputes", "answer", d["id"], "--outcome", "upheld", "--explanation", "x", token=lender.token)
        assert_one_line_error(again, 1, "[dispute_closed, HTTP 409")

    def test_answer_from_stdin_as_json(self, run, transport, client, lender, person):
        _, d = self._disputed(transport, client, lender, person)
        explanation = "Our ledger shows no payment in November.\nThe balance stands."
        result = run("disputes", "answer", d["id"], "--outcome", "upheld", "--explanation", "-", "--json",
                     token=lender.token, input=explanation + "\n")
        doc = json.loads(result.stdout)
        assert (doc["state"], doc["explanation"], doc["closed_by"]) == ("upheld", explanation, "creditor")

    def test_another_lenders_dispute_is_not_found(self, run, transport, client, admin_headers, lender, person):
        _, d = self._disputed(transport, client, lender, person)
        other = make_institution(client, admin_headers, "lender")
        result = run("disputes", "answer", d["id"], "--outcome", "corrected", "--explanation", "x", token=other.token)
        assert_one_line_error(result, 1, "[not_found, HTTP 404")
        assert_one_line_error(run("disputes", "show", d["id"], token=other.token), 1, "[not_found, HTTP 404")

    @pytest.mark.parametrize(("args", "text"), [
        (("not-a-uuid", "--outcome", "upheld", "--explanation", "x"), "dispute id must be a UUID"),
        ((NO_CONSENT, "--outcome", "upheld", "--explanation", ""), "invalid input: explanation:"),
    ])
    def test_usage_errors(self, run, lender, args, text):
        assert_one_line_error(run("disputes", "answer", *args, token=lender.token), 2, text)

    def test_an_unknown_outcome_is_a_usage_error(self, run, lender):
        result = run("disputes", "answer", NO_CONSENT, "--outcome", "rejected", "--explanation", "x",
                     token=lender.token)
        assert result.exit_code == 2 and "rejected" in result.output

    @pytest.mark.parametrize("columns", [80, 40])
    def test_a_narrow_terminal_cuts_no_id(self, run, transport, client, lender, person, columns):
        ref, d = self._disputed(transport, client, lender, person)
        result = run("disputes", "list", token=lender.token, env={**TERMINAL, "COLUMNS": str(columns)})
        text = plain(result.stdout)
        assert d["id"] in text and ref in text, text  # each whole, on one line
        if columns == 80:  # one block per record fits; at 40 the terminal itself wraps the id's line
            assert all(cell_len(x) <= columns for x in text.splitlines()), text


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

    @pytest.mark.parametrize("padding", ["\r", "\r\n", "  "])
    def test_a_token_from_a_windows_env_file(self, run, lender, padding):
        result = run("consents", "list", "--json", token=lender.token + padding)
        assert result.exit_code == 0 and result.stdout == "", result.output

    @pytest.mark.parametrize("token", ["rgt_abc def", "rgt_abc\x01def", "rgt_abc\rdef"])
    def test_a_token_with_whitespace_inside_is_a_usage_error(self, run, token):
        result = run("consents", "list", token=token)
        assert_one_line_error(result, 2, "the token contains whitespace or control characters")
        assert "abc" not in result.output

    def test_an_error_never_prints_the_token(self, run, lender):
        def handler(request: httpx.Request) -> httpx.Response:
            raise httpx.RemoteProtocolError(f"bad header {request.headers['authorization'].encode()!r}")

        result = run("consents", "list", token=lender.token, via=httpx.MockTransport(handler), env={"COLUMNS": "80"})
        assert_one_line_error(result, 3, "bad header b'Bearer [token]'")
        assert lender.token not in result.output.replace("\n", "")

    @pytest.mark.parametrize("suffix", ["/v1", "/v1/"])
    def test_a_url_ending_in_v1(self, run, lender, suffix):
        result = run("consents", "list", "--json", token=lender.token, url=BASE_URL + suffix)
        assert result.exit_code == 0 and result.stdout == "", result.output
        assert result.stderr == f"note: REGISTER_URL (--url) is the base URL, without /v1; using {BASE_URL}\n"

    def test_retries_are_announced_at_a_terminal(self, run, lender, transport):
        result = run("consents", "list", token=lender.token, via=Flaky(transport, ["503", "refused"]), env=TERMINAL)
        assert result.exit_code == 0, result.output
        assert [re.sub(r"waiting \d+\.\d s$", "waiting N s", x) for x in plain(result.stderr).splitlines()] == [
            "retrying (2/4) after HTTP 503 Service Unavailable; waiting N s",
            "retrying (3/4) after [Errno 111] Connection refused; waiting N s"]

    def test_retries_are_quiet_in_a_batch_job(self, run, lender, transport):
        result = run("consents", "list", "--json", token=lender.token, via=Flaky(transport, ["503"]))
        assert result.exit_code == 0 and result.stderr == "", result.output

    def test_options_override_the_environment(self, run, lender, client, admin_headers):
        other = make_institution(client, admin_headers, "lender")
        result = run("--token", other.token, "consents", "list", "--json", token=lender.token)
        assert result.exit_code == 0 and result.stdout == ""  # the other lender's (empty) list


class TestWidth:
    """Amounts and identifiers are never cut or wrapped: at an 80-column (or narrower) terminal tables fit or
    become one block per record, and in a pipe or file (rich's default there is 80 columns) every record
    is one line."""

    AMOUNTS = ("27 499.71", "500.00", "12 345 678.90", "12 345.00", "12 373 178.61", "12 845.00")

    def _exposure(self, run, transport, lender, person, env):
        with RegisterClient(BASE_URL, lender.token, transport=transport) as sdk:
            sdk.put_obligation(new_ref(), obligation_body(debtors=[debtor(person)], balance=2_749_971,
                                                          monthly_payment=50_000))
            sdk.put_obligation(new_ref(), obligation_body(debtors=[debtor(person)], balance=1_234_567_890,
                                                          monthly_payment=1_234_500))
        consent = TestExposure._consent(self, transport, lender, person)
        result = run("exposure", "--country", "SE", "--national-id", person.nid, "--purpose", "credit_application",
                     "--consent", consent, token=lender.token, env=env)
        assert result.exit_code == 0, result.output
        return plain(result.stdout)

    @pytest.mark.parametrize("columns", [80, 60, 40])
    def test_exposure_at_a_narrow_terminal(self, run, transport, lender, person, columns):
        text = self._exposure(run, transport, lender, person, {**TERMINAL, "COLUMNS": str(columns)})
        assert all(amount in text for amount in self.AMOUNTS), text
        assert "…" not in text and all(cell_len(line) <= columns for line in text.splitlines()), [
            (cell_len(x), x) for x in text.splitlines() if cell_len(x) > columns]

    def test_exposure_in_a_pipe(self, run, transport, lender, person):
        text = self._exposure(run, transport, lender, person, {"COLUMNS": None})
        rows = [line for line in text.splitlines() if lender.name in line]
        small, large = sorted(rows, key=lambda row: "27 499.71" not in row)  # each line with its own amounts
        assert len(rows) == 2 and "27 499.71" in small and "500.00" in small, text
        assert "12 345 678.90" in large and "12 345.00" in large
        assert "12 373 178.61" in text and "…" not in text

    @pytest.mark.parametrize("env", [{"COLUMNS": None}, {**TERMINAL, "COLUMNS": "80"}], ids=["pipe", "terminal"])
    def test_obligations_list(self, run, transport, lender, env):
        refs = [new_ref() for _ in range(2)]
        with RegisterClient(BASE_URL, lender.token, transport=transport) as sdk:
            for ref in refs:
                sdk.put_obligation(ref, obligation_body(balance=2_749_971))
        text = plain(run("obligations", "list", token=lender.token, env=env).stdout)
        assert "…" not in text and all(ref in text for ref in refs) and text.count("27 499.71") == 2, text
        if "TTY_COMPATIBLE" not in env:
            assert all(len([x for x in text.splitlines() if ref in x and "27 499.71" in x]) == 1 for ref in refs)

    def test_rejected_lines_in_a_pipe_are_one_line_each(self, run, lender, tmp_path):
        path = tmp_path / "daily.ndjson"
        path.write_text(ndjson([report_line(balance=-1), report_line(owner="me")]))
        result = run("report", str(path), token=lender.token, env={"COLUMNS": None})
        rows = [line for line in result.stdout.splitlines() if "validation_error" in line]
        assert len(rows) == 2 and all(len(r) > 80 for r in rows), result.stdout  # not wrapped at 80


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


class TestRegulatorSignals:
    """`regulator signals`, as a supervisor looks for where to look."""

    def test_an_overdue_dispute_shows_its_creditor(self, run, transport, client, lender, person, regulator, clock):
        _, d = TestDisputes()._disputed(transport, client, lender, person)
        clock.now += timedelta(days=31)
        result = run("regulator", "signals", "--kind", "overdue_disputes", token=regulator.token)
        assert result.exit_code == 0, result.output
        [row] = [x for x in result.stdout.splitlines() if lender.id in x]
        assert "overdue_disputes" in row and "signal" in result.stdout
        docs = [json.loads(x) for x in run("regulator", "signals", "--kind", "overdue_disputes", "--json",
                                           token=regulator.token).stdout.splitlines()]
        [mine] = [s for s in docs if s["institution_id"] == lender.id]
        assert mine["kind"] == "overdue_disputes" and len(mine["evidence"]) == 1

    def test_the_help_names_every_kind(self, run):
        for args in (("regulator", "--help"), ("regulator", "signals", "--help")):
            result = run(*args)
            assert result.exit_code == 0, result.output
            words = " ".join(plain(result.output).split())
            for kind in ("many lenders", "during a credit ban", "overdue disputes", "without follow-up",
                         "late reporting", "sequential lookups"):
                assert kind in words, (args, kind)

    def test_a_lender_is_refused_and_a_bad_kind_is_a_usage_error(self, run, lender, regulator):
        assert_one_line_error(run("regulator", "signals", token=lender.token), 1, "")
        result = run("regulator", "signals", "--kind", "gossip", token=regulator.token)
        assert result.exit_code == 2 and "gossip" in result.output
        assert run("regulator", "signals", "--since", "2000-01-01", token=regulator.token).exit_code == 1


class TestRegulatorActivity:
    """`regulator activity`, one institution's figures."""

    def test_a_disputed_line_shows_in_the_figures(self, run, transport, client, lender, person, regulator, clock):
        TestDisputes()._disputed(transport, client, lender, person)
        result = run("regulator", "activity", lender.id, token=regulator.token)
        assert result.exit_code == 0, result.output
        assert "Disputes: 1 open, 0 overdue" in result.stdout and "Lookups:" in result.stdout
        [doc] = [json.loads(x) for x in run("regulator", "activity", lender.id, "--json",
                                            token=regulator.token).stdout.splitlines()]
        assert doc["institution"]["id"] == lender.id and doc["disputes"]["open"] == 1 and "from" in doc

    def test_a_lender_an_unknown_id_and_a_bad_period_are_refused(self, run, lender, regulator):
        assert_one_line_error(run("regulator", "activity", lender.id, token=lender.token), 1, "")
        assert run("regulator", "activity", "00000000-0000-4000-8000-000000000000", token=regulator.token).exit_code == 1
        assert run("regulator", "activity", lender.id, "--from", "2000-01-01", token=regulator.token).exit_code == 1
