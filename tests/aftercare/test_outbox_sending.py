"""The sending machinery against a real SMTP server (aiosmtpd on loopback): claims under
concurrency, batches over one connection, temporary and permanent errors, lease recovery."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import timedelta

import psycopg
import pytest
import time_machine
from django.db import connection
from django.utils import timezone

from aftercare.models import OutboundMessage
from aftercare.services import (
    ALERT_KIND,
    MAX_ATTEMPTS,
    message_header_id,
    message_send,
    message_send_batch,
    message_sweep_due,
    sending,
)
from mesoclinic.access import Role
from mesoclinic.models import User
from tests.aftercare.smtp_sink import SmtpSink, free_port, running_sink
from tests.factories import UserFactory

Status = OutboundMessage.Status


@pytest.fixture
def smtp_sink(settings: object) -> Iterator[SmtpSink]:
    with running_sink(settings) as sink:
        yield sink


def _rows(count: int, *, prefix: str = "r", kind: str = "appointment_reminder", **extra) -> list[OutboundMessage]:
    now = timezone.now()
    return [
        OutboundMessage.objects.create(
            kind=kind,
            to_email=f"p{number}@example.test",
            subject=f"Reminder {number}",
            body_text="See you tomorrow.",
            body_html="<p>See you tomorrow.</p>",
            dedupe_key=f"{prefix}:{number}",
            due_at=now - timedelta(seconds=count - number),
            **extra,
        )
        for number in range(count)
    ]


def _in_threads(count: int, target: Callable[[], object]) -> list[object]:
    """Run ``target`` in ``count`` threads released together; each thread its own connection."""
    barrier = threading.Barrier(count)
    results: list[object] = [None] * count
    errors: list[BaseException] = []

    def run(index: int) -> None:
        try:
            barrier.wait(timeout=10)
            results[index] = target()
        except Exception as error:  # noqa: BLE001 - reported below, in the test's thread
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    return results


@pytest.mark.django_db(transaction=True)
def test_the_send_task_run_ten_times_at_once_sends_one_email(smtp_sink: SmtpSink) -> None:
    (row,) = _rows(1)
    results = _in_threads(10, lambda: message_send(message_id=row.pk))
    assert results.count(True) == 1
    assert smtp_sink.total == 1
    assert smtp_sink.message_ids() == {message_header_id(row.pk): 1}
    row.refresh_from_db()
    assert row.status == Status.SENT and row.attempts == 1


@pytest.mark.django_db(transaction=True)
def test_two_sweepers_at_once_hand_each_row_once_and_every_email_goes_once(
    smtp_sink: SmtpSink, settings: object
) -> None:
    settings.OUTBOX_BATCH_SIZE = 10  # type: ignore[attr-defined]
    rows = _rows(100)
    # Celery is eager here: each sweeper also runs the batch tasks it hands out, after its commit.
    first, second = _in_threads(2, message_sweep_due)
    assert set(first).isdisjoint(second)  # type: ignore[arg-type]
    assert sorted([*first, *second]) == sorted(row.pk for row in rows)  # type: ignore[misc]
    assert smtp_sink.total == 100
    assert set(smtp_sink.message_ids().values()) == {1}
    assert OutboundMessage.objects.filter(status=Status.SENT).count() == 100
    # Nothing is left for a third sweeper.
    assert message_sweep_due() == []
    assert smtp_sink.total == 100


@pytest.mark.django_db(transaction=True)
def test_a_message_reaches_the_server_only_once_the_previous_one_is_marked_sent(
    smtp_sink: SmtpSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The SENT mark runs beside the next message's envelope; its DATA must wait for it,
    or a worker killed then would leave two accepted messages unrecorded."""
    # A slow mark (50 ms), so that a DATA that did not wait would overtake it.
    slow = f"WITH pause AS (SELECT pg_sleep(0.05)) {sending._SENT} AND EXISTS (SELECT 1 FROM pause)"  # noqa: S608
    monkeypatch.setattr(sending, "_SENT", slow)
    rows = _rows(8)
    marked_when_received: list[int] = []
    db = connection.settings_dict
    observer = psycopg.connect(
        host=db["HOST"] or "localhost",
        port=db["PORT"] or 5432,
        dbname=db["NAME"],
        user=db["USER"],
        password=db["PASSWORD"] or None,
        autocommit=True,
    )

    def count_marked(_content: bytes) -> None:
        row = observer.execute("SELECT count(*) FROM aftercare_outboundmessage WHERE status = 'sent'").fetchone()
        marked_when_received.append(row[0] if row else -1)

    smtp_sink.on_data = count_marked
    try:
        assert message_send_batch(message_ids=[row.pk for row in rows]) == 8
    finally:
        observer.close()
    assert marked_when_received == list(range(8))
    assert OutboundMessage.objects.filter(status=Status.SENT).count() == 8


@pytest.mark.django_db
def test_a_batch_uses_one_connection(smtp_sink: SmtpSink) -> None:
    rows = _rows(20)
    assert message_send_batch(message_ids=[row.pk for row in rows]) == 20
    assert smtp_sink.total == 20 and smtp_sink.connections == 1
    # Run again (a redelivered task): nothing is claimed, no connection is even opened.
    assert message_send_batch(message_ids=[row.pk for row in rows]) == 0
    assert smtp_sink.total == 20 and smtp_sink.connections == 1


@pytest.mark.django_db
def test_each_message_carries_its_rows_message_id(smtp_sink: SmtpSink) -> None:
    (row,) = _rows(1)
    message_send(message_id=row.pk)
    (received,) = smtp_sink.messages()
    row.refresh_from_db()
    assert received["Message-ID"] == f"<outbox-{row.pk}@mesoclinic.localhost>" == row.provider_message_id
    assert received["To"] == "p0@example.test"
    assert received.get_body(("html",)).get_content().strip() == "<p>See you tomorrow.</p>"


@pytest.mark.django_db
def test_451_then_recovery_delivers_every_email_once(smtp_sink: SmtpSink, django_capture_on_commit_callbacks) -> None:
    rows = _rows(10)
    smtp_sink.fail_next(3)
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        with django_capture_on_commit_callbacks(execute=True):
            assert len(message_sweep_due()) == 10
        assert smtp_sink.total == 7 and smtp_sink.temporary_answered == 3
        retried = OutboundMessage.objects.filter(status=Status.SCHEDULED)
        assert sorted(retried.values_list("pk", flat=True)) == [row.pk for row in rows[:3]]
        for row in retried:
            # About a minute (with jitter), never at once.
            assert timedelta(seconds=47) < row.due_at - timezone.now() < timedelta(seconds=73)
            assert "451" in row.last_error and row.attempts == 1
        with django_capture_on_commit_callbacks(execute=True):
            assert message_sweep_due() == []  # not due yet
        traveller.shift(timedelta(seconds=75))
        with django_capture_on_commit_callbacks(execute=True):
            assert len(message_sweep_due()) == 3
    assert smtp_sink.total == 10
    assert smtp_sink.message_ids() == {message_header_id(row.pk): 1 for row in rows}
    attempts = dict(OutboundMessage.objects.values_list("pk", "attempts"))
    assert [attempts[row.pk] for row in rows] == [2, 2, 2] + [1] * 7
    assert set(OutboundMessage.objects.values_list("status", flat=True)) == {Status.SENT}
    assert set(OutboundMessage.objects.values_list("last_error", flat=True)) == {""}


@pytest.mark.django_db
def test_temporary_errors_until_the_cap_fail_the_row_and_alert_the_managers(
    smtp_sink: SmtpSink, manager: User, django_capture_on_commit_callbacks
) -> None:
    (row,) = _rows(1)
    smtp_sink.fail_next(MAX_ATTEMPTS)
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        for _attempt in range(MAX_ATTEMPTS + 2):
            with django_capture_on_commit_callbacks(execute=True):
                message_sweep_due()
            traveller.shift(timedelta(hours=2))
    row.refresh_from_db()
    assert row.status == Status.FAILED and row.attempts == MAX_ATTEMPTS
    assert smtp_sink.temporary_answered == MAX_ATTEMPTS
    alert = OutboundMessage.objects.get(kind=ALERT_KIND)
    assert alert.to_email == manager.email and alert.status == Status.SENT
    assert smtp_sink.total == 1  # the alert only


@pytest.mark.django_db
def test_550_fails_at_once_is_not_retried_and_alerts_each_manager_once(
    smtp_sink: SmtpSink, manager: User, practitioner: User, settings: object, django_capture_on_commit_callbacks
) -> None:
    settings.SITE_URL = "https://clinic.example.test"  # type: ignore[attr-defined]
    other_manager = UserFactory(email="olga@example.test", role=Role.MANAGER)
    UserFactory(email="gone@example.test", role=Role.MANAGER, is_active=False)
    rows = _rows(3)
    smtp_sink.refuse("p1@example.test")
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        with django_capture_on_commit_callbacks(execute=True):
            message_sweep_due()
        for _later in range(3):
            traveller.shift(timedelta(hours=6))
            with django_capture_on_commit_callbacks(execute=True):
                message_sweep_due()
    failed = OutboundMessage.objects.get(pk=rows[1].pk)
    assert failed.status == Status.FAILED and failed.attempts == 1 and "550" in failed.last_error
    assert smtp_sink.refused_answered == 1  # never tried again
    assert OutboundMessage.objects.filter(pk__in=[rows[0].pk, rows[2].pk], status=Status.SENT).count() == 2
    alerts = OutboundMessage.objects.filter(kind=ALERT_KIND).order_by("to_email")
    assert [alert.to_email for alert in alerts] == [manager.email, other_manager.email]
    assert {alert.status for alert in alerts} == {Status.SENT}
    body = alerts[0].body_text
    assert "https://clinic.example.test/messages/outbox/" in body and "appointment_reminder" in body
    # Nothing about the patient: not the address, not the refusal text that carries it.
    assert "p1@example.test" not in body + alerts[0].subject and "550" not in body
    assert practitioner.email not in {alert.to_email for alert in alerts}


@pytest.mark.django_db
def test_a_broken_connection_releases_the_rest_of_the_batch(
    smtp_sink: SmtpSink, django_capture_on_commit_callbacks
) -> None:
    rows = _rows(5)
    smtp_sink.fail_next(1, code=421)  # "closing channel": the server hangs up
    with time_machine.travel(timezone.now(), tick=False):
        with django_capture_on_commit_callbacks(execute=True):
            message_sweep_due()
        first = OutboundMessage.objects.get(pk=rows[0].pk)
        assert first.status == Status.SCHEDULED and first.attempts == 1 and first.due_at > timezone.now()
        rest = OutboundMessage.objects.filter(pk__in=[row.pk for row in rows[1:]])
        # Released: due, not handed to any task, no attempt counted.
        assert {(row.status, row.attempts, row.claimed_at) for row in rest} == {(Status.SCHEDULED, 0, None)}
        assert smtp_sink.total == 0
        with django_capture_on_commit_callbacks(execute=True):
            assert sorted(message_sweep_due()) == [row.pk for row in rows[1:]]
    assert smtp_sink.total == 4


@pytest.mark.django_db
def test_a_refused_connection_counts_one_attempt_and_releases_the_rest(
    settings: object, django_capture_on_commit_callbacks
) -> None:
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"  # type: ignore[attr-defined]
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", free_port()  # type: ignore[attr-defined]
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False  # type: ignore[attr-defined]
    rows = _rows(3)
    with django_capture_on_commit_callbacks(execute=True):
        message_sweep_due()
    states = {row.pk: (row.status, row.attempts) for row in OutboundMessage.objects.all()}
    assert states == {
        rows[0].pk: (Status.SCHEDULED, 1),
        rows[1].pk: (Status.SCHEDULED, 0),
        rows[2].pk: (Status.SCHEDULED, 0),
    }
    assert "ConnectionRefused" in OutboundMessage.objects.get(pk=rows[0].pk).last_error


@pytest.mark.django_db
def test_the_sweeper_takes_back_rows_left_sending_past_the_lease_only(
    smtp_sink: SmtpSink, settings: object, manager: User, django_capture_on_commit_callbacks
) -> None:
    settings.OUTBOX_SENDING_LEASE_SECONDS = 300  # type: ignore[attr-defined]
    now = timezone.now()
    stale, fresh, exhausted = _rows(3)
    OutboundMessage.objects.filter(pk=stale.pk).update(
        status=Status.SENDING, claimed_at=now - timedelta(seconds=301), attempts=1
    )
    OutboundMessage.objects.filter(pk=fresh.pk).update(
        status=Status.SENDING, claimed_at=now - timedelta(seconds=30), attempts=1
    )
    OutboundMessage.objects.filter(pk=exhausted.pk).update(
        status=Status.SENDING, claimed_at=now - timedelta(hours=1), attempts=MAX_ATTEMPTS
    )
    with time_machine.travel(now, tick=False), django_capture_on_commit_callbacks(execute=True):
        handed = message_sweep_due()
    # (The alert about the exhausted row is handed too: it is due.)
    assert stale.pk in handed and fresh.pk not in handed and exhausted.pk not in handed
    stale.refresh_from_db()
    fresh.refresh_from_db()
    exhausted.refresh_from_db()
    assert stale.status == Status.SENT and stale.attempts == 2
    assert fresh.status == Status.SENDING and fresh.attempts == 1  # its worker may be sending it right now
    assert exhausted.status == Status.FAILED
    assert OutboundMessage.objects.filter(kind=ALERT_KIND, to_email=manager.email).count() == 1
    assert smtp_sink.message_ids() == {
        message_header_id(stale.pk): 1,
        message_header_id(OutboundMessage.objects.get(kind=ALERT_KIND).pk): 1,
    }


@pytest.mark.django_db
def test_a_row_handed_to_a_task_is_not_handed_again_until_the_queued_lease(
    settings: object, django_capture_on_commit_callbacks
) -> None:
    settings.OUTBOX_QUEUED_LEASE_SECONDS = 120  # type: ignore[attr-defined]
    (row,) = _rows(1)
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        # The task is lost (published, never run): capture the callbacks without running them.
        with django_capture_on_commit_callbacks(execute=False):
            assert message_sweep_due() == [row.pk]
        traveller.shift(timedelta(seconds=60))
        with django_capture_on_commit_callbacks(execute=False):
            assert message_sweep_due() == []
        traveller.shift(timedelta(seconds=61))
        with django_capture_on_commit_callbacks(execute=False):
            assert message_sweep_due() == [row.pk]


@pytest.mark.django_db
def test_one_task_per_mail_opens_one_connection_per_mail(smtp_sink: SmtpSink) -> None:
    rows = _rows(4)
    for row in rows:
        assert message_send(message_id=row.pk) is True
    assert smtp_sink.total == 4 and smtp_sink.connections == 4
