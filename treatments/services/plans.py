"""Treatment plans: build, check, version, move through their lifecycle."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from mesoclinic.models import User
from patients.models import Consent, ConsentText, Consultation, Patient
from patients.selectors import consent_current
from patients.services.screening import Finding
from treatments.models import PlanAcknowledgement, PlanArea, PlanProduct, Product, ProtocolTemplate, TreatmentPlan
from treatments.services.safety import AreaDraft, PlanDraft, plan_safety_check

Status = TreatmentPlan.Status

# Which consent a plan needs, by concern (a lipolysis plan needs the lipolysis consent).
CONSENT_KIND_BY_CONCERN = {
    "fat_reduction": ConsentText.Kind.LIPOLYSIS,
    "cellulite": ConsentText.Kind.MESOTHERAPY,
    "skin_rejuvenation": ConsentText.Kind.SKIN_BOOSTER,
    "hair_restoration": ConsentText.Kind.HAIR,
    "pain_management": ConsentText.Kind.MESOTHERAPY,
}

TRANSITIONS = {
    Status.DRAFT: {Status.PROPOSED, Status.CANCELLED},
    Status.PROPOSED: {Status.DRAFT, Status.CONSENTED, Status.CANCELLED},
    Status.CONSENTED: {Status.ACTIVE, Status.CANCELLED},
    Status.ACTIVE: {Status.COMPLETED, Status.CANCELLED},
}


@dataclass(frozen=True)
class AreaInput:
    area: str
    technique: str
    depth_mm: Decimal
    needle_gauge: int
    needle_length_mm: Decimal
    spacing_mm: Decimal | None
    points: int
    volume_per_point_ml: Decimal
    products: list[tuple[Product, Decimal]]

    def draft(self) -> AreaDraft:
        return AreaDraft(self.area, self.points, self.volume_per_point_ml, self.products)


class PlanConflict(ValidationError):
    """Someone else saved the plan since this editor loaded it."""


class PlanBlocked(ValidationError):
    """The safety check found a contraindication or a dose over a limit."""

    def __init__(self, findings: list[Finding]) -> None:
        self.findings = findings
        super().__init__([f.reason for f in findings])


class PlanNeedsAcknowledgement(ValidationError):
    def __init__(self, findings: list[Finding]) -> None:
        self.findings = findings
        super().__init__([_("Give a reason to proceed despite: %(finding)s") % {"finding": f.reason} for f in findings])


def consent_kind_for(plan: TreatmentPlan) -> str:
    return CONSENT_KIND_BY_CONCERN.get(plan.concern, ConsentText.Kind.MESOTHERAPY)


def plan_draft_from_inputs(*, sessions_planned: int, min_interval_days: int, areas: Sequence[AreaInput]) -> PlanDraft:
    return PlanDraft(
        sessions_planned=sessions_planned, min_interval_days=min_interval_days, areas=[a.draft() for a in areas]
    )


def _check(*, plan: TreatmentPlan, draft: PlanDraft, acknowledgements: Mapping[str, str], by: User) -> list[Finding]:
    """Blocks stop the save; each warning needs a reason (kept once per plan and trigger)."""
    findings = plan_safety_check(draft, patient=plan.patient)
    blocks = [f for f in findings if f.is_block]
    if blocks:
        raise PlanBlocked(blocks)
    known = set(plan.acknowledgements.values_list("trigger", flat=True)) if plan.pk else set()
    missing = [
        f
        for f in findings
        if not f.is_block and f.trigger not in known and not acknowledgements.get(f.trigger, "").strip()
    ]
    if missing:
        raise PlanNeedsAcknowledgement(missing)
    for finding in findings:
        if finding.trigger not in known and not finding.is_block:
            PlanAcknowledgement.objects.create(
                plan=plan,
                trigger=finding.trigger,
                finding=finding.reason[:400],
                reason=acknowledgements[finding.trigger].strip()[:400],
                acknowledged_by=by,
            )
    return findings


def _write_areas(plan: TreatmentPlan, areas: Sequence[AreaInput]) -> None:
    wanted = {a.area for a in areas}
    # Draft rows that the practitioner removed: their last state stays in the history.
    stale = list(plan.areas.exclude(area__in=wanted))
    PlanProduct.objects.filter(plan_area__in=stale).delete()
    PlanArea.objects.filter(pk__in=[a.pk for a in stale]).delete()
    existing = {a.area: a for a in plan.areas.all()}
    for position, data in enumerate(areas):
        row = existing.get(data.area) or PlanArea(plan=plan, area=data.area)
        for field in (
            "technique",
            "depth_mm",
            "needle_gauge",
            "needle_length_mm",
            "spacing_mm",
            "points",
            "volume_per_point_ml",
        ):
            setattr(row, field, getattr(data, field))
        row.position = position
        row.full_clean(exclude=["plan"])
        row.save()
        products = {p.product_id: p for p in row.products.all()}
        keep = set()
        for product, volume in data.products:
            item = products.get(product.pk) or PlanProduct(plan_area=row, product=product)
            item.volume_ml = volume
            item.full_clean(exclude=["plan_area"])
            item.save()
            keep.add(product.pk)
        PlanProduct.objects.filter(plan_area=row).exclude(product_id__in=keep).delete()


def _validate_areas(areas: Sequence[AreaInput]) -> None:
    if not areas:
        raise ValidationError(_("Add at least one treatment area."))
    seen: set[str] = set()
    for data in areas:
        if data.area in seen:
            raise ValidationError(_("Each area appears once; combine the products of an area in its blend."))
        seen.add(data.area)
        if not data.products:
            raise ValidationError(_("Choose at least one product for every area."))
        if len({p.pk for p, _ in data.products}) != len(data.products):
            raise ValidationError(_("A product appears twice in the same area's blend."))


@transaction.atomic
def plan_create(
    *,
    patient: Patient,
    practitioner: User,
    concern: str,
    consultation: Consultation | None = None,
    protocol: ProtocolTemplate | None = None,
    goal: str = "",
) -> TreatmentPlan:
    """Start a draft plan, from a protocol template when one is given."""
    if patient.status != Patient.Status.ACTIVE:
        raise ValidationError(_("This record is archived: restore it before planning treatment."))
    if consultation is not None and consultation.patient_id != patient.pk:
        raise ValidationError(_("This consultation belongs to another patient."))
    plan = TreatmentPlan(
        patient=patient,
        practitioner=practitioner,
        consultation=consultation,
        concern=protocol.concern if protocol else concern,
        goal=goal.strip(),
        protocol=protocol,
    )
    if protocol is not None:
        plan.sessions_planned = protocol.sessions
        plan.min_interval_days = protocol.min_interval_days
        plan.maintenance_interval_days = protocol.maintenance_interval_days
        plan.review_after_days = protocol.review_after_days
    plan.full_clean(exclude=["root"])
    plan.save()
    TreatmentPlan.objects.filter(pk=plan.pk).update(root=plan)
    plan.root_id = plan.pk
    if protocol is not None:
        products = {
            p.name: p
            for p in Product.objects.filter(
                name__in=[i["product"] for a in protocol.areas for i in a.get("products", [])]
            )
        }
        for position, area in enumerate(protocol.areas):
            row = PlanArea.objects.create(
                plan=plan,
                area=area["area"],
                technique=area["technique"],
                depth_mm=Decimal(str(area["depth_mm"])),
                needle_gauge=area["needle_gauge"],
                needle_length_mm=Decimal(str(area["needle_length_mm"])),
                spacing_mm=Decimal(str(area["spacing_mm"])) if area.get("spacing_mm") else None,
                points=area["points"],
                volume_per_point_ml=Decimal(str(area["volume_per_point_ml"])),
                position=position,
            )
            for item in area.get("products", []):
                if item["product"] in products:
                    PlanProduct.objects.create(
                        plan_area=row, product=products[item["product"]], volume_ml=Decimal(str(item["volume_ml"]))
                    )
    return plan


@transaction.atomic
def plan_save(
    *,
    plan: TreatmentPlan,
    revision: int,
    editor: User,
    goal: str,
    sessions_planned: int,
    min_interval_days: int,
    maintenance_interval_days: int | None,
    review_after_days: int | None,
    areas: Sequence[AreaInput],
    acknowledgements: Mapping[str, str] | None = None,
) -> TreatmentPlan:
    """Save the builder's content, after the safety check.

    A draft or proposed plan changes in place; a consented or active plan gets a new
    version (the old one is kept, marked superseded) that needs the patient's consent
    again. A save carries the revision it was edited from: if someone saved in between,
    it is refused rather than overwriting their work.
    """
    acknowledgements = acknowledgements or {}
    claimed = TreatmentPlan.objects.filter(pk=plan.pk, revision=revision).update(
        revision=F("revision") + 1, updated_at=timezone.now()
    )
    if not claimed:
        raise PlanConflict(
            _(
                "This plan was changed by someone else since you opened it. Reload the page to see their changes, then edit again."
            )
        )
    plan.refresh_from_db()
    if plan.status in {Status.COMPLETED, Status.CANCELLED, Status.SUPERSEDED}:
        raise ValidationError(_("A %(status)s plan cannot be edited.") % {"status": plan.get_status_display()})
    _validate_areas(areas)
    target = plan
    if not plan.is_editable_in_place:
        target = _new_version(plan, editor)
    target.goal = goal.strip()
    target.sessions_planned = sessions_planned
    target.min_interval_days = min_interval_days
    target.maintenance_interval_days = maintenance_interval_days
    target.review_after_days = review_after_days
    target.full_clean()
    target.save()
    draft = plan_draft_from_inputs(sessions_planned=sessions_planned, min_interval_days=min_interval_days, areas=areas)
    _check(plan=target, draft=draft, acknowledgements=acknowledgements, by=editor)
    _write_areas(target, areas)
    if target.status == Status.PROPOSED:
        # A changed proposal goes back to draft: the patient has not seen this content.
        target.status = Status.DRAFT
        target.save(update_fields=["status"])
    _documents_invalidate(target)
    return target


def _new_version(plan: TreatmentPlan, editor: User) -> TreatmentPlan:
    copy = TreatmentPlan.objects.get(pk=plan.pk)
    copy.pk = None
    copy.id = None
    copy.previous = plan
    copy.root_id = plan.root_id or plan.pk
    copy.version = plan.version + 1
    copy.revision = 1
    copy.status = Status.DRAFT
    copy.consent = None
    copy.consented_at = None
    copy.practitioner = editor
    copy.created_at = copy.updated_at = timezone.now()
    copy.save()
    for ack in plan.acknowledgements.all():
        PlanAcknowledgement.objects.create(
            plan=copy,
            trigger=ack.trigger,
            finding=ack.finding,
            reason=ack.reason,
            acknowledged_by=ack.acknowledged_by,
            acknowledged_at=ack.acknowledged_at,
        )
    TreatmentPlan.objects.filter(pk=plan.pk).update(status=Status.SUPERSEDED)
    return copy


def _documents_invalidate(plan: TreatmentPlan) -> None:
    # The PDF shows status, consent, sessions and lots: any of them changing makes it stale.
    from treatments.services.documents import plan_document_invalidate

    plan_document_invalidate(plan=plan)


@transaction.atomic
def plan_transition(*, plan: TreatmentPlan, to: str, by: User, revision: int | None = None) -> TreatmentPlan:
    """Move a plan through draft → proposed → consented → active → completed (or cancelled)."""
    plan = TreatmentPlan.objects.select_for_update().get(pk=plan.pk)
    if revision is not None and plan.revision != revision:
        raise PlanConflict(_("This plan was changed by someone else since you opened it. Reload the page."))
    if to not in Status.values:
        raise ValidationError(_("Unknown plan status."))
    if to not in TRANSITIONS.get(plan.status, set()):
        raise ValidationError(
            _("A plan that is %(status)s cannot become %(to)s.")
            % {"status": plan.get_status_display(), "to": Status(to).label}
        )
    if to == Status.PROPOSED:
        if not plan.areas.exists():
            raise ValidationError(_("Add at least one treatment area before proposing the plan."))
        findings = plan_safety_check(plan)
        blocks = [f for f in findings if f.is_block]
        if blocks:
            raise PlanBlocked(blocks)
        known = set(plan.acknowledgements.values_list("trigger", flat=True))
        missing = [f for f in findings if f.trigger not in known]
        if missing:
            raise PlanNeedsAcknowledgement(missing)
    if to == Status.CONSENTED:
        kind = consent_kind_for(plan)
        consent: Consent | None = consent_current(plan.patient, kind)
        if consent is None:
            raise ValidationError(
                _("The patient has no current consent for %(kind)s. Capture it first.")
                % {"kind": ConsentText.Kind(kind).label}
            )
        plan.consent = consent
        plan.consented_at = timezone.now()
    plan.status = to
    plan.revision += 1
    plan.updated_at = timezone.now()
    plan.save()
    _documents_invalidate(plan)
    return plan


def plan_versions(plan: TreatmentPlan) -> list[TreatmentPlan]:
    root = plan.root_id or plan.pk
    return list(
        TreatmentPlan.objects.filter(root_id=root)
        .select_related("practitioner")
        .prefetch_related("areas__products__product")
        .order_by("version")
    )


def plan_diff(old: TreatmentPlan, new: TreatmentPlan) -> list[str]:
    """What changed between two versions, in plain words."""
    changes: list[str] = []
    for field in ("goal", "sessions_planned", "min_interval_days", "maintenance_interval_days", "review_after_days"):
        before, after = getattr(old, field), getattr(new, field)
        if before != after:
            label = TreatmentPlan._meta.get_field(field).verbose_name
            changes.append(
                f"{label}: {before if before not in (None, '') else '—'} → {after if after not in (None, '') else '—'}"
            )

    def areas(plan: TreatmentPlan) -> dict[str, Any]:
        return {
            a.area: (
                a.get_area_display(),
                (
                    a.technique,
                    a.depth_mm,
                    a.needle_gauge,
                    a.needle_length_mm,
                    a.spacing_mm,
                    a.points,
                    a.volume_per_point_ml,
                ),
                {p.product.name: p.volume_ml for p in a.products.all()},
            )
            for a in plan.areas.all()
        }

    before, after = areas(old), areas(new)
    for code in sorted(set(before) | set(after)):
        if code not in after:
            changes.append(_("Area removed: %(area)s") % {"area": before[code][0]})
        elif code not in before:
            changes.append(_("Area added: %(area)s") % {"area": after[code][0]})
        else:
            label, old_technique, old_products = before[code]
            _label, new_technique, new_products = after[code]
            if old_technique != new_technique:
                changes.append(
                    _("%(area)s: technique, depth, needle, points or volume per point changed") % {"area": label}
                )
            for name in sorted(set(old_products) | set(new_products)):
                if old_products.get(name) != new_products.get(name):
                    changes.append(f"{label}: {name} {old_products.get(name, '—')} → {new_products.get(name, '—')} mL")
    return changes
