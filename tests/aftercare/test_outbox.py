from __future__ import annotations

import smtplib
from datetime import timedelta

import pytest
import time_machine
from django.core.mail.backends.base import BaseEmailBackend
from django.utils import timezone

from aftercare.models import OutboundMessage
from aftercare.services import MAX_ATTEMPTS, message_send, message_sweep_due


def _row(key: str = "k", **extra) -> OutboundMessage:
    return OutboundMessage.objects.create(
        kind="test", to_email="p@example.test", subject="Hello", body_text="Body", dedupe_key=key, **extra
    )


class FlakyBackend(BaseEmailBackend):
    """A mail backend that raises the queued errors, then succeeds."""

    errors: list[Exception] = []
    sent: list = []

    def send_messages(self, messages):
        if FlakyBackend.errors:
            raise FlakyBackend.errors.pop(0)
        FlakyBackend.sent.extend(messages)
        return len(messages)


@pytest.fixture
def flaky(settings):
    settings.EMAIL_BACKEND = "tests.aftercare.test_outbox.FlakyBackend"
    FlakyBackend.errors = []
    FlakyBackend.sent = []
    return FlakyBackend


@pytest.mark.django_db
def test_send_run_twice_sends_once(mailoutbox: list) -> None:
    row = _row()
    assert message_send(message_id=row.pk) is True
    assert message_send(message_id=row.pk) is False
    assert len(mailoutbox) == 1
    row.refresh_from_db()
    assert row.status == OutboundMessage.Status.SENT and row.attempts == 1 and row.provider_message_id


@pytest.mark.django_db
def test_not_yet_due_is_not_sent(mailoutbox: list) -> None:
    row = _row(due_at=timezone.now() + timedelta(hours=1))
    assert message_send(message_id=row.pk) is False
    assert mailoutbox == []


@pytest.mark.django_db
def test_temporary_error_retries_with_backoff_then_delivers(flaky, django_capture_on_commit_callbacks) -> None:
    flaky.errors = [smtplib.SMTPResponseException(451, b"try later")]
    row = _row()
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        assert message_send(message_id=row.pk) is False
        row.refresh_from_db()
        assert row.status == OutboundMessage.Status.SCHEDULED and "451" in row.last_error
        assert row.due_at > timezone.now() + timedelta(seconds=40)
        assert message_send(message_id=row.pk) is False  # not due yet
        traveller.shift(timedelta(minutes=5))
        with django_capture_on_commit_callbacks(execute=True):
            assert message_sweep_due() == [row.pk]
    row.refresh_from_db()
    assert row.status == OutboundMessage.Status.SENT
    assert len(flaky.sent) == 1


@pytest.mark.django_db
def test_permanent_error_fails_at_once(flaky) -> None:
    flaky.errors = [smtplib.SMTPRecipientsRefused({"p@example.test": (550, b"no such user")})]
    row = _row()
    message_send(message_id=row.pk)
    row.refresh_from_db()
    assert row.status == OutboundMessage.Status.FAILED and row.attempts == 1


@pytest.mark.django_db
def test_gives_up_after_the_attempt_cap(flaky) -> None:
    flaky.errors = [smtplib.SMTPServerDisconnected("gone")] * MAX_ATTEMPTS
    row = _row()
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        for _ in range(MAX_ATTEMPTS):
            message_send(message_id=row.pk)
            traveller.shift(timedelta(days=1))
    row.refresh_from_db()
    assert row.status == OutboundMessage.Status.FAILED and row.attempts == MAX_ATTEMPTS
    assert flaky.sent == []


@pytest.mark.django_db
def test_dedupe_key_makes_a_second_queue_a_no_op(mailoutbox: list, django_capture_on_commit_callbacks) -> None:
    from aftercare.services import message_queue

    with django_capture_on_commit_callbacks(execute=True):
        first = message_queue(kind="t", to_email="a@b.test", subject="s", body_text="b", dedupe_key="same")
        second = message_queue(kind="t", to_email="a@b.test", subject="s", body_text="b", dedupe_key="same")
    assert first.pk == second.pk
    assert len(mailoutbox) == 1
