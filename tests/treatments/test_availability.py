"""Next free slot: hours, closures, leave, rooms, plan interval, DST and time zones."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core.exceptions import ValidationError
from django.utils import timezone

from mesoclinic.access import Role
from tests.factories import LocationFactory, PatientFactory, RoomFactory, UserFactory
from treatments.models import (
    Appointment,
    AppointmentChange,
    AppointmentKindSetting,
    OpeningHours,
    ScheduleException,
    TreatmentPlan,
    TreatmentSession,
    WorkingHours,
)
from treatments.services.booking import (
    appointment_book,
    appointment_cancel,
    appointment_reschedule,
    free_starts,
    plan_next_slots,
)

PARIS = ZoneInfo("Europe/Paris")
# A Monday well in the future, so no test depends on today's date.
MONDAY = date(2027, 2, 1)


def at(day: date, hour: int, minute: int = 0, zone: ZoneInfo = PARIS) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=zone)


@pytest.fixture
def site(db):
    location = LocationFactory(time_zone="Europe/Paris")
    for weekday in range(5):
        OpeningHours.objects.create(location=location, weekday=weekday, opens=time(9), closes=time(12))
        OpeningHours.objects.create(location=location, weekday=weekday, opens=time(14), closes=time(18))
    return {
        "location": location,
        "room": RoomFactory(location=location, name="A"),
        "room_b": RoomFactory(location=location, name="B"),
        "doctor": UserFactory(role=Role.PRACTITIONER),
        "desk": UserFactory(role=Role.FRONT_DESK),
    }


def _free(site, after: datetime, *, count: int = 3, minutes: int = 60, room="room") -> list[datetime]:
    return free_starts(
        practitioner=site["doctor"],
        room=site[room] if room else None,
        location=site["location"],
        after=after,
        duration=timedelta(minutes=minutes),
        count=count,
    )


def _book(site, start: datetime, *, room="room", kind="treatment", doctor="doctor", **extra) -> Appointment:
    return appointment_book(
        location=site["location"],
        practitioner=site[doctor],
        room=site[room] if room else None,
        patient=None if kind == "blocked" else PatientFactory(created_by=site["desk"]),
        kind=kind,
        starts_at=start,
        created_by=site["desk"],
        **extra,
    )


def test_slots_follow_opening_hours_and_skip_the_lunch_break(site) -> None:
    slots = _free(site, at(MONDAY, 10, 30), count=4)
    # 10:30, 10:45, 11:00 end by 12:00; the afternoon starts at 14:00.
    assert slots == [at(MONDAY, 10, 30), at(MONDAY, 10, 45), at(MONDAY, 11), at(MONDAY, 14)]


def test_slots_start_on_quarter_hours_and_skip_the_weekend(site) -> None:
    friday = MONDAY + timedelta(days=4)
    slots = _free(site, at(friday, 17, 2), count=1)
    assert slots == [at(MONDAY + timedelta(days=7), 9)]


def test_a_location_without_hours_is_open_eight_to_eight(db) -> None:
    location = LocationFactory(time_zone="Europe/Paris")
    doctor = UserFactory(role=Role.PRACTITIONER)
    sunday = MONDAY - timedelta(days=1)
    slots = free_starts(
        practitioner=doctor,
        room=None,
        location=location,
        after=at(sunday, 19, 31),
        duration=timedelta(minutes=30),
        count=2,
    )
    assert slots == [at(MONDAY, 8), at(MONDAY, 8, 15)]


def test_working_hours_narrow_the_location_hours(site) -> None:
    # Wednesday afternoons only, at this location.
    WorkingHours.objects.create(
        practitioner=site["doctor"], location=site["location"], weekday=2, starts=time(15), ends=time(19)
    )
    slots = _free(site, at(MONDAY, 8), count=2)
    wednesday = MONDAY + timedelta(days=2)
    assert slots == [at(wednesday, 15), at(wednesday, 15, 15)]  # 19:00 is after closing: last start 17:00


def test_hours_at_another_location_do_not_count_here(site) -> None:
    elsewhere = LocationFactory(clinic=site["location"].clinic)
    WorkingHours.objects.create(
        practitioner=site["doctor"], location=elsewhere, weekday=0, starts=time(9), ends=time(18)
    )
    assert _free(site, at(MONDAY, 8), count=1) == []


def test_closures_and_leave_are_skipped(site) -> None:
    ScheduleException.objects.create(
        location=site["location"],
        starts_at=at(MONDAY, 0),
        ends_at=at(MONDAY + timedelta(days=1), 0),
        reason="Holiday",
        created_by=site["desk"],
    )
    ScheduleException.objects.create(
        practitioner=site["doctor"],
        starts_at=at(MONDAY + timedelta(days=1), 0),
        ends_at=at(MONDAY + timedelta(days=1), 12),
        reason="Leave",
        created_by=site["desk"],
    )
    assert _free(site, at(MONDAY, 8), count=1) == [at(MONDAY + timedelta(days=1), 14)]


def test_a_busy_room_is_avoided_and_a_busy_practitioner_too(site) -> None:
    other = UserFactory(role=Role.PRACTITIONER)
    _book(site, at(MONDAY, 9), doctor="doctor", room=None)  # the doctor, no room
    site["other"] = other
    _book(site, at(MONDAY, 10), doctor="other", room="room")  # room A taken 10–11 by someone else
    slots = _free(site, at(MONDAY, 9), count=3)
    # 9:xx: the doctor is busy until 10; 10:00–11:00 room A is busy; 11:00 fits before noon.
    assert slots == [at(MONDAY, 11), at(MONDAY, 14), at(MONDAY, 14, 15)]


def _active_plan(site, *, interval: int, last_session: datetime | None) -> TreatmentPlan:
    from patients.models import Consent, ConsentText

    patient = PatientFactory(created_by=site["desk"])
    doctor = site["doctor"]
    plan = TreatmentPlan.objects.create(
        patient=patient, practitioner=doctor, concern="fat_reduction", status="draft", min_interval_days=interval
    )
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
    TreatmentPlan.objects.filter(pk=plan.pk).update(root=plan, status="active", consent=consent)
    if last_session is not None:
        TreatmentSession.objects.create(
            plan=plan,
            patient=patient,
            number=1,
            practitioner=doctor,
            status="completed",
            completed_at=last_session,
            performed_at=last_session,
        )
    return TreatmentPlan.objects.get(pk=plan.pk)


def test_next_plan_session_respects_interval_hours_and_rooms(site) -> None:
    with time_machine.travel(at(MONDAY - timedelta(days=21), 17), tick=False):
        plan = _active_plan(site, interval=21, last_session=timezone.now())
    with time_machine.travel(at(MONDAY - timedelta(days=3), 12), tick=False):
        # 21 days after the session is the Monday; room A is taken at 9:00 that day, room B free.
        other = UserFactory(role=Role.PRACTITIONER)
        site["other"] = other
        _book(site, at(MONDAY, 9), doctor="other", room="room")
        slots = plan_next_slots(plan=plan, location=site["location"], count=3)
    assert [s for s, _r in slots] == [at(MONDAY, 9), at(MONDAY, 9, 15), at(MONDAY, 9, 30)]
    assert all(r == site["room_b"] for _s, r in slots)


def test_next_plan_session_with_every_room_busy_moves_on(site) -> None:
    with time_machine.travel(at(MONDAY - timedelta(days=7), 17), tick=False):
        plan = _active_plan(site, interval=7, last_session=timezone.now())
        for name in ("o1", "o2"):
            site[name] = UserFactory(role=Role.PRACTITIONER)
        # Both rooms busy all Monday morning.
        for doctor, room in (("o1", "room"), ("o2", "room_b")):
            for hour in (9, 10, 11):
                _book(site, at(MONDAY, hour), doctor=doctor, room=room)
        slots = plan_next_slots(plan=plan, location=site["location"], count=1)
    assert slots == [(at(MONDAY, 14), site["room"])]


@pytest.mark.parametrize(
    ("day", "utc_hour"),
    [
        (date(2027, 3, 28), 7),  # spring forward: 09:00 Paris is 07:00 UTC that morning
        (date(2027, 10, 31), 8),  # fall back: 09:00 Paris is 08:00 UTC
    ],
)
def test_dst_change_days(db, day: date, utc_hour: int) -> None:
    location = LocationFactory(time_zone="Europe/Paris")
    OpeningHours.objects.create(location=location, weekday=6, opens=time(9), closes=time(12))
    doctor = UserFactory(role=Role.PRACTITIONER)
    desk = UserFactory(role=Role.FRONT_DESK)
    slots = free_starts(
        practitioner=doctor,
        room=None,
        location=location,
        after=datetime.combine(day, time(0), tzinfo=UTC),
        duration=timedelta(hours=1),
        count=20,
    )
    slots = [s for s in slots if s.astimezone(PARIS).date() == day]
    # 09:00 … 11:00 local every quarter hour: nine starts, each exactly an hour before 12:00 at most.
    assert len(slots) == 9
    assert slots[0] == datetime.combine(day, time(utc_hour), tzinfo=UTC)
    assert slots[-1].astimezone(PARIS).time() == time(11)
    booked = appointment_book(
        location=location,
        practitioner=doctor,
        patient=PatientFactory(created_by=desk),
        kind="treatment",
        starts_at=slots[-1],
        duration=timedelta(hours=1),
        created_by=desk,
    )
    assert booked.ends_at.astimezone(PARIS).time() == time(12)
    # One more minute would end after closing.
    with pytest.raises(ValidationError) as refused:
        appointment_book(
            location=location,
            practitioner=doctor,
            patient=PatientFactory(created_by=desk),
            kind="review",
            starts_at=slots[-1] + timedelta(hours=1) - timedelta(minutes=29),
            duration=timedelta(minutes=30),
            created_by=desk,
        )
    assert "starts_at" in refused.value.message_dict


def test_clinic_in_paris_with_a_server_in_utc(site, settings) -> None:
    settings.TIME_ZONE = "UTC"
    timezone.deactivate()
    winter = _free(site, datetime.combine(MONDAY, time(0), tzinfo=UTC), count=1)
    assert winter == [datetime.combine(MONDAY, time(8), tzinfo=UTC)]  # 09:00 in Paris
    summer_monday = date(2027, 7, 5)
    summer = _free(site, datetime.combine(summer_monday, time(0), tzinfo=UTC), count=1)
    assert summer == [datetime.combine(summer_monday, time(7), tzinfo=UTC)]
    # A location in New York follows its own hours, whatever the server's zone.
    new_york = LocationFactory(time_zone="America/New_York")
    OpeningHours.objects.create(location=new_york, weekday=0, opens=time(9), closes=time(17))
    slots = free_starts(
        practitioner=site["doctor"],
        room=None,
        location=new_york,
        after=datetime.combine(MONDAY, time(0), tzinfo=UTC),
        duration=timedelta(hours=1),
        count=1,
    )
    assert slots == [datetime.combine(MONDAY, time(14), tzinfo=UTC)]


def test_booking_outside_hours_is_refused_but_blocked_time_is_not(site) -> None:
    with pytest.raises(ValidationError) as refused:
        _book(site, at(MONDAY, 12, 30))
    assert "starts_at" in refused.value.message_dict
    assert "09:00–12:00, 14:00–18:00" in refused.value.message_dict["starts_at"][0]
    saturday = MONDAY + timedelta(days=5)
    with pytest.raises(ValidationError, match="not working that day"):
        _book(site, at(saturday, 10))
    assert not Appointment.objects.exists()
    blocked = _book(site, at(MONDAY, 12, 30), kind="blocked", room=None)
    assert blocked.pk


def test_booking_during_leave_is_refused(site) -> None:
    ScheduleException.objects.create(
        practitioner=site["doctor"],
        starts_at=at(MONDAY, 0),
        ends_at=at(MONDAY + timedelta(days=7), 0),
        reason="Leave",
        created_by=site["desk"],
    )
    with pytest.raises(ValidationError, match="closure or leave"):
        _book(site, at(MONDAY, 10))


def test_kind_durations_are_data(site) -> None:
    AppointmentKindSetting.objects.update_or_create(kind="consultation", defaults={"default_minutes": 50})
    appointment = _book(site, at(MONDAY, 9), kind="consultation")
    assert appointment.ends_at - appointment.starts_at == timedelta(minutes=50)


def test_history_says_who_when_and_why(site) -> None:
    with time_machine.travel(at(MONDAY - timedelta(days=3), 12), tick=False):
        appointment = _book(site, at(MONDAY, 9))
        moved = appointment_reschedule(
            appointment=appointment,
            starts_at=at(MONDAY, 15),
            by=site["desk"],
            revision=appointment.revision,
            reason="Patient asked for the afternoon",
        )
        appointment_cancel(appointment=moved, by=site["doctor"], reason="Unwell")
    changes = list(AppointmentChange.objects.filter(appointment=appointment).order_by("at", "pk"))
    assert [c.action for c in changes] == ["booked", "moved", "cancelled"]
    assert changes[1].from_starts_at == at(MONDAY, 9) and changes[1].to_starts_at == at(MONDAY, 15)
    assert changes[1].reason == "Patient asked for the afternoon" and changes[1].by == site["desk"]
    assert changes[2].reason == "Unwell" and changes[2].by == site["doctor"]
    appointment.refresh_from_db()
    assert appointment.cancelled_late is False  # three days ahead


def test_a_refused_reschedule_leaves_no_history(site) -> None:
    with time_machine.travel(at(MONDAY - timedelta(days=3), 12), tick=False):
        appointment = _book(site, at(MONDAY, 9))
        with pytest.raises(ValidationError):
            appointment_reschedule(
                appointment=appointment, starts_at=at(MONDAY, 12, 30), by=site["desk"], revision=1, reason="x"
            )
    assert AppointmentChange.objects.filter(appointment=appointment).count() == 1
