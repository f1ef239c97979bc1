"""The GDPR export: one patient's record, and nothing about anyone else."""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.utils import timezone

from mesoclinic.models import ReadEvent
from patients.models import Patient
from patients.services.registry import DEMOGRAPHIC_FIELDS


def patient_export_data(patient: Patient) -> dict[str, Any]:
    demographics = {field: getattr(patient, field) for field in DEMOGRAPHIC_FIELDS}
    demographics["phone"] = str(patient.phone or "")
    demographics["emergency_contact_phone"] = str(patient.emergency_contact_phone or "")
    event_model = apps.get_model("patients", "PatientEvent")
    corrections = [
        {
            "at": e.pgh_created_at,
            "label": e.pgh_label,
            "changed_by": (e.pgh_context.metadata or {}).get("user") if e.pgh_context else None,
            "values": {f: getattr(e, f) for f in DEMOGRAPHIC_FIELDS if f not in {"phone", "emergency_contact_phone"}},
        }
        for e in event_model.objects.filter(pgh_obj_id=patient.pk).select_related("pgh_context").order_by("pgh_id")
    ]
    reads = [
        {"at": r.at, "by": str(r.user) if r.user else "patient link", "what": r.what, "action": r.action}
        for r in ReadEvent.objects.filter(patient_id=patient.pk).select_related("user").order_by("at")
    ]
    return {
        "format": "mesoclinic-patient-export/1",
        "exported_at": timezone.now(),
        "patient": {
            "id": patient.pk,
            "status": patient.status,
            "archived_at": patient.archived_at,
            "archived_reason": patient.archived_reason,
            "created_at": patient.created_at,
            "marketing_opt_in_at": patient.marketing_opt_in_at,
            **demographics,
        },
        "history_of_changes": corrections,
        "record_accesses": reads,
    }
