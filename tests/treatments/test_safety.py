"""Plan safety checks: screening against the plan's ingredients, and dose limits."""

from __future__ import annotations

from decimal import Decimal

import pytest

from patients.models import Allergen
from patients.services.history import history_record
from tests.factories import PatientFactory
from treatments.catalogue_seed import catalogue_seed
from treatments.models import PlanArea, PlanProduct, Product, TreatmentPlan
from treatments.services.safety import plan_safety_check, plan_totals


@pytest.fixture
def setup(db, practitioner):
    catalogue_seed()
    patient = PatientFactory(created_by=practitioner)
    return patient, practitioner


def _plan(patient, practitioner, items, *, area="abdomen", per_point="0.2", points=20, interval=28, sessions=4):
    plan = TreatmentPlan.objects.create(
        patient=patient,
        practitioner=practitioner,
        concern="fat_reduction",
        sessions_planned=sessions,
        min_interval_days=interval,
    )
    plan_area = PlanArea.objects.create(
        plan=plan,
        area=area,
        technique="point_by_point",
        depth_mm=6,
        needle_gauge=30,
        needle_length_mm=6,
        points=points,
        volume_per_point_ml=Decimal(per_point),
    )
    for name, volume in items:
        PlanProduct.objects.create(
            plan_area=plan_area, product=Product.objects.get(name=name), volume_ml=Decimal(volume)
        )
    return plan


def _history(patient, user, **kw):
    base = {"conditions": [], "weight_kg": Decimal("70")}
    base.update(kw)
    return history_record(patient=patient, recorded_by=user, **base)


def triggers(findings, severity=None):
    return [f.trigger for f in findings if severity is None or f.severity == severity]


def test_soy_allergy_and_phosphatidylcholine_blocks(setup) -> None:
    patient, user = setup
    _history(patient, user, allergies=[Allergen.objects.get(code="soy")])
    findings = plan_safety_check(_plan(patient, user, [("Lipo PC 5%", "4")]))
    assert "allergen:soy" in triggers(findings, "block")
    assert "Phosphatidylcholine" in next(f for f in findings if f.trigger == "allergen:soy").applies_to


def test_soy_allergy_is_silent_for_a_skin_booster(setup) -> None:
    patient, user = setup
    _history(patient, user, allergies=[Allergen.objects.get(code="soy")])
    assert plan_safety_check(_plan(patient, user, [("HA Booster 1.35%", "3")], area="face", per_point="0.05")) == []


def test_anticoagulant_warns(setup) -> None:
    patient, user = setup
    _history(patient, user, medications=[{"name": "Warfarin", "flags": ["anticoagulant"]}])
    findings = plan_safety_check(_plan(patient, user, [("HA Booster 1.35%", "3")], area="face", per_point="0.05"))
    assert triggers(findings) == ["medication:anticoagulant"] and findings[0].severity == "warn"


def test_lidocaine_over_the_per_kg_limit_blocks(setup) -> None:
    patient, user = setup
    _history(patient, user, weight_kg=Decimal("50"))
    # 30 mL of 1% lidocaine = 300 mg; 300 / 50 kg = 6 mg/kg > 4.5
    findings = plan_safety_check(
        _plan(patient, user, [("Lidocaine 1% (no adrenaline)", "30")], per_point="0.1", points=100)
    )
    lidocaine = [f for f in findings if f.trigger.startswith("dose:mg_per_kg")]
    assert lidocaine and lidocaine[0].severity == "block"
    assert "6 mg/kg" in lidocaine[0].reason and "300 mg for 50 kg" in lidocaine[0].reason


def test_lidocaine_within_the_limit_passes(setup) -> None:
    patient, user = setup
    _history(patient, user, weight_kg=Decimal("80"))
    # 10 mL = 100 mg; 100 / 80 = 1.25 mg/kg
    findings = plan_safety_check(
        _plan(patient, user, [("Lidocaine 1% (no adrenaline)", "10")], per_point="0.1", points=100)
    )
    assert not [f for f in findings if f.trigger.startswith("dose:")]


def test_per_kg_limit_without_weight_blocks_until_weight_is_recorded(setup) -> None:
    patient, user = setup
    _history(patient, user, weight_kg=None)
    findings = plan_safety_check(
        _plan(patient, user, [("Lidocaine 1% (no adrenaline)", "5")], per_point="0.1", points=50)
    )
    assert any(f.trigger.startswith("dose:weight-missing") and f.is_block for f in findings)


def test_interval_shorter_than_the_protocol_minimum_blocks(setup) -> None:
    patient, user = setup
    _history(patient, user)
    findings = plan_safety_check(_plan(patient, user, [("DCA 10 mg/mL", "4")], area="chin", interval=14, points=20))
    interval = [f for f in findings if f.trigger.startswith("dose:min_days_between")]
    assert interval and interval[0].is_block and "14 days" in interval[0].reason


def test_too_many_sessions_and_points_block(setup) -> None:
    patient, user = setup
    _history(patient, user)
    findings = plan_safety_check(_plan(patient, user, [("DCA 10 mg/mL", "8")], area="chin", sessions=8, points=60))
    assert {"dose:max_sessions", "dose:points_per_session"} <= {
        f.trigger.rsplit(":", 1)[0] for f in findings if f.is_block
    }


def test_pc_per_point_and_face_limits(setup) -> None:
    patient, user = setup
    _history(patient, user)
    # 0.5 mL per point > 0.3; face: 60 mL x 50 mg/mL = 3000 mg > 2500 mg face limit, < 5000 mg body limit
    findings = plan_safety_check(_plan(patient, user, [("Lipo PC 5%", "60")], area="face", per_point="0.5", points=120))
    kinds = {f.trigger for f in findings if f.is_block}
    assert any(k.startswith("dose:ml_per_point") for k in kinds)
    assert any(k.startswith("dose:mg_per_session") and k.endswith(":face") for k in kinds)


def test_totals(setup) -> None:
    patient, user = setup
    plan = _plan(patient, user, [("Lipo PC 5%", "4"), ("Cellu Caffeine 5%", "2")])
    totals = plan_totals(plan)
    assert totals.total_ml == Decimal("6") and totals.total_points == 20
    assert sorted(totals.mg.values()) == [Decimal("100"), Decimal("100"), Decimal("200"), Decimal("200")]
