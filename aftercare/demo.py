"""Demo patient messages for `make run`: a check-in answered, a failed email in the outbox.

Most demo messages need no seeding: booking the demo calendar and recording the demo
sessions queue them, exactly as in the clinic."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from aftercare.checkin import checkin_submit
from aftercare.links import patient_link_create, patient_link_resolve
from aftercare.models import CheckInResponse, OutboundMessage, PatientLink
from treatments.models import TreatmentSession


@transaction.atomic
def messages_demo_seed() -> int:
    """Idempotent: does nothing once a demo check-in exists. Returns rows made."""
    if CheckInResponse.objects.exists():
        return 0
    session = (
        TreatmentSession.objects.filter(status="completed").select_related("patient").order_by("-performed_at").first()
    )
    if session is None:
        return 0
    token = patient_link_create(patient=session.patient, purpose=PatientLink.Purpose.CHECKIN, session=session)
    checkin_submit(
        link=patient_link_resolve(token),
        answers={
            "bruising": "mild",
            "swelling": "moderate",
            "redness": "none",
            "pain": "mild",
            "lumps": "none",
            "comment": "Still a bit swollen on the left side this morning.",
        },
    )
    # What a bounced address looks like to the manager (Outbox → Resend once corrected).
    OutboundMessage.objects.get_or_create(
        dedupe_key="demo:bounced",
        defaults={
            "kind": "appointment_reminder",
            "patient": session.patient,
            "to_email": "old.address@invalid.example",
            "subject": "Reminder: your appointment tomorrow",
            "body_text": "(demo) A reminder that the mail server refused.",
            "status": OutboundMessage.Status.FAILED,
            "attempts": 1,
            "last_error": "SMTPRecipientsRefused: 550 5.1.1 mailbox unavailable",
            "due_at": timezone.now(),
        },
    )
    return 2
