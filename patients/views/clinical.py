"""Medical history and consultations: practitioners and managers only."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import Prefetch
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from mesoclinic.access import CLINICAL_ROLES, patient_access, role_required
from mesoclinic.forms import form_add_validation_error
from patients import selectors
from patients.forms.clinical import ConsultationForm, HistoryForm, MeasurementFormSet, MedicationFormSet
from patients.models import Consultation, Measurement, Patient
from patients.services.consultation import consultation_create
from patients.services.history import history_confirm_unchanged, history_record
from patients.services.screening import Finding, screening_run


def _patient(patient_id: int) -> Patient:
    return get_object_or_404(Patient, pk=patient_id)


@require_GET
@role_required(*CLINICAL_ROLES)
def history_detail(request: HttpRequest, patient_id: int) -> HttpResponse:
    patient = _patient(patient_id)
    patient_access(request, patient_id=patient.pk, clinical=True, what="medical history")
    summary = selectors.history_summary(patient)
    findings = screening_run(history=summary.current)
    return render(
        request, "patients/history_detail.html", {"patient": patient, "summary": summary, "findings": findings}
    )


@require_http_methods(["GET", "POST"])
@role_required(*CLINICAL_ROLES)
def history_edit(request: HttpRequest, patient_id: int) -> HttpResponse:
    patient = _patient(patient_id)
    patient_access(request, patient_id=patient.pk, clinical=True, what="medical history form", action="edit")
    current = selectors.history_summary(patient).current
    initial = {}
    medications_initial: list[dict] = []
    if current is not None:
        initial = {
            "conditions": current.conditions,
            "conditions_detail": current.conditions_detail,
            "allergies": [a.allergen for a in current.allergies.all()],
            "allergies_other": current.allergies_other,
            "no_known_allergies": current.no_known_allergies,
            "weight_kg": current.weight_kg,
            "height_cm": current.height_cm,
            "smoking": current.smoking,
            "previous_treatments": current.previous_treatments,
        }
        medications_initial = [{"name": m.name, "flags": m.flags, "note": m.note} for m in current.medications.all()]
    form = HistoryForm(request.POST or None, initial=initial)
    medications = MedicationFormSet(request.POST or None, initial=medications_initial, prefix="med")
    if request.method == "POST" and form.is_valid() and medications.is_valid():
        data = form.cleaned_data
        try:
            history_record(
                patient=patient,
                recorded_by=request.user,
                conditions=data["conditions"],
                conditions_detail=data["conditions_detail"],
                weight_kg=data["weight_kg"],
                height_cm=data["height_cm"],
                smoking=data["smoking"],
                previous_treatments=data["previous_treatments"],
                allergies=list(data["allergies"]),
                allergies_other=data["allergies_other"],
                no_known_allergies=data["no_known_allergies"],
                medications=[m for m in medications.cleaned_data if m and (m.get("name") or "").strip()],
            )
        except ValidationError as error:
            form_add_validation_error(form, error)
        else:
            messages.success(request, _("Medical history saved as a new version."))
            return redirect("history_detail", patient_id=patient.pk)
    status = 400 if request.method == "POST" else 200
    return render(
        request,
        "patients/history_form.html",
        {"patient": patient, "form": form, "medications": medications},
        status=status,
    )


@require_POST
@role_required(*CLINICAL_ROLES)
def history_confirm(request: HttpRequest, patient_id: int) -> HttpResponse:
    patient = _patient(patient_id)
    patient_access(request, patient_id=patient.pk, clinical=True, what="medical history confirmation", action="edit")
    try:
        history_confirm_unchanged(patient=patient, recorded_by=request.user)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
        return redirect("history_edit", patient_id=patient.pk)
    messages.success(request, _("History confirmed unchanged today."))
    return redirect(_safe_next(request, patient))


def _safe_next(request: HttpRequest, patient: Patient) -> str:
    from django.urls import reverse
    from django.utils.http import url_has_allowed_host_and_scheme

    target = request.POST.get("next", "")
    # A path only: redirect() would take anything else for the name of a URL pattern.
    if target.startswith("/") and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return reverse("history_detail", kwargs={"patient_id": patient.pk})


@require_http_methods(["GET", "POST"])
@role_required(*CLINICAL_ROLES)
def consultation_new(request: HttpRequest, patient_id: int) -> HttpResponse:
    patient = _patient(patient_id)
    patient_access(request, patient_id=patient.pk, clinical=True, what="consultation form", action="edit")
    summary = selectors.history_summary(patient)
    initial = {
        "held_at": timezone.localtime().replace(second=0, microsecond=0),
        "location": request.user.default_location_id,
    }
    form = ConsultationForm(request.POST or None, initial=initial)
    measurements = MeasurementFormSet(request.POST or None, prefix="m")
    if request.method == "POST" and form.is_valid() and measurements.is_valid():
        data = form.cleaned_data
        try:
            consultation = consultation_create(
                patient=patient,
                practitioner=request.user,
                measurements=[m for m in measurements.cleaned_data if m and m.get("kind")],
                **data,
            )
        except ValidationError as error:
            form_add_validation_error(form, error)
        else:
            messages.success(request, _("Consultation recorded."))
            return redirect("consultation_detail", patient_id=patient.pk, consultation_id=consultation.pk)
    findings = screening_run(history=summary.current)
    status = 400 if request.method == "POST" else 200
    context = {"patient": patient, "form": form, "measurements": measurements, "summary": summary, "findings": findings}
    return render(request, "patients/consultation_form.html", context, status=status)


@require_GET
@role_required(*CLINICAL_ROLES)
def consultation_detail(request: HttpRequest, patient_id: int, consultation_id: int) -> HttpResponse:
    patient = _patient(patient_id)
    consultation = get_object_or_404(
        Consultation.objects.select_related("practitioner", "location", "history").prefetch_related(
            Prefetch("measurements", queryset=Measurement.objects.order_by("kind", "area"))
        ),
        pk=consultation_id,
        patient=patient,
    )
    patient_access(request, patient_id=patient.pk, clinical=True, what=f"consultation {consultation.pk}")
    findings = [Finding(**f) for f in consultation.screening]
    return render(
        request,
        "patients/consultation_detail.html",
        {"patient": patient, "consultation": consultation, "findings": findings},
    )
