"""Scripted run: README.md as a newcomer runs it, against `register demo`, on SQLite (README's default).

1. `register demo` starts on a free port in a fresh directory that stands for the checkout: `.venv` there
   links to this checkout's, and `.register` (the default data dir) is new. That is what the README's first
   block (`make run`, `make test`) does in the real checkout; nothing the README writes lands in it.
2. The demo's banner: every example command it prints runs, from that directory, without `.venv/bin` on
   PATH (a newcomer pastes them as printed; `make run` does not activate the venv).
3. Every ```sh block outside "Running in production with Docker" runs with bash, in README order, each with
   `set -euo pipefail`. Variables and functions carry over from block to block, as in the reader's
   terminal; PATH does not: each `##` section starts with a fresh terminal's PATH (no `.venv/bin`), because
   a reader may start at any section, so a section that needs `.venv/bin` on PATH must say so. Every
   ```python block runs with the venv's python, in the same directory.
   curl is observed, not changed: a shell function logs each answer's status, and a 5xx, or a 4xx that
   the README does not announce (EXPECTED_REFUSALS), fails the run.
4. The demo restarts on the same data and says what the data now holds, counted in the database.
5. Everything the README made in the directory is git-ignored (a newcomer's `git status` stays clean).

A section being rewritten elsewhere may be listed in TOLERATED: its blocks still run, and a failure there
is a warning instead of a failure (remove it from the list once the section runs).
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from register.storage.db import make_engine, make_sessionmaker
from register.storage.summary import count_contents
from tests.server import free_port

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
VENV = Path(sys.prefix)  # the virtualenv these tests run in: `make install`'s .venv
NOT_RUN = {"Running in production with Docker"}  # needs Docker; tests/test_deploy.py checks its files
TOLERATED: set[str] = set()  # sections being rewritten elsewhere (none now)
FIRST_BLOCK = ["make run", "make test"]  # replaced by starting `register demo` ourselves
# The 4xx answers the README announces: (section, method, path, status).
EXPECTED_REFUSALS = [("Consent, then exposure", "POST", "/v1/exposure", 403)]
CURL_MARK = "@@readme-curl"

# Runs one block in bash: the previous blocks' variables and functions first, this block's after it (also
# when it fails, so that a tolerated failure leaves the rest of the story its values).
RUNNER = r"""
__state=$1
. "$__state"
__save() {
  local __n __d __f
  {
    for __n in $(compgen -v); do
      case $__n in
        __*|BASH*|FUNCNAME|PIPESTATUS|SHLVL|RANDOM|SRANDOM|SECONDS|LINENO|_|HISTCMD|COMP_*|DIRSTACK|GROUPS|\
EPOCHREALTIME|EPOCHSECONDS|OPTIND|OPTARG|OPTERR|PPID|UID|EUID|SHELLOPTS|BASHOPTS|IFS|PS4|PWD|OLDPWD|\
HOSTNAME|HOSTTYPE|MACHTYPE|OSTYPE|COLUMNS|LINES) continue ;;
      esac
      __d=$(declare -p "$__n" 2>/dev/null) || continue
      __f=${__d#declare }; __f=${__f%% *}
      [[ $__f == *r* ]] && continue  # read-only: bash's own
      printf '%s\n' "$__d"
    done
    declare -f
  } > "$__state.new" && mv "$__state.new" "$__state"
}
trap __save EXIT
set -euo pipefail
. "$2"
"""
# curl, observed: each answer's status goes to stderr with a mark; what curl prints is unchanged. The mark is
# written once curl has exited, in one piece: written by curl itself, it went out in several writes, and under
# a parallel test run its body's stdout landed between them ("@@readme-curl 2", the body, "00 GET ...").
CURL = ("curl() { local __e __rc; __e=$(mktemp); command curl -w '%{stderr}" + CURL_MARK
        + " %{http_code} %{method} %{url_effective}\\n' \"$@\" 2>\"$__e\"; __rc=$?; cat \"$__e\" >&2; rm -f \"$__e\";"
        " return $__rc; }\n")


@dataclass
class Block:
    section: str
    lang: str  # sh | python
    text: str
    line: int  # where it starts in README.md


@dataclass
class Ran:
    block: Block
    code: int
    output: str
    answers: list[tuple[int, str, str]] = field(default_factory=list)  # (status, method, path)


def readme_blocks() -> list[Block]:
    blocks, section, lang, start, lines = [], "", None, 0, []
    for n, line in enumerate((ROOT / "README.md").read_text(encoding="utf-8").splitlines(), start=1):
        if lang is None:
            if line.startswith("## "):
                section = line[3:].strip()
            elif line.strip() in ("```sh", "```python"):
                lang, start, lines = line.strip()[3:], n, []
        elif line.strip() == "```":
            blocks.append(Block(section, lang, "\n".join(lines) + "\n", start))
            lang = None
        else:
            lines.append(line)
    return [b for b in blocks if b.section not in NOT_RUN]


def clean_path() -> str:
    """This machine's PATH without any virtualenv's bin: a fresh terminal's."""
    keep = [p for p in os.environ.get("PATH", "/usr/bin:/bin").split(os.pathsep)
            if p and not (Path(p) / "activate").exists() and Path(p) != Path(sys.executable).parent]
    return os.pathsep.join(keep)


USER_HOME: list[Path] = []  # the newcomer's $HOME, a temporary one: the README keeps a key under it


def clean_env() -> dict[str, str]:
    """A newcomer's environment: no REGISTER_* settings, no active virtualenv, a home of its own."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("REGISTER_", "PYTHON")) and k not in ("VIRTUAL_ENV", "PYTEST_CURRENT_TEST")}
    return env | {"PATH": clean_path()} | ({"HOME": str(USER_HOME[-1])} if USER_HOME else {})


def split_answers(output: str) -> tuple[str, list[tuple[int, str, str]]]:
    answers, kept = [], []
    for line in output.splitlines(keepends=True):
        at = line.find(CURL_MARK)
        if at < 0:
            kept.append(line)
            continue
        status, method, url = line[at + len(CURL_MARK):].split()
        answers.append((int(status), method, httpx.URL(url).path))
        if line[:at]:
            kept.append(line[:at] + "\n")  # the body had no newline at its end
    return "".join(kept), answers


class Demo:
    """`register demo` as `make run` starts it, in `home`; its banner and log in `home/demo.log`."""

    def __init__(self, home: Path, port: int) -> None:
        self.home, self.port, self.proc = home, port, None
        self.log = home.parent / "demo.log"  # outside home: not something the README made

    def start(self) -> str:
        offset = self.log.stat().st_size if self.log.exists() else 0
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen([str(VENV / "bin" / "register"), "demo", "--port", str(self.port)],
                                         cwd=self.home, env=clean_env(), stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"register demo exited with {self.proc.returncode}:\n{self.output(offset)}")
            banner = self.output(offset)
            if "The person's pages:" in banner:
                try:
                    if httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=1).status_code == 200:
                        return banner
                except httpx.HTTPError:
                    pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"register demo did not start:\n{self.output(offset)}")

    def output(self, offset: int = 0) -> str:
        return self.log.read_bytes()[offset:].decode(errors="replace")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # Ctrl-C, as in the terminal running `make run`
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def run_shell(script: str, home: Path, state: Path, runner: Path, block: Block) -> Ran:
    path = home.parent / "block.sh"
    path.write_text(script, encoding="utf-8")
    proc = subprocess.run(["bash", str(runner), str(state), str(path)], cwd=home, env=clean_env(),
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=600)
    output, answers = split_answers(proc.stdout)
    return Ran(block, proc.returncode, output, answers)


def run_python(block: Block, home: Path) -> Ran:
    path = home.parent / "block.py"
    path.write_text(block.text, encoding="utf-8")
    proc = subprocess.run([str(VENV / "bin" / "python"), str(path)], cwd=home, env=clean_env(),
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=600)
    return Ran(block, proc.returncode, proc.stdout)


def banner_hints(banner: str) -> str:
    """The commands the banner suggests, as a shell script: the indented lines under "Try:" and under
    "With the institution CLI"."""
    hints, taking = [], False
    for line in banner.splitlines():
        if line.startswith(("Try:", "With the institution CLI")):
            taking = True
        elif taking and line.startswith("  "):
            hints.append(line.strip())
        elif not line.strip():
            taking = False
    return "\n".join(hints) + "\n"


@dataclass
class Walkthrough:
    home: Path
    first_banner: str
    hints: Ran
    ran: list[Ran]
    restart_banner: str
    held_after: object


@pytest.fixture(scope="module")
def walkthrough(tmp_path_factory: pytest.TempPathFactory) -> Walkthrough:
    if not (VENV / "bin" / "register-client").exists():
        pytest.fail(f"the README runs in an installed checkout, and {VENV} has no register-client: `make install`")
    blocks = readme_blocks()
    first = blocks.pop(0)
    commands = [line.split("#")[0].strip() for line in first.text.strip().splitlines()]
    assert commands == FIRST_BLOCK, "the README's first block changed: teach this test what it does"
    home = tmp_path_factory.mktemp("newcomer") / "checkout"
    home.mkdir()
    (home.parent / "user").mkdir()
    USER_HOME.append(home.parent / "user")
    (home / ".venv").symlink_to(VENV)
    runner, state = home.parent / "runner.sh", home.parent / "state.sh"
    runner.write_text(RUNNER, encoding="utf-8")
    state.write_text(CURL, encoding="utf-8")
    hints_state = home.parent / "hints-state.sh"
    hints_state.write_text(CURL, encoding="utf-8")
    demo = Demo(home, free_port())
    try:
        first_banner = demo.start()
        hints_block = Block("(make run's banner)", "sh", banner_hints(first_banner), 0)
        hints = run_shell(hints_block.text, home, hints_state, runner, hints_block)
        ran, section = [], None
        for block in blocks:
            if block.section != section:  # a reader may start here, in a fresh terminal's PATH
                section = block.section
                with open(state, "a", encoding="utf-8") as f:
                    f.write(f"export PATH={shlex.quote(clean_path())}\n")
            ran.append(run_python(block, home) if block.lang == "python" else
                       run_shell(block.text, home, state, runner, block))
        demo.stop()
        restart_banner = demo.start()
        engine = make_engine(f"sqlite:///{home / '.register' / 'register.db'}", pool_size=1)
        try:
            with make_sessionmaker(engine)() as session:
                held_after = count_contents(session)
        finally:
            engine.dispose()
    finally:
        demo.stop()
    return Walkthrough(home, first_banner, hints, ran, restart_banner, held_after)


def failure(ran: Ran) -> str:
    where = f"README.md line {ran.block.line}, section {ran.block.section!r}"
    return f"{where}: the {ran.block.lang} block exited {ran.code}\n--- block ---\n{ran.block.text}" \
           f"--- output (last 6000 characters) ---\n{ran.output[-6000:]}"


class TestTheReadmeAsANewcomerRunsIt:
    def test_every_block_runs_as_written(self, walkthrough):
        for ran in walkthrough.ran:
            if ran.code == 0:
                continue
            if ran.block.section in TOLERATED:
                warnings.warn(f"tolerated (TOLERATED in {Path(__file__).name}): {failure(ran)}", stacklevel=1)
                continue
            pytest.fail(failure(ran), pytrace=False)
        ran_sections = {ran.block.section for ran in walkthrough.ran}
        assert {"Report a debt with curl", "A dispute and a credit ban"} <= ran_sections  # the parse found them
        assert any(ran.block.lang == "python" for ran in walkthrough.ran if ran.block.section not in TOLERATED)

    def test_the_register_answered_as_the_readme_says(self, walkthrough):
        refusals = []
        for ran in walkthrough.ran:
            assert ran.block.section in TOLERATED or all(status < 500 and status != 0 for status, *_ in ran.answers), \
                failure(ran) + f"\nanswers: {ran.answers}"
            refusals += [(ran.block.section, method, path, status) for status, method, path in ran.answers
                         if status >= 400 and ran.block.section not in TOLERATED]
        assert refusals == EXPECTED_REFUSALS, "4xx answers the README does not announce"
        assert sum(len(ran.answers) for ran in walkthrough.ran) > 20

    def test_make_runs_hints_work_without_the_venv_on_path(self, walkthrough):
        hints = walkthrough.hints
        assert "register-client obligations list" in hints.block.text and ".venv/bin" not in clean_path()
        assert hints.code == 0, failure(hints)
        assert [status for status, *_ in hints.answers] == [200, 201, 200], hints.answers
        assert re.search(r"\d+ obligations", hints.output), hints.output
        assert re.search(r"^Data: 5 institutions, \d+ persons, \d+ obligations, \d+ open disputes \(loaded now\)",
                         walkthrough.first_banner, re.MULTILINE), walkthrough.first_banner

    def test_after_a_restart_it_says_what_the_data_now_holds(self, walkthrough):
        held = walkthrough.held_after
        said = re.search(r"^Data: (\d+) institutions, (\d+) persons, (\d+) obligations, (\d+) open disputes "
                         r"\(kept from an earlier start; to start afresh, stop the register and delete \.register\)",
                         walkthrough.restart_banner, re.MULTILINE)
        assert said, walkthrough.restart_banner
        assert tuple(map(int, said.groups())) == (held.institutions, held.persons, held.obligations,
                                                  held.open_disputes)
        first = re.search(r"^Data: (\d+) institutions, (\d+) persons, (\d+) obligations, (\d+) open disputes",
                          walkthrough.first_banner, re.MULTILINE)
        assert said.groups() != first.groups()  # the README changed the data: this is not the first count again

    def test_what_the_readme_made_in_the_checkout_is_git_ignored(self, walkthrough):
        made = sorted(p.name + ("/" if p.is_dir() else "") for p in walkthrough.home.iterdir() if p.name != ".venv")
        assert ".register/" in made and "pop/" in made and "regulator-state/" in made, made
        for name in made:
            ignored = subprocess.run(["git", "-C", str(ROOT), "check-ignore", "-q", "--no-index", name])
            assert ignored.returncode == 0, f"the README makes {name} in the checkout and git does not ignore it"
