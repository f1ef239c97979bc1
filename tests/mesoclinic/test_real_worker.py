"""The status page's test email through a real Celery worker process and the real broker.

With REDIS_URL set (CI) the broker is Redis; without it, kombu's filesystem
transport under var/. The worker reads the test database, so the test commits.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from django.test import Client
from django.urls import reverse

from aftercare.models import OutboundMessage
from mesoclinic.access import Role
from mesoclinic.models import Heartbeat, SystemJob, User
from tests.factories import UserFactory
from tests.worker_process import CeleryWorker, broker_purge, current_database_url, wait_for

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def worker(tmp_path: Path) -> Iterator[CeleryWorker]:
    """A worker on the test database, mail as ``.eml`` files under ``tmp_path/mail``."""
    broker_purge()
    worker = CeleryWorker(tmp_path, current_database_url())
    worker.start()
    try:
        yield worker
    finally:
        worker.stop()


def test_test_email_goes_through_a_real_worker(worker: CeleryWorker) -> None:
    manager: User = UserFactory(email="ops@example.test", role=Role.MANAGER)
    client = Client()
    client.force_login(manager)
    assert client.post(reverse("system_test_email")).status_code == 200
    message = OutboundMessage.objects.get(kind="system_test")
    delivered = wait_for(lambda: OutboundMessage.objects.get(pk=message.pk).status == OutboundMessage.Status.SENT, 60)
    assert delivered, f"not delivered; worker log:\n{worker.log()}"
    files = list((worker.folder / "mail").glob("*.eml"))
    assert len(files) == 1
    assert "To: ops@example.test" in files[0].read_text()
    progress = client.get(reverse("system_test_email_progress", args=[message.pk])).content.decode()
    assert 'data-status="sent"' in progress
    assert Heartbeat.objects.filter(component="worker", detail="started").exists()


def test_test_pdf_is_rendered_by_a_real_worker(worker: CeleryWorker) -> None:
    manager: User = UserFactory(email="ops2@example.test", role=Role.MANAGER)
    client = Client()
    client.force_login(manager)
    client.post(reverse("system_test_pdf"))
    job = SystemJob.objects.get()
    done = wait_for(lambda: SystemJob.objects.get(pk=job.pk).status in {"done", "failed"}, 60)
    job.refresh_from_db()
    assert done and job.status == "done", job.error or worker.log()
    assert (worker.folder / "private" / job.result_file).read_bytes().startswith(b"%PDF")
