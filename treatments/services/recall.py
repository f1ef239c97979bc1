"""Lot recall: who received the lot, and one action that notifies them and flags records."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import translation

from aftercare.services import message_queue
from mesoclinic.models import User
from patients.models import Patient
from treatments.models import Lot, LotUse, RecallFlag, TreatmentSession


@dataclass(frozen=True)
class Exposure:
    patient: Patient
    session: TreatmentSession
    performed_at: datetime
    volume_ml: object
    flagged: bool
    notified: str  # "", "queued", "sent", "failed", "no email", "opted out"


def recall_exposure(lot: Lot) -> list[Exposure]:
    """Every session that administered the lot, newest first, with its contact status."""
    uses = (
        LotUse.objects.filter(lot=lot)
        .select_related("session_area__session__patient")
        .order_by("-session_area__session__performed_at")
    )
    flags = {f.session_id: f for f in RecallFlag.objects.filter(lot=lot).select_related("message")}
    seen: set[int] = set()
    rows = []
    for use in uses:
        session = use.session_area.session
        if session.pk in seen:
            continue
        seen.add(session.pk)
        flag = flags.get(session.pk)
        patient = session.patient
        if flag is None:
            status = ""
        elif flag.message is not None:
            status = flag.message.status
        else:
            status = "no email" if not patient.email else "opted out"
        rows.append(Exposure(patient, session, session.performed_at, use.volume_ml, flag is not None, status))
    return rows


@transaction.atomic
def recall_notify(*, lot: Lot, by: User) -> int:
    """Flag every exposed record and queue one email per patient (once, whatever the clicks)."""
    notified = 0
    for exposure in recall_exposure(lot):
        flag, created = RecallFlag.objects.get_or_create(
            lot=lot, session=exposure.session, defaults={"patient": exposure.patient}
        )
        if not created:
            continue
        patient = exposure.patient
        # A recall is clinical-safety information: it goes out even without marketing or
        # booking emails; the outbox itself holds it back if the patient withdrew all email.
        if not patient.email:
            continue
        with translation.override(patient.preferred_language):
            context = {"patient": patient, "clinic_name": settings.CLINIC_NAME, "lot": lot}
            message = message_queue(
                kind="lot_recall",
                to_email=patient.email,
                subject=render_to_string("treatments/email/recall_subject.txt", context).strip(),
                body_text=render_to_string("treatments/email/recall.txt", context),
                body_html=render_to_string("treatments/email/recall.html", context),
                dedupe_key=f"lot-recall:{lot.pk}:{patient.pk}",
                language=patient.preferred_language,
                patient=patient,
                session=exposure.session,
            )
        RecallFlag.objects.filter(pk=flag.pk).update(message=message)
        notified += 1
    return notified
