"""Consent texts (managers) and signing, viewing and withdrawing consents (clinicians)."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.files.storage import storages
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from mesoclinic.access import CLINICAL_ROLES, Role, patient_access, role_required
from mesoclinic.audit import client_ip
from mesoclinic.forms import form_add_validation_error
from patients.forms.consent import ConsentCaptureForm, ConsentTextForm, ConsentWithdrawForm
from patients.models import Consent, ConsentText, Patient
from patients.services import consent as services


def _kind_or_404(kind: str) -> str:
    if kind not in ConsentText.Kind.values:
        raise Http404
    return kind


# --- Texts (managers) -------------------------------------------------------------------


@require_GET
@role_required(Role.MANAGER)
def consent_text_list(request: HttpRequest) -> HttpResponse:
    latest = services.consent_text_latest_by_kind()
    rows = [{"kind": kind, "label": label, "text": latest.get(kind)} for kind, label in ConsentText.Kind.choices]
    return render(request, "patients/consent/text_list.html", {"rows": rows})


@require_http_methods(["GET", "POST"])
@role_required(Role.MANAGER)
def consent_text_publish(request: HttpRequest, kind: str) -> HttpResponse:
    kind = _kind_or_404(kind)
    current = services.consent_text_latest(kind)
    initial = {}
    if current is not None:
        initial = {name: getattr(current, name) for name in ("title_en", "body_en", "title_fr", "body_fr")}
    form = ConsentTextForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            text = services.consent_text_publish(kind=kind, published_by=request.user, **form.cleaned_data)
        except ValidationError as error:
            form_add_validation_error(form, error)
        else:
            messages.success(
                request,
                _("Version %(version)s published. Patients who signed an earlier version must consent again.")
                % {"version": text.version},
            )
            return redirect("consent_text_list")
    status = 400 if form.is_bound and form.errors else 200
    context = {"form": form, "kind": kind, "label": ConsentText.Kind(kind).label, "current": current}
    return render(request, "patients/consent/text_publish.html", context, status=status)


# --- Consents (practitioners and managers) ------------------------------------------------


@require_http_methods(["GET", "POST"])
@role_required(*CLINICAL_ROLES)
def consent_capture(request: HttpRequest, patient_id: int, kind: str) -> HttpResponse:
    kind = _kind_or_404(kind)
    patient = get_object_or_404(Patient, pk=patient_id)
    patient_access(
        request,
        patient_id=patient.pk,
        clinical=True,
        what=f"consent form ({kind})",
        action="edit" if request.method == "POST" else "view",
    )
    text = services.consent_text_latest(kind)
    form = ConsentCaptureForm(request.POST or None, initial={"version": text.version if text else None})
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            services.consent_record(
                patient=patient,
                kind=kind,
                typed_name=data["typed_name"],
                signature_data_url=data["signature"],
                witness=request.user,
                ip=client_ip(request),
                version=data["version"],
            )
        except ValidationError as error:
            form_add_validation_error(form, error)
        else:
            messages.success(request, _("Consent recorded."))
            return redirect("patient_detail", patient_id=patient.pk)
    history = services.consent_history(patient, kind)
    current, needs_reconsent = services.consent_state(history, text.version if text else None)
    context = {
        "patient": patient,
        "kind": kind,
        "label": ConsentText.Kind(kind).label,
        "text": text,
        "language": patient.preferred_language,
        "title": text.title(patient.preferred_language) if text else "",
        "body": text.body(patient.preferred_language) if text else "",
        "form": form,
        "history": history,
        "current": current,
        "needs_reconsent": needs_reconsent,
    }
    status = 400 if form.is_bound and form.errors else 200
    return render(request, "patients/consent/capture.html", context, status=status)


@require_GET
@role_required(*CLINICAL_ROLES)
def consent_signature(request: HttpRequest, patient_id: int, consent_id: int) -> FileResponse:
    consent = get_object_or_404(Consent.objects.only("pk", "patient_id", "signature_file"), pk=consent_id)
    if consent.patient_id != patient_id:
        raise Http404
    patient_access(request, patient_id=patient_id, clinical=True, what=f"consent signature #{consent.pk}")
    storage = storages["private"]
    if not storage.exists(consent.signature_file):
        raise Http404
    response = FileResponse(storage.open(consent.signature_file, "rb"), content_type="image/png")
    response["Content-Disposition"] = f'inline; filename="consent-{consent.pk}-signature.png"'
    response["Cache-Control"] = "no-store"
    return response


@require_POST
@role_required(*CLINICAL_ROLES)
def consent_withdraw(request: HttpRequest, patient_id: int, consent_id: int) -> HttpResponse:
    consent = get_object_or_404(Consent.objects.select_related("text"), pk=consent_id, patient_id=patient_id)
    patient_access(
        request, patient_id=patient_id, clinical=True, what=f"consent #{consent.pk} withdrawal", action="edit"
    )
    form = ConsentWithdrawForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("The reason is too long (at most 300 characters)."))
    else:
        try:
            services.consent_withdraw(consent=consent, recorded_by=request.user, reason=form.cleaned_data["reason"])
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
        else:
            messages.success(
                request,
                _("Consent withdrawn: %(kind)s. It no longer covers any session.")
                % {"kind": consent.text.get_kind_display()},
            )
    return redirect(_safe_next(request, patient_id))


def _safe_next(request: HttpRequest, patient_id: int) -> str:
    target = request.POST.get("next", "")
    # A path only: redirect() would take anything else for the name of a URL pattern.
    if target.startswith("/") and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return reverse("patient_detail", kwargs={"patient_id": patient_id})
