"""The GDPR export: one patient's record, and nothing about anyone else."""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.utils import timezone

from mesoclinic.models import ReadEvent
from patients.models import ClinicalPhoto, Consent, Consultation, MedicalHistory, Patient
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
    histories = [
        {
            "version": h.version,
            "recorded_at": h.recorded_at,
            "recorded_by": str(h.recorded_by),
            "conditions": h.conditions,
            "conditions_detail": h.conditions_detail,
            "medications": [{"name": m.name, "flags": m.flags, "note": m.note} for m in h.medications.all()],
            "allergies": [a.allergen.code for a in h.allergies.all()],
            "allergies_other": h.allergies_other,
            "no_known_allergies": h.no_known_allergies,
            "weight_kg": h.weight_kg,
            "height_cm": h.height_cm,
            "smoking": h.smoking,
            "previous_treatments": h.previous_treatments,
        }
        for h in MedicalHistory.objects.filter(patient=patient)
        .select_related("recorded_by")
        .prefetch_related("medications", "allergies__allergen")
        .order_by("version")
    ]
    consultations = [
        {
            "held_at": c.held_at,
            "practitioner": str(c.practitioner),
            "concerns": c.concerns,
            "areas": c.areas,
            "fitzpatrick": c.fitzpatrick,
            "glogau": c.glogau,
            "findings": c.findings,
            "recommendation": c.recommendation,
            "history_version": c.history.version if c.history else None,
            "screening": c.screening,
            "measurements": [
                {"kind": m.kind, "area": m.area, "landmark": m.landmark, "value": m.value} for m in c.measurements.all()
            ],
        }
        for c in Consultation.objects.filter(patient=patient)
        .select_related("practitioner", "history")
        .prefetch_related("measurements")
        .order_by("held_at")
    ]
    consents = [
        {
            "kind": c.text.kind,
            "text_version": c.text.version,
            "language": c.language,
            "typed_name": c.typed_name,
            "signed_at": c.signed_at,
            "witness": str(c.witness),
            "signature_sha256": c.signature_sha256,
            "withdrawn_at": getattr(getattr(c, "withdrawal", None), "withdrawn_at", None),
        }
        for c in Consent.objects.filter(patient=patient)
        .select_related("text", "witness", "withdrawal")
        .order_by("signed_at")
    ]
    photos = [
        {
            "taken_at": p.taken_at,
            "area": p.area,
            "view": p.view,
            "content_type": p.content_type,
            "sha256": p.sha256,
            "hidden_at": p.hidden_at,
        }
        for p in ClinicalPhoto.objects.filter(patient=patient).order_by("taken_at")
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
        "medical_history_versions": histories,
        "consultations": consultations,
        "consents": consents,
        "photos": photos,
        "history_of_changes": corrections,
        "record_accesses": reads,
    }
