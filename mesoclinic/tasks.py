from __future__ import annotations

from celery import shared_task

from mesoclinic import services


@shared_task(name="mesoclinic.tasks.heartbeat_record")
def heartbeat_record() -> None:
    """Periodic: the worker says it is alive (beat's tick is recorded when it publishes this)."""
    services.heartbeat_touch(component="worker")


@shared_task(name="mesoclinic.tasks.system_pdf_render")
def system_pdf_render(job_id: int) -> None:
    """Render the status page's test PDF; safe to run twice."""
    services.system_pdf_render(job_id=job_id)
