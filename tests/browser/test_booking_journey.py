"""Front desk finds a patient, books the next session of her plan from the proposed slots,
moves it, then checks her in from today's list."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from playwright.sync_api import Page, expect

from mesoclinic.access import Role
from patients.models import Consent, ConsentText
from tests.factories import PASSWORD, LocationFactory, PatientFactory, RoomFactory, UserFactory
from treatments.models import Appointment, AppointmentChange, OpeningHours, TreatmentPlan, TreatmentSession

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PARIS = ZoneInfo("Europe/Paris")
# A Monday morning in Paris; the whole journey happens on that (server) clock.
NOW = datetime(2027, 3, 1, 8, 30, tzinfo=PARIS)


def test_booking_journey(live_server, page: Page) -> None:
    traveller = time_machine.travel(NOW, tick=True)
    traveller.start()
    try:
        _journey(live_server, page)
    finally:
        traveller.stop()


def _journey(live_server, page: Page) -> None:
    location = LocationFactory(name="Paris Opéra", time_zone="Europe/Paris")
    for weekday in range(6):
        OpeningHours.objects.create(location=location, weekday=weekday, opens=time(9), closes=time(13))
        OpeningHours.objects.create(location=location, weekday=weekday, opens=time(14), closes=time(19))
    room = RoomFactory(location=location, name="Cabine 1")
    UserFactory(
        email="accueil@example.test", full_name="Julie Accueil", role=Role.FRONT_DESK, default_location=location
    )
    doctor = UserFactory(full_name="Dr Claire Roux", role=Role.PRACTITIONER, default_location=location)
    patient = PatientFactory(first_name="Manon", last_name="Leroy", created_by=doctor)
    plan = TreatmentPlan.objects.create(
        patient=patient, practitioner=doctor, concern="fat_reduction", status="draft", min_interval_days=28
    )
    text = ConsentText.objects.create(
        kind="lipolysis", version=1, title_en="t", body_en="b", title_fr="t", body_fr="b", published_by=doctor
    )
    consent = Consent.objects.create(
        patient=patient,
        text=text,
        language="fr",
        typed_name="Manon Leroy",
        signature_file="x",
        signature_sha256="0" * 64,
        witness=doctor,
    )
    TreatmentPlan.objects.filter(pk=plan.pk).update(root=plan, status="active", consent=consent)
    # Session 1 was exactly four weeks ago: session 2 may be today.
    TreatmentSession.objects.create(
        plan=plan,
        patient=patient,
        number=1,
        practitioner=doctor,
        status="completed",
        completed_at=NOW - timedelta(days=28),
        performed_at=NOW - timedelta(days=28),
    )
    # Another patient holds 09:30–10:30 with the same practitioner.
    other = PatientFactory(created_by=doctor)
    taken = NOW.replace(hour=9, minute=30)
    Appointment.objects.create(
        location=location,
        practitioner=doctor,
        room=room,
        patient=other,
        kind="treatment",
        starts_at=taken,
        ends_at=taken + timedelta(hours=1),
        created_by=doctor,
    )

    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Email").fill("accueil@example.test")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign In").click()

    # Find the patient by a typo'd surname, open her record, book.
    page.get_by_role("link", name="Patients").first.click()
    page.get_by_role("searchbox").fill("Leroi")
    page.get_by_role("searchbox").press("Enter")
    page.get_by_role("link", name="LEROY Manon").click()
    page.get_by_test_id("book-patient").click()
    expect(page.get_by_test_id("booking-patient")).to_contain_text("LEROY Manon")

    # The proposed slots start after the practitioner's 09:30 appointment: 10:30 is first.
    slots = page.get_by_test_id("plan-slot")
    expect(slots.first).to_contain_text("10:30")
    expect(slots.first).to_contain_text("Cabine 1")
    slots.first.click()
    expect(page.get_by_test_id("calendar")).to_contain_text("LEROY Manon")
    booked = Appointment.objects.get(patient=patient)
    assert booked.starts_at == NOW.replace(hour=10, minute=30) and booked.plan_id == plan.pk

    # Move it to the afternoon, with a reason, in place.
    card = page.locator(f"[data-appointment='{booked.pk}']")
    card.get_by_test_id("more-actions").click()
    card.get_by_text("Move", exact=True).first.click()
    card.get_by_label("New time").fill("15:00")
    card.get_by_label("Reason for moving (optional)").fill("Prefers the afternoon")
    card.get_by_test_id("move-form").get_by_role("button", name="Move").click()
    expect(card).to_contain_text("15:00")
    booked.refresh_from_db()
    assert booked.starts_at == NOW.replace(hour=15, minute=0)

    # The afternoon: she arrives; the front desk checks her in from today's list.
    page.get_by_test_id("check-in-link").click()
    arrival = page.get_by_test_id("check-in-list").locator(f"[data-appointment='{booked.pk}']")
    arrival.get_by_test_id("check-in").click()
    expect(page.get_by_test_id("check-in-list").locator(f"[data-appointment='{booked.pk}']")).to_have_attribute(
        "data-status", "checked_in"
    )
    booked.refresh_from_db()
    assert booked.status == "checked_in"
    history = list(AppointmentChange.objects.filter(appointment=booked).values_list("action", "reason"))
    assert history == [("booked", ""), ("moved", "Prefers the afternoon"), ("checked_in", "")]

    # The appointment's page shows that history to the front desk.
    page.goto(f"{live_server.url}/treatments/calendar/appointments/{booked.pk}/detail/")
    expect(page.get_by_text("Prefers the afternoon")).to_be_visible()
