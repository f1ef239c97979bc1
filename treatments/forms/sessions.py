from __future__ import annotations

from decimal import Decimal
from typing import Any

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from mesoclinic.models import Location
from treatments.models import Lot, PlanArea, Product

LOT_SLOTS = 2


class SessionForm(forms.Form):
    """The session record, with one group of fields per area of the plan."""

    number = forms.IntegerField(widget=forms.HiddenInput)
    performed_at = forms.DateTimeField(
        label=_("Performed at"), widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M")
    )
    location = forms.ModelChoiceField(
        label=_("Location"), queryset=Location.objects.filter(is_active=True), required=False
    )
    anaesthetic_product = forms.ModelChoiceField(
        label=_("Anaesthetic cream"), queryset=Product.objects.none(), required=False
    )
    anaesthetic_applied_at = forms.DateTimeField(
        label=_("Cream applied at"),
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )
    immediate_reactions = forms.CharField(
        label=_("Immediate reactions"), required=False, widget=forms.Textarea(attrs={"rows": 2}), max_length=2000
    )
    notes = forms.CharField(label=_("Notes"), required=False, widget=forms.Textarea(attrs={"rows": 2}), max_length=4000)

    def __init__(
        self, *args: Any, plan_areas: list[PlanArea], lots: list[Lot], anaesthetics: Any, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.plan_areas = plan_areas
        self.fields["anaesthetic_product"].queryset = anaesthetics
        self.lots = {lot.pk: lot for lot in lots}
        self.area_fields: list[dict[str, Any]] = []
        today = timezone.localdate()
        for area in plan_areas:
            product_ids = {item.product_id for item in area.products.all()}
            choices = [("", "—")] + [
                (lot.pk, f"{lot.product.name} · {lot.lot_number} · {lot.expiry_date:%m/%Y} · {lot.quantity_on_hand} u.")
                for lot in lots
                if lot.product_id in product_ids and lot.recalled_at is None and lot.expiry_date >= today
            ]
            key = f"a{area.pk}"
            self.fields[f"{key}_done"] = forms.BooleanField(label=area.get_area_display(), required=False, initial=True)
            self.fields[f"{key}_points"] = forms.IntegerField(
                label=_("Points"), min_value=1, max_value=500, required=False, initial=area.points
            )
            self.fields[f"{key}_depth"] = forms.DecimalField(
                label=_("Depth (mm)"),
                min_value=Decimal("0.5"),
                max_value=Decimal("13"),
                required=False,
                initial=area.depth_mm,
            )
            group = {
                "area": area,
                "done": f"{key}_done",
                "points": f"{key}_points",
                "depth": f"{key}_depth",
                "lots": [],
            }
            for slot in range(1, LOT_SLOTS + 1):
                self.fields[f"{key}_lot{slot}"] = forms.TypedChoiceField(
                    label=_("Lot"), choices=choices, coerce=int, empty_value=None, required=False
                )
                self.fields[f"{key}_scan{slot}"] = forms.CharField(
                    label=_("or scan the lot number"), max_length=60, required=False
                )
                self.fields[f"{key}_vol{slot}"] = forms.DecimalField(
                    label=_("mL"), min_value=Decimal("0.01"), max_value=Decimal("100"), decimal_places=2, required=False
                )
                self.fields[f"{key}_units{slot}"] = forms.IntegerField(
                    label=_("Units opened"), min_value=1, max_value=50, required=False, initial=1
                )
                group["lots"].append(
                    (f"{key}_lot{slot}", f"{key}_scan{slot}", f"{key}_vol{slot}", f"{key}_units{slot}")
                )
            group["product_ids"] = product_ids
            self.area_fields.append(group)

    def bound_groups(self) -> list[dict[str, Any]]:
        return [
            {
                "area": g["area"],
                "done": self[g["done"]],
                "points": self[g["points"]],
                "depth": self[g["depth"]],
                "lots": [tuple(self[name] for name in slot) for slot in g["lots"]],
            }
            for g in self.area_fields
        ]

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        areas = []
        for group in self.area_fields:
            if not data.get(group["done"]):
                continue
            area = group["area"]
            if not data.get(group["points"]):
                self.add_error(group["points"], _("How many points were injected?"))
            uses = []
            for lot_field, scan_field, vol_field, units_field in group["lots"]:
                lot_id, scan, volume = (
                    data.get(lot_field),
                    (data.get(scan_field) or "").strip().upper(),
                    data.get(vol_field),
                )
                lot = self.lots.get(lot_id) if lot_id else None
                if scan:
                    lot = next(
                        (
                            candidate
                            for candidate in self.lots.values()
                            if candidate.lot_number == scan and candidate.product_id in group["product_ids"]
                        ),
                        None,
                    )
                    if lot is None:
                        self.add_error(
                            scan_field, _("No lot %(lot)s of this area's products is in the catalogue.") % {"lot": scan}
                        )
                        continue
                if lot is None and volume is None:
                    continue
                if lot is None:
                    self.add_error(lot_field, _("Which lot?"))
                elif volume is None:
                    self.add_error(vol_field, _("How many mL of this lot?"))
                else:
                    uses.append((lot, volume, data.get(units_field) or 1))
            if not uses:
                self.add_error(group["lots"][0][0], _("Record the lot used in this area (traceability)."))
            areas.append((area, data.get(group["points"]), data.get(group["depth"]), uses))
        if not areas and not self.errors:
            raise forms.ValidationError(_("Tick at least one treated area."))
        data["areas"] = areas
        return data
