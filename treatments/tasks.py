from __future__ import annotations

from celery import shared_task

from treatments.services import documents


@shared_task(name="treatments.tasks.plan_document_render")
def plan_document_render(document_id: int) -> None:
    """Render a treatment plan's PDF; safe to run twice (the second run finds nothing to claim)."""
    documents.plan_document_render(document_id=document_id)
