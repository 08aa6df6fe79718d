"""register-verifier: the regulator's independent verifier of the debt register's audit log.

Talks to the register only over HTTP and imports nothing from the register's
own code.  Library use::

    from register_verifier import RegisterClient, State, run_verify

    with RegisterClient("https://register.example", token) as client:
        result = run_verify(client, State("/var/lib/register-verifier"), log_key=VKEY)
    print(result.summary())

:func:`run_verify` raises :class:`VerificationError` (with ``evidence``) when
the log misbehaves; see :mod:`register_verifier.verify` for the single checks.
"""

__version__ = "0.1.0"

from .client import (  # noqa: E402
    CheckpointResponse,
    ClientError,
    ConsistencyProof,
    HTTPStatusError,
    InclusionProof,
    LeafPage,
    LogKey,
    LogKeys,
    ProtocolError,
    RegisterClient,
    TransportError,
)
from .handover import Handover, KeyChain  # noqa: E402
from .evidence import verify_evidence  # noqa: E402
from .state import State, StateError  # noqa: E402
from .verify import (  # noqa: E402
    CompactRange,
    ConsistencyResult,
    FullResult,
    LeafResult,
    Receipt,
    ReceiptResult,
    ReceiptStatement,
    UsageError,
    VerificationError,
    VerifyResult,
    chain_from_state,
    find_first_bad_leaf,
    follow_handovers,
    load_receipt_file,
    open_checkpoint,
    open_checkpoint_in_chain,
    parse_receipt,
    parse_receipt_body,
    run_verify,
    verifier_from_log_key,
    verify_append_only,
    verify_checkpoint_response,
    verify_full,
    verify_leaf,
    verify_receipt,
)

__all__ = [
    "__version__",
    "verify_evidence",
    # client
    "RegisterClient",
    "LogKey",
    "LogKeys",
    "CheckpointResponse",
    "ConsistencyProof",
    "InclusionProof",
    "LeafPage",
    "ClientError",
    "TransportError",
    "HTTPStatusError",
    "ProtocolError",
    # state
    "State",
    "StateError",
    # verification
    "VerificationError",
    "UsageError",
    "VerifyResult",
    "ConsistencyResult",
    "LeafResult",
    "FullResult",
    "Receipt",
    "ReceiptStatement",
    "ReceiptResult",
    "CompactRange",
    "run_verify",
    "verifier_from_log_key",
    "open_checkpoint",
    "verify_checkpoint_response",
    "verify_append_only",
    "verify_leaf",
    "verify_full",
    "find_first_bad_leaf",
    "parse_receipt",
    "parse_receipt_body",
    "load_receipt_file",
    "verify_receipt",
    # log-key handovers
    "Handover",
    "KeyChain",
    "chain_from_state",
    "follow_handovers",
    "open_checkpoint_in_chain",
]
