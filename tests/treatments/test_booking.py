"""Booking: the database makes double booking impossible, even under concurrency."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.utils import timezone

from mesoclinic.access import Role
from tests.factories import LocationFactory, PatientFactory, RoomFactory, UserFactory
from treatments.models import Appointment
from treatments.services.booking import (
    SlotTaken,
    appointment_book,
    appointment_cancel,
    appointment_check_in,
    appointment_no_show,
    appointment_reschedule,
)

PARIS = ZoneInfo("Europe/Paris")


def _tomorrow_at(hour: int, minute: int = 0) -> datetime:
    day = timezone.localdate() + timedelta(days=1)
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=PARIS)


@pytest.fixture
def clinic(db):
    location = LocationFactory(time_zone="Europe/Paris")
    return {
        "location": location,
        "room": RoomFactory(location=location),
        "other_room": RoomFactory(location=location),
        "doctor": UserFactory(role=Role.PRACTITIONER),
        "other_doctor": UserFactory(role=Role.PRACTITIONER),
        "desk": UserFactory(role=Role.FRONT_DESK),
    }


def _book(clinic, *, doctor="doctor", room="room", at=None, patient=None, **extra):
    return appointment_book(
        location=clinic["location"],
        practitioner=clinic[doctor],
        room=clinic[room] if room else None,
        patient=patient or PatientFactory(created_by=clinic["desk"]),
        kind="treatment",
        starts_at=at or _tomorrow_at(10),
        created_by=clinic["desk"],
        **extra,
    )


def test_same_practitioner_same_time_is_refused_with_alternatives(clinic) -> None:
    _book(clinic)
    with pytest.raises(SlotTaken) as refused:
        _book(clinic, room="other_room", at=_tomorrow_at(10, 30))
    assert "practitioner is already booked" in refused.value.messages[0]
    assert refused.value.alternatives and refused.value.alternatives[0] == _tomorrow_at(11)


def test_same_room_same_time_is_refused(clinic) -> None:
    _book(clinic)
    with pytest.raises(SlotTaken, match="room is already booked"):
        _book(clinic, doctor="other_doctor")


def test_back_to_back_and_cancelled_slots_are_free(clinic) -> None:
    first = _book(clinic)
    _book(clinic, at=_tomorrow_at(11))  # [10:00, 11:00) then [11:00, 12:00)
    appointment_cancel(appointment=first, by=clinic["desk"], reason="patient ill")
    _book(clinic, at=_tomorrow_at(10))


def test_the_database_itself_refuses_an_overlap(clinic) -> None:
    from django.db import IntegrityError, transaction

    booked = _book(clinic)
    with pytest.raises(IntegrityError), transaction.atomic():
        Appointment.objects.create(
            location=clinic["location"],
            practitioner=clinic["doctor"],
            patient=booked.patient,
            kind="review",
            starts_at=_tomorrow_at(10, 15),
            ends_at=_tomorrow_at(10, 45),
            created_by=clinic["desk"],
        )


def _race(clinic, *, attempts: int, same: str) -> tuple[int, int]:
    patients = [PatientFactory(created_by=clinic["desk"]) for _ in range(attempts)]
    doctors = [UserFactory(role=Role.PRACTITIONER) for _ in range(attempts)] if same == "room" else None
    rooms = [RoomFactory(location=clinic["location"]) for _ in range(attempts)] if same == "practitioner" else None
    barrier = threading.Barrier(attempts)
    results: list[str] = []
    lock = threading.Lock()

    def attempt(index: int) -> None:
        try:
            barrier.wait()
            appointment_book(
                location=clinic["location"],
                practitioner=doctors[index] if doctors else clinic["doctor"],
                room=rooms[index] if rooms else clinic["room"],
                patient=patients[index],
                kind="treatment",
                starts_at=_tomorrow_at(14),
                created_by=clinic["desk"],
            )
            outcome = "booked"
        except SlotTaken:
            outcome = "taken"
        except Exception as error:  # noqa: BLE001 - any other outcome fails the test below
            outcome = f"error: {error!r}"
        finally:
            connection.close()
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(attempts)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert all(r in {"booked", "taken"} for r in results), results
    return results.count("booked"), results.count("taken")


@pytest.mark.django_db(transaction=True)
def test_fifty_concurrent_bookings_of_one_practitioner_slot_give_one(clinic) -> None:
    assert _race(clinic, attempts=50, same="practitioner") == (1, 49)
    assert Appointment.objects.filter(practitioner=clinic["doctor"]).count() == 1


@pytest.mark.django_db(transaction=True)
def test_fifty_concurrent_bookings_of_one_room_give_one(clinic) -> None:
    assert _race(clinic, attempts=50, same="room") == (1, 49)
    assert Appointment.objects.filter(room=clinic["room"]).count() == 1


def test_reschedule_keeps_optimistic_lock_and_refuses_overlap(clinic) -> None:
    _book(clinic)
    second = _book(clinic, at=_tomorrow_at(12))
    with pytest.raises(SlotTaken):
        appointment_reschedule(
            appointment=second, starts_at=_tomorrow_at(10, 30), by=clinic["desk"], revision=second.revision
        )
    moved = appointment_reschedule(
        appointment=second, starts_at=_tomorrow_at(15), by=clinic["desk"], revision=second.revision
    )
    assert moved.starts_at == _tomorrow_at(15) and moved.revision == 2
    with pytest.raises(ValidationError, match="changed since you opened it"):
        appointment_reschedule(appointment=second, starts_at=_tomorrow_at(16), by=clinic["desk"], revision=1)


def test_statuses(clinic) -> None:
    appointment = _book(clinic)
    appointment_check_in(appointment=appointment, by=clinic["desk"])
    assert appointment.status == "checked_in"
    with pytest.raises(ValidationError):
        appointment_no_show(appointment=appointment, by=clinic["desk"])
    later = _book(clinic, at=_tomorrow_at(17))
    with pytest.raises(ValidationError, match="not started yet"):
        appointment_no_show(appointment=later, by=clinic["desk"])
    cancelled = appointment_cancel(appointment=later, by=clinic["desk"], reason="asked by phone")
    assert cancelled.status == "cancelled"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"room": "room_elsewhere"}, "room"),
        ({"at": "past"}, "starts_at"),
        ({"duration": timedelta(minutes=1)}, "duration"),
        ({"doctor": "desk"}, "practitioner"),
    ],
)
def test_bad_bookings_are_refused_by_field(clinic, changes: dict, field: str) -> None:
    clinic["room_elsewhere"] = RoomFactory()
    kwargs = {}
    if changes.get("at") == "past":
        kwargs["at"] = timezone.now() - timedelta(hours=2)
    if "duration" in changes:
        kwargs["duration"] = changes["duration"]
    with pytest.raises(ValidationError) as refused:
        _book(clinic, room=changes.get("room", "room"), doctor=changes.get("doctor", "doctor"), **kwargs)
    assert field in refused.value.message_dict
    assert not Appointment.objects.exists()
