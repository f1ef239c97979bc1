"""Booking emails to patients: confirmation, change and cancellation, each with a calendar file.

Called by the booking service inside the booking's transaction (the outbox pattern): the
message row commits with the booking or not at all, and is sent after commit.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal
from zoneinfo import ZoneInfo

from django.conf import settings
from django.template.loader import render_to_string
from django.utils import formats, translation

from aftercare.services import message_queue
from treatments.models import Appointment
from treatments.services.calendar_files import appointment_ics

if TYPE_CHECKING:
    from aftercare.models import OutboundMessage

Action = Literal["booked", "moved", "cancelled"]
ACTIONS: frozenset[str] = frozenset({"booked", "moved", "cancelled"})


def _language(preferred: str) -> str:
    known = {code for code, _name in settings.LANGUAGES}
    return preferred if preferred in known else settings.LANGUAGE_CODE


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


def appointment_message_queue(*, appointment: Appointment, action: Action) -> OutboundMessage | None:
    """Queue the patient's email for a booking event, with its ``.ics`` attached.

    At most one message per appointment, action and revision (a retried transaction or a
    double call queues nothing new; a second move is a new revision, so a new email).
    Returns None when the patient gets no email: blocked time, no address, or booking
    emails turned off."""
    if action not in ACTIONS:
        raise ValueError(f"unknown booking action {action!r}")
    patient = appointment.patient
    if (
        patient is None
        or appointment.kind == Appointment.Kind.BLOCKED
        or not patient.email
        or not patient.email_transactional
    ):
        return None
    language = _language(getattr(patient, "preferred_language", "") or "")
    with translation.override(language):
        context = _context(appointment)
        subject = render_to_string(f"aftercare/email/appointment_{action}_subject.txt", context)
        body_text = render_to_string(f"aftercare/email/appointment_{action}.txt", context)
        body_html = render_to_string(f"aftercare/email/appointment_{action}.html", context)
        ics = appointment_ics(appointment, method="CANCEL" if action == "cancelled" else "REQUEST", audience="patient")
    return message_queue(
        kind=f"appointment_{action}",
        to_email=patient.email,
        subject=" ".join(subject.split())[:300],
        body_text=body_text,
        body_html=body_html,
        dedupe_key=f"appointment:{appointment.pk}:{action}:{appointment.revision}",
        language=language,
        patient=patient,
        appointment=appointment,
        ics=ics,
    )
