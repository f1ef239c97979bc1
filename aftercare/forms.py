"""Forms behind patient links: the check-in after a session and email preferences."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from aftercare.checkin import COMMENT_MAX, SYMPTOMS
from patients.models import Patient

LEVEL_CHOICES = [
    ("none", _("None")),
    ("mild", _("Mild")),
    ("moderate", _("Moderate")),
    ("severe", _("Severe")),
]
YES_NO = [("no", _("No")), ("yes", _("Yes"))]


class CheckInForm(forms.Form):
    """How are you? One scale per symptom, fever yes/no, a comment, maybe a photo.

    Every question may be left as it is ("none"): a patient who is fine only presses send.
    """

    fever = forms.TypedChoiceField(
        label=_("Fever (38 °C or more)"),
        choices=YES_NO,
        coerce=lambda value: value == "yes",
        empty_value=False,
        initial="no",
        required=False,
        widget=forms.RadioSelect(attrs={"class": "form-check-input"}),
    )
    comment = forms.CharField(
        label=_("Anything else you want to tell us"),
        required=False,
        max_length=COMMENT_MAX,
        widget=forms.Textarea(attrs={"rows": 3, "class": "form-control"}),
    )
    photo = forms.FileField(
        label=_("A photo of the area (optional)"),
        required=False,
        help_text=_("JPEG or PNG. Location and camera data are removed when the photo is stored."),
        error_messages={"invalid": _("No file was received. Choose the photo again.")},
        widget=forms.FileInput(attrs={"accept": "image/jpeg,image/png", "class": "form-control"}),
    )

    def __init__(self, *args: Any, photo_allowed: bool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        symptoms = {
            key: forms.ChoiceField(
                label=label,
                choices=LEVEL_CHOICES,
                initial="none",
                required=False,
                widget=forms.RadioSelect(attrs={"class": "form-check-input"}),
                error_messages={"invalid_choice": _("Choose one of the answers.")},
            )
            for key, (label, _type) in SYMPTOMS.items()
        }
        # Symptoms first, in the order of the list, then fever, comment and photo.
        self.fields = {**symptoms, **self.fields}
        self.photo_allowed = photo_allowed
        if not photo_allowed:
            del self.fields["photo"]

    def symptom_fields(self) -> list[forms.BoundField]:
        return [self[key] for key in SYMPTOMS]

    def answers(self) -> dict[str, Any]:
        data = self.cleaned_data
        answers: dict[str, Any] = {key: data.get(key) or "none" for key in SYMPTOMS}
        answers["fever"] = bool(data.get("fever"))
        answers["comment"] = data.get("comment") or ""
        return answers


class EmailPreferencesForm(forms.Form):
    email_transactional = forms.BooleanField(
        label=_("Appointment confirmations and reminders"),
        required=False,
        widget=forms.CheckboxInput(attrs={"class": "form-check-input"}),
    )
    marketing_opt_in = forms.BooleanField(
        label=_("News and offers from the clinic"),
        required=False,
        widget=forms.CheckboxInput(attrs={"class": "form-check-input"}),
    )
    withdraw_all = forms.BooleanField(
        label=_("Stop all emails, including safety messages after treatments"),
        required=False,
        widget=forms.CheckboxInput(attrs={"class": "form-check-input"}),
        help_text=_(
            "The clinic will then phone you instead for anything that matters after a treatment. "
            "You can turn emails back on here at any time."
        ),
    )

    @classmethod
    def for_patient(cls, patient: Patient, data: Any = None) -> EmailPreferencesForm:
        initial = {
            "email_transactional": patient.email_transactional,
            "marketing_opt_in": patient.marketing_opt_in,
            "withdraw_all": patient.email_withdrawn_at is not None,
        }
        return cls(data=data, initial=initial)
