"""The access log as a transparency log, over HTTP, on both databases. Every proof the API serves is
checked with the RFC 9162 verification functions against a signed checkpoint."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, func, select

from register.audit import merkle
from register.audit.leaf import encode_leaf
from register.audit.note import Checkpoint, NoteVerifier
from register.storage.models import AccessEvent, LogLeaf, LogPending
from tests.api.test_exposure import query
from tests.factories import debtor, grant, make_person, new_ref, obligation_body


def b64d(s: str) -> bytes:
    return base64.b64decode(s)


def integrate(app) -> None:
    state = app.state.register
    state.tlog.run_once(state.sessions, force_checkpoint=True)


def signed_checkpoint(client, regulator) -> Checkpoint:
    key = client.get("/v1/audit/log-key").json()
    doc = client.get("/v1/audit/checkpoint", headers=regulator.headers).json()
    cp = Checkpoint.parse_body(NoteVerifier.from_vkey(key["vkey"]).open(doc["note"].encode()))
    assert (cp.size, base64.b64encode(cp.root_hash).decode()) == (doc["size"], doc["root_hash"])
    return cp


class TestLeaves:
    def test_stored_row_re_encodes_to_the_integrated_leaf(self, app, client, lender):
        client.put(f"/v1/obligations/{new_ref()}", json=obligation_body(), headers=lender.headers)
        integrate(app)
        with app.state.register.sessions() as s:
            rows = s.execute(select(LogLeaf, AccessEvent).join(AccessEvent, AccessEvent.seq == LogLeaf.event_seq)
                             .where(AccessEvent.actor_id == lender.id)).all()
            assert rows
            for leaf, event in rows:
                assert merkle.leaf_hash(encode_leaf(event)) == leaf.leaf_hash

    def test_leaf_is_canonical_json_of_the_event(self, app, client, lender, regulator):
        r = client.put(f"/v1/obligations/{new_ref()}", json=obligation_body(), headers=lender.headers)
        integrate(app)
        cp = signed_checkpoint(client, regulator)
        page = client.get("/v1/audit/leaves", params={"start": max(cp.size - 50, 0), "end": cp.size},
                          headers=regulator.headers).json()
        docs = [json.loads(b64d(leaf)) for leaf in page["leaves"]]
        mine = [d for d in docs if d["request_id"] == r.headers["x-request-id"]]
        assert len(mine) == 1 and mine[0]["action"] == "obligation:created" and mine[0]["v"] == 2
        raw = b64d(page["leaves"][docs.index(mine[0])])
        assert raw == json.dumps(mine[0], sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()

    def test_indexes_are_dense_and_in_order(self, app, client, lender):
        for _ in range(5):
            client.put(f"/v1/obligations/{new_ref()}", json=obligation_body(), headers=lender.headers)
        integrate(app)
        with app.state.register.sessions() as s:
            rows = s.execute(select(LogLeaf.leaf_index, LogLeaf.event_seq).order_by(LogLeaf.leaf_index)).all()
        assert [i for i, _ in rows] == list(range(len(rows)))
        assert [seq for _, seq in rows] == sorted(seq for _, seq in rows)


    def test_an_event_left_pending_behind_newer_leaves_is_still_integrated(self, app, client, lender):
        # A transaction that commits after later ones leaves its event pending behind events already in the
        # tree (the integrator reads the queue from its oldest event on, not from the tree's newest).
        refs = [new_ref(), new_ref()]
        for ref in refs:
            client.put(f"/v1/obligations/{ref}", json=obligation_body(), headers=lender.headers)
        integrate(app)
        with app.state.register.sessions() as s:
            late = s.execute(select(func.max(AccessEvent.seq))).scalar()
        client.put(f"/v1/obligations/{new_ref()}", json=obligation_body(), headers=lender.headers)
        with app.state.register.sessions.begin() as s:
            older = s.execute(select(func.max(AccessEvent.seq))).scalar()
            s.execute(delete(LogPending).where(LogPending.event_seq == older))  # as if not yet committed
        client.put(f"/v1/obligations/{new_ref()}", json=obligation_body(), headers=lender.headers)
        integrate(app)
        with app.state.register.sessions.begin() as s:
            s.add(LogPending(event_seq=older))  # it commits now
        integrate(app)
        with app.state.register.sessions() as s:
            leaves = dict(s.execute(select(LogLeaf.event_seq, LogLeaf.leaf_index)).all())
            pending = s.execute(select(func.count()).select_from(LogPending)).scalar()
        assert older > late and older in leaves and pending == 0
        assert leaves[older] == max(leaves.values())  # integrated last, after the newer event


class TestProofs:
    def test_inclusion_of_every_new_leaf(self, app, client, lender, regulator):
        client.put(f"/v1/obligations/{new_ref()}", json=obligation_body(), headers=lender.headers)
        integrate(app)
        cp = signed_checkpoint(client, regulator)
        leaves = client.get("/v1/audit/leaves", params={"start": max(cp.size - 20, 0), "end": cp.size},
                            headers=regulator.headers).json()
        for offset, leaf in enumerate(leaves["leaves"]):
            index = leaves["start"] + offset
            p = client.get("/v1/audit/proof/inclusion", params={"leaf_index": index, "tree_size": cp.size},
                           headers=regulator.headers).json()
            assert b64d(p["leaf_hash"]) == merkle.leaf_hash(b64d(leaf))
            merkle.verify_inclusion(merkle.leaf_hash(b64d(leaf)), index, cp.size, [b64d(x) for x in p["proof"]],
                                    cp.root_hash)

    def test_consistency_between_checkpoints(self, app, client, lender, regulator):
        client.put(f"/v1/obligations/{new_ref()}", json=obligation_body(), headers=lender.headers)
        integrate(app)
        old = signed_checkpoint(client, regulator)
        for _ in range(3):
            client.put(f"/v1/obligations/{new_ref()}", json=obligation_body(), headers=lender.headers)
        integrate(app)
        new = signed_checkpoint(client, regulator)
        assert new.size > old.size
        p = client.get("/v1/audit/proof/consistency", params={"first": old.size, "second": new.size},
                       headers=regulator.headers).json()
        merkle.verify_consistency(old.size, new.size, [b64d(x) for x in p["proof"]], old.root_hash, new.root_hash)
        history = client.get("/v1/audit/checkpoints", params={"since": old.size}, headers=regulator.headers).json()
        assert [c["size"] for c in history["items"]][0] == old.size and history["items"][-1]["size"] == new.size

    def test_bad_arguments_are_422(self, app, client, regulator):
        integrate(app)
        size = signed_checkpoint(client, regulator).size
        for params in ({"leaf_index": size, "tree_size": size}, {"leaf_index": 0, "tree_size": size + 10},
                       {"leaf_hash": "AAAA", "tree_size": size}, {"tree_size": size}):
            r = client.get("/v1/audit/proof/inclusion", params=params, headers=regulator.headers)
            assert r.status_code == 422, params
        r = client.get("/v1/audit/proof/consistency", params={"first": size, "second": size - 1},
                       headers=regulator.headers)
        assert r.status_code == 422


class TestReceipts:
    def _check(self, client, app, receipt, regulator) -> None:
        """The receipt is signed by the log key over its fields, and once integrated its leaf is provably
        in the signed tree."""
        key = client.get("/v1/audit/log-key").json()
        body = NoteVerifier.from_vkey(key["vkey"]).open(receipt["note"].encode()).decode()
        assert body.splitlines() == [f"{key['origin']}/receipt", receipt["event_id"], receipt["leaf_hash"],
                                     f"Timestamp: {int(datetime.fromisoformat(receipt['occurred_at']).timestamp())}",
                                     f"Max-Merge-Delay: {receipt['max_merge_delay_seconds']}"]
        integrate(app)
        cp = signed_checkpoint(client, regulator)
        p = client.get("/v1/audit/proof/inclusion", params={"leaf_hash": receipt["leaf_hash"], "tree_size": cp.size},
                       headers=regulator.headers).json()
        merkle.verify_inclusion(b64d(receipt["leaf_hash"]), p["leaf_index"], cp.size,
                                [b64d(x) for x in p["proof"]], cp.root_hash)

    def test_granted_and_refused_answers_carry_verifiable_receipts(self, app, client, data_dir, lender, regulator):
        integrate(app)
        person = make_person(client, data_dir)
        client.put(f"/v1/obligations/{new_ref()}", json=obligation_body(debtors=[debtor(person)]),
                   headers=lender.headers)
        cid = grant(client, person.headers, lender.id)
        granted = query(client, lender, person, cid)
        client.delete(f"/v1/consents/{cid}", headers=person.headers)
        refused = query(client, lender, person, cid)
        assert refused.status_code == 403
        # Before integration the receipt is only a promise: no leaf has its hash yet.
        size = signed_checkpoint(client, regulator).size
        r = client.get("/v1/audit/proof/inclusion", params={"leaf_hash": refused.json()["receipt"]["leaf_hash"],
                                                             "tree_size": size}, headers=regulator.headers)
        assert r.status_code == 404
        for answer in (granted, refused):
            self._check(client, app, answer.json()["receipt"], regulator)
        cp = signed_checkpoint(client, regulator)
        receipt = granted.json()["receipt"]
        p = client.get("/v1/audit/proof/inclusion", params={"leaf_hash": receipt["leaf_hash"], "tree_size": cp.size},
                       headers=lender.headers)  # the lender holding the receipt may ask too
        assert p.status_code == 200

    def test_receipt_leaf_hash_is_the_events_leaf(self, app, client, data_dir, lender, regulator):
        person = make_person(client, data_dir)
        cid = grant(client, person.headers, lender.id)
        receipt = query(client, lender, person, cid).json()["receipt"]
        with app.state.register.sessions() as s:
            event = s.execute(select(AccessEvent).where(AccessEvent.id == receipt["event_id"])).scalar_one()
        assert b64d(receipt["leaf_hash"]) == merkle.leaf_hash(encode_leaf(event))
        self._check(client, app, receipt, regulator)


class TestConsumerProof:
    def test_person_proves_an_access_shown_to_them(self, app, client, data_dir, lender):
        person = make_person(client, data_dir)
        cid = grant(client, person.headers, lender.id)
        query(client, lender, person, cid)
        entry = next(e for e in client.get("/v1/me/access-log", headers=person.headers).json()["items"]
                     if e["action"] == "exposure:query")
        assert entry["leaf_index"] is None
        r = client.get(f"/v1/me/access-log/{entry['id']}/proof", headers=person.headers)
        assert r.status_code == 409 and r.json()["code"] == "not_yet_integrated"
        integrate(app)
        entry = next(e for e in client.get("/v1/me/access-log", headers=person.headers).json()["items"]
                     if e["id"] == entry["id"])
        proof = client.get(f"/v1/me/access-log/{entry['id']}/proof", headers=person.headers).json()
        assert proof["leaf_index"] == entry["leaf_index"]
        leaf = b64d(proof["leaf"])
        assert json.loads(leaf)["id"] == entry["id"] and json.loads(leaf)["actor_id"] == lender.id
        key = client.get("/v1/audit/log-key").json()
        cp = Checkpoint.parse_body(NoteVerifier.from_vkey(key["vkey"]).open(proof["checkpoint"]["note"].encode()))
        merkle.verify_inclusion(merkle.leaf_hash(leaf), proof["leaf_index"], cp.size,
                                [b64d(x) for x in proof["inclusion"]["proof"]], cp.root_hash)

    def test_the_regulators_search_shows_the_same_leaf_as_the_persons_log(self, app, client, data_dir, lender,
                                                                          regulator):
        """The regulator's access-log reads say where each event is in the log, as the person's log does: a
        null there means "not yet integrated", so an event that is in the log must not read as one that is not."""
        person = make_person(client, data_dir)
        query(client, lender, person, grant(client, person.headers, lender.id))

        def regulators_view() -> dict[str, int | None]:
            found = client.post("/v1/audit/events/search", headers=regulator.headers,
                                json={"country": person.country, "national_id": person.nid}).json()["items"]
            listed = client.get("/v1/audit/events", headers=regulator.headers,
                                params={"institution_id": lender.id, "action": "exposure:query"}).json()["items"]
            assert {e["id"] for e in found if e["action"] == "exposure:query"} <= {e["id"] for e in listed}
            return {e["id"]: e["leaf_index"] for e in found} | {e["id"]: e["leaf_index"] for e in listed
                                                                 if e["id"] in {f["id"] for f in found}}

        before = regulators_view()
        assert before and set(before.values()) == {None}  # nothing integrated yet
        integrate(app)  # what was there before is in the log now (later reads are not, until the next run)
        persons = {e["id"]: e["leaf_index"] for e in client.get("/v1/me/access-log",
                                                                headers=person.headers).json()["items"]}
        seen = {k: v for k, v in regulators_view().items() if k in before}
        assert seen.keys() == before.keys() and all(isinstance(v, int) for v in seen.values())
        both = seen.keys() & persons.keys()  # the lender's lookup at least; the person's log need not list all
        assert any(e["action"] == "exposure:query" and e["id"] in both for e in client.get(
            "/v1/me/access-log", headers=person.headers).json()["items"])
        assert {k: seen[k] for k in both} == {k: persons[k] for k in both}

    def test_another_persons_event_is_404(self, app, client, data_dir, lender):
        x, y = make_person(client, data_dir), make_person(client, data_dir)
        query(client, lender, y, grant(client, y.headers, lender.id))
        integrate(app)
        y_event = client.get("/v1/me/access-log", headers=y.headers).json()["items"][0]["id"]
        assert client.get(f"/v1/me/access-log/{y_event}/proof", headers=x.headers).status_code == 404


class TestRolesAndTiming:
    def test_log_key_is_public(self, client):
        r = client.get("/v1/audit/log-key")
        assert r.status_code == 200 and r.json()["algorithm"] == "Ed25519"
        name, key_id, key = r.json()["vkey"].split("+", 2)  # base64 may itself contain "+"
        assert name == r.json()["origin"] and len(key_id) == 8
        assert base64.b64decode(key) == b"\x01" + base64.b64decode(r.json()["public_key"])

    def test_leaves_are_for_regulators_only(self, client, data_dir, lender):
        person = make_person(client, data_dir)
        for headers in (lender.headers, person.headers, {}):
            assert client.get("/v1/audit/leaves", params={"start": 0, "end": 1},
                              headers=headers).status_code in (401, 403)

    def test_on_demand_checkpoint(self, client, lender, regulator):
        client.put(f"/v1/obligations/{new_ref()}", json=obligation_body(), headers=lender.headers)
        r = client.post("/v1/audit/checkpoints", headers=regulator.headers)
        assert r.status_code == 200
        assert client.post("/v1/audit/checkpoints", headers=lender.headers).status_code == 403

    def test_background_integrator_meets_the_merge_delay(self, database_url, tmp_path, keys):
        """With the integrator thread on, an event is in a signed checkpoint well within the merge delay."""
        from fastapi.testclient import TestClient

        from register.main import create_app
        from tests.conftest import make_settings
        from tests.factories import make_institution as mk

        app = create_app(make_settings(database_url, tmp_path, log_integrator=True, log_interval_seconds=0.2,
                                       checkpoint_interval_seconds=0.5), keys=keys)
        with TestClient(app) as c:
            from tests.conftest import ADMIN_TOKEN

            inst = mk(c, {"Authorization": f"Bearer {ADMIN_TOKEN}"}, "regulator")
            r = c.get("/v1/audit/events", headers=inst.headers)
            with app.state.register.sessions() as s:
                event = s.execute(select(AccessEvent).where(AccessEvent.request_id == r.headers["x-request-id"])
                                  ).scalar_one()
            deadline = datetime.now(UTC) + timedelta(seconds=app.state.register.settings.max_merge_delay_seconds)
            included = False
            while datetime.now(UTC) < deadline and not included:
                with app.state.register.sessions() as s:
                    leaf = s.execute(select(LogLeaf).where(LogLeaf.event_seq == event.seq)).scalar_one_or_none()
                cp = c.get("/v1/audit/checkpoint", headers=inst.headers)
                included = leaf is not None and cp.status_code == 200 and cp.json()["size"] > leaf.leaf_index
            assert included, "event not in a signed checkpoint within the maximum merge delay"
        app.state.register.engine.dispose()
