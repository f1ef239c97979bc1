"""A real SMTP server on loopback for the outbox's tests and benchmark (aiosmtpd in a thread).

It records what it accepts (a message counts as delivered only once the server answers
250 to its DATA, as a real server would), and can be told to answer ``451`` to the next N
messages, to refuse a recipient with ``550``, or to take some time over each message.
A client that disconnects before the 250 (a killed worker) delivers nothing.

Tests use it as a fixture through ``running_sink(settings)``, which also points Django's
SMTP backend at the sink; ``sink_serve`` runs one in a child process for the benchmark.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import logging
import re
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller

# aiosmtpd logs every command at INFO: thousands of lines per test.
logging.getLogger("mail.log").setLevel(logging.WARNING)

MESSAGE_ID = re.compile(rb"^Message-ID:\s*(\S+)", re.I | re.M)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class SmtpSink:
    """The handler and its controller. Thread-safe counters; messages parsed on demand."""

    def __init__(self, *, delay: float = 0.0, keep: bool = True) -> None:
        self.delay = delay
        self.keep = keep
        self.port = free_port()
        self.host = "127.0.0.1"
        self._lock = threading.Lock()
        self._raw: list[bytes] = []
        self._ids: Counter[str] = Counter()
        self._total = 0
        self._peers: set[Any] = set()
        self._temporary_left = 0
        self._temporary_code = 451
        self._refused: dict[str, int] = {}
        self.data_started = 0
        # Called with the message's bytes when its DATA arrives, before the 250 (tests
        # look at the database at that moment).
        self.on_data: Callable[[bytes], None] | None = None
        self.temporary_answered = 0
        self.refused_answered = 0
        self._controller = Controller(self, hostname=self.host, port=self.port, ready_timeout=10)

    # -- control -------------------------------------------------------------------------
    def start(self) -> SmtpSink:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    def fail_next(self, count: int, code: int = 451) -> None:
        """Answer ``code`` (a temporary error by default) to the DATA of the next ``count`` messages."""
        with self._lock:
            self._temporary_left, self._temporary_code = count, code

    def refuse(self, recipient: str, code: int = 550) -> None:
        with self._lock:
            self._refused[recipient.lower()] = code

    def reset(self) -> None:
        with self._lock:
            self._raw.clear()
            self._ids.clear()
            self._total = 0
            self._peers.clear()
            self.data_started = 0

    # -- what arrived --------------------------------------------------------------------
    @property
    def total(self) -> int:
        with self._lock:
            return self._total

    @property
    def connections(self) -> int:
        """How many client connections delivered at least one message."""
        with self._lock:
            return len(self._peers)

    def message_ids(self) -> Counter[str]:
        """How many times each Message-ID was delivered."""
        with self._lock:
            return Counter(self._ids)

    def messages(self) -> list[EmailMessage]:
        with self._lock:
            raw = list(self._raw)
        return [email.message_from_bytes(item, policy=email.policy.default) for item in raw]  # type: ignore[misc]

    def wait_for(self, count: int, timeout: float = 30.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.total >= count:
                return True
            time.sleep(0.02)
        return self.total >= count

    # -- aiosmtpd hooks ------------------------------------------------------------------
    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list) -> str:
        with self._lock:
            code = self._refused.get(address.lower())
            if code:
                self.refused_answered += 1
        if code:
            return f"{code} 5.1.1 <{address}>: recipient refused"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self._lock:
            self.data_started += 1
            temporary = self._temporary_left > 0
            if temporary:
                self._temporary_left -= 1
                self.temporary_answered += 1
                code = self._temporary_code
        if temporary:
            return f"{code} 4.3.0 try again later"
        if self.delay:
            # Cancelled if the client goes away meanwhile: nothing is recorded, as a real
            # server discards a transaction it never acknowledged.
            await asyncio.sleep(self.delay)
        content: bytes = envelope.original_content or envelope.content
        if self.on_data is not None:
            self.on_data(content)
        found = MESSAGE_ID.search(content)
        with self._lock:
            self._total += 1
            self._peers.add(session.peer)
            self._ids[found.group(1).decode() if found else f"none-{self._total}"] += 1
            if self.keep:
                self._raw.append(content)
        return "250 2.0.0 OK: queued"


def point_django_at(settings: Any, sink: SmtpSink) -> None:
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = sink.host
    settings.EMAIL_PORT = sink.port
    settings.EMAIL_HOST_USER = ""
    settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_USE_TLS = False
    settings.EMAIL_USE_SSL = False
    settings.EMAIL_TIMEOUT = 10


@contextmanager
def running_sink(settings: Any, **options: Any) -> Iterator[SmtpSink]:
    """A running sink, with Django's mail going to it through the real SMTP backend
    (``settings`` is pytest-django's fixture, which undoes the change after the test)."""
    sink = SmtpSink(**options).start()
    point_django_at(settings, sink)
    try:
        yield sink
    finally:
        sink.stop()


def sink_serve(port: int, pipe: Any) -> None:
    """Child-process entry point for the benchmark: serves until told "stop" on ``pipe``;
    answers "count" with (total, distinct Message-IDs) and "reset" by clearing."""
    sink = SmtpSink(keep=False)
    sink.port = port
    sink._controller = Controller(sink, hostname=sink.host, port=port, ready_timeout=10)
    sink.start()
    pipe.send("ready")
    while True:
        command = pipe.recv()
        if command == "count":
            ids = sink.message_ids()
            pipe.send((sink.total, len(ids)))
        elif command == "reset":
            sink.reset()
            pipe.send("ok")
        else:
            sink.stop()
            pipe.send("stopped")
            return
