from __future__ import annotations

from decimal import Decimal
from typing import Any

from django import forms
from django.forms import BaseFormSet, formset_factory
from django.utils.translation import gettext_lazy as _

from patients.models import Area, Concern, Consultation, Patient
from treatments.models import Product, ProtocolTemplate, Technique

PRODUCT_SLOTS = 3


class PlanStartForm(forms.Form):
    protocol = forms.ModelChoiceField(
        label=_("Start from a protocol"),
        queryset=ProtocolTemplate.objects.filter(is_active=True),
        required=False,
        empty_label=_("— none: start empty —"),
    )
    concern = forms.ChoiceField(label=_("Concern"), choices=Concern.choices, required=False)
    consultation = forms.ModelChoiceField(
        label=_("From the consultation"), queryset=Consultation.objects.none(), required=False
    )
    goal = forms.CharField(label=_("Goal"), max_length=300, required=False)

    def __init__(self, *args: Any, patient: Patient, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["consultation"].queryset = Consultation.objects.filter(patient=patient).order_by("-held_at")
        self.fields["consultation"].label_from_instance = lambda c: (
            f"{c.held_at:%d/%m/%Y} · {', '.join(c.concern_labels)}"
        )

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if not data.get("protocol") and not data.get("concern"):
            self.add_error("concern", _("Choose a concern, or a protocol to start from."))
        return data


class PlanForm(forms.Form):
    revision = forms.IntegerField(widget=forms.HiddenInput)
    goal = forms.CharField(label=_("Goal"), max_length=300, required=False)
    sessions_planned = forms.IntegerField(label=_("Sessions"), min_value=1, max_value=30)
    min_interval_days = forms.IntegerField(label=_("Minimum days between sessions"), min_value=1, max_value=365)
    maintenance_interval_days = forms.IntegerField(
        label=_("Maintenance every (days)"), min_value=7, max_value=730, required=False
    )
    review_after_days = forms.IntegerField(
        label=_("Review after the last session (days)"), min_value=1, max_value=365, required=False
    )


def product_catalogue() -> dict[int, Product]:
    """Active products with their composition, loaded once for every area form."""
    return {p.pk: p for p in Product.objects.filter(is_active=True).prefetch_related("components").order_by("name")}


class AreaForm(forms.Form):
    area = forms.ChoiceField(label=_("Area"), choices=[("", "—"), *Area.choices], required=False)
    technique = forms.ChoiceField(label=_("Technique"), choices=Technique.choices, required=False)
    depth_mm = forms.DecimalField(
        label=_("Depth (mm)"), min_value=Decimal("0.5"), max_value=Decimal("13"), decimal_places=1, required=False
    )
    needle_gauge = forms.IntegerField(label=_("Needle (G)"), min_value=25, max_value=34, required=False)
    needle_length_mm = forms.DecimalField(
        label=_("Needle length (mm)"), min_value=Decimal("2"), max_value=Decimal("25"), decimal_places=1, required=False
    )
    spacing_mm = forms.DecimalField(
        label=_("Spacing (mm)"), min_value=Decimal("1"), max_value=Decimal("50"), decimal_places=1, required=False
    )
    points = forms.IntegerField(label=_("Points"), min_value=1, max_value=500, required=False)
    volume_per_point_ml = forms.DecimalField(
        label=_("mL per point"), min_value=Decimal("0.005"), max_value=Decimal("2"), decimal_places=3, required=False
    )

    def __init__(self, *args: Any, products: dict[int, Product], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.products = products
        choices = [("", "—"), *((pk, f"{p.name} ({p.manufacturer})") for pk, p in products.items())]
        for slot in range(1, PRODUCT_SLOTS + 1):
            self.fields[f"product_{slot}"] = forms.TypedChoiceField(
                label=_("Product %(n)s") % {"n": slot}, choices=choices, coerce=int, empty_value=None, required=False
            )
            self.fields[f"volume_{slot}"] = forms.DecimalField(
                label=_("mL per session"),
                min_value=Decimal("0.01"),
                max_value=Decimal("100"),
                decimal_places=2,
                required=False,
            )

    REQUIRED = ("technique", "depth_mm", "needle_gauge", "needle_length_mm", "points", "volume_per_point_ml")

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if not data.get("area"):
            if any(data.get(f"product_{s}") for s in range(1, PRODUCT_SLOTS + 1)):
                self.add_error("area", _("Choose the area."))
            return data
        for field in self.REQUIRED:
            if data.get(field) in (None, ""):
                self.add_error(field, _("Required for the area."))
        products = []
        for slot in range(1, PRODUCT_SLOTS + 1):
            product_id, volume = data.get(f"product_{slot}"), data.get(f"volume_{slot}")
            product = self.products.get(product_id) if product_id else None
            if product and volume is None:
                self.add_error(f"volume_{slot}", _("How many mL per session?"))
            elif volume is not None and not product:
                self.add_error(f"product_{slot}", _("Which product?"))
            elif product:
                products.append((product, volume))
        if not products and not self.errors:
            self.add_error("product_1", _("Choose at least one product for the area."))
        data["products"] = products
        return data


class BaseAreaFormSet(BaseFormSet):
    def clean(self) -> None:
        if any(self.errors):
            return
        areas = [f.cleaned_data.get("area") for f in self.forms if f.cleaned_data.get("area")]
        if not areas:
            raise forms.ValidationError(_("Add at least one treatment area."))
        if len(areas) != len(set(areas)):
            raise forms.ValidationError(_("Each area appears once; combine the products of an area in its blend."))


AreaFormSet = formset_factory(
    AreaForm, formset=BaseAreaFormSet, extra=0, max_num=14, absolute_max=14, validate_max=True
)
