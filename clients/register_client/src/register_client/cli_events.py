"""`register-client events ...`: this institution's feed from a terminal (a module of its own: cli.py is full).

`events tail [--after SEQ] [--follow]`: the changes that concern this institution, one line each (seq, time,
type, the ids in its data), oldest first; `--follow` keeps asking every `--interval` seconds, like
`tail -f`; --json prints each event whole. The last seq printed is where to start next time.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import typer
from rich.console import Console


def build(register: Callable[[typer.Context], Any], emit: Callable[..., None]) -> typer.Typer:
    """The `events` group; `register` and `emit` are cli.py's client factory and printer."""
    group = typer.Typer(help="The changes that concern this institution: consents, disputes, reports.",
                        no_args_is_help=True)

    @group.command("tail")
    def tail(
        ctx: typer.Context,
        after: Annotated[int, typer.Option(help="Start after this seq (0: the oldest the feed keeps).")] = 0,
        follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep following, like tail -f.")] = False,
        interval: Annotated[float, typer.Option(help="Seconds between polls with --follow.")] = 5.0,
        as_json: Annotated[bool, typer.Option("--json", help="One JSON object per event.")] = False,
    ) -> None:
        """Print the feed's events after --after, oldest first."""
        out: Console = ctx.obj.out
        with register(ctx) as client:
            try:
                for event in client.iter_events(after=after, follow=follow, interval=interval):
                    if as_json:
                        emit(out, True, event, None)
                    else:
                        ids = " ".join(f"{k}={v}" for k, v in event.data.items() if k.endswith("_id") or k == "status")
                        out.print(f"{event.seq}  {event.occurred_at:%Y-%m-%d %H:%M:%S}  {event.type}  {ids}",
                                  highlight=False, markup=False)
            except KeyboardInterrupt:
                pass

    return group
