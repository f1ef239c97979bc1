"""What a patient may change through a link: confirm or cancel their appointment, and
which emails they receive. Each write takes its target from the link row, never from
the request, so a link for one appointment cannot act on another."""

from __future__ import annotations

from datetime import datetime

import pghistory
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from aftercare.models import OutboundMessage, PatientLink
from aftercare.services.outbox import REASON_OPTED_OUT, REASON_WITHDRAWN, SAFETY_KINDS, SAFETY_PREFIX
from patients.models import Patient
from treatments.models import Appointment
from treatments.services.booking import LATE_CANCEL, appointment_cancel


def _appointment_locked(link: PatientLink) -> Appointment:
    if link.purpose != PatientLink.Purpose.BOOKING or link.appointment_id is None:
        raise ValidationError(_("This link is not for an appointment."))
    appointment = (
        Appointment.objects.select_for_update(of=("self",))
        .select_related("location__clinic", "practitioner")
        .filter(pk=link.appointment_id, patient_id=link.patient_id)
        .first()
    )
    if appointment is None:
        raise ValidationError(_("This appointment is no longer available."))
    return appointment


def appointment_patient_can_cancel(appointment: Appointment, *, now: datetime | None = None) -> bool:
    """Online cancellation is open while the appointment is booked and more than the
    clinic's late-cancellation window away; after that the patient phones."""
    now = now or timezone.now()
    return appointment.status == Appointment.Status.BOOKED and appointment.starts_at - now > LATE_CANCEL


def appointment_patient_can_confirm(appointment: Appointment, *, now: datetime | None = None) -> bool:
    now = now or timezone.now()
    return appointment.status == Appointment.Status.BOOKED and appointment.starts_at > now


@transaction.atomic
def appointment_confirm_by_patient(*, link: PatientLink) -> Appointment:
    """The patient says they will come (idempotent: a second click keeps the first time)."""
    appointment = _appointment_locked(link)
    if not appointment_patient_can_confirm(appointment):
        raise ValidationError(_("This appointment can no longer be confirmed."))
    if appointment.patient_confirmed_at is None:
        appointment.patient_confirmed_at = timezone.now()
        with pghistory.context(patient_link_id=link.pk):
            appointment.save(update_fields=["patient_confirmed_at"])
    return appointment


@transaction.atomic
def appointment_cancel_by_patient(*, link: PatientLink) -> Appointment:
    """Cancel the link's appointment if it is still outside the late-cancellation window.

    Goes through the booking service, so the history row (by nobody: the patient) and
    the cancellation email are written as for any cancellation."""
    appointment = _appointment_locked(link)
    if not appointment_patient_can_cancel(appointment):
        raise ValidationError(_("This appointment can no longer be cancelled online: please call the clinic."))
    # Staff read the reason in the appointment's history: the clinic's language.
    with translation.override(settings.LANGUAGE_CODE):
        reason = _("Cancelled by the patient online")
    with pghistory.context(patient_link_id=link.pk):
        return appointment_cancel(appointment=appointment, by=None, reason=reason)  # type: ignore[arg-type]


def _pending_cancel(patient: Patient, *, keep_safety: bool, reason: str) -> int:
    pending = OutboundMessage.objects.filter(patient=patient, status=OutboundMessage.Status.SCHEDULED)
    if keep_safety:
        pending = pending.exclude(kind__in=SAFETY_KINDS).exclude(kind__startswith=SAFETY_PREFIX)
    # Conditional on SCHEDULED: a row a sender claimed a moment ago stays with the sender.
    return pending.update(status=OutboundMessage.Status.CANCELLED, claimed_at=None, last_error=f"not sent: {reason}")


@transaction.atomic
def patient_email_preferences_update(
    *,
    patient: Patient,
    email_transactional: bool,
    marketing_opt_in: bool,
    withdraw_all: bool,
    link: PatientLink | None = None,
) -> Patient:
    """Record which emails the patient wants (the change history keeps every choice).

    ``withdraw_all`` stops every email, safety messages after a treatment included (the
    clinic phones instead); it also ends news and offers. Turning it off again restores
    the other choices as given.
    """
    current = Patient.objects.select_for_update().get(pk=patient.pk)
    now = timezone.now()
    if withdraw_all:
        marketing_opt_in = False
    current.email_transactional = email_transactional
    if marketing_opt_in and not current.marketing_opt_in:
        current.marketing_opt_in_at = now
    elif not marketing_opt_in:
        current.marketing_opt_in_at = None
    current.marketing_opt_in = marketing_opt_in
    if withdraw_all and current.email_withdrawn_at is None:
        current.email_withdrawn_at = now
    elif not withdraw_all:
        current.email_withdrawn_at = None
    fields = ["email_transactional", "marketing_opt_in", "marketing_opt_in_at", "email_withdrawn_at"]
    with pghistory.context(patient_link_id=link.pk if link is not None else None, changed_by="patient"):
        current.save(update_fields=fields)
    # What is already queued obeys the new choice too (a reminder due next week, a check-in
    # due tomorrow): cancelled, with the reason, so the communications log shows why.
    if current.email_withdrawn_at is not None:
        _pending_cancel(current, keep_safety=False, reason=REASON_WITHDRAWN)
    elif not current.email_transactional:
        _pending_cancel(current, keep_safety=True, reason=REASON_OPTED_OUT)
    for field in fields:
        setattr(patient, field, getattr(current, field))
    return current
