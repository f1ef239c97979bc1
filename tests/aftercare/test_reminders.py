"""Appointment reminders: one for the current time only, none for a cancelled booking, none
when the booking is too close; scheduled with the time machine."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.utils import timezone

from aftercare.models import OutboundMessage
from aftercare.services import message_sweep_due
from mesoclinic.access import Role
from mesoclinic.models import User
from tests.factories import LocationFactory, PatientFactory, UserFactory
from treatments.models import Appointment, PlanArea
from treatments.services.booking import appointment_book, appointment_cancel, appointment_reschedule
from treatments.services.plans import plan_create

PARIS = ZoneInfo("Europe/Paris")
# A Monday morning; every booking below is made "now".
NOW = datetime(2030, 3, 4, 9, 0, tzinfo=PARIS)
Status = OutboundMessage.Status


@pytest.fixture
def clock():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture
def setup(db: None, front_desk: User, clock) -> dict:
    location = LocationFactory(time_zone="Europe/Paris", name="Opéra", phone="01 02 03 04 05")
    return {
        "location": location,
        "doctor": UserFactory(full_name="Dr Paula Martin", role=Role.PRACTITIONER),
        "desk": front_desk,
        "patient": PatientFactory(created_by=front_desk, preferred_language="en", first_name="Nina"),
    }


def _book(setup: dict, starts_at: datetime, *, patient=None, kind: str = "treatment", plan=None) -> Appointment:
    return appointment_book(
        location=setup["location"],
        practitioner=setup["doctor"],
        patient=patient or setup["patient"],
        kind=kind,
        starts_at=starts_at,
        created_by=setup["desk"],
        plan=plan,
    )


def _reminders(appointment: Appointment):
    return OutboundMessage.objects.filter(appointment=appointment, kind="appointment_reminder").order_by("pk")


def test_a_booking_queues_its_confirmation_and_a_reminder_24_hours_before(setup) -> None:
    starts_at = datetime(2030, 3, 6, 10, 0, tzinfo=PARIS)
    appointment = _book(setup, starts_at)
    kinds = sorted(OutboundMessage.objects.filter(appointment=appointment).values_list("kind", flat=True))
    assert kinds == ["appointment_booked", "appointment_reminder"]
    reminder = _reminders(appointment).get()
    assert reminder.status == Status.SCHEDULED
    assert reminder.due_at == starts_at - timedelta(hours=24)
    assert reminder.dedupe_key == f"reminder:{appointment.pk}:{appointment.revision}"
    assert reminder.patient == setup["patient"] and reminder.language == "en"
    assert reminder.subject.startswith("Reminder: your appointment on Wednesday 6 March 2030 at 10:00")
    body = reminder.body_text
    assert "a new medicine" in body and "48 hours after the session" in body
    assert "01 02 03 04 05" in body and "Dr Paula Martin" in body
    # The booking link (confirm or cancel) and the preferences link, both personal.
    assert body.count("/p/") == 2
    assert not reminder.ics


def test_the_confirmation_carries_a_booking_link_and_a_preferences_link(setup) -> None:
    from aftercare.models import PatientLink

    appointment = _book(setup, datetime(2030, 3, 6, 10, 0, tzinfo=PARIS))
    confirmation = OutboundMessage.objects.get(appointment=appointment, kind="appointment_booked")
    assert "To confirm that you are coming, or to cancel, use this link: http" in confirmation.body_text
    assert "Choose which emails you receive: http" in confirmation.body_text
    links = PatientLink.objects.filter(patient=setup["patient"])
    assert sorted(links.values_list("purpose", flat=True)) == ["booking", "preferences"]
    booking = links.get(purpose="booking")
    assert booking.appointment == appointment and booking.expires_at > appointment.ends_at


def test_the_reminder_delay_is_a_setting(setup, settings) -> None:
    settings.REMINDER_HOURS_BEFORE = 48
    starts_at = datetime(2030, 3, 7, 10, 0, tzinfo=PARIS)
    reminder = _reminders(_book(setup, starts_at)).get()
    assert reminder.due_at == starts_at - timedelta(hours=48)


def test_a_booking_less_than_24_hours_ahead_gets_no_reminder(setup) -> None:
    appointment = _book(setup, NOW + timedelta(hours=10))
    assert not _reminders(appointment).exists()
    assert OutboundMessage.objects.filter(appointment=appointment, kind="appointment_booked").exists()


def test_after_a_reschedule_only_the_new_time_is_reminded(setup) -> None:
    appointment = _book(setup, datetime(2030, 3, 6, 10, 0, tzinfo=PARIS))
    new_start = datetime(2030, 3, 8, 14, 30, tzinfo=PARIS)
    moved = appointment_reschedule(appointment=appointment, starts_at=new_start, by=setup["desk"], revision=1)
    old, new = _reminders(moved)
    assert old.status == Status.CANCELLED and "not sent" in old.last_error
    assert new.status == Status.SCHEDULED
    assert new.due_at == new_start - timedelta(hours=24)
    assert "14:30" in new.body_text and "Friday 8 March 2030" in new.body_text
    assert _reminders(moved).filter(status=Status.SCHEDULED).count() == 1


def test_moving_to_within_24_hours_leaves_no_reminder(setup) -> None:
    appointment = _book(setup, datetime(2030, 3, 6, 10, 0, tzinfo=PARIS))
    moved = appointment_reschedule(
        appointment=appointment, starts_at=NOW + timedelta(hours=6), by=setup["desk"], revision=1
    )
    assert list(_reminders(moved).values_list("status", flat=True)) == [Status.CANCELLED]


def test_a_cancelled_booking_sends_no_reminder_even_when_its_time_comes(
    setup, clock, mailoutbox: list, django_capture_on_commit_callbacks
) -> None:
    cancelled = _book(setup, datetime(2030, 3, 6, 10, 0, tzinfo=PARIS))
    kept = _book(setup, datetime(2030, 3, 6, 11, 0, tzinfo=PARIS), patient=PatientFactory(created_by=setup["desk"]))
    appointment_cancel(appointment=cancelled, by=setup["desk"], reason="asked by phone")
    assert _reminders(cancelled).get().status == Status.CANCELLED
    clock.move_to(datetime(2030, 3, 5, 11, 5, tzinfo=PARIS))  # both reminders are due now
    mailoutbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        message_sweep_due()
    # (The confirmations, never sent in this test's transaction, go out in the same sweep.)
    reminders = [mail for mail in mailoutbox if mail.subject.startswith(("Reminder", "Rappel"))]
    assert [mail.to for mail in reminders] == [[kept.patient.email]]
    assert _reminders(cancelled).get().status == Status.CANCELLED
    assert _reminders(kept).get().status == Status.SENT


def test_the_reminder_waits_for_its_time(setup, clock, mailoutbox: list, django_capture_on_commit_callbacks) -> None:
    appointment = _book(setup, datetime(2030, 3, 6, 10, 0, tzinfo=PARIS))
    clock.move_to(datetime(2030, 3, 5, 9, 55, tzinfo=PARIS))
    with django_capture_on_commit_callbacks(execute=True):
        message_sweep_due()  # sends the confirmation only
    assert [mail.subject.split(":")[0] for mail in mailoutbox] == ["Appointment confirmed"]
    mailoutbox.clear()
    clock.move_to(datetime(2030, 3, 5, 10, 0, tzinfo=PARIS))
    with django_capture_on_commit_callbacks(execute=True):
        message_sweep_due()
    assert [mail.subject.split(":")[0] for mail in mailoutbox] == ["Reminder"]
    assert _reminders(appointment).get().status == Status.SENT


def test_the_reminder_follows_the_patients_language(setup) -> None:
    patient = PatientFactory(created_by=setup["desk"], preferred_language="fr")
    reminder = _reminders(_book(setup, datetime(2030, 3, 6, 10, 0, tzinfo=PARIS), patient=patient)).get()
    assert reminder.language == "fr"
    # Day and month names come from Django's own French catalogue.
    assert "6 mars 2030" in reminder.subject and "6 mars 2030" in reminder.body_text


def test_a_face_treatment_reminder_asks_to_come_without_make_up(setup, practitioner) -> None:
    patient = setup["patient"]
    face = plan_create(patient=patient, practitioner=practitioner, concern="skin_rejuvenation")
    body = plan_create(patient=patient, practitioner=practitioner, concern="fat_reduction")
    for plan, area in ((face, "face"), (body, "abdomen")):
        PlanArea.objects.create(
            plan=plan,
            area=area,
            technique="nappage",
            depth_mm=2,
            needle_gauge=32,
            needle_length_mm=4,
            points=20,
            volume_per_point_ml="0.05",
        )
    face_reminder = _reminders(_book(setup, datetime(2030, 3, 6, 10, 0, tzinfo=PARIS), plan=face)).get()
    body_reminder = _reminders(_book(setup, datetime(2030, 3, 7, 10, 0, tzinfo=PARIS), plan=body)).get()
    assert "without make-up" in face_reminder.body_text
    assert "without make-up" not in body_reminder.body_text


def test_a_consultation_reminder_asks_for_the_medicines_list(setup) -> None:
    reminder = _reminders(_book(setup, datetime(2030, 3, 6, 10, 0, tzinfo=PARIS), kind="consultation")).get()
    assert "list of the medicines you take" in reminder.body_text
    assert "48 hours after the session" not in reminder.body_text


def test_a_patient_without_booking_emails_gets_no_reminder(setup) -> None:
    patient = PatientFactory(created_by=setup["desk"], email_transactional=False)
    appointment = _book(setup, datetime(2030, 3, 6, 10, 0, tzinfo=PARIS), patient=patient)
    rows = OutboundMessage.objects.filter(appointment=appointment)
    assert {row.status for row in rows} == {OutboundMessage.Status.CANCELLED}
    assert rows.filter(kind="appointment_reminder").exists()


def test_the_reminder_body_says_nothing_clinical(setup) -> None:
    appointment = appointment_book(
        location=setup["location"],
        practitioner=setup["doctor"],
        patient=setup["patient"],
        kind="treatment",
        starts_at=datetime(2030, 3, 6, 10, 0, tzinfo=PARIS),
        created_by=setup["desk"],
        note="NOTE-MARKER-771",
    )
    reminder = _reminders(appointment).get()
    for text in (reminder.subject, reminder.body_text, reminder.body_html):
        assert "NOTE-MARKER-771" not in text
    assert timezone.is_aware(reminder.due_at)


@pytest.mark.django_db
def test_side_effect_follow_ups_are_swept_every_hour(settings) -> None:
    from aftercare.tasks import adverse_followups_queue

    entry = settings.CELERY_BEAT_SCHEDULE["adverse-followups"]
    assert entry["task"] == adverse_followups_queue.name and entry["schedule"] == 3600.0
    assert adverse_followups_queue.delay().get() == 0  # nothing open: nothing queued
