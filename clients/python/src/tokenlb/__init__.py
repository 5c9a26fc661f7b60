"""tokenlb: the Python client of the tokenlb token manager (DESIGN §12).

Lease a token from the manager, use it, report how it went, and retry on another token when
it fails; the seed's ``token_client.py`` done right, sync and asyncio::

    from tokenlb import Client

    with Client("http://127.0.0.1:8000", key="…", pool="wopan") as client:
        with client.lease() as lease:          # success on a clean exit
            call_upstream(lease.token)
        body = client.call(lambda lease: fetch(lease.token))  # retried on another token

Successes are reported in batches in the background, failures at once; ``close()`` delivers
what is queued. While the manager is unreachable the client keeps going for a bounded grace
period with the tokens it used last, and recovers by itself.
"""

from ._async import AsyncClient, AsyncLease
from ._common import ClientStatus
from ._outcome import Classified, Outcome, is_retryable
from ._sync import Client, Lease
from .drive import AsyncDrive, Drive, DriveError
from .classify import (
    UpstreamError,
    WopanError,
    classify_exception,
    classify_http_response,
    classify_http_status,
    classify_wopan,
    raise_for_wopan,
    retry_after_from_headers,
    wopan_code_outcome,
    wopan_http_outcome,
)
from .errors import (
    AlreadyReported,
    ConfigError,
    ManagerUnreachable,
    NoTokenAvailable,
    ProtocolError,
    Rejected,
    RetriesExhausted,
    TokenlbError,
    Unauthorized,
)

__version__ = "0.1.0"

__all__ = [
    "AlreadyReported",
    "AsyncClient",
    "AsyncDrive",
    "AsyncLease",
    "Classified",
    "Client",
    "ClientStatus",
    "ConfigError",
    "Drive",
    "DriveError",
    "Lease",
    "ManagerUnreachable",
    "NoTokenAvailable",
    "Outcome",
    "ProtocolError",
    "Rejected",
    "RetriesExhausted",
    "TokenlbError",
    "Unauthorized",
    "UpstreamError",
    "WopanError",
    "classify_exception",
    "classify_http_response",
    "classify_http_status",
    "classify_wopan",
    "is_retryable",
    "raise_for_wopan",
    "retry_after_from_headers",
    "wopan_code_outcome",
    "wopan_http_outcome",
]
