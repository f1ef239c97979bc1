"""The clinical loop end to end, every step through the pages a person uses.

Front desk registers a patient; the practitioner records the history and a consultation,
builds a plan from a protocol, takes the patient's signed consent and marks the plan
consented; front desk books the first two sessions from the proposed slots; the
practitioner records session 1; the aftercare email is sent and the check-in waits in the
outbox; two days later the patient opens the check-in link from the email the app wrote
and reports swelling; the practitioner finds it on the follow-ups list, grades it and
resolves it; and the plan's PDF is downloaded and read back with ``pdftotext``.

Each person has their own browser context; on failure every page is saved as a
screenshot under ``test-results/`` (see tests/browser/conftest.py)."""

from __future__ import annotations

import email
import re
import subprocess
from collections.abc import Callable
from datetime import datetime, time, timedelta
from email.message import Message
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.urls import reverse
from playwright.sync_api import Page, expect

from aftercare.models import CheckInResponse, OutboundMessage
from aftercare.services import message_sweep_due
from mesoclinic.access import Role
from patients.models import Consent, Patient
from patients.services.consent import consent_text_publish
from tests.browser.signature_pad import signature_draw
from tests.factories import PASSWORD, LocationFactory, RoomFactory, UserFactory
from treatments.catalogue_seed import catalogue_seed
from treatments.models import AdverseEvent, Appointment, Lot, OpeningHours, TreatmentPlan, TreatmentSession

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PARIS = ZoneInfo("Europe/Paris")
# A Monday morning in Paris; the server clock is moved through the journey.
MONDAY = datetime(2027, 3, 1, 8, 0, tzinfo=PARIS)
LINK = re.compile(r"https?://[^\s\"'<>]+(/p/[A-Za-z0-9_-]{20,}/)")


def _sign_in(page: Page, base: str, user_email: str) -> None:
    page.goto(f"{base}/accounts/login/")
    page.get_by_label("Email").fill(user_email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign In").click()
    expect(page.get_by_role("link", name="Patients").first).to_be_visible()


def _mails_to(folder: Path, address: str) -> list[Message]:
    mails = [email.message_from_bytes(path.read_bytes()) for path in sorted(folder.glob("*.eml"))]
    return [mail for mail in mails if mail["To"] == address]


def _text(mail: Message) -> str:
    for part in mail.walk():
        if part.get_content_type() == "text/plain":
            return part.get_payload(decode=True).decode(part.get_content_charset() or "utf-8")
    raise AssertionError("no text part")


def test_the_whole_clinical_loop(
    live_server, journey_page: Callable[[str], Page], private_storage: Path, settings, tmp_path: Path
) -> None:
    settings.EMAIL_BACKEND = "mesoclinic.mail.FolderEmailBackend"
    mail_folder = Path(settings.EMAIL_FOLDER)
    base = live_server.url
    clock = time_machine.travel(MONDAY, tick=True)
    clock.start()
    try:
        # What the clinic set up before: a location with its hours and a room, staff,
        # the catalogue (products and lots) and the published consent text.
        location = LocationFactory(name="Paris Opéra", time_zone="Europe/Paris", phone="+33 1 40 00 00 00")
        for weekday in range(6):
            OpeningHours.objects.create(location=location, weekday=weekday, opens=time(9), closes=time(19))
        RoomFactory(location=location, name="Cabine 1")
        manager = UserFactory(email="direction@example.test", role=Role.MANAGER, default_location=location)
        UserFactory(
            email="accueil@example.test", full_name="Julie Accueil", role=Role.FRONT_DESK, default_location=location
        )
        doctor = UserFactory(
            email="dr.roux@example.test", full_name="Claire Roux", role=Role.PRACTITIONER, default_location=location
        )
        catalogue_seed()
        consent_text_publish(
            kind="lipolysis",
            title_en="Lipolysis consent",
            body_en="I understand the procedure, its risks and the aftercare.",
            title_fr="Consentement lipolyse",
            body_fr="Je comprends la procédure, ses risques et les soins après séance.",
            published_by=manager,
        )

        # 1. Front desk registers the patient.
        desk = journey_page("front-desk")
        _sign_in(desk, base, "accueil@example.test")
        desk.get_by_role("link", name="Patients").first.click()
        desk.get_by_role("link", name="New patient").click()
        desk.get_by_label("First name").fill("Élodie")
        desk.get_by_label("Last name").fill("Marchand")
        desk.get_by_label("Date of birth").fill("1986-09-12")
        desk.get_by_label("Email", exact=True).fill("elodie.marchand@example.fr")
        desk.get_by_label("Phone", exact=True).fill("06 12 34 56 78")
        desk.get_by_label("Preferred language").select_option("en")
        desk.get_by_role("button", name="Create patient").click()
        expect(desk.get_by_test_id("patient-name")).to_contain_text("MARCHAND Élodie")
        patient = Patient.objects.get(last_name="Marchand")

        # 2. The practitioner: history, consultation, plan from a protocol, consent.
        doc = journey_page("practitioner")
        _sign_in(doc, base, doctor.email)
        doc.goto(f"{base}/patients/{patient.pk}/")
        doc.get_by_role("link", name="Medical history").first.click()
        doc.get_by_role("link", name="Record history").click()
        doc.get_by_label("Weight (kg)").fill("64")
        doc.get_by_role("button", name="Save as new version").click()
        expect(doc.get_by_test_id("history-items")).to_be_visible()

        doc.goto(f"{base}/patients/{patient.pk}/consultations/new/")
        doc.get_by_label("Fat reduction").check()
        doc.get_by_label("Abdomen").check()
        doc.get_by_label("Fitzpatrick skin type").select_option("2")
        doc.locator("select[name='m-0-kind']").select_option("circumference")
        doc.locator("select[name='m-0-area']").select_option("abdomen")
        doc.locator("input[name='m-0-value']").fill("88")
        doc.get_by_label("Findings").fill("Localised adiposity of the lower abdomen.")
        doc.get_by_role("button", name="Record consultation").click()
        expect(doc.get_by_test_id("measurements")).to_contain_text("88")

        doc.get_by_test_id("plan-from-consultation").click()
        doc.get_by_label("Start from a protocol").select_option(label="Lipolysis — abdomen (4 × 4 weeks)")
        doc.get_by_role("button", name="Open the builder").click()
        doc.get_by_test_id("save-plan").click()
        expect(doc.get_by_test_id("plan-status")).to_have_text("Draft")
        plan = TreatmentPlan.objects.get(patient=patient)
        doc.get_by_test_id("to-proposed").click()
        expect(doc.get_by_test_id("plan-status")).to_have_text("Proposed to the patient")

        doc.goto(f"{base}/patients/{patient.pk}/consent/lipolysis/")
        doc.get_by_label("Full name, typed by the patient").fill("Élodie Marchand")
        signature_draw(doc)
        doc.get_by_role("button", name="Sign the consent").click()
        expect(doc.get_by_test_id("consent-card")).to_be_visible()
        assert Consent.objects.filter(patient=patient, text__kind="lipolysis").count() == 1

        doc.goto(f"{base}{reverse('plan_detail', args=[plan.pk])}")
        doc.get_by_test_id("to-consented").click()
        expect(doc.get_by_test_id("plan-status")).to_have_text("Consented")

        # 3. Front desk books sessions 1 and 2 from the proposed slots.
        for number in (1, 2):
            desk.goto(f"{base}/patients/{patient.pk}/")
            desk.get_by_test_id("book-patient").click()
            expect(desk.get_by_test_id("booking-patient")).to_contain_text("MARCHAND Élodie")
            desk.get_by_test_id("plan-slot").first.click()
            expect(desk.get_by_test_id("calendar")).to_be_visible()
            assert Appointment.objects.filter(patient=patient, plan__root_id=plan.root_id or plan.pk).count() == number
        first, second = Appointment.objects.filter(patient=patient).order_by("starts_at")
        assert first.starts_at.astimezone(PARIS).date() == MONDAY.date()
        assert (second.starts_at.astimezone(PARIS).date() - first.starts_at.astimezone(PARIS).date()).days >= 28
        confirmations = _mails_to(mail_folder, patient.email)
        assert len(confirmations) == 2 and all("text/calendar" in m.as_string() for m in confirmations)

        # 4. The practitioner records session 1 when the patient is there.
        clock.stop()
        clock = time_machine.travel(first.starts_at + timedelta(minutes=5), tick=True)
        clock.start()
        # An hour and more later: the practitioner's idle session has ended; sign in again.
        _sign_in(doc, base, doctor.email)
        lot = Lot.objects.filter(product__name="Lipo PC 5%", expiry_date__gte=MONDAY.date()).order_by("expiry_date")[0]
        doc.goto(f"{base}{reverse('plan_detail', args=[plan.pk])}")
        doc.get_by_test_id("record-session").click()
        area = plan.areas.get()
        doc.locator(f"select[name='a{area.pk}_lot1']").select_option(value=str(lot.pk))
        doc.locator(f"input[name='a{area.pk}_vol1']").fill("4")
        doc.get_by_test_id("save-session").click()
        expect(doc.get_by_test_id("lots-used")).to_contain_text(lot.lot_number)
        session = TreatmentSession.objects.get(patient=patient, number=1)
        first.refresh_from_db()
        assert (first.status, first.session_id) == (Appointment.Status.COMPLETED, session.pk)

        # 5. The aftercare email went out; the check-in waits in the outbox.
        aftercare = OutboundMessage.objects.get(session=session, kind="aftercare")
        assert aftercare.status == OutboundMessage.Status.SENT
        assert (
            len([m for m in _mails_to(mail_folder, patient.email) if m["X-MesoClinic-Message"] == str(aftercare.pk)])
            == 1
        )
        doc.goto(f"{base}/patients/{patient.pk}/")
        log = doc.get_by_test_id("messages-log")
        expect(log.locator("[data-kind='aftercare'][data-status='sent']")).to_have_count(1)
        boss = journey_page("manager")
        _sign_in(boss, base, manager.email)
        boss.goto(f"{base}{reverse('outbox_list')}")
        checkin = OutboundMessage.objects.get(session=session, kind="checkin")
        expect(boss.locator(f"[data-testid='outbox-row'][data-message='{checkin.pk}']")).to_contain_text("MARCHAND")

        # 6. Two days later the check-in email goes; the patient answers from it.
        clock.stop()
        clock = time_machine.travel(session.performed_at + timedelta(hours=48, minutes=2), tick=True)
        clock.start()
        message_sweep_due()  # what beat's minute sweep does (tasks run eagerly here)
        checkin.refresh_from_db()
        assert checkin.status == OutboundMessage.Status.SENT
        [checkin_mail] = [
            m for m in _mails_to(mail_folder, patient.email) if m["X-MesoClinic-Message"] == str(checkin.pk)
        ]
        link = LINK.search(_text(checkin_mail))
        assert link, _text(checkin_mail)
        patient_page = journey_page("patient")
        patient_page.goto(f"{base}{link.group(1)}")
        expect(patient_page.get_by_role("heading", level=1)).to_contain_text("How are you")
        patient_page.locator("input[name='swelling'][value='moderate']").check()
        patient_page.get_by_label("Anything else you want to tell us").fill("Swollen around the navel since yesterday.")
        patient_page.get_by_test_id("checkin-send").click()
        expect(patient_page.get_by_test_id("checkin-thanks")).to_have_attribute("data-severity", "2")
        assert CheckInResponse.objects.filter(session=session).count() == 1

        # 7. The practitioner sees it, grades it at a follow-up, then resolves it.
        _sign_in(doc, base, doctor.email)
        doc.goto(f"{base}{reverse('followups_due')}")
        event = AdverseEvent.objects.get(patient=patient)
        row = doc.locator(f"[data-testid='followup-row'][data-event='{event.pk}']")
        expect(row).to_contain_text("MARCHAND Élodie")
        expect(row.get_by_test_id("needs-triage")).to_be_visible()
        doc.goto(f"{base}{reverse('adverse_detail', args=[event.pk])}")
        follow_up = doc.get_by_test_id("followup-form")
        follow_up.locator("input[name='grade'][value='1']").check()
        follow_up.get_by_label("What was seen or said").fill("Seen today: mild oedema, soft, no redness. Arnica.")
        follow_up.get_by_role("button", name="Save follow-up").click()
        expect(doc.get_by_test_id("followup-notes")).to_contain_text("mild oedema")
        event.refresh_from_db()
        assert (event.grade, event.needs_triage) == (1, False)
        resolve = doc.get_by_test_id("resolve-form")
        resolve.get_by_label("Resolution").fill("Swelling gone at the phone follow-up.")
        resolve.get_by_role("button", name="Mark as resolved").click()
        expect(doc.get_by_test_id("adverse-resolution")).to_contain_text("Swelling gone")
        event.refresh_from_db()
        assert event.resolved_at is not None
        doc.goto(f"{base}{reverse('followups_due')}")
        expect(doc.locator(f"[data-testid='followup-row'][data-event='{event.pk}']")).to_have_count(0)

        # 8. The plan's PDF, rendered by the task, downloaded and read back.
        doc.goto(f"{base}{reverse('plan_detail', args=[plan.pk])}")
        doc.get_by_test_id("plan-pdf-prepare").click()
        expect(doc.get_by_test_id("plan-pdf-status")).to_have_attribute("data-status", "done", timeout=30000)
        with doc.expect_download() as download:
            doc.get_by_test_id("plan-pdf-download").click()
        pdf = tmp_path / "plan.pdf"
        download.value.save_as(pdf)
        text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
        assert "Marchand" in text and "Lipo PC 5%" in text and lot.lot_number in text

        # Front desk never saw a clinical word on the way.
        _sign_in(desk, base, "accueil@example.test")
        desk.goto(f"{base}/patients/{patient.pk}/")
        page_text = desk.content()
        assert "Localised adiposity" not in page_text and "mild oedema" not in page_text
    finally:
        clock.stop()
