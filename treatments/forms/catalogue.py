from __future__ import annotations

from datetime import date
from typing import Any

from django import forms
from django.forms import inlineformset_factory
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from treatments.models import DoseLimit, Ingredient, Lot, Product, ProductComponent


class IngredientForm(forms.ModelForm):
    class Meta:
        model = Ingredient
        fields = ("name", "category", "allergens", "notes")
        widgets = {"allergens": forms.CheckboxSelectMultiple}


class ProductForm(forms.ModelForm):
    class Meta:
        model = Product
        fields = ("manufacturer", "name", "unit_volume_ml", "is_active", "notes")

    def clean_unit_volume_ml(self) -> Any:
        volume = self.cleaned_data["unit_volume_ml"]
        if volume is not None and not 0 < volume <= 500:
            raise forms.ValidationError(_("A unit holds between 0 and 500 mL."))
        return volume


ComponentFormSet = inlineformset_factory(
    Product,
    ProductComponent,
    fields=("ingredient", "mg_per_ml"),
    extra=2,
    can_delete=False,
    max_num=20,
    absolute_max=20,
)


class LotForm(forms.ModelForm):
    class Meta:
        model = Lot
        fields = ("lot_number", "expiry_date", "quantity_on_hand", "supplier", "received_at")
        widgets = {
            "expiry_date": forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
            "received_at": forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        }

    def clean_lot_number(self) -> str:
        value = self.cleaned_data["lot_number"].strip().upper()
        if not value or any(ch in value for ch in "<>\"'") or any(ord(ch) < 32 for ch in value):
            raise forms.ValidationError(_("Use the lot number printed on the box (letters, digits, dashes)."))
        return value

    def clean_quantity_on_hand(self) -> int:
        quantity = self.cleaned_data["quantity_on_hand"]
        if quantity < 0 or quantity > 100000:
            raise forms.ValidationError(_("Enter a quantity between 0 and 100000."))
        return quantity

    def clean_received_at(self) -> date:
        received = self.cleaned_data["received_at"]
        if received > timezone.localdate():
            raise forms.ValidationError(_("The reception date is in the future."))
        return received


class DoseLimitForm(forms.ModelForm):
    class Meta:
        model = DoseLimit
        fields = ("ingredient", "kind", "value", "face_only", "severity", "note")

    def clean_value(self) -> Any:
        value = self.cleaned_data["value"]
        if value is not None and not 0 < value <= 100000:
            raise forms.ValidationError(_("Enter a positive limit."))
        return value


class LotRecallForm(forms.Form):
    reason = forms.CharField(label=_("Reason for the recall"), max_length=300)
