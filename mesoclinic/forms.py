from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from mesoclinic.access import ROLE_LABELS, Role
from mesoclinic.models import Location, User

ROLE_CHOICES = [(role.value, ROLE_LABELS[role]) for role in Role]


# Years a clinic books, files or reports in. Beyond them, 9999-12-31 would overflow the
# "day after" arithmetic of date ranges (found by the form fuzzing, docs/security.md).
FIRST_YEAR, LAST_YEAR = 1900, 2999


def day_in_range(day: date) -> bool:
    return FIRST_YEAR <= day.year <= LAST_YEAR


def validate_day_in_range(day: date) -> None:
    if not day_in_range(day):
        raise ValidationError(_("Enter a date between 1900 and 2999."), code="year_range")


class DayField(forms.DateField):
    """A date field that refuses years outside FIRST_YEAR–LAST_YEAR, next to the field."""

    default_validators = [validate_day_in_range]


class StaffCreateForm(forms.Form):
    full_name = forms.CharField(label=_("Full name"), max_length=150)
    email = forms.EmailField(label=_("Email"))
    role = forms.ChoiceField(label=_("Role"), choices=ROLE_CHOICES)
    default_location = forms.ModelChoiceField(
        label=_("Default location"), queryset=Location.objects.filter(is_active=True), required=False
    )

    def clean_full_name(self) -> str:
        name = self.cleaned_data["full_name"].strip()
        if not name:
            raise forms.ValidationError(_("Enter the person's name."))
        if any(ch in name for ch in "<>{}") or any(ord(ch) < 32 for ch in name):
            raise forms.ValidationError(_("A name cannot contain these characters: < > { } or control characters."))
        return name

    def clean_email(self) -> str:
        email = self.cleaned_data["email"].strip().lower()
        if User.objects.filter(email__iexact=email).exists():
            raise forms.ValidationError(_("A staff account with this email already exists."))
        return email


class StaffUpdateForm(forms.Form):
    full_name = forms.CharField(label=_("Full name"), max_length=150)
    role = forms.ChoiceField(label=_("Role"), choices=ROLE_CHOICES)
    default_location = forms.ModelChoiceField(
        label=_("Default location"), queryset=Location.objects.filter(is_active=True), required=False
    )
    is_active = forms.BooleanField(label=_("Active (may sign in)"), required=False)

    clean_full_name = StaffCreateForm.clean_full_name


class AuditFilterForm(forms.Form):
    patient = forms.IntegerField(label=_("Patient number"), required=False, min_value=1)
    user = forms.ModelChoiceField(label=_("Staff member"), queryset=User.objects.order_by("full_name"), required=False)
    date_from = DayField(label=_("From"), required=False, widget=forms.DateInput(attrs={"type": "date"}))
    date_to = DayField(label=_("To"), required=False, widget=forms.DateInput(attrs={"type": "date"}))
    before = forms.DateTimeField(required=False, widget=forms.HiddenInput)

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data.get("date_from") and data.get("date_to") and data["date_from"] > data["date_to"]:
            self.add_error("date_to", _("The end date is before the start date."))
        return data


def form_add_validation_error(
    form: forms.BaseForm, error: ValidationError, *, aliases: Mapping[str, str] | None = None
) -> None:
    """Show a service's ValidationError on the form: next to its field, else above the form.

    ``aliases`` maps a service's field name to the form's (e.g. uploaded_file → file).
    """
    if not hasattr(error, "error_dict"):
        form.add_error(None, error.messages)
        return
    for key, errors in error.message_dict.items():
        name = (aliases or {}).get(key, key)
        form.add_error(name if name in form.fields else None, errors)
