from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from mesoclinic.access import Role
from tests.factories import LocationFactory, PatientFactory, RoomFactory, UserFactory
from treatments.models import Appointment

PARIS = ZoneInfo("Europe/Paris")


@pytest.fixture
def setup(db, front_desk):
    location = LocationFactory(time_zone="Europe/Paris")
    front_desk.default_location = location
    front_desk.save()
    doctor = UserFactory(role=Role.PRACTITIONER, full_name="Dr Anne Vidal")
    room = RoomFactory(location=location)
    patient = PatientFactory(created_by=front_desk, last_name="Marchand")
    day = timezone.localdate() + timedelta(days=1)
    return {"location": location, "doctor": doctor, "room": room, "patient": patient, "day": day}


def _post(client: Client, s, hour: str = "10:00", **extra):
    data = {
        "patient": s["patient"].pk,
        "kind": "treatment",
        "location": s["location"].pk,
        "practitioner": s["doctor"].pk,
        "room": s["room"].pk,
        "day": s["day"].isoformat(),
        "start": hour,
        "minutes": "60",
        **extra,
    }
    return client.post(reverse("appointment_new"), data)


def test_front_desk_books_and_sees_it_on_the_day_view(front_desk_client: Client, setup) -> None:
    response = _post(front_desk_client, setup)
    assert response.status_code == 302
    appointment = Appointment.objects.get()
    assert appointment.starts_at == datetime.combine(setup["day"], datetime.min.time().replace(hour=10), tzinfo=PARIS)
    page = front_desk_client.get(response.url).content.decode()
    assert "MARCHAND" in page and "Dr Anne Vidal" in page and "10:00" in page


def test_taken_slot_answers_409_with_alternatives_then_books_one(front_desk_client: Client, setup) -> None:
    _post(front_desk_client, setup)
    other = PatientFactory(created_by=setup["doctor"])
    response = _post(front_desk_client, setup, hour="10:30", patient=other.pk)
    assert response.status_code == 409
    page = response.content.decode()
    assert "That slot was just taken" in page and 'data-testid="alternative"' in page
    alternative = f"{setup['day'].isoformat()}T11:00"
    assert f'value="{alternative}"' in page
    assert _post(front_desk_client, setup, hour="10:30", patient=other.pk, alternative=alternative).status_code == 302
    assert Appointment.objects.count() == 2


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"patient": "999999"}, "No patient has this number"),
        ({"minutes": "2"}, "greater than or equal to 5"),
        ({"day": "2001-01-01"}, "has passed"),
    ],
)
def test_bad_booking_input(front_desk_client: Client, setup, changes: dict, message: str) -> None:
    response = _post(front_desk_client, setup, **changes)
    assert response.status_code == 400 and message in response.content.decode()
    assert not Appointment.objects.exists()


def test_check_in_and_cancel_from_the_calendar(front_desk_client: Client, setup) -> None:
    _post(front_desk_client, setup)
    appointment = Appointment.objects.get()
    front_desk_client.post(reverse("appointment_action", args=[appointment.pk]), {"action": "check_in"})
    appointment.refresh_from_db()
    assert appointment.status == "checked_in"
    _post(front_desk_client, setup, hour="15:00")
    later = Appointment.objects.get(status="booked")
    front_desk_client.post(reverse("appointment_action", args=[later.pk]), {"action": "cancel", "reason": ""})
    later.refresh_from_db()
    assert later.status == "booked"  # no reason, no cancellation
    front_desk_client.post(
        reverse("appointment_action", args=[later.pk]), {"action": "cancel", "reason": "called to cancel"}
    )
    later.refresh_from_db()
    assert later.status == "cancelled"
    assert later.cancelled_late is (later.starts_at - timezone.now() < timedelta(hours=24))


def test_practitioner_may_only_book_their_own(practitioner_client: Client, practitioner, setup) -> None:
    assert _post(practitioner_client, setup).status_code == 403
    setup["doctor"] = practitioner
    assert _post(practitioner_client, setup).status_code == 302


@pytest.mark.django_db
def test_anonymous_is_sent_to_login(anonymous_client: Client) -> None:
    assert anonymous_client.get(reverse("calendar_day")).status_code == 302


def test_calendar_shows_no_clinical_notes(front_desk_client: Client, setup) -> None:
    from patients.services.history import history_record

    history_record(
        patient=setup["patient"],
        recorded_by=setup["doctor"],
        conditions=["pregnancy"],
        conditions_detail="PLANTED-MARKER",
    )
    _post(front_desk_client, setup)
    page = front_desk_client.get(reverse("calendar_day") + f"?day={setup['day'].isoformat()}").content.decode()
    assert "PLANTED-MARKER" not in page and "Pregnancy" not in page


@pytest.mark.parametrize("count", [5, 200])
def test_day_view_query_count_is_constant(front_desk_client: Client, setup, count: int) -> None:
    rooms = [RoomFactory(location=setup["location"]) for _ in range(4)]
    doctors = [UserFactory(role=Role.PRACTITIONER) for _ in range(4)]
    start = datetime.combine(setup["day"], datetime.min.time().replace(hour=8), tzinfo=PARIS)
    Appointment.objects.bulk_create(
        Appointment(
            location=setup["location"],
            practitioner=doctors[n % 4],
            room=rooms[n % 4],
            patient=setup["patient"],
            kind="review",
            starts_at=start + timedelta(minutes=(n // 4) * 3),
            ends_at=start + timedelta(minutes=(n // 4) * 3 + 3),
            created_by=setup["doctor"],
        )
        for n in range(count)
    )
    url = reverse("calendar_day") + f"?day={setup['day'].isoformat()}"
    front_desk_client.get(url)
    with CaptureQueriesContext(connection) as ctx:
        assert front_desk_client.get(url).status_code == 200
    assert len(ctx.captured_queries) == 7


def test_move_an_appointment_from_the_calendar(front_desk_client: Client, setup) -> None:
    _post(front_desk_client, setup)
    appointment = Appointment.objects.get()
    url = reverse("appointment_action", args=[appointment.pk])
    front_desk_client.post(
        url, {"action": "move", "day": setup["day"].isoformat(), "start": "16:30", "revision": appointment.revision}
    )
    appointment.refresh_from_db()
    assert timezone.localtime(appointment.starts_at).strftime("%H:%M") == "16:30" and appointment.revision == 2
    stale = front_desk_client.post(
        url, {"action": "move", "day": setup["day"].isoformat(), "start": "17:00", "revision": 1}, follow=True
    )
    assert "changed since you opened it" in stale.content.decode()


def test_next_plan_session_slots_respect_the_interval_and_book_the_plan(front_desk_client: Client, setup) -> None:
    from treatments.models import TreatmentPlan, TreatmentSession

    patient, doctor = setup["patient"], setup["doctor"]
    plan = TreatmentPlan.objects.create(
        patient=patient, practitioner=doctor, concern="fat_reduction", status="draft", min_interval_days=28
    )
    TreatmentPlan.objects.filter(pk=plan.pk).update(root=plan)
    from patients.models import Consent, ConsentText

    text = ConsentText.objects.create(
        kind="lipolysis", version=1, title_en="t", body_en="b", title_fr="t", body_fr="b", published_by=doctor
    )
    consent = Consent.objects.create(
        patient=patient,
        text=text,
        language="fr",
        typed_name="x",
        signature_file="x",
        signature_sha256="0" * 64,
        witness=doctor,
    )
    TreatmentPlan.objects.filter(pk=plan.pk).update(status="active", consent=consent)
    TreatmentSession.objects.create(
        plan=plan,
        patient=patient,
        number=1,
        practitioner=doctor,
        status="completed",
        completed_at=timezone.now(),
        performed_at=timezone.now() - timedelta(days=20),
    )
    earliest = timezone.localdate() + timedelta(days=8)  # 28 days after a session 20 days ago
    from treatments.services.booking import plan_next_slots

    slots = plan_next_slots(plan=TreatmentPlan.objects.get(pk=plan.pk), location=setup["location"])
    page = front_desk_client.get(reverse("appointment_new") + f"?patient={patient.pk}").content.decode()
    assert 'data-testid="plan-slots"' in page
    assert slots and all(timezone.localtime(start).date() >= earliest for start, _room in slots)
    assert all(room == setup["room"] for _start, room in slots)
    start, _room = slots[0]
    local = timezone.localtime(start)
    response = _post(
        front_desk_client,
        {**setup, "day": local.date()},
        hour=local.strftime("%H:%M"),
        plan=plan.pk,
        practitioner=doctor.pk,
    )
    assert response.status_code == 302
    assert Appointment.objects.get().plan_id == plan.pk
