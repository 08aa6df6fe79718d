"""The layers hold (docs/ARCHITECTURE.md): import-linter's contracts in pyproject.toml are kept, each one
refuses the import it is there to refuse, and no file under clients/ imports the register.

`make test` runs `lint-imports` before pytest; this runs it again, so that a plain `pytest` fails too."""

from __future__ import annotations

import ast
import inspect
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"
CLIENTS = ROOT / "clients"
CLIENT_PACKAGES = {"register_client": CLIENTS / "register_client" / "src" / "register_client",
                   "register_verifier": CLIENTS / "register_verifier" / "src" / "register_verifier"}


def lint_imports(*args: str, cwd: Path = ROOT, pythonpath: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(pythonpath)} if pythonpath else None
    return subprocess.run([str(LINT_IMPORTS), "--no-cache", "--no-logo", str(ROOT / "pyproject.toml"), *args],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


class TestContracts:
    def test_every_contract_is_kept(self):
        result = lint_imports()
        assert result.returncode == 0, result.stdout + result.stderr
        assert "0 broken" in result.stdout


# Each contract, and an import that breaks it: (contract id, module file, the line added to it).
BREACHES = {
    "a route reads a table": ("storage-through-services", "register/api/routes/exposure.py",
                              "from register.storage.models import Person"),
    "a page writes its session row": ("storage-through-services", "register/web/pages.py",
                                      "from register.storage import web_sessions"),
    "a type-only import of a table": ("storage-through-services", "register/api/deps.py",
                                      "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                                      "    from register.storage.models import WebSession"),
    "the CLI names a table": ("tables", "register/cli.py", "from register.storage.models import Institution"),
    "a repository picks its database": ("dialects", "register/storage/exposure.py",
                                        "from register.storage.dialects import postgres"),
    "a use case picks its database": ("dialects", "register/services/bulk.py",
                                      "from register.storage.dialects.sqlite import SqliteStatements"),
    "storage calls a use case": ("storage", "register/storage/consents.py", "from register.services import me"),
    "a rule reads the settings": ("domain", "register/domain/consent.py", "from register.config import Settings"),
    "a rule encrypts": ("domain", "register/domain/currency.py", "import register.crypto.fields"),
    "a use case renders a page": ("services", "register/services/me.py", "from register.web import render"),
    "the log knows the domain": ("crypto-audit", "register/audit/leaf.py", "import register.domain.permission"),
    "a shared counter knows the tables": ("shared", "register/shared/memory.py",
                                          "from register.storage import quota"),
    "a route imports a route": ("routes", "register/api/routes/audit.py", "from register.api.routes import me"),
    "the document builds the app": ("app", "register/api/openapi.py", "from register.main import create_app"),
    "a cycle between two modules": ("acyclic", "register/api/deps.py", "import register.api.gate"),
    "the SDK imports the register": ("clients", "register_client/_models.py", "import register.errors"),
    "the verifier's tree imports the register": ("clients", "register_verifier/tree.py", "import register.errors"),
    "the register uses the verifier's HTTP client": ("verifier-core", "register/services/translog.py",
                                                     "from register_verifier.client import RegisterClient"),
}


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the register and the clients' packages, where an import can be added without touching the
    checkout."""
    base = tmp_path_factory.mktemp("layers")
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(ROOT / "register", base / "register", ignore=ignore)
    for name, src in CLIENT_PACKAGES.items():
        shutil.copytree(src, base / name, ignore=ignore)
    return base


class TestContractsRefuse:
    @pytest.mark.parametrize("breach", BREACHES, ids=list(BREACHES))
    def test_the_breach_breaks_its_contract(self, tree: Path, breach: str):
        contract, module, line = BREACHES[breach]
        path = tree / module
        kept = path.read_text()
        path.write_text(kept + "\n" + line + "\n")
        try:
            result = lint_imports("--contract", contract, cwd=tree, pythonpath=tree)
        finally:
            path.write_text(kept)
        assert result.returncode == 1, result.stdout + result.stderr
        assert "0 kept, 1 broken" in result.stdout, result.stdout
        assert Path(module).stem in result.stdout  # the report names the importer

    def test_the_copy_is_what_is_checked(self, tree: Path):
        """Without a breach the copy keeps every contract: the breaches above are what break them."""
        result = lint_imports(cwd=tree, pythonpath=tree)
        assert result.returncode == 0, result.stdout + result.stderr


def imported_names(path: Path) -> list[str]:
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.append(node.module)
        elif (isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", None))
              in ("import_module", "__import__") and node.args and isinstance(node.args[0], ast.Constant)):
            names.append(str(node.args[0].value))
    return names


class TestClientsStandAlone:
    """clients/ holds separate distributions that speak HTTP only: not one of their files, tests and
    scripts included, imports the register (`register_client` and `register_verifier` are their own)."""

    FILES = sorted(p for p in CLIENTS.rglob("*.py") if "egg-info" not in str(p))

    def test_there_are_files_to_check(self):
        assert len(self.FILES) > 20
        assert {p.relative_to(CLIENTS).parts[0] for p in self.FILES} == {"register_client", "register_verifier"}

    @pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(CLIENTS)))
    def test_no_file_imports_the_register(self, path: Path):
        offending = [n for n in imported_names(path) if n == "register" or n.startswith("register.")]
        assert not offending, f"{path.relative_to(ROOT)} imports {offending}"


class TestOneChoiceOfDatabase:
    """Where PostgreSQL and SQLite need different statements, each lives in one method of its database's
    `Statements` (register/storage/dialects/), chosen once in storage.db: no code in register/ asks at a
    call which database it is on."""

    ASKS = re.compile(r"is_pg\(|dialect\.name|get_bind\(\)\.dialect|\bdialect\s*==|==\s*[\"'](postgresql|sqlite)[\"']")

    def asking(self) -> list[str]:
        return [f"{path.relative_to(ROOT)}:{n}: {line.strip()}"
                for path in sorted((ROOT / "register").rglob("*.py"))
                for n, line in enumerate(path.read_text().splitlines(), 1) if self.ASKS.search(line)]

    def test_only_the_session_factory_asks(self):
        found = self.asking()
        assert len(found) == 1 and found[0].startswith("register/storage/db.py:"), found

    def test_a_branch_at_a_call_is_found(self, tmp_path: Path):
        """The guard sees the shapes such a branch takes (it is what it would have found before)."""
        for line in ('if session.get_bind().dialect.name == "postgresql":', "if fastpath.is_pg(session):",
                     'if dialect.name == "sqlite":', 'if bind.dialect.name != "postgresql":'):
            assert self.ASKS.search(line), line

    def test_both_databases_implement_every_statement(self):
        from register.storage.dialect import Statements
        from register.storage.dialects.postgres import PostgresStatements
        from register.storage.dialects.sqlite import SqliteStatements

        wanted = {n for n in vars(Statements) if not n.startswith("_")}
        assert len(wanted) >= 12
        for impl in (PostgresStatements, SqliteStatements):
            assert wanted <= {n for n in vars(impl) if not n.startswith("_")}, impl.__name__
            for name in wanted:
                assert inspect.signature(getattr(impl, name)) == inspect.signature(getattr(Statements, name)), name


class TestArchitecturePage:
    """docs/ARCHITECTURE.md names real modules: a file moved or split makes the page say so here."""

    PAGE = ROOT / "docs" / "ARCHITECTURE.md"

    def test_every_path_it_names_exists(self):
        named = set(re.findall(r"`((?:register|clients|migrations|tests)/[\w/.]*?)`", self.PAGE.read_text()))
        assert len(named) > 30
        missing = sorted(n for n in named if "<" not in n and not (ROOT / n).exists())
        assert not missing, missing
