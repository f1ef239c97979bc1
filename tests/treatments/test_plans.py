"""The plan builder, plan lifecycle and versions, and session records."""

from __future__ import annotations

import base64
import io
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from PIL import Image

from patients.models import Allergen, Patient
from patients.services.consent import consent_record, consent_text_publish
from patients.services.history import history_record
from tests.factories import PatientFactory
from treatments.catalogue_seed import catalogue_seed
from treatments.models import (
    Lot,
    PlanAcknowledgement,
    PlanArea,
    Product,
    ProtocolTemplate,
    TreatmentPlan,
    TreatmentSession,
)
from treatments.services.plans import plan_create, plan_transition


@pytest.fixture
def private(private_storage: Path) -> Path:
    return private_storage


@pytest.fixture
def patient(db, practitioner) -> Patient:
    catalogue_seed()
    patient = PatientFactory(first_name="Nina", last_name="Petit", created_by=practitioner)
    history_record(patient=patient, recorded_by=practitioner, conditions=[], weight_kg=Decimal("60"))
    return patient


def _signature() -> str:
    image = Image.new("RGBA", (200, 60), (255, 255, 255, 0))
    for x in range(20, 180):
        image.putpixel((x, 30 + (x % 7)), (0, 0, 0, 255))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def _consent(patient, user, kind="lipolysis"):
    from patients.models import ConsentText

    if not ConsentText.objects.filter(kind=kind).exists():
        consent_text_publish(kind=kind, title_en="t", body_en="b", title_fr="t", body_fr="b", published_by=user)
    return consent_record(
        patient=patient,
        kind=kind,
        typed_name="Nina Petit",
        signature_data_url=_signature(),
        witness=user,
        ip="127.0.0.1",
    )


def _builder_data(plan: TreatmentPlan, areas: list[dict], **course) -> dict:
    data = {
        "revision": plan.revision,
        "goal": "Reduce lower abdomen",
        "sessions_planned": 4,
        "min_interval_days": 28,
        "maintenance_interval_days": "",
        "review_after_days": 56,
        "areas-TOTAL_FORMS": len(areas),
        "areas-INITIAL_FORMS": 0,
        "areas-MIN_NUM_FORMS": 0,
        "areas-MAX_NUM_FORMS": 14,
        "action": "save",
        **course,
    }
    for index, area in enumerate(areas):
        base = {
            "area": "abdomen",
            "technique": "point_by_point",
            "depth_mm": "6",
            "needle_gauge": "30",
            "needle_length_mm": "6",
            "spacing_mm": "15",
            "points": "20",
            "volume_per_point_ml": "0.2",
        }
        base.update(area)
        for key, value in base.items():
            data[f"areas-{index}-{key}"] = value
    return data


def _pc(volume: str = "4") -> dict:
    return {"product_1": Product.objects.get(name="Lipo PC 5%").pk, "volume_1": volume}


def _draft(patient, practitioner) -> TreatmentPlan:
    return plan_create(patient=patient, practitioner=practitioner, concern="fat_reduction")


# --- roles ---------------------------------------------------------------------------------


def test_front_desk_sees_no_plan_page(front_desk_client: Client, patient, practitioner) -> None:
    plan = _draft(patient, practitioner)
    for url in (
        reverse("patient_plans", args=[patient.pk]),
        reverse("plan_new", args=[patient.pk]),
        reverse("plan_detail", args=[plan.pk]),
        reverse("plan_builder", args=[plan.pk]),
        reverse("session_record", args=[plan.pk]),
    ):
        assert front_desk_client.get(url).status_code == 403, url


@pytest.mark.parametrize("persona", ["practitioner_client", "manager_client"])
def test_clinical_roles_reach_plan_pages(request, persona: str, patient, practitioner) -> None:
    client = request.getfixturevalue(persona)
    plan = _draft(patient, practitioner)
    for name, args in (
        ("patient_plans", [patient.pk]),
        ("plan_new", [patient.pk]),
        ("plan_detail", [plan.pk]),
        ("plan_builder", [plan.pk]),
    ):
        assert client.get(reverse(name, args=args)).status_code == 200, name


@pytest.mark.django_db
def test_anonymous_is_sent_to_login(anonymous_client: Client) -> None:
    assert anonymous_client.get(reverse("plan_detail", args=[1])).status_code == 302


# --- builder -------------------------------------------------------------------------------


def test_plan_from_a_protocol_template(practitioner_client: Client, patient) -> None:
    protocol = ProtocolTemplate.objects.get(name__startswith="Skin booster")
    response = practitioner_client.post(reverse("plan_new", args=[patient.pk]), {"protocol": protocol.pk})
    plan = TreatmentPlan.objects.get(patient=patient)
    assert response.status_code == 302 and response.url == reverse("plan_builder", args=[plan.pk])
    assert (plan.concern, plan.sessions_planned, plan.min_interval_days) == ("skin_rejuvenation", 3, 14)
    assert sorted(plan.areas.values_list("area", flat=True)) == ["face", "neck"]
    page = practitioner_client.get(response.url).content.decode()
    assert "HA Booster" in page and 'data-testid="totals"' in page


def test_save_a_plan(practitioner_client: Client, patient, practitioner) -> None:
    plan = _draft(patient, practitioner)
    response = practitioner_client.post(reverse("plan_builder", args=[plan.pk]), _builder_data(plan, [_pc()]))
    assert response.status_code == 302
    area = PlanArea.objects.get(plan=plan)
    assert (area.area, area.points, area.products.get().volume_ml) == ("abdomen", 20, Decimal("4"))
    page = practitioner_client.get(reverse("plan_detail", args=[plan.pk])).content.decode()
    assert "4 mL in 20 points" in page


def test_preview_returns_totals_without_saving(practitioner_client: Client, patient, practitioner) -> None:
    plan = _draft(patient, practitioner)
    data = {**_builder_data(plan, [_pc("6")]), "action": "preview"}
    response = practitioner_client.post(reverse("plan_builder", args=[plan.pk]), data, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    assert 'id="plan-panel"' in response.content.decode() and "6 mL in 20 points" in response.content.decode()
    assert not PlanArea.objects.filter(plan=plan).exists()


def test_soy_allergy_blocks_a_phosphatidylcholine_plan_and_nothing_is_saved(
    practitioner_client: Client, patient, practitioner
) -> None:
    history_record(
        patient=patient,
        recorded_by=practitioner,
        conditions=[],
        weight_kg=Decimal("60"),
        allergies=[Allergen.objects.get(code="soy")],
    )
    plan = _draft(patient, practitioner)
    response = practitioner_client.post(reverse("plan_builder", args=[plan.pk]), _builder_data(plan, [_pc()]))
    assert response.status_code == 400
    page = response.content.decode()
    assert "cannot be saved" in page and "Soy allergy" in page
    assert not PlanArea.objects.filter(plan=plan).exists()
    plan.refresh_from_db()
    assert plan.revision == 1  # the optimistic lock bump was rolled back too


def test_anticoagulant_warning_needs_a_reason_which_is_recorded(
    practitioner_client: Client, patient, practitioner
) -> None:
    history_record(
        patient=patient,
        recorded_by=practitioner,
        conditions=[],
        weight_kg=Decimal("60"),
        medications=[{"name": "Apixaban", "flags": ["anticoagulant"]}],
    )
    plan = _draft(patient, practitioner)
    url = reverse("plan_builder", args=[plan.pk])
    response = practitioner_client.post(url, _builder_data(plan, [_pc()]))
    assert response.status_code == 400 and "need a reason" in response.content.decode()
    assert not PlanAcknowledgement.objects.exists()
    data = {**_builder_data(plan, [_pc()]), "ack:medication:anticoagulant": "Cardiologist agrees; arnica prescribed"}
    assert practitioner_client.post(url, data).status_code == 302
    ack = PlanAcknowledgement.objects.get(plan=plan)
    assert ack.reason == "Cardiologist agrees; arnica prescribed" and ack.acknowledged_by == practitioner


def test_lidocaine_over_the_per_kg_limit_blocks(practitioner_client: Client, patient, practitioner) -> None:
    plan = _draft(patient, practitioner)
    lidocaine = Product.objects.get(name__startswith="Lidocaine")
    area = {
        "product_1": lidocaine.pk,
        "volume_1": "30",
        "points": "100",
        "volume_per_point_ml": "0.1",
    }  # 300 mg / 60 kg = 5 mg/kg
    response = practitioner_client.post(reverse("plan_builder", args=[plan.pk]), _builder_data(plan, [area]))
    assert response.status_code == 400 and "mg/kg" in response.content.decode()
    assert not PlanArea.objects.filter(plan=plan).exists()


def test_interval_shorter_than_the_protocol_minimum_blocks(practitioner_client: Client, patient, practitioner) -> None:
    plan = _draft(patient, practitioner)
    dca = Product.objects.get(name__startswith="DCA")
    area = {"area": "chin", "product_1": dca.pk, "volume_1": "2", "points": "10"}
    response = practitioner_client.post(
        reverse("plan_builder", args=[plan.pk]), _builder_data(plan, [area], min_interval_days=14)
    )
    assert response.status_code == 400 and "14 days" in response.content.decode()


@pytest.mark.parametrize(
    ("area", "message"),
    [
        ({"points": "0"}, "greater than or equal to 1"),
        ({"volume_per_point_ml": "5"}, "less than or equal to 2"),
        ({"needle_gauge": "18"}, "greater than or equal to 25"),
        ({"product_1": "", "volume_1": ""}, "at least one product"),
        ({"volume_1": ""}, "How many mL"),
        ({"area": "elbow"}, "Select a valid choice"),
    ],
)
def test_bad_builder_input(practitioner_client: Client, patient, practitioner, area: dict, message: str) -> None:
    plan = _draft(patient, practitioner)
    response = practitioner_client.post(
        reverse("plan_builder", args=[plan.pk]), _builder_data(plan, [{**_pc(), **area}])
    )
    assert response.status_code == 400 and message in response.content.decode()
    assert not PlanArea.objects.filter(plan=plan).exists()


def test_the_same_area_twice_is_refused(practitioner_client: Client, patient, practitioner) -> None:
    plan = _draft(patient, practitioner)
    response = practitioner_client.post(reverse("plan_builder", args=[plan.pk]), _builder_data(plan, [_pc(), _pc()]))
    assert response.status_code == 400 and "Each area appears once" in response.content.decode()


def test_concurrent_edit_is_refused_not_overwritten(
    practitioner_client: Client, manager_client: Client, patient, practitioner
) -> None:
    plan = _draft(patient, practitioner)
    url = reverse("plan_builder", args=[plan.pk])
    first = _builder_data(plan, [_pc("4")])
    second = _builder_data(plan, [_pc("5")])  # opened at the same revision
    assert practitioner_client.post(url, first).status_code == 302
    response = manager_client.post(url, second)
    assert response.status_code == 409
    assert "changed by someone else" in response.content.decode()
    assert PlanArea.objects.get(plan=plan).products.get().volume_ml == Decimal("4")


# --- lifecycle and versions -----------------------------------------------------------------


def _saved_plan(client: Client, patient, practitioner) -> TreatmentPlan:
    plan = _draft(patient, practitioner)
    assert client.post(reverse("plan_builder", args=[plan.pk]), _builder_data(plan, [_pc()])).status_code == 302
    plan.refresh_from_db()
    return plan


def test_consent_is_required_to_mark_a_plan_consented(
    practitioner_client: Client, patient, practitioner, private
) -> None:
    plan = _saved_plan(practitioner_client, patient, practitioner)
    plan_transition(plan=plan, to="proposed", by=practitioner)
    response = practitioner_client.post(reverse("plan_transition", args=[plan.pk]), {"to": "consented"}, follow=True)
    assert "no current consent" in response.content.decode()
    plan.refresh_from_db()
    assert plan.status == "proposed"
    consent = _consent(patient, practitioner)
    practitioner_client.post(reverse("plan_transition", args=[plan.pk]), {"to": "consented"})
    plan.refresh_from_db()
    assert plan.status == "consented" and plan.consent == consent


def test_editing_a_consented_plan_creates_a_new_version(
    practitioner_client: Client, patient, practitioner, private
) -> None:
    plan = _saved_plan(practitioner_client, patient, practitioner)
    _consent(patient, practitioner)
    plan_transition(plan=plan, to="proposed", by=practitioner)
    plan = plan_transition(plan=plan, to="consented", by=practitioner)
    response = practitioner_client.post(reverse("plan_builder", args=[plan.pk]), _builder_data(plan, [_pc("6")]))
    new = TreatmentPlan.objects.get(previous=plan)
    assert response.status_code == 302 and response.url == reverse("plan_detail", args=[new.pk])
    plan.refresh_from_db()
    assert plan.status == "superseded" and plan.areas.get().products.get().volume_ml == Decimal("4")
    assert (new.version, new.status, new.consent) == (2, "draft", None)
    page = practitioner_client.get(response.url).content.decode()
    assert "Abdomen: Lipo PC 5% 4.00 → 6.00 mL" in page


def test_invalid_transition_is_explained(practitioner_client: Client, patient, practitioner) -> None:
    plan = _draft(patient, practitioner)
    response = practitioner_client.post(reverse("plan_transition", args=[plan.pk]), {"to": "active"}, follow=True)
    assert "cannot become" in response.content.decode()


# --- sessions ------------------------------------------------------------------------------------


def _consented_plan(client, patient, practitioner) -> TreatmentPlan:
    plan = _saved_plan(client, patient, practitioner)
    _consent(patient, practitioner)
    plan_transition(plan=plan, to="proposed", by=practitioner)
    return plan_transition(plan=plan, to="consented", by=practitioner)


def _session_data(plan: TreatmentPlan, lot: Lot, **changes) -> dict:
    area = plan.areas.get()
    data = {
        "number": TreatmentSession.objects.filter(plan__root_id=plan.root_id).count() + 1,
        "performed_at": timezone.localtime().strftime("%Y-%m-%dT%H:%M"),
        f"a{area.pk}_done": "on",
        f"a{area.pk}_points": "20",
        f"a{area.pk}_depth": "6",
        f"a{area.pk}_lot1": lot.pk,
        f"a{area.pk}_vol1": "4",
        f"a{area.pk}_units1": "1",
    }
    data.update({k.replace("AREA", f"a{area.pk}"): v for k, v in changes.items()})
    return data


def test_record_a_session_decrements_stock_once(practitioner_client: Client, patient, practitioner, private) -> None:
    plan = _consented_plan(practitioner_client, patient, practitioner)
    lot = Lot.objects.filter(
        product__name="Lipo PC 5%", recalled_at__isnull=True, expiry_date__gte=timezone.localdate()
    ).get()
    stock = lot.quantity_on_hand
    data = _session_data(plan, lot)
    url = reverse("session_record", args=[plan.pk])
    response = practitioner_client.post(url, data)
    assert response.status_code == 302, response.content.decode()[:3000]
    again = practitioner_client.post(url, data)  # the same form submitted twice
    assert again.status_code == 400 and "already recorded" in again.content.decode()
    lot.refresh_from_db()
    assert lot.quantity_on_hand == stock - 1
    session = TreatmentSession.objects.get()
    assert session.areas.get().lot_uses.get().lot == lot
    plan.refresh_from_db()
    assert plan.status == "active"
    page = practitioner_client.get(response.url).content.decode()
    assert lot.lot_number in page


def test_the_session_record_completes_the_days_appointment(
    practitioner_client: Client, patient, practitioner, private
) -> None:
    from tests.factories import LocationFactory
    from treatments.models import Appointment

    plan = _consented_plan(practitioner_client, patient, practitioner)
    # Twenty minutes ago, but today in Paris even just after midnight.
    midnight = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)
    start = max(timezone.now() - timedelta(minutes=20), midnight)
    appointment = Appointment.objects.create(
        location=LocationFactory(),
        practitioner=practitioner,
        patient=patient,
        plan=plan,
        kind="treatment",
        starts_at=start,
        ends_at=start + timedelta(hours=1),
        status="checked_in",
        created_by=practitioner,
    )
    lot = Lot.objects.filter(
        product__name="Lipo PC 5%", recalled_at__isnull=True, expiry_date__gte=timezone.localdate()
    ).get()
    response = practitioner_client.post(reverse("session_record", args=[plan.pk]), _session_data(plan, lot))
    assert response.status_code == 302
    appointment.refresh_from_db()
    assert appointment.status == "completed"
    assert appointment.session == TreatmentSession.objects.get()
    assert appointment.changes.get().action == "completed"


def test_expired_lot_is_refused(practitioner_client: Client, patient, practitioner, private) -> None:
    plan = _consented_plan(practitioner_client, patient, practitioner)
    expired = Lot.objects.filter(product__name="Lipo PC 5%", expiry_date__lt=timezone.localdate()).get()
    usable = Lot.objects.filter(product__name="Lipo PC 5%", expiry_date__gte=timezone.localdate()).get()
    data = _session_data(plan, usable, AREA_lot1="", AREA_scan1=expired.lot_number)
    response = practitioner_client.post(reverse("session_record", args=[plan.pk]), data)
    assert response.status_code == 400 and "expired" in response.content.decode()
    assert not TreatmentSession.objects.exists()
    expired.refresh_from_db()
    assert expired.quantity_on_hand == 2


def test_recalled_lot_is_refused(practitioner_client: Client, patient, practitioner, private) -> None:
    plan = _consented_plan(practitioner_client, patient, practitioner)
    lot = Lot.objects.filter(product__name="Lipo PC 5%", expiry_date__gte=timezone.localdate()).get()
    Lot.objects.filter(pk=lot.pk).update(recalled_at=timezone.now(), recall_reason="supplier")
    data = _session_data(plan, lot, AREA_lot1="", AREA_scan1=lot.lot_number)
    response = practitioner_client.post(reverse("session_record", args=[plan.pk]), data)
    assert response.status_code == 400 and "recalled" in response.content.decode()
    assert not TreatmentSession.objects.exists()


def test_second_session_too_soon_is_refused(practitioner_client: Client, patient, practitioner, private) -> None:
    plan = _consented_plan(practitioner_client, patient, practitioner)
    lot = Lot.objects.filter(product__name="Lipo PC 5%", expiry_date__gte=timezone.localdate()).get()
    first = _session_data(
        plan, lot, performed_at=(timezone.localtime() - timedelta(days=10)).strftime("%Y-%m-%dT%H:%M")
    )
    assert practitioner_client.post(reverse("session_record", args=[plan.pk]), first).status_code == 302
    second = _session_data(plan, lot)
    response = practitioner_client.post(reverse("session_record", args=[plan.pk]), second)
    assert response.status_code == 400 and "minimum interval is 28 days" in response.content.decode()


def test_session_without_a_lot_is_refused(practitioner_client: Client, patient, practitioner, private) -> None:
    plan = _consented_plan(practitioner_client, patient, practitioner)
    lot = Lot.objects.filter(product__name="Lipo PC 5%", expiry_date__gte=timezone.localdate()).get()
    response = practitioner_client.post(
        reverse("session_record", args=[plan.pk]), _session_data(plan, lot, AREA_lot1="", AREA_vol1="")
    )
    assert response.status_code == 400 and "traceability" in response.content.decode()


# --- query counts ---------------------------------------------------------------------------------


def _count(client: Client, url: str) -> int:
    client.get(url)
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(url).status_code == 200
    return len(ctx.captured_queries)


@pytest.mark.parametrize("sessions", [2, 20])
def test_plan_page_query_count_is_pinned(
    practitioner_client: Client, patient, practitioner, private, sessions: int
) -> None:
    plan = _saved_plan(practitioner_client, patient, practitioner)
    TreatmentPlan.objects.filter(pk=plan.pk).update(
        sessions_planned=30, status="active", consent=_consent(patient, practitioner)
    )
    for number in range(1, sessions + 1):
        TreatmentSession.objects.create(
            plan=plan,
            patient=patient,
            number=number,
            practitioner=practitioner,
            status="completed",
            completed_at=timezone.now(),
        )
    assert _count(practitioner_client, reverse("plan_detail", args=[plan.pk])) == PLAN_PAGE_QUERIES


PLAN_PAGE_QUERIES = 28
