"""Upgrade safety: the private Django/asgiref APIs ARV builds on are still what it expects."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading

from asgiref.sync import ThreadSensitiveContext, sync_to_async
from django.core import checks

from arv.internals import INTERNALS, problems


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
