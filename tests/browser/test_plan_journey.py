"""A practitioner builds a plan from a protocol, hits a safety block, fixes it, records
consent, records session 1 with lots, logs a side effect and downloads the PDF."""

from __future__ import annotations

import base64
import io
import subprocess
from decimal import Decimal
from pathlib import Path

import pytest
from django.utils import timezone
from PIL import Image
from playwright.sync_api import Page, expect

from mesoclinic.access import Role
from patients.models import Allergen
from patients.services.consent import consent_record, consent_text_publish
from patients.services.consultation import consultation_create
from patients.services.history import history_record
from tests.factories import PASSWORD, PatientFactory, UserFactory
from treatments.catalogue_seed import catalogue_seed
from treatments.models import AdverseEvent, Lot, TreatmentPlan, TreatmentSession

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _signature() -> str:
    image = Image.new("RGBA", (300, 80), (255, 255, 255, 0))
    for x in range(20, 280):
        image.putpixel((x, 40 + (x % 9)), (10, 10, 60, 255))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def test_plan_journey(live_server, page: Page, private_storage: Path, tmp_path: Path) -> None:
    catalogue_seed()
    manager = UserFactory(email="boss@example.test", role=Role.MANAGER)
    doctor = UserFactory(email="dr.roux@example.test", full_name="Claire Roux", role=Role.PRACTITIONER)
    patient = PatientFactory(first_name="Manon", last_name="Leroy", created_by=doctor)
    # The patient is allergic to soy: the lipolysis protocol's phosphatidylcholine is blocked.
    history_record(
        patient=patient,
        recorded_by=doctor,
        conditions=[],
        weight_kg=Decimal("63"),
        allergies=[Allergen.objects.get(code="soy")],
    )
    consultation_create(
        patient=patient,
        practitioner=doctor,
        held_at=timezone.now(),
        concerns=["fat_reduction"],
        areas=["abdomen"],
        measurements=[{"kind": "circumference", "area": "abdomen", "value": Decimal("91"), "landmark": "umbilicus"}],
    )
    consent_text_publish(
        kind="lipolysis",
        title_en="Lipolysis consent",
        body_en="I agree.",
        title_fr="Consentement",
        body_fr="J'accepte.",
        published_by=manager,
    )

    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Email").fill("dr.roux@example.test")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign In").click()

    # From the consultation, start a plan from the lipolysis protocol.
    page.goto(f"{live_server.url}/patients/{patient.pk}/")
    page.get_by_role("link", name="Consultation", exact=True).first.click()
    page.get_by_test_id("plan-from-consultation").click()
    page.get_by_label("Start from a protocol").select_option(label="Lipolysis — abdomen (4 × 4 weeks)")
    page.get_by_role("button", name="Open the builder").click()
    expect(page.get_by_test_id("screening")).to_contain_text("Soy allergy")

    # Saving is blocked.
    page.get_by_test_id("save-plan").click()
    expect(page.get_by_test_id("form-errors")).to_contain_text("cannot be saved")

    # Fix it: deoxycholic acid (not soy-derived) instead of phosphatidylcholine.
    page.locator("select[name='areas-0-product_1']").select_option(label="DCA 10 mg/mL (Dermaline)")
    page.locator("input[name='areas-0-volume_1']").fill("4")
    page.locator("input[name='areas-0-volume_per_point_ml']").fill("0.2")
    expect(page.get_by_test_id("screening")).not_to_contain_text("Soy allergy")
    page.get_by_test_id("save-plan").click()
    expect(page.get_by_test_id("plan-status")).to_have_text("Draft")
    plan = TreatmentPlan.objects.get(patient=patient)

    # Propose, capture consent, mark consented.
    page.get_by_test_id("to-proposed").click()
    expect(page.get_by_test_id("plan-status")).to_have_text("Proposed to the patient")
    consent_record(
        patient=patient,
        kind="lipolysis",
        typed_name="Manon Leroy",
        signature_data_url=_signature(),
        witness=doctor,
        ip="127.0.0.1",
    )
    page.get_by_test_id("to-consented").click()
    expect(page.get_by_test_id("plan-status")).to_have_text("Consented")

    # Session 1 with the lot in stock.
    lot = Lot.objects.filter(product__name="DCA 10 mg/mL", expiry_date__gte=timezone.localdate()).get()
    stock = lot.quantity_on_hand
    page.get_by_test_id("record-session").click()
    area = plan.areas.get()
    page.locator(f"select[name='a{area.pk}_lot1']").select_option(value=str(lot.pk))
    page.locator(f"input[name='a{area.pk}_vol1']").fill("4")
    page.get_by_test_id("save-session").click()
    expect(page.get_by_test_id("lots-used")).to_contain_text(lot.lot_number)
    lot.refresh_from_db()
    assert lot.quantity_on_hand == stock - 1
    session = TreatmentSession.objects.get(plan=plan)

    # A side effect, linked to the session and the lot.
    page.goto(f"{live_server.url}/treatments/patients/{patient.pk}/side-effects/new/")
    page.get_by_label("Type").select_option("swelling")
    page.locator("input[name='grade'][value='2']").check()
    page.get_by_label("Onset").fill(timezone.localtime().strftime("%Y-%m-%dT%H:%M"))
    page.locator(f"input[name='sessions'][value='{session.pk}']").check()
    page.locator(f"input[name='lots'][value='{lot.pk}']").check()
    page.get_by_label("Description").fill("Firm swelling of the lower abdomen.")
    page.get_by_role("button", name="Record side effect").click()
    expect(page.get_by_test_id("adverse-lots")).to_contain_text(lot.lot_number)
    event = AdverseEvent.objects.get(patient=patient)
    assert (event.grade, list(event.sessions.all()), list(event.lots.all())) == (2, [session], [lot])

    # The PDF, rendered by the task, downloaded and read back.
    page.goto(f"{live_server.url}/treatments/plans/{plan.pk}/")
    page.get_by_test_id("plan-pdf-prepare").click()
    expect(page.get_by_test_id("plan-pdf-status")).to_have_attribute("data-status", "done", timeout=30000)
    with page.expect_download() as download_info:
        page.get_by_test_id("plan-pdf-download").click()
    pdf = tmp_path / "plan.pdf"
    download_info.value.save_as(pdf)
    text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    assert "Leroy" in text and "DCA 10 mg/mL" in text and lot.lot_number in text
