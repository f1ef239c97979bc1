from __future__ import annotations

from typing import Any

from django import forms
from django.core.files.uploadedfile import UploadedFile
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext_lazy as _

from patients.models import Area, Consultation, Patient
from patients.services import photos as photo_service
from treatments.models import TreatmentSession


class ConsultationChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Consultation) -> str:
        return date_format(timezone.localtime(obj.held_at), "SHORT_DATE_FORMAT")


class PhotoUploadForm(forms.Form):
    file = forms.FileField(
        label=_("Photo"),
        help_text=_("JPEG or PNG. Location and camera data are removed when the photo is stored."),
        error_messages={
            "required": _("Choose a photo to upload."),
            "empty": _("The file is empty."),
            "invalid": _("No file was received. Choose the photo again."),
        },
        # Browsers (iPhone Safari included) convert HEIC to JPEG when only these are offered.
        widget=forms.FileInput(attrs={"accept": "image/jpeg,image/png"}),
    )
    area = forms.ChoiceField(label=_("Area"), choices=[("", "—"), *Area.choices], required=False)
    view = forms.CharField(
        label=_("View"), max_length=60, required=False, help_text=_("e.g. front, left profile, 45° right")
    )
    consultation = ConsultationChoiceField(
        label=_("Consultation"),
        queryset=Consultation.objects.none(),
        required=False,
        empty_label=_("None"),
        help_text=_("The consultation this photo was taken at, if any."),
    )

    session = forms.ModelChoiceField(
        label=_("Session"),
        queryset=TreatmentSession.objects.none(),
        required=False,
        empty_label=_("None"),
        help_text=_("The treatment session this photo was taken at, if any."),
    )

    def __init__(self, *args: Any, patient: Patient, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        consultation = self.fields["consultation"]
        assert isinstance(consultation, ConsultationChoiceField)
        consultation.queryset = Consultation.objects.filter(patient=patient).only("id", "held_at")
        session = self.fields["session"]
        assert isinstance(session, forms.ModelChoiceField)
        session.queryset = TreatmentSession.objects.filter(patient=patient).order_by("-performed_at")
        session.label_from_instance = lambda s: (
            _("Session %(n)s, %(day)s") % {"n": s.number, "day": f"{s.performed_at:%d/%m/%Y}"}
        )

    def clean_file(self) -> UploadedFile:
        uploaded: UploadedFile = self.cleaned_data["file"]
        if uploaded.size is not None and uploaded.size > photo_service.PHOTO_MAX_BYTES:
            raise forms.ValidationError(photo_service.photo_too_large(uploaded.size).message_dict["uploaded_file"])
        return uploaded


class PhotoHideForm(forms.Form):
    reason = forms.CharField(
        label=_("Why is this photo hidden?"),
        max_length=200,
        help_text=_("e.g. wrong patient, blurred. The photo is kept in the record, not deleted."),
        error_messages={"required": _("Say why the photo is hidden.")},
    )
