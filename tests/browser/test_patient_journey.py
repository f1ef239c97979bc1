"""A practitioner registers a patient, records the history and a consultation with a
photo, and captures consent with a drawn signature — in Chromium."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from PIL import Image
from playwright.sync_api import Page, expect

from mesoclinic.access import Role
from patients.models import ClinicalPhoto, Consent, Consultation, MedicalHistory, Patient
from patients.services.consent import consent_text_publish
from tests.browser.signature_pad import signature_draw
from tests.factories import PASSWORD, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_practitioner_journey(live_server, page: Page, private_storage: Path, tmp_path: Path) -> None:
    manager = UserFactory(email="boss@example.test", role=Role.MANAGER)
    UserFactory(email="dr.martin@example.test", full_name="Hélène Martin", role=Role.PRACTITIONER)
    for kind in ("mesotherapy", "photography"):
        consent_text_publish(
            kind=kind,
            title_en=f"{kind} consent",
            body_en="I agree.",
            title_fr=f"consentement {kind}",
            body_fr="J'accepte.",
            published_by=manager,
        )

    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Email").fill("dr.martin@example.test")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign In").click()

    # Register the patient.
    page.get_by_role("link", name="Patients").first.click()
    page.get_by_role("link", name="New patient").click()
    page.get_by_label("First name").fill("Léa")
    page.get_by_label("Last name").fill("Fontaine")
    page.get_by_label("Date of birth").fill("1990-05-17")
    page.get_by_label("Email", exact=True).fill("lea.fontaine@example.fr")
    page.get_by_label("Phone", exact=True).fill("06 98 76 54 32")
    page.get_by_role("button", name="Create patient").click()
    expect(page.get_by_test_id("patient-name")).to_contain_text("FONTAINE Léa")
    patient = Patient.objects.get(last_name="Fontaine")

    # Medical history: an anticoagulant, a soy allergy.
    page.get_by_role("link", name="Medical history").first.click()
    page.get_by_role("link", name="Record history").click()
    page.get_by_label("Herpes (cold sores), recurrent or active").check()
    page.locator("input[name='med-0-name']").fill("Apixaban")
    page.locator("input[name='med-0-flags'][value='anticoagulant']").check()
    page.get_by_label("Soy (phosphatidylcholine)").check()
    page.get_by_label("Weight (kg)").fill("62")
    page.get_by_role("button", name="Save as new version").click()
    expect(page.get_by_test_id("history-items")).to_contain_text("Apixaban")
    expect(page.get_by_test_id("screening")).to_contain_text("Anticoagulant treatment")
    assert MedicalHistory.objects.get(patient=patient).weight_kg == 62

    # Consultation with a baseline measurement.
    page.goto(f"{live_server.url}/patients/{patient.pk}/consultations/new/")
    page.get_by_label("Fat reduction").check()
    page.get_by_label("Abdomen").check()
    page.get_by_label("Fitzpatrick skin type").select_option("3")
    page.locator("select[name='m-0-kind']").select_option("circumference")
    page.locator("select[name='m-0-area']").select_option("abdomen")
    page.locator("input[name='m-0-value']").fill("84.5")
    page.get_by_label("Findings").fill("Localised adiposity below the umbilicus.")
    page.get_by_role("button", name="Record consultation").click()
    expect(page.get_by_test_id("measurements")).to_contain_text("84.5")
    consultation = Consultation.objects.get(patient=patient)

    # Consent with a drawn signature, then photo consent.
    for kind in ("mesotherapy", "photography"):
        page.goto(f"{live_server.url}/patients/{patient.pk}/consent/{kind}/")
        page.get_by_label("Full name, typed by the patient").fill("Léa Fontaine")
        signature_draw(page)
        page.get_by_role("button", name="Sign the consent").click()
        expect(page.get_by_test_id("consent-card")).to_be_visible()
    expect(page.get_by_test_id("consent-valid")).to_have_count(2)
    assert Consent.objects.filter(patient=patient).count() == 2
    signature = Consent.objects.filter(patient=patient).first()
    assert (private_storage / signature.signature_file).read_bytes().startswith(b"\x89PNG")

    # A baseline photo for the consultation.
    photo = tmp_path / "abdomen.jpg"
    buffer = io.BytesIO()
    Image.new("RGB", (640, 480), (200, 160, 140)).save(buffer, format="JPEG")
    photo.write_bytes(buffer.getvalue())
    page.goto(f"{live_server.url}/patients/{patient.pk}/photos/upload/?consultation={consultation.pk}")
    page.locator("input[type='file']").set_input_files(str(photo))
    page.get_by_label("Area").select_option("abdomen")
    page.get_by_role("button", name=re.compile("Upload")).click()
    expect(page.locator("img").first).to_be_visible()
    assert ClinicalPhoto.objects.filter(patient=patient).count() == 1
