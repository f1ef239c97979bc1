from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from django.test import Client
from django.urls import reverse

from aftercare.models import OutboundMessage
from mesoclinic.models import Heartbeat, SystemJob, User
from mesoclinic.services import heartbeat_touch


def test_status_page_shows_each_component(manager_client: Client) -> None:
    heartbeat_touch(component="worker")
    OutboundMessage.objects.create(kind="x", to_email="a@b.test", subject="s", body_text="b", dedupe_key="k1")
    page = manager_client.get(reverse("system_status")).content.decode()
    assert "Database" in page and "PostgreSQL" in page
    assert "Message broker" in page
    assert "Last worker heartbeat" in page and "Last scheduler tick" in page
    assert 'data-testid="outbox-pending">1<' in page


def test_status_page_marks_a_missing_beat(manager_client: Client) -> None:
    Heartbeat.objects.all().delete()
    page = manager_client.get(reverse("system_status")).content.decode()
    assert "never" in page and "Late or missing" in page


def test_test_email_goes_out_once_and_shows_progress(
    manager_client: Client, manager: User, django_capture_on_commit_callbacks, mailoutbox: list
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        response = manager_client.post(reverse("system_test_email"))
    assert response.status_code == 200
    message = OutboundMessage.objects.get(kind="system_test")
    assert message.status == OutboundMessage.Status.SENT
    assert [m.to for m in mailoutbox] == [[manager.email]]
    progress = manager_client.get(reverse("system_test_email_progress", args=[message.pk])).content.decode()
    assert 'data-status="sent"' in progress and "hx-trigger" not in progress


def test_pending_test_email_keeps_polling(manager_client: Client) -> None:
    response = manager_client.post(reverse("system_test_email"))  # on_commit not run: still scheduled
    assert 'data-status="scheduled"' in response.content.decode()
    assert 'hx-trigger="every 1s"' in response.content.decode()


def test_test_pdf_renders_in_the_task_and_downloads(
    manager_client: Client, django_capture_on_commit_callbacks, tmp_path: Path, private_storage: Path
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        manager_client.post(reverse("system_test_pdf"))
    job = SystemJob.objects.get()
    assert job.status == SystemJob.Status.DONE, job.error
    response = manager_client.get(reverse("system_test_pdf_download", args=[job.pk]))
    assert response["Content-Type"] == "application/pdf"
    pdf = b"".join(response.streaming_content)
    assert pdf.startswith(b"%PDF")
    out = tmp_path / "t.pdf"
    out.write_bytes(pdf)
    # poppler-utils is one of the system packages .ci/run installs (as for the plan PDF tests).
    text = subprocess.run(["pdftotext", str(out), "-"], capture_output=True, text=True, check=True).stdout
    assert "Test PDF rendered by the worker" in text


def test_pdf_task_run_twice_renders_once(manager: User, private_storage: Path) -> None:
    from mesoclinic.services import system_pdf_render

    job = SystemJob.objects.create(kind=SystemJob.Kind.PDF, requested_by=manager)
    assert system_pdf_render(job_id=job.pk) is not None
    assert system_pdf_render(job_id=job.pk) is None
    assert [p.name for p in (private_storage / "system").iterdir()] == [f"test-{job.pk}.pdf"]


@pytest.mark.django_db
def test_download_of_unfinished_job_is_404(manager_client: Client, manager: User) -> None:
    job = SystemJob.objects.create(kind=SystemJob.Kind.PDF, requested_by=manager)
    assert manager_client.get(reverse("system_test_pdf_download", args=[job.pk])).status_code == 404
