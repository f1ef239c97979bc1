from __future__ import annotations

from decimal import Decimal
from typing import Any

from django import forms
from django.forms import formset_factory
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from mesoclinic.models import Location
from patients.models import Allergen, Area, Concern, Condition, Measurement, MedicalHistory, MedicationFlag


def _no_markup(value: str, field_label: str) -> str:
    if any(ord(ch) < 32 and ch not in "\r\n\t" for ch in value):
        raise forms.ValidationError(_("Remove the control characters from %(field)s.") % {"field": field_label})
    return value.strip()


class HistoryForm(forms.Form):
    conditions = forms.MultipleChoiceField(
        label=_("Conditions (tick what applies now)"),
        choices=Condition.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    conditions_detail = forms.CharField(
        label=_("Details on conditions"), required=False, widget=forms.Textarea(attrs={"rows": 2}), max_length=2000
    )
    allergies = forms.ModelMultipleChoiceField(
        label=_("Allergies"), queryset=Allergen.objects.all(), required=False, widget=forms.CheckboxSelectMultiple
    )
    allergies_other = forms.CharField(label=_("Other allergies"), required=False, max_length=300)
    no_known_allergies = forms.BooleanField(label=_("No known allergies"), required=False)
    weight_kg = forms.DecimalField(
        label=_("Weight (kg)"),
        required=False,
        min_value=Decimal("20"),
        max_value=Decimal("350"),
        decimal_places=1,
        max_digits=5,
    )
    height_cm = forms.IntegerField(label=_("Height (cm)"), required=False, min_value=100, max_value=250)
    smoking = forms.ChoiceField(
        label=_("Smoking"), choices=[("", "—"), *MedicalHistory.Smoking.choices], required=False
    )
    previous_treatments = forms.CharField(
        label=_("Previous aesthetic treatments"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        max_length=2000,
    )

    def clean_conditions_detail(self) -> str:
        return _no_markup(self.cleaned_data["conditions_detail"], str(_("details on conditions")))

    def clean_previous_treatments(self) -> str:
        return _no_markup(self.cleaned_data["previous_treatments"], str(_("previous treatments")))

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data.get("no_known_allergies") and (data.get("allergies") or (data.get("allergies_other") or "").strip()):
            self.add_error("no_known_allergies", _("“No known allergies” cannot be ticked together with allergies."))
        return data


class MedicationForm(forms.Form):
    name = forms.CharField(label=_("Medication"), max_length=150, required=False)
    flags = forms.MultipleChoiceField(
        label=_("Relevant because"), choices=MedicationFlag.choices, required=False, widget=forms.CheckboxSelectMultiple
    )
    note = forms.CharField(label=_("Dose or note"), max_length=200, required=False)

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if (data.get("flags") or (data.get("note") or "").strip()) and not (data.get("name") or "").strip():
            self.add_error("name", _("Name the medication."))
        return data


MedicationFormSet = formset_factory(MedicationForm, extra=2, max_num=30, absolute_max=30, validate_max=True)


class ConsultationForm(forms.Form):
    held_at = forms.DateTimeField(
        label=_("Date and time"), widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M")
    )
    location = forms.ModelChoiceField(
        label=_("Location"), queryset=Location.objects.filter(is_active=True), required=False
    )
    concerns = forms.MultipleChoiceField(
        label=_("Concerns"), choices=Concern.choices, widget=forms.CheckboxSelectMultiple
    )
    areas = forms.MultipleChoiceField(
        label=_("Treatment areas"), choices=Area.choices, widget=forms.CheckboxSelectMultiple
    )
    fitzpatrick = forms.TypedChoiceField(
        label=_("Fitzpatrick skin type"),
        coerce=int,
        required=False,
        empty_value=None,
        choices=[("", "—"), (1, "I"), (2, "II"), (3, "III"), (4, "IV"), (5, "V"), (6, "VI")],
    )
    glogau = forms.TypedChoiceField(
        label=_("Glogau photo-ageing type"),
        coerce=int,
        required=False,
        empty_value=None,
        choices=[("", "—"), (1, "I"), (2, "II"), (3, "III"), (4, "IV")],
    )
    findings = forms.CharField(
        label=_("Findings"), required=False, widget=forms.Textarea(attrs={"rows": 3}), max_length=5000
    )
    recommendation = forms.CharField(
        label=_("Recommendation"), required=False, widget=forms.Textarea(attrs={"rows": 3}), max_length=5000
    )

    def clean_held_at(self) -> Any:
        held_at = self.cleaned_data["held_at"]
        if held_at > timezone.now() + timezone.timedelta(hours=1):
            raise forms.ValidationError(_("A consultation cannot be recorded in the future."))
        if held_at.year < 2000:
            raise forms.ValidationError(_("This date is too far in the past."))
        return held_at

    def clean_findings(self) -> str:
        return _no_markup(self.cleaned_data["findings"], str(_("findings")))

    def clean_recommendation(self) -> str:
        return _no_markup(self.cleaned_data["recommendation"], str(_("recommendation")))


class MeasurementForm(forms.Form):
    kind = forms.ChoiceField(label=_("Measurement"), choices=[("", "—"), *Measurement.Kind.choices], required=False)
    area = forms.ChoiceField(label=_("Area"), choices=[("", "—"), *Area.choices], required=False)
    landmark = forms.CharField(label=_("Landmark"), max_length=120, required=False)
    value = forms.DecimalField(
        label=_("Value"),
        required=False,
        min_value=Decimal("0.1"),
        max_value=Decimal("999.9"),
        decimal_places=1,
        max_digits=6,
    )

    LIMITS = {
        "circumference": (Decimal("5"), Decimal("250")),
        "weight": (Decimal("20"), Decimal("350")),
        "hair_density": (Decimal("1"), Decimal("600")),
    }

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        kind, value = data.get("kind"), data.get("value")
        if not kind and value is None:
            return data
        if not kind:
            self.add_error("kind", _("Say what was measured."))
        elif value is None:
            self.add_error("value", _("Enter the value."))
        else:
            low, high = self.LIMITS[kind]
            if not low <= value <= high:
                self.add_error("value", _("Expected between %(low)s and %(high)s.") % {"low": low, "high": high})
            if kind == "circumference" and not data.get("area"):
                self.add_error("area", _("Which area was measured?"))
        return data


MeasurementFormSet = formset_factory(MeasurementForm, extra=3, max_num=40, absolute_max=40, validate_max=True)
