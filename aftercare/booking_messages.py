"""Booking emails to patients: confirmation, change and cancellation (each with a calendar
file), and the reminder before the appointment.

Called by the booking service inside the booking's transaction (the outbox pattern): the
message rows commit with the booking or not at all, and are sent after commit. A move or a
cancellation first cancels the pending reminder, so only the current time is ever recalled.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Literal
from zoneinfo import ZoneInfo

from django.conf import settings
from django.template.loader import render_to_string
from django.utils import formats, timezone, translation

from aftercare.content import message_language, reminder_preparation
from aftercare.links import patient_link_create, patient_link_url, patient_links_revoke
from aftercare.models import PatientLink
from aftercare.services import message_allowed, message_cancel_pending, message_queue
from treatments.models import Appointment
from treatments.services.calendar_files import appointment_ics

if TYPE_CHECKING:
    from aftercare.models import OutboundMessage

Action = Literal["booked", "moved", "cancelled"]
ACTIONS: frozenset[str] = frozenset({"booked", "moved", "cancelled"})
REMINDER_KIND = "appointment_reminder"


def reminder_hours_before() -> int:
    return int(getattr(settings, "REMINDER_HOURS_BEFORE", 24))


def _context(appointment: Appointment) -> dict[str, object]:
    location = appointment.location
    clinic = location.clinic
    local = appointment.starts_at.astimezone(ZoneInfo(location.time_zone))
    address = ", ".join(line.strip() for line in location.address.splitlines() if line.strip())
    # Deliberately nothing clinical: no plan, no notes, no cancellation reason (it may be medical).
    return {
        "first_name": appointment.patient.first_name if appointment.patient else "",
        "kind": appointment.get_kind_display(),
        "when_date": formats.date_format(local, "l j F Y"),
        # 24-hour in both languages: English "P" would write "noon" in the middle of a line.
        "when_time": formats.time_format(local, "H:i"),
        "location_name": location.name,
        "location_address": address,
        "phone": location.phone or clinic.phone,
        "practitioner_name": appointment.practitioner.full_name,
        "clinic_name": clinic.name,
    }


def _render(name: str, context: dict[str, object]) -> tuple[str, str, str]:
    subject = render_to_string(f"aftercare/email/{name}_subject.txt", context)
    return (
        " ".join(subject.split())[:300],
        render_to_string(f"aftercare/email/{name}.txt", context),
        render_to_string(f"aftercare/email/{name}.html", context),
    )


def appointment_message_queue(*, appointment: Appointment, action: Action) -> OutboundMessage | None:
    """Queue the patient's email for a booking event, with its ``.ics`` attached, and the
    reminder for the (new) time.

    At most one message per appointment, action and revision (a retried transaction or a
    double call queues nothing new; a second move is a new revision, so a new email).
    Returns None for blocked time or a patient with no address. A patient who turned
    booking emails off gets the rows all the same, stored cancelled with the reason, so
    the communications log says why nothing went out."""
    if action not in ACTIONS:
        raise ValueError(f"unknown booking action {action!r}")
    patient = appointment.patient
    if action in {"moved", "cancelled"}:
        # Whatever the patient's settings now, a reminder for the old time must not go out.
        message_cancel_pending(appointment=appointment, kinds=[REMINDER_KIND])
    if action == "cancelled" and patient is not None:
        patient_links_revoke(patient=patient, purpose=PatientLink.Purpose.BOOKING, appointment=appointment)
    if patient is None or appointment.kind == Appointment.Kind.BLOCKED or not patient.email:
        return None
    language = message_language(getattr(patient, "preferred_language", "") or "")
    context: dict[str, object] = {}
    # A patient who turned booking emails off still gets a row (stored cancelled by the
    # outbox's preference gate, with the reason) but no live links minted for nothing.
    may_send, _reason = message_allowed(patient, f"appointment_{action}")
    if may_send and action != "cancelled":
        # One link for the confirmation and the reminder: both act on the same booking.
        context["booking_url"] = patient_link_url(
            patient_link_create(
                patient=patient,
                purpose=PatientLink.Purpose.BOOKING,
                appointment=appointment,
                expires_at=max(appointment.ends_at, timezone.now()) + timedelta(days=1),
            )
        )
    if may_send:
        context["preferences_url"] = patient_link_url(
            patient_link_create(patient=patient, purpose=PatientLink.Purpose.PREFERENCES)
        )
    with translation.override(language):
        context.update(_context(appointment))
        subject, body_text, body_html = _render(f"appointment_{action}", context)
        ics = appointment_ics(appointment, method="CANCEL" if action == "cancelled" else "REQUEST", audience="patient")
    message = message_queue(
        kind=f"appointment_{action}",
        to_email=patient.email,
        subject=subject,
        body_text=body_text,
        body_html=body_html,
        dedupe_key=f"appointment:{appointment.pk}:{action}:{appointment.revision}",
        language=language,
        patient=patient,
        appointment=appointment,
        ics=ics,
    )
    if action != "cancelled":
        appointment_reminder_queue(appointment=appointment, context=context, language=language)
    return message


def appointment_reminder_queue(
    *, appointment: Appointment, context: dict[str, object], language: str
) -> OutboundMessage | None:
    """Schedule the reminder ``REMINDER_HOURS_BEFORE`` the start, with preparation advice.

    Nothing when that time has already passed (a booking made for this afternoon): the
    confirmation just sent says it all."""
    due_at = appointment.starts_at - timedelta(hours=reminder_hours_before())
    if due_at <= timezone.now():
        return None
    patient = appointment.patient
    if patient is None:
        return None
    with translation.override(language):
        subject, body_text, body_html = _render(
            "appointment_reminder", {**context, "preparation": reminder_preparation(appointment, language)}
        )
    return message_queue(
        kind=REMINDER_KIND,
        to_email=patient.email,
        subject=subject,
        body_text=body_text,
        body_html=body_html,
        dedupe_key=f"reminder:{appointment.pk}:{appointment.revision}",
        language=language,
        due_at=due_at,
        patient=patient,
        appointment=appointment,
    )
