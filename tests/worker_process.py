"""Real Celery worker processes for tests: started on a database URL, mail to an SMTP sink
(or to ``.eml`` files), killed and restarted as a crash would.

Shared by the worker tests (``tests/mesoclinic/test_real_worker.py``,
``tests/aftercare/test_outbox_worker.py``) and the fault suite (``tests/faults/``).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

ROOT = Path(__file__).resolve().parents[1]
CELERY_WORKER = [sys.executable, "-m", "celery", "-A", "mesoclinic", "worker", "-l", "info", "-c", "1"]
CELERY_WORKER += ["--without-gossip", "--without-mingle"]


def wait_for(predicate: Callable[[], bool], timeout: float, every: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(every)
    return predicate()


def current_database_url() -> str:
    """The URL of the database this test process uses (the test database)."""
    from django.db import connection

    db = connection.settings_dict
    host = quote(db["HOST"] or "localhost", safe="")
    password = f":{quote(db['PASSWORD'])}" if db["PASSWORD"] else ""
    return f"postgres://{db['USER']}{password}@{host}:{db['PORT'] or 5432}/{db['NAME']}"


def django_env(database_url: str, **extra: str) -> dict[str, str]:
    """The environment of a Django child process using ``database_url``."""
    env = {**os.environ, "DATABASE_URL": database_url, **extra}
    # Child processes are ordinary synchronous programs (the flag is for pytest's own loop).
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    return env


def broker_purge() -> None:
    """Empty this test run's queue on the broker (tasks left by an earlier test)."""
    from django.conf import settings

    from mesoclinic.celery import app as celery_app

    with celery_app.connection_for_write() as conn:
        conn.default_channel.queue_purge(settings.CELERY_TASK_DEFAULT_QUEUE)


def heartbeat_seen() -> bool:
    """The worker has started (its heartbeat row in the test database)."""
    from mesoclinic.models import Heartbeat

    return Heartbeat.objects.filter(component="worker").exists()


def heartbeat_clear() -> None:
    from mesoclinic.models import Heartbeat

    Heartbeat.objects.filter(component="worker").delete()


class CeleryWorker:
    """One ``celery worker`` process group on ``database_url``.

    Mail goes to ``sink`` (an SMTP server with ``host`` and ``port``) or, without one, to
    ``.eml`` files under ``folder/mail``. ``ready`` tells when the worker has started (its
    heartbeat row, read wherever that database is); ``reset`` clears that sign before each
    start. Defaults: the test database's heartbeat."""

    def __init__(
        self,
        folder: Path,
        database_url: str,
        sink: Any = None,
        ready: Callable[[], bool] = heartbeat_seen,
        reset: Callable[[], None] = heartbeat_clear,
        **extra_env: str,
    ) -> None:
        self.folder = folder
        self.database_url = database_url
        self.sink = sink
        self.ready = ready
        self.reset = reset
        self.extra_env = extra_env
        self.process: subprocess.Popen | None = None
        self.started = 0

    def _mail_env(self) -> dict[str, str]:
        if self.sink is None:
            return {"EMAIL_HOST": ""}
        return {
            "EMAIL_HOST": self.sink.host,
            "EMAIL_PORT": str(self.sink.port),
            "EMAIL_USE_TLS": "false",
            "EMAIL_USE_SSL": "false",
            "EMAIL_TIMEOUT": "10",
        }

    def start(self) -> None:
        from django.conf import settings

        self.started += 1
        self.reset()
        env = django_env(
            self.database_url,
            **self._mail_env(),
            EMAIL_FOLDER=str(self.folder / "mail"),
            PRIVATE_MEDIA_ROOT=str(self.folder / "private"),
            CELERY_QUEUE=settings.CELERY_TASK_DEFAULT_QUEUE,
            **self.extra_env,
        )
        log = (self.folder / f"worker-{self.started}.log").open("w")
        self.process = subprocess.Popen(
            [*CELERY_WORKER, "-n", f"test{self.started}-{os.getpid()}@%h"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            # Its own process group: a kill takes the pool child too, as a crash would.
            start_new_session=True,
        )
        log.close()
        assert wait_for(self.ready, timeout=90, every=0.25), self.log()

    def kill(self) -> None:
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def log(self) -> str:
        return "\n".join(path.read_text()[-3000:] for path in sorted(self.folder.glob("worker-*.log")))
