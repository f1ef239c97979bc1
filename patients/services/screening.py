"""Contraindication screening: one function, used at consultation, plan and session."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field

from django.utils.translation import gettext as _

from patients.models import ContraindicationRule, IngredientCategory, MedicalHistory


@dataclass(frozen=True)
class IngredientRef:
    """What a formulation contributes to screening (the plan builder passes these)."""

    name: str
    category: str
    allergen_codes: frozenset[str] = field(default_factory=frozenset)


@dataclass(frozen=True)
class Finding:
    severity: str  # "block" or "warn"
    reason: str
    rule_id: int | None
    trigger: str  # "condition:pregnancy", "medication:anticoagulant", "allergen:soy", "history:missing"
    applies_to: str = ""  # "" (all mesotherapy), a category label, or the ingredients concerned

    def as_dict(self) -> dict[str, object]:
        return asdict(self)

    @property
    def is_block(self) -> bool:
        return self.severity == ContraindicationRule.Severity.BLOCK


def screening_run(
    *,
    history: MedicalHistory | None,
    ingredients: Sequence[IngredientRef] | None = None,
    rules: Iterable[ContraindicationRule] | None = None,
) -> list[Finding]:
    """Findings for a history, optionally against a formulation's ingredients; blocks first.

    Without ingredients (at consultation) every rule whose trigger is in the history
    fires, and says which ingredients it concerns. With ingredients, rules limited to a
    category fire only when the formulation has that category, and allergy rules only
    when an ingredient carries the allergen.
    """
    if history is None:
        return [
            Finding(
                severity=ContraindicationRule.Severity.WARN,
                reason=_("No medical history recorded: screening is not possible."),
                rule_id=None,
                trigger="history:missing",
            )
        ]
    if rules is None:
        rules = ContraindicationRule.objects.filter(is_active=True).select_related("allergen")
    conditions = set(history.conditions)
    flags = {flag for medication in history.medications.all() for flag in medication.flags}
    allergens = {allergy.allergen.code for allergy in history.allergies.all()}
    categories = {ingredient.category for ingredient in ingredients} if ingredients is not None else None
    labels = dict(IngredientCategory.choices)
    findings: list[Finding] = []
    for rule in rules:
        if rule.trigger == ContraindicationRule.Trigger.CONDITION:
            present, trigger = rule.condition in conditions, f"condition:{rule.condition}"
        elif rule.trigger == ContraindicationRule.Trigger.MEDICATION:
            present, trigger = rule.medication_flag in flags, f"medication:{rule.medication_flag}"
        else:
            present, trigger = rule.allergen.code in allergens, f"allergen:{rule.allergen.code}"
        if not present:
            continue
        applies_to = str(labels.get(rule.category, "")) if rule.category else ""
        if ingredients is not None:
            if rule.category and rule.category not in (categories or set()):
                continue
            if rule.trigger == ContraindicationRule.Trigger.ALLERGEN:
                concerned = [i.name for i in ingredients if rule.allergen.code in i.allergen_codes]
                if not concerned:
                    continue
                applies_to = ", ".join(concerned)
        findings.append(
            Finding(severity=rule.severity, reason=rule.reason, rule_id=rule.pk, trigger=trigger, applies_to=applies_to)
        )
    findings.sort(key=lambda f: (not f.is_block, f.trigger))
    return findings
