"""The lender's question takes a lane past FastAPI's routing (`routes.exposure.ExposureLane`): what a lender
sees must not depend on which way a request went. A body sent as `application/json; charset=utf-8` goes
through FastAPI's route; the same body as `application/json` takes the lane."""

from __future__ import annotations

import hashlib
import json

from sqlalchemy import select

from register.api.schemas import ExposurePublic
from register.canonical import canonical_json
from register.storage.models import AccessEvent, ExposureRecord
from tests.factories import debtor, grant, make_person, new_ref, obligation_body

LANE = "application/json"
ROUTE = "application/json; charset=utf-8"


def ask(client, inst, body: dict, content_type: str):
    return client.post("/v1/exposure", content=json.dumps(body).encode(),
                       headers={**inst.headers, "content-type": content_type})


def body_for(person, consent_id, purpose="credit_application") -> dict:
    return {"country": person.country, "national_id": person.nid, "purpose": purpose, "consent_id": consent_id}


def test_an_answer_is_the_same_either_way(app, client, data_dir, lender):
    person = make_person(client, data_dir)
    client.put(f"/v1/obligations/{new_ref()}", json=obligation_body(debtors=[debtor(person)]), headers=lender.headers)
    cid = grant(client, person.headers, lender.id)
    lane, route = ask(client, lender, body_for(person, cid), LANE), ask(client, lender, body_for(person, cid), ROUTE)
    assert lane.status_code == route.status_code == 200, (lane.text, route.text)
    assert lane.headers["content-type"] == route.headers["content-type"] == "application/json"
    assert set(lane.headers) == set(route.headers)
    ExposurePublic.model_validate(lane.json())
    varying = {"exposure_id", "as_of", "receipt"}
    assert {k: v for k, v in lane.json().items() if k not in varying} == {
        k: v for k, v in route.json().items() if k not in varying}
    # stored and hashed as told, with its access event, as the route does
    answer = lane.json()
    with app.state.register.sessions() as s:
        record = s.get(ExposureRecord, answer["exposure_id"])
        events = list(s.execute(select(AccessEvent).where(AccessEvent.request_id == lane.headers["x-request-id"]))
                      .scalars())
    stored = {k: v for k, v in answer.items() if k != "receipt"}
    assert record.response == stored
    assert record.response_sha256 == hashlib.sha256(canonical_json(stored)).hexdigest()
    assert [(e.action, e.outcome, e.id) for e in events] == [
        ("exposure:query", "granted", answer["receipt"]["event_id"])]


def test_a_refusal_is_the_same_either_way(app, client, data_dir, lender):
    person = make_person(client, data_dir)
    missing = "00000000-0000-4000-8000-000000000000"
    lane = ask(client, lender, body_for(person, missing), LANE)
    route = ask(client, lender, body_for(person, missing), ROUTE)
    assert lane.status_code == route.status_code == 403
    assert lane.headers["content-type"] == route.headers["content-type"]
    strip = lambda d: {k: v for k, v in d.items() if k not in ("instance", "request_id", "receipt")}  # noqa: E731
    assert strip(lane.json()) == strip(route.json())
    assert lane.json()["code"] == "consent_missing" and "receipt" in lane.json()
    for r in (lane, route):
        with app.state.register.sessions() as s:
            events = list(s.execute(select(AccessEvent).where(AccessEvent.request_id == r.headers["x-request-id"]))
                          .scalars())
        assert [(e.outcome, e.reason) for e in events] == [("refused", "consent_missing")]


def test_what_the_lane_does_not_take_is_answered_by_the_route(client, data_dir, lender):
    person = make_person(client, data_dir)
    cid = grant(client, person.headers, lender.id)
    bad = [b"{not json", b"[]", json.dumps({**body_for(person, cid), "extra": 1}).encode(),
           json.dumps({**body_for(person, cid), "purpose": "complaint"}).encode(),
           json.dumps({k: v for k, v in body_for(person, cid).items() if k != "consent_id"}).encode()]
    for content in bad:
        lane = client.post("/v1/exposure", content=content, headers={**lender.headers, "content-type": LANE})
        route = client.post("/v1/exposure", content=content, headers={**lender.headers, "content-type": ROUTE})
        assert lane.status_code == route.status_code == 422, (content, lane.text)
        assert {k: v for k, v in lane.json().items() if k not in ("instance", "request_id")} == {
            k: v for k, v in route.json().items() if k not in ("instance", "request_id")}
    no_token = client.post("/v1/exposure", content=json.dumps(body_for(person, cid)).encode(),
                           headers={"content-type": LANE})
    assert no_token.status_code == 401


def test_the_request_log_and_metrics_name_the_route(client, data_dir, lender, caplog):
    person = make_person(client, data_dir)
    cid = grant(client, person.headers, lender.id)
    with caplog.at_level("INFO", logger="register.access"):
        r = ask(client, lender, body_for(person, cid), LANE)
    assert r.status_code == 200
    line = next(rec for rec in caplog.records if getattr(rec, "request_id", None) == r.headers["x-request-id"])
    assert line.route == "/v1/exposure" and line.status == 200 and line.actor
