"""`register-client regulator ...`: the regulator's desk from a terminal (a module of its own: cli.py is full).

`regulator signals [--kind K] [--since T]`: where to look, one line per signal (its kind, the institution or
the person's pseudonymous subject, when it was first seen, and how many access events show it); --json
gives each signal whole, with the events' ids.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

import typer
from rich.console import Console

from register_client import _models as m
from register_client import _render as render


class SignalKind(StrEnum):
    late_reporting = "late_reporting"
    lookup_during_ban = "lookup_during_ban"
    lookups_without_follow_up = "lookups_without_follow_up"
    many_lenders_24h = "many_lenders_24h"
    overdue_disputes = "overdue_disputes"


SIGNALS = [("id", render.WHOLE), ("kind", render.WHOLE), ("about", render.WHOLE), ("first seen", render.WHOLE),
           ("events", render.RIGHT)]


def show_signals(console: Console, result: m.Signals) -> None:
    if not result.items:
        console.print(f"No signals since {result.since:%Y-%m-%d %H:%M} UTC.")
        return
    rows = [[s.id, s.kind, s.institution_id or f"subject {s.subject}", f"{s.first_seen:%Y-%m-%d %H:%M} UTC",
             str(s.evidence_total if s.evidence_total is not None else f"{len(s.evidence)}+")] for s in result.items]
    render.records(console, SIGNALS, rows)
    console.print(f"{len(result.items)} signal{'s' if len(result.items) != 1 else ''} since "
                  f"{result.since:%Y-%m-%d %H:%M} UTC; --json lists each one's access events")


def build(register: Callable[[typer.Context], Any], emit: Callable[..., None]) -> typer.Typer:
    """The `regulator` group; `register` and `emit` are cli.py's client factory and printer."""
    group = typer.Typer(help="Regulators: where to look, with the access events that show it.", no_args_is_help=True)

    @group.command("signals")
    def signals(
        ctx: typer.Context,
        kind: Annotated[SignalKind | None, typer.Option(help="Only this kind; all when unset.")] = None,
        since: Annotated[datetime | None, typer.Option(
            help="Start (UTC, e.g. 2026-11-20T00:00:00); default 30 days back, at most 90.",
            formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%S%z"])] = None,
        as_json: Annotated[bool, typer.Option("--json", help="One JSON object per signal, with its events.")] = False,
    ) -> None:
        """Signals: a person looked up by three or more lenders within 24 hours, lookups during a credit
        ban, creditors with overdue disputes, institutions whose lookups are mostly without follow-up."""
        out: Console = ctx.obj.out
        if since is not None and since.tzinfo is None:
            since = since.replace(tzinfo=UTC)
        with register(ctx) as client:
            result = client.regulator_signals(kind=kind.value if kind else None, since=since)
        if as_json:
            emit(out, True, result.items, None)
        else:
            show_signals(out, result)

    return group
