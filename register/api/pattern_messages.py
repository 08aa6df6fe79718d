"""Plain words for a value that does not match a field's pattern. Pydantic's own message for a pattern
mismatch is "String should match pattern '<regex>'": a regular expression is no help to a person or an
integrator, so each pattern the API declares is named here by what it wants (tests/api/test_pattern_messages.py
checks that every pattern in openapi.json has words here). An unlisted one says only that the form is wrong.
"""

from __future__ import annotations

from register.api.schemas.me import EMAIL_PATTERN

PLAIN = {
    EMAIL_PATTERN: "not an e-mail address (name@example.org)",
    r"^[^@\s]+@[^@\s]+$": "not an e-mail address (name@example.org)",
    r"^[A-Z]{2}$": "not a country code (two capital letters, such as SE)",
    r"^[A-Z]{3}$": "not a currency code (three capital letters, such as SEK)",
    r"^[0-9a-f]{64}$": "not a SHA-256 (64 lowercase hexadecimal digits)",
    r"^[a-z0-9_]+$": "only lowercase letters, digits and _ are allowed",
    r"^\+?[0-9 ()-]+$": "not a phone number (digits, spaces, ( ) - and a leading +)",
    r"^https://\S+$": "not an https:// URL",
    r"^[A-Za-z0-9._:-]{1,100}$": "only letters, digits and . _ : - are allowed (at most 100)",
    r"^[A-Za-z0-9._:\-]+$": "only letters, digits and . _ : - are allowed",
    r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$":
        "not a UUID (such as 8d3e2f1a-6b5c-4d7e-9f0a-1b2c3d4e5f60)",
}
UNLISTED = "not in the expected form"


def plain(pattern: object) -> str:
    return PLAIN.get(str(pattern), UNLISTED)
