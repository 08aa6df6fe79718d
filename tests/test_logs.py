"""No national identity appears in the logs, whatever the request."""

from __future__ import annotations

import io
import logging

from register.logs import JsonFormatter, redact
from tests.factories import make_institution, national_id, new_ref, obligation_body


class TestRedact:
    def test_identity_shapes_are_redacted(self):
        for text in ("198803200016", "880320-0016", "131052-308T", "14842249091", "0101901234"):
            assert redact(f"id={text} end") == "id=[redacted] end"

    def test_ordinary_numbers_survive(self):
        assert redact("status 201 in 12.5 ms, 8500000 öre") == "status 201 in 12.5 ms, 8500000 öre"


class TestLogsCarryNoIdentity:
    def test_requests_with_identities_leave_none_in_logs(self, client, admin_headers):
        stream = io.StringIO()
        handler = logging.StreamHandler(stream)
        handler.setFormatter(JsonFormatter())
        root = logging.getLogger()
        root.addHandler(handler)
        old_level = root.level
        root.setLevel(logging.DEBUG)
        try:
            lender = make_institution(client, admin_headers, "lender")
            good = [national_id("SE"), national_id("NO"), national_id("FI")]
            numbers = list(good)
            for country, nid in zip(("SE", "NO", "FI"), good, strict=True):
                body = obligation_body(debtors=[{"country": country, "national_id": nid, "role": "primary"}])
                assert client.put(f"/v1/obligations/{new_ref()}", json=body, headers=lender.headers).status_code == 201
                bad = nid[:-1] + ("0" if nid[-1] != "0" else "1")
                body = obligation_body(debtors=[{"country": country, "national_id": bad, "role": "primary"}])
                client.put(f"/v1/obligations/{new_ref()}", json=body, headers=lender.headers)
                numbers.append(bad)
        finally:
            root.removeHandler(handler)
            root.setLevel(old_level)
        logged = stream.getvalue()
        assert '"route": "/v1/obligations/{external_ref}"' in logged  # the request log was captured
        for nid in numbers:
            assert nid not in logged and nid.replace("-", "") not in logged
