"""`register ha up|down|status`: a high-availability PostgreSQL on this machine, etcd and three members under
Patroni with synchronous replication (register/ha.py; SPEC.md, "Many machines")."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def cmd_ha(args: argparse.Namespace) -> int:
    from register import ha

    try:
        if args.ha_command == "up":
            print(json.dumps(ha.up(args.dir, base_port=args.base_port, timeout=args.timeout)))
        elif args.ha_command == "status":
            layout, _pids = ha.load(args.dir.resolve())
            print(json.dumps(ha.describe(layout)))
        else:
            ha.down(args.dir)
    except (ha.HAError, OSError) as exc:
        print(f"register: {exc}", file=sys.stderr)
        return 1
    return 0


def add_parser(sub: Any) -> None:
    """The `ha` command group, under the `register` parser's subcommands."""
    group = sub.add_parser("ha", help="a high-availability PostgreSQL (etcd + 3 Patroni members) on this machine")
    commands = group.add_subparsers(dest="ha_command", required=True)
    for name, text in (
        ("up", "start etcd and three PostgreSQL under Patroni (synchronous, strict); print the database URL "
               "and the members as one JSON line once a leader and a synchronous standby are ready"),
        ("status", "print the same JSON line with the members' current roles"),
        ("down", "stop every member and etcd and remove DIR"),
    ):
        cmd = commands.add_parser(name, help=text)
        cmd.add_argument("--dir", type=Path, required=True, metavar="DIR", help="where the topology lives")
        if name == "up":
            cmd.add_argument("--base-port", type=int, default=15400, metavar="P",
                             help="etcd on P and P+1, PostgreSQL on P+10.., Patroni's REST API on P+20.. "
                                  "(default 15400)")
            cmd.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for a leader")
        cmd.set_defaults(func=cmd_ha)
