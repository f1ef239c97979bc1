from __future__ import annotations

from django import forms
from django.forms import formset_factory
from django.utils.translation import gettext_lazy as _

from patients.forms.clinical import MeasurementForm

GAIS = [
    ("", "—"),
    (1, _("1 · very much improved")),
    (2, _("2 · much improved")),
    (3, _("3 · improved")),
    (4, _("4 · no change")),
    (5, _("5 · worse")),
]


class OutcomeForm(forms.Form):
    gais_practitioner = forms.TypedChoiceField(
        label=_("GAIS, practitioner"), choices=GAIS, coerce=int, empty_value=None, required=False
    )
    gais_patient = forms.TypedChoiceField(
        label=_("GAIS, patient"), choices=GAIS, coerce=int, empty_value=None, required=False
    )
    satisfaction = forms.IntegerField(label=_("Satisfaction (0–10)"), min_value=0, max_value=10, required=False)


OutcomeMeasurementFormSet = formset_factory(MeasurementForm, extra=3, max_num=20, absolute_max=20, validate_max=True)
