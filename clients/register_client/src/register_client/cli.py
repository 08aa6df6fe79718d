"""`register-client`: the register from an institution's terminal or batch job.

Needs the `cli` extra (typer, rich). Configured by `--url`/`--token` or `REGISTER_URL`/`REGISTER_TOKEN`
(prefer the environment: a token on the command line shows in `ps` and shell history). Instead of a token,
a key pair: `--key PATH --institution ID` (`REGISTER_KEY`, `REGISTER_INSTITUTION_ID`; the `keys` extra),
and each run signs in with the private key (`register_client.keys`).

Exit status: 0 done; 1 the register refused the request, or a report failed or rejected lines (or a
bug); 2 usage, including input refused before sending; 3 the register could not be reached or did not
answer as the contract says.
Errors print the problem's title and detail on one line, never a traceback, and never the token.

Output to a pipe or a file is not cut at 80 columns (rich's default when it is not a terminal): each
record is one line there. At a terminal, tables fit its width or become one block per record.

Tests call `build_app(transport=...)` to run the commands against the app in-process: the transport is
handed to the SDK client (and to the verifier's client), nothing else changes.
"""

from __future__ import annotations

import json
import os
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, NoReturn, get_args

import httpx
import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
)

from register_client import _render as render
from register_client import cli_events, cli_regulator
from register_client._auth import signed_in_token
from register_client._base import clean_token
from register_client._client import RegisterClient
from register_client._exceptions import (
    APIError,
    InvalidRequest,
    ProtocolError,
    RegisterError,
    TransportError,
    redact,
)
from register_client._models import Report
from register_client._requests import DisputeOutcome, DisputeState, Status
from register_client._retry import Retry, RetryHook, RetryNotice
from register_client._upload import UploadProgress, guess_format

EXIT_REFUSED, EXIT_USAGE, EXIT_UNREACHABLE = 1, 2, 3
DEFAULT_URL = "http://127.0.0.1:8000"
UNBOUNDED = 10_000  # the console's width when it is not a terminal: nothing is wrapped or cut
RETRIES_HELP = "Retries of safe calls after connection errors and 429/502/503/504."
MODE_HELP = "snapshot also unreports this institution's obligations that the file leaves out."
FORMAT_HELP = ("Default: by the file's suffix (.csv is CSV; .ndjson, .jsonl, .json are NDJSON), else by its "
               "first line ({ is NDJSON, a row of column names is a CSV header).")
KEY_FILE_HELP = ("Sign in with this private key (PEM, Ed25519 or P-256) instead of a token; its public half is "
                 "registered for the institution. Needs --institution.")
KEY_HELP = ("Idempotency-Key: the same key and file again returns the first report instead of a new one. "
            "Default: a new key per run (still makes this run's retries safe).")


class Mode(StrEnum):
    delta = "delta"
    snapshot = "snapshot"


class Format(StrEnum):
    ndjson = "ndjson"
    csv = "csv"


class Purpose(StrEnum):
    credit_application = "credit_application"
    credit_limit_review = "credit_limit_review"
    debt_restructuring = "debt_restructuring"


ObligationStatus = StrEnum("ObligationStatus", {s: s for s in get_args(Status)})  # what the SDK accepts
StateFilter = StrEnum("StateFilter", {s: s for s in get_args(DisputeState)})
Outcome = StrEnum("Outcome", {s: s for s in get_args(DisputeOutcome)})


@dataclass
class Config:
    url: str
    token: str | None
    retries: int
    transport: httpx.BaseTransport | None
    out: Console
    key: Path | None = None
    institution: str | None = None

    def token_or_fail(self) -> str:
        try:
            token = clean_token(self.token)
        except InvalidRequest as exc:  # never echo the token: the message does not contain it
            fail(str(exc), EXIT_USAGE)
        if not token:
            fail("no token: pass --token or set REGISTER_TOKEN (or sign in with --key and --institution)", EXIT_USAGE)
        return token

    def auth_or_fail(self) -> httpx.Auth:
        """The key pair's sign-in (`--key`, `--institution`)."""
        if self.token and self.token.strip():
            fail("sign in with a token (--token, REGISTER_TOKEN) or a key (--key, REGISTER_KEY), not both",
                 EXIT_USAGE)
        if not self.institution:
            fail("--key needs --institution (or REGISTER_INSTITUTION_ID): the institution's id in the register",
                 EXIT_USAGE)
        try:
            from register_client.keys import PrivateKeyJWT
        except ImportError:
            fail("--key signs with the cryptography package: pip install 'register-client[cli,keys]'", EXIT_USAGE)
        try:
            return PrivateKeyJWT(institution_id=self.institution, key=self.key)
        except InvalidRequest as exc:  # the message names the file, never the key
            fail(str(exc), EXIT_USAGE)

    def client(self) -> RegisterClient:
        credentials = {"auth": self.auth_or_fail()} if self.key else {"token": self.token_or_fail()}
        return RegisterClient(self.url, **credentials, transport=self.transport,  # type: ignore[arg-type]
                              retry=Retry(attempts=self.retries + 1), on_retry=_retry_notices())


def fail(message: str, code: int) -> NoReturn:
    Console(stderr=True, highlight=False).print(f"[red]Error:[/] {escape(redact(message))}", soft_wrap=True)
    raise typer.Exit(code)


def note(message: str) -> None:
    Console(stderr=True, highlight=False).print(escape(message), soft_wrap=True)


def _stdout() -> Console:
    console = Console(highlight=False, soft_wrap=False)
    if not console.is_terminal:
        console.width = UNBOUNDED
    return console


def _retry_notices() -> RetryHook | None:
    """At a terminal, say so before each retry's wait: a down register otherwise looks like a hang."""
    if not Console(stderr=True).is_terminal:
        return None

    def show(n: RetryNotice) -> None:
        note(f"retrying ({n.attempt}/{n.attempts}) after {n.reason}; waiting {n.delay:.1f} s")

    return show


def _base_url(url: str) -> str:
    """The register's base URL: a trailing /v1 (the API's prefix, which every path already has) goes."""
    trimmed = url.rstrip("/")
    if trimmed.endswith("/v1"):
        trimmed = trimmed[:-3]
        note(f"note: REGISTER_URL (--url) is the base URL, without /v1; using {trimmed}")
    return trimmed


def _uuid_or_fail(value: str, what: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        fail(f"{what} must be a UUID", EXIT_USAGE)


@contextmanager
def register(ctx: typer.Context) -> Iterator[RegisterClient]:
    """The SDK client for one command; every SDK error becomes one line on stderr and an exit status."""
    config: Config = ctx.obj
    try:
        with config.client() as client:
            yield client
    except APIError as exc:
        where = f" [{exc.code}, HTTP {exc.status}" + (f", request {exc.request_id}]" if exc.request_id else "]")
        fail(f"{exc.title}: {exc.detail}{where}" if exc.detail != exc.title else f"{exc.title}{where}", EXIT_REFUSED)
    except (TransportError, ProtocolError) as exc:
        fail(str(exc), EXIT_UNREACHABLE)
    except InvalidRequest as exc:  # the SDK refused the input before sending it
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'input'}: {e['msg']}" for e in exc.errors)
        fail(f"invalid input: {problems}" if problems else str(exc), EXIT_USAGE)
    except RegisterError as exc:  # pragma: no cover - every branch of the tree is handled above
        fail(str(exc), EXIT_REFUSED)
    except (ValueError, OSError) as exc:  # e.g. a file that cannot be read
        fail(" ".join(str(exc).split()), EXIT_USAGE)


def _print_json_line(out: Console, model: Any) -> None:
    """`model` as one line of JSON, exactly: never read as rich markup or emoji codes (a "[note]" or ":x:" in
    a person's text or a register's detail must stay as it is)."""
    text = json.dumps(model.model_dump(mode="json"), ensure_ascii=False)
    out.print(text, soft_wrap=True, markup=False, emoji=False, highlight=False)


def _emit(out: Console, as_json: bool, data: Any, show: Any) -> None:
    """`data` (one model or a list of them) as JSON lines with --json, otherwise through `show(out, data)`."""
    if as_json:
        for model in data if isinstance(data, list) else [data]:
            _print_json_line(out, model)
    else:
        show(out, data)


def build_app(*, transport: httpx.BaseTransport | None = None) -> typer.Typer:
    app = typer.Typer(help="The debt register, for institutions: report debts, query exposure, read consents, "
                           "answer disputes.",
                      no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False)
    obligations = typer.Typer(help="This institution's reported obligations.", no_args_is_help=True)
    consents = typer.Typer(help="Consents granted to this institution.", no_args_is_help=True)
    disputes = typer.Typer(help="People's disputes of this institution's lines: answer each by its deadline.",
                           no_args_is_help=True)
    audit = typer.Typer(help="The verifiable access log.", no_args_is_help=True)
    # `exposure` asks with the options alone, as it always has; `exposure show ID` reads a stored answer.
    exposure_group = typer.Typer(help="A person's total exposure, with their consent (the options), or a stored "
                                      "answer (show ID).", invoke_without_command=True)
    app.add_typer(exposure_group, name="exposure")
    app.add_typer(obligations, name="obligations")
    app.add_typer(consents, name="consents")
    app.add_typer(disputes, name="disputes")
    app.add_typer(audit, name="audit")
    app.add_typer(cli_regulator.build(register, _emit), name="regulator")
    app.add_typer(cli_events.build(register, _emit), name="events")

    @app.callback()
    def main_options(
        ctx: typer.Context,
        url: Annotated[str, typer.Option(envvar="REGISTER_URL",
                                         help="The register's base URL (without /v1).")] = DEFAULT_URL,
        token: Annotated[str | None, typer.Option(envvar="REGISTER_TOKEN", help="Bearer token (rgt_...).")] = None,
        key: Annotated[Path | None, typer.Option(envvar="REGISTER_KEY", dir_okay=False, help=KEY_FILE_HELP)] = None,
        institution: Annotated[str | None, typer.Option(envvar="REGISTER_INSTITUTION_ID", metavar="ID",
                                                        help="The institution's id, with --key.")] = None,
        retries: Annotated[int, typer.Option(min=0, max=10, help=RETRIES_HELP)] = 3,
    ) -> None:
        ctx.obj = Config(url=_base_url(url), token=token, retries=retries, transport=transport, out=_stdout(),
                         key=key, institution=institution.strip() if institution else None)

    @app.command()
    def report(
        ctx: typer.Context,
        file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True, help="NDJSON or CSV file.")],
        mode: Annotated[Mode, typer.Option(help=MODE_HELP)] = Mode.delta,
        format: Annotated[Format | None, typer.Option(help=FORMAT_HELP)] = None,
        idempotency_key: Annotated[str | None, typer.Option(help=KEY_HELP)] = None,
        wait: Annotated[bool, typer.Option(help="Wait for processing and show the summary and errors.")] = True,
        poll_interval: Annotated[float, typer.Option(min=0.05, help="Seconds between status checks.")] = 1.0,
        max_errors: Annotated[int, typer.Option(min=0, help="Rejected lines to show; 0 shows all.")] = 100,
        as_json: Annotated[bool, typer.Option("--json", help="Print the report (and errors) as JSON.")] = False,
    ) -> None:
        """Upload a batch report, follow its processing, then show the summary and the rejected lines."""
        out: Console = ctx.obj.out
        fmt = format.value if format else _format_or_fail(file)
        key = idempotency_key or f"register-client-{uuid.uuid4()}"  # so that retries of this upload are safe
        with register(ctx) as client, _progress(quiet=as_json) as progress:
            upload = progress.add_task("uploading", total=file.stat().st_size)

            def on_upload(p: UploadProgress) -> None:
                progress.update(upload, completed=p.bytes_sent)

            sent = client.upload_report(file, mode=mode.value, format=fmt, idempotency_key=key, on_progress=on_upload)
            if not wait:
                progress.stop()
                if as_json:
                    _print_json_line(out, sent)
                    if sent.repeated:
                        note(f"Report {sent.id}: {render.repeat_note(sent)}")
                else:
                    again = f" ({render.repeat_note(sent)})" if sent.repeated else ""
                    out.print(escape(f"Report {sent.id}: {sent.status}{again}"), soft_wrap=True)
                return
            processing = progress.add_task("processing", total=1.0)

            def on_status(r: Report) -> None:
                progress.update(processing, completed=r.progress, description=r.status)

            done = client.wait_for_report(sent.id, poll_interval=poll_interval, on_progress=on_status)
            progress.stop()
            errors, more = [], 0
            if done.rejected:
                for e in client.report_errors(done.id):
                    if max_errors and len(errors) >= max_errors:
                        more += 1
                    else:
                        errors.append(e)
        if as_json:
            out.print_json(json.dumps({"report": done.model_dump(mode="json"), "repeated": sent.repeated,
                                       "errors": [e.model_dump(mode="json") for e in errors]}))
        else:
            render.report_summary(out, done, repeated=sent.repeated)
            if errors:
                render.report_errors(out, errors, more)
        _report_exit(done)

    @app.command("report-status")
    def report_status(
        ctx: typer.Context,
        report_id: Annotated[str, typer.Argument(metavar="ID", help="The report's id, as `report` printed it.")],
        wait: Annotated[bool, typer.Option(help="Wait until the register has processed it.")] = False,
        poll_interval: Annotated[float, typer.Option(min=0.05, help="Seconds between status checks.")] = 1.0,
        as_json: Annotated[bool, typer.Option("--json", help="The report as one JSON object.")] = False,
    ) -> None:
        """A report's status and counts, e.g. after `report --no-wait`.

        Exit status 1 when it failed or rejected lines, as for `report`."""
        out: Console = ctx.obj.out
        report_id = _uuid_or_fail(report_id, "report id")
        with register(ctx) as client:
            r = client.wait_for_report(report_id, poll_interval=poll_interval) if wait else client.get_report(report_id)
        _emit(out, as_json, r, render.report_summary)
        _report_exit(r)

    @app.command("report-errors")
    def report_errors(
        ctx: typer.Context,
        report_id: Annotated[str, typer.Argument(metavar="ID", help="The report's id, as `report` printed it.")],
        limit: Annotated[int, typer.Option(min=0, help="At most this many; 0 for all.")] = 0,
        as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
    ) -> None:
        """A report's rejected lines (line number, code, detail), in file order."""
        out: Console = ctx.obj.out
        report_id = _uuid_or_fail(report_id, "report id")
        with register(ctx) as client:
            errors = list(_take(client.report_errors(report_id), limit))
        if as_json:
            for e in errors:
                _print_json_line(out, e)
        elif errors:
            render.report_errors(out, errors, 0)
        else:
            out.print("No rejected lines.")

    @obligations.command("list")
    def obligations_list(
        ctx: typer.Context,
        status: Annotated[ObligationStatus | None, typer.Option(help="Only this status, e.g. overdue.")] = None,
        limit: Annotated[int, typer.Option(min=0, help="At most this many; 0 for all.")] = 100,
        cursor: Annotated[str | None, typer.Option(help="Go on from where an earlier list stopped (it printed "
                                                        "the cursor on stderr).")] = None,
        as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
    ) -> None:
        """This institution's live obligations, oldest change first.

        When more follow than --limit shows, says so on stderr, with the --cursor that goes on from there
        (stdout stays one record per line with --json)."""
        out: Console = ctx.obj.out
        rest: list[str] = []
        with register(ctx) as client:
            def page(after: str | None, size: int) -> Any:
                return client.obligations_page(status=status.value if status else None,  # type: ignore[arg-type]
                                               cursor=after, limit=size)

            items = _pages_up_to(page, limit, cursor, rest)
            if as_json:
                for ob in items:
                    _print_json_line(out, ob)
            else:
                count = render.obligations(out, items)
                out.print(f"{count} obligation{'s' if count != 1 else ''}")
        if rest:
            note(f"More obligations follow: add --cursor {rest[0]} to go on from here, or --limit 0 for all.")

    @exposure_group.callback(invoke_without_command=True)
    def exposure(
        ctx: typer.Context,
        country: Annotated[str | None, typer.Option(help="ISO country code, e.g. SE.")] = None,
        national_id: Annotated[str | None, typer.Option(help="The person's identity number; '-' reads it from "
                                                             "stdin.")] = None,
        purpose: Annotated[Purpose | None, typer.Option(help="What the consent was given for.")] = None,
        consent: Annotated[str | None, typer.Option(help="The consent's id (a UUID).")] = None,
        as_json: Annotated[bool, typer.Option("--json", help="The whole answer as JSON.")] = False,
    ) -> None:
        """A person's total exposure, with their consent. The query is recorded in their access log.

        `exposure show ID` reads a stored answer instead."""
        if ctx.invoked_subcommand is not None:
            return
        missing = [f"--{n}" for n, v in (("country", country), ("national-id", national_id), ("purpose", purpose),
                                         ("consent", consent)) if v is None]
        if missing:
            fail(f"missing option {', '.join(missing)} (or use: exposure show ID)", EXIT_USAGE)
        assert country is not None and national_id is not None and purpose is not None and consent is not None
        out: Console = ctx.obj.out
        consent = _uuid_or_fail(consent, "consent id")
        if national_id == "-":
            national_id = sys.stdin.readline().strip()
        with register(ctx) as client:
            answer = client.query_exposure(country=country.upper(), national_id=national_id, purpose=purpose.value,
                                           consent_id=consent)
        if as_json:
            out.print_json(answer.model_dump_json())
        else:
            render.exposure(out, answer)

    @exposure_group.command("show")
    def exposure_show(
        ctx: typer.Context,
        exposure_id: Annotated[str, typer.Argument(help="The answer's exposure id (a UUID).")],
        as_json: Annotated[bool, typer.Option("--json", help="The stored answer and its proof as JSON.")] = False,
    ) -> None:
        """A stored answer exactly as its lender was told it, and whether it is proved: its hash matches
        and its access event is in the signed log. For the lender that asked and the regulator. The read
        is recorded in the person's access log."""
        out: Console = ctx.obj.out
        exposure_id = _uuid_or_fail(exposure_id, "exposure id")
        with register(ctx) as client:
            stored = client.get_exposure(exposure_id)
        if as_json:
            out.print_json(stored.model_dump_json())
        else:
            render.stored_exposure(out, stored)

    @consents.command("list")
    def consents_list(
        ctx: typer.Context, as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False
    ) -> None:
        """Consents granted to this institution (identities masked), active and past."""
        out: Console = ctx.obj.out
        with register(ctx) as client:
            items = client.list_consents()
        _emit(out, as_json, items, render.consents)

    @disputes.command("list")
    def disputes_list(
        ctx: typer.Context,
        state: Annotated[StateFilter | None, typer.Option(help="Only this state; open includes overdue.")] = None,
        as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line, the whole text.")] = False,
    ) -> None:
        """Disputes on this institution's lines, earliest deadline first.

        OVERDUE: past its deadline, as the regulator sees it. `disputes show ID` or --json give the whole text."""
        out: Console = ctx.obj.out
        with register(ctx) as client:
            items = client.disputes(state=state.value if state else None)  # type: ignore[arg-type]
        _emit(out, as_json, items, render.disputes)

    @disputes.command("show")
    def disputes_show(
        ctx: typer.Context,
        dispute_id: Annotated[str, typer.Argument(metavar="ID", help="The dispute's id, as `disputes list` shows it.")],
        as_json: Annotated[bool, typer.Option("--json", help="The dispute as one JSON object.")] = False,
    ) -> None:
        """One dispute, with the person's whole text (and the answer and their statement, once there are)."""
        out: Console = ctx.obj.out
        dispute_id = _uuid_or_fail(dispute_id, "dispute id")
        with register(ctx) as client:
            d = client.dispute(dispute_id)
        _emit(out, as_json, d, render.dispute)

    @disputes.command("answer")
    def disputes_answer(
        ctx: typer.Context,
        dispute_id: Annotated[str, typer.Argument(metavar="ID", help="The dispute's id, as `disputes list` shows it.")],
        outcome: Annotated[Outcome, typer.Option(help="corrected: the line was wrong (report it corrected too); "
                                                      "upheld: the line is right as reported.")],
        explanation: Annotated[str, typer.Option(help="What the person reads: what was corrected, or why the line "
                                                      "is right (at most 4,000 characters); '-' reads stdin.")],
        as_json: Annotated[bool, typer.Option("--json", help="The answered dispute as one JSON object.")] = False,
    ) -> None:
        """Answer a dispute: corrected or upheld, with an explanation the person reads.

        Never retried: after a dropped connection, `disputes show ID` tells whether it was taken."""
        out: Console = ctx.obj.out
        dispute_id = _uuid_or_fail(dispute_id, "dispute id")
        if explanation == "-":
            explanation = sys.stdin.read().strip()
        with register(ctx) as client:
            d = client.answer_dispute(dispute_id, outcome=outcome.value,  # type: ignore[arg-type]
                                      explanation=explanation)
        _emit(out, as_json, d, render.answered)

    @audit.command("verify", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
    def audit_verify(
        ctx: typer.Context,
        state: Annotated[Path, typer.Option(help="The verifier's state dir (pinned key, last checkpoint).")],
        log_key: Annotated[str | None, typer.Option(help="The log's verifier key, on the first run.")] = None,
    ) -> None:
        """Regulators: verify the signed access log with the independent `register-verifier` (installed
        separately). Other options (--full, --leaf-index N, --receipt FILE, ...) are passed to it."""
        _verify(ctx, state, log_key, list(ctx.args))

    return app


def _verify(ctx: typer.Context, state: Path, log_key: str | None, extra: list[str]) -> None:
    config: Config = ctx.obj
    try:
        from register_verifier import RegisterClient as VerifierClient
        from register_verifier.cli import main as verifier_main
    except ImportError:
        fail("audit verify needs the regulator's verifier: pip install ./clients/register_verifier "
             "(from the register's repository)", EXIT_USAGE)
    token = _bearer(ctx)
    # In-process, so the token in this argv never shows in `ps`.
    argv = ["verify", "--url", config.url, "--token", token, "--state", str(state),
            *(["--log-key", log_key] if log_key else []), *extra]

    def factory(url: str, token: str | None) -> VerifierClient:
        return VerifierClient(url, token, transport=config.transport)

    code = verifier_main(argv, client_factory=factory)
    if code:
        raise typer.Exit(code)


def _bearer(ctx: typer.Context) -> str:
    """A bearer token to hand to another program: the token, or an access token from signing in with the
    key (it lasts as long as the register's access tokens do, five minutes by default)."""
    config: Config = ctx.obj
    if not config.key:
        return config.token_or_fail()
    with register(ctx) as client:
        return signed_in_token(client)


@contextmanager
def _progress(*, quiet: bool) -> Iterator[Progress]:
    """Progress bars on stderr, only for a person at a terminal: a batch job's log gets the summary alone."""
    console = Console(stderr=True)
    columns = [TextColumn("{task.description:>11}"), BarColumn(), TaskProgressColumn(), TimeRemainingColumn()]
    with Progress(*columns, console=console, disable=quiet or not console.is_terminal) as progress:
        yield progress


def _format_or_fail(file: Path) -> str:
    """The report's format by the file's suffix, else by its first line; a usage error when neither
    tells (sent as NDJSON, a CSV file would have every line rejected as invalid JSON)."""
    fmt = guess_format(file)
    if fmt is None:
        fail(f"cannot tell whether {file.name} is CSV or NDJSON: its first line is neither a JSON object nor a CSV "
             "header; pass --format csv or --format ndjson", EXIT_USAGE)
    return fmt


def _report_exit(r: Report) -> None:
    if r.status == "failed" or r.rejected:
        raise typer.Exit(EXIT_REFUSED)


def _pages_up_to(page: Any, limit: int, cursor: str | None, rest: list[str]) -> Iterator[Any]:
    """Items a page at a time from `cursor`, at most `limit` (0: all). Each page asks for just what is still
    wanted, so when the limit stops it early the last page's `next_cursor` is exactly where to go on: it
    is put in `rest`. (The register sends a `next_cursor` only when more follow.)"""
    taken = 0
    while True:
        result = page(cursor, min(limit - taken, 1000) if limit else 1000)
        yield from result.items
        taken += len(result.items)
        cursor = result.next_cursor
        if not cursor:
            return
        if limit and taken >= limit:
            rest.append(cursor)
            return


def _take(items: Iterator[Any], limit: int) -> Iterator[Any]:
    for i, item in enumerate(items):
        if limit and i >= limit:
            return
        yield item


def main() -> None:
    """The console script. A bug still ends in one line (set REGISTER_CLIENT_DEBUG=1 for the traceback)."""
    try:
        build_app()(prog_name="register-client")
    except Exception as exc:
        if os.environ.get("REGISTER_CLIENT_DEBUG"):
            raise
        text = redact(" ".join(str(exc).split()), os.environ.get("REGISTER_TOKEN", "").strip() or None)
        Console(stderr=True, highlight=False).print(
            escape(f"Error: internal error ({type(exc).__name__}: {text}); REGISTER_CLIENT_DEBUG=1 shows a traceback"))
        sys.exit(EXIT_REFUSED)

