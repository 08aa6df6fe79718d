"""`register events dispatch|status|dead|retry`: the outbox's dispatcher as its own process, and what the
operator sees of it (SPEC.md, "Events"): how far each consumer has read, and the dead-lettered deliveries.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any


@contextmanager
def _context() -> Any:
    from register.config import Settings
    from register.services.keys import open_cipher
    from register.services.retention import operator_sessions

    settings = Settings()
    with operator_sessions(settings) as sessions:
        yield settings, sessions, (lambda: open_cipher(settings, sessions)[0])


def cmd_dispatch(args: argparse.Namespace) -> int:
    from register.services.dispatch import Dispatcher, dispatch_once
    from register.services.webhooks import consumer_from

    with _context() as (settings, sessions, cipher):
        consumers = [consumer_from(settings, cipher())]
        if args.once:
            print(json.dumps(dispatch_once(sessions, consumers, now=datetime.now(UTC)), indent=2))
            return 0
        dispatcher = Dispatcher(sessions, consumers, args.interval or settings.dispatcher_interval_seconds)
        signal.signal(signal.SIGTERM, lambda *_: dispatcher.stop())
        try:
            dispatcher.run_forever()
        except KeyboardInterrupt:
            pass
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from register.services import dispatch

    with _context() as (_, sessions, _cipher):
        print(json.dumps(dispatch.status(sessions), indent=2))
    return 0


def cmd_dead(args: argparse.Namespace) -> int:
    from register.services import dispatch

    with _context() as (_, sessions, _cipher):
        print(json.dumps(dispatch.dead_letters(sessions, limit=args.limit), indent=2))
    return 0


def cmd_retry(args: argparse.Namespace) -> int:
    from register.services import dispatch

    if not args.all and not args.delivery:
        print("register: name a delivery id, or --all", file=sys.stderr)
        return 2
    with _context() as (_, sessions, _cipher):
        n = dispatch.retry_dead(sessions, delivery_id=None if args.all else args.delivery, now=datetime.now(UTC))
    print(f"{n} dead-lettered deliveries are pending again")
    return 0 if n or args.all else 1


def add_parser(sub: Any) -> None:
    """The `events` command group, under the `register` parser's subcommands."""
    group = sub.add_parser("events", help="the outbox: deliver events, see and retry dead-lettered deliveries")
    commands = group.add_subparsers(dest="events_command", required=True)
    d = commands.add_parser("dispatch", help="run the dispatcher as its own process (several may run on PostgreSQL)")
    d.add_argument("--once", action="store_true", help="one pass, then print its counts as JSON")
    d.add_argument("--interval", type=float, default=None, help="seconds between passes (default: the setting)")
    d.set_defaults(func=cmd_dispatch)
    commands.add_parser("status", help="how far each consumer has read; deliveries by state (JSON)").set_defaults(
        func=cmd_status)
    dead = commands.add_parser("dead", help="list dead-lettered webhook deliveries, newest first (JSON)")
    dead.add_argument("--limit", type=int, default=100)
    dead.set_defaults(func=cmd_dead)
    retry = commands.add_parser("retry", help="put a dead-lettered delivery (or --all) back to pending, due now")
    retry.add_argument("delivery", nargs="?", help="the delivery's id")
    retry.add_argument("--all", action="store_true", help="every dead-lettered delivery")
    retry.set_defaults(func=cmd_retry)
