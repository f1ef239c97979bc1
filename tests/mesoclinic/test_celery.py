from __future__ import annotations

import pytest
from django.db import transaction

from aftercare.models import OutboundMessage
from aftercare.services import message_queue
from mesoclinic.celery import app as celery_app


def _queue(key: str) -> OutboundMessage:
    return message_queue(kind="test", to_email="p@example.test", subject="s", body_text="b", dedupe_key=key)


@pytest.mark.django_db(transaction=True)
def test_a_task_enqueued_in_a_rolled_back_transaction_never_runs(mailoutbox: list) -> None:
    class Boom(Exception):
        pass

    with pytest.raises(Boom), transaction.atomic():
        _queue("rolled-back")
        raise Boom
    assert not OutboundMessage.objects.exists()
    assert mailoutbox == []


@pytest.mark.django_db(transaction=True)
def test_a_committed_enqueue_runs_once_after_commit(mailoutbox: list) -> None:
    with transaction.atomic():
        _queue("committed")
        assert mailoutbox == []  # not before commit
    assert len(mailoutbox) == 1
    assert OutboundMessage.objects.get().status == OutboundMessage.Status.SENT


def test_celery_is_configured_for_reliable_delivery() -> None:
    conf = celery_app.conf
    assert conf.task_acks_late is True
    assert conf.task_reject_on_worker_lost is True
    assert conf.worker_prefetch_multiplier == 1
    assert conf.task_serializer == "json" and conf.accept_content == ["json"]
    assert conf.task_time_limit and conf.task_soft_time_limit
