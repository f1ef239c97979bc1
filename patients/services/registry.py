"""Writes to the patient registry. Nothing clinical is ever deleted: patients are archived."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from mesoclinic.models import User
from patients.models import Patient

DEMOGRAPHIC_FIELDS = (
    "first_name",
    "last_name",
    "birth_date",
    "sex",
    "email",
    "phone",
    "address_line",
    "postal_code",
    "city",
    "country",
    "preferred_language",
    "emergency_contact_name",
    "emergency_contact_phone",
    "email_transactional",
    "marketing_opt_in",
)


def _apply(patient: Patient, data: dict[str, Any]) -> None:
    was_opted_in = patient.marketing_opt_in
    for field in DEMOGRAPHIC_FIELDS:
        if field in data:
            setattr(patient, field, data[field])
    patient.first_name = patient.first_name.strip()
    patient.last_name = patient.last_name.strip()
    patient.email = (patient.email or "").strip().lower()
    if patient.marketing_opt_in and not was_opted_in:
        patient.marketing_opt_in_at = timezone.now()
    elif not patient.marketing_opt_in:
        patient.marketing_opt_in_at = None


@transaction.atomic
def patient_create(*, created_by: User, **data: Any) -> Patient:
    patient = Patient(created_by=created_by)
    _apply(patient, data)
    patient.full_clean(exclude=["search_name"])
    patient.save()
    return patient


@transaction.atomic
def patient_update(*, patient: Patient, **data: Any) -> Patient:
    """Correct demographics; the previous values stay in the audit history."""
    patient = Patient.objects.select_for_update().get(pk=patient.pk)
    _apply(patient, data)
    patient.full_clean(exclude=["search_name"])
    patient.save()
    return patient


@transaction.atomic
def patient_archive(*, patient: Patient, reason: str) -> Patient:
    reason = reason.strip()
    if not reason:
        raise ValidationError({"reason": _("Say why the record is archived.")})
    patient = Patient.objects.select_for_update().get(pk=patient.pk)
    if patient.status == Patient.Status.ARCHIVED:
        raise ValidationError(_("This patient is already archived."))
    patient.status = Patient.Status.ARCHIVED
    patient.archived_at = timezone.now()
    patient.archived_reason = reason[:300]
    patient.save(update_fields=["status", "archived_at", "archived_reason"])
    # An archived record gets no more reminders or recalls, and its emailed links stop
    # working (safety messages still go: see aftercare.services.outbox.message_allowed).
    from aftercare.links import patient_links_revoke
    from aftercare.services import message_cancel_pending

    patient_links_revoke(patient=patient)
    message_cancel_pending(patient=patient, keep_safety=True, reason="the record was archived")
    return patient


@transaction.atomic
def patient_restore(*, patient: Patient) -> Patient:
    patient = Patient.objects.select_for_update().get(pk=patient.pk)
    patient.status = Patient.Status.ACTIVE
    patient.archived_at = None
    patient.archived_reason = ""
    patient.save(update_fields=["status", "archived_at", "archived_reason"])
    return patient
