"""The Celery app, and the one way the code enqueues work: after commit."""

from __future__ import annotations

import os
from typing import Any

from celery import Celery, Task
from celery.signals import beat_init, before_task_publish, worker_ready
from django.db import transaction

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mesoclinic.settings")

app = Celery("mesoclinic")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


def enqueue_on_commit(task: Task, *args: Any, **kwargs: Any) -> None:
    """Send ``task`` once the current transaction commits; never if it rolls back.

    Tasks take primary keys only, so the worker reads committed rows. A broker
    outage at publish time is logged rather than failing the user's request:
    rows that carry their own status (outbox, jobs) are picked up again by the
    periodic sweepers.
    """
    transaction.on_commit(lambda: task.apply_async(args=args, kwargs=kwargs), robust=True)


@before_task_publish.connect
def _beat_tick(sender: str | None = None, **_: Any) -> None:
    # The heartbeat task is published only by beat: its publish time is beat's tick.
    if sender == "mesoclinic.tasks.heartbeat_record":
        from mesoclinic.services import heartbeat_touch

        heartbeat_touch(component="beat")


@worker_ready.connect
def _worker_ready(**_: Any) -> None:
    from mesoclinic.services import heartbeat_touch

    heartbeat_touch(component="worker", detail="started")


@beat_init.connect
def _beat_started(**_: Any) -> None:
    from mesoclinic.services import heartbeat_touch

    heartbeat_touch(component="beat", detail="started")
