from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from patients.models import ContraindicationRule


class RuleForm(forms.ModelForm):
    class Meta:
        model = ContraindicationRule
        fields = (
            "trigger",
            "condition",
            "medication_flag",
            "allergen",
            "category",
            "severity",
            "reason_en",
            "reason_fr",
            "is_active",
        )
        labels = {"condition": _("Condition"), "medication_flag": _("Medication"), "allergen": _("Allergen")}

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        trigger = data.get("trigger")
        wanted = {"condition": "condition", "medication": "medication_flag", "allergen": "allergen"}.get(trigger or "")
        if wanted and not data.get(wanted):
            self.add_error(wanted, _("Choose what triggers this rule."))
        for field in ("condition", "medication_flag", "allergen"):
            if field != wanted:
                data[field] = None if field == "allergen" else ""
        return data
