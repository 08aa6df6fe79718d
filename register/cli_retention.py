"""`register retention plan|run`: what the register would forget now, and forgetting it (SPEC.md, "Retention")."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from typing import Any


def _moment(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r}") from None
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError("give a time zone (e.g. 2027-01-01T00:00:00Z)")
    return moment.astimezone(UTC)


def cmd_retention(args: argparse.Namespace) -> int:
    from register.config import Settings
    from register.services import retention

    settings = Settings()
    now = args.now or datetime.now(UTC)
    try:
        policy = retention.policy_of(settings)
    except ValueError as exc:
        print(f"register: {exc}", file=sys.stderr)
        return 2

    def progress(what: str, n: int) -> None:
        print(f"\rdeleted {n:>10,} {what:<16}", end="", file=sys.stderr)

    with retention.operator_sessions(settings) as sessions:
        if args.retention_command == "plan":
            counts = retention.plan(sessions, policy, now=now)
        else:
            found = retention.run(sessions, policy, now=now, progress=progress, batch=args.batch)
            print(file=sys.stderr)
            if found is None:
                print("register: another retention run holds the lock; nothing done", file=sys.stderr)
                return 1
            counts = found
    print(json.dumps(counts.as_json(), indent=2))
    return 0


def add_parser(sub: Any) -> None:
    """The `retention` command group, under the `register` parser's subcommands."""
    group = sub.add_parser("retention", help="delete what the retention rules no longer let the register keep")
    commands = group.add_subparsers(dest="retention_command", required=True)
    for name, text in (("plan", "print, as JSON, what a run would delete (counts by rule); delete nothing"),
                       ("run", "delete what is due, in batches with progress; print the counts as JSON")):
        cmd = commands.add_parser(name, help=text)
        cmd.add_argument("--now", type=_moment, default=None, metavar="ISO-TIME",
                         help="act as of this moment (default: now)")
        if name == "run":
            cmd.add_argument("--batch", type=int, default=500, help="things deleted per transaction (default 500)")
        cmd.set_defaults(func=cmd_retention)
