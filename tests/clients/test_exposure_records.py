"""The SDK's and the CLI's side of stored answers and answers as of a past moment: `get_exposure`,
`query_exposure_as_of`, `register-client exposure show ID`."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from register_client import AsOfNotAllowed, NotFound, RegisterClient, Shredded
from sqlalchemy import update

from register.storage.models import ExposureRecord
from tests.clients.conftest import BASE_URL, async_client, consumer_token
from tests.clients.test_cli import run  # noqa: F401  (the fixture)
from tests.factories import debtor, in_days, make_institution, new_ref, obligation_body


def _answer(transport, lender, person) -> dict:
    with RegisterClient(BASE_URL, lender.token, transport=transport) as sdk:
        sdk.put_obligation(new_ref(), obligation_body(debtors=[debtor(person)], balance=4_500_000))
    with RegisterClient(BASE_URL, consumer_token(person), transport=transport) as me:
        consent = me.grant_consent({"institution_id": lender.id, "purpose": "credit_application",
                                    "expires_at": in_days(30)}).id
    with RegisterClient(BASE_URL, lender.token, transport=transport) as sdk:
        return sdk.query_exposure(country="SE", national_id=person.nid, purpose="credit_application",
                                  consent_id=consent).model_dump(mode="json")


@pytest.fixture
def regulator_token(client, admin_headers) -> str:
    return make_institution(client, admin_headers, "regulator").token


class TestSdk:
    def test_get_exposure_proves_the_stored_answer(self, transport, client, admin_headers, lender, person,
                                                   regulator_token):
        answer = _answer(transport, lender, person)
        assert client.post("/v1/audit/checkpoints", headers={"Authorization": f"Bearer {regulator_token}"}).is_success
        with RegisterClient(BASE_URL, lender.token, transport=transport) as sdk:
            stored = sdk.get_exposure(answer["exposure_id"])
        assert stored.verified and stored.answer.totals["SEK"].balance == 4_500_000
        assert stored.event_id == answer["receipt"]["event_id"] and stored.checkpoint is not None
        with RegisterClient(BASE_URL, make_institution(client, admin_headers, "lender").token,
                            transport=transport) as other, pytest.raises(NotFound):
            other.get_exposure(answer["exposure_id"])

    def test_a_shredded_answer_raises_shredded(self, app, transport, lender, person):
        answer = _answer(transport, lender, person)
        with app.state.register.sessions.begin() as s:
            s.execute(update(ExposureRecord).where(ExposureRecord.id == answer["exposure_id"]).values(response=None))
        with RegisterClient(BASE_URL, lender.token, transport=transport) as sdk, pytest.raises(Shredded) as err:
            sdk.get_exposure(answer["exposure_id"])
        assert err.value.code == "shredded"

    def test_as_of_for_the_regulator_and_the_person_never_a_lender(self, transport, lender, person, regulator_token):
        answer = _answer(transport, lender, person)
        when = datetime.fromisoformat(answer["as_of"])
        with RegisterClient(BASE_URL, regulator_token, transport=transport) as reg:
            again = reg.query_exposure_as_of(country="SE", national_id=person.nid, purpose="supervision", as_of=when)
        assert again.state_as_of == when and again.totals["SEK"].balance == 4_500_000
        with RegisterClient(BASE_URL, consumer_token(person), transport=transport) as me:
            mine = me.query_exposure_as_of(country="SE", national_id=person.nid, purpose="complaint",
                                           as_of=when - timedelta(days=1))
        assert mine.totals == {}
        with RegisterClient(BASE_URL, lender.token, transport=transport) as sdk, pytest.raises(AsOfNotAllowed):
            sdk.query_exposure_as_of(country="SE", national_id=person.nid, purpose="complaint", as_of=when)

    @pytest.mark.anyio
    async def test_the_async_client_too(self, app, transport, lender, person, regulator_token):
        answer = _answer(transport, lender, person)
        async with async_client(app, regulator_token) as reg:
            stored = await reg.get_exposure(answer["exposure_id"])
            again = await reg.query_exposure_as_of(country="SE", national_id=person.nid, purpose="supervision",
                                                   as_of=datetime.now(UTC))
        assert stored.hash_matches and again.totals["SEK"].balance == 4_500_000


class TestCli:
    def test_exposure_show(self, run, transport, client, lender, person, regulator_token):  # noqa: F811
        answer = _answer(transport, lender, person)
        assert client.post("/v1/audit/checkpoints", headers={"Authorization": f"Bearer {regulator_token}"}).is_success
        result = run("exposure", "show", answer["exposure_id"], token=lender.token)
        assert result.exit_code == 0, result.output
        assert "Stored answer" in result.stdout and "45 000.00" in result.stdout and "VERIFIED" in result.stdout
        assert person.nid not in result.stdout
        doc = json.loads(run("exposure", "show", answer["exposure_id"], "--json", token=regulator_token).stdout)
        assert doc["verified"] is True and doc["answer"]["exposure_id"] == answer["exposure_id"]

    def test_exposure_show_of_another_lenders_answer_is_not_found(self, run, transport, client, admin_headers, lender,
                                                                  person):  # noqa: F811
        answer = _answer(transport, lender, person)
        other = make_institution(client, admin_headers, "lender")
        result = run("exposure", "show", answer["exposure_id"], token=other.token)
        assert result.exit_code == 1 and "Not found" in result.output

    def test_exposure_show_needs_a_uuid_and_exposure_still_needs_its_options(self, run, lender):  # noqa: F811
        result = run("exposure", "show", "abc", token=lender.token)
        assert result.exit_code == 2 and "exposure id must be a UUID" in result.output
        result = run("exposure", "--country", "SE", token=lender.token)
        assert result.exit_code == 2 and "--national-id" in result.output
