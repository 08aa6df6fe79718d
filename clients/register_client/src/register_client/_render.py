"""How the CLI shows answers to people: rich tables, amounts in major units.

What the register sent is shown as plain text (`Text`, `escape`), never read as rich markup: a detail
such as "[body, balance]" must print as it is.
"""

from __future__ import annotations

from collections.abc import Iterable

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from register_client import _models as m

# ISO 4217 minor-unit exponents other than 2 (the register stores minor units).
EXPONENT = {"BHD": 3, "CLP": 0, "ISK": 0, "JOD": 3, "JPY": 0, "KRW": 0, "KWD": 3, "OMR": 3, "TND": 3, "VND": 0}


def _row(table: Table, *cells: str) -> None:
    table.add_row(*(Text(c) for c in cells))


def money(amount: int | None, currency: str) -> str:
    if amount is None:
        return ""
    exp = EXPONENT.get(currency, 2)
    sign = "-" if amount < 0 else ""
    whole, frac = divmod(abs(amount), 10**exp)
    text = f"{whole:,}".replace(",", " ")
    return f"{sign}{text}.{frac:0{exp}d}" if exp else f"{sign}{text}"


def _totals_table(title: str, totals: dict[str, m.Totals]) -> Table:
    table = Table(title=title, title_justify="left")
    for col in ("currency", "balance", "credit limit", "unused credit", "monthly payments", "overdue", "obligations",
                "creditors"):
        table.add_column(col, justify="left" if col == "currency" else "right")
    for cur, t in sorted(totals.items()):
        _row(table, cur, money(t.balance, cur), money(t.credit_limit, cur), money(t.unused_credit, cur),
                      money(t.monthly_payments, cur), money(t.overdue_amount, cur), str(t.obligations),
                      str(t.creditors))
    return table


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


def exposure(console: Console, e: m.Exposure) -> None:
    console.print("[bold]Exposure[/] of " + escape(
        f"{e.subject.country} {e.subject.national_id_masked} for {e.purpose} (consent {e.consent_id}, "
        f"{e.consent_source}), as of {e.as_of:%Y-%m-%d %H:%M} UTC"))
    if e.totals:
        console.print(_totals_table("Own debt (primary and co-debtor)", e.totals))
    else:
        console.print("No own debt.")
    if e.contingent:
        console.print(_totals_table("Contingent (guarantees, counted apart)", e.contingent))
    if e.collections.count:
        amounts = ", ".join(f"{money(v, k)} {k}" for k, v in sorted(e.collections.amount.items()))
        console.print(escape(f"Collections: {e.collections.count} ({amounts})"))
    if e.obligations:
        table = Table(title="Lines", title_justify="left")
        for col in ("creditor", "kind", "role", "currency", "balance", "limit", "monthly", "overdue", "status", "dpd",
                    "as of", "notes"):
            right = col in ("balance", "limit", "monthly", "overdue", "dpd")
            table.add_column(col, justify="right" if right else "left")
        for line in e.obligations:
            cur = line.currency
            _row(table, line.creditor.name, line.kind, line.role, cur, money(line.balance, cur),
                          money(line.credit_limit, cur), money(line.monthly_payment, cur),
                          money(line.overdue_amount, cur), line.status, str(line.days_past_due),
                          f"{line.as_of:%Y-%m-%d}", _flags(line))
        console.print(table)
    console.print(escape(f"exposure id {e.exposure_id}; access logged as event {e.receipt.event_id}"))


def obligations(console: Console, items: Iterable[m.Obligation]) -> int:
    table = Table()
    for col in ("external ref", "kind", "status", "currency", "balance", "overdue", "debtors", "as of", "version"):
        table.add_column(col, justify="right" if col in ("balance", "overdue", "version") else "left")
    count = 0
    for ob in items:
        count += 1
        debtors = ", ".join(f"{d.national_id_masked} ({d.role})" for d in ob.debtors)
        _row(table, ob.external_ref, ob.kind, ob.status, ob.currency, money(ob.balance, ob.currency),
                      money(ob.overdue_amount, ob.currency), debtors, f"{ob.as_of:%Y-%m-%d}", str(ob.version))
    console.print(table)
    return count


def consents(console: Console, items: list[m.Consent]) -> None:
    table = Table()
    for col in ("id", "person", "purpose", "source", "granted", "expires", "state"):
        table.add_column(col)
    for c in items:
        state = "revoked" if c.revoked_at else ("active" if c.active else "expired")
        person = f"{c.subject.country} {c.subject.national_id_masked}" if c.subject else ""
        _row(table, c.id, person, c.purpose, c.source, f"{c.granted_at:%Y-%m-%d}", f"{c.expires_at:%Y-%m-%d}",
                      state)
    console.print(table)


def report_summary(console: Console, r: m.Report) -> None:
    rate = f", {r.lines_per_second:,.0f} lines/s" if r.lines_per_second else ""
    took = f" in {r.elapsed_seconds:.1f} s" if r.elapsed_seconds is not None else ""
    console.print(f"Report {escape(r.id)}: [bold]{escape(r.status)}[/]{took}{rate}")
    console.print(f"  lines read {r.lines_read}, accepted {r.accepted}, unchanged {r.unchanged}, "
                  f"rejected {r.rejected}" + (f", no longer reported {r.unreported}" if r.mode == "snapshot" else ""))
    if r.error:
        console.print(f"  [red]failed:[/] {escape(r.error)}")


def report_errors(console: Console, errors: list[m.ReportLineError], more: int) -> None:
    table = Table(title="Rejected lines", title_justify="left")
    table.add_column("line", justify="right")
    table.add_column("code")
    table.add_column("detail", overflow="fold")
    for e in errors:
        _row(table, str(e.line), e.code, e.detail)
    console.print(table)
    if more:
        console.print(f"... and {more} more (--max-errors 0 shows all)")
