"""`register notices run|status`: the notifier of persons' notices as its own process, and what waits to
be sent (SPEC.md, "Notices"). `register serve` runs the same notifier in a background thread unless
REGISTER_NOTICES=false; several may run at once (the cursor's lock and the claimed rows keep them apart)."""

from __future__ import annotations

import argparse
import json
import time
from datetime import UTC, datetime
from typing import Any


def cmd_notices(args: argparse.Namespace) -> int:
    from register.config import Settings
    from register.services.keys import open_cipher
    from register.services.notices import pending
    from register.services.retention import operator_sessions
    from register.web.notice_mail import notifier_of

    settings = Settings()
    with operator_sessions(settings) as sessions:
        if args.notices_command == "status":
            print(json.dumps(pending(sessions, now=datetime.now(UTC)), indent=2))
            return 0
        cipher, _ = open_cipher(settings, sessions)
        notifier = notifier_of(settings, sessions, cipher)
        interval = args.interval or settings.notice_interval_seconds
        while True:
            queued, sent, kept = notifier.run_once()
            if args.once or queued or sent or kept:
                print(json.dumps({"queued": queued, "sent": sent, "kept_for_retry": kept}), flush=True)
            if args.once:
                return 0
            try:
                time.sleep(interval)
            except KeyboardInterrupt:
                return 0


def add_parser(sub: Any) -> None:
    """The `notices` command group, under the `register` parser's subcommands."""
    group = sub.add_parser("notices", help="notices to persons by e-mail: send them, or see what waits")
    commands = group.add_subparsers(dest="notices_command", required=True)
    run = commands.add_parser("run", help="queue notices for new lookups and send what is due, every interval")
    run.add_argument("--once", action="store_true", help="one pass, then exit (print its counts as JSON)")
    run.add_argument("--interval", type=float, default=None, help="seconds between passes "
                     "(default REGISTER_NOTICE_INTERVAL_SECONDS)")
    run.set_defaults(func=cmd_notices)
    status = commands.add_parser("status", help="print, as JSON, the notices waiting, due and failed so far")
    status.set_defaults(func=cmd_notices)
