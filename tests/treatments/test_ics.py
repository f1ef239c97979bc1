"""Calendar files and the practitioner's private feed: stable UIDs, no clinical text, revocable."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from icalendar import Calendar

from mesoclinic.access import Role
from mesoclinic.models import ReadEvent, User
from tests.factories import LocationFactory, PatientFactory, UserFactory
from treatments.models import Appointment, CalendarFeed, TreatmentPlan
from treatments.services.booking import appointment_book, appointment_cancel, appointment_reschedule
from treatments.services.calendar_files import (
    appointment_ics,
    calendar_feed_create,
    calendar_feed_lookup,
    calendar_feed_revoke,
)
from treatments.views import feeds

PARIS = ZoneInfo("Europe/Paris")
NOTE_MARKER = "NOTE-MARKER-7731"
PLAN_MARKER = "PLAN-MARKER-7731"
REASON_MARKER = "REASON-MARKER-7731"


@pytest.fixture
def setup(db: None, practitioner: User, front_desk: User) -> dict:
    location = LocationFactory(time_zone="Europe/Paris", address="12 rue de la Paix\n75002 Paris", phone="0102030405")
    patient = PatientFactory(first_name="Marie", last_name="Zyxwvut", email="marie@example.test", created_by=front_desk)
    return {
        "location": location,
        "doctor": practitioner,
        "colleague": UserFactory(full_name="Colin Colleague", role=Role.PRACTITIONER),
        "desk": front_desk,
        "patient": patient,
    }


def _tomorrow_at(hour: int) -> datetime:
    day = timezone.localdate() + timedelta(days=1)
    return datetime(day.year, day.month, day.day, hour, tzinfo=PARIS)


def _appointment(setup: dict, starts_at: datetime, *, doctor: str = "doctor", **extra: object) -> Appointment:
    values = {"patient": setup["patient"], "kind": Appointment.Kind.TREATMENT, **extra}
    return Appointment.objects.create(
        location=setup["location"],
        practitioner=setup[doctor],
        starts_at=starts_at,
        ends_at=starts_at + timedelta(minutes=30),
        created_by=setup["desk"],
        **values,
    )


def _event(ics: str):
    calendar = Calendar.from_ical(ics)
    events = calendar.walk("VEVENT")
    assert len(events) == 1
    return calendar, events[0]


def _feed_events(body: bytes) -> dict[str, object]:
    return {str(event["UID"]): event for event in Calendar.from_ical(body).walk("VEVENT")}


# --- the .ics of one appointment ---------------------------------------------------------


def test_ics_parses_and_keeps_its_uid_across_a_reschedule(setup) -> None:
    appointment = appointment_book(
        location=setup["location"],
        practitioner=setup["doctor"],
        patient=setup["patient"],
        kind="treatment",
        starts_at=_tomorrow_at(10),
        created_by=setup["desk"],
    )
    calendar, before = _event(appointment_ics(appointment, method="REQUEST", audience="patient"))
    assert str(calendar["METHOD"]) == "REQUEST" and str(calendar["VERSION"]) == "2.0" and calendar["PRODID"]
    assert str(before["STATUS"]) == "CONFIRMED"
    assert before["DTSTAMP"]

    moved = appointment_reschedule(
        appointment=appointment, starts_at=_tomorrow_at(14), by=setup["desk"], revision=appointment.revision
    )
    _calendar, after = _event(appointment_ics(moved, method="REQUEST", audience="patient"))
    assert str(after["UID"]) == str(before["UID"]) == f"appointment-{appointment.pk}@localhost"
    assert int(after["SEQUENCE"]) > int(before["SEQUENCE"])
    assert before["DTSTART"].dt != after["DTSTART"].dt
    assert after["DTSTART"].dt == _tomorrow_at(14)


def test_cancel_ics_has_cancel_method_and_status_and_no_reason(setup) -> None:
    appointment = _appointment(setup, _tomorrow_at(10))
    booked_revision = appointment.revision
    cancelled = appointment_cancel(appointment=appointment, by=setup["desk"], reason=REASON_MARKER)
    ics = appointment_ics(cancelled, method="CANCEL", audience="patient")
    calendar, event = _event(ics)
    assert str(calendar["METHOD"]) == "CANCEL"
    assert str(event["STATUS"]) == "CANCELLED"
    assert str(event["UID"]) == f"appointment-{appointment.pk}@localhost"
    assert int(event["SEQUENCE"]) == cancelled.revision == booked_revision + 1
    assert REASON_MARKER not in ics


@pytest.mark.parametrize(
    ("local", "utc"),
    [(datetime(2030, 1, 15, 10, 0), "20300115T090000Z"), (datetime(2030, 7, 16, 10, 0), "20300716T080000Z")],
)
def test_times_are_utc_for_a_paris_location_whatever_the_server_zone(setup, settings, local, utc) -> None:
    settings.TIME_ZONE = "UTC"
    appointment = _appointment(setup, local.replace(tzinfo=PARIS))
    ics = appointment_ics(appointment, method="REQUEST", audience="patient")
    assert f"DTSTART:{utc}" in ics
    _calendar, event = _event(ics)
    assert event["DTEND"].dt - event["DTSTART"].dt == timedelta(minutes=30)


def test_patient_ics_names_the_place_and_nothing_clinical(setup) -> None:
    plan = TreatmentPlan.objects.create(
        patient=setup["patient"], practitioner=setup["doctor"], concern="fat_reduction", goal=PLAN_MARKER
    )
    appointment = _appointment(setup, _tomorrow_at(10), note=NOTE_MARKER, plan=plan)
    ics = appointment_ics(appointment, method="REQUEST", audience="patient")
    _calendar, event = _event(ics)
    assert str(event["SUMMARY"]) == "Treatment session — Clinique Test"
    assert "12 rue de la Paix, 75002 Paris" in str(event["LOCATION"])
    assert NOTE_MARKER not in ics and PLAN_MARKER not in ics


def test_unknown_method_is_refused(setup) -> None:
    with pytest.raises(ValueError, match="PUBLISH"):
        appointment_ics(_appointment(setup, _tomorrow_at(10)), method="PUBLISH")  # type: ignore[arg-type]


# --- feed tokens ------------------------------------------------------------------------------


def test_token_is_long_random_and_stored_only_as_its_hash(setup) -> None:
    token = calendar_feed_create(practitioner=setup["doctor"])
    assert len(token) >= 43  # 32 bytes, urlsafe base64
    feed = CalendarFeed.objects.get(practitioner=setup["doctor"])
    assert feed.token_hash == hashlib.sha256(token.encode()).hexdigest()
    stored = CalendarFeed.objects.values_list("token_hash", "practitioner_id", "created_at", "revoked_at")
    assert all(token not in str(row) for row in stored)


def test_lookup_refuses_revoked_and_rotated_tokens(setup) -> None:
    first = calendar_feed_create(practitioner=setup["doctor"])
    assert calendar_feed_lookup(first).practitioner == setup["doctor"]
    second = calendar_feed_create(practitioner=setup["doctor"])
    assert calendar_feed_lookup(first) is None
    assert calendar_feed_lookup(second) is not None
    assert CalendarFeed.objects.filter(practitioner=setup["doctor"], revoked_at__isnull=True).count() == 1
    assert calendar_feed_revoke(practitioner=setup["doctor"], by=setup["doctor"]) is True
    assert calendar_feed_lookup(second) is None
    assert calendar_feed_revoke(practitioner=setup["doctor"], by=setup["doctor"]) is False
    assert calendar_feed_lookup("") is None and calendar_feed_lookup("x" * 500) is None


def test_front_desk_cannot_have_a_feed(setup) -> None:
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError):
        calendar_feed_create(practitioner=setup["desk"])
    assert not CalendarFeed.objects.exists()


def test_feed_of_a_deactivated_practitioner_stops(setup) -> None:
    token = calendar_feed_create(practitioner=setup["doctor"])
    User.objects.filter(pk=setup["doctor"].pk).update(is_active=False)
    assert calendar_feed_lookup(token) is None


def test_last_used_is_written_at_most_once_an_hour(setup) -> None:
    token = calendar_feed_create(practitioner=setup["doctor"])
    first = calendar_feed_lookup(token).last_used_at
    assert first is not None
    calendar_feed_lookup(token)
    assert CalendarFeed.objects.get(practitioner=setup["doctor"]).last_used_at == first
    CalendarFeed.objects.update(last_used_at=first - timedelta(hours=2))
    calendar_feed_lookup(token)
    assert CalendarFeed.objects.get(practitioner=setup["doctor"]).last_used_at > first


# --- the feed URL -------------------------------------------------------------------------


def _feed_url(token: str) -> str:
    return reverse("calendar_feed", args=[token])


def test_feed_lists_own_appointments_with_initials_and_no_clinical_text(setup, anonymous_client: Client) -> None:
    plan = TreatmentPlan.objects.create(
        patient=setup["patient"], practitioner=setup["doctor"], concern="fat_reduction", goal=PLAN_MARKER
    )
    mine = _appointment(setup, _tomorrow_at(10), note=NOTE_MARKER, plan=plan)
    gone = _appointment(setup, _tomorrow_at(12))
    appointment_cancel(appointment=gone, by=setup["desk"], reason=REASON_MARKER)
    theirs = _appointment(setup, _tomorrow_at(10), doctor="colleague")
    too_old = _appointment(setup, timezone.now() - timedelta(days=40))
    token = calendar_feed_create(practitioner=setup["doctor"])

    response = anonymous_client.get(_feed_url(token))

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/calendar")
    assert response["Cache-Control"] == "private, max-age=300"
    assert response["Referrer-Policy"] == "no-referrer"
    body = response.content.decode()
    events = _feed_events(response.content)
    assert set(events) == {f"appointment-{mine.pk}@localhost", f"appointment-{gone.pk}@localhost"}
    assert f"appointment-{theirs.pk}@" not in body and f"appointment-{too_old.pk}@" not in body
    assert str(events[f"appointment-{mine.pk}@localhost"]["SUMMARY"]) == "Treatment session — Marie Z."
    assert str(events[f"appointment-{gone.pk}@localhost"]["STATUS"]) == "CANCELLED"
    for secret in (NOTE_MARKER, PLAN_MARKER, REASON_MARKER, "Zyxwvut", "marie@example.test"):
        assert secret not in body
    assert not ReadEvent.objects.exists()


def test_unknown_revoked_and_rotated_tokens_are_404(setup, anonymous_client: Client) -> None:
    assert anonymous_client.get(_feed_url(secrets.token_urlsafe(32))).status_code == 404
    old = calendar_feed_create(practitioner=setup["doctor"])
    new = calendar_feed_create(practitioner=setup["doctor"])
    missing = anonymous_client.get(_feed_url(old))
    assert missing.status_code == 404
    assert b"BEGIN:VCALENDAR" not in missing.content and setup["doctor"].full_name.encode() not in missing.content
    assert anonymous_client.get(_feed_url(new)).status_code == 200
    calendar_feed_revoke(practitioner=setup["doctor"], by=setup["doctor"])
    assert anonymous_client.get(_feed_url(new)).status_code == 404


def test_feed_is_rate_limited(setup, anonymous_client: Client, monkeypatch) -> None:
    monkeypatch.setattr(feeds, "FEED_RATE_LIMIT", 2)
    token = calendar_feed_create(practitioner=setup["doctor"])
    codes = [anonymous_client.get(_feed_url(token)).status_code for _ in range(3)]
    assert codes == [200, 200, 429]


def test_feed_query_count_does_not_grow_with_appointments(setup, anonymous_client: Client) -> None:
    def measure(count: int) -> int:
        setup["someone"] = UserFactory(role=Role.PRACTITIONER)
        token = calendar_feed_create(practitioner=setup["someone"])
        anonymous_client.get(_feed_url(token))  # sets last_used_at: later reads skip that write
        start = _tomorrow_at(8)
        for index in range(count):
            patient = PatientFactory(created_by=setup["desk"])
            _appointment(setup, start + timedelta(minutes=30 * index), doctor="someone", patient=patient)
        with CaptureQueriesContext(connection) as queries:
            response = anonymous_client.get(_feed_url(token))
        assert response.status_code == 200
        assert len(_feed_events(response.content)) == count
        return len(queries)

    small, large = measure(3), measure(30)
    assert small == large <= 3


# --- the settings page ---------------------------------------------------------------------


def test_practitioner_creates_a_feed_and_sees_the_address_once(setup) -> None:
    client = Client()
    client.force_login(setup["doctor"])
    url = reverse("calendar_feed_settings")
    assert b"no feed address" in client.get(url).content

    created = client.post(url, {"action": "create"})

    assert created.status_code == 200
    feed = CalendarFeed.objects.get(practitioner=setup["doctor"], revoked_at__isnull=True)
    page = created.content.decode()
    start = page.index("/treatments/calendar/feed/") + len("/treatments/calendar/feed/")
    token = page[start : page.index(".ics", start)]
    assert hashlib.sha256(token.encode()).hexdigest() == feed.token_hash
    assert "cannot be shown again" in page
    assert token not in client.get(url).content.decode()
    assert Client().get(_feed_url(token)).status_code == 200


def test_practitioner_revokes_own_feed(setup) -> None:
    client = Client()
    client.force_login(setup["doctor"])
    token = calendar_feed_create(practitioner=setup["doctor"])
    response = client.post(reverse("calendar_feed_settings"), {"action": "revoke"})
    assert response.status_code == 302
    assert calendar_feed_lookup(token) is None


def test_settings_bad_action_is_400(setup) -> None:
    client = Client()
    client.force_login(setup["doctor"])
    response = client.post(reverse("calendar_feed_settings"), {"action": "explode"})
    assert response.status_code == 400
    assert not CalendarFeed.objects.exists()


def test_manager_has_a_feed_of_their_own(manager_client: Client, manager: User) -> None:
    assert manager_client.post(reverse("calendar_feed_settings"), {"action": "create"}).status_code == 200
    assert CalendarFeed.objects.filter(practitioner=manager, revoked_at__isnull=True).exists()


def test_front_desk_is_refused_and_anonymous_sent_to_login(front_desk_client: Client, anonymous_client: Client) -> None:
    url = reverse("calendar_feed_settings")
    assert front_desk_client.get(url).status_code == 403
    assert front_desk_client.post(url, {"action": "create"}).status_code == 403
    response = anonymous_client.get(url)
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    assert not CalendarFeed.objects.exists()


def test_manager_revokes_someone_elses_feed(setup, manager_client: Client) -> None:
    token = calendar_feed_create(practitioner=setup["doctor"])
    url = reverse("calendar_feed_revoke_staff", args=[setup["doctor"].pk])
    assert manager_client.get(url).status_code == 405
    response = manager_client.post(url)
    assert response.status_code == 302 and response["Location"] == reverse("staff_list")
    assert calendar_feed_lookup(token) is None
    assert manager_client.post(reverse("calendar_feed_revoke_staff", args=[999999])).status_code == 404


def test_practitioner_and_front_desk_cannot_revoke_someone_elses_feed(setup, front_desk_client: Client) -> None:
    token = calendar_feed_create(practitioner=setup["colleague"])
    url = reverse("calendar_feed_revoke_staff", args=[setup["colleague"].pk])
    client = Client()
    client.force_login(setup["doctor"])
    assert client.post(url).status_code == 403
    assert front_desk_client.post(url).status_code == 403
    assert calendar_feed_lookup(token) is not None


def test_staff_page_offers_to_revoke_only_a_live_feed(manager_client, practitioner) -> None:
    from django.urls import reverse

    from treatments.services.calendar_files import calendar_feed_create, calendar_feed_revoke

    revoke_url = reverse("calendar_feed_revoke_staff", args=[practitioner.pk])
    assert revoke_url not in manager_client.get(reverse("staff_list")).content.decode()
    calendar_feed_create(practitioner=practitioner)
    assert revoke_url in manager_client.get(reverse("staff_list")).content.decode()
    calendar_feed_revoke(practitioner=practitioner, by=practitioner)
    assert revoke_url not in manager_client.get(reverse("staff_list")).content.decode()
