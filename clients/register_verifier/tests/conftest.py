"""Make ``register_verifier`` importable from ``clients/register_verifier/src``.

The verifier is independent of the register: nothing here (or in the package)
may import from ``register``.
"""

import pathlib
import sys

SRC = pathlib.Path(__file__).resolve().parents[1] / "src"
if str(SRC) not in sys.path:
    sys.path.insert(0, str(SRC))
