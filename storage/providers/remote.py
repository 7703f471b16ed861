"""What the remote checks share: one urllib3 setup and what a transport failure means.

urllib3 and not httpx: the MinIO client is built on urllib3 (it takes a PoolManager),
so both remote checks use the same client library, timeouts and retry rule.
"""

from __future__ import annotations

import urllib3
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    MaxRetryError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
    SSLError,
)

from storage.providers import Outcome, failed, probe_budget


def pool(timeout: float) -> urllib3.PoolManager:
    """A client that never retries and gives up on any one call within the check's budget."""
    seconds = probe_budget(timeout)
    return urllib3.PoolManager(timeout=urllib3.Timeout(connect=seconds, read=seconds), retries=False)


def transport_failure(exc: HTTPError, where: str, timeout: float) -> Outcome:
    """The outcome for a call that got no HTTP answer from `where`."""
    reason = exc.reason if isinstance(exc, MaxRetryError) and exc.reason is not None else exc
    if isinstance(reason, NewConnectionError):  # before ConnectTimeoutError: urllib3 derives it from that
        if isinstance(reason.__cause__, ConnectionRefusedError) or "refused" in str(reason).lower():
            return failed(f"{where} refused the connection.")
        return failed(f"Could not connect to {where}.")
    if isinstance(reason, ConnectTimeoutError):
        return failed(f"{where} did not accept a connection within {timeout:g} s.")
    if isinstance(reason, ReadTimeoutError):
        return failed(f"{where} did not answer within {timeout:g} s.")
    if isinstance(reason, SSLError):
        return failed(f"TLS with {where} failed (does it speak HTTPS? see `secure`).")
    if isinstance(reason, ProtocolError):
        return failed(f"{where} closed the connection without an HTTP answer.")
    return failed(f"{where} could not be reached ({type(reason).__name__}).")
