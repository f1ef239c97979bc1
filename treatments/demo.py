"""Demo plans and sessions for `make run`: every lifecycle state, with real lots."""

from __future__ import annotations

from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from mesoclinic.models import User
from patients.models import Patient
from treatments.models import (
    Lot,
    ProtocolTemplate,
    TreatmentPlan,
)
from treatments.services.plans import AreaInput, plan_create, plan_save, plan_transition
from treatments.services.safety import plan_safety_check
from treatments.services.sessions import LotInput, SessionAreaInput, session_record

# email of the patient → (protocol name prefix, final status, sessions to record)
DEMO_PLANS = {
    "helene.dubois@example.fr": ("Lipolysis", "active", 1),
    "f.lefevre@example.fr": ("Hair", "proposed", 0),
    "sophie.martin@example.com": ("Cellulite", "draft", 0),
    "ines.garcia@example.fr": ("Skin booster", "draft", 0),
}


def _area_inputs(plan: TreatmentPlan) -> list[AreaInput]:
    return [
        AreaInput(
            area=a.area,
            technique=a.technique,
            depth_mm=a.depth_mm,
            needle_gauge=a.needle_gauge,
            needle_length_mm=a.needle_length_mm,
            spacing_mm=a.spacing_mm,
            points=a.points,
            volume_per_point_ml=a.volume_per_point_ml,
            products=[
                (p.product, p.volume_ml)
                for p in a.products.select_related("product").prefetch_related("product__components")
            ],
        )
        for a in plan.areas.all()
    ]


@transaction.atomic
def plans_demo_seed() -> int:
    created = 0
    for email, (protocol_prefix, status, sessions) in DEMO_PLANS.items():
        patient = Patient.objects.filter(email=email).first()
        protocol = ProtocolTemplate.objects.filter(name__startswith=protocol_prefix).first()
        if patient is None or protocol is None or TreatmentPlan.objects.filter(patient=patient).exists():
            continue
        consultation = patient.consultations.order_by("-held_at").first()
        practitioner = (
            consultation.practitioner if consultation else User.objects.filter(email="practitioner@demo.clinic").get()
        )
        plan = plan_create(
            patient=patient,
            practitioner=practitioner,
            concern=protocol.concern,
            consultation=consultation,
            protocol=protocol,
            goal="Visible improvement by the review visit",
        )
        created += 1
        warnings = {
            f.trigger: "Discussed with the patient; benefit outweighs the risk."
            for f in plan_safety_check(plan)
            if not f.is_block
        }
        plan = plan_save(
            plan=plan,
            revision=plan.revision,
            editor=practitioner,
            goal=plan.goal,
            sessions_planned=plan.sessions_planned,
            min_interval_days=plan.min_interval_days,
            maintenance_interval_days=plan.maintenance_interval_days,
            review_after_days=plan.review_after_days,
            areas=_area_inputs(plan),
            acknowledgements=warnings,
        )
        if status == "draft":
            continue
        plan = plan_transition(plan=plan, to="proposed", by=practitioner)
        if status == "proposed":
            continue
        plan = plan_transition(plan=plan, to="consented", by=practitioner)
        for number in range(1, sessions + 1):
            areas = []
            for area in plan.areas.prefetch_related("products"):
                uses = []
                for item in area.products.all():
                    lot = (
                        Lot.objects.filter(
                            product=item.product,
                            recalled_at__isnull=True,
                            expiry_date__gte=timezone.localdate(),
                            quantity_on_hand__gt=0,
                        )
                        .order_by("expiry_date")
                        .first()
                    )
                    if lot:
                        uses.append(LotInput(lot=lot, volume_ml=item.volume_ml, units=1))
                areas.append(
                    SessionAreaInput(
                        area=area.area, technique=area.technique, points=area.points, depth_mm=area.depth_mm, lots=uses
                    )
                )
            session_record(
                plan=plan,
                number=number,
                practitioner=practitioner,
                performed_at=timezone.now() - timedelta(days=1 + (sessions - number) * plan.min_interval_days),
                areas=areas,
                immediate_reactions="Mild erythema, settled in 20 minutes.",
                acknowledgements={
                    f.trigger: "Reviewed at the session." for f in plan_safety_check(plan) if not f.is_block
                },
            )
        if sessions:
            _demo_side_effects(patient, practitioner)
    return created


def _demo_side_effects(patient: Patient, practitioner: User) -> None:
    """A resolved bruise the practitioner saw, and a swelling the patient reported (to triage)."""
    from treatments.services.adverse import adverse_event_record, adverse_event_report_by_patient, adverse_event_resolve

    session = patient.treatment_sessions.order_by("number").first()
    lots = [use.lot for area in session.areas.all() for use in area.lot_uses.all()]
    bruise = adverse_event_record(
        patient=patient,
        type="bruising",
        grade=1,
        onset_at=session.performed_at + timedelta(hours=2),
        reported_by="practitioner",
        recorded_by=practitioner,
        description="Two small bruises at injection points.",
        actions_taken="Arnica gel advised.",
        sessions=[session],
        lots=lots,
    )
    adverse_event_resolve(
        event=bruise,
        by=practitioner,
        resolution="Faded by the next day.",
        resolved_at=timezone.now(),
    )
    adverse_event_report_by_patient(
        patient=patient,
        type="swelling",
        severity_word="moderate",
        onset_at=timezone.now() - timedelta(hours=20),
        description="The lower abdomen feels swollen and tender.",
        session=session,
    )


# --- The calendar: hours, a closure, a leave week and six weeks of appointments ----------
