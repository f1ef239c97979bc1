"""Schedule settings: hours, rooms, closures and leave, default durations."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from mesoclinic.access import Role
from mesoclinic.models import Location, Room
from tests.factories import ClinicFactory, LocationFactory, PatientFactory, RoomFactory, UserFactory
from treatments.models import Appointment, AppointmentKindSetting, OpeningHours, ScheduleException, WorkingHours
from treatments.selectors_booking import appointments_inside
from treatments.services.schedule import (
    kind_duration_set,
    location_update,
    opening_hours_replace,
    room_create,
    room_update,
    schedule_exception_create,
    working_hours_replace,
)

PARIS = ZoneInfo("Europe/Paris")
NINE, NOON, ONE, TWO, SIX = time(9), time(12), time(13), time(14), time(18)


def _week(location: Location) -> list[tuple[int, time, time]]:
    return list(
        OpeningHours.objects.filter(location=location)
        .order_by("weekday", "opens")
        .values_list("weekday", "opens", "closes")
    )


@pytest.fixture
def site(db) -> Location:
    return LocationFactory(name="Paris Opéra", time_zone="Europe/Paris")


@pytest.fixture
def doctor(db):
    return UserFactory(role=Role.PRACTITIONER, full_name="Dr Anne Vidal")


# --- services -----------------------------------------------------------------------


def test_opening_hours_replace_sets_the_whole_week(site) -> None:
    opening_hours_replace(location=site, rows=[(0, NINE, NOON), (0, TWO, SIX), (5, NINE, ONE)])
    assert _week(site) == [(0, NINE, NOON), (0, TWO, SIX), (5, NINE, ONE)]
    opening_hours_replace(location=site, rows=[(1, NINE, SIX)])
    assert _week(site) == [(1, NINE, SIX)]


def test_touching_intervals_are_allowed(site) -> None:
    opening_hours_replace(location=site, rows=[(2, NINE, TWO), (2, TWO, SIX)])
    assert len(_week(site)) == 2


def test_overlap_is_refused_naming_the_day_and_nothing_changes(site) -> None:
    opening_hours_replace(location=site, rows=[(0, NINE, SIX)])
    with pytest.raises(ValidationError) as refused:
        opening_hours_replace(location=site, rows=[(3, NINE, ONE), (3, NOON, SIX), (4, NINE, SIX)])
    assert "Thursday" in refused.value.messages[0] and "overlap" in refused.value.messages[0]
    assert _week(site) == [(0, NINE, SIX)]


def test_closing_before_opening_is_refused(site) -> None:
    with pytest.raises(ValidationError, match="Friday: 09:00 must be after 18:00"):
        opening_hours_replace(location=site, rows=[(4, SIX, NINE)])
    assert not OpeningHours.objects.exists()


def test_replace_is_atomic_when_the_insert_fails(site, monkeypatch) -> None:
    opening_hours_replace(location=site, rows=[(0, NINE, SIX)])

    def broken(*args, **kwargs):
        raise IntegrityError("disk full")

    monkeypatch.setattr(OpeningHours.objects, "bulk_create", broken)
    with pytest.raises(IntegrityError):
        opening_hours_replace(location=site, rows=[(1, NINE, SIX)])
    assert _week(site) == [(0, NINE, SIX)]  # the delete was rolled back too


def test_working_hours_may_not_overlap_across_locations(site, doctor) -> None:
    other = LocationFactory(name="Lyon", clinic=site.clinic)
    working_hours_replace(practitioner=doctor, location=site, rows=[(0, NINE, ONE)])
    with pytest.raises(ValidationError) as refused:
        working_hours_replace(practitioner=doctor, location=other, rows=[(0, NOON, SIX)])
    assert "Monday" in refused.value.messages[0] and "Paris Opéra" in refused.value.messages[0]
    assert not WorkingHours.objects.filter(location=other).exists()
    # The afternoon, after the morning elsewhere, is fine; the first location keeps its row.
    working_hours_replace(practitioner=doctor, location=other, rows=[(0, ONE, SIX), (1, NINE, SIX)])
    assert WorkingHours.objects.filter(practitioner=doctor).count() == 3


def test_working_hours_are_for_practitioners(site) -> None:
    desk = UserFactory(role=Role.FRONT_DESK)
    with pytest.raises(ValidationError, match="for practitioners"):
        working_hours_replace(practitioner=desk, location=site, rows=[(0, NINE, SIX)])


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"location": None}, "location"),
        ({"practitioner": "doctor"}, "location"),
        ({"ends_at": datetime(2030, 1, 1, tzinfo=PARIS)}, "last_day"),
        ({"reason": "  "}, "reason"),
    ],
)
def test_exception_create_refuses_bad_input(site, doctor, manager, changes: dict, field: str) -> None:
    arguments = {
        "location": site,
        "starts_at": datetime(2030, 1, 2, tzinfo=PARIS),
        "ends_at": datetime(2030, 1, 3, tzinfo=PARIS),
        "reason": "Holiday",
        "by": manager,
        **changes,
    }
    if arguments.get("practitioner") == "doctor":
        arguments["practitioner"] = doctor
    with pytest.raises(ValidationError) as refused:
        schedule_exception_create(**arguments)
    assert field in refused.value.message_dict
    assert not ScheduleException.objects.exists()


def test_kind_duration_set(manager) -> None:
    kind_duration_set(kind="review", minutes=20, by=manager)
    assert AppointmentKindSetting.objects.get(kind="review").default_minutes == 20
    with pytest.raises(ValidationError):
        kind_duration_set(kind="review", minutes=481, by=manager)
    assert AppointmentKindSetting.objects.get(kind="review").default_minutes == 20


def test_location_time_zone_is_checked_and_rooms_are_deactivated_not_deleted(site, manager) -> None:
    with pytest.raises(ValidationError) as refused:
        location_update(location=site, name="Opéra", address="", phone="", time_zone="Mars/Olympus", by=manager)
    assert "time_zone" in refused.value.message_dict
    site.refresh_from_db()
    assert site.name == "Paris Opéra"
    room = room_create(location=site, name="Cabine 1", by=manager)
    with pytest.raises(ValidationError, match="already has a room"):
        room_create(location=site, name="Cabine 1", by=manager)
    room_update(room=room, name="Cabine A", is_active=False, by=manager)
    assert Room.objects.filter(pk=room.pk, name="Cabine A", is_active=False).exists()


def _appointment(location, practitioner, start: datetime, *, status: str = "booked", minutes: int = 60):
    return Appointment.objects.create(
        location=location,
        practitioner=practitioner,
        patient=PatientFactory(created_by=practitioner),
        kind="treatment",
        starts_at=start,
        ends_at=start + timedelta(minutes=minutes),
        status=status,
        created_by=practitioner,
    )


def test_appointments_inside_a_closure_and_a_leave(site, doctor, manager) -> None:
    other_site = LocationFactory(clinic=site.clinic)
    colleague = UserFactory(role=Role.PRACTITIONER)
    day = datetime(2031, 5, 12, tzinfo=PARIS)
    inside = _appointment(site, doctor, day.replace(hour=10))
    overlapping_end = _appointment(site, colleague, day - timedelta(minutes=30))
    _appointment(site, doctor, day.replace(hour=11), status="cancelled")
    elsewhere = _appointment(other_site, doctor, day.replace(hour=15))
    _appointment(site, doctor, day + timedelta(days=1, hours=10))  # the day after
    closure = schedule_exception_create(
        location=site, starts_at=day, ends_at=day + timedelta(days=1), reason="Holiday", by=manager
    )
    assert list(appointments_inside(closure)) == [overlapping_end, inside]
    leave = schedule_exception_create(
        practitioner=doctor, starts_at=day, ends_at=day + timedelta(days=1), reason="Leave", by=manager
    )
    assert list(appointments_inside(leave)) == [inside, elsewhere]


# --- pages --------------------------------------------------------------------------

MANAGER_PAGES = [
    ("location_create", []),
    ("location_edit", ["site"]),
    ("kind_durations", []),
]


def _url(name: str, args: list[str], site: Location) -> str:
    return reverse(name, args=[site.pk for _arg in args])


@pytest.mark.parametrize(("name", "args"), MANAGER_PAGES)
@pytest.mark.parametrize("persona", ["front_desk_client", "practitioner_client"])
def test_manager_pages_refuse_other_roles(request, site, name: str, args: list[str], persona: str) -> None:
    client = request.getfixturevalue(persona)
    url = _url(name, args, site)
    assert client.get(url).status_code == 403
    assert client.post(url, {"action": "details", "name": "Hacked", "time_zone": "UTC"}).status_code == 403
    site.refresh_from_db()
    assert site.name == "Paris Opéra"


@pytest.mark.parametrize(
    ("name", "args"),
    [*MANAGER_PAGES, ("location_list", []), ("closure_list", []), ("no_show_report", [])],
)
def test_anonymous_is_sent_to_login(anonymous_client: Client, site, name: str, args: list[str]) -> None:
    response = anonymous_client.get(_url(name, args, site))
    assert response.status_code == 302 and response.url.startswith(reverse("account_login"))


def test_location_list_says_when_hours_are_assumed(front_desk_client: Client, site, manager_client: Client) -> None:
    open_site = LocationFactory(name="Lyon", clinic=site.clinic)
    opening_hours_replace(location=open_site, rows=[(0, NINE, SIX)])
    RoomFactory(location=site, name="Cabine bleue")
    page = front_desk_client.get(reverse("location_list")).content.decode()
    assert page.count("Opening hours not set: 08:00–20:00 every day is assumed.") == 1
    assert "Cabine bleue" in page and "09:00–18:00" in page
    assert reverse("location_edit", args=[site.pk]) not in page  # read-only for the front desk
    assert reverse("location_edit", args=[site.pk]) in manager_client.get(reverse("location_list")).content.decode()


def _count(client: Client, url: str) -> int:
    client.get(url)
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries.captured_queries)


def _locations(n: int, clinic) -> None:
    for _index in range(n):
        location = LocationFactory(clinic=clinic)
        RoomFactory(location=location)
        RoomFactory(location=location)
        opening_hours_replace(location=location, rows=[(0, NINE, NOON), (0, TWO, SIX), (1, NINE, SIX)])
    UserFactory(role=Role.PRACTITIONER)


def test_location_list_query_count_is_pinned(manager_client: Client) -> None:
    clinic = ClinicFactory()
    _locations(1, clinic)
    one = _count(manager_client, reverse("location_list"))
    _locations(6, clinic)
    seven = _count(manager_client, reverse("location_list"))
    assert one == seven == 7


def test_manager_creates_a_location(manager_client: Client, site) -> None:
    response = manager_client.post(
        reverse("location_create"), {"name": "Bordeaux", "address": "1 quai", "phone": "", "time_zone": "Europe/Paris"}
    )
    created = Location.objects.get(name="Bordeaux")
    assert response.status_code == 302 and response.url == reverse("location_edit", args=[created.pk])
    assert created.clinic_id == site.clinic_id


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"name": "Bordeaux", "time_zone": "Mars/Olympus"}, "Select a valid choice"),
        ({"name": "Paris Opéra", "time_zone": "Europe/Paris"}, "Another location already has this name"),
        ({"name": "", "time_zone": "Europe/Paris"}, "This field is required"),
    ],
)
def test_location_create_bad_input(manager_client: Client, site, data: dict, message: str) -> None:
    response = manager_client.post(reverse("location_create"), data)
    assert response.status_code == 400 and message in response.content.decode()
    assert Location.objects.count() == 1


def _hours_data(**cells: str) -> dict[str, str]:
    return {"action": "hours", **{f"hours-{name}": value for name, value in cells.items()}}


def test_manager_edits_details_hours_and_rooms(manager_client: Client, site) -> None:
    url = reverse("location_edit", args=[site.pk])
    page = manager_client.get(url).content.decode()
    assert "Opening hours not set: 08:00–20:00 every day is assumed." in page
    response = manager_client.post(
        url, {"action": "details", "name": "Opéra", "address": "", "phone": "01 02", "time_zone": "Europe/London"}
    )
    assert response.status_code == 302
    site.refresh_from_db()
    assert (site.name, site.time_zone) == ("Opéra", "Europe/London")
    cells = {"d0_1_start": "09:00", "d0_1_end": "12:30", "d0_2_start": "14:00", "d0_2_end": "19:00"}
    assert manager_client.post(url, _hours_data(**cells, d5_1_start="10:00", d5_1_end="13:00")).status_code == 302
    assert _week(site) == [(0, NINE, time(12, 30)), (0, TWO, time(19)), (5, time(10), ONE)]
    assert 'value="12:30"' in manager_client.get(url).content.decode()
    assert manager_client.post(url, {"action": "room_add", "room_new-name": "Cabine 1"}).status_code == 302
    room = Room.objects.get(location=site)
    response = manager_client.post(url, {"action": f"room_{room.pk}", f"room{room.pk}-name": "Cabine 1"})
    assert response.status_code == 302
    room.refresh_from_db()
    assert room.is_active is False


@pytest.mark.parametrize(
    ("cells", "message"),
    [
        ({"d2_1_start": "09:00", "d2_1_end": "13:00", "d2_2_start": "12:00", "d2_2_end": "18:00"}, "Overlaps 09:00"),
        ({"d2_1_start": "18:00", "d2_1_end": "09:00"}, "Must be after the start time."),
        ({"d2_1_start": "09:00"}, "Enter both times, or neither."),
        ({"d2_1_start": "nine", "d2_1_end": "18:00"}, "Enter a valid time."),
    ],
)
def test_bad_opening_hours_keep_the_previous_week(manager_client: Client, site, cells: dict, message: str) -> None:
    opening_hours_replace(location=site, rows=[(0, NINE, SIX)])
    response = manager_client.post(reverse("location_edit", args=[site.pk]), _hours_data(**cells))
    assert response.status_code == 400
    assert message in response.content.decode()
    assert _week(site) == [(0, NINE, SIX)]


def test_unknown_location_action_is_400(manager_client: Client, site) -> None:
    assert manager_client.post(reverse("location_edit", args=[site.pk]), {"action": "explode"}).status_code == 400


def test_duplicate_room_name_is_a_field_error(manager_client: Client, site) -> None:
    RoomFactory(location=site, name="Cabine 1")
    response = manager_client.post(
        reverse("location_edit", args=[site.pk]), {"action": "room_add", "room_new-name": "Cabine 1"}
    )
    assert response.status_code == 400 and "already has a room with this name" in response.content.decode()
    assert Room.objects.filter(location=site).count() == 1


def test_working_hours_page(manager_client: Client, front_desk_client: Client, practitioner_client, site, doctor):
    other = LocationFactory(name="Lyon", clinic=site.clinic)
    url = reverse("working_hours_edit", args=[doctor.pk])
    page = front_desk_client.get(url).content.decode()
    assert "No working hours set: Dr Anne Vidal works whenever a location is open." in page
    assert 'type="time"' not in page  # read-only
    grid = {f"loc{site.pk}-d0_1_start": "09:00", f"loc{site.pk}-d0_1_end": "13:00"}
    assert front_desk_client.post(url, {"location": site.pk, **grid}).status_code == 403
    assert practitioner_client.post(url, {"location": site.pk, **grid}).status_code == 403
    assert not WorkingHours.objects.exists()
    assert manager_client.post(url, {"location": site.pk, **grid}).status_code == 302
    assert list(WorkingHours.objects.values_list("location_id", "weekday", "starts", "ends")) == [
        (site.pk, 0, NINE, ONE)
    ]
    clash = {f"loc{other.pk}-d0_1_start": "12:00", f"loc{other.pk}-d0_1_end": "18:00"}
    response = manager_client.post(url, {"location": other.pk, **clash})
    assert response.status_code == 400
    assert "Monday: 12:00–18:00 overlaps 09:00–13:00 at Paris Opéra." in response.content.decode()
    assert WorkingHours.objects.count() == 1
    assert "No working hours set" not in manager_client.get(url).content.decode()


def test_working_hours_of_a_non_practitioner_is_404(manager_client: Client, front_desk) -> None:
    assert manager_client.get(reverse("working_hours_edit", args=[front_desk.pk])).status_code == 404


def _closure_data(site: Location, **extra: object) -> dict[str, object]:
    return {"location": site.pk, "first_day": "2031-05-12", "last_day": "2031-05-13", "reason": "Ascension", **extra}


def test_closure_warns_about_bookings_inside_and_can_be_removed(manager_client: Client, site, doctor) -> None:
    caught = _appointment(site, doctor, datetime(2031, 5, 13, 16, tzinfo=PARIS))
    _appointment(site, doctor, datetime(2031, 5, 14, 9, tzinfo=PARIS))  # the day after the last day
    response = manager_client.post(reverse("closure_list"), _closure_data(site))
    assert response.status_code == 302
    closure = ScheduleException.objects.get()
    assert closure.starts_at == datetime(2031, 5, 12, tzinfo=PARIS)
    assert closure.ends_at == datetime(2031, 5, 14, tzinfo=PARIS)
    page = manager_client.get(response.url).content.decode()
    assert "This appointment falls inside “Ascension”: move it." in page
    assert f"location={site.pk}&amp;day=2031-05-13" in page and caught.patient.last_name.upper() in page
    assert manager_client.post(reverse("closure_remove", args=[closure.pk])).status_code == 302
    assert not ScheduleException.objects.exists()


def test_closure_with_times_uses_the_location_zone(manager_client: Client, doctor) -> None:
    tokyo = LocationFactory(time_zone="Asia/Tokyo")
    data = _closure_data(tokyo, from_time="14:00", to_time="12:00")
    assert manager_client.post(reverse("closure_list"), data).status_code == 302
    closure = ScheduleException.objects.get()
    assert closure.starts_at == datetime(2031, 5, 12, 14, tzinfo=ZoneInfo("Asia/Tokyo"))
    assert closure.ends_at == datetime(2031, 5, 13, 12, tzinfo=ZoneInfo("Asia/Tokyo"))
    page = manager_client.get(reverse("closure_list") + f"?created={closure.pk}").content.decode()
    assert "No booked appointment falls inside it." in page


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"last_day": "2031-05-01"}, "The last day is before the first day."),
        ({"location": ""}, "Choose either a location (closure) or a practitioner (leave)."),
        ({"reason": ""}, "This field is required."),
        ({"first_day": "2031-05-13", "from_time": "15:00", "to_time": "09:00"}, "The end is before the start."),
        ({"first_day": "not a day"}, "Enter a valid date."),
    ],
)
def test_closure_bad_input(manager_client: Client, site, changes: dict, message: str) -> None:
    response = manager_client.post(reverse("closure_list"), _closure_data(site, **changes))
    assert response.status_code == 400 and message in response.content.decode()
    assert not ScheduleException.objects.exists()


def test_front_desk_reads_closures_but_cannot_add_or_remove(front_desk_client: Client, site, manager) -> None:
    closure = schedule_exception_create(
        location=site,
        starts_at=timezone.now() + timedelta(days=3),
        ends_at=timezone.now() + timedelta(days=4),
        reason="Inventory",
        by=manager,
    )
    page = front_desk_client.get(reverse("closure_list")).content.decode()
    assert "Inventory" in page and 'data-testid="closure-form"' not in page
    assert front_desk_client.post(reverse("closure_list"), _closure_data(site)).status_code == 403
    assert front_desk_client.post(reverse("closure_remove", args=[closure.pk])).status_code == 403
    assert ScheduleException.objects.count() == 1


def test_practitioner_adds_and_removes_own_leave_only(practitioner_client: Client, practitioner, site, doctor, manager):
    own = {"practitioner": practitioner.pk, "first_day": "2031-08-01", "last_day": "2031-08-15", "reason": "Holiday"}
    assert practitioner_client.post(reverse("closure_list"), own).status_code == 302
    leave = ScheduleException.objects.get()
    assert leave.practitioner_id == practitioner.pk and leave.location_id is None
    # Someone else's leave or a closure: refused.
    response = practitioner_client.post(reverse("closure_list"), {**own, "practitioner": doctor.pk})
    assert response.status_code == 400 and "Select a valid choice" in response.content.decode()
    closure = schedule_exception_create(
        location=site, starts_at=leave.starts_at, ends_at=leave.ends_at, reason="Works", by=manager
    )
    assert practitioner_client.post(reverse("closure_remove", args=[closure.pk])).status_code == 403
    assert practitioner_client.post(reverse("closure_remove", args=[leave.pk])).status_code == 302
    assert list(ScheduleException.objects.all()) == [closure]


def test_closure_list_query_count_is_pinned(manager_client: Client, site, doctor, manager) -> None:
    def add(n: int) -> None:
        for index in range(n):
            start = timezone.now() + timedelta(days=index + 1)
            schedule_exception_create(
                location=site if index % 2 else None,
                practitioner=None if index % 2 else doctor,
                starts_at=start,
                ends_at=start + timedelta(hours=4),
                reason=f"closure {index}",
                by=manager,
            )

    add(1)
    one = _count(manager_client, reverse("closure_list"))
    add(8)
    nine = _count(manager_client, reverse("closure_list"))
    assert one == nine == 6


def test_kind_durations(manager_client: Client) -> None:
    current = dict(AppointmentKindSetting.objects.values_list("kind", "default_minutes"))
    assert manager_client.get(reverse("kind_durations")).status_code == 200
    response = manager_client.post(reverse("kind_durations"), {**current, "review": "20"})
    assert response.status_code == 302
    assert AppointmentKindSetting.objects.get(kind="review").default_minutes == 20
    response = manager_client.post(reverse("kind_durations"), {**current, "review": "25", "treatment": "2"})
    assert response.status_code == 400 and "greater than or equal to 5" in response.content.decode()
    assert AppointmentKindSetting.objects.get(kind="review").default_minutes == 20
