"""Consultations: the assessment that ends in a recommendation (and later a plan)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from mesoclinic.models import Location, User
from patients.models import Consultation, Measurement, MedicalHistory, Patient
from patients.services.screening import screening_run


@transaction.atomic
def consultation_create(
    *,
    patient: Patient,
    practitioner: User,
    held_at: datetime,
    concerns: Sequence[str],
    areas: Sequence[str],
    location: Location | None = None,
    fitzpatrick: int | None = None,
    glogau: int | None = None,
    findings: str = "",
    recommendation: str = "",
    measurements: Sequence[dict[str, Any]] = (),
) -> Consultation:
    """Record a consultation with the history version reviewed and the screening at that moment."""
    if patient.status != Patient.Status.ACTIVE:
        raise ValidationError(_("This record is archived: restore it before recording a consultation."))
    history = (
        MedicalHistory.objects.filter(patient=patient).prefetch_related("medications", "allergies__allergen").first()
    )
    consultation = Consultation(
        patient=patient,
        practitioner=practitioner,
        location=location,
        held_at=held_at,
        history=history,
        concerns=sorted(set(concerns)),
        areas=sorted(set(areas)),
        fitzpatrick=fitzpatrick,
        glogau=glogau,
        findings=findings,
        recommendation=recommendation,
        screening=[f.as_dict() for f in screening_run(history=history)],
    )
    consultation.full_clean()
    consultation.save()
    rows = [
        Measurement(
            consultation=consultation,
            patient=patient,
            kind=m["kind"],
            area=m.get("area") or "",
            landmark=(m.get("landmark") or "").strip(),
            value=m["value"],
            measured_at=held_at,
        )
        for m in measurements
        if m.get("kind")
    ]
    for row in rows:
        row.full_clean(exclude=["consultation", "patient"])
    Measurement.objects.bulk_create(rows)
    return consultation
