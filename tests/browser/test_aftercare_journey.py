"""A patient opens the check-in link from the email the app wrote 48 hours after their
session, reports moderate swelling, and the practitioner finds it on their follow-ups list."""

from __future__ import annotations

import email
import re
from datetime import timedelta
from decimal import Decimal
from email.message import Message
from pathlib import Path

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import Browser, Page, expect

from aftercare.models import CheckInResponse, OutboundMessage
from aftercare.services import message_sweep_due
from mesoclinic.access import Role
from patients.services.consent import consent_record, consent_text_publish
from tests.factories import PASSWORD, LocationFactory, PatientFactory, UserFactory
from treatments.models import AdverseEvent, PlanArea, TreatmentPlan
from treatments.services.safety import plan_safety_check
from treatments.services.sessions import SessionAreaInput, session_record

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

LINK = re.compile(r"https?://[^\s\"'<>]+/p/([A-Za-z0-9_-]{20,})/")


def _signature() -> str:
    import base64
    import io

    from PIL import Image

    image = Image.new("RGBA", (300, 80), (255, 255, 255, 0))
    for x in range(20, 280):
        image.putpixel((x, 40 + (x % 9)), (10, 10, 60, 255))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def _text_part(message: Message) -> str:
    for part in message.walk():
        if part.get_content_type() == "text/plain":
            payload = part.get_payload(decode=True)
            return payload.decode(part.get_content_charset() or "utf-8")
    raise AssertionError("no text part")


def _mails(folder: Path) -> list[Message]:
    return [email.message_from_bytes(path.read_bytes()) for path in sorted(folder.glob("*.eml"))]


def test_checkin_from_the_email_reaches_the_followups_list(
    live_server, page: Page, browser: Browser, private_storage: Path, settings
) -> None:
    # The mail backend of an installation without SMTP: each email an .eml file in a folder
    # (pytest-django would otherwise keep mails in memory).
    settings.EMAIL_BACKEND = "mesoclinic.mail.FolderEmailBackend"
    manager = UserFactory(email="boss@example.test", role=Role.MANAGER)
    location = LocationFactory(name="Lyon Bellecour", phone="+33 4 78 00 00 00")
    doctor = UserFactory(
        email="dr.morel@example.test", full_name="Hélène Morel", role=Role.PRACTITIONER, default_location=location
    )
    patient = PatientFactory(
        first_name="Julie", last_name="Fabre", email="julie@example.test", preferred_language="en", created_by=doctor
    )
    consent_text_publish(
        kind="lipolysis",
        title_en="Lipolysis consent",
        body_en="I agree.",
        title_fr="Consentement",
        body_fr="J'accepte.",
        published_by=manager,
    )
    consent = consent_record(
        patient=patient,
        kind="lipolysis",
        typed_name="Julie Fabre",
        signature_data_url=_signature(),
        witness=doctor,
        ip="127.0.0.1",
    )
    plan = TreatmentPlan.objects.create(
        patient=patient,
        practitioner=doctor,
        concern="fat_reduction",
        status=TreatmentPlan.Status.CONSENTED,
        consent=consent,
        consented_at=timezone.now(),
        sessions_planned=4,
        min_interval_days=21,
    )
    PlanArea.objects.create(
        plan=plan,
        area="abdomen",
        technique="point_by_point",
        depth_mm=6,
        needle_gauge=30,
        needle_length_mm=13,
        points=20,
        volume_per_point_ml="0.2",
    )
    # The session is recorded the way the practitioner records it: the aftercare email and
    # the check-in due 48 hours later are outbox rows of that transaction.
    performed_at = timezone.now() - timedelta(minutes=10)
    session = session_record(
        plan=plan,
        number=1,
        practitioner=doctor,
        performed_at=performed_at,
        location=location,
        areas=[SessionAreaInput(area="abdomen", technique="point_by_point", points=20, depth_mm=Decimal("6"), lots=[])],
        acknowledgements={f.trigger: "Discussed with the patient." for f in plan_safety_check(plan)},
    )
    checkin = OutboundMessage.objects.get(kind="checkin", session=session)
    assert checkin.status == OutboundMessage.Status.SCHEDULED
    folder = Path(settings.EMAIL_FOLDER)
    assert not [m for m in _mails(folder) if m["To"] == patient.email and "check" in _text_part(m).lower()]

    # Two days later the sweeper sends it (tasks run eagerly in tests).
    with time_machine.travel(performed_at + timedelta(hours=48, minutes=1), tick=True):
        message_sweep_due()
    checkin.refresh_from_db()
    assert checkin.status == OutboundMessage.Status.SENT
    mails = [m for m in _mails(folder) if m["X-MesoClinic-Message"] == str(checkin.pk)]
    assert len(mails) == 1
    body = _text_part(mails[0])
    match = LINK.search(body)
    assert match, body
    link_path = f"/p/{match.group(1)}/"

    # The patient opens the link in their own browser, with no account.
    page.goto(f"{live_server.url}{link_path}")
    expect(page.get_by_role("heading", level=1)).to_contain_text("How are you")
    expect(page.get_by_test_id("clinic-phone")).to_have_text("+33 4 78 00 00 00")
    page.locator("input[name='swelling'][value='moderate']").check()
    page.get_by_label("Anything else you want to tell us").fill("Firm around two points.")
    page.get_by_test_id("checkin-send").click()
    expect(page.get_by_test_id("checkin-thanks")).to_contain_text("the clinic has your answers")
    expect(page.get_by_test_id("checkin-thanks")).to_have_attribute("data-severity", "2")

    # Sending it again (back and resend) is refused kindly.
    page.goto(f"{live_server.url}{link_path}")
    expect(page.get_by_test_id("link-refused")).to_have_attribute("data-reason", "used")
    assert CheckInResponse.objects.filter(session=session).count() == 1
    event = AdverseEvent.objects.get(patient=patient)
    assert (event.type, event.grade, event.needs_triage) == ("swelling", 2, True)
    assert OutboundMessage.objects.filter(kind="checkin_alert", to_email=doctor.email).count() == 1

    # The practitioner signs in (another browser context) and sees it on their follow-ups.
    staff = browser.new_context()
    staff_page = staff.new_page()
    staff_page.goto(f"{live_server.url}/accounts/login/")
    staff_page.get_by_label("Email").fill(doctor.email)
    staff_page.get_by_label("Password").fill(PASSWORD)
    staff_page.get_by_role("button", name="Sign In").click()
    staff_page.goto(f"{live_server.url}{reverse('followups_due')}")
    row = staff_page.locator(f"[data-testid='followup-row'][data-event='{event.pk}']")
    expect(row).to_contain_text("FABRE Julie")
    expect(row).to_contain_text("Swelling")
    expect(row.get_by_test_id("needs-triage")).to_be_visible()
    staff.close()
