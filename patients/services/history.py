"""Medical history: every save is a new, immutable version (who, when, what)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max
from django.utils import timezone
from django.utils.translation import gettext as _

from mesoclinic.models import User
from patients.models import (
    Allergen,
    Condition,
    HistoryAllergy,
    HistoryMedication,
    MedicalHistory,
    MedicationFlag,
    Patient,
)


def _next_version(patient: Patient) -> int:
    # The patient row lock serialises two practitioners saving at once.
    Patient.objects.select_for_update().filter(pk=patient.pk).first()
    return (MedicalHistory.objects.filter(patient=patient).aggregate(v=Max("version"))["v"] or 0) + 1


@transaction.atomic
def history_record(
    *,
    patient: Patient,
    recorded_by: User,
    conditions: Sequence[str],
    conditions_detail: str = "",
    weight_kg: Decimal | None = None,
    height_cm: int | None = None,
    smoking: str = "",
    previous_treatments: str = "",
    allergies: Sequence[Allergen] = (),
    allergies_other: str = "",
    no_known_allergies: bool = False,
    medications: Sequence[dict[str, Any]] = (),
    is_confirmation_only: bool = False,
    recorded_at: datetime | None = None,
) -> MedicalHistory:
    """Record a new version of the patient's medical history.

    ``recorded_at`` back-dates a version transcribed from an earlier paper record.
    """
    unknown = set(conditions) - set(Condition.values)
    if unknown:
        raise ValidationError({"conditions": _("Unknown condition: %(codes)s") % {"codes": ", ".join(sorted(unknown))}})
    if no_known_allergies and (allergies or allergies_other.strip()):
        raise ValidationError(
            {"no_known_allergies": _("“No known allergies” cannot be ticked together with allergies.")}
        )
    history = MedicalHistory(
        patient=patient,
        version=_next_version(patient),
        recorded_by=recorded_by,
        recorded_at=recorded_at or timezone.now(),
        conditions=sorted(set(conditions)),
        conditions_detail=conditions_detail.strip(),
        weight_kg=weight_kg,
        height_cm=height_cm,
        smoking=smoking,
        previous_treatments=previous_treatments.strip(),
        allergies_other=allergies_other.strip(),
        no_known_allergies=no_known_allergies,
        is_confirmation_only=is_confirmation_only,
    )
    history.full_clean()
    history.save()
    for medication in medications:
        flags = sorted(set(medication.get("flags") or []))
        if set(flags) - set(MedicationFlag.values):
            raise ValidationError({"medications": _("Unknown medication flag.")})
        row = HistoryMedication(
            history=history, name=medication["name"].strip(), flags=flags, note=medication.get("note", "").strip()
        )
        row.full_clean(exclude=["history"])
        row.save()
    HistoryAllergy.objects.bulk_create(HistoryAllergy(history=history, allergen=a) for a in allergies)
    return history


@transaction.atomic
def history_confirm_unchanged(*, patient: Patient, recorded_by: User) -> MedicalHistory:
    """The patient confirms nothing changed: a new version, identical, confirmed now."""
    latest = (
        MedicalHistory.objects.filter(patient=patient).prefetch_related("medications", "allergies__allergen").first()
    )
    if latest is None:
        raise ValidationError(_("There is no history to confirm yet: record it first."))
    copy = history_record(
        patient=patient,
        recorded_by=recorded_by,
        conditions=latest.conditions,
        conditions_detail=latest.conditions_detail,
        weight_kg=latest.weight_kg,
        height_cm=latest.height_cm,
        smoking=latest.smoking,
        previous_treatments=latest.previous_treatments,
        allergies=[a.allergen for a in latest.allergies.all()],
        allergies_other=latest.allergies_other,
        no_known_allergies=latest.no_known_allergies,
        medications=[{"name": m.name, "flags": m.flags, "note": m.note} for m in latest.medications.all()],
        is_confirmation_only=True,
    )
    return copy
