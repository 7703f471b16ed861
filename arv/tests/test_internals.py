"""Upgrade safety: the private Django/asgiref APIs ARV builds on are still what it expects."""

from __future__ import annotations

import asyncio
import concurrent.futures
import socket
import threading
import time

import pytest
import uvicorn
from asgiref.sync import ThreadSensitiveContext, sync_to_async
from django.core import checks

from arv.internals import INTERNALS, problems
from arv.pipeline import client_has_left
from testing.servers import free_port


def test_every_internal_arv_relies_on_is_there_with_its_signature():
    assert problems() == [], "\n".join(["A Django/asgiref/ServeStatic upgrade changed:", *problems()])


def test_manage_py_check_reports_them():
    assert not [message for message in checks.run_checks() if message.id == "arv.E001"]


def test_a_changed_signature_would_be_reported(monkeypatch):
    """The check can fail: a handler method taking other parameters is named in the problem."""
    from django.core.handlers.base import BaseHandler

    monkeypatch.setattr(BaseHandler, "make_view_atomic", lambda self, view, extra: view)
    assert any("make_view_atomic" in problem and "extra" in problem for problem in problems())
    assert len(INTERNALS) > 10


def test_thread_sensitive_calls_go_to_the_executor_a_context_names():
    """What arv.db.transaction.UnitOfWork.serve relies on: Django's async ORM calls sync_to_async
    (thread-sensitive); inside ThreadSensitiveContext(executor=E) they are submitted to E."""
    submitted = []

    class Recording(concurrent.futures.ThreadPoolExecutor):
        def submit(self, fn, /, *args, **kwargs):
            submitted.append(fn)
            return super().submit(fn, *args, **kwargs)

    async def main() -> tuple[int, int]:
        with Recording(max_workers=1, thread_name_prefix="unit") as executor:
            async with ThreadSensitiveContext(executor=executor):
                first = await sync_to_async(threading.get_ident)()
                second = await sync_to_async(threading.get_ident)()
        return first, second

    first, second = asyncio.run(main())
    assert len(submitted) == 2
    assert first == second != threading.get_ident()


@pytest.mark.parametrize("http", ["h11", "httptools"])
def test_one_step_of_uvicorns_receive_tells_whether_the_client_left(http):
    """What arv.pipeline.client_has_left relies on: once the body is read, uvicorn's receive()
    hands over the disconnect without suspending, and only suspends while the client is there."""
    seen: list[bool] = []
    done = threading.Event()

    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        await receive()  # the (empty) body
        for _ in range(500):
            seen.append(client_has_left(receive))
            if seen[-1]:
                break
            await asyncio.sleep(0.01)
        done.set()

    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, http=http, lifespan="off", log_level="error")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        for _ in range(100):
            if server.started:
                break
            time.sleep(0.05)
        with socket.create_connection(("127.0.0.1", port)) as client:
            client.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            time.sleep(0.2)
        assert done.wait(10)
    finally:
        server.should_exit = True
        thread.join(10)
    assert seen[0] is False and seen[-1] is True
