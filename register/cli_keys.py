"""`register keys rotate --kind fields|blind-index|log` and `register keys status` (SPEC.md, "Key lifecycle").

A rotation runs in this process while servers keep serving: they follow each recorded step within
REGISTER_KEY_REFRESH_SECONDS. Interrupted, it is resumed by running the same command again.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

KINDS = ("fields", "blind-index", "log")


def _progress(step: str, done: int, total: int) -> None:
    if total:
        print(f"\r{step}: {done:>10,} / {total:,}", end="", file=sys.stderr, flush=True)
    else:
        print(f"\n{step}", file=sys.stderr, flush=True)


def keys_status(settings: Any) -> dict[str, Any]:
    """Each kind's active and retiring versions (and pending ones, and the recorded fingerprints)."""
    from register.services import keys

    sessions = keys.operator_sessions(settings)
    with sessions() as session:
        out: dict[str, Any] = keys.status(session)
    try:
        from register.cli_log_key import log_status  # the log key's lifecycle (its own module)
    except ImportError:
        pass
    else:
        out["log"] = log_status(settings)
    return out


def keys_rotate(settings: Any, kind: str, *, batch: int, grace: float | None) -> dict[str, Any]:
    from register.crypto.keys import KeyProviderError

    if kind == "log":
        try:
            from register.cli_log_key import rotate_log  # the log key's lifecycle (its own module)
        except ImportError:
            raise KeyProviderError("this build has no log key rotation (register.cli_log_key)") from None
        return rotate_log(settings)
    from register.services import keys

    sessions = keys.operator_sessions(settings)
    _, provider = keys.open_cipher(settings, sessions)  # refuses keys the data is not under
    wait = grace if grace is not None else 2 * settings.key_refresh_seconds + 1
    rotate = keys.rotate_fields if kind == "fields" else keys.rotate_blind_index
    result = rotate(sessions, provider, progress=_progress, grace=wait, batch=batch)
    print(file=sys.stderr)
    return result


def cmd_keys(args: argparse.Namespace) -> int:
    from register.config import Settings
    from register.crypto.keys import KeyProviderError
    from register.services.keys import KeysRefused

    settings = Settings()
    try:
        if args.keys_command == "status":
            result = keys_status(settings)
        else:
            result = keys_rotate(settings, args.kind, batch=args.batch, grace=args.grace)
    except (KeysRefused, KeyProviderError) as exc:
        print(f"register: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(result, indent=2))
    return 0


def add_parser(sub: Any) -> None:
    """The `keys` command group, under the `register` parser's subcommands."""
    group = sub.add_parser("keys", help="field-encryption, blind-index and log keys: status and rotation")
    commands = group.add_subparsers(dest="keys_command", required=True)
    commands.add_parser("status", help="print each kind's active and retiring versions as JSON").set_defaults(
        func=cmd_keys)
    rot = commands.add_parser("rotate", help="add a new key version, move everything to it, retire the old one")
    rot.add_argument("--kind", choices=KINDS, required=True)
    rot.add_argument("--batch", type=int, default=500, help="rows rewritten per transaction (default 500)")
    rot.add_argument("--grace", type=float, default=None, metavar="SECONDS",
                     help="wait between steps for every server process to follow "
                          "(default: 2 x REGISTER_KEY_REFRESH_SECONDS + 1)")
    rot.set_defaults(func=cmd_keys)


@contextmanager
def keys_refused_as_message() -> Iterator[None]:
    """Any command's refusal of keys that are not the database's (a missing or replaced key file, a key
    source that cannot be loaded) as one line on stderr; the caller then exits 2."""
    from register.services.keys import KeyProviderError, KeysRefused

    try:
        yield
    except (KeysRefused, KeyProviderError) as exc:
        print(f"register: {exc}", file=sys.stderr)
