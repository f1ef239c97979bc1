"""Patient links: the only way a patient (who has no account) reaches the app.

A link is a random 256-bit token in an email; the database keeps its SHA-256, so a copy
of the database gives nobody a working link. Each link has one purpose, an expiry, can be
revoked, and single-use purposes are spent by a conditional update.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from aftercare.models import PatientLink
from mesoclinic.secret_tokens import secret_token_hash, secret_token_new, secret_token_plausible
from patients.models import Patient
from treatments.models import Appointment, TreatmentPlan, TreatmentSession

Purpose = PatientLink.Purpose

LIFETIMES = {
    Purpose.PLAN: timedelta(days=30),
    Purpose.AFTERCARE: timedelta(days=30),
    Purpose.BOOKING: timedelta(days=60),
    Purpose.CHECKIN: timedelta(days=14),
    Purpose.PREFERENCES: timedelta(days=365),
}
SINGLE_USE = {Purpose.CHECKIN}


class LinkRefused(Exception):
    """Why a link does not open; ``message`` is what the patient reads."""

    MESSAGES = {
        "unknown": _("This link is not valid. Check that it was copied whole, or ask the clinic for a new one."),
        "expired": _("This link has expired. The clinic can send you a new one."),
        "revoked": _("This link was withdrawn by the clinic. The clinic can send you a new one."),
        "used": _("This form was already sent. Thank you: the clinic has your answers."),
    }

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)

    @property
    def message(self) -> str:
        return str(self.MESSAGES[self.reason])


def patient_link_create(
    *,
    patient: Patient,
    purpose: str,
    appointment: Appointment | None = None,
    session: TreatmentSession | None = None,
    plan: TreatmentPlan | None = None,
    expires_at: datetime | None = None,
) -> str:
    """Make a link and return its token (put it in the email; it is not kept)."""
    token = secret_token_new()
    now = timezone.now()
    PatientLink.objects.create(
        patient=patient,
        purpose=purpose,
        token_hash=secret_token_hash(token),
        appointment=appointment,
        session=session,
        plan=plan,
        created_at=now,
        expires_at=expires_at or now + LIFETIMES[Purpose(purpose)],
    )
    return token


def patient_link_url(token: str) -> str:
    return f"{settings.SITE_URL}{reverse('patient_link', args=[token])}"


def patient_link_resolve(token: str) -> PatientLink:
    """The live link for ``token``, or :class:`LinkRefused` saying why not."""
    if not secret_token_plausible(token):
        raise LinkRefused("unknown")
    link = PatientLink.objects.select_related("patient").filter(token_hash=secret_token_hash(token)).first()
    if link is None:
        raise LinkRefused("unknown")
    if link.revoked_at is not None:
        raise LinkRefused("revoked")
    if link.expires_at <= timezone.now():
        raise LinkRefused("expired")
    if link.purpose in SINGLE_USE and link.used_at is not None:
        raise LinkRefused("used")
    return link


def patient_link_spend(link: PatientLink) -> None:
    """Spend a single-use link; a second submission (replay, double click) is refused."""
    spent = PatientLink.objects.filter(pk=link.pk, used_at__isnull=True, revoked_at__isnull=True).update(
        used_at=timezone.now()
    )
    if not spent:
        raise LinkRefused("used")


def patient_links_revoke(
    *, patient: Patient, purpose: str | None = None, appointment: Appointment | None = None
) -> int:
    """Withdraw a patient's live links (all, or one purpose, or one appointment's)."""
    links = PatientLink.objects.filter(patient=patient, revoked_at__isnull=True).filter(
        Q(expires_at__gt=timezone.now())
    )
    if purpose is not None:
        links = links.filter(purpose=purpose)
    if appointment is not None:
        links = links.filter(appointment=appointment)
    return links.update(revoked_at=timezone.now())
