"""How the CLI shows answers to people: tables of records, amounts in major units.

An amount or an identifier is never cut or wrapped. A table gets the widths it needs: only text columns
wrap (at spaces, never inside a word), and when even that does not fit the console, each record is
printed as a block of "label  value" lines instead. (rich's own shrinking would cut `500.00` to `500…`
or wrap `27 499.71` at its space.) Output to a pipe or file is not limited to 80 columns (see cli.py),
so there every record is one line.

What the register sent is shown as plain text (`Text`, `escape`), never read as rich markup: a detail
such as "[body, balance]" must print as it is. A person's own words (a dispute's text, a statement) are
theirs, not the register's: control characters are dropped before they reach the terminal, and only the
disputes table shortens them (`disputes show` prints them whole).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

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
        flags.append("DISPUTED")
    if line.statement:
        flags.append("person's statement below")
    if not line.counted:
        flags.append("not counted" + (f" (collected by {line.collected_by[:8]})" if line.collected_by else ""))
    if line.collection_link == "unconfirmed":
        flags.append("collects a line unconfirmed by its creditor (both counted)")
    elif line.collects:
        flags.append(f"collects {line.collects[:8]}")
    return ", ".join(flags)


LINES = [("creditor", TEXT), ("kind", WHOLE), ("role", WHOLE), ("currency", WHOLE), ("balance", RIGHT),
         ("limit", RIGHT), ("monthly", RIGHT), ("overdue", RIGHT), ("status", WHOLE), ("dpd", RIGHT),
         ("as of", WHOLE), ("notes", TEXT)]


def exposure(console: Console, e: m.Exposure) -> None:
    console.print("[bold]Exposure[/] of " + escape(
        f"{e.subject.country} {e.subject.national_id_masked} for {e.purpose} (consent {e.consent_id}, "
        f"{e.consent_source}), as of {e.as_of:%Y-%m-%d %H:%M} UTC"))
    _figures(console, e)
    console.print(escape(f"exposure id {e.exposure_id}; access logged as event {e.receipt.event_id}"))


def _figures(console: Console, e: m.StoredAnswer) -> None:
    """What an answer says, the same way for a fresh answer and a stored one."""
    if e.credit_ban.active:
        console.print(Text(credit_ban_banner(e.credit_ban), style="bold red"))
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
    for line in e.obligations:
        if line.statement:
            console.print(Text(f"Statement by the person on the {line.kind} with {line.creditor.name} "
                               f"({money(line.balance, line.currency)} {line.currency}): {flat(line.statement)}"))


def stored_exposure(console: Console, s: m.StoredExposure) -> None:
    a = s.answer
    console.print("[bold]Stored answer[/] " + escape(
        f"{a.exposure_id}: {a.subject.country} {a.subject.national_id_masked} for {a.purpose} (consent "
        f"{a.consent_id}, {a.consent_source}), given {a.as_of:%Y-%m-%d %H:%M} UTC"))
    _figures(console, a)
    if s.verified:
        proof = f"VERIFIED: the answer hashes to {s.response_sha256}; its access event is leaf {s.leaf_index}"
        if s.checkpoint is not None:
            proof += f" of the signed checkpoint of size {s.checkpoint.size}"
        console.print(Text(proof, style="bold green"))
    elif not s.hash_matches:
        console.print(Text(f"NOT VERIFIED: the stored answer does not hash to {s.response_sha256}", style="bold red"))
    else:
        console.print(Text(f"NOT YET VERIFIED: the answer hashes to {s.response_sha256}; its access event "
                           f"{s.event_id} is not in a signed checkpoint yet", style="bold yellow"))


def credit_ban_banner(ban: m.CreditBan) -> str:
    since = f" since {ban.since:%Y-%m-%d}" if ban.since else ""
    reason = f" ({ban.reason})" if ban.reason else ""
    return (f"CREDIT BAN: the person has banned credit in their name{since}{reason}. It is advisory; this lookup "
            "is logged as made during the ban.")


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


def flat(text: str) -> str:
    """A person's words on one line: control characters dropped, whitespace runs made one space."""
    return " ".join("".join(ch if ch.isprintable() else " " for ch in text).split())


def clean(text: str) -> str:
    """A person's words as they wrote them, lines kept, without control characters (no escape sequences)."""
    return "\n".join("".join(ch for ch in line if ch.isprintable()) for line in text.splitlines()).strip()


def shorten(text: str, width: int = 60) -> str:
    """The start of a person's words: at most `width` characters, cut at a space when there is one, with …"""
    text = flat(text)
    if len(text) <= width:
        return text
    cut = text[: width - 1]
    head = cut.rsplit(" ", 1)[0] if " " in cut[width // 2:] else cut
    return head.rstrip(" ,.;:") + "…"


def _when(t: datetime | None) -> str:
    return f"{t:%Y-%m-%d %H:%M} UTC" if t else ""


def _state(d: m.Dispute) -> str:
    return "OVERDUE" if d.state == "overdue" else d.state


DISPUTES = [("id", WHOLE), ("external ref", WHOLE), ("reason", WHOLE), ("state", WHOLE), ("deadline", WHOLE),
            ("the person wrote", TEXT)]


def disputes(console: Console, items: list[m.Dispute]) -> None:
    if not items:
        console.print("No disputes.")
        return
    rows = [[d.id, d.external_ref or "", d.reason, _state(d), _when(d.deadline), shorten(d.text)] for d in items]
    records(console, DISPUTES, rows)
    overdue = sum(d.state == "overdue" for d in items)
    waiting = sum(d.awaiting_answer for d in items)
    summary = f"{len(items)} dispute{'s' if len(items) != 1 else ''}, {waiting} awaiting an answer"
    console.print(summary + (f", {overdue} OVERDUE (past the deadline: the regulator sees them)" if overdue else ""))


def dispute(console: Console, d: m.Dispute) -> None:
    if d.state == "overdue":
        deadline = f"its deadline {_when(d.deadline)} has passed: answer now"
    else:
        deadline = f"answer by {_when(d.deadline)}" if d.awaiting_answer else f"deadline was {_when(d.deadline)}"
    console.print(Text(f"Dispute {d.id}: {_state(d)} ({deadline})"))
    closed = f"{_when(d.closed_at)} by {d.closed_by}" if d.closed_at else ""
    fields = [("line", f"{d.external_ref or ''} (line {d.obligation})".strip()), ("reason", d.reason),
              ("opened", _when(d.opened_at)), ("closed", closed)]
    for label, value in fields:
        if value:
            console.print(Text(f"  {label:<8}  {value}"), soft_wrap=True)
    for title, text in (("The person wrote", d.text), ("The answer", d.explanation),
                        (f"The person's statement ({_when(d.statement_at)})", d.statement)):
        if text:
            console.print(Text(f"{title}:"))
            for line in Text(clean(text)).wrap(console, max(console.width - 2, 20)):  # indented, no padding
                console.print(Text("  ") + line, soft_wrap=True)


def answered(console: Console, d: m.Dispute) -> None:
    late = " after its deadline (logged as late)" if d.closed_at and d.closed_at > d.deadline else ""
    console.print(Text(f"Dispute {d.id}: {d.state}, answered {_when(d.closed_at)}{late}"), soft_wrap=True)
    if d.state == "corrected":
        console.print(Text(f"Report the corrected line {d.external_ref or d.obligation} too: the answer alone "
                           "does not change it."))


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
