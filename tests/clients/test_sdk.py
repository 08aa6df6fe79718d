"""The SDK against the real app, on SQLite and PostgreSQL: what an institution does first, and every
error it meets first, raised as the documented class with the register's own title and detail."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from register_client import (
    NO_RETRY,
    AccessEvent,
    Conflict,
    ConnectError,
    ConsentMismatch,
    ConsentMissing,
    ConsentRevoked,
    CreditBan,
    Dispute,
    DisputeClosed,
    DisputeNotFound,
    Exposure,
    Forbidden,
    HandedTo,
    HandedToRef,
    InstitutionLookups,
    InvalidInput,
    InvalidNationalId,
    InvalidRequest,
    MyLine,
    NotFound,
    Obligation,
    ObligationReport,
    PreconditionFailed,
    ReferenceReused,
    RegisterClient,
    Report,
    ReportLine,
    Retracted,
    Retry,
    ServiceUnavailable,
    StaleUpdate,
    TransportError,
    Unauthenticated,
    UploadProgress,
    ValidationFailed,
)

from tests.clients.conftest import (
    BASE_URL,
    DISPUTE_TEXT,
    FAST,
    consumer_token,
    invalid_national_id,
    ndjson,
    open_dispute,
    report_line,
    set_credit_ban,
)
from tests.factories import debtor, in_days, make_institution, make_person, new_ref, obligation_body

NO_CONSENT = "00000000-0000-4000-8000-000000000000"
CSV_HEADER = ("external_ref,kind,currency,balance,credit_limit,status,debtors,registration_consent_reference,"
              "registration_consent_given_at,registration_consent_method,as_of\n")


class TestObligations:
    def test_report_read_and_history(self, sdk, person):
        ref = new_ref()
        created = sdk.put_obligation(ref, obligation_body(debtors=[debtor(person)]))
        assert isinstance(created, Obligation) and created.version == 1 and created.etag
        assert created.debtors[0].national_id_masked.endswith("****")
        updated = sdk.put_obligation(ref, ObligationReport.model_validate(
            obligation_body(debtors=[debtor(person)], balance=1, as_of="2026-11-02T00:00:00Z")))
        assert updated.version == 2 and updated.balance == 1
        assert sdk.get_obligation(ref).balance == 1
        assert [v.change for v in sdk.obligation_history(ref).versions] == ["created", "updated"]

    def test_list_follows_every_page(self, sdk):
        refs = {new_ref() for _ in range(5)}
        for ref in refs:
            sdk.put_obligation(ref, obligation_body())
        listed = list(sdk.list_obligations(page_size=2))
        assert {ob.external_ref for ob in listed} == refs  # three pages, each lender sees only its own

    def test_one_page_at_a_time_resumes_where_it_stopped(self, sdk):
        refs = [new_ref() for _ in range(3)]
        for ref in refs:
            sdk.put_obligation(ref, obligation_body())
        first = sdk.obligations_page(limit=2)
        assert [ob.external_ref for ob in first.items] == refs[:2] and first.next_cursor
        last = sdk.obligations_page(cursor=first.next_cursor, limit=2)
        assert [ob.external_ref for ob in last.items] == refs[2:] and last.next_cursor is None

    def test_retract_then_read_is_retracted(self, sdk):
        ref = new_ref()
        sdk.put_obligation(ref, obligation_body())
        assert sdk.retract_obligation(ref, reason="reported in error").retracted_at is not None
        with pytest.raises(Retracted) as err:
            sdk.get_obligation(ref)
        assert err.value.status == 410 and err.value.code == "retracted"

    def test_stale_update(self, sdk):
        ref = new_ref()
        sdk.put_obligation(ref, obligation_body(as_of="2026-11-10T00:00:00Z"))
        with pytest.raises(StaleUpdate) as err:
            sdk.put_obligation(ref, obligation_body(as_of="2026-11-09T00:00:00Z"))
        assert err.value.status == 409 and err.value.title == "Older than the stored state"
        assert "older than the stored" in err.value.detail and err.value.request_id

    def test_stale_if_match(self, sdk):
        ref = new_ref()
        first = sdk.put_obligation(ref, obligation_body())
        sdk.put_obligation(ref, obligation_body(balance=5, as_of="2026-11-02T00:00:00Z"))
        with pytest.raises(PreconditionFailed):
            sdk.put_obligation(ref, obligation_body(balance=6, as_of="2026-11-03T00:00:00Z"), if_match=first.etag)

    def test_invalid_national_id_names_the_debtor(self, sdk, person):
        bad = {"country": "SE", "national_id": invalid_national_id(person.nid), "role": "co_debtor"}
        with pytest.raises(InvalidNationalId) as err:
            sdk.put_obligation(new_ref(), obligation_body(debtors=[debtor(person), bad]))
        assert err.value.debtor_index == 1 and err.value.status == 422
        assert err.value.title == "Invalid national identity number"
        assert invalid_national_id(person.nid) not in str(err.value)

    def test_another_lenders_obligation_is_not_found(self, sdk, client, admin_headers, transport):
        other = make_institution(client, admin_headers, "lender")
        ref = new_ref()
        sdk.put_obligation(ref, obligation_body())
        with RegisterClient(BASE_URL, other.token, transport=transport) as theirs, pytest.raises(NotFound):
            theirs.get_obligation(ref)

    def test_a_bad_body_fails_before_sending(self, sdk):
        with pytest.raises(ValueError, match="balance"):
            sdk.put_obligation(new_ref(), obligation_body(balance=12.5))
        with pytest.raises(ValueError, match="owner"):
            sdk.put_obligation(new_ref(), obligation_body(owner="me"))

    def test_a_bad_body_is_an_invalid_request_that_quotes_no_value(self, sdk):
        too_long = "19500908327919500908327919500908327"  # an identity number the model refuses
        body = obligation_body(balance=1.5, debtors=[{"country": "SE", "national_id": too_long, "role": "primary"}])
        with pytest.raises(InvalidRequest) as err:
            sdk.put_obligation("LOAN-1", body)
        assert isinstance(err.value, ValueError)  # as pydantic's error was, so `except ValueError` still works
        assert {tuple(e["loc"]) for e in err.value.errors} == {("balance",), ("debtors", 0, "national_id")}
        assert all(set(e) == {"loc", "msg", "type"} for e in err.value.errors)
        assert str(err.value).startswith("invalid ObligationReport: ")
        assert too_long not in str(err.value) and "1.5" not in str(err.value)
        assert err.value.__cause__ is None and err.value.__suppress_context__  # pydantic's quoting error is not shown

    def test_the_register_refuses_what_the_sdk_cannot_check(self, sdk):
        with pytest.raises(ValidationFailed) as err:
            sdk.list_obligations(page_size=5000).__next__()
        assert err.value.errors and err.value.errors[0]["loc"][-1] == "limit"


class TestAuthentication:
    def test_bad_token(self, transport):
        with (RegisterClient(BASE_URL, "rgt_not-a-token", transport=transport) as sdk,
              pytest.raises(Unauthenticated) as err):
            sdk.get_obligation("LOAN-1")
        assert err.value.status == 401 and err.value.code == "unauthenticated"
        assert err.value.title == "Authentication required" and err.value.detail
        assert str(err.value).startswith("Authentication required")

    def test_server_down(self, closed_port):
        down = f"http://127.0.0.1:{closed_port}"
        with (RegisterClient(down, "rgt_x", retry=Retry(attempts=2, backoff=0.01)) as sdk,
              pytest.raises(ConnectError, match=f"cannot reach the register at {down}")):
            sdk.get_obligation("LOAN-1")

    @pytest.mark.parametrize("padding", ["\r", "\n", " ", "\t\r\n"])
    def test_a_token_with_surrounding_whitespace_is_trimmed(self, transport, lender, padding):
        # A trailing \r from a Windows env file, a newline from `$(cat token)`.
        with RegisterClient(BASE_URL, f" {lender.token}{padding}", transport=transport) as sdk:
            assert sdk.list_consents() == []

    @pytest.mark.parametrize("token", ["rgt_abc def", "rgt_abc\rdef", "rgt_abc\x00def", "rgt_abc\x7fdef"])
    def test_a_token_with_whitespace_or_control_characters_is_refused_before_sending(self, token):
        sent: list[httpx.Request] = []
        transport = httpx.MockTransport(lambda request: sent.append(request) or httpx.Response(200, json={"items": []}))
        with pytest.raises(InvalidRequest, match="^the token contains whitespace or control characters$") as err:
            RegisterClient(BASE_URL, token, transport=transport).list_consents()
        assert sent == [] and "abc" not in str(err.value)

    def test_a_transport_error_never_quotes_the_token(self, lender):
        # What h11 says of a header it refuses, and what a proxy that closes on a bad header may say.
        def handler(request: httpx.Request) -> httpx.Response:
            raise httpx.LocalProtocolError(f"Illegal header value {request.headers['authorization'].encode()!r}")

        with (RegisterClient(BASE_URL, lender.token, transport=httpx.MockTransport(handler), retry=NO_RETRY) as sdk,
              pytest.raises(TransportError) as err):
            sdk.list_consents()
        assert lender.token not in str(err.value) and "Bearer [token]" in str(err.value)
        assert lender.token.removeprefix("rgt_")[:8] not in str(err.value)


class TestConfiguration:
    @pytest.mark.parametrize("suffix", ["/v1", "/v1/"])
    def test_a_base_url_with_v1_is_refused_with_a_hint(self, suffix):
        with pytest.raises(InvalidRequest, match=f"base URL, without /v1: '{BASE_URL}'"):
            RegisterClient(BASE_URL + suffix, "rgt_x")

    def test_a_base_url_with_a_slash_is_fine(self, transport, lender):
        with RegisterClient(BASE_URL + "/", lender.token, transport=transport) as sdk:
            assert sdk.list_consents() == []


class TestReports:
    def test_file_with_bad_lines(self, sdk, tmp_path, person):
        good, stale_ref = report_line(person), new_ref()
        sdk.put_obligation(stale_ref, obligation_body(as_of="2026-11-10T00:00:00Z"))
        path = tmp_path / "daily.ndjson"
        path.write_text(ndjson([
            good,
            "{not json",
            report_line(debtors=[{"country": "SE", "national_id": invalid_national_id(person.nid), "role": "primary"}]),
            report_line(external_ref=stale_ref, as_of="2026-11-09T00:00:00Z"),
        ]))
        seen: list[UploadProgress] = []
        sent = sdk.upload_report(path, idempotency_key=new_ref(), on_progress=seen.append)
        assert isinstance(sent, Report) and sent.status == "received" and sent.format == "ndjson"
        assert seen[-1].bytes_sent == seen[-1].total_bytes == path.stat().st_size and seen[-1].lines_sent == 4
        statuses: list[str] = []
        done = sdk.wait_for_report(sent.id, poll_interval=0.01, on_progress=lambda r: statuses.append(r.status))
        assert statuses[-1] == "done" and (done.accepted, done.rejected) == (1, 3)
        assert [(e.line, e.code) for e in sdk.report_errors(done.id)] == [
            (2, "validation_error"), (3, "invalid_national_id"), (4, "stale_update")]
        assert sdk.get_obligation(good["external_ref"]).balance == good["balance"]

    def test_csv_by_suffix(self, sdk, tmp_path, person):
        ref = new_ref()
        path = tmp_path / "daily.csv"
        path.write_text("external_ref,kind,currency,balance,credit_limit,status,debtors,registration_consent_reference,"
                        "registration_consent_given_at,registration_consent_method,as_of\n"
                        f"{ref},credit_card,SEK,1500,50000,current,SE:{person.nid}:primary,A-1,2026-01-01T00:00:00Z,"
                        "e_signature,2026-11-01T00:00:00Z\n")
        sent = sdk.upload_report(str(path))
        assert sent.format == "csv"
        assert sdk.wait_for_report(sent.id).accepted == 1 and sdk.get_obligation(ref).credit_limit == 50000

    def test_iterator_of_lines_with_progress(self, sdk):
        lines = [report_line() for _ in range(300)]
        seen: list[UploadProgress] = []
        sent = sdk.upload_report(iter(lines), on_progress=seen.append)
        assert seen[-1].lines_sent == 300 and seen[-1].total_bytes is None and len(seen) > 1  # sent in pieces
        assert sdk.wait_for_report(sent.id).accepted == 300

    def test_binary_file_object(self, sdk):
        sent = sdk.upload_report(io.BytesIO(ndjson([report_line()]).encode()))
        assert sdk.wait_for_report(sent.id).accepted == 1

    def test_same_key_same_file_is_the_first_report(self, sdk, tmp_path):
        path = tmp_path / "daily.ndjson"
        path.write_text(ndjson([report_line()]))
        key = new_ref()
        first, again = sdk.upload_report(path, idempotency_key=key), sdk.upload_report(path, idempotency_key=key)
        assert again.id == first.id
        assert not first.repeated and again.repeated  # the register answered 202, then 200
        assert not sdk.get_report(first.id).repeated

    @pytest.mark.parametrize("name", ["daily", "daily.txt", "export.CSV.gz.part"])
    def test_csv_without_a_csv_suffix_is_read_as_csv(self, sdk, tmp_path, person, name):
        ref = new_ref()
        path = tmp_path / name
        path.write_bytes(CSV_HEADER.encode() + (
            f"{ref},credit_card,SEK,1500,50000,current,SE:{person.nid}:primary,A-1,2026-01-01T00:00:00Z,"
            "e_signature,2026-11-01T00:00:00Z\n").encode())
        sent = sdk.upload_report(path)
        assert sent.format == "csv" and sdk.wait_for_report(sent.id).accepted == 1

    def test_ndjson_without_a_suffix_is_read_as_ndjson(self, sdk, tmp_path):
        path = tmp_path / "daily"
        path.write_text(ndjson([report_line()]))
        sent = sdk.upload_report(path)
        assert sent.format == "ndjson" and sdk.wait_for_report(sent.id).accepted == 1

    def test_csv_bytes_are_read_as_csv(self, sdk, person):
        body = CSV_HEADER + (f"{new_ref()},credit_card,SEK,1500,50000,current,SE:{person.nid}:primary,A-1,"
                             "2026-01-01T00:00:00Z,e_signature,2026-11-01T00:00:00Z\n")
        sent = sdk.upload_report(body.encode())
        assert sent.format == "csv" and sdk.wait_for_report(sent.id).accepted == 1

    def test_a_file_that_is_neither_is_refused_before_sending(self, sdk, tmp_path):
        path = tmp_path / "daily.dat"
        path.write_text("LOAN-1;instalment_loan;SEK\n")
        with pytest.raises(InvalidRequest, match="daily.dat: cannot tell whether the report is CSV or NDJSON"):
            sdk.upload_report(path)


class TestConsentAndExposure:
    def test_exposure_with_the_persons_consent(self, sdk, transport, lender, person):
        sdk.put_obligation(new_ref(), obligation_body(debtors=[debtor(person)], balance=700))
        with RegisterClient(BASE_URL, consumer_token(person), transport=transport) as me:
            consent = me.grant_consent({"institution_id": lender.id, "purpose": "credit_application",
                                        "expires_at": datetime.now(UTC) + timedelta(days=30)})
        answer = sdk.query_exposure(country="SE", national_id=person.nid, purpose="credit_application",
                                    consent_id=consent.id)
        assert isinstance(answer, Exposure) and answer.totals["SEK"].balance == 700
        assert answer.receipt.event_id and answer.subject.national_id_masked.endswith("****")
        assert [c.id for c in sdk.list_consents()] == [consent.id]

    def test_a_collection_link_the_lender_confirms(self, sdk, transport, client, admin_headers, lender, person):
        collector = make_institution(client, admin_headers, "collector")
        loan_ref, claim_ref = new_ref(), new_ref()
        with RegisterClient(BASE_URL, collector.token, transport=transport) as coll:
            with pytest.raises(Forbidden) as err:  # a lender may not say its claim collects anything
                sdk.put_obligation(new_ref(), obligation_body(
                    debtors=[debtor(person)], kind="collection_claim", status="in_collection",
                    collects={"institution_id": lender.id, "external_ref": loan_ref}))
            assert err.value.code == "collector_only"
            claim = coll.put_obligation(claim_ref, obligation_body(
                debtors=[debtor(person)], kind="collection_claim", status="in_collection", balance=900,
                collects={"institution_id": lender.id, "external_ref": loan_ref}))
            assert claim.collection_link == "unconfirmed"
            loan = sdk.put_obligation(loan_ref, ObligationReport(**{
                **obligation_body(debtors=[debtor(person)], balance=700, status="in_collection"),
                "handed_to": HandedTo(institution_id=collector.id, external_ref=claim_ref)}))
            assert isinstance(loan.handed_to, HandedToRef) and loan.handed_to.external_ref == claim_ref
            assert coll.get_obligation(claim_ref).collection_link == "confirmed"
            assert coll.obligation_history(claim_ref).collection_link == "confirmed"
        with RegisterClient(BASE_URL, consumer_token(person), transport=transport) as me:
            consent = me.grant_consent({"institution_id": lender.id, "purpose": "credit_application",
                                        "expires_at": datetime.now(UTC) + timedelta(days=30)})
        answer = sdk.query_exposure(country="SE", national_id=person.nid, purpose="credit_application",
                                    consent_id=consent.id)
        assert answer.totals["SEK"].balance == 900
        assert {ln.kind: ln.collection_link for ln in answer.obligations} == {"collection_claim": "confirmed",
                                                                              "instalment_loan": None}

    def test_no_consent(self, sdk, person):
        with pytest.raises(ConsentMissing) as err:
            sdk.query_exposure(country="SE", national_id=person.nid, purpose="credit_application",
                               consent_id=NO_CONSENT)
        assert err.value.status == 403 and err.value.code == "consent_missing"
        assert err.value.detail == "no consent with that id"
        assert err.value.receipt and err.value.receipt["event_id"]  # the refusal is logged, provably

    def test_a_consent_id_that_is_not_a_uuid_is_refused_before_sending(self, sdk, person):
        with pytest.raises(InvalidRequest, match="consent_id: Value error, must be a UUID") as err:
            sdk.query_exposure(country="SE", national_id=person.nid, purpose="credit_application", consent_id="abc")
        assert [e["loc"] for e in err.value.errors] == [["consent_id"]] and person.nid not in str(err.value)

    def test_an_upper_case_consent_id_is_sent_as_the_register_writes_it(self, sdk, person):
        with pytest.raises(ConsentMissing):  # not a 422: the id was sent in lower case
            sdk.query_exposure(country="SE", national_id=person.nid, purpose="credit_application",
                               consent_id=NO_CONSENT.upper().replace("0", "A"))

    def test_consent_for_another_purpose(self, sdk, transport, lender, person):
        with RegisterClient(BASE_URL, consumer_token(person), transport=transport) as me:
            consent = me.grant_consent({"institution_id": lender.id, "purpose": "debt_restructuring",
                                        "expires_at": in_days(10)})
        with pytest.raises(ConsentMismatch):
            sdk.query_exposure(country="SE", national_id=person.nid, purpose="credit_application",
                               consent_id=consent.id)

    def test_attested_then_revoked_by_the_person(self, sdk, transport, person):
        consent = sdk.attest_consent({
            "country": "SE", "national_id": person.nid, "purpose": "credit_application", "expires_at": in_days(28),
            "evidence": {"method": "signed_application", "reference": "A-1", "signed_at": in_days(-1),
                         "document_sha256": "ab" * 32}})
        assert consent.attested and consent.subject.national_id_masked.endswith("****")
        with RegisterClient(BASE_URL, consumer_token(person), transport=transport) as me:
            assert me.revoke_consent(consent.id).revoked_at is not None
            assert me.revoke_consent(consent.id).revoked_at is not None  # harmless twice
            assert any(e.action == "consent:attest" for e in me.my_access_log())
        with pytest.raises(ConsentRevoked):
            sdk.query_exposure(country="SE", national_id=person.nid, purpose="credit_application",
                               consent_id=consent.id)

    def test_a_reference_names_one_consent(self, sdk, client, data_dir, person):
        body = {"country": "SE", "national_id": person.nid, "purpose": "credit_application", "expires_at": in_days(28),
                "evidence": {"method": "signed_application", "reference": "APP-SDK-1", "signed_at": in_days(-1),
                             "document_sha256": "cd" * 32}}
        first = sdk.attest_consent(body)
        assert sdk.attest_consent({**body, "expires_at": in_days(20)}).id == first.id  # a repeat: the first
        other = make_person(client, data_dir)
        with pytest.raises(ReferenceReused) as err:
            sdk.attest_consent({**body, "national_id": other.nid})
        assert isinstance(err.value, Conflict) and err.value.code == "reference_reused" and other.nid not in str(err.value)

    def test_invalid_national_id(self, sdk, person):
        with pytest.raises(InvalidNationalId) as err:
            sdk.query_exposure(country="SE", national_id=invalid_national_id(person.nid),
                               purpose="credit_application", consent_id=NO_CONSENT)
        assert err.value.debtor_index is None and "not a valid SE identity number" in err.value.detail


class TestInstitutions:
    def test_a_lender_with_contact_details_the_person_sees(self, transport, admin_headers, person):
        admin = admin_headers["Authorization"].removeprefix("Bearer ")
        with RegisterClient(BASE_URL, admin, transport=transport) as operator:
            created = operator.create_institution(name="Kontakt Bank", role="lender", country="SE",
                                                  contact={"email": "kundtjanst@kontakt.example", "phone": "+46 8 123"})
        with RegisterClient(BASE_URL, created.token, transport=transport) as lender:
            lender.put_obligation(new_ref(), obligation_body(debtors=[debtor(person)]))
        with RegisterClient(BASE_URL, consumer_token(person), transport=transport) as me:
            [line] = me.my_obligations().obligations
        assert (line.creditor.name, line.creditor.email, line.creditor.phone) == (
            "Kontakt Bank", "kundtjanst@kontakt.example", "+46 8 123")

    def test_a_contact_that_is_not_an_address_is_refused_before_sending(self, transport, admin_headers):
        with (RegisterClient(BASE_URL, "rgt_unused", transport=transport) as operator,
              pytest.raises(InvalidRequest, match="contact.email")):
            operator.create_institution(name="X", role="lender", contact={"email": "not an address"})


class TestDisputes:
    """A creditor's side of disputes: list them, read one, answer in time; the person's side goes through
    the app directly (`open_dispute`)."""

    def _disputed_line(self, sdk, client, person, **report) -> tuple[str, str, dict]:
        ref = new_ref()
        line_id = sdk.put_obligation(ref, obligation_body(debtors=[debtor(person)], **report)).id
        return ref, line_id, open_dispute(client, person, line_id)

    def test_list_answer_and_a_second_answer_is_a_conflict(self, sdk, client, person):
        ref, line_id, opened = self._disputed_line(sdk, client, person)
        listed = sdk.disputes(state="open")
        assert [d.id for d in listed] == [opened["id"]] and isinstance(listed[0], Dispute)
        d = listed[0]
        assert (d.obligation, d.external_ref, d.reason, d.text, d.state) == (
            line_id, ref, "repaid", DISPUTE_TEXT, "open")
        assert d.awaiting_answer and d.deadline - d.opened_at == timedelta(days=30) and d.closed_at is None
        assert sdk.dispute(d.id) == d

        answered = sdk.answer_dispute(d.id, outcome="upheld", explanation="Our ledger shows no November payment.")
        assert answered.state == "upheld" and answered.closed_by == "creditor" and not answered.awaiting_answer
        assert answered.explanation == "Our ledger shows no November payment."
        assert sdk.disputes(state="open") == [] and [x.id for x in sdk.disputes(state="upheld")] == [d.id]
        with pytest.raises(DisputeClosed) as err:
            sdk.answer_dispute(d.id, outcome="corrected", explanation="Fixed after all.")
        assert isinstance(err.value, Conflict) and err.value.status == 409 and err.value.code == "dispute_closed"

    def test_another_lender_gets_not_found_and_does_not_list_it(self, sdk, client, admin_headers, transport, person):
        _, _, opened = self._disputed_line(sdk, client, person)
        other = make_institution(client, admin_headers, "lender")
        with RegisterClient(BASE_URL, other.token, transport=transport) as theirs:
            assert theirs.disputes() == []
            with pytest.raises(NotFound):
                theirs.dispute(opened["id"])
            with pytest.raises(NotFound):
                theirs.answer_dispute(opened["id"], outcome="corrected", explanation="Not ours to answer.")
        assert sdk.dispute(opened["id"]).state == "open"  # untouched

    def test_overdue_after_the_deadline_and_still_answerable(self, sdk, client, person, clock):
        _, _, opened = self._disputed_line(sdk, client, person)
        assert sdk.disputes(state="overdue") == []
        clock.now += timedelta(days=30, seconds=1)
        [late] = sdk.disputes(state="overdue")
        assert late.id == opened["id"] and late.state == "overdue" and late.awaiting_answer
        assert [d.id for d in sdk.disputes(state="open")] == [late.id]  # open includes overdue
        assert sdk.answer_dispute(late.id, outcome="corrected", explanation="Fixed, late.").state == "corrected"

    def test_a_corrected_report_naming_the_dispute_closes_it(self, sdk, client, person):
        ref, _, opened = self._disputed_line(sdk, client, person, balance=500_000)
        sdk.put_obligation(ref, obligation_body(debtors=[debtor(person)], balance=100_000,
                                                as_of="2026-11-22T00:00:00Z", corrects_dispute=opened["id"]))
        closed = sdk.dispute(opened["id"])
        assert (closed.state, closed.closed_by) == ("corrected", "report")

    def test_a_batch_line_naming_the_dispute_closes_it(self, sdk, client, person):
        ref, _, opened = self._disputed_line(sdk, client, person, balance=500_000)
        line = ReportLine.model_validate({**obligation_body(debtors=[debtor(person)], balance=100_000,
                                                            as_of="2026-11-22T00:00:00Z"),
                                          "external_ref": ref, "corrects_dispute": opened["id"]})
        done = sdk.wait_for_report(sdk.upload_report([line]).id, poll_interval=0.01)
        assert (done.accepted, done.rejected) == (1, 0)
        assert sdk.dispute(opened["id"]).state == "corrected" and sdk.get_obligation(ref).balance == 100_000

    def test_naming_a_dispute_that_is_not_open_on_the_line(self, sdk, client, person):
        _, _, opened = self._disputed_line(sdk, client, person)
        other_ref = new_ref()
        sdk.put_obligation(other_ref, obligation_body(debtors=[debtor(person)]))
        with pytest.raises(DisputeNotFound) as err:
            sdk.put_obligation(other_ref, obligation_body(debtors=[debtor(person)], balance=1,
                                                          as_of="2026-11-22T00:00:00Z", corrects_dispute=opened["id"]))
        assert isinstance(err.value, InvalidInput) and not isinstance(err.value, NotFound)
        assert err.value.status == 422 and err.value.code == "dispute_not_found"
        assert sdk.get_obligation(other_ref).version == 1 and sdk.dispute(opened["id"]).state == "open"

    def test_bad_input_is_refused_before_sending(self, sdk):
        with pytest.raises(InvalidRequest, match="outcome"):
            sdk.answer_dispute(NO_CONSENT, outcome="rejected", explanation="No.")
        with pytest.raises(InvalidRequest, match="explanation"):
            sdk.answer_dispute(NO_CONSENT, outcome="upheld", explanation="")
        with pytest.raises(InvalidRequest, match="corrects_dispute: Value error, must be a UUID"):
            sdk.put_obligation(new_ref(), obligation_body(corrects_dispute="DISPUTE-1"))

    def test_an_unknown_state_is_refused_by_the_register(self, sdk):
        with pytest.raises(ValidationFailed):
            sdk.disputes(state="late")

    def test_an_answer_is_never_retried(self, sdk, client, transport, lender, person):
        from tests.clients.test_retry import Flaky

        _, _, opened = self._disputed_line(sdk, client, person)
        flaky = Flaky(transport, ["lost"])  # the register takes the answer; the reply is lost
        with (RegisterClient(BASE_URL, lender.token, transport=flaky, retry=FAST) as lossy,
              pytest.raises(ServiceUnavailable)):
            lossy.answer_dispute(opened["id"], outcome="upheld", explanation="Correct as reported.")
        assert [(m, p) for _, m, p, _ in flaky.sent] == [("POST", f"/v1/disputes/{opened['id']}/answer")]
        assert sdk.dispute(opened["id"]).state == "upheld"  # how to tell that it was taken


class TestCreditBanAndDisputedLines:
    def _consent(self, transport, lender, person) -> str:
        with RegisterClient(BASE_URL, consumer_token(person), transport=transport) as me:
            return me.grant_consent({"institution_id": lender.id, "purpose": "credit_application",
                                     "expires_at": in_days(30)}).id

    def test_exposure_carries_the_ban_and_the_disputed_line(self, sdk, client, transport, lender, person):
        plain_line = sdk.put_obligation(new_ref(), obligation_body(debtors=[debtor(person)])).id
        disputed_line = sdk.put_obligation(new_ref(), obligation_body(debtors=[debtor(person)])).id
        consent = self._consent(transport, lender, person)
        before = sdk.query_exposure(country="SE", national_id=person.nid, purpose="credit_application",
                                    consent_id=consent)
        assert before.credit_ban == CreditBan(active=False) and before.credit_ban.since is None

        open_dispute(client, person, disputed_line)
        set_credit_ban(client, person)
        after = sdk.query_exposure(country="SE", national_id=person.nid, purpose="credit_application",
                                   consent_id=consent)
        assert isinstance(after.credit_ban, CreditBan) and after.credit_ban.active
        assert after.credit_ban.reason == "identity_theft" and after.credit_ban.since is not None
        flags = {line.id: (line.disputed, line.statement) for line in after.obligations}
        assert flags == {plain_line: (False, None), disputed_line: (True, None)}

    def test_an_upheld_line_carries_the_persons_statement(self, sdk, client, transport, lender, person):
        line_id = sdk.put_obligation(new_ref(), obligation_body(debtors=[debtor(person)])).id
        opened = open_dispute(client, person, line_id)
        sdk.answer_dispute(opened["id"], outcome="upheld", explanation="The balance is right.")
        statement = "I paid this in March; my bank statement shows it."
        r = client.put(f"/v1/me/disputes/{opened['id']}/statement", json={"statement": statement},
                       headers=person.headers)
        assert r.status_code == 200, r.text
        answer = sdk.query_exposure(country="SE", national_id=person.nid, purpose="credit_application",
                                    consent_id=self._consent(transport, lender, person))
        [line] = answer.obligations
        assert (line.disputed, line.statement) == (False, statement)

    def test_the_persons_own_view(self, sdk, client, transport, person):
        line_id = sdk.put_obligation(new_ref(), obligation_body(debtors=[debtor(person)])).id
        opened = open_dispute(client, person, line_id)
        set_credit_ban(client, person, "self_control")
        with RegisterClient(BASE_URL, consumer_token(person), transport=transport) as me:
            mine = me.my_obligations()
        assert isinstance(mine.credit_ban, CreditBan) and mine.credit_ban.reason == "self_control"
        [line] = mine.obligations
        assert isinstance(line, MyLine) and line.disputed and line.dispute.id == opened["id"]
        assert line.dispute.state == "open" and line.creditor.id

    def test_the_public_statistics_need_no_sign_in(self, transport):
        with RegisterClient(BASE_URL, "rgt_unused", transport=transport) as anyone:
            stats = anyone.statistics()
        assert stats.min_persons == 10 and len(stats.lookups) == 12
        assert all(c.value is None for r in stats.obligations for c in (r.persons, r.lines) if c.suppressed)

    def test_what_the_register_keeps_about_me(self, sdk, transport, person):
        ref = new_ref()
        sdk.put_obligation(ref, obligation_body(debtors=[debtor(person)]))
        sdk.put_obligation(ref, obligation_body(debtors=[debtor(person)], status="closed", balance=0,
                                                as_of="2026-11-20T00:00:00Z"))
        with RegisterClient(BASE_URL, consumer_token(person), transport=transport) as me:
            kept = me.my_retention()
        [line] = kept.obligations
        assert (line.reference, line.rule) == (ref, "ended")
        assert line.kept_until - line.period_started_at == timedelta(days=98)
        assert {r.rule: r.days for r in kept.rules}["access_event"] == 1825

    def test_notices_turned_on_and_off(self, transport, person):
        from register_client import NotificationsSet

        with RegisterClient(BASE_URL, consumer_token(person), transport=transport) as me:
            assert me.my_notifications().enabled is False
            state = me.set_my_notifications(NotificationsSet(email="me@example.org", digest="daily"))
            assert (state.email, state.confirmed, state.digest, state.waiting) == ("me@example.org", False, "daily", 1)
            assert me.my_retention().notifications.email == "me@example.org"
            assert me.delete_my_notifications().email is None
            assert me.my_notifications().enabled is False


class TestRegulator:
    def test_audit_events_and_the_log(self, sdk, client, admin_headers, transport, person):
        sdk.put_obligation(new_ref(), obligation_body(debtors=[debtor(person)]))
        regulator = make_institution(client, admin_headers, "regulator")
        with RegisterClient(BASE_URL, regulator.token, transport=transport) as reg:
            events = list(reg.search_audit_events({"country": "SE", "national_id": person.nid, "limit": 1}))
            assert [e.action for e in events] == ["obligation:created"] and isinstance(events[0], AccessEvent)
            checkpoint = reg.make_checkpoint()
            assert checkpoint.size >= 1 and reg.checkpoint().size == checkpoint.size
            assert reg.log_key().algorithm == "Ed25519"
            proof = reg.inclusion_proof(tree_size=checkpoint.size, leaf_index=0)
            assert proof.leaf_index == 0 and reg.leaves(start=0, end=1).leaves


    def test_an_institutions_lookups(self, sdk, client, admin_headers, transport, person):
        consent = sdk.attest_consent({
            "country": "SE", "national_id": person.nid, "purpose": "credit_application", "expires_at": in_days(28),
            "evidence": {"method": "signed_application", "reference": "APP-SDK-2", "signed_at": in_days(-1),
                         "document_sha256": "ef" * 32}})
        sdk.query_exposure(country="SE", national_id=person.nid, purpose="credit_application", consent_id=consent.id)
        lender_id = consent.institution_id
        regulator = make_institution(client, admin_headers, "regulator")
        today = datetime.now(UTC).date()
        with RegisterClient(BASE_URL, regulator.token, transport=transport) as reg:
            seen = reg.institution_lookups(lender_id, first_day=today - timedelta(days=1), last_day=today)
            assert isinstance(seen, InstitutionLookups) and seen.institution.id == lender_id
            assert (seen.lookups.attested.granted, seen.lookups.attested.pending) == (1, 1)
            assert seen.attestations.recorded == 1 and seen.first_day == today - timedelta(days=1)
            with pytest.raises(NotFound):
                reg.institution_lookups(NO_CONSENT)
        with pytest.raises(Forbidden):
            sdk.institution_lookups(lender_id)


@pytest.mark.anyio
class TestAsyncClient:
    async def test_report_and_read(self, app, lender, person):
        from tests.clients.conftest import async_client

        async with async_client(app, lender.token) as sdk:
            ref = new_ref()
            created = await sdk.put_obligation(ref, obligation_body(debtors=[debtor(person)]))
            assert created.version == 1 and (await sdk.get_obligation(ref)).external_ref == ref
            assert ref in [ob.external_ref async for ob in sdk.list_obligations(page_size=1)]
            page = await sdk.obligations_page(limit=1)
            assert [ob.external_ref for ob in page.items] == [ref] and page.next_cursor is None

    async def test_upload_from_an_async_iterator(self, app, lender, person):
        from tests.clients.conftest import async_client

        async def lines():
            yield report_line(person)
            yield report_line(debtors=[{"country": "SE", "national_id": invalid_national_id(person.nid),
                                        "role": "primary"}])

        seen: list[UploadProgress] = []
        async with async_client(app, lender.token) as sdk:
            sent = await sdk.upload_report(lines(), on_progress=seen.append)
            done = await sdk.wait_for_report(sent.id, poll_interval=0.01)
            assert (done.accepted, done.rejected) == (1, 1) and seen[-1].lines_sent == 2
            assert [e.code async for e in sdk.report_errors(done.id)] == ["invalid_national_id"]

    async def test_errors_are_the_same_classes(self, app, lender, person):
        from tests.clients.conftest import async_client

        async with async_client(app, "rgt_wrong") as anonymous:
            with pytest.raises(Unauthenticated):
                await anonymous.get_obligation("LOAN-1")
        async with async_client(app, lender.token) as sdk:
            with pytest.raises(ConsentMissing):
                await sdk.query_exposure(country="SE", national_id=person.nid, purpose="credit_application",
                                         consent_id=NO_CONSENT)
            ref = new_ref()
            await sdk.put_obligation(ref, obligation_body(as_of="2026-11-10T00:00:00Z"))
            with pytest.raises(StaleUpdate):
                await sdk.put_obligation(ref, obligation_body(as_of="2026-11-01T00:00:00Z"))

    async def test_an_institutions_lookups(self, app, client, admin_headers, lender):
        from tests.clients.conftest import async_client

        regulator = make_institution(client, admin_headers, "regulator")
        async with async_client(app, regulator.token) as reg:
            seen = await reg.institution_lookups(lender.id)
            assert seen.institution.name == lender.name and seen.lookups.no_consent.refused == 0

    async def test_disputes(self, app, client, lender, person):
        from tests.clients.conftest import async_client

        async with async_client(app, lender.token) as sdk:
            line_id = (await sdk.put_obligation(new_ref(), obligation_body(debtors=[debtor(person)]))).id
            opened = open_dispute(client, person, line_id)
            assert [d.id for d in await sdk.disputes(state="open")] == [opened["id"]]
            assert (await sdk.dispute(opened["id"])).text == DISPUTE_TEXT
            answered = await sdk.answer_dispute(opened["id"], outcome="corrected", explanation="Fixed.")
            assert answered.state == "corrected"
            with pytest.raises(DisputeClosed):
                await sdk.answer_dispute(opened["id"], outcome="upheld", explanation="Right after all.")

    async def test_server_down(self, closed_port):
        from register_client import AsyncRegisterClient

        async with AsyncRegisterClient(f"http://127.0.0.1:{closed_port}", "rgt_x",
                                       retry=Retry(attempts=2, backoff=0.01)) as sdk:
            with pytest.raises(ConnectError):
                await sdk.get_report("x")
