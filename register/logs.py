"""Structured logs: one JSON object per line, with anything shaped like a national identity redacted.

Redaction is the second line of defence; the first is that no code logs request bodies or identities.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime

# Birth-date-led numbers with or without separators (SE/NO/FI/DK/PL spellings): 6 or 8 digits, an
# optional separator or century sign, then 3 to 5 characters.
_IDENTITY_LIKE = re.compile(r"(?<![0-9A-Za-z])\d{6}(?:\d{2})?[-+A-Ya-y]?\d{3,4}[0-9A-Ya-y]?(?![0-9A-Za-z])")
_RESERVED = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


def redact(text: str) -> str:
    return _IDENTITY_LIKE.sub("[redacted]", text)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            "pid": record.process,  # which of the server processes (SPEC section 7, "Processes and hosts")
        }
        for key, value in vars(record).items():
            if key not in _RESERVED and not key.startswith("_"):
                doc[key] = value
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return redact(json.dumps(doc, default=str, ensure_ascii=False))


def configure_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    logging.getLogger("httpx").setLevel(logging.WARNING)  # it logs full URLs
    # Uvicorn's access log prints raw paths and query strings; the register logs requests itself.
    logging.getLogger("uvicorn.access").disabled = True
