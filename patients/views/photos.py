"""Clinical photos: practitioners and managers only; files leave only through photo_file."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, cast

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.files.storage import storages
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods

from mesoclinic.access import CLINICAL_ROLES, patient_access, role_required
from mesoclinic.forms import form_add_validation_error
from patients.forms.photos import PhotoHideForm, PhotoUploadForm
from patients.models import Area, ClinicalPhoto, Patient
from patients.selectors import consent_current
from patients.services import photos as services

if TYPE_CHECKING:
    from mesoclinic.models import User

logger = logging.getLogger(__name__)

# Service keyword (or model field) → form field, for errors the service raises.
_FORM_FIELDS = {"uploaded_file": "file", "hidden_reason": "reason"}
_AREA_ORDER = {value: index for index, value in enumerate(Area.values)}


@dataclass
class PhotoGroup:
    area: str
    area_label: str
    view: str
    photos: list[ClinicalPhoto] = field(default_factory=list)


def _patient(patient_id: int) -> Patient:
    return get_object_or_404(Patient.objects.only("id", "first_name", "last_name", "status"), pk=patient_id)


def _visible_photo(patient_id: int, photo_id: int) -> ClinicalPhoto:
    """A visible photo of this patient; another patient's or a hidden photo is a 404."""
    return get_object_or_404(ClinicalPhoto, pk=photo_id, patient_id=patient_id, hidden_at__isnull=True)


def _photo_groups(photos: list[ClinicalPhoto]) -> list[PhotoGroup]:
    """Photos by area and view, oldest (the baseline) first, so changes read left to right."""
    labels = dict(Area.choices)
    groups: dict[tuple[str, str], PhotoGroup] = {}
    for photo in sorted(photos, key=lambda p: (p.taken_at, p.pk)):
        key = (photo.area, photo.view.casefold())
        if key not in groups:
            groups[key] = PhotoGroup(area=photo.area, area_label=str(labels.get(photo.area, "")), view=photo.view)
        groups[key].photos.append(photo)
    return sorted(groups.values(), key=lambda g: (_AREA_ORDER.get(g.area, len(_AREA_ORDER)), g.view.casefold()))


@require_GET
@role_required(*CLINICAL_ROLES)
def photo_list(request: HttpRequest, patient_id: int) -> HttpResponse:
    patient = _patient(patient_id)
    patient_access(request, patient_id=patient.pk, clinical=True, what="clinical photos")
    photos = list(
        ClinicalPhoto.objects.filter(patient=patient, hidden_at__isnull=True)
        .select_related("uploaded_by")
        .only(
            "id", "patient_id", "consultation_id", "area", "view", "taken_at", "width", "height", "source",
            "uploaded_by__id", "uploaded_by__full_name", "uploaded_by__email",
        )
    )  # fmt: skip
    context = {
        "patient": patient,
        "groups": _photo_groups(photos),
        "photo_count": len(photos),
        "photo_consent": consent_current(patient, "photography"),
    }
    return render(request, "patients/photos/photo_list.html", context)


@require_http_methods(["GET", "POST"])
@role_required(*CLINICAL_ROLES)
def photo_upload(request: HttpRequest, patient_id: int) -> HttpResponse:
    patient = _patient(patient_id)
    patient_access(request, patient_id=patient.pk, clinical=True, what="photo upload", action="edit")
    initial = {name: request.GET[name] for name in ("consultation", "session") if request.GET.get(name, "").isdecimal()}
    form = PhotoUploadForm(request.POST or None, request.FILES or None, patient=patient, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            services.photo_upload(
                patient=patient,
                uploaded_file=data["file"],
                uploaded_by=cast("User", request.user),  # role_required: signed in
                area=data["area"],
                view=data["view"],
                consultation=data["consultation"],
                session=data["session"],
            )
        except ValidationError as error:
            form_add_validation_error(form, error, aliases=_FORM_FIELDS)
        else:
            messages.success(request, _("Photo stored. Its location and camera data were removed."))
            return redirect("photo_list", patient_id=patient.pk)
    context = {
        "patient": patient,
        "form": form,
        "photo_consent": consent_current(patient, "photography"),
        "max_megapixels": services.PHOTO_MAX_PIXELS // 1_000_000,
        "max_bytes": services.PHOTO_MAX_BYTES,
    }
    status = 400 if form.is_bound and form.errors else 200
    return render(request, "patients/photos/photo_upload.html", context, status=status)


@require_GET
@role_required(*CLINICAL_ROLES)
def photo_file(request: HttpRequest, patient_id: int, photo_id: int) -> FileResponse:
    photo = _visible_photo(patient_id, photo_id)
    patient_access(request, patient_id=photo.patient_id, clinical=True, what=f"clinical photo {photo.pk}")
    try:
        handle = storages[services.PHOTO_STORAGE].open(photo.file_name, "rb")
    except FileNotFoundError:
        logger.error("clinical photo %s: file %s is missing from the private storage", photo.pk, photo.file_name)
        raise Http404 from None
    extension = photo.file_name.rsplit(".", 1)[-1]
    response = FileResponse(
        handle, content_type=photo.content_type, as_attachment=False, filename=f"photo-{photo.pk}.{extension}"
    )
    response["Cache-Control"] = "no-store"
    response["X-Content-Type-Options"] = "nosniff"
    return response


@require_http_methods(["GET", "POST"])
@role_required(*CLINICAL_ROLES)
def photo_hide(request: HttpRequest, patient_id: int, photo_id: int) -> HttpResponse:
    photo = _visible_photo(patient_id, photo_id)
    patient = _patient(photo.patient_id)
    patient_access(request, patient_id=patient.pk, clinical=True, what=f"hide clinical photo {photo.pk}", action="edit")
    form = PhotoHideForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.photo_hide(photo=photo, reason=form.cleaned_data["reason"], hidden_by=cast("User", request.user))
        except ValidationError as error:
            form_add_validation_error(form, error, aliases=_FORM_FIELDS)
        else:
            messages.success(request, _("The photo is hidden. It is kept in the record, not deleted."))
            return redirect("photo_list", patient_id=patient.pk)
    status = 400 if form.is_bound and form.errors else 200
    return render(
        request, "patients/photos/photo_hide.html", {"patient": patient, "photo": photo, "form": form}, status=status
    )
