"""Booking emails: one per event and revision, in the patient's language, with the calendar file."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone
from icalendar import Calendar

from aftercare.booking_messages import appointment_message_queue
from aftercare.models import OutboundMessage
from mesoclinic.access import Role
from mesoclinic.models import User
from tests.factories import LocationFactory, PatientFactory, UserFactory
from treatments.models import Appointment
from treatments.services.booking import appointment_cancel, appointment_reschedule

PARIS = ZoneInfo("Europe/Paris")
NOTE_MARKER = "NOTE-MARKER-5512"
REASON_MARKER = "REASON-MARKER-5512"


@pytest.fixture
def setup(db: None, front_desk: User) -> dict:
    location = LocationFactory(
        time_zone="Europe/Paris", name="Opéra", address="12 rue de la Paix\n75002 Paris", phone="01 02 03 04 05"
    )
    return {
        "location": location,
        "doctor": UserFactory(full_name="Dr Paula Martin", role=Role.PRACTITIONER),
        "desk": front_desk,
    }


def _tomorrow_at(hour: int) -> datetime:
    day = timezone.localdate() + timedelta(days=1)
    return datetime(day.year, day.month, day.day, hour, tzinfo=PARIS)


def _appointment(setup: dict, *, starts_at: datetime | None = None, patient=None, **extra) -> Appointment:
    starts_at = starts_at or _tomorrow_at(10)
    if "kind" not in extra or extra["kind"] != Appointment.Kind.BLOCKED:
        extra.setdefault("kind", Appointment.Kind.TREATMENT)
        patient = patient or PatientFactory(created_by=setup["desk"], preferred_language="en")
    return Appointment.objects.create(
        location=setup["location"],
        practitioner=setup["doctor"],
        patient=patient,
        starts_at=starts_at,
        ends_at=starts_at + timedelta(minutes=45),
        created_by=setup["desk"],
        **extra,
    )


def _rows(appointment: Appointment):
    # Reminders have their own tests (test_reminders.py); whether one is due depends on the hour.
    return OutboundMessage.objects.filter(appointment=appointment).exclude(kind="appointment_reminder")


def test_same_action_and_revision_queues_once(setup) -> None:
    appointment = _appointment(setup)
    first = appointment_message_queue(appointment=appointment, action="booked")
    second = appointment_message_queue(appointment=appointment, action="booked")
    assert first is not None and first.pk == second.pk
    assert _rows(appointment).count() == 1
    assert first.dedupe_key == f"appointment:{appointment.pk}:booked:{appointment.revision}"
    assert first.patient == appointment.patient and first.kind == "appointment_booked"


def test_each_move_is_a_new_message(setup) -> None:
    appointment = _appointment(setup)
    appointment_message_queue(appointment=appointment, action="booked")
    for hour in (14, 16):
        appointment = appointment_reschedule(
            appointment=appointment, starts_at=_tomorrow_at(hour), by=setup["desk"], revision=appointment.revision
        )
        appointment_message_queue(appointment=appointment, action="moved")
    assert _rows(appointment).count() == 3
    assert _rows(appointment).filter(kind="appointment_moved").count() == 2


def test_booked_message_is_sent_with_the_calendar_file(
    setup, mailoutbox: list, django_capture_on_commit_callbacks
) -> None:
    appointment = _appointment(setup, note=NOTE_MARKER)
    with django_capture_on_commit_callbacks(execute=True):
        message = appointment_message_queue(appointment=appointment, action="booked")
    assert len(mailoutbox) == 1
    email = mailoutbox[0]
    assert email.to == [appointment.patient.email]
    (filename, content, mimetype) = email.attachments[0]
    assert filename == "appointment.ics" and mimetype == "text/calendar; method=REQUEST"
    calendar = Calendar.from_ical(content)
    assert str(calendar["METHOD"]) == "REQUEST"
    assert str(calendar.walk("VEVENT")[0]["UID"]) == f"appointment-{appointment.pk}@localhost"
    html = email.alternatives[0][0]
    for text in (email.subject, email.body, html, content):
        assert NOTE_MARKER not in text
    assert "Dr Paula Martin" in email.body and "12 rue de la Paix, 75002 Paris" in email.body
    assert "calendar file" in email.body and "01 02 03 04 05" in email.body
    assert email.subject.startswith("Appointment confirmed:")
    message.refresh_from_db()
    assert message.status == OutboundMessage.Status.SENT


def test_cancellation_says_so_without_the_reason_and_removes_the_event(
    setup, mailoutbox: list, django_capture_on_commit_callbacks
) -> None:
    appointment = _appointment(setup)
    with django_capture_on_commit_callbacks(execute=True):
        cancelled = appointment_cancel(appointment=appointment, by=setup["desk"], reason=REASON_MARKER)
        appointment_message_queue(appointment=cancelled, action="cancelled")
    email = next(m for m in mailoutbox if m.subject.startswith("Appointment cancelled"))
    (_filename, content, mimetype) = email.attachments[0]
    assert mimetype == "text/calendar; method=CANCEL"
    event = Calendar.from_ical(content).walk("VEVENT")[0]
    assert str(event["STATUS"]) == "CANCELLED"
    assert "cancelled" in email.body and "01 02 03 04 05" in email.body
    for text in (email.subject, email.body, email.alternatives[0][0], content):
        assert REASON_MARKER not in text


def test_french_patient_gets_french_text_with_paris_times(setup, settings) -> None:
    settings.TIME_ZONE = "UTC"
    patient = PatientFactory(created_by=setup["desk"], preferred_language="fr")
    appointment = _appointment(setup, patient=patient, starts_at=datetime(2030, 1, 15, 10, 0, tzinfo=PARIS))
    message = appointment_message_queue(appointment=appointment, action="booked")
    assert message.language == "fr"
    # Day and month names come from Django's own French catalogue.
    assert "mardi 15 janvier 2030" in message.subject
    assert "10:00" in message.subject and "10:00" in message.body_text
    assert "DTSTART:20300115T090000Z" in message.ics


def test_english_patient_gets_english_text(setup) -> None:
    appointment = _appointment(setup, starts_at=datetime(2030, 7, 16, 10, 0, tzinfo=PARIS))
    message = appointment_message_queue(appointment=appointment, action="booked")
    assert message.language == "en"
    assert "Tuesday 16 July 2030" in message.subject


def test_no_message_when_the_patient_has_no_address(setup) -> None:
    patient = PatientFactory(created_by=setup["desk"], email="")
    appointment = _appointment(setup, patient=patient)
    assert appointment_message_queue(appointment=appointment, action="booked") is None
    assert not OutboundMessage.objects.exists()


def test_booking_emails_turned_off_are_logged_as_not_sent(setup) -> None:
    from aftercare.models import PatientLink

    patient = PatientFactory(created_by=setup["desk"], email_transactional=False)
    appointment = _appointment(setup, patient=patient, starts_at=timezone.now() + timedelta(days=3))
    message = appointment_message_queue(appointment=appointment, action="booked")
    rows = OutboundMessage.objects.filter(appointment=appointment).order_by("kind")
    assert [(row.kind, row.status) for row in rows] == [
        ("appointment_booked", OutboundMessage.Status.CANCELLED),
        ("appointment_reminder", OutboundMessage.Status.CANCELLED),
    ]
    assert message == rows[0]
    assert all("turned off booking and aftercare emails" in row.last_error for row in rows)
    # No live link was minted for an email that never leaves.
    assert not PatientLink.objects.filter(patient=patient).exists()
    assert "http" not in message.body_text


def test_no_message_for_blocked_time(setup) -> None:
    appointment = _appointment(setup, kind=Appointment.Kind.BLOCKED)
    assert appointment_message_queue(appointment=appointment, action="booked") is None
    assert not OutboundMessage.objects.exists()


def test_unknown_action_is_a_programming_error(setup) -> None:
    with pytest.raises(ValueError, match="checked_in"):
        appointment_message_queue(appointment=_appointment(setup), action="checked_in")  # type: ignore[arg-type]


def test_the_booking_service_queues_in_its_own_transaction(setup: dict) -> None:
    from django.db import transaction

    from treatments.services.booking import appointment_book

    patient = PatientFactory(created_by=setup["desk"], preferred_language="en")

    def book(hour: int) -> Appointment:
        return appointment_book(
            location=setup["location"],
            practitioner=setup["doctor"],
            patient=patient,
            kind="treatment",
            starts_at=_tomorrow_at(hour),
            created_by=setup["desk"],
        )

    class Abort(Exception):
        pass

    with pytest.raises(Abort), transaction.atomic():
        book(9)
        raise Abort
    assert not OutboundMessage.objects.exists()  # rolled back: no booking, no message
    appointment = book(10)
    assert list(_rows(appointment).values_list("kind", flat=True)) == ["appointment_booked"]
    moved = appointment_reschedule(
        appointment=appointment, starts_at=_tomorrow_at(14), by=setup["desk"], revision=appointment.revision
    )
    appointment_cancel(appointment=moved, by=setup["desk"], reason="asked by phone")
    assert sorted(_rows(appointment).values_list("kind", flat=True)) == [
        "appointment_booked",
        "appointment_cancelled",
        "appointment_moved",
    ]
    assert all(row.ics for row in _rows(appointment))
