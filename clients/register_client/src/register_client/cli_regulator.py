"""`register-client regulator ...`: the regulator's desk from a terminal (a module of its own: cli.py is full).

`regulator signals [--kind K] [--since T]`: where to look, one line per signal (its kind, the institution or
the person's pseudonymous subject, when it was first seen, and how many access events show it); --json
gives each signal whole, with the events' ids.
`regulator activity INSTITUTION_ID [--from T] [--to T]`: one institution's figures (lookups, disputes,
reporting freshness) as a few lines; --json gives them whole, with every day.
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
    sequential_lookups = "sequential_lookups"


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


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f} %"


def show_activity(console: Console, a: m.InstitutionActivity) -> None:
    lk, d, rp = a.lookups, a.disputes, a.reporting
    reasons = ", ".join(f"{k} {v}" for k, v in sorted(lk.refused_by_reason.items())) or "none"
    console.print(f"{a.institution.name} ({a.institution.role}, {a.institution.id}), "
                  f"{a.from_:%Y-%m-%d %H:%M} to {a.to:%Y-%m-%d %H:%M} UTC")
    console.print(f"Lookups: {lk.total} ({lk.granted} granted, {lk.refused} refused: {reasons}); "
                  f"{lk.per_consent if lk.per_consent is not None else '-'} per consent; "
                  f"outside office hours {_pct(lk.outside_office_hours_share)} ({a.office_hours.time_zone})")
    console.print(f"Spikes: {', '.join(f'{s.day} ({s.lookups} vs {s.baseline})' for s in lk.spikes) or 'none'}; "
                  f"during a credit ban: {lk.during_ban}; without follow-up: {lk.follow_up.without_follow_up} "
                  f"(pending {lk.follow_up.pending})")
    median = f"{d.median_answer_hours} h" if d.median_answer_hours is not None else "-"
    console.print(f"Disputes: {d.open} open, {d.overdue} overdue; {d.answered} answered, median {median}")
    last = (f"{rp.last_file.received_at:%Y-%m-%d %H:%M} UTC ({rp.last_file.status})" if rp.last_file else "never")
    console.print(f"Reporting: {rp.stale_lines} of {rp.lines} lines stale ({_pct(rp.stale_share)}); last file "
                  f"{last}; files failed {_pct(rp.file_error_rate)}; {rp.late_changes} of {rp.changes} changes "
                  f"late (over {rp.deadline_days} days)")


def _utc(value: datetime | None) -> datetime | None:
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


_TIME_FORMATS = ["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%S%z"]


def build(register: Callable[[typer.Context], Any], emit: Callable[..., None]) -> typer.Typer:
    """The `regulator` group; `register` and `emit` are cli.py's client factory and printer."""
    group = typer.Typer(help="Regulators: where to look (many lenders, during a credit ban, overdue disputes, "
                        "without follow-up, late reporting, sequential lookups), with the access events that "
                        "show it.", no_args_is_help=True)

    @group.command("signals")
    def signals(
        ctx: typer.Context,
        kind: Annotated[SignalKind | None, typer.Option(help="Only this kind; all when unset.")] = None,
        since: Annotated[datetime | None, typer.Option(
            help="Start (UTC, e.g. 2026-11-20T00:00:00); default 30 days back, at most 90.",
            formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%S%z"])] = None,
        as_json: Annotated[bool, typer.Option("--json", help="One JSON object per signal, with its events.")] = False,
    ) -> None:
        """Signals: many lenders, during a credit ban, overdue disputes, without follow-up, late reporting,
        sequential lookups.

        many_lenders_24h: a person looked up by three or more lenders within 24 hours; lookup_during_ban:
        lookups during the person's credit ban; overdue_disputes: creditors with disputes open past their
        deadline; lookups_without_follow_up: institutions whose lookups are mostly without follow-up;
        late_reporting: creditors recording changes more than the allowed days after they happened;
        sequential_lookups: institutions looking people up in identity-number order."""
        out: Console = ctx.obj.out
        if since is not None and since.tzinfo is None:
            since = since.replace(tzinfo=UTC)
        with register(ctx) as client:
            result = client.regulator_signals(kind=kind.value if kind else None, since=since)
        if as_json:
            emit(out, True, result.items, None)
        else:
            show_signals(out, result)

    @group.command("activity")
    def activity(
        ctx: typer.Context,
        institution_id: Annotated[str, typer.Argument(help="The institution's id.")],
        start: Annotated[datetime | None, typer.Option("--from", help="Start (UTC), inclusive; default 30 days "
                                                                      "before --to.", formats=_TIME_FORMATS)] = None,
        end: Annotated[datetime | None, typer.Option("--to", help="End (UTC), exclusive; default now; at most 92 "
                                                                  "days after --from.", formats=_TIME_FORMATS)] = None,
        as_json: Annotated[bool, typer.Option("--json", help="The figures whole, with every day.")] = False,
    ) -> None:
        """One institution's figures: lookups per day, per consent, outside office hours, spikes, during a
        credit ban and without follow-up; disputes; reporting freshness."""
        out: Console = ctx.obj.out
        with register(ctx) as client:
            result = client.institution_activity(institution_id, start=_utc(start), end=_utc(end))
        if as_json:
            emit(out, True, result, None)
        else:
            show_activity(out, result)

    return group
