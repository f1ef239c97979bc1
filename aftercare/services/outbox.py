"""Writes to the outbox: queueing (with the patient's email preferences), cancelling, resending."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from aftercare.models import OutboundMessage
from mesoclinic.celery import enqueue_on_commit

if TYPE_CHECKING:
    from mesoclinic.models import User
    from patients.models import Patient
    from treatments.models import AdverseEvent, Appointment, TreatmentPlan, TreatmentSession

# Clinical-safety messages go out even when the patient turned off booking and aftercare
# emails; only a withdrawal of all email stops them (the clinic then phones).
SAFETY_KINDS: frozenset[str] = frozenset({"aftercare", "checkin", "adverse_followup", "lot_recall"})
SAFETY_PREFIX = "safety_"

# Stored in last_error of a row the preferences stopped, so the communications log says why.
# English like the SMTP errors next to them: these are records, not page text.
REASON_WITHDRAWN = "the patient withdrew all email"
REASON_NO_ADDRESS = "no email address"
REASON_OPTED_OUT = "the patient turned off booking and aftercare emails"
REASON_ARCHIVED = "the patient's record is archived"


def message_is_safety(kind: str) -> bool:
    return kind in SAFETY_KINDS or kind.startswith(SAFETY_PREFIX)


def message_allowed(patient: Patient, kind: str) -> tuple[bool, str]:
    """Whether ``patient`` may be sent a message of ``kind`` now, and if not, why.

    The one place the patient's email preferences are read for sending."""
    if patient.email_withdrawn_at is not None:
        return False, REASON_WITHDRAWN
    if not patient.email:
        return False, REASON_NO_ADDRESS
    if not patient.email_transactional and not message_is_safety(kind):
        return False, REASON_OPTED_OUT
    if patient.status == patient.Status.ARCHIVED and not message_is_safety(kind):
        # Reminders and recalls stop when a record is archived; a side-effect follow-up
        # or a lot recall still reaches the patient.
        return False, REASON_ARCHIVED
    return True, ""


def message_queue(
    *,
    kind: str,
    to_email: str,
    subject: str,
    body_text: str,
    body_html: str = "",
    dedupe_key: str,
    language: str = "en",
    due_at: datetime | None = None,
    patient: Patient | None = None,
    appointment: Appointment | None = None,
    session: TreatmentSession | None = None,
    plan: TreatmentPlan | None = None,
    adverse_event: AdverseEvent | None = None,
    created_by: User | None = None,
    resend_of: OutboundMessage | None = None,
    ics: str = "",
) -> OutboundMessage:
    """Add a message to the outbox (once per ``dedupe_key``) and send it after commit if due.

    Call it inside the transaction of the event that causes the message. With a
    ``patient``, the patient's preferences decide: a message they must not receive is
    still recorded, as CANCELLED with the reason, so the communications log shows why."""
    from aftercare.tasks import message_send

    status = OutboundMessage.Status.SCHEDULED
    last_error = ""
    if patient is not None:
        allowed, reason = message_allowed(patient, kind)
        if not allowed:
            status, last_error = OutboundMessage.Status.CANCELLED, f"not sent: {reason}"
    message, created = OutboundMessage.objects.get_or_create(
        dedupe_key=dedupe_key,
        defaults={
            "kind": kind,
            "to_email": to_email,
            "subject": subject,
            "body_text": body_text,
            "body_html": body_html,
            "language": language,
            "due_at": due_at or timezone.now(),
            "patient": patient,
            "appointment": appointment,
            "session": session,
            "plan": plan,
            "adverse_event": adverse_event,
            "created_by": created_by,
            "resend_of": resend_of,
            "ics": ics,
            "status": status,
            "last_error": last_error,
        },
    )
    if created and message.status == OutboundMessage.Status.SCHEDULED and message.due_at <= timezone.now():
        enqueue_on_commit(message_send, message.pk)
    return message


def message_cancel_pending(
    *,
    appointment: Appointment | None = None,
    patient: Patient | None = None,
    kinds: Iterable[str] | None = None,
    keep_safety: bool = False,
    reason: str = "cancelled before sending",
) -> int:
    """Cancel the messages not yet handed to the mail server (e.g. a booking's reminders
    when it is cancelled or moved). Returns how many were cancelled.

    A message already being sent is not stopped: it left, or will be retried as usual.
    Without ``kinds`` every pending message of the appointment is cancelled, the
    confirmation of a change queued in the same transaction included — pass the kinds."""
    if appointment is None and patient is None and kinds is None:
        raise ValueError("message_cancel_pending needs an appointment, a patient or kinds")
    pending = OutboundMessage.objects.filter(status=OutboundMessage.Status.SCHEDULED)
    if appointment is not None:
        pending = pending.filter(appointment=appointment)
    if patient is not None:
        pending = pending.filter(patient=patient)
    if keep_safety:
        pending = pending.exclude(kind__in=SAFETY_KINDS).exclude(kind__startswith=SAFETY_PREFIX)
    if kinds is not None:
        pending = pending.filter(kind__in=list(kinds))
    # Conditional on SCHEDULED: a row a sender claimed a moment ago stays with the sender.
    return pending.update(status=OutboundMessage.Status.CANCELLED, claimed_at=None, last_error=f"not sent: {reason}")


RESENDABLE = frozenset({OutboundMessage.Status.SENT, OutboundMessage.Status.FAILED, OutboundMessage.Status.CANCELLED})


@transaction.atomic
def message_resend(*, message: OutboundMessage, by: User) -> OutboundMessage:
    """Queue a copy of a sent, failed or cancelled message as a new row (the original is
    never changed). Goes to the patient's current address, and through their current
    preferences: a patient who has since opted out gets a CANCELLED row saying why."""
    # Locked (not changed) so that two clicks get resend numbers 1 and 2, not a clash.
    original = (
        OutboundMessage.objects.select_for_update(of=("self",))
        .select_related("patient", "appointment", "session", "plan", "adverse_event")
        .get(pk=message.pk)
    )
    if original.status not in RESENDABLE:
        raise ValidationError(_("This message has not been sent yet: it cannot be resent."))
    number = original.resends.count() + 1
    patient = original.patient
    to_email = patient.email if patient is not None and patient.email else original.to_email
    return message_queue(
        kind=original.kind,
        to_email=to_email,
        subject=original.subject,
        body_text=original.body_text,
        body_html=original.body_html,
        ics=original.ics,
        dedupe_key=f"resend:{original.pk}:{number}",
        language=original.language,
        patient=patient,
        appointment=original.appointment,
        session=original.session,
        plan=original.plan,
        adverse_event=original.adverse_event,
        created_by=by,
        resend_of=original,
    )


def outbox_pending_count() -> int:
    return OutboundMessage.objects.filter(
        status__in=[OutboundMessage.Status.SCHEDULED, OutboundMessage.Status.SENDING]
    ).count()
