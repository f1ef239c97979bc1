"""Safety checks for a plan: contraindications against its ingredients, and dose limits.

Run when a plan is saved and again at every session. ``block`` findings stop the
save; ``warn`` findings need an acknowledgement with a reason.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal

from django.utils.translation import gettext as _

from patients.models import ContraindicationRule, MedicalHistory, Patient
from patients.services.screening import Finding, IngredientRef, screening_run
from treatments.models import FACE_AREAS, DoseLimit, Ingredient, Product, TreatmentPlan

BLOCK = ContraindicationRule.Severity.BLOCK
WARN = ContraindicationRule.Severity.WARN


@dataclass(frozen=True)
class AreaDose:
    """What one area of a plan injects, per session."""

    area: str
    is_face: bool
    points: int
    volume_per_point_ml: Decimal
    # ingredient id → (mg, mL of products containing it)
    ingredients: dict[int, tuple[Decimal, Decimal]]


@dataclass(frozen=True)
class SessionTotals:
    areas: list[AreaDose]
    mg: dict[int, Decimal]  # ingredient → mg per session
    ml: dict[int, Decimal]  # ingredient → mL of products containing it per session
    total_ml: Decimal
    total_points: int


@dataclass(frozen=True)
class AreaDraft:
    """An area as the builder has it: saved or not yet."""

    area: str
    points: int
    volume_per_point_ml: Decimal
    products: list[tuple[Product, Decimal]]  # (product with prefetched components, mL per session)

    @property
    def is_face(self) -> bool:
        return self.area in FACE_AREAS


@dataclass(frozen=True)
class PlanDraft:
    sessions_planned: int
    min_interval_days: int
    areas: list[AreaDraft]

    @classmethod
    def of(cls, plan: TreatmentPlan) -> PlanDraft:
        return cls(
            sessions_planned=plan.sessions_planned,
            min_interval_days=plan.min_interval_days,
            areas=[
                AreaDraft(a.area, a.points, a.volume_per_point_ml, [(p.product, p.volume_ml) for p in a.products.all()])
                for a in plan.areas.all()
            ],
        )

    @property
    def ingredient_ids(self) -> set[int]:
        return {c.ingredient_id for a in self.areas for product, _ in a.products for c in product.components.all()}


def plan_totals(plan: TreatmentPlan | PlanDraft) -> SessionTotals:
    """Per-session totals of a plan, from its areas, products and their composition."""
    draft = plan if isinstance(plan, PlanDraft) else PlanDraft.of(plan)
    areas: list[AreaDose] = []
    mg: dict[int, Decimal] = defaultdict(Decimal)
    ml: dict[int, Decimal] = defaultdict(Decimal)
    total_ml = Decimal(0)
    total_points = 0
    for area in draft.areas:
        per_area: dict[int, tuple[Decimal, Decimal]] = {}
        for product, volume in area.products:
            total_ml += volume
            for component in product.components.all():
                dose = volume * (component.mg_per_ml or Decimal(0))
                old_mg, old_ml = per_area.get(component.ingredient_id, (Decimal(0), Decimal(0)))
                per_area[component.ingredient_id] = (old_mg + dose, old_ml + volume)
                mg[component.ingredient_id] += dose
                ml[component.ingredient_id] += volume
        total_points += area.points
        areas.append(AreaDose(area.area, area.is_face, area.points, area.volume_per_point_ml, per_area))
    return SessionTotals(areas=areas, mg=dict(mg), ml=dict(ml), total_ml=total_ml, total_points=total_points)


def _fmt(value: Decimal) -> str:
    return f"{value.normalize():f}"


def _dose_findings(
    plan: PlanDraft, totals: SessionTotals, limits: list[DoseLimit], weight_kg: Decimal | None
) -> list[Finding]:
    findings: list[Finding] = []
    for limit in limits:
        pk, name = limit.ingredient_id, limit.ingredient.name
        if pk not in totals.mg and pk not in totals.ml:
            continue
        areas = [a for a in totals.areas if pk in a.ingredients and (a.is_face or not limit.face_only)]
        if not areas:
            continue
        scope = _("on the face") if limit.face_only else ""
        trigger = f"dose:{limit.kind}:{pk}{':face' if limit.face_only else ''}"
        value = limit.value
        message = ""
        if limit.kind == DoseLimit.Kind.ML_PER_POINT:
            worst = max(a.volume_per_point_ml for a in areas)
            if worst > value:
                message = _("%(name)s: %(got)s mL per point is above the limit of %(limit)s mL %(scope)s.")
                got = worst
        elif limit.kind == DoseLimit.Kind.MG_PER_SESSION:
            got = sum((a.ingredients[pk][0] for a in areas), Decimal(0))
            if got > value:
                message = _("%(name)s: %(got)s mg per session is above the limit of %(limit)s mg %(scope)s.")
        elif limit.kind == DoseLimit.Kind.ML_PER_SESSION:
            got = sum((a.ingredients[pk][1] for a in areas), Decimal(0))
            if got > value:
                message = _("%(name)s: %(got)s mL per session is above the limit of %(limit)s mL %(scope)s.")
        elif limit.kind == DoseLimit.Kind.POINTS_PER_SESSION:
            got = Decimal(sum(a.points for a in areas))
            if got > value:
                message = _("%(name)s: %(got)s injection points per session, above the limit of %(limit)s %(scope)s.")
        elif limit.kind == DoseLimit.Kind.MG_PER_KG:
            mg = sum((a.ingredients[pk][0] for a in areas), Decimal(0))
            if not weight_kg:
                findings.append(
                    Finding(
                        severity=BLOCK,
                        reason=_("%(name)s is dosed per kg: record the patient's weight in the medical history.")
                        % {"name": name},
                        rule_id=None,
                        trigger=f"dose:weight-missing:{pk}",
                    )
                )
                continue
            got = (mg / weight_kg).quantize(Decimal("0.01"))
            if got > value:
                message = _(
                    "%(name)s: %(got)s mg/kg per session (%(mg)s mg for %(kg)s kg) is above the limit of %(limit)s mg/kg."
                )
        elif limit.kind == DoseLimit.Kind.MIN_DAYS_BETWEEN:
            got = Decimal(plan.min_interval_days)
            if got < value:
                message = _("%(name)s: sessions %(got)s days apart; the protocol minimum is %(limit)s days.")
        elif limit.kind == DoseLimit.Kind.MAX_SESSIONS:
            got = Decimal(plan.sessions_planned)
            if got > value:
                message = _("%(name)s: %(got)s sessions planned; at most %(limit)s.")
        if message:
            params = {"name": name, "got": _fmt(Decimal(got)), "limit": _fmt(value), "scope": scope}
            if limit.kind == DoseLimit.Kind.MG_PER_KG:
                params.update(mg=_fmt(mg), kg=_fmt(weight_kg or Decimal(0)))
            reason = (message % params).replace(" .", ".").strip()
            if limit.note:
                reason = f"{reason} ({limit.note})"
            findings.append(Finding(severity=limit.severity, reason=reason, rule_id=None, trigger=trigger))
    return findings


def plan_safety_check(
    plan: TreatmentPlan | PlanDraft, *, patient: Patient | None = None, history: MedicalHistory | None = None
) -> list[Finding]:
    """Every finding for a plan: screening against its ingredients, then dose limits; blocks first."""
    if isinstance(plan, TreatmentPlan):
        patient = plan.patient
        draft = PlanDraft.of(plan)
    else:
        draft = plan
    if history is None and patient is not None:
        history = (
            MedicalHistory.objects.filter(patient=patient)
            .prefetch_related("medications", "allergies__allergen")
            .first()
        )
    used_ids = draft.ingredient_ids
    ingredients = Ingredient.objects.prefetch_related("allergens").in_bulk(used_ids)
    refs = [
        IngredientRef(i.name, i.category, frozenset(a.code for a in i.allergens.all())) for i in ingredients.values()
    ]
    findings = screening_run(history=history, ingredients=refs)
    limits = list(DoseLimit.objects.filter(ingredient_id__in=used_ids).select_related("ingredient"))
    findings += _dose_findings(draft, plan_totals(draft), limits, history.weight_kg if history else None)
    findings.sort(key=lambda f: (not f.is_block, f.trigger))
    return findings
