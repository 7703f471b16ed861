"""Real servers for tests: uvicorn in a thread of the test process, or in a process of its own."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx
import uvicorn

from arv.event_loop import UVICORN_LOOP

PROJECT_DIR = Path(__file__).resolve().parents[1]


def in_fresh_django(code: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    """Python `code`, run after django.setup() in a fresh process with arv.settings and only
    `env` set: nothing of the test process's environment, and not the project's .env
    (bin/serve writes one; ARV_ENV_FILE is /dev/null unless env names another)."""
    base = {"PATH": "/usr/bin:/bin", "DJANGO_SETTINGS_MODULE": "arv.settings", "ARV_ENV_FILE": os.devnull}
    return subprocess.run(
        [sys.executable, "-c", f"import django; django.setup(); {code}"],
        cwd=PROJECT_DIR,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_http(url: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            httpx.get(url, timeout=2)
            return
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


@contextmanager
def uvicorn_in_thread() -> Iterator[str]:
    """ARV's pipeline under uvicorn on a free port, sharing this process's settings and test database.

    Without the guard against connections outside database workers: this process's own
    threads (pytest's) use the database too. Servers in their own process have it.
    """
    from arv.pipeline import Pipeline

    application = Pipeline(guard_connections=False)

    port = free_port()
    config = uvicorn.Config(
        application, host="127.0.0.1", port=port, lifespan="on", log_level="warning", loop=UVICORN_LOOP
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    wait_for_http(url + "/api/openapi.json")
    try:
        yield url
    finally:
        server.should_exit = True
        thread.join(15)


class UvicornProcess:
    """`uvicorn arv.asgi:application` as an operator runs it, with its own environment: the
    product's settings (arv.settings) unless env names testing.settings for the test views."""

    def __init__(
        self, env: dict[str, str], workers: int = 1, log_path: Path | None = None, args: Sequence[str] = ()
    ) -> None:
        """args: more uvicorn options, e.g. ("--root-path", "/arv")."""
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self._log = open(log_path, "wb") if log_path else subprocess.DEVNULL
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "arv.asgi:application",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--workers",
                str(workers),
                "--no-access-log",
                "--loop",
                UVICORN_LOOP,
                "--timeout-graceful-shutdown",
                "20",
                *args,
            ],
            cwd=PROJECT_DIR,
            env={**os.environ, "DJANGO_SETTINGS_MODULE": "arv.settings", **env},
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stop() reaches --workers children too
        )
        try:
            wait_for_http(self.url + "/api/openapi.json")
        except Exception:
            self.stop()
            raise

    def output(self) -> str:
        return self.log_path.read_text() if self.log_path else ""

    def terminate(self, timeout: float = 30.0) -> int:
        """SIGTERM, as a process manager stops it; returns the exit code."""
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)

    def stop(self) -> None:
        """Stop the server and every process it started, gracefully if it will."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(self.process.pid, signal.SIGKILL)  # any worker left behind
        except ProcessLookupError:
            pass
        self.process.wait(10)
        if self._log is not subprocess.DEVNULL:
            self._log.close()
