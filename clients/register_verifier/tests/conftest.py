"""Make ``register_verifier`` importable from ``clients/register_verifier/src``.

The verifier is independent of the register: nothing here (or in the package)
may import from ``register``.  ``fake_register`` (a fake register served via
``httpx.MockTransport``) lives next to the tests.
"""

import pathlib
import sys

SRC = pathlib.Path(__file__).resolve().parents[1] / "src"
TESTS = pathlib.Path(__file__).resolve().parent
for path in (SRC, TESTS):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

import pytest  # noqa: E402

from fake_register import FakeRegister  # noqa: E402
from register_verifier.state import State  # noqa: E402
from register_verifier.verify import run_verify  # noqa: E402


@pytest.fixture
def fake() -> FakeRegister:
    """An honest fake register with 8 logged accesses and a signed checkpoint."""
    return FakeRegister(leaves=8)


@pytest.fixture
def state_dir(tmp_path):
    return tmp_path / "state"


@pytest.fixture
def verify(fake, state_dir):
    """``verify(**kw)``: run_verify against the fake, pinned to its key, clock = the fake's clock."""

    def run(*, register=None, state=None, **kw):
        reg = register or fake
        kw.setdefault("log_key", reg.vkey)
        kw.setdefault("now", lambda: reg.clock)
        with reg.client() as client:
            return run_verify(client, State(state or state_dir), **kw)

    return run
