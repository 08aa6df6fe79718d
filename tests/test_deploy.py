"""The production files, checked without Docker: docker-compose.yml parsed as YAML, the Dockerfile and
requirements.lock as text. What `docker compose up` would do is in README ("Running in production")."""

from __future__ import annotations

import importlib.util
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from register.config import SECRET_FILES, Settings

ROOT = Path(__file__).resolve().parents[1]
SECRET_WORDS = re.compile(r"PASSWORD|TOKEN|SECRET|KEY|DATABASE_URL", re.IGNORECASE)
SECRET_SHAPES = [
    re.compile(r"[a-z+]+://[^/\s:@]+:[^/\s@]+@"),  # a URL with a password in it
    re.compile(r"\brgt_[A-Za-z0-9_-]{20,}"),  # an institution token
    re.compile(r"[A-Za-z0-9+/_-]{40,}={0,2}"),  # base64 key material
    re.compile(r"BEGIN [A-Z ]*PRIVATE KEY"),
]


# The lines an operator uncomments to let persons sign in to the pages with the national e-ID (OIDC).
E_ID_LINES = re.compile(r"^(\s*)# ((?:REGISTER_OIDC_\w+:|- oidc_client_secret$|oidc_client_secret:$|"
                        r"  file: \./secrets/oidc_client_secret$).*)$", re.MULTILINE)


def with_e_id_sign_in(text: str) -> str:
    return E_ID_LINES.sub(r"\1\2", text)


@pytest.fixture(scope="module", params=["as shipped", "with e-ID sign-in uncommented"])
def compose(request: pytest.FixtureRequest) -> dict[str, Any]:
    """The compose file as shipped, and as an operator who uncommented the e-ID sign-in has it: every
    check below holds for both."""
    text = (ROOT / "docker-compose.yml").read_text(encoding="utf-8")
    return yaml.safe_load(text if request.param == "as shipped" else with_e_id_sign_in(text))


@pytest.fixture(scope="module")
def dockerfile() -> str:
    return (ROOT / "Dockerfile").read_text(encoding="utf-8")


def instructions(dockerfile: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    kept = "\n".join(line for line in dockerfile.splitlines() if not line.lstrip().startswith("#"))
    text = re.sub(r"\\\n\s*", " ", kept)
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in text.splitlines() if line.strip()]


def load_lock_script():
    spec = importlib.util.spec_from_file_location("lock", ROOT / "scripts" / "lock.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def locked() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "requirements.lock").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#") and not line.startswith("./"):
            name, sep, version = line.partition("==")
            assert sep and re.fullmatch(r"[0-9][0-9A-Za-z.+!-]*", version), f"not an exact pin: {line!r}"
            pins[canonicalize_name(name)] = version
    return pins


class TestCompose:
    def test_services(self, compose):
        assert {n for n, s in compose["services"].items() if "profiles" not in s} == {"db", "migrate", "register"}

    def test_the_database_is_postgresql_16_with_a_volume_and_a_health_check(self, compose):
        db = compose["services"]["db"]
        assert db["image"].startswith("postgres:16")
        assert "pg_isready" in " ".join(db["healthcheck"]["test"])
        assert any(v.endswith(":/var/lib/postgresql/data") for v in db["volumes"])
        assert db["volumes"][0].split(":")[0] in compose["volumes"]
        assert "ports" not in db  # reachable only on the compose network

    def test_migrations_run_once_after_the_database_is_healthy(self, compose):
        migrate = compose["services"]["migrate"]
        assert migrate["command"] == ["db", "upgrade"]
        assert migrate["depends_on"]["db"]["condition"] == "service_healthy"
        assert migrate["restart"] == "no"

    def test_the_register_starts_after_migrations_succeeded_and_has_a_health_check(self, compose):
        register = compose["services"]["register"]
        assert register["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        assert register["depends_on"]["db"]["condition"] == "service_healthy"
        assert register["command"][0] == "serve"
        assert "/healthz" in " ".join(register["healthcheck"]["test"])
        assert register["ports"] and register["environment"]["REGISTER_ENV"] == "prod"

    def test_both_register_services_build_this_image(self, compose):
        for name in ("migrate", "register"):
            assert compose["services"][name]["build"] == "."

    def test_secrets_are_mounted_files_under_secrets(self, compose):
        for name, secret in compose["secrets"].items():
            assert secret == {"file": f"./secrets/{name}"}
        for name, service in compose["services"].items():
            env = service.get("environment", {})
            for key, value in env.items():
                if key.endswith("_FILE") or value.startswith("/run/secrets/"):
                    assert value.startswith("/run/secrets/"), f"{name}.{key}"
                    assert value.removeprefix("/run/secrets/") in service["secrets"], f"{name}.{key}: not mounted"
            assert set(service.get("secrets", [])) <= set(compose["secrets"])

    def test_every_register_secret_comes_from_a_file(self, compose):
        env = compose["services"]["register"]["environment"]
        for name in SECRET_FILES:
            assert f"REGISTER_{name.upper()}_FILE" in env
            assert f"REGISTER_{name.upper()}" not in env

    def test_the_file_variables_are_settings_the_register_reads(self, compose):
        fields = set(Settings.model_fields)
        for service in ("migrate", "register"):
            for key in compose["services"][service]["environment"]:
                assert key.removeprefix("REGISTER_").lower() in fields, key

    def test_no_secret_values_in_the_file(self, compose):
        for name, service in compose["services"].items():
            for key, value in service.get("environment", {}).items():
                if SECRET_WORDS.search(key):
                    from_file = key.endswith("_FILE") or str(value).startswith("/run/secrets/")
                    assert from_file, f"{name}.{key} holds a value: mount it as a secret and name the file"
        text = (ROOT / "docker-compose.yml").read_text(encoding="utf-8")
        for shape in SECRET_SHAPES:
            assert not shape.search(text), f"docker-compose.yml contains something like a secret: {shape.pattern}"

    def test_secrets_stay_out_of_git_and_of_the_build_context(self):
        assert "/secrets/" in (ROOT / ".gitignore").read_text(encoding="utf-8").split()
        ignore = [line for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
                  if line.strip() and not line.startswith("#")]  # fmt: skip
        assert ignore[0] == "*"  # an allowlist: nothing goes into the build context unless named
        assert not any(entry.startswith("!secrets") for entry in ignore)


@pytest.fixture(scope="module")
def register() -> dict[str, Any]:
    """docker-compose.yml with the e-ID sign-in uncommented."""
    return yaml.safe_load(with_e_id_sign_in((ROOT / "docker-compose.yml").read_text(encoding="utf-8")))


class TestEIdSignInForThePages:
    """In production (REGISTER_ENV=prod) the person's pages have no development sign-in: without the
    REGISTER_OIDC_* settings nobody can sign in. The compose file carries them, commented, ready to fill in."""

    def test_the_settings_are_there_to_uncomment(self, register):
        env = register["services"]["register"]["environment"]
        shipped = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
        assert not any(k.startswith("REGISTER_OIDC_") for k in shipped["services"]["register"]["environment"])
        assert {"REGISTER_OIDC_ISSUER", "REGISTER_OIDC_CLIENT_ID", "REGISTER_OIDC_REDIRECT_URL",
                "REGISTER_OIDC_CLIENT_SECRET_FILE"} <= set(env)
        assert env["REGISTER_OIDC_REDIRECT_URL"].endswith("/app/sign-in/callback")

    def test_the_client_secret_is_a_mounted_file(self, register):
        env = register["services"]["register"]["environment"]
        assert "REGISTER_OIDC_CLIENT_SECRET" not in env
        assert env["REGISTER_OIDC_CLIENT_SECRET_FILE"] == "/run/secrets/oidc_client_secret"
        assert "oidc_client_secret" in register["services"]["register"]["secrets"]
        assert register["secrets"]["oidc_client_secret"] == {"file": "./secrets/oidc_client_secret"}

    def test_the_register_takes_them_and_offers_e_id_sign_in(self, register, tmp_path):
        secret = tmp_path / "oidc_client_secret"
        secret.write_text("the provider's secret\n")
        env = {k: v for k, v in register["services"]["register"]["environment"].items() if "OIDC" in k}
        fields = {k.removeprefix("REGISTER_").lower(): v for k, v in env.items()}
        settings = Settings(**fields | {"oidc_client_secret_file": secret})
        assert settings.oidc_enabled and settings.oidc_client_secret.get_secret_value() == "the provider's secret"


class TestDockerfile:
    def test_base_image_is_python_311_slim_pinned_to_a_patch_release(self, dockerfile):
        default = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", dockerfile, re.MULTILINE)
        assert default and re.fullmatch(r"python:3\.11\.\d+-slim(-[a-z]+)?(@sha256:[0-9a-f]{64})?", default[1])
        assert [args for op, args in instructions(dockerfile) if op == "FROM"] == ["${PYTHON_IMAGE}"]

    def test_runs_as_a_non_root_user(self, dockerfile):
        users = [args for op, args in instructions(dockerfile) if op == "USER"]
        assert users and users[-1].split(":")[0] not in ("root", "0")

    def test_installs_exactly_the_lock(self, dockerfile):
        runs = " ".join(args for op, args in instructions(dockerfile) if op == "RUN")
        assert "pip install --no-deps -r /tmp/requirements.lock" in runs
        assert "pip check" in runs
        assert re.search(r"pip install(?! --no-deps -r /tmp/requirements.lock)", runs) is None  # nothing unpinned

    def test_health_check_and_command(self, dockerfile):
        ops = dict(instructions(dockerfile))
        assert "/healthz" in ops["HEALTHCHECK"] or "/livez" in ops["HEALTHCHECK"]
        assert ops["ENTRYPOINT"] == '["python", "-m", "register.cli"]'
        assert ops["CMD"].startswith('["serve"')

    def test_copies_what_db_upgrade_needs(self, dockerfile):
        copied = " ".join(args for op, args in instructions(dockerfile) if op == "COPY")
        for path in ("alembic.ini", "migrations", "register", "requirements.lock"):
            assert path in copied
        allowed = (ROOT / ".dockerignore").read_text(encoding="utf-8").split()
        for path in ("alembic.ini", "migrations/", "register/", "requirements.lock"):
            assert f"!{path}" in allowed


class TestLock:
    def test_pins_every_runtime_dependency_within_pyproject_bounds(self):
        pins = locked()
        project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
        for line in project["dependencies"]:
            req = Requirement(line)
            name = canonicalize_name(req.name)
            assert name in pins, f"{name} is not in requirements.lock: run `make lock`"
            assert req.specifier.contains(pins[name], prereleases=True), f"{name}=={pins[name]} outside {req.specifier}"

    def test_holds_the_whole_closure_and_nothing_else(self):
        lock = load_lock_script()
        needed = lock.resolve(lock.runtime_requirements())
        assert set(locked()) == set(needed), "requirements.lock is not the runtime closure: run `make lock`"

    def test_installs_the_verifier_from_the_repository_never_an_index(self):
        """The register imports its Merkle tree and signed notes from register_verifier: a package index must
        never be asked for it, so that a look-alike package cannot stand in for it."""
        lines = (ROOT / "requirements.lock").read_text(encoding="utf-8").splitlines()
        assert "./clients/register_verifier" in lines
        assert "register-verifier" not in locked()
        project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
        assert not any(canonicalize_name(Requirement(r).name) == "register-verifier" for r in project["dependencies"])
        assert "-e clients/register_verifier" in (ROOT / "Makefile").read_text(encoding="utf-8")

    def test_has_no_test_or_tool_dependencies(self):
        assert not {"pytest", "hypothesis", "pyyaml", "ruff", "setuptools", "pip"} & set(locked())


class TestHAProfile:
    """`docker compose --profile ha up -d haproxy` (SPEC.md, "Many machines"): etcd, three PostgreSQL under
    Patroni with synchronous replication, two register hosts with the same keys, HAProxy in front."""

    def test_the_profile_holds_the_topology_and_haproxy_starts_all_of_it(self, compose):
        services = compose["services"]
        ha = {n for n, s in services.items() if "ha" in s.get("profiles", [])}
        assert ha == {"etcd", "pg1", "pg2", "pg3", "migrate-ha", "register-1", "register-2", "haproxy"}

        def needs(name: str) -> set[str]:
            direct = set(services[name].get("depends_on", {}))
            return direct.union(*(needs(d) for d in direct)) if direct else set()
        assert needs("haproxy") == ha - {"haproxy"}

    def test_patroni_is_synchronous_strict_with_pg_rewind_and_a_short_ttl(self, compose):
        patroni = yaml.safe_load(compose["configs"]["patroni"]["content"])
        dcs = patroni["bootstrap"]["dcs"]
        assert dcs["synchronous_mode"] is True and dcs["synchronous_mode_strict"] is True
        assert dcs["postgresql"]["use_pg_rewind"] is True
        assert dcs["ttl"] + dcs["loop_wait"] < 30 and dcs["retry_timeout"] < dcs["ttl"]
        assert "etcd:2379" in str(patroni["etcd3"]["hosts"])
        for name in ("pg1", "pg2", "pg3"):
            service = compose["services"][name]
            assert service["environment"]["PATRONI_NAME"] == name
            assert any(v.startswith(f"{name}data:") for v in service["volumes"])
            assert "db_password" in service["secrets"]

    def test_the_register_hosts_share_keys_and_use_the_multi_host_url(self, compose):
        hosts = [compose["services"][n] for n in ("register-1", "register-2")]
        for host in hosts:
            env = host["environment"]
            assert env["REGISTER_DATABASE_URL_FILE"] == "/run/secrets/database_url_ha"
            for name in SECRET_FILES:
                assert f"REGISTER_{name.upper()}_FILE" in env
            assert "/healthz" in " ".join(host["healthcheck"]["test"])
        assert hosts[0]["environment"] == hosts[1]["environment"]

    def test_haproxy_checks_the_hosts_and_the_primary_through_patroni(self, compose):
        config = compose["configs"]["haproxy"]["content"]
        assert "server register-1 register-1:8000 check" in config
        assert "server register-2 register-2:8000 check" in config
        assert "option httpchk GET /primary" in config
        assert all(f"server {n} {n}:5432 check port 8008" in config for n in ("pg1", "pg2", "pg3"))


class TestPackageData:
    def test_every_file_beside_the_code_goes_into_the_wheel(self):
        """A page template, style sheet or catalogue that no package-data pattern names works from a checkout and
        is missing from an installed wheel (the desk's templates in templates/regulator/ were, once)."""
        import subprocess
        from fnmatch import fnmatchcase

        tracked = subprocess.run(["git", "ls-files", "register"], cwd=ROOT, capture_output=True, text=True,
                                 check=True).stdout.split()
        if not tracked:
            pytest.skip("not a git checkout")
        patterns = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"][
            "package-data"]
        missing = []
        for path in (p for p in tracked if not p.endswith(".py")):
            package_dir = Path(path).parent
            named = False
            while package_dir != Path(".") and not named:
                globs = patterns.get(".".join(package_dir.parts), [])
                inside = Path(path).relative_to(package_dir).as_posix()
                # setuptools' globs do not cross "/" with "*": match part by part.
                named = any(len(g.split("/")) == len(inside.split("/"))
                            and all(fnmatchcase(a, b) for a, b in zip(inside.split("/"), g.split("/")))
                            for g in globs)
                package_dir = package_dir.parent
            if not named:
                missing.append(path)
        assert missing == []
