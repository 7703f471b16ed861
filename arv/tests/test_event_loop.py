"""arv.event_loop: the loop ARV is served on, and the start-up warning on any other."""

import asyncio
import socket

import pytest

from arv.event_loop import EventLoop


def nagle_off_on_accepted_connection(loop_factory) -> bool:
    """Serve a socket bound as `uvicorn --workers N` binds it (no protocol named) on a loop made
    by loop_factory; whether the connection it accepts has TCP_NODELAY."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)  # proto 0, as uvicorn's bind_socket
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    async def serve() -> bool:
        accepted: asyncio.Future[socket.socket] = asyncio.get_running_loop().create_future()

        class Accepting(asyncio.Protocol):
            def connection_made(self, transport):
                accepted.set_result(transport.get_extra_info("socket"))

        server = await asyncio.get_running_loop().create_server(Accepting, sock=listener)
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            connection = await asyncio.wait_for(accepted, 5)
            return bool(connection.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
        finally:
            writer.close()
            server.close()

    loop = loop_factory()
    try:
        return loop.run_until_complete(serve())
    finally:
        loop.close()


def test_accepted_connections_have_nagle_off_on_a_socket_uvicorn_bound():
    assert nagle_off_on_accepted_connection(EventLoop)


def test_asyncio_own_loop_leaves_nagle_on_there():
    # Why EventLoop exists: each answer would wait for the client's delayed ACK (~40 ms).
    assert not nagle_off_on_accepted_connection(asyncio.SelectorEventLoop)


@pytest.mark.django_db(transaction=True)
def test_startup_warns_when_served_on_another_loop(start_server):
    server = start_server(uvicorn_args=("--loop", "asyncio"))  # the later --loop wins
    server.terminate()
    assert "serving on asyncio.unix_events._UnixSelectorEventLoop: start uvicorn with --loop" in server.output()


@pytest.mark.django_db(transaction=True)
def test_startup_is_quiet_on_arvs_loop(start_server):
    server = start_server()
    server.terminate()
    assert "start uvicorn with --loop" not in server.output()
