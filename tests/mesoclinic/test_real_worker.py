"""The status page's test email through a real Celery worker process and the real broker.

With REDIS_URL set (CI) the broker is Redis; without it, kombu's filesystem
transport under var/. The worker reads the test database, so the test commits.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings
from django.db import connection
from django.test import Client
from django.urls import reverse

from aftercare.models import OutboundMessage
from mesoclinic.access import Role
from mesoclinic.celery import app as celery_app
from mesoclinic.models import Heartbeat, SystemJob, User
from tests.factories import UserFactory

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def _database_url() -> str:
    db = connection.settings_dict
    host = quote(db["HOST"] or "localhost", safe="")
    password = f":{quote(db['PASSWORD'])}" if db["PASSWORD"] else ""
    return f"postgres://{db['USER']}{password}@{host}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.fixture
def worker(tmp_path: Path) -> Iterator[Path]:
    mail_dir = tmp_path / "mail"
    private_dir = tmp_path / "private"
    with celery_app.connection_for_write() as conn:
        conn.default_channel.queue_purge(settings.CELERY_TASK_DEFAULT_QUEUE)
    env = {
        **os.environ,
        "DATABASE_URL": _database_url(),
        "EMAIL_HOST": "",
        "EMAIL_FOLDER": str(mail_dir),
        "PRIVATE_MEDIA_ROOT": str(private_dir),
        "CELERY_QUEUE": settings.CELERY_TASK_DEFAULT_QUEUE,
    }
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    log = (tmp_path / "worker.log").open("w")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "mesoclinic",
            "worker",
            "-l",
            "info",
            "-c",
            "1",
            "--without-gossip",
            "--without-mingle",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        yield tmp_path
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def _wait_for(predicate, timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.25)
    return False


def test_test_email_goes_through_a_real_worker(worker: Path) -> None:
    manager: User = UserFactory(email="ops@example.test", role=Role.MANAGER)
    client = Client()
    client.force_login(manager)
    assert client.post(reverse("system_test_email")).status_code == 200
    message = OutboundMessage.objects.get(kind="system_test")
    delivered = _wait_for(lambda: OutboundMessage.objects.get(pk=message.pk).status == OutboundMessage.Status.SENT)
    log = (worker / "worker.log").read_text()
    assert delivered, f"not delivered; worker log:\n{log[-3000:]}"
    files = list((worker / "mail").glob("*.eml"))
    assert len(files) == 1
    assert "To: ops@example.test" in files[0].read_text()
    progress = client.get(reverse("system_test_email_progress", args=[message.pk])).content.decode()
    assert 'data-status="sent"' in progress
    assert Heartbeat.objects.filter(component="worker", detail="started").exists()


def test_test_pdf_is_rendered_by_a_real_worker(worker: Path) -> None:
    manager: User = UserFactory(email="ops2@example.test", role=Role.MANAGER)
    client = Client()
    client.force_login(manager)
    client.post(reverse("system_test_pdf"))
    job = SystemJob.objects.get()
    done = _wait_for(lambda: SystemJob.objects.get(pk=job.pk).status in {"done", "failed"})
    job.refresh_from_db()
    assert done and job.status == "done", job.error or (worker / "worker.log").read_text()[-3000:]
    assert (worker / "private" / job.result_file).read_bytes().startswith(b"%PDF")
