"""Batch reports over HTTP, processed by the real worker, on both databases."""

from __future__ import annotations

import functools
import json
import tracemalloc
import uuid

import pytest
from sqlalchemy import func, select, update

from register.crypto.fields import DecryptionError
from register.services.reports import ReportWorker
from register.storage.models import AccessEvent, Obligation, ReportChunk
from tests.factories import make_institution, national_id, new_ref, obligation_body


def line(**overrides) -> str:
    return json.dumps({**obligation_body(), "external_ref": new_ref(), **overrides})


def upload(client, inst, text: str, **params):
    headers = {**inst.headers, "Content-Type": "application/x-ndjson"}
    if "key" in params:
        headers["Idempotency-Key"] = params.pop("key")
    return client.post("/v1/reports", content=text.encode(), params=params, headers=headers)


def process(app) -> None:
    state = app.state.register
    ReportWorker(state.sessions, state.cipher, allow_test=False).run_pending()


def errors_of(client, inst, report_id) -> list[dict]:
    r = client.get(f"/v1/reports/{report_id}/errors", headers=inst.headers)
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/x-ndjson")
    return [json.loads(x) for x in r.text.splitlines()]


class TestMixedFile:
    def test_bad_lines_are_reported_by_number_and_good_ones_applied(self, app, client, lender):
        stale_ref = new_ref()
        client.put(f"/v1/obligations/{stale_ref}", headers=lender.headers,
                   json=obligation_body(as_of="2026-11-10T00:00:00Z"))
        bad_id = national_id()
        bad_id = bad_id[:-1] + str((int(bad_id[-1]) + 1) % 10)
        good_refs = [new_ref() for _ in range(4)]
        lines = [
            line(external_ref=good_refs[0]),                                   # 1 ok
            "{not json",                                                       # 2 malformed
            line(external_ref=good_refs[1]),                                   # 3 ok
            line(debtors=[{"country": "SE", "national_id": bad_id, "role": "primary"}]),  # 4 invalid id
            "",                                                                # 5 blank: skipped
            line(balance=True),                                                # 6 boolean is not a number
            line(external_ref=stale_ref, as_of="2026-11-09T00:00:00Z"),        # 7 stale
            line(external_ref=good_refs[2], owner="me"),                       # 8 unknown field
            line(external_ref=good_refs[3]),                                   # 9 ok
            line(external_ref=good_refs[3], as_of="2026-10-01T00:00:00Z"),     # 10 same ref, older: stale
            line(kind="credit_card"),                                          # 11 no limit
        ]
        r = upload(client, lender, "\n".join(lines) + "\n")
        assert r.status_code == 202, r.text
        rid = r.json()["id"]
        assert r.json()["status"] == "received" and r.headers["location"] == f"/v1/reports/{rid}"
        process(app)
        doc = client.get(f"/v1/reports/{rid}", headers=lender.headers).json()
        assert doc["status"] == "done" and doc["progress"] == 1.0
        assert (doc["lines_read"], doc["accepted"], doc["rejected"]) == (11, 3, 7)
        errs = errors_of(client, lender, rid)
        assert [(e["line"], e["code"]) for e in errs] == [
            (2, "validation_error"), (4, "invalid_national_id"), (6, "validation_error"), (7, "stale_update"),
            (8, "validation_error"), (10, "stale_update"), (11, "invalid_obligation")]
        assert bad_id not in json.dumps(errs)
        for ref in (good_refs[0], good_refs[1], good_refs[3]):
            assert client.get(f"/v1/obligations/{ref}", headers=lender.headers).status_code == 200
        assert client.get(f"/v1/obligations/{good_refs[2]}", headers=lender.headers).status_code == 404
        versions = client.get(f"/v1/obligations/{good_refs[0]}/versions", headers=lender.headers).json()["versions"]
        assert versions[0]["request_id"] == f"report:{rid}"

    def test_csv(self, app, client, lender):
        nid = national_id()
        ref = new_ref()
        header = ("external_ref,kind,currency,balance,credit_limit,status,debtors,registration_consent_reference,"
                  "registration_consent_given_at,registration_consent_method,as_of")
        rows = [header,
                f"{ref},credit_card,SEK,1500,50000,current,SE:{nid}:primary,A-1,2026-01-01T00:00:00Z,e_signature,"
                "2026-11-01T00:00:00Z",
                f"{new_ref()},credit_card,SEK,12.5,50000,current,SE:{nid}:primary,A-1,2026-01-01T00:00:00Z,"
                "e_signature,2026-11-01T00:00:00Z"]
        r = client.post("/v1/reports", content=("\n".join(rows) + "\n").encode(),
                        headers={**lender.headers, "Content-Type": "text/csv"})
        assert r.status_code == 202 and r.json()["format"] == "csv"
        process(app)
        doc = client.get(f"/v1/reports/{r.json()['id']}", headers=lender.headers).json()
        assert (doc["accepted"], doc["rejected"]) == (1, 1)
        assert errors_of(client, lender, r.json()["id"])[0]["line"] == 3  # the header is line 1
        got = client.get(f"/v1/obligations/{ref}", headers=lender.headers).json()
        assert got["credit_limit"] == 50000 and got["debtors"][0]["national_id_masked"].endswith("****")

    def test_csv_from_a_spreadsheet_with_a_byte_order_mark(self, app, client, lender):
        # Excel writes "CSV UTF-8" with a BOM before the header; it is not part of the first column's name.
        ref = new_ref()
        header = ("external_ref,kind,currency,balance,credit_limit,status,debtors,registration_consent_reference,"
                  "registration_consent_given_at,registration_consent_method,as_of")
        row = (f"{ref},credit_card,SEK,1500,50000,current,SE:{national_id()}:primary,A-1,2026-01-01T00:00:00Z,"
               "e_signature,2026-11-01T00:00:00Z")
        r = client.post("/v1/reports", content=("\ufeff" + header + "\r\n" + row + "\r\n").encode(),
                        headers={**lender.headers, "Content-Type": "text/csv"})
        process(app)
        doc = client.get(f"/v1/reports/{r.json()['id']}", headers=lender.headers).json()
        assert (doc["accepted"], doc["rejected"]) == (1, 0), errors_of(client, lender, r.json()["id"])
        assert client.get(f"/v1/obligations/{ref}", headers=lender.headers).status_code == 200


CSV_HEADER = ("external_ref,kind,currency,balance,credit_limit,status,debtors,registration_consent_reference,"
              "registration_consent_given_at,registration_consent_method,as_of")


def upload_csv(client, inst, raw: bytes):
    return client.post("/v1/reports", content=raw, headers={**inst.headers, "Content-Type": "text/csv"})


class TestLineErrorDetails:
    """Every way a batch line is refused, each with a detail that reads as a sentence: it never starts
    with punctuation (a whole-line problem was `: Input should be an object`)."""

    def test_every_producer_of_a_line_error_writes_a_readable_detail(self, app, client, lender):
        nid, stale_ref = national_id(), new_ref()
        client.put(f"/v1/obligations/{stale_ref}", headers=lender.headers,
                   json=obligation_body(as_of="2026-11-10T00:00:00Z"))
        bad_id = nid[:-1] + str((int(nid[-1]) + 1) % 10)
        person = {"country": "SE", "national_id": nid, "role": "primary"}
        ndjson = [
            "not json",                                                               # 1
            "[]",                                                                     # 2 not an object
            '{"external_ref": "X-1"}',                                                # 3 fields missing
            line(original_creditor="y" * 70_000),                                     # 4 too long
            line(debtors=[{**person, "national_id": bad_id}]),                        # 5
            line(debtors=[person, {**person, "role": "co_debtor"}]),                  # 6 the same person twice
            line(kind="credit_card"),                                                 # 7 no credit limit
            line(external_ref=stale_ref, as_of="2026-11-09T00:00:00Z"),               # 8 older
            line(corrects_dispute=str(uuid.uuid4())),                                 # 9 no such dispute
        ]
        cells = f"credit_card,SEK,1500,50000,current,SE:{nid}:primary,A-1,2026-01-01T00:00:00Z,e_signature,"
        csv_rows = [CSV_HEADER.encode(),
                    f"{new_ref()},{cells}2026-11-01T00:00:00Z".encode()[:-5] + b"\xff\xfe",  # 2 not UTF-8
                    f"{new_ref()},credit_card,SEK".encode(),                                  # 3 too few cells
                    f"{new_ref()},{cells}2026-11-01T00:00:00Z".replace(",1500,", ",abc,").encode()]  # 4
        reports = [upload(client, lender, "\n".join(ndjson) + "\n"),
                   upload_csv(client, lender, b"\n".join(csv_rows) + b"\n"),
                   upload_csv(client, lender, b"external_ref,colour\nA-1,red\n")]  # unknown column, then its row
        assert all(r.status_code == 202 for r in reports), [r.text for r in reports]
        process(app)
        errors = [e for r in reports for e in errors_of(client, lender, r.json()["id"])]
        assert {e["code"] for e in errors} == {
            "validation_error", "line_too_long", "invalid_national_id", "duplicate_debtor", "invalid_obligation",
            "stale_update", "dispute_not_found", "malformed_line", "unknown_column", "invalid_header"}
        assert len(errors) == 9 + 3 + 2
        unreadable = [e for e in errors if not e["detail"][:1].isalnum()]
        assert unreadable == []
        details = {e["line"]: e["detail"] for e in errors_of(client, lender, reports[0].json()["id"])}
        assert details[1] == "not valid JSON: expected ident at column 2"
        assert details[2] == "Input should be an object"
        assert details[3].startswith("kind: Field required")
        assert nid not in json.dumps(errors) and bad_id not in json.dumps(errors)


class TestCollectionLinks:
    def test_a_creditor_confirms_hand_overs_in_its_csv_file_and_a_collector_claims_in_ndjson(self, app, client,
                                                                                          admin_headers, lender):
        collector = make_institution(client, admin_headers, "collector")
        nid, loan_ref, claim_ref = national_id(), new_ref(), new_ref()
        header = ("external_ref,kind,currency,balance,status,handed_to_institution_id,handed_to_external_ref,debtors,"
                  "registration_consent_reference,registration_consent_given_at,registration_consent_method,as_of")
        row = (f"{loan_ref},instalment_loan,SEK,90000,in_collection,{collector.id},{claim_ref},SE:{nid}:primary,A-1,"
               "2026-01-01T00:00:00Z,e_signature,2026-11-01T00:00:00Z")
        r = client.post("/v1/reports", content=f"{header}\n{row}\n".encode(),
                        headers={**lender.headers, "Content-Type": "text/csv"})
        claim = line(external_ref=claim_ref, kind="collection_claim", status="in_collection",
                     debtors=[{"country": "SE", "national_id": nid, "role": "primary"}],
                     collects={"institution_id": lender.id, "external_ref": loan_ref})
        assert upload(client, collector, claim + "\n").status_code == 202 and r.status_code == 202
        process(app)
        assert client.get(f"/v1/obligations/{loan_ref}", headers=lender.headers).json()["handed_to"] == {
            "institution_id": collector.id, "external_ref": claim_ref}
        assert client.get(f"/v1/obligations/{claim_ref}", headers=collector.headers).json()["collection_link"] == \
            "confirmed"

    def test_a_lenders_collects_line_is_rejected_and_the_rest_applied(self, app, client, lender):
        good, bad = new_ref(), new_ref()
        text = line(external_ref=good) + "\n" + line(external_ref=bad, kind="collection_claim", status="in_collection",
                                                      collects={"institution_id": lender.id, "external_ref": good})
        rid = upload(client, lender, text + "\n").json()["id"]
        process(app)
        doc = client.get(f"/v1/reports/{rid}", headers=lender.headers).json()
        assert (doc["accepted"], doc["rejected"]) == (1, 1)
        assert [(e["line"], e["code"]) for e in errors_of(client, lender, rid)] == [(2, "collector_only")]
        assert client.get(f"/v1/obligations/{bad}", headers=lender.headers).status_code == 404


class TestModes:
    def test_snapshot_unreports_what_the_file_leaves_out(self, app, client, lender):
        refs = [new_ref() for _ in range(3)]
        for ref in refs:
            client.put(f"/v1/obligations/{ref}", headers=lender.headers, json=obligation_body())
        client.put(f"/v1/obligations/{refs[2]}", headers=lender.headers,  # a second version, balance 7
                   json=obligation_body(balance=7, as_of="2026-11-02T00:00:00Z"))
        text = "\n".join(line(external_ref=ref, as_of="2026-11-05T00:00:00Z") for ref in refs[:2])
        r = upload(client, lender, text, mode="snapshot")
        process(app)
        doc = client.get(f"/v1/reports/{r.json()['id']}", headers=lender.headers).json()
        assert doc["status"] == "done" and doc["mode"] == "snapshot" and doc["accepted"] == 2
        assert doc["unreported"] >= 1
        assert client.get(f"/v1/obligations/{refs[2]}", headers=lender.headers).status_code == 410
        history = client.get(f"/v1/obligations/{refs[2]}/versions", headers=lender.headers).json()["versions"]
        assert history[-1]["change"] == "unreported"
        assert history[-1]["state"]["balance"] == 7  # the unreported version carries the latest state
        for ref in refs[:2]:
            assert client.get(f"/v1/obligations/{ref}", headers=lender.headers).status_code == 200

    def test_delta_leaves_the_rest_alone(self, app, client, lender):
        kept = new_ref()
        client.put(f"/v1/obligations/{kept}", headers=lender.headers, json=obligation_body())
        upload(client, lender, line())
        process(app)
        assert client.get(f"/v1/obligations/{kept}", headers=lender.headers).status_code == 200


class TestIdempotency:
    def test_same_key_and_body_returns_the_first_report(self, app, client, lender):
        text = line() + "\n" + line() + "\n"
        first = upload(client, lender, text, key="daily-2026-11-23")
        again = upload(client, lender, text, key="daily-2026-11-23")
        assert first.status_code == 202 and again.status_code == 200
        assert again.json()["id"] == first.json()["id"]
        process(app)
        assert client.get(f"/v1/reports/{first.json()['id']}", headers=lender.headers).json()["accepted"] == 2

    def test_same_key_other_body_is_409_and_stores_nothing(self, app, client, lender):
        upload(client, lender, line(), key="k-409")
        with app.state.register.sessions() as s:
            chunks_before = s.execute(select(func.count()).select_from(ReportChunk)).scalar()
        r = upload(client, lender, line(), key="k-409")
        assert r.status_code == 409 and r.json()["code"] == "idempotency_conflict"
        with app.state.register.sessions() as s:
            assert s.execute(select(func.count()).select_from(ReportChunk)).scalar() == chunks_before

    def test_reprocessing_the_same_lines_changes_nothing(self, app, client, lender):
        text = line() + "\n"
        upload(client, lender, text)
        upload(client, lender, text)  # no key: a second report with the same content
        process(app)
        with app.state.register.sessions() as s:
            ref = json.loads(text)["external_ref"]
            ob = s.execute(select(Obligation).where(Obligation.external_ref == ref)).scalar_one()
            assert ob.version == 1


class TestAccess:
    def test_another_institutions_report_is_404(self, client, admin_headers, lender):
        other = make_institution(client, admin_headers, "lender")
        rid = upload(client, lender, line()).json()["id"]
        assert client.get(f"/v1/reports/{rid}", headers=other.headers).status_code == 404
        assert client.get(f"/v1/reports/{rid}/errors", headers=other.headers).status_code == 404

    def test_regulator_cannot_upload(self, client, admin_headers):
        regulator = make_institution(client, admin_headers, "regulator")
        assert upload(client, regulator, line()).status_code == 403

    def test_empty_report_is_422(self, client, lender):
        assert upload(client, lender, "").status_code == 422

    def test_report_writes_access_events(self, app, client, lender):
        rid = upload(client, lender, line()).json()["id"]
        process(app)
        with app.state.register.sessions() as s:
            events = s.execute(select(AccessEvent).where(AccessEvent.actor_id == lender.id)).scalars().all()
        actions = [(e.action, (e.details or {}).get("report_id")) for e in events]
        assert ("report:received", rid) in actions and ("report:processed", rid) in actions

    def test_body_is_stored_encrypted(self, app, client, lender):
        nid = national_id()
        rid = upload(client, lender, line(debtors=[{"country": "SE", "national_id": nid, "role": "primary"}])
                     ).json()["id"]
        with app.state.register.sessions() as s:
            blobs = s.execute(select(ReportChunk.data).where(ReportChunk.report_id == rid)).scalars().all()
        assert blobs and all(nid.encode() not in bytes(b) and b"instalment_loan" not in bytes(b) for b in blobs)

    def test_a_report_stored_before_zstd_is_still_processed(self, app, client, lender):
        """Chunks are zstd-compressed now, zlib before: a report received by an earlier version and processed
        after the upgrade (its chunks sealed the old way) is read back and applied all the same. A chunk
        sealed under another chunk's place still fails to open."""
        import zlib

        from register.services.report_upload import open_chunk, seal_chunk

        cipher = app.state.register.cipher
        refs = [new_ref() for _ in range(3)]
        rid = upload(client, lender, "\n".join(line(external_ref=r) for r in refs) + "\n").json()["id"]
        with app.state.register.sessions.begin() as s:
            blob = bytes(s.execute(select(ReportChunk.data).where(ReportChunk.report_id == rid)).scalar_one())
            raw = open_chunk(cipher, rid, 0, blob)
            assert cipher.decrypt(blob, table="report_chunks", column="data", row_id=f"{rid}:0")[:4] == b"\x28\xb5\x2f\xfd"
            old = cipher.encrypt(zlib.compress(raw, 1), table="report_chunks", column="data", row_id=f"{rid}:0")
            s.execute(update(ReportChunk).where(ReportChunk.report_id == rid).values(data=old))
        process(app)
        assert client.get(f"/v1/reports/{rid}", headers=lender.headers).json()["accepted"] == 3
        for r in refs:
            assert client.get(f"/v1/obligations/{r}", headers=lender.headers).status_code == 200
        with pytest.raises(DecryptionError):
            open_chunk(cipher, rid, 1, seal_chunk(cipher, rid, 0, raw))


class TestScale:
    def test_memory_does_not_grow_with_the_file(self, app, client, lender, monkeypatch):
        """Processing 45,000 lines peaks at about the same memory as 15,000: the worker streams, and so does
        the pipeline to the preparing processes (both sizes prepared there, so both hold its buffers). In
        batches of 1,000 both sizes are long enough to reach the peak of the preparing processes' tasks ahead
        and of one batch committing while the next is planned and the one after read (services.report_writer):
        measured, 5,000 lines were not (11.7 MB, against 17.6-19.1 MB from 15,000 to 45,000)."""
        from register.domain.permission import Principal, Role
        from register.services import reports

        monkeypatch.setattr(reports, "POOL_MIN_BYTES", 0)
        monkeypatch.setattr(reports, "POOL_MIN_CORES", 1)
        person = national_id()

        def file(n: int) -> str:
            base = obligation_body(debtors=[{"country": "SE", "national_id": person, "role": "primary"}])
            return "".join(json.dumps({**base, "external_ref": f"M{n}-{i}"}) + "\n" for i in range(n))

        peaks = {}
        state = app.state.register
        principal = Principal(role=Role.lender, name=lender.name, institution_id=lender.id)
        for n in (15_000, 45_000):
            rid = upload(client, lender, file(n)).json()["id"]
            tracemalloc.start()
            reports.process_report(state.sessions, state.cipher, rid, allow_test=False, principal=principal,
                                   batch=1000)
            peaks[n] = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            doc = client.get(f"/v1/reports/{rid}", headers=lender.headers).json()
            assert doc["status"] == "done" and doc["accepted"] == n, doc
        assert peaks[45_000] < 1.5 * peaks[15_000], peaks


class TestTheWorkerLoop:
    def test_a_report_received_while_another_is_processed_is_taken_without_a_wake(self, app, client, lender,
                                                                                 monkeypatch):
        """A file accepted by another server process wakes only that process's worker: the worker that finishes
        a report looks for the next one at once, instead of leaving its process idle until its next poll."""
        from register.services import reports

        real, order = reports.process_report, []
        second = {}

        def process_report(sessions, cipher, rid, **kw):
            order.append(rid)
            if not second:  # another server process accepts a file while this one works on the first
                second["id"] = upload(client, lender, line() + "\n").json()["id"]
            return real(sessions, cipher, rid, **kw)

        monkeypatch.setattr(reports, "process_report", process_report)
        first = upload(client, lender, line() + "\n").json()["id"]
        state = app.state.register
        assert reports.ReportWorker(state.sessions, state.cipher, allow_test=False).run_pending() == 2
        assert order == [first, second["id"]]
        for rid in order:
            assert client.get(f"/v1/reports/{rid}", headers=lender.headers).json()["status"] == "done"


class TestBatchFailure:
    def test_a_batch_that_fails_stops_the_report_at_the_batch_before_it(self, app, client, lender, monkeypatch):
        """Lines are read ahead while a batch is written (the next batch waits, read, for that one's commit): a
        batch whose transaction fails leaves the report failed at the last committed batch, with none of the
        lines read after it applied, and the errors of the batches before it kept."""
        from register.domain.permission import Principal, Role
        from register.services import bulk, reports

        written = []

        def plan_batch(session, cipher, **kw):
            written.append(len(kw["lines"]))
            if len(written) == 3:
                raise RuntimeError("the database went away mid-batch")
            return bulk.plan_batch(session, cipher, **kw)

        monkeypatch.setattr(reports, "plan_batch", plan_batch)
        refs = [new_ref() for _ in range(10)]
        lines = [line(external_ref=r) for r in refs]
        lines[1] = "{not json"
        rid = upload(client, lender, "\n".join(lines) + "\n").json()["id"]
        state = app.state.register
        principal = Principal(role=Role.lender, name=lender.name, institution_id=lender.id)
        assert reports.process_report(state.sessions, state.cipher, rid, allow_test=False, principal=principal,
                                      batch=2, processes=0)
        doc = client.get(f"/v1/reports/{rid}", headers=lender.headers).json()
        assert (doc["status"], doc["lines_read"], doc["accepted"], doc["rejected"]) == ("failed", 4, 3, 1), doc
        assert "last committed line" in doc["error"]
        assert written == [1, 2, 2]  # batches of two lines, line 2 an error; the third (lines 5-6) failed
        assert [e["line"] for e in errors_of(client, lender, rid)] == [2]
        found = [client.get(f"/v1/obligations/{r}", headers=lender.headers).status_code for r in refs]
        assert found == [200, 404, 200, 200] + [404] * 6


class TestRefresh:
    def test_the_same_content_with_a_newer_as_of_only_moves_as_of(self, app, client, lender):
        """A daily file repeats most lines unchanged: each confirms its line (as_of moves, so freshness
        shows) and makes no version; a real change still does."""
        ref = new_ref()
        body = {**obligation_body(as_of="2026-11-10T00:00:00Z"), "external_ref": ref}
        for as_of in ("2026-11-10T00:00:00Z", "2026-11-11T00:00:00Z"):
            rid = upload(client, lender, json.dumps({**body, "as_of": as_of}) + "\n").json()["id"]
            process(app)
        doc = client.get(f"/v1/reports/{rid}", headers=lender.headers).json()
        assert (doc["accepted"], doc["unchanged"], doc["rejected"]) == (0, 1, 0)
        got = client.get(f"/v1/obligations/{ref}", headers=lender.headers).json()
        assert got["as_of"] == "2026-11-11T00:00:00Z" and got["version"] == 1
        history = client.get(f"/v1/obligations/{ref}/versions", headers=lender.headers).json()
        assert [(v["version"], v["change"], v["as_of"]) for v in history["versions"]] == [
            (1, "created", "2026-11-10T00:00:00Z")]

        upload(client, lender, json.dumps({**body, "as_of": "2026-11-11T00:00:00Z"}) + "\n")  # a repeat
        upload(client, lender, json.dumps({**body, "as_of": "2026-11-10T12:00:00Z"}) + "\n")  # older: stale
        upload(client, lender, json.dumps({**body, "as_of": "2026-11-12T00:00:00Z", "balance": 1}) + "\n")
        process(app)
        history = client.get(f"/v1/obligations/{ref}/versions", headers=lender.headers).json()
        assert [(v["version"], v["change"], v["as_of"]) for v in history["versions"]] == [
            (1, "created", "2026-11-10T00:00:00Z"), (2, "updated", "2026-11-12T00:00:00Z")]
        assert history["versions"][1]["state"]["balance"] == 1

    def test_a_refreshed_line_left_out_of_a_snapshot_is_unreported_at_its_newest_as_of(self, app, client, lender):
        ref = new_ref()
        body = {**obligation_body(as_of="2026-11-10T00:00:00Z"), "external_ref": ref}
        upload(client, lender, json.dumps(body) + "\n")
        upload(client, lender, json.dumps({**body, "as_of": "2026-11-11T00:00:00Z"}) + "\n")
        process(app)
        upload(client, lender, line() + "\n", mode="snapshot")
        process(app)
        versions = client.get(f"/v1/obligations/{ref}/versions", headers=lender.headers).json()["versions"]
        assert [(v["change"], v["as_of"], v["state"]["as_of"]) for v in versions][-1] == (
            "unreported", "2026-11-11T00:00:00Z", "2026-11-11T00:00:00+00:00")


class TestPreparingProcesses:
    def test_a_file_prepared_in_other_processes_gives_the_same_results_and_errors(self, app, client, lender,
                                                                                 monkeypatch):
        """Large files are validated and prepared in worker processes; lines still apply in file order
        (a later line of the same obligation wins) and errors are the in-thread ones, line by line."""
        from register.services import reports

        monkeypatch.setattr(reports, "preparing_processes", lambda body_bytes: 2)
        monkeypatch.setattr(reports, "TASK_LINES", 3)  # lines of one obligation in different tasks
        bad_id = national_id()
        bad_id = bad_id[:-1] + str((int(bad_id[-1]) + 1) % 10)
        ref, other = new_ref(), new_ref()
        lines = [
            line(external_ref=ref, as_of="2026-11-10T00:00:00Z"),                          # 1 ok
            "{not json",                                                                   # 2
            line(debtors=[{"country": "SE", "national_id": bad_id, "role": "primary"}]),   # 3
            "",                                                                            # 4 blank
            line(external_ref=other, owner="me"),                                          # 5
            line(external_ref=ref, as_of="2026-11-11T00:00:00Z", balance=7),               # 6 ok, wins
            line(kind="credit_card"),                                                      # 7
            line(external_ref=ref, as_of="2026-11-10T12:00:00Z"),                          # 8 stale
        ]
        rid = upload(client, lender, "\n".join(lines) + "\n").json()["id"]
        process(app)
        doc = client.get(f"/v1/reports/{rid}", headers=lender.headers).json()
        assert (doc["status"], doc["lines_read"], doc["accepted"], doc["rejected"]) == ("done", 8, 2, 5)
        assert [(e["line"], e["code"]) for e in errors_of(client, lender, rid)] == [
            (2, "validation_error"), (3, "invalid_national_id"), (5, "validation_error"), (7, "invalid_obligation"),
            (8, "stale_update")]
        got = client.get(f"/v1/obligations/{ref}", headers=lender.headers).json()
        assert (got["balance"], got["version"]) == (7, 2)

    def test_a_second_day_through_the_processes_writes_only_what_changed(self, app, client, lender, monkeypatch):
        """A daily file again a day later, prepared in other processes and applied in batches smaller than
        the file: each repeated line moves its as_of and nothing else (no version, its debtors' rows as they
        were); the one line that changed gets its version, and every history reads as before."""
        from register.services import reports
        from register.storage.models import ObligationDebtor, ObligationVersion

        monkeypatch.setattr(reports, "preparing_processes", lambda body_bytes: 2)
        monkeypatch.setattr(reports, "TASK_LINES", 4)
        debtors = [{"country": "SE", "national_id": national_id(), "role": "primary"},
                   {"country": "SE", "national_id": national_id(), "role": "co_debtor"}]
        refs = [new_ref() for _ in range(25)]

        def day(as_of: str, changed: str | None = None) -> str:
            return "".join(line(external_ref=r, debtors=debtors, as_of=as_of,
                                **({"balance": 1} if r == changed else {})) + "\n" for r in refs)

        def stored():
            with app.state.register.sessions() as s:
                obs = {o.external_ref: (o.id, o.version, o.as_of.isoformat()) for o in s.execute(
                    select(Obligation).where(Obligation.external_ref.in_(refs))).scalars()}
                ids = [v[0] for v in obs.values()]
                versions = sorted((v.obligation_id, v.version, v.change, v.as_of.isoformat()) for v in s.execute(
                    select(ObligationVersion).where(ObligationVersion.obligation_id.in_(ids))).scalars())
                debtor_rows = sorted((d.obligation_id, d.person_id, d.role) for d in s.execute(
                    select(ObligationDebtor).where(ObligationDebtor.obligation_id.in_(ids))).scalars())
            return obs, versions, debtor_rows

        monkeypatch.setattr(reports, "process_report", functools.partial(reports.process_report, batch=10))
        upload(client, lender, day("2026-11-10T00:00:00Z"))
        process(app)
        obs1, versions1, debtors1 = stored()
        assert len(obs1) == 25 and len(versions1) == 25 and len(debtors1) == 50

        rid = upload(client, lender, day("2026-11-11T00:00:00Z", changed=refs[7])).json()["id"]
        process(app)
        doc = client.get(f"/v1/reports/{rid}", headers=lender.headers).json()
        assert (doc["status"], doc["accepted"], doc["unchanged"], doc["rejected"]) == ("done", 1, 24, 0)
        obs2, versions2, debtors2 = stored()
        assert {r: v[2][:10] for r, v in obs2.items()} == dict.fromkeys(refs, "2026-11-11")  # freshness moved
        assert {r: v[1] for r, v in obs2.items()} == {r: 2 if r == refs[7] else 1 for r in refs}
        changed_id = obs1[refs[7]][0]
        assert sorted(set(versions2) - set(versions1)) == [(changed_id, 2, "updated", obs2[refs[7]][2])]
        assert debtors2 == debtors1  # no debtor rewritten (the changed line's debtors are the same people)
        history = client.get(f"/v1/obligations/{refs[0]}/versions", headers=lender.headers).json()["versions"]
        assert [(v["version"], v["change"], v["as_of"]) for v in history] == [(1, "created", "2026-11-10T00:00:00Z")]
        got = client.get(f"/v1/obligations/{refs[0]}", headers=lender.headers).json()
        assert (got["as_of"], got["version"]) == ("2026-11-11T00:00:00Z", 1)

    def test_a_report_processed_beside_another_gets_its_share_of_the_processes(self, app, client, lender,
                                                                              monkeypatch):
        """While another report is processing (a fresh heartbeat, in any server process), a report's preparing
        processes are its share of the cores and none below two: with two, it prepares in the worker's thread.
        A report whose worker died (a stale heartbeat) takes no share."""
        from datetime import timedelta

        from register.services import reports
        from register.storage.models import Report
        from register.storage.types import utcnow

        assert [reports._share(2, k) for k in (0, 1, 2)] == [2, 0, 0]
        assert [reports._share(8, k) for k in (0, 1, 3, 4)] == [8, 4, 2, 0]
        seen: list[int] = []
        real = reports._share
        monkeypatch.setattr(reports, "_share", lambda p, k: seen.append(real(p, k)) or seen[-1])
        monkeypatch.setattr(reports, "preparing_processes", lambda body_bytes: 2)
        other = upload(client, lender, line() + "\n").json()["id"]

        def mark(heartbeat) -> None:
            with app.state.register.sessions.begin() as s:
                r = s.get(Report, other)
                r.status, r.heartbeat_at = "processing", heartbeat

        mark(utcnow())
        rid = upload(client, lender, line() + "\n").json()["id"]
        process(app)
        mark(utcnow() - timedelta(hours=1))  # its worker died: it is taken over, alone
        process(app)
        assert seen == [0, 2]
        for report_id in (rid, other):
            doc = client.get(f"/v1/reports/{report_id}", headers=lender.headers).json()
            assert (doc["status"], doc["accepted"]) == ("done", 1)

    def test_a_file_switching_between_thread_and_processes_gives_the_same_results(self, app, client, lender,
                                                                                 monkeypatch):
        """The share is asked each batch: a report prepares in its thread while others run and in the processes
        when alone, and back; lines still apply in file order, errors are the same, line by line."""
        import itertools
        from concurrent.futures import ProcessPoolExecutor

        from register.services import reports

        others = itertools.cycle([1, 0, 0, 1])  # batches of 10, tasks of 5: thread, pool, pool, thread, ...
        pools: list[int] = []

        class Counted(ProcessPoolExecutor):
            def submit(self, *args, **kw):
                pools.append(1)
                return super().submit(*args, **kw)

        monkeypatch.setattr(reports, "preparing_processes", lambda body_bytes: 2)
        monkeypatch.setattr(reports, "_others_processing", lambda *a, **kw: next(others))
        monkeypatch.setattr(reports, "ProcessPoolExecutor", Counted)
        monkeypatch.setattr(reports, "TASK_LINES", 5)
        monkeypatch.setattr(reports, "process_report", functools.partial(reports.process_report, batch=10))
        ref = new_ref()
        lines = [line(external_ref=ref if i % 7 == 0 else new_ref(), as_of=f"2026-11-{10 + i // 7:02d}T00:00:00Z",
                      balance=i) if i % 4 else "{not json" for i in range(1, 41)]  # fmt: skip
        rid = upload(client, lender, "\n".join(lines) + "\n").json()["id"]
        process(app)
        doc = client.get(f"/v1/reports/{rid}", headers=lender.headers).json()
        assert (doc["status"], doc["lines_read"], doc["accepted"], doc["rejected"]) == ("done", 40, 30, 10)
        assert [(e["line"], e["code"]) for e in errors_of(client, lender, rid)] == [
            (i, "validation_error") for i in range(4, 41, 4)]
        assert client.get(f"/v1/obligations/{ref}", headers=lender.headers).json()["balance"] == 35
        assert 0 < len(pools) < 8  # some tasks went to the processes, some were prepared in the thread


def test_preparing_processes_only_for_a_large_file_on_two_cores_or_more(monkeypatch):
    """A large file gets one preparing process a core from two cores on, a small one none, and one core none:
    on two cores a report alone ran 11,938 -> 15,361 lines/s with them, nine files at once 14,000-16,500 ->
    16,800-18,000 (BENCHMARKS.md, ingest, eighth round). While other reports run, `_share` decides."""
    from register.services import reports

    big = reports.POOL_MIN_BYTES
    for cores, want in ((None, 0), (1, 0), (2, 2), (3, 3), (8, 8)):
        monkeypatch.setattr(reports.os, "cpu_count", lambda c=cores: c)
        assert (reports.preparing_processes(big), reports.preparing_processes(big - 1)) == (want, 0)
    # two cores, two reports: neither has a share of two, so each prepares in its own thread until alone
    assert [reports._share(2, others) for others in (0, 1, 2)] == [2, 0, 0]


def test_preparing_processes_collect_cycles_as_rarely_as_the_server(app):
    """A report's preparing processes hold a task's lines and their own identity caches as the server holds a
    batch: they start with the same collector thresholds (and the collector on)."""
    import gc
    import os
    from concurrent.futures import ProcessPoolExecutor

    from register.services import lines, reports

    with ProcessPoolExecutor(1, mp_context=reports._preparers_context(), initializer=lines.start_preparer,
                             initargs=(app.state.register.cipher, os.getpid())) as pool:
        assert pool.submit(gc.get_threshold).result(timeout=60) == lines.GC_THRESHOLD
        assert pool.submit(gc.isenabled).result(timeout=60) is True


def test_a_server_running_reports_collects_cycles_less_often_but_still_collects(app):
    """A batch keeps thousands of lines alive: at Python's 700 allocations a collection, the cyclic collector
    took 5-8 us of a line (BENCHMARKS.md, ingest, eighth round). The report worker raises the thresholds
    (never lowers one set higher) and leaves the collector on: a cycle made while it runs is still freed."""
    import gc
    import weakref

    from register.services import lines, reports

    before = gc.get_threshold()
    state = app.state.register
    worker = reports.ReportWorker(state.sessions, state.cipher, allow_test=False, interval=60)
    try:
        gc.set_threshold(700, 10, 10)
        worker.start()
        assert gc.get_threshold() == lines.GC_THRESHOLD and gc.isenabled()

        class Node:
            pass

        a, b = Node(), Node()
        a.other, b.other = b, a  # a cycle: reference counting alone never frees it
        gone = weakref.ref(a)
        del a, b
        assert gone() is not None
        kept = [Node() for _ in range(lines.GC_THRESHOLD[0] * 2)]  # a batch's live objects: past the threshold
        assert gone() is None and len(kept) == lines.GC_THRESHOLD[0] * 2  # collected without being asked
    finally:
        worker.stop()
        gc.set_threshold(*before)
    gc.set_threshold(100_000, 50, 50)
    worker = reports.ReportWorker(state.sessions, state.cipher, allow_test=False, interval=60)
    try:
        worker.start()
        assert gc.get_threshold() == (100_000, 50, 50)
    finally:
        worker.stop()
        gc.set_threshold(*before)


def test_a_large_report_starts_the_fork_server_before_any_preparing_process_is_wanted():
    """`warm_preparers`, called as a report large enough for preparing processes is claimed, starts the fork
    server that preloads the preparing module (services.lines) at once, in a process that had none (a fresh interpreter here), and
    returns without waiting for its import: a report left alone later no longer stalls on it (ninth round)."""
    import subprocess
    import sys

    code = (
        "import os, time\n"
        "from register.services import reports\n"
        "t = time.perf_counter(); reports.warm_preparers(); took = time.perf_counter() - t\n"
        "kids = []\n"
        "for _ in range(100):\n"
        "    kids = [open(f'/proc/{p}/cmdline', 'rb').read() for p in os.listdir('/proc') if p.isdigit()\n"
        "            and os.path.exists(f'/proc/{p}/stat')\n"
        "            and open(f'/proc/{p}/stat').read().rsplit(')', 1)[1].split()[1] == str(os.getpid())]\n"
        "    if any(b'forkserver' in k for k in kids): break\n"
        "    time.sleep(0.05)\n"
        "print(any(b'forkserver import main' in k and b'register.services.lines' in k for k in kids), took < 0.5)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.split() == ["True", "True"], out.stdout + out.stderr
