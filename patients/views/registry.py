from __future__ import annotations

import json

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from aftercare.content import patient_messages_recent
from mesoclinic.access import CLINICAL_ROLES, Role, can_view_clinical, patient_access, role_required, staff_required
from patients import selectors
from patients.export import patient_export_data
from patients.forms.registry import ArchiveForm, PatientForm
from patients.models import Patient
from patients.services import registry as services
from patients.services.consent import consent_rows_for_patient
from treatments.selectors_adverse import patient_adverse_latest
from treatments.selectors_booking import patient_attendance


@require_GET
@staff_required
def patient_list(request: HttpRequest) -> HttpResponse:
    query = request.GET.get("q", "")
    include_archived = request.GET.get("archived") == "1"
    page = selectors.patient_search(
        query, cursor=selectors.Cursor.decode(request.GET.get("after")), include_archived=include_archived
    )
    context = {"page": page, "query": query, "include_archived": include_archived}
    template = (
        "patients/_patient_rows.html" if request.htmx and not request.htmx.boosted else "patients/patient_list.html"
    )
    return render(request, template, context)


@require_http_methods(["GET", "POST"])
@staff_required
def patient_create(request: HttpRequest) -> HttpResponse:
    form = PatientForm(request.POST or None)
    duplicates: list[Patient] = []
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        duplicates = selectors.patient_possible_duplicates(
            first_name=data["first_name"],
            last_name=data["last_name"],
            birth_date=data["birth_date"],
            email=data["email"],
            phone=str(data["phone"] or ""),
        )
        if not duplicates or request.POST.get("confirm_new") == "1":
            try:
                patient = services.patient_create(created_by=request.user, **data)
            except ValidationError as error:
                form.add_error(None, error)
            else:
                messages.success(request, _("Patient record created."))
                return redirect("patient_detail", patient_id=patient.pk)
    status = 400 if form.is_bound and form.errors else 200
    return render(
        request, "patients/patient_form.html", {"form": form, "duplicates": duplicates, "creating": True}, status=status
    )


def _patient_or_404(patient_id: int) -> Patient:
    return get_object_or_404(Patient.objects.select_related("created_by"), pk=patient_id)


@require_GET
@staff_required
def patient_detail(request: HttpRequest, patient_id: int) -> HttpResponse:
    patient = _patient_or_404(patient_id)
    clinical = can_view_clinical(request.user)
    patient_access(
        request, patient_id=patient.pk, clinical=False, what="patient page" + (" (clinical)" if clinical else "")
    )
    context = {
        "patient": patient,
        "clinical": clinical,
        "archive_form": ArchiveForm(),
        "timeline": selectors.patient_timeline(patient, clinical=clinical),
        "consent_rows": consent_rows_for_patient(patient) if clinical else [],
        "photos": selectors.patient_photos(patient)[:6] if clinical else [],
        "photo_consent": selectors.consent_current(patient, "photography") if clinical else None,
        "adverse_events": patient_adverse_latest(patient) if clinical else [],
        "attendance": patient_attendance(patient.pk),
        "messages_log": patient_messages_recent(patient.pk, clinical=clinical),
    }
    return render(request, "patients/patient_detail.html", context)


@require_http_methods(["GET", "POST"])
@staff_required
def patient_update(request: HttpRequest, patient_id: int) -> HttpResponse:
    patient = _patient_or_404(patient_id)
    patient_access(request, patient_id=patient.pk, clinical=False, what="demographics form", action="edit")
    form = PatientForm(request.POST or None, instance=patient)
    if request.method == "POST" and form.is_valid():
        try:
            services.patient_update(patient=patient, **form.cleaned_data)
        except ValidationError as error:
            form.add_error(None, error)
        else:
            messages.success(request, _("Saved. The previous values are kept in the record's history."))
            return redirect("patient_detail", patient_id=patient.pk)
    status = 400 if form.is_bound and form.errors else 200
    return render(request, "patients/patient_form.html", {"form": form, "patient": patient}, status=status)


@require_POST
@role_required(*CLINICAL_ROLES)
def patient_archive(request: HttpRequest, patient_id: int) -> HttpResponse:
    patient = _patient_or_404(patient_id)
    patient_access(request, patient_id=patient.pk, clinical=True, what="archive", action="edit")
    form = ArchiveForm(request.POST)
    if form.is_valid():
        try:
            services.patient_archive(patient=patient, reason=form.cleaned_data["reason"])
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
        else:
            messages.success(request, _("The record is archived. It is kept, and can be restored."))
            return redirect("patient_detail", patient_id=patient.pk)
    else:
        messages.error(request, _("Say why the record is archived."))
    return redirect(reverse("patient_detail", kwargs={"patient_id": patient.pk}))


@require_POST
@role_required(*CLINICAL_ROLES)
def patient_restore(request: HttpRequest, patient_id: int) -> HttpResponse:
    patient = _patient_or_404(patient_id)
    patient_access(request, patient_id=patient.pk, clinical=True, what="restore", action="edit")
    services.patient_restore(patient=patient)
    messages.success(request, _("The record is active again."))
    return redirect("patient_detail", patient_id=patient.pk)


@require_GET
@role_required(Role.MANAGER)
def patient_export(request: HttpRequest, patient_id: int) -> HttpResponse:
    """GDPR access / portability: this patient's whole record as JSON."""
    patient = _patient_or_404(patient_id)
    patient_access(request, patient_id=patient.pk, clinical=True, what="full record export (JSON)", action="export")
    data = patient_export_data(patient)
    response = HttpResponse(
        json.dumps(data, indent=2, ensure_ascii=False, default=str), content_type="application/json; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="patient-{patient.pk}.json"'
    return response
