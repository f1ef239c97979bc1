"""Queueing into the outbox: the patient's email preferences, cancelling pending messages,
resending as a new row."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.forms.models import model_to_dict
from django.utils import timezone

from aftercare.models import OutboundMessage
from aftercare.services import (
    SAFETY_KINDS,
    message_allowed,
    message_cancel_pending,
    message_queue,
    message_resend,
)
from mesoclinic.models import User
from patients.models import Patient
from tests.factories import LocationFactory, PatientFactory
from treatments.models import Appointment

Status = OutboundMessage.Status


def _queue(patient: Patient | None, kind: str, key: str, **extra) -> OutboundMessage:
    return message_queue(
        kind=kind,
        to_email=patient.email if patient is not None else "someone@example.test",
        subject=f"About {kind}",
        body_text="Body",
        dedupe_key=key,
        patient=patient,
        **extra,
    )


@pytest.fixture
def opted_out(front_desk: User) -> Patient:
    return PatientFactory(created_by=front_desk, email_transactional=False)


@pytest.fixture
def withdrawn(front_desk: User) -> Patient:
    return PatientFactory(created_by=front_desk, email_withdrawn_at=timezone.now())


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("preferences", "kind", "expected"),
    [
        ({}, "appointment_reminder", (True, "")),
        ({"email_transactional": False}, "appointment_reminder", (False, "the patient turned off booking")),
        ({"email_transactional": False}, "aftercare", (True, "")),
        ({"email_transactional": False}, "safety_plan_change", (True, "")),
        ({"email_withdrawn_at": timezone.now()}, "lot_recall", (False, "the patient withdrew all email")),
        ({"email": ""}, "checkin", (False, "no email address")),
    ],
)
def test_message_allowed(front_desk: User, preferences: dict, kind: str, expected: tuple[bool, str]) -> None:
    allowed, reason = message_allowed(PatientFactory(created_by=front_desk, **preferences), kind)
    assert allowed is expected[0] and reason.startswith(expected[1])


def test_safety_kinds() -> None:
    assert {"aftercare", "checkin", "adverse_followup", "lot_recall"} <= SAFETY_KINDS
    assert "appointment_reminder" not in SAFETY_KINDS


@pytest.mark.django_db
def test_opted_out_patient_gets_a_cancelled_row_with_the_reason_and_no_email(
    opted_out: Patient, mailoutbox: list, django_capture_on_commit_callbacks
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        row = _queue(opted_out, "appointment_reminder", "reminder:1")
    assert row.status == Status.CANCELLED
    assert row.last_error == "not sent: the patient turned off booking and aftercare emails"
    assert mailoutbox == []


@pytest.mark.django_db
def test_opted_out_patient_still_gets_safety_messages(
    opted_out: Patient, mailoutbox: list, django_capture_on_commit_callbacks
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        aftercare = _queue(opted_out, "aftercare", "aftercare:1")
        recall = _queue(opted_out, "lot_recall", "recall:1")
    for row in (aftercare, recall):
        row.refresh_from_db()
        assert row.status == Status.SENT
    assert [mail.to for mail in mailoutbox] == [[opted_out.email], [opted_out.email]]


@pytest.mark.django_db
def test_withdrawn_patient_is_sent_nothing_at_all(
    withdrawn: Patient, mailoutbox: list, django_capture_on_commit_callbacks
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        rows = [_queue(withdrawn, kind, f"w:{kind}") for kind in ("appointment_booked", "aftercare", "lot_recall")]
    assert {row.status for row in rows} == {Status.CANCELLED}
    assert {row.last_error for row in rows} == {"not sent: the patient withdrew all email"}
    assert mailoutbox == []


@pytest.mark.django_db
def test_queue_records_what_the_message_is_about(front_desk: User) -> None:
    patient = PatientFactory(created_by=front_desk)
    later = timezone.now() + timedelta(days=1)
    row = _queue(patient, "appointment_reminder", "about:1", due_at=later, created_by=front_desk, language="fr")
    row.refresh_from_db()
    assert (row.patient, row.created_by, row.language, row.due_at) == (patient, front_desk, "fr", later)
    assert row.status == Status.SCHEDULED


def _appointment(front_desk: User, patient: Patient, days: int) -> Appointment:
    starts_at = timezone.now() + timedelta(days=days)
    return Appointment.objects.create(
        location=LocationFactory(),
        practitioner=front_desk,
        patient=patient,
        starts_at=starts_at,
        ends_at=starts_at + timedelta(minutes=30),
        created_by=front_desk,
        kind=Appointment.Kind.TREATMENT,
    )


@pytest.mark.django_db
def test_cancel_pending_cancels_only_the_scheduled_messages_of_that_appointment_and_kind(front_desk: User) -> None:
    patient = PatientFactory(created_by=front_desk)
    appointment = _appointment(front_desk, patient, 2)
    other = _appointment(front_desk, patient, 3)
    later = timezone.now() + timedelta(days=1)
    reminder = _queue(patient, "appointment_reminder", "c:1", appointment=appointment, due_at=later)
    confirmation = _queue(patient, "appointment_booked", "c:2", appointment=appointment, due_at=later)
    other_reminder = _queue(patient, "appointment_reminder", "c:3", appointment=other, due_at=later)
    sending = _queue(patient, "appointment_reminder", "c:4", appointment=appointment, due_at=later)
    OutboundMessage.objects.filter(pk=sending.pk).update(status=Status.SENDING, claimed_at=timezone.now())

    assert message_cancel_pending(appointment=appointment, kinds=["appointment_reminder"]) == 1
    states = dict(OutboundMessage.objects.values_list("pk", "status"))
    assert states == {
        reminder.pk: Status.CANCELLED,
        confirmation.pk: Status.SCHEDULED,
        other_reminder.pk: Status.SCHEDULED,
        sending.pk: Status.SENDING,
    }
    assert OutboundMessage.objects.get(pk=reminder.pk).last_error.startswith("not sent:")
    # Run again: nothing left to cancel.
    assert message_cancel_pending(appointment=appointment, kinds=["appointment_reminder"]) == 0


def test_cancel_pending_needs_a_scope() -> None:
    with pytest.raises(ValueError):
        message_cancel_pending()


@pytest.mark.django_db
@pytest.mark.parametrize("status", [Status.SENT, Status.FAILED, Status.CANCELLED])
def test_resend_makes_a_new_row_sends_it_and_leaves_the_original_alone(
    status: str, manager: User, front_desk: User, mailoutbox: list, django_capture_on_commit_callbacks
) -> None:
    patient = PatientFactory(created_by=front_desk)
    original = _queue(patient, "aftercare", "orig:1", body_html="<p>Body</p>", due_at=timezone.now() + timedelta(1))
    OutboundMessage.objects.filter(pk=original.pk).update(
        status=status, sent_at=timezone.now() if status == Status.SENT else None, attempts=2, last_error="x"
    )
    original.refresh_from_db()
    before = model_to_dict(original)

    with django_capture_on_commit_callbacks(execute=True):
        first = message_resend(message=original, by=manager)
    with django_capture_on_commit_callbacks(execute=True):
        second = message_resend(message=original, by=manager)

    original.refresh_from_db()
    assert model_to_dict(original) == before
    for number, copy in enumerate((first, second), start=1):
        copy.refresh_from_db()
        assert copy.pk != original.pk and copy.resend_of == original and copy.created_by == manager
        assert copy.dedupe_key == f"resend:{original.pk}:{number}"
        assert (copy.subject, copy.body_text, copy.body_html, copy.patient) == (
            original.subject,
            original.body_text,
            original.body_html,
            patient,
        )
        assert copy.status == Status.SENT and copy.attempts == 1
    assert len(mailoutbox) == 2


@pytest.mark.django_db
def test_resend_goes_to_the_patients_current_address_and_respects_current_preferences(
    manager: User, front_desk: User, mailoutbox: list, django_capture_on_commit_callbacks
) -> None:
    patient = PatientFactory(created_by=front_desk, email="old@example.test")
    original = _queue(patient, "appointment_booked", "pref:1")
    OutboundMessage.objects.filter(pk=original.pk).update(status=Status.FAILED, last_error="550 no such user")
    Patient.objects.filter(pk=patient.pk).update(email="new@example.test")
    original.refresh_from_db()
    with django_capture_on_commit_callbacks(execute=True):
        copy = message_resend(message=original, by=manager)
    assert copy.to_email == "new@example.test" and [mail.to for mail in mailoutbox] == [["new@example.test"]]

    Patient.objects.filter(pk=patient.pk).update(email_transactional=False)
    original.refresh_from_db()
    with django_capture_on_commit_callbacks(execute=True):
        refused = message_resend(message=original, by=manager)
    assert refused.status == Status.CANCELLED and len(mailoutbox) == 1


@pytest.mark.django_db
@pytest.mark.parametrize("status", [Status.SCHEDULED, Status.SENDING])
def test_a_message_not_sent_yet_cannot_be_resent(status: str, manager: User) -> None:
    original = _queue(None, "system_test", "pending:1", due_at=timezone.now() + timedelta(days=1))
    OutboundMessage.objects.filter(pk=original.pk).update(status=status)
    with pytest.raises(ValidationError):
        message_resend(message=original, by=manager)
    assert OutboundMessage.objects.count() == 1


def test_archiving_a_record_stops_reminders_and_links_but_not_safety_messages(db: None, manager: User) -> None:
    from aftercare.links import LinkRefused, patient_link_create, patient_link_resolve
    from aftercare.services.outbox import REASON_ARCHIVED
    from patients.services.registry import patient_archive, patient_restore

    patient = PatientFactory(created_by=manager)
    later = timezone.now() + timedelta(days=30)
    recall = _queue(patient, "maintenance_recall", "recall:1", due_at=later)
    followup = _queue(patient, "adverse_followup", "followup:1", due_at=later)
    token = patient_link_create(patient=patient, purpose="preferences")

    patient_archive(patient=patient, reason="Moved abroad")

    recall.refresh_from_db()
    followup.refresh_from_db()
    assert (recall.status, followup.status) == (OutboundMessage.Status.CANCELLED, OutboundMessage.Status.SCHEDULED)
    assert "archived" in recall.last_error
    with pytest.raises(LinkRefused):
        patient_link_resolve(token)
    patient.refresh_from_db()
    assert _queue(patient, "appointment_reminder", "reminder:9").last_error == f"not sent: {REASON_ARCHIVED}"
    assert _queue(patient, "lot_recall", "lot:9").status == OutboundMessage.Status.SCHEDULED
    patient_restore(patient=patient)
    patient.refresh_from_db()
    assert _queue(patient, "appointment_reminder", "reminder:10").status == OutboundMessage.Status.SCHEDULED
