"""`register keys rotate --kind log` and the log's part of `register keys status` (dispatched by cli_keys).

A rotation hands the access log over to a new Ed25519 key: the old key signs a last checkpoint and a handover
statement naming the new key and the tree size from which it signs (SPEC.md section 4, "Log-key handover");
the new key signs every checkpoint and receipt from then on. The running servers pick the new key up from the
database on their next integrator pass, without a restart. Progress goes to stderr; the functions return the
status as a dict for the caller to print as JSON.
"""

from __future__ import annotations

import sys
import time

from register.config import Settings
from register.errors import Conflict

__all__ = ["rotate_log", "log_status"]


def _key_id(vkey: str) -> str:
    return vkey.split("+", 2)[1]


def _status(info: dict) -> dict:
    return {
        "kind": "log",
        "active": _key_id(info["active"]),
        "retiring": [_key_id(k["vkey"]) for k in info["keys"] if k["state"] != "active"],
        "vkey": info["active"],
        "keys": [{"key_id": _key_id(k["vkey"]), **k} for k in info["keys"]],
    }


def log_status(settings: Settings) -> dict:
    """`{"active": "<key id>", "retiring": ["<key id>", ...], ...}`: the key that signs now, and the retired keys
    whose checkpoints and receipts still verify (through the handovers the `keys` list carries)."""
    from register.services.translog import operator_log

    with operator_log(settings) as (sessions, tlog), sessions() as session:
        return _status(tlog.keys_info(session))


def rotate_log(settings: Settings, *, attempts: int = 60) -> dict:
    """Hand the log over to a new key; returns the status after it. Retries while the integrator is busy."""
    from register.services.translog import operator_log

    with operator_log(settings) as (sessions, tlog):
        print("log key: waiting for the integrator lock", file=sys.stderr)
        for attempt in range(attempts):
            try:
                with sessions.begin() as session:
                    done = tlog.rotate(session)
                break
            except Conflict:
                if attempt == attempts - 1:
                    raise
                time.sleep(0.5)
        print(f"log key: {_key_id(done['retired'])} signed the last checkpoint of size {done['from_size']} and "
              f"handed over to {_key_id(done['active'])}", file=sys.stderr)
        print(f"log key: new verifier key {done['active']}", file=sys.stderr)
        print("log key: servers sign with it from their next integrator pass; verifiers follow the handover "
              "published at GET /v1/audit/log-keys", file=sys.stderr)
        with sessions() as session:
            return {**_status(tlog.keys_info(session)), "from_size": done["from_size"]}
