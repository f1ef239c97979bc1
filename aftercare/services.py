"""Writes to the outbox and the sending state machine."""

from __future__ import annotations

import logging
import random
import smtplib
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.core.mail.message import make_msgid
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from aftercare.models import OutboundMessage
from mesoclinic.celery import enqueue_on_commit

if TYPE_CHECKING:
    from patients.models import Patient
    from treatments.models import Appointment

logger = logging.getLogger("mesoclinic.outbox")

MAX_ATTEMPTS = 6
SWEEP_BATCH = 200


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
    ics: str = "",
) -> OutboundMessage:
    """Add a message to the outbox (once per ``dedupe_key``) and send it after commit if due."""
    from aftercare.tasks import message_send

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
            "ics": ics,
        },
    )
    if created and message.due_at <= timezone.now():
        enqueue_on_commit(message_send, message.pk)
    return message


def _ics_method(ics: str) -> str:
    # Mail clients act on the part's method parameter, which must match the file's METHOD.
    for line in ics.splitlines():
        if line.upper().startswith("METHOD:"):
            return line.split(":", 1)[1].strip().upper() or "PUBLISH"
    return "PUBLISH"


def _backoff(attempt: int) -> timedelta:
    # 1, 2, 4, 8 … minutes with ±20% jitter so that retries after an outage spread out.
    base = 60 * 2 ** max(attempt - 1, 0)
    return timedelta(seconds=base * random.uniform(0.8, 1.2))  # noqa: S311 - jitter, not security


def _is_permanent(error: Exception) -> bool:
    code = getattr(error, "smtp_code", None)
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        codes = [c for c, _ in error.recipients.values()]
        code = min(codes) if codes else None
    return code is not None and 500 <= int(code) < 600


def message_send(*, message_id: int) -> bool:
    """Send one outbox row if it is still due and unclaimed. Returns whether it was sent now."""
    now = timezone.now()
    claimed = OutboundMessage.objects.filter(
        pk=message_id, status=OutboundMessage.Status.SCHEDULED, due_at__lte=now
    ).update(status=OutboundMessage.Status.SENDING, claimed_at=now, attempts=F("attempts") + 1)
    if not claimed:
        return False
    message = OutboundMessage.objects.get(pk=message_id)
    email = EmailMultiAlternatives(
        subject=message.subject,
        body=message.body_text,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[message.to_email],
        connection=get_connection(),
    )
    if message.body_html:
        email.attach_alternative(message.body_html, "text/html")
    if message.ics:
        email.attach("appointment.ics", message.ics, f"text/calendar; method={_ics_method(message.ics)}")
    email.extra_headers["X-MesoClinic-Message"] = str(message.pk)
    email.extra_headers["Message-ID"] = header_id = make_msgid(domain="mesoclinic.local")
    try:
        email.send()
    except Exception as error:  # noqa: BLE001 - every failure is recorded on the row
        _message_failed(message, error)
        return False
    OutboundMessage.objects.filter(pk=message.pk).update(
        status=OutboundMessage.Status.SENT,
        sent_at=timezone.now(),
        last_error="",
        provider_message_id=header_id,
    )
    return True


def _message_failed(message: OutboundMessage, error: Exception) -> None:
    text = f"{type(error).__name__}: {error}"[:2000]
    if _is_permanent(error) or message.attempts >= MAX_ATTEMPTS:
        status = OutboundMessage.Status.FAILED
        due_at = message.due_at
        logger.error("message %s failed for good: %s", message.pk, text)
    else:
        status = OutboundMessage.Status.SCHEDULED
        due_at = timezone.now() + _backoff(message.attempts)
        logger.warning("message %s will be retried at %s: %s", message.pk, due_at, text)
    OutboundMessage.objects.filter(pk=message.pk).update(status=status, due_at=due_at, last_error=text)


def message_sweep_due() -> list[int]:
    """Hand due, unclaimed rows to send tasks (run every minute by beat)."""
    from aftercare.tasks import message_send

    with transaction.atomic():
        ids = list(
            OutboundMessage.objects.select_for_update(skip_locked=True)
            .filter(status=OutboundMessage.Status.SCHEDULED, due_at__lte=timezone.now())
            .order_by("due_at")
            .values_list("pk", flat=True)[:SWEEP_BATCH]
        )
        for message_id in ids:
            enqueue_on_commit(message_send, message_id)
    return ids


def outbox_pending_count() -> int:
    return OutboundMessage.objects.filter(
        status__in=[OutboundMessage.Status.SCHEDULED, OutboundMessage.Status.SENDING]
    ).count()
