"""The outbox through real Celery workers, the real broker and a real SMTP server: a worker
killed in the middle of a batch, and Redis restarted while mail is going out.

The worker processes read the test database, so these tests commit. The SMTP sink runs in
this process and takes a moment over each message, so a batch lasts a few seconds and
the kill lands while the server holds a message it has not acknowledged yet.
Run with REDIS_URL (e.g. redis://127.0.0.1:6379/11) for the Redis broker; the Redis
restart test needs it and a local ``redis-server`` it may stop and start.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.db.models import Count
from django.utils import timezone

from aftercare.models import OutboundMessage
from aftercare.services import message_header_id, message_sweep_due
from aftercare.services.sending import CLAIM_CHUNK
from tests.aftercare.smtp_sink import SmtpSink
from tests.worker_process import CeleryWorker, broker_purge, current_database_url, wait_for

REDIS_SERVER = ["redis-server", "--daemonize", "yes", "--bind", "127.0.0.1", "--port", "6379"]
REDIS_SERVER += ["--save", "", "--appendonly", "no"]
Status = OutboundMessage.Status
pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    sink = SmtpSink(delay=0.25, keep=False).start()
    try:
        yield sink
    finally:
        sink.stop()


@pytest.fixture
def worker(tmp_path: Path, sink: SmtpSink, settings: object) -> Iterator[CeleryWorker]:
    # Short leases so that recovery happens within the test; the sweeps run in this process.
    settings.OUTBOX_BATCH_SIZE = 10  # type: ignore[attr-defined]
    settings.OUTBOX_SENDING_LEASE_SECONDS = 2  # type: ignore[attr-defined]
    settings.OUTBOX_QUEUED_LEASE_SECONDS = 2  # type: ignore[attr-defined]
    broker_purge()
    worker = CeleryWorker(tmp_path, current_database_url(), sink)
    try:
        yield worker
    finally:
        worker.stop()


def _rows(count: int) -> list[OutboundMessage]:
    now = timezone.now()
    return OutboundMessage.objects.bulk_create(
        OutboundMessage(
            kind="appointment_reminder",
            to_email=f"p{number}@example.test",
            subject=f"Reminder {number}",
            body_text="See you tomorrow.",
            dedupe_key=f"w:{number}",
            due_at=now - timedelta(minutes=1),
        )
        for number in range(count)
    )


def _sent() -> int:
    return OutboundMessage.objects.filter(status=Status.SENT).count()


def _sweep_until_all_sent(count: int, worker: CeleryWorker, timeout: float = 120) -> None:
    def done() -> bool:
        if _sent() == count:
            return True
        message_sweep_due()
        return False

    states = OutboundMessage.objects.values("status").annotate(n=Count("pk"))
    assert wait_for(done, timeout=timeout, every=0.5), ({row["status"]: row["n"] for row in states}, worker.log())


def _assert_each_delivered_once(sink: SmtpSink, rows: list[OutboundMessage]) -> None:
    delivered = sink.message_ids()
    assert sink.total == len(rows), f"{sink.total} deliveries for {len(rows)} messages"
    assert delivered == {message_header_id(row.pk): 1 for row in rows}


def test_a_worker_killed_mid_batch_loses_nothing_and_duplicates_nothing(worker: CeleryWorker, sink: SmtpSink) -> None:
    rows = _rows(30)
    worker.start()
    assert len(message_sweep_due()) == 30  # three batch tasks on the broker

    # Kill while the server holds a message it has not acknowledged (in its DATA delay).
    def mid_message() -> bool:
        return sink.total >= 4 and sink.data_started == sink.total + 1

    assert wait_for(mid_message, timeout=60, every=0.005), worker.log()
    worker.kill()
    delivered_before = sink.total
    assert 4 <= delivered_before < 30
    # The dead worker leaves in SENDING the message on the wire (the first of them) and
    # the rest of its claimed chunk, never sent.
    sending = list(OutboundMessage.objects.filter(status=Status.SENDING).order_by("pk"))
    assert 1 <= len(sending) <= CLAIM_CHUNK
    in_flight = sending[0]
    assert _sent() == delivered_before

    worker.start()
    _sweep_until_all_sent(30, worker)
    _assert_each_delivered_once(sink, rows)
    in_flight.refresh_from_db()
    assert in_flight.status == Status.SENT and in_flight.attempts == 2


def _redis_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["redis-cli", "-p", "6379", *args], capture_output=True, text=True, timeout=10, check=False)


def _redis_start() -> None:
    if _redis_cli("ping").stdout.strip() == "PONG":
        return
    subprocess.run(REDIS_SERVER, check=True, timeout=10)
    assert wait_for(lambda: _redis_cli("ping").stdout.strip() == "PONG", timeout=10)


@pytest.mark.skipif(
    not settings.REDIS_URL.startswith("redis://127.0.0.1:6379") or not shutil.which("redis-server"),
    reason="needs the Redis broker on 127.0.0.1:6379 (REDIS_URL) and redis-server to restart it",
)
def test_redis_restarted_while_sending_loses_nothing(worker: CeleryWorker, sink: SmtpSink) -> None:
    rows = _rows(40)
    worker.start()
    assert len(message_sweep_due()) == 40
    assert sink.wait_for(3, timeout=60), worker.log()
    try:
        # Every queued task is lost with it (no persistence).
        _redis_cli("shutdown", "nosave")
        assert wait_for(lambda: _redis_cli("ping").returncode != 0, timeout=10)
        time.sleep(2.5)  # the queued lease runs out: the next sweep hands the rows again
        # A sweep during the outage does not fail; it gives what it could not publish back.
        handed = message_sweep_due()
        assert handed
        assert not OutboundMessage.objects.filter(
            pk__in=handed, status=Status.SCHEDULED, claimed_at__isnull=False
        ).exists()
    finally:
        _redis_start()
    assert sink.total < 40  # the outage really interrupted the sending
    _sweep_until_all_sent(40, worker)
    _assert_each_delivered_once(sink, rows)
