from __future__ import annotations

from celery import shared_task

from aftercare import services


@shared_task(name="aftercare.tasks.message_send")
def message_send(message_id: int) -> bool:
    """Send one outbox row (queued right after its transaction commits); a second run
    finds it claimed or sent and does nothing."""
    return services.message_send(message_id=message_id)


@shared_task(name="aftercare.tasks.message_send_batch")
def message_send_batch(message_ids: list[int]) -> int:
    """Send up to a batch of outbox rows over one mail connection; safe to run twice."""
    return services.message_send_batch(message_ids=message_ids)


@shared_task(name="aftercare.tasks.message_sweep_due")
def message_sweep_due() -> int:
    """Periodic: hand due outbox rows to batch tasks and take back rows a dead worker left."""
    return len(services.message_sweep_due())


@shared_task(name="aftercare.tasks.adverse_followups_queue")
def adverse_followups_queue() -> int:
    """Periodic: remind patients with an open side effect whose follow-up is due (idempotent)."""
    from aftercare.session_messages import adverse_followups_queue as queue

    return queue()
