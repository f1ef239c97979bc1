from __future__ import annotations

import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from mesoclinic.access import Role
from mesoclinic.models import User
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
    assert len(ctx.captured_queries) == 8


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


# --- Calendar pages: day and week views, check-in list, htmx cards, detail with history ---

HTMX = {"HTTP_HX_REQUEST": "true"}


def _at(day, hour: int, minute: int = 0, zone: ZoneInfo = PARIS) -> datetime:
    return datetime.combine(day, datetime.min.time().replace(hour=hour, minute=minute), tzinfo=zone)


def _appointment(s, *, day=None, hour: int = 10, minutes: int = 60, **fields) -> Appointment:
    """An appointment written straight to the table (what the pages show, not how it is booked)."""
    start = _at(day or s["day"], hour)
    values = {
        "location": s["location"],
        "practitioner": s["doctor"],
        "room": s["room"],
        "patient": s["patient"],
        "kind": "treatment",
        "starts_at": start,
        "ends_at": start + timedelta(minutes=minutes),
        "created_by": s["doctor"],
        **fields,
    }
    return Appointment.objects.create(**values)


def _day_url(s, **params) -> str:
    query = {"location": s["location"].pk, "day": s["day"].isoformat(), **params}
    return reverse("calendar_day") + "?" + "&".join(f"{k}={v}" for k, v in query.items())


def test_day_view_shows_the_location_time_even_with_the_server_in_utc(front_desk_client: Client, setup, settings):
    settings.TIME_ZONE = "UTC"
    _appointment(setup, hour=10)
    page = front_desk_client.get(_day_url(setup)).content.decode()
    assert "10:00–11:00" in page
    assert "09:00–" not in page and "08:00–" not in page  # UTC would show 09:00 (winter) or 08:00 (summer)


def test_day_view_by_room_has_a_column_per_room_and_one_for_no_room(front_desk_client: Client, setup) -> None:
    RoomFactory(location=setup["location"], name="Cabinet Bleu")
    RoomFactory(name="Elsewhere")  # another location's room is not a column here
    _appointment(setup, hour=10)
    _appointment(setup, hour=14, kind="blocked", patient=None, room=None)
    page = front_desk_client.get(_day_url(setup, by="room")).content.decode()
    columns = page.count('data-testid="column"')
    assert "Cabinet Bleu" in page and setup["room"].name in page and "No room" in page
    assert "Elsewhere" not in page and columns == 3
    assert "Blocked time" in page and "MARCHAND" in page
    # By practitioner (the default): the doctor's column holds both.
    page = front_desk_client.get(_day_url(setup)).content.decode()
    assert "Dr Anne Vidal" in page and "No room" not in page


def test_day_view_shows_a_manager_who_treats_in_a_column(front_desk_client: Client, setup, manager) -> None:
    _appointment(setup, practitioner=manager)
    page = front_desk_client.get(_day_url(setup)).content.decode()
    assert "Alice Manager" in page and "MARCHAND" in page


def test_calendar_pages_never_show_the_team_note(front_desk_client: Client, setup) -> None:
    appointment = _appointment(setup, note="NOTE-MARKER")
    week = reverse("calendar_week") + f"?location={setup['location'].pk}&week={setup['day'].isoformat()}"
    for url in (_day_url(setup), _day_url(setup, by="room"), _day_url(setup, view="list"), week):
        page = front_desk_client.get(url).content.decode()
        assert "MARCHAND" in page and "NOTE-MARKER" not in page, url
    detail = front_desk_client.get(reverse("appointment_detail", args=[appointment.pk])).content.decode()
    assert "NOTE-MARKER" in detail


def test_week_view_lays_out_monday_to_sunday(front_desk_client: Client, setup) -> None:
    monday = setup["day"] - timedelta(days=setup["day"].weekday())
    _appointment(setup, day=monday, hour=9)
    _appointment(setup, day=monday + timedelta(days=6), hour=11, kind="review")
    _appointment(setup, day=monday + timedelta(days=7), hour=12, kind="consultation")  # next week
    wednesday = monday + timedelta(days=2)
    response = front_desk_client.get(
        reverse("calendar_week") + f"?location={setup['location'].pk}&week={wednesday.isoformat()}"
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert page.count('data-testid="day-link"') == 7
    for offset in range(7):
        assert f"day={(monday + timedelta(days=offset)).isoformat()}" in page
    assert page.count('data-testid="appointment"') == 2
    assert "09:00" in page and "11:00" in page and "Review" in page and "Consultation" not in page
    assert "MARCHAND" in page and "Dr Anne Vidal" in page
    by_room = front_desk_client.get(
        reverse("calendar_week") + f"?location={setup['location'].pk}&week={monday.isoformat()}&by=room"
    ).content.decode()
    assert setup["room"].name in by_room and by_room.count('data-testid="appointment"') == 2


def test_week_view_survives_a_bad_week_parameter(front_desk_client: Client, setup) -> None:
    response = front_desk_client.get(reverse("calendar_week") + "?week=not-a-date&location=abc&by=nonsense")
    assert response.status_code == 200 and 'data-testid="week"' in response.content.decode()


def _bulk(s, count: int, *, days: int = 1) -> None:
    rooms = [RoomFactory(location=s["location"]) for _ in range(4)]
    doctors = [UserFactory(role=Role.PRACTITIONER) for _ in range(4)]
    first = s["day"] - timedelta(days=s["day"].weekday()) if days == 7 else s["day"]
    Appointment.objects.bulk_create(
        Appointment(
            location=s["location"],
            practitioner=doctors[n % 4],
            room=rooms[n % 4] if n % 5 else None,
            patient=s["patient"],
            kind="review",
            starts_at=_at(first + timedelta(days=n % days), 8) + timedelta(minutes=(n // (4 * days)) * 3),
            ends_at=_at(first + timedelta(days=n % days), 8) + timedelta(minutes=(n // (4 * days)) * 3 + 3),
            created_by=s["doctor"],
        )
        for n in range(count)
    )


@pytest.mark.parametrize("by", ["practitioner", "room"])
@pytest.mark.parametrize("count", [5, 200])
def test_day_view_query_count_is_constant_in_both_modes(front_desk_client: Client, setup, count, by) -> None:
    _bulk(setup, count)
    url = _day_url(setup, by=by)
    front_desk_client.get(url)
    with CaptureQueriesContext(connection) as ctx:
        response = front_desk_client.get(url)
    assert response.content.decode().count('data-testid="appointment"') == count
    assert len(ctx.captured_queries) == 8


@pytest.mark.parametrize("by", ["practitioner", "room"])
@pytest.mark.parametrize("count", [5, 200])
def test_week_view_query_count_is_constant(front_desk_client: Client, setup, count, by) -> None:
    _bulk(setup, count, days=7)
    url = reverse("calendar_week") + f"?location={setup['location'].pk}&week={setup['day'].isoformat()}&by={by}"
    front_desk_client.get(url)
    with CaptureQueriesContext(connection) as ctx:
        response = front_desk_client.get(url)
    assert response.content.decode().count('data-testid="appointment"') == count
    assert len(ctx.captured_queries) == 8


def test_todays_check_in_list_in_time_order(front_desk_client: Client, setup) -> None:
    today = timezone.localdate()
    later = _appointment(setup, day=today, hour=18)
    earlier = _appointment(setup, day=today, hour=0, patient=PatientFactory(created_by=setup["doctor"]))
    _appointment(setup, day=today, hour=12, kind="blocked", patient=None, room=None)
    grid = front_desk_client.get(_day_url(setup, day=today.isoformat())).content.decode()
    assert 'data-testid="check-in-link"' in grid
    page = front_desk_client.get(_day_url(setup, day=today.isoformat(), view="list")).content.decode()
    assert 'data-testid="check-in-list"' in page and "Blocked time" not in page
    assert page.index(f'data-appointment="{earlier.pk}"') < page.index(f'data-appointment="{later.pk}"')
    assert page.count("mc-check-in") == 2  # the big button, one per patient
    response = front_desk_client.post(
        reverse("appointment_action", args=[earlier.pk]),
        {"action": "check_in", "revision": earlier.revision, "layout": "list"},
        **HTMX,
    )
    assert response.status_code == 200 and "Checked in" in response.content.decode()
    # Tomorrow's grid has no check-in shortcut.
    assert 'data-testid="check-in-link"' not in front_desk_client.get(_day_url(setup)).content.decode()


def test_htmx_check_in_returns_the_card_not_a_redirect(front_desk_client: Client, setup) -> None:
    appointment = _appointment(setup)
    response = front_desk_client.post(
        reverse("appointment_action", args=[appointment.pk]),
        {"action": "check_in", "revision": appointment.revision},
        **HTMX,
    )
    assert response.status_code == 200
    card = response.content.decode()
    assert card.lstrip().startswith("<li") and f'data-appointment="{appointment.pk}"' in card
    assert 'data-status="checked_in"' in card and "<html" not in card
    appointment.refresh_from_db()
    assert appointment.status == "checked_in"
    assert appointment.changes.filter(action="checked_in").count() == 1


def test_htmx_move_into_a_taken_slot_answers_409_inside_the_card(front_desk_client: Client, setup) -> None:
    _appointment(setup, hour=10)
    other = _appointment(setup, hour=15, patient=PatientFactory(created_by=setup["doctor"]))
    url = reverse("appointment_action", args=[other.pk])
    data = {"action": "move", "day": setup["day"].isoformat(), "start": "10:30", "revision": other.revision}
    response = front_desk_client.post(url, data, **HTMX)
    assert response.status_code == 409
    card = response.content.decode()
    assert "just taken" in card and 'data-testid="card-error"' in card and f'data-appointment="{other.pk}"' in card
    assert 'data-testid="alternatives"' in card
    other.refresh_from_db()
    assert timezone.localtime(other.starts_at, PARIS).hour == 15
    # One of the proposed free starts moves it.
    alternative = f"{setup['day'].isoformat()}T11:00"
    assert f'value="{alternative}"' in card
    moved = front_desk_client.post(
        url, {"action": "move", "alternative": alternative, "revision": other.revision}, **HTMX
    )
    assert moved.status_code == 200
    other.refresh_from_db()
    assert timezone.localtime(other.starts_at, PARIS).strftime("%H:%M") == "11:00"


def test_htmx_move_to_another_day_says_where_it_went(front_desk_client: Client, setup) -> None:
    appointment = _appointment(setup)
    new_day = setup["day"] + timedelta(days=2)
    response = front_desk_client.post(
        reverse("appointment_action", args=[appointment.pk]),
        {
            "action": "move",
            "day": new_day.isoformat(),
            "start": "09:15",
            "revision": appointment.revision,
            "reason": "patient asked",
        },
        **HTMX,
    )
    assert response.status_code == 200
    card = response.content.decode()
    assert "moved to" in card and "09:15" in card and f"day={new_day.isoformat()}" in card
    change = appointment.changes.get(action="moved")
    assert change.reason == "patient asked" and change.from_starts_at == _at(setup["day"], 10)


def test_htmx_refusals_keep_the_card_with_the_reason(front_desk_client: Client, setup) -> None:
    appointment = _appointment(setup)
    url = reverse("appointment_action", args=[appointment.pk])
    no_reason = front_desk_client.post(url, {"action": "cancel", "reason": " ", "revision": 1}, **HTMX)
    assert no_reason.status_code == 400 and "Say why" in no_reason.content.decode()
    bad_time = front_desk_client.post(url, {"action": "move", "day": "soon", "start": "", "revision": 1}, **HTMX)
    assert bad_time.status_code == 400 and "Enter the new day and time" in bad_time.content.decode()
    unknown = front_desk_client.post(url, {"action": "explode"}, **HTMX)
    assert unknown.status_code == 400 and "Unknown action" in unknown.content.decode()
    appointment.refresh_from_db()
    assert appointment.status == "booked" and appointment.revision == 1
    # Someone else moved it meanwhile: the stale form is a conflict, the card shows the new state.
    Appointment.objects.filter(pk=appointment.pk).update(status="cancelled", revision=2, cancel_reason="x")
    stale = front_desk_client.post(url, {"action": "check_in", "revision": 1}, **HTMX)
    assert stale.status_code == 409 and 'data-status="cancelled"' in stale.content.decode()


def test_cancel_with_a_reason_from_the_card(front_desk_client: Client, setup) -> None:
    appointment = _appointment(setup)
    response = front_desk_client.post(
        reverse("appointment_action", args=[appointment.pk]),
        {"action": "cancel", "reason": "flu", "revision": 1},
        **HTMX,
    )
    assert response.status_code == 200 and 'data-status="cancelled"' in response.content.decode()
    assert appointment.changes.get(action="cancelled").reason == "flu"


def test_without_htmx_actions_redirect_back(front_desk_client: Client, setup) -> None:
    appointment = _appointment(setup)
    page = _day_url(setup, by="room")
    response = front_desk_client.post(
        reverse("appointment_action", args=[appointment.pk]),
        {"action": "check_in", "revision": 1, "next": page},
    )
    assert response.status_code == 302 and response.url == page
    outside = _appointment(setup, hour=16, patient=PatientFactory(created_by=setup["doctor"]))
    response = front_desk_client.post(
        reverse("appointment_action", args=[outside.pk]),
        {"action": "check_in", "revision": 1, "next": "https://evil.example/"},
    )
    assert response.status_code == 302 and response.url.startswith(reverse("calendar_day"))


def test_appointment_detail_shows_the_history(front_desk_client: Client, setup, front_desk) -> None:
    from mesoclinic.models import ReadEvent
    from treatments.models import AppointmentChange

    appointment = _appointment(setup, note="bring the referral letter")
    AppointmentChange.objects.create(
        appointment=appointment, by=front_desk, action="booked", to_starts_at=_at(setup["day"], 9)
    )
    AppointmentChange.objects.create(
        appointment=appointment,
        by=front_desk,
        action="moved",
        from_starts_at=_at(setup["day"], 9),
        to_starts_at=_at(setup["day"], 10),
        reason="REASON-MARKER",
    )
    response = front_desk_client.get(reverse("appointment_detail", args=[appointment.pk]))
    assert response.status_code == 200
    page = response.content.decode()
    assert page.count('data-testid="change"') == 2
    assert "Fred Frontdesk" in page and "REASON-MARKER" in page and "moved" in page
    assert "09:00" in page and "bring the referral letter" in page and "Dr Anne Vidal" in page
    assert 'data-testid="patient-link"' in page and 'data-testid="move-form"' in page
    assert ReadEvent.objects.filter(patient_id=setup["patient"].pk, what="appointment", action="view").count() == 1


def test_practitioner_sees_no_actions_on_a_colleagues_appointment(practitioner_client: Client, setup) -> None:
    appointment = _appointment(setup)
    page = practitioner_client.get(reverse("appointment_detail", args=[appointment.pk])).content.decode()
    assert "MARCHAND" in page and 'data-testid="move-form"' not in page
    day = practitioner_client.get(_day_url(setup)).content.decode()
    assert "MARCHAND" in day and 'data-testid="move-form"' not in day


def test_practitioner_acts_on_their_own_appointment(practitioner_client: Client, practitioner, setup) -> None:
    appointment = _appointment(setup, practitioner=practitioner)
    page = practitioner_client.get(_day_url(setup)).content.decode()
    # The calendar's cards are light; "Move or cancel…" fetches the card with every form.
    assert 'data-testid="more-actions"' in page and 'data-testid="move-form"' not in page
    card = practitioner_client.get(
        reverse("appointment_detail", args=[appointment.pk]) + "?card=grid&next=/treatments/calendar/", **HTMX
    )
    assert card.status_code == 200 and 'data-testid="move-form"' in card.content.decode()
    assert "<html" not in card.content.decode() and 'value="/treatments/calendar/"' in card.content.decode()
    response = practitioner_client.post(
        reverse("appointment_action", args=[appointment.pk]), {"action": "check_in", "revision": 1}, **HTMX
    )
    assert response.status_code == 200


def test_many_practitioners_are_shown_eight_columns_at_a_time(front_desk_client: Client, setup) -> None:
    for n in range(10):
        UserFactory(role=Role.PRACTITIONER, full_name=f"Dr Zed {n:02d}")
    page = front_desk_client.get(_day_url(setup)).content.decode()
    assert page.count('data-testid="column"') == 8 and 'data-testid="lane-pager"' in page
    second = front_desk_client.get(_day_url(setup) + "&lanes=2").content.decode()
    assert ">Dr Zed 09</h2>" in second and ">Dr Zed 09</h2>" not in page
    assert front_desk_client.get(_day_url(setup) + "&lanes=99999").status_code == 200


@pytest.mark.parametrize("name", ["calendar_day", "calendar_week", "appointment_detail"])
@pytest.mark.parametrize("persona", ["front_desk_client", "practitioner_client", "manager_client"])
def test_every_staff_role_reads_the_calendar_pages(request, setup, name: str, persona: str) -> None:
    appointment = _appointment(setup)
    client = request.getfixturevalue(persona)
    args = [appointment.pk] if name == "appointment_detail" else []
    assert client.get(reverse(name, args=args)).status_code == 200


@pytest.mark.parametrize("name", ["calendar_day", "calendar_week", "appointment_detail", "appointment_action"])
def test_anonymous_goes_to_login(anonymous_client: Client, setup, name: str) -> None:
    appointment = _appointment(setup)
    args = [appointment.pk] if name.startswith("appointment") else []
    send = anonymous_client.post if name == "appointment_action" else anonymous_client.get
    response = send(reverse(name, args=args), {"action": "check_in"} if name == "appointment_action" else None)
    assert response.status_code == 302 and "login" in response.url
    appointment.refresh_from_db()
    assert appointment.status == "booked"


def test_practitioner_cannot_act_on_a_colleagues_appointment(practitioner_client: Client, setup) -> None:
    appointment = _appointment(setup)
    response = practitioner_client.post(
        reverse("appointment_action", args=[appointment.pk]), {"action": "check_in", "revision": 1}, **HTMX
    )
    assert response.status_code == 403
    appointment.refresh_from_db()
    assert appointment.status == "booked"


def test_the_action_url_refuses_get(front_desk_client: Client, setup) -> None:
    appointment = _appointment(setup)
    assert front_desk_client.get(reverse("appointment_action", args=[appointment.pk])).status_code == 405
    assert front_desk_client.post(reverse("appointment_detail", args=[appointment.pk])).status_code == 405


def test_unknown_appointment_is_404(front_desk_client: Client, setup) -> None:
    assert front_desk_client.get(reverse("appointment_detail", args=[999999])).status_code == 404
    assert (
        front_desk_client.post(reverse("appointment_action", args=[999999]), {"action": "check_in"}).status_code == 404
    )


@pytest.mark.parametrize(
    "query",
    ["day=9999-12-31", "day=0001-01-01", "location=99999999999999999999999", "by=room&view=list&day=x"],
)
def test_day_view_shrugs_off_bad_parameters(front_desk_client: Client, setup, query: str) -> None:
    assert front_desk_client.get(reverse("calendar_day") + "?" + query).status_code == 200
    assert front_desk_client.get(reverse("calendar_week") + "?" + query.replace("day=", "week=")).status_code == 200


@pytest.mark.parametrize(
    "data",
    [
        {"day": "9999-12-31", "start": "23:00", "revision": "1"},
        {"day": "2030-01-01", "start": "25:00", "revision": "1"},
        {"day": "2030-01-01", "start": "10:00", "revision": "99999999999999999999"},
    ],
)
def test_move_refuses_impossible_input_without_a_500(front_desk_client: Client, setup, data: dict) -> None:
    appointment = _appointment(setup)
    url = reverse("appointment_action", args=[appointment.pk])
    response = front_desk_client.post(url, {"action": "move", **data}, **HTMX)
    assert response.status_code == 400 and "Enter the new day and time" in response.content.decode()
    appointment.refresh_from_db()
    assert appointment.revision == 1


@pytest.mark.parametrize("changes", [1, 30])
def test_appointment_detail_query_count_is_constant(front_desk_client: Client, setup, front_desk, changes) -> None:
    from treatments.models import AppointmentChange

    appointment = _appointment(setup)
    AppointmentChange.objects.bulk_create(
        AppointmentChange(appointment=appointment, by=front_desk, action="moved", reason=f"r{n}")
        for n in range(changes)
    )
    url = reverse("appointment_detail", args=[appointment.pk])
    front_desk_client.get(url)
    with CaptureQueriesContext(connection) as ctx:
        response = front_desk_client.get(url)
    assert response.content.decode().count('data-testid="change"') == changes
    assert len(ctx.captured_queries) == 6


def test_booking_form_names_the_patient_and_their_no_shows(front_desk_client: Client, setup) -> None:
    from mesoclinic.models import ReadEvent

    patient = setup["patient"]
    for days in (3, 10):
        start = timezone.now() - timedelta(days=days)
        Appointment.objects.create(
            location=setup["location"],
            practitioner=setup["doctor"],
            patient=patient,
            kind="treatment",
            starts_at=start,
            ends_at=start + timedelta(hours=1),
            status="no_show",
            created_by=setup["doctor"],
        )
    page = front_desk_client.get(reverse("appointment_new") + f"?patient={patient.pk}").content.decode()
    assert "MARCHAND" in page and 'data-testid="attendance-warning"' in page
    assert ReadEvent.objects.filter(patient_id=patient.pk, what="booking form").exists()
    unknown = front_desk_client.get(reverse("appointment_new") + "?patient=99999999999999999999")
    assert unknown.status_code == 200


def test_paged_columns_load_their_own_appointments_and_the_badge_counts_the_day(
    front_desk_client: Client, setup
) -> None:
    today = timezone.localdate()
    for n in range(10):
        UserFactory(role=Role.PRACTITIONER, full_name=f"Dr Zed {n:02d}")
    last = User.objects.get(full_name="Dr Zed 09")
    far = _appointment(setup, day=today, hour=17, practitioner=last, room=None)
    near = _appointment(setup, day=today, hour=16, patient=PatientFactory(created_by=setup["doctor"]))
    first_page = front_desk_client.get(_day_url(setup, day=today.isoformat())).content.decode()
    assert f'data-appointment="{near.pk}"' in first_page and f'data-appointment="{far.pk}"' not in first_page
    # Both patients are still expected today, whichever columns are on screen.
    assert re.search(r'data-testid="check-in-link">[^<]*<span class="badge text-bg-light">2</span>', first_page)
    second_page = front_desk_client.get(_day_url(setup, day=today.isoformat()) + "&lanes=2").content.decode()
    assert f'data-appointment="{far.pk}"' in second_page and f'data-appointment="{near.pk}"' not in second_page


def test_someone_outside_the_practitioner_list_still_gets_a_column(front_desk_client: Client, setup) -> None:
    treating_manager = UserFactory(role=Role.MANAGER, full_name="Alice Treats")
    appointment = _appointment(setup, practitioner=treating_manager, room=None)
    page = front_desk_client.get(_day_url(setup)).content.decode()
    assert ">Alice Treats</h2>" in page and f'data-appointment="{appointment.pk}"' in page
