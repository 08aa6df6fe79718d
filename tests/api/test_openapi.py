"""The OpenAPI contract: the checked-in `openapi.json` is what the server serves, and every operation
documents itself (description, examples, the refusals it can make) with examples that are valid."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from pydantic import BaseModel

from register.api import examples as ex
from register.api import schemas
from register.api.openapi import (
    PROBLEM,
    PROBLEM_SCHEMAS,
    REFUSALS,
    component_model,
    dump,
    errors,
    install_openapi,
)
from register.domain.identity import is_test_number, parse_national_id
from register.domain.obligation import ObligationReport, check_report
from register.main import openapi_document

CHECKED_IN = Path(__file__).resolve().parents[2] / "openapi.json"
REGENERATE = "openapi.json is out of date: run `make openapi` (register openapi --output openapi.json) and commit it"
METHODS = {"get", "put", "post", "delete", "patch"}


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return openapi_document()


def operations(doc: dict[str, Any]):
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if method in METHODS:
                yield f"{method.upper()} {path}", op


def deref(doc: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    """Follow a local `$ref` (#/components/...) to what it names."""
    while "$ref" in node:
        target: Any = doc
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def has_example(doc: dict[str, Any], media: dict[str, Any]) -> bool:
    return bool("example" in media or media.get("examples") or deref(doc, media.get("schema", {})).get("examples"))


def contract_problems(doc: dict[str, Any]) -> list[str]:
    """Every way an operation falls short of the contract, as readable lines (empty: all is well)."""
    found: list[str] = []
    for name, op in operations(doc):
        responses = op.get("responses", {})
        if not op.get("summary") or not op.get("description"):
            found.append(f"{name}: no summary or description (write a docstring)")
        body = op.get("requestBody")
        for media_type, media in (body or {}).get("content", {}).items():
            if not has_example(doc, media):
                found.append(f"{name}: request body {media_type} has no example")
        for status, response in responses.items():
            if status.startswith("2"):
                content = response.get("content") or {}
                if not content:
                    found.append(f"{name}: {status} response has no content to give an example of")
                for media_type, media in content.items():
                    if not has_example(doc, media):
                        found.append(f"{name}: {status} {media_type} has no example")
            elif status.isdigit() and int(status) >= 400 and name != "GET /healthz":  # 503 is plain JSON there
                content = response.get("content", {})
                if set(content) != {PROBLEM}:
                    found.append(f"{name}: {status} is not only {PROBLEM} ({sorted(content)})")
                    continue
                media = content[PROBLEM]
                if deref(doc, media.get("schema", {})).get("title") not in PROBLEM_SCHEMAS:
                    found.append(f"{name}: {status} does not use the Problem schema")
                for code, example in (media.get("examples") or {}).items():
                    if deref(doc, example)["value"]["status"] != int(status):
                        found.append(f"{name}: {status} lists {code}, a {deref(doc, example)['value']['status']}")
                if not media.get("examples"):
                    found.append(f"{name}: {status} has no example")
        expected = []
        if op.get("security"):
            expected += ["401", "403"]
        if op.get("parameters") or body:
            # 422, or 400 where a standard fixes the status of a bad request (the OAuth token endpoint, RFC 6749)
            expected.append("400" if "400" in responses else "422")
        if body:
            expected.append("413")
        if "application/json" in (body or {}).get("content", {}):
            expected.append("415")  # a JSON body sent as anything else
        found += [f"{name}: does not declare its {s} response (responses=errors(...))" for s in expected
                  if s not in responses]  # fmt: skip
    return found


class TestCheckedInDocument:
    def test_is_what_the_code_generates(self, document):
        assert CHECKED_IN.exists(), REGENERATE
        text = CHECKED_IN.read_text(encoding="utf-8")
        assert json.loads(text) == document, REGENERATE
        assert text == dump(document), "openapi.json is not in the stable format: " + REGENERATE

    def test_is_what_the_server_serves(self, client):
        served = client.get("/openapi.json")
        assert served.status_code == 200
        assert served.json() == json.loads(CHECKED_IN.read_text(encoding="utf-8")), REGENERATE

    def test_does_not_depend_on_settings_or_keys(self, document):
        assert openapi_document() == document


class TestEveryOperation:
    def test_is_documented_with_examples_and_its_errors(self, document):
        assert contract_problems(document) == []

    def test_the_check_notices_what_is_missing(self):
        app = FastAPI()

        @app.post("/things/{thing_id}")
        def post_thing(thing_id: int, body: dict[str, int]) -> dict[str, int]:
            return body

        @app.get("/documented", responses=errors(404))
        def documented() -> dict[str, int]:
            """Described."""
            return {}

        install_openapi(app)
        found = "\n".join(contract_problems(app.openapi()))
        assert "POST /things/{thing_id}: no summary or description" in found
        assert "GET /documented: no summary" not in found
        assert "POST /things/{thing_id}: request body application/json has no example" in found
        assert "POST /things/{thing_id}: 200 application/json has no example" in found
        assert "POST /things/{thing_id}: 422 is not only application/problem+json" in found  # FastAPI's own 422
        assert "POST /things/{thing_id}: does not declare its 413 response" in found
        assert "GET /documented: 200 application/json has no example" in found
        assert "GET /documented: 404" not in found  # declared through errors(): problem+json with examples
        assert "does not declare its 415" not in found  # every JSON body lists it without being told

    def test_every_json_body_can_be_refused_as_another_media_type(self, document):
        json_bodies = [(name, op) for name, op in operations(document)
                       if "application/json" in op.get("requestBody", {}).get("content", {})]
        assert len(json_bodies) >= 11
        for name, op in json_bodies:
            media = op["responses"]["415"]["content"][PROBLEM]
            assert set(media["examples"]) == {"unsupported_media_type"}, name
            assert deref(document, media["schema"])["title"] == "Problem", name
        others = [name for name, op in operations(document) if "415" in op["responses"]
                  and "application/json" not in op.get("requestBody", {}).get("content", {})]
        assert others == []  # the form (OAuth token) and the streamed report take no JSON

    def test_error_responses_are_problem_json_with_an_example_per_code(self, document):
        put = document["paths"]["/v1/obligations/{external_ref}"]["put"]["responses"]
        assert set(put["409"]["content"][PROBLEM]["examples"]) == {"stale_update"}
        assert set(put["422"]["content"][PROBLEM]["examples"]) == {
            "validation_error", "invalid_national_id", "duplicate_debtor", "invalid_obligation",
        }  # fmt: skip
        assert "application/json" not in put["422"]["content"]
        exposure_403 = document["paths"]["/v1/exposure"]["post"]["responses"]["403"]["content"][PROBLEM]
        assert exposure_403["schema"] == {"$ref": "#/components/schemas/ProblemWithReceipt"}


def model_named(name: str) -> type[BaseModel]:
    model = component_model(name)
    assert isinstance(model, type) and issubclass(model, BaseModel), name
    return model


class TestExamples:
    def test_model_examples_validate_against_their_models(self, document):
        checked = 0
        for name, schema in document["components"]["schemas"].items():
            for example in schema.get("examples", []):
                model = model_named(name)
                parsed = model.model_validate_json(json.dumps(example))
                again = json.loads(parsed.model_dump_json(exclude_unset=True))
                assert again == example, f"{name}: its example has unknown or altered fields"
                checked += 1
        assert checked >= 25

    def test_obligation_reports_are_valid_and_pass_the_cross_field_rules(self):
        for name, example in ex.OBLIGATION_REPORTS.items():
            report = ObligationReport.model_validate_json(json.dumps(example["value"]))
            check_report(report, now=datetime(2026, 11, 23, tzinfo=UTC))
            assert report.debtors, name

    def test_problem_examples_are_problems_of_their_code(self, document):
        for code, example in document["components"]["examples"].items():
            problem = schemas.ProblemWithReceipt.model_validate(example["value"])
            assert problem.code == code
            assert problem.status == REFUSALS[code].status
            assert problem.type.endswith(f"/problems/{code}")

    def test_identity_numbers_are_from_an_official_test_range(self, document):
        numbers: set[str] = set()

        def walk(node: Any) -> None:
            if isinstance(node, dict):
                for key, value in node.items():
                    if key == "national_id" and isinstance(value, str) and "national_id" not in value:
                        numbers.add(value)
                    walk(value)
            elif isinstance(node, list):
                for value in node:
                    walk(value)

        walk(document)
        assert numbers >= {ex.PERSON, ex.CO_DEBTOR, ex.GUARANTOR}
        for number in numbers:
            nid = parse_national_id("FI", number, allow_test=True)
            assert is_test_number(nid), f"{number} is not in a test range"
        for text in (ex.REPORT_NDJSON, ex.REPORT_CSV):
            assert ex.PERSON in text
