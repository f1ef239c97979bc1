from __future__ import annotations

import re
from datetime import date
from typing import Any

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from phonenumber_field.formfields import PhoneNumberField

from patients.models import Patient
from patients.services.registry import DEMOGRAPHIC_FIELDS

# Letters (any script), spaces, apostrophes, hyphens and dots: names, not markup.
_NAME = re.compile(r"^[^\W\d_]+(?:[ '’.\-][^\W\d_]*)*$", re.UNICODE)
MAX_AGE_YEARS = 120


def clean_person_name(value: str) -> str:
    value = " ".join(value.split())
    if not value:
        raise forms.ValidationError(_("This field is required."))
    if not _NAME.match(value):
        raise forms.ValidationError(_("Use letters, spaces, apostrophes and hyphens only."))
    return value


class PatientForm(forms.ModelForm):
    phone = PhoneNumberField(label=_("Phone"), required=False, region="FR")
    emergency_contact_phone = PhoneNumberField(label=_("Emergency contact phone"), required=False, region="FR")

    class Meta:
        model = Patient
        fields = DEMOGRAPHIC_FIELDS
        widgets = {"birth_date": forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")}

    def clean_first_name(self) -> str:
        return clean_person_name(self.cleaned_data["first_name"])

    def clean_last_name(self) -> str:
        return clean_person_name(self.cleaned_data["last_name"])

    def clean_emergency_contact_name(self) -> str:
        value = self.cleaned_data["emergency_contact_name"]
        return clean_person_name(value) if value.strip() else ""

    def clean_birth_date(self) -> date:
        born: date = self.cleaned_data["birth_date"]
        today = timezone.localdate()
        if born > today:
            raise forms.ValidationError(_("The date of birth is in the future."))
        if today.year - born.year > MAX_AGE_YEARS:
            raise forms.ValidationError(
                _("The date of birth is more than %(years)s years ago.") % {"years": MAX_AGE_YEARS}
            )
        return born

    def clean_country(self) -> str:
        value = self.cleaned_data["country"].strip().upper()
        if not re.fullmatch(r"[A-Z]{2}", value):
            raise forms.ValidationError(_("Use the two-letter country code, e.g. FR."))
        return value

    def clean_postal_code(self) -> str:
        value = self.cleaned_data["postal_code"].strip()
        if value and not re.fullmatch(r"[A-Za-z0-9 \-]{2,12}", value):
            raise forms.ValidationError(_("This postal code is not valid."))
        return value

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        for field in ("address_line", "city"):
            value = data.get(field) or ""
            if any(ord(ch) < 32 for ch in value) or "<" in value or ">" in value:
                self.add_error(field, _("Remove the special characters (< > or control characters)."))
        return data


class ArchiveForm(forms.Form):
    reason = forms.CharField(label=_("Reason"), max_length=300, widget=forms.Textarea(attrs={"rows": 2}))
