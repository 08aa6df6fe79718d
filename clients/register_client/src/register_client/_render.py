"""How the CLI shows answers to people: tables of records, amounts in major units.

An amount or an identifier is never cut or wrapped. A table gets the widths it needs: only text columns
wrap (at spaces, never inside a word), and when even that does not fit the console, each record is
printed as a block of "label  value" lines instead. (rich's own shrinking would cut `500.00` to `500…`
or wrap `27 499.71` at its space.) Output to a pipe or file is not limited to 80 columns (see cli.py),
so there every record is one line.

What the register sent is shown as plain text (`Text`, `escape`), never read as rich markup: a detail
such as "[body, balance]" must print as it is.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from rich.cells import cell_len
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from register_client import _models as m

# ISO 4217 minor-unit exponents other than 2 (the register stores minor units).
EXPONENT = {"BHD": 3, "CLP": 0, "ISK": 0, "JOD": 3, "JPY": 0, "KRW": 0, "KWD": 3, "OMR": 3, "TND": 3, "VND": 0}

TEXT, WHOLE, RIGHT = "text", "whole", "right"  # wraps at spaces; never wraps (left); never wraps, right-aligned
Column = tuple[str, str]


def money(amount: int | None, currency: str) -> str:
    if amount is None:
        return ""
    exp = EXPONENT.get(currency, 2)
    sign = "-" if amount < 0 else ""
    whole, frac = divmod(abs(amount), 10**exp)
    text = f"{whole:,}".replace(",", " ")
    return f"{sign}{text}.{frac:0{exp}d}" if exp else f"{sign}{text}"


def fit(width: int, columns: Sequence[Column], rows: Sequence[Sequence[str]]) -> list[int] | None:
    """Content widths for a boxed table of `columns` within `width`, or None when it cannot fit without
    cutting a value. WHOLE and RIGHT columns get their longest value; TEXT columns may narrow to their
    longest word; headers may wrap at spaces."""
    natural, least = [], []
    for i, (header, kind) in enumerate(columns):
        cells = [row[i] for row in rows]
        longest = max((cell_len(c) for c in cells), default=0)
        header_word = max((cell_len(w) for w in header.split()), default=1)
        natural.append(max(longest, cell_len(header), 1))
        words = (cell_len(w) for c in cells for w in c.split()) if kind == TEXT else iter([longest])
        least.append(max(header_word, *words, 1))
    overhead = 3 * len(columns) + 1  # a space either side of each cell, and the rules between and around
    if sum(least) + overhead > width:
        return None
    widths = list(natural)
    excess = sum(widths) + overhead - width
    while excess > 0:  # narrow the column with the most room to give, one cell at a time
        i = max(range(len(widths)), key=lambda j: widths[j] - least[j])
        widths[i] -= 1
        excess -= 1
    return widths


def records(console: Console, columns: Sequence[Column], rows: Sequence[Sequence[str]], title: str | None = None) -> None:
    """`rows` as a table if it fits the console, else one block of lines per record."""
    widths = fit(console.width, columns, rows)
    if widths is None:
        _blocks(console, columns, rows, title)
        return
    table = Table(title=title, title_justify="left")
    for (header, kind), width in zip(columns, widths, strict=True):
        table.add_column(header, justify="right" if kind == RIGHT else "left", width=width,
                         overflow="fold" if kind == TEXT else "ellipsis")  # `fit` left room: neither happens
    for row in rows:
        table.add_row(*(Text(c) for c in row))
    console.print(table)


def _blocks(console: Console, columns: Sequence[Column], rows: Sequence[Sequence[str]], title: str | None) -> None:
    # soft_wrap: rich neither wraps nor cuts these lines; a terminal narrower still wraps them as they are.
    if title:
        console.print(Text(title), soft_wrap=True)
    label = max(cell_len(header) for header, _ in columns)
    for n, row in enumerate(rows):
        if n:
            console.print()
        for (header, _), value in zip(columns, row, strict=True):
            if value:
                console.print(Text(f"  {header:<{label}}  {value}"), soft_wrap=True)


TOTALS = [("balance", "balance"), ("credit limit", "credit_limit"), ("unused credit", "unused_credit"),
          ("monthly payments", "monthly_payments"), ("overdue", "overdue_amount")]


def _totals(console: Console, title: str, totals: dict[str, m.Totals]) -> None:
    # One column per currency (rarely more than two), so that the table fits a terminal.
    currencies = sorted(totals)
    rows = [[label, *(money(getattr(totals[cur], field), cur) for cur in currencies)] for label, field in TOTALS]
    rows.append(["obligations", *(str(totals[cur].obligations) for cur in currencies)])
    rows.append(["creditors", *(str(totals[cur].creditors) for cur in currencies)])
    records(console, [("", WHOLE), *((cur, RIGHT) for cur in currencies)], rows, title)


def _flags(line: m.ExposureLine) -> str:
    flags = []
    if line.joint:
        flags.append("joint")
    if line.stale:
        flags.append("stale")
    if line.disputed:
        flags.append("disputed")
    if not line.counted:
        flags.append("not counted" + (f" (collected by {line.collected_by[:8]})" if line.collected_by else ""))
    if line.collects:
        flags.append(f"collects {line.collects[:8]}")
    return ", ".join(flags)


LINES = [("creditor", TEXT), ("kind", WHOLE), ("role", WHOLE), ("currency", WHOLE), ("balance", RIGHT),
         ("limit", RIGHT), ("monthly", RIGHT), ("overdue", RIGHT), ("status", WHOLE), ("dpd", RIGHT),
         ("as of", WHOLE), ("notes", TEXT)]


def exposure(console: Console, e: m.Exposure) -> None:
    console.print("[bold]Exposure[/] of " + escape(
        f"{e.subject.country} {e.subject.national_id_masked} for {e.purpose} (consent {e.consent_id}, "
        f"{e.consent_source}), as of {e.as_of:%Y-%m-%d %H:%M} UTC"))
    if e.totals:
        _totals(console, "Own debt (primary and co-debtor)", e.totals)
    else:
        console.print("No own debt.")
    if e.contingent:
        _totals(console, "Contingent (guarantees, counted apart)", e.contingent)
    if e.collections.count:
        records(console, [("currency", WHOLE), ("amount", RIGHT)],
                [[cur, money(v, cur)] for cur, v in sorted(e.collections.amount.items())],
                f"Collections: {e.collections.count}")
    if e.obligations:
        rows = [[line.creditor.name, line.kind, line.role, line.currency, money(line.balance, line.currency),
                 money(line.credit_limit, line.currency), money(line.monthly_payment, line.currency),
                 money(line.overdue_amount, line.currency), line.status, str(line.days_past_due),
                 f"{line.as_of:%Y-%m-%d}", _flags(line)] for line in e.obligations]
        records(console, LINES, rows, "Lines")
    console.print(escape(f"exposure id {e.exposure_id}; access logged as event {e.receipt.event_id}"))


OBLIGATIONS = [("external ref", WHOLE), ("kind", WHOLE), ("status", WHOLE), ("currency", WHOLE), ("balance", RIGHT),
               ("overdue", RIGHT), ("debtors", TEXT), ("as of", WHOLE), ("version", RIGHT)]


def obligations(console: Console, items: Iterable[m.Obligation]) -> int:
    rows = [[ob.external_ref, ob.kind, ob.status, ob.currency, money(ob.balance, ob.currency),
             money(ob.overdue_amount, ob.currency), ", ".join(f"{d.national_id_masked} ({d.role})" for d in ob.debtors),
             f"{ob.as_of:%Y-%m-%d}", str(ob.version)] for ob in items]
    if rows:
        records(console, OBLIGATIONS, rows)
    return len(rows)


CONSENTS = [("id", WHOLE), ("person", WHOLE), ("purpose", WHOLE), ("source", WHOLE), ("granted", WHOLE),
            ("expires", WHOLE), ("state", WHOLE)]


def consents(console: Console, items: list[m.Consent]) -> None:
    rows = []
    for c in items:
        state = "revoked" if c.revoked_at else ("active" if c.active else "expired")
        person = f"{c.subject.country} {c.subject.national_id_masked}" if c.subject else ""
        rows.append([c.id, person, c.purpose, c.source, f"{c.granted_at:%Y-%m-%d}", f"{c.expires_at:%Y-%m-%d}", state])
    records(console, CONSENTS, rows)


def report_summary(console: Console, r: m.Report, *, repeated: bool = False) -> None:
    rate = f", {r.lines_per_second:,.0f} lines/s" if r.lines_per_second else ""
    took = f" in {r.elapsed_seconds:.1f} s" if r.elapsed_seconds is not None else ""
    again = f" ({repeat_note(r)})" if repeated else ""
    console.print(f"Report {escape(r.id)}: [bold]{escape(r.status)}[/]{took}{rate}{escape(again)}")
    # The register counts the lines of the file, and a CSV file's first line is its header.
    read = f"lines read {r.lines_read}" + (" (including the header)" if r.format == "csv" else "")
    console.print(f"  {read}, accepted {r.accepted}, unchanged {r.unchanged}, rejected {r.rejected}"
                  + (f", no longer reported {r.unreported}" if r.mode == "snapshot" else ""))
    if r.error:
        console.print(f"  [red]failed:[/] {escape(r.error)}")


def repeat_note(r: m.Report) -> str:
    return f"already received at {r.received_at:%Y-%m-%d %H:%M:%S %Z}".rstrip() + "; not applied again"


ERRORS = [("line", RIGHT), ("code", WHOLE), ("detail", TEXT)]


def report_errors(console: Console, errors: list[m.ReportLineError], more: int) -> None:
    records(console, ERRORS, [[str(e.line), e.code, e.detail] for e in errors], "Rejected lines")
    if more:
        console.print(f"... and {more} more (--max-errors 0 shows all)")
