"""The event loop to serve ARV on: `uvicorn arv.asgi:application --loop arv.event_loop:EventLoop`.

asyncio's own selector loop, for its fair order under load. uvicorn's default (`--loop auto`)
is uvloop when installed, and uvloop serves a saturated process unevenly: some requests wait
many rounds of the loop while others are served (a known uvloop behaviour, MagicStack/uvloop
#123). Measured on 2 cores at 128 connections, one process (bench/): p99 1.39-1.51 s against
p50 28 ms with ARV's stack and no database under uvloop, 72-77 ms under asyncio's loop at the
same throughput; the list endpoint p99 0.67-1.08 s against 0.25-0.27 s.

asyncio's loop alone has one flaw under `uvicorn --workers N`: uvicorn binds that socket itself
without naming its protocol, so asyncio does not see TCP and leaves Nagle's algorithm on for
every connection, and each answer (headers, then body) waits ~40 ms for the client's delayed
ACK (2 processes: 725 against 7,757 requests/s for a trivial app). EventLoop turns Nagle off
on the listening socket, which Linux passes on to every connection it accepts, and accepts a
few connections each time the socket is ready, so the processes share a burst of new connections.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from typing import Any

logger = logging.getLogger("arv")

# What to give uvicorn's --loop (bin/serve, the README, the tests' servers).
UVICORN_LOOP = "arv.event_loop:EventLoop"
# New connections a process accepts from the socket its --workers share, each time it is ready.
# asyncio's 100 let the first process to wake take a whole burst; 1 shared it out, but a process
# busy with the burst's first requests then took a round of its loop per connection, and those
# requests waited to be read (creates at 128 connections, 2 processes, alternating runs: p99
# 256-308 ms at 4 against 492-606 at 1, at the same throughput).
ACCEPTS_PER_WAKEUP = 4


class EventLoop(asyncio.SelectorEventLoop):
    async def create_server(
        self,
        protocol_factory: Any,
        host: Any = None,
        port: Any = None,
        *,
        sock: Any = None,
        backlog: int = 100,
        **kwargs: Any,
    ) -> Any:
        if sock is None:  # one process: uvicorn lets asyncio bind, and asyncio sees TCP
            return await super().create_server(protocol_factory, host, port, backlog=backlog, **kwargs)
        # A socket uvicorn bound for its --workers, shared by them all.
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        # asyncio accepts up to `backlog` connections each time the socket is ready: the first
        # process to wake took a whole burst of new connections (2 processes served at 1's
        # rate). A few a wake-up share them out; listen() then restores the kernel's queue.
        server = await super().create_server(protocol_factory, sock=sock, backlog=ACCEPTS_PER_WAKEUP, **kwargs)
        sock.listen(backlog)
        return server


def check_event_loop() -> None:
    """At start-up (arv.pipeline's lifespan): warn if the server runs on another loop."""
    loop = asyncio.get_running_loop()
    if not isinstance(loop, EventLoop):
        kind = type(loop)
        logger.warning(
            "serving on %s.%s: start uvicorn with --loop %s, the loop ARV is measured on "
            "(uvloop serves a saturated process unevenly; asyncio's own loop, under --workers, delays each answer)",
            kind.__module__,
            kind.__qualname__,
            UVICORN_LOOP,
        )
