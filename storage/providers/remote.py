"""What the remote checks share: one HTTP client per check, held to the check's deadline.

urllib3 and not httpx: the MinIO client is built on urllib3 (it takes a PoolManager), so both
remote checks use the same client library. A check's client (CheckClient):

- closes every socket it opened when the check's deadline passes (Deadline.expire), so a read
  blocked on an endpoint that drips its answer a byte at a time ends then, and so does the
  check's thread: a per-read timeout alone never fires against a drip;
- reads every answer body with a cap (MAX_ANSWER_BYTES) and never follows a redirect;
- resolves each host once and connects to the address it resolved (the Host header and TLS
  SNI keep the name); for a MinIO endpoint that address must be allowed (storage/addresses.py).
"""

from __future__ import annotations

import functools
import io
import socket
import threading
import time
from typing import Any

import urllib3
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    MaxRetryError,
    NameResolutionError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
    SSLError,
)
from urllib3.util.connection import create_connection

from storage.addresses import IPAddress, Unresolvable, allowed_address, resolve
from storage.providers import Outcome, failed

MAX_ANSWER_BYTES = 64 * 1024  # a check's answers are small JSON or XML documents


class AnswerTooLarge(HTTPError):
    """An answer body over MAX_ANSWER_BYTES (not read further)."""


class DeadlinePassed(HTTPError):
    """The check's deadline passed: no new connection is made."""

    def __init__(self) -> None:
        super().__init__("the check's deadline has passed")


class Deadline:
    """One check's deadline, and the sockets to close when it passes."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._ends = time.monotonic() + seconds
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self.expired = False

    def remaining(self) -> float:
        return max(self._ends - time.monotonic(), 0.0)

    def track(self, sock: socket.socket) -> None:
        with self._lock:
            if not self.expired:
                self._sockets.append(sock)
                return
        sock.close()
        raise DeadlinePassed()

    def expire(self) -> None:
        """Shut every socket down: a thread blocked reading one wakes with an error at once."""
        with self._lock:
            self.expired = True
            sockets = list(self._sockets)
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # closed already

    def close(self) -> None:
        """Close every socket (after expire(), once the check's thread has let go of them)."""
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            sock.close()


class _PinnedConnection:
    """A urllib3 connection to the address its CheckClient resolved for the host, not to a
    fresh lookup of it, tracked by the check's deadline."""

    def __init__(self, *args: Any, check_client: CheckClient, **kwargs: Any) -> None:
        self._check_client = check_client
        super().__init__(*args, **kwargs)

    def _new_conn(self) -> socket.socket:  # urllib3's one place that opens the socket
        client = self._check_client
        try:
            address = client.address(self.host, self.port)
        except Unresolvable as exc:
            raise NameResolutionError(self.host, self, socket.gaierror(str(exc))) from exc
        timeout = min(client.connect_timeout, client.deadline.remaining())
        try:
            sock = create_connection((str(address), self.port), timeout, socket_options=self.socket_options)
        except TimeoutError as exc:
            raise ConnectTimeoutError(self, f"Connection to {self.host} timed out.") from exc
        except OSError as exc:
            raise NewConnectionError(self, f"Failed to establish a new connection: {exc}") from exc
        client.deadline.track(sock)
        return sock


class PinnedHTTPConnection(_PinnedConnection, HTTPConnection):
    pass


class PinnedHTTPSConnection(_PinnedConnection, HTTPSConnection):
    pass


class CheckClient(urllib3.PoolManager):
    """The HTTP client of one check: never retries, never redirects, each call within the
    check's budget, bodies capped, connections pinned (and, when `confined`, only to allowed
    addresses), every socket closed by the deadline."""

    def __init__(self, deadline: Deadline, *, confined: bool, answer_headers: tuple[str, ...] = ()) -> None:
        seconds = probe_budget(deadline.seconds)
        super().__init__(timeout=urllib3.Timeout(connect=seconds, read=seconds), retries=False)
        self.deadline = deadline
        self.connect_timeout = seconds
        self.confined = confined
        self.answer_headers = answer_headers  # an answer with none of them is not the service's
        self._addresses: dict[tuple[str, int], IPAddress] = {}

    def address(self, host: str, port: int) -> IPAddress:
        """The one address host:port is connected to during this check."""
        host = host.strip("[]")  # urllib3 may keep an IPv6 literal's brackets
        key = (host, port)
        if key not in self._addresses:
            self._addresses[key] = allowed_address(host, port) if self.confined else resolve(host, port)[0]
        return self._addresses[key]

    def _new_pool(self, scheme: str, host: str, port: int, request_context: dict[str, Any] | None = None):
        pool = super()._new_pool(scheme, host, port, request_context)
        connection_class = PinnedHTTPSConnection if scheme == "https" else PinnedHTTPConnection
        pool.ConnectionCls = functools.partial(connection_class, check_client=self)
        return pool

    def urlopen(self, method: str, url: str, redirect: bool = True, **kw: Any) -> urllib3.BaseHTTPResponse:
        if self.deadline.expired:
            raise DeadlinePassed()
        kw["preload_content"] = False
        response = super().urlopen(method, url, redirect=False, **kw)
        try:
            if self.answer_headers and not any(header in response.headers for header in self.answer_headers):
                raise NotTheService(f"the answer has none of the headers {self.answer_headers}")
            body = read_capped(response)
        except BaseException:
            response.close()  # the rest of a body is never read, not even to reuse the connection
            raise
        response.release_conn()
        return urllib3.HTTPResponse(
            body=io.BytesIO(body),
            headers=response.headers,
            status=response.status,
            reason=response.reason,
            request_method=method,
            request_url=url,
            decode_content=False,
        )


class NotTheService(HTTPError):
    """An HTTP answer that is not from the kind of service the check expects."""


def read_capped(response: urllib3.BaseHTTPResponse, cap: int = MAX_ANSWER_BYTES) -> bytes:
    """The whole body, or AnswerTooLarge as soon as it is over `cap` bytes. Not decoded: a
    compressed body cannot grow past the cap either."""
    length = response.headers.get("Content-Length", "")
    if length.isdigit() and int(length) > cap:
        raise AnswerTooLarge(f"the answer announces {length} bytes")
    chunks, size = [], 0
    while chunk := response.read(min(cap + 1 - size, 16 * 1024), decode_content=False):
        chunks.append(chunk)
        size += len(chunk)
        if size > cap:
            raise AnswerTooLarge(f"the answer is over {cap} bytes")
    return b"".join(chunks)


def probe_budget(timeout: float) -> float:
    """Seconds one network call of a check may take: a little under the whole check's
    timeout, so that a silent endpoint is reported by the check that knows which it is."""
    return max(timeout * 0.9, 0.1)


def transport_failure(exc: HTTPError, where: str, timeout: float) -> Outcome:
    """The outcome for a call that got no usable HTTP answer from `where` (an operator-chosen
    service: the Yandex Disk API)."""
    reason = exc.reason if isinstance(exc, MaxRetryError) and exc.reason is not None else exc
    if isinstance(reason, AnswerTooLarge):
        return failed(f"{where} answered with more than {MAX_ANSWER_BYTES // 1024} KiB.")
    if isinstance(reason, NewConnectionError):  # before ConnectTimeoutError: urllib3 derives it from that
        if isinstance(reason.__cause__, ConnectionRefusedError) or "refused" in str(reason).lower():
            return failed(f"{where} refused the connection.")
        return failed(f"Could not connect to {where}.")
    if isinstance(reason, ConnectTimeoutError):
        return failed(f"{where} did not accept a connection within {timeout:g} s.")
    if isinstance(reason, ReadTimeoutError | DeadlinePassed):
        return failed(f"{where} did not answer within {timeout:g} s.")
    if isinstance(reason, SSLError):
        return failed(f"TLS with {where} failed (does it speak HTTPS? see `secure`).")
    if isinstance(reason, ProtocolError):
        return failed(f"{where} closed the connection without an HTTP answer.")
    return failed(f"{where} could not be reached ({type(reason).__name__}).")
