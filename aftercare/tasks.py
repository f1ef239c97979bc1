from __future__ import annotations

from celery import shared_task

from aftercare import services


@shared_task(name="aftercare.tasks.message_send")
def message_send(message_id: int) -> bool:
    """Send one outbox row; a second run finds it claimed and does nothing."""
    return services.message_send(message_id=message_id)


@shared_task(name="aftercare.tasks.message_sweep_due")
def message_sweep_due() -> int:
    """Periodic: enqueue every due outbox row (retries, scheduled reminders, missed publishes)."""
    return len(services.message_sweep_due())
