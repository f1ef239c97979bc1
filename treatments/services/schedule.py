"""Schedule settings a manager keeps: locations and rooms, opening and working hours,
closures and leave, default appointment durations.

The availability engine reads these rows, so the rules here are its assumptions: hours
never overlap on a day (for a practitioner: across locations too), closures and leave
are one continuous period each. Every model here is tracked by pghistory, so the
services only write; replaced or removed rows stay in the history.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, time, timedelta
from itertools import pairwise
from zoneinfo import available_timezones

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from mesoclinic.access import Role, has_role
from mesoclinic.models import Clinic, Location, Room, User
from treatments.models import (
    Appointment,
    AppointmentKindSetting,
    OpeningHours,
    ScheduleException,
    Weekday,
    WorkingHours,
)

HourRows = list[tuple[int, time, time]]

KIND_MINUTES_MIN, KIND_MINUTES_MAX = 5, 480
# A closure or leave longer than this is almost certainly a typo in the year.
EXCEPTION_MAX = timedelta(days=366)


def _hm(moment: time) -> str:
    return moment.strftime("%H:%M")


def _day_name(weekday: int) -> str:
    return str(Weekday(weekday).label)


def _hour_rows_check(rows: Iterable[tuple[int, time, time]]) -> HourRows:
    """Sorted rows, or a ValidationError naming the day of the first problem."""
    checked: HourRows = []
    for weekday, starts, ends in rows:
        if weekday not in Weekday.values:
            raise ValidationError(_("%(day)s is not a day of the week.") % {"day": weekday})
        if not ends > starts:
            raise ValidationError(
                _("%(day)s: %(end)s must be after %(start)s.")
                % {"day": _day_name(weekday), "start": _hm(starts), "end": _hm(ends)}
            )
        checked.append((weekday, starts, ends))
    checked.sort()
    for (day, start, end), (next_day, next_start, next_end) in pairwise(checked):
        # Touching intervals (12:00–14:00 then 14:00–18:00) are allowed.
        if day == next_day and next_start < end:
            raise ValidationError(
                _("%(day)s: %(first)s and %(second)s overlap.")
                % {
                    "day": _day_name(day),
                    "first": f"{_hm(start)}–{_hm(end)}",
                    "second": f"{_hm(next_start)}–{_hm(next_end)}",
                }
            )
    return checked


def opening_hours_replace(*, location: Location, rows: list[tuple[int, time, time]]) -> list[OpeningHours]:
    """Replace a location's whole week. ``rows`` are ``(weekday, opens, closes)`` with
    0 = Monday; no rows at all means the default (08:00–20:00 every day).

    Nothing changes unless every row is valid (ValidationError naming the day)."""
    checked = _hour_rows_check(rows)
    with transaction.atomic():
        # One editor at a time per location: the second waits, then replaces the first's week.
        Location.objects.select_for_update().filter(pk=location.pk).first()
        OpeningHours.objects.filter(location=location).delete()
        return OpeningHours.objects.bulk_create(
            OpeningHours(location=location, weekday=day, opens=opens, closes=closes) for day, opens, closes in checked
        )


def working_hours_replace(
    *, practitioner: User, location: Location, rows: list[tuple[int, time, time]]
) -> list[WorkingHours]:
    """Replace a practitioner's week at one location. ``rows`` are ``(weekday, starts, ends)``.

    A person cannot be in two places: rows may not overlap the practitioner's hours at
    any location on the same weekday. A practitioner with no rows at all (anywhere)
    works whenever the location is open."""
    if not has_role(practitioner, Role.PRACTITIONER, Role.MANAGER):
        raise ValidationError(_("Working hours are for practitioners."))
    checked = _hour_rows_check(rows)
    with transaction.atomic():
        # Serialises two managers editing the same person at two locations at once.
        User.objects.select_for_update().filter(pk=practitioner.pk).first()
        elsewhere = (
            WorkingHours.objects.filter(practitioner=practitioner)
            .exclude(location=location)
            .select_related("location")
            .order_by("weekday", "starts")
        )
        for other in elsewhere:
            for day, starts, ends in checked:
                if day == other.weekday and starts < other.ends and other.starts < ends:
                    raise ValidationError(
                        _("%(day)s: %(hours)s overlaps %(other_hours)s at %(location)s.")
                        % {
                            "day": _day_name(day),
                            "hours": f"{_hm(starts)}–{_hm(ends)}",
                            "other_hours": f"{_hm(other.starts)}–{_hm(other.ends)}",
                            "location": other.location.name,
                        }
                    )
        WorkingHours.objects.filter(practitioner=practitioner, location=location).delete()
        return WorkingHours.objects.bulk_create(
            WorkingHours(practitioner=practitioner, location=location, weekday=day, starts=starts, ends=ends)
            for day, starts, ends in checked
        )


def schedule_exception_create(
    *,
    location: Location | None = None,
    practitioner: User | None = None,
    starts_at: datetime,
    ends_at: datetime,
    reason: str,
    by: User,
) -> ScheduleException:
    """A location closure (``location``) or a practitioner's leave (``practitioner``),
    one continuous period. Bookings already inside it are not touched: the page lists
    them so someone moves each one with the patient."""
    errors: dict[str, str] = {}
    if (location is None) == (practitioner is None):
        errors["location"] = _("Choose either a location (closure) or a practitioner (leave).")
    if starts_at.tzinfo is None or ends_at.tzinfo is None:
        raise ValueError("closure times must be timezone-aware")
    if not ends_at > starts_at:
        errors["last_day"] = _("The end is before the start.")
    elif ends_at - starts_at > EXCEPTION_MAX:
        errors["last_day"] = _("A closure or leave lasts at most a year.")
    reason = reason.strip()
    if not reason:
        errors["reason"] = _("Say why (for example: public holiday, training, leave).")
    if errors:
        raise ValidationError(errors)
    exception = ScheduleException(
        location=location,
        practitioner=practitioner,
        starts_at=starts_at,
        ends_at=ends_at,
        reason=reason[:200],
        created_by=by,
    )
    exception.full_clean()
    exception.save()
    return exception


def schedule_exception_remove(*, exception: ScheduleException, by: User) -> None:
    """Remove a closure or leave (not clinical: the history keeps the removed row)."""
    ScheduleException.objects.filter(pk=exception.pk).delete()


def kind_duration_set(*, kind: str, minutes: int, by: User) -> AppointmentKindSetting:
    """Set the default duration of an appointment kind (5 to 480 minutes)."""
    if kind not in Appointment.Kind.values:
        raise ValidationError(_("Unknown appointment kind."))
    if not KIND_MINUTES_MIN <= minutes <= KIND_MINUTES_MAX:
        raise ValidationError({"default_minutes": _("Between %(low)s and %(high)s minutes.") % {"low": 5, "high": 480}})
    setting, _created = AppointmentKindSetting.objects.update_or_create(
        kind=kind, defaults={"default_minutes": minutes}
    )
    return setting


def _location_fields_check(*, name: str, time_zone: str) -> dict[str, str]:
    errors: dict[str, str] = {}
    if not name.strip():
        errors["name"] = _("Enter the location's name.")
    # "localtime" follows whatever machine runs the code; "Factory" is no place at all.
    if time_zone not in available_timezones() or time_zone in {"localtime", "Factory"}:
        errors["time_zone"] = _("Choose a time zone from the list (for example Europe/Paris).")
    return errors


def _location_save(location: Location) -> Location:
    try:
        with transaction.atomic():
            location.full_clean(validate_unique=False, validate_constraints=False)
            location.save()
    except IntegrityError as error:
        if "location_unique_name" in str(error):
            raise ValidationError({"name": _("Another location already has this name.")}) from error
        raise
    return location


def location_create(*, name: str, address: str, phone: str, time_zone: str, by: User) -> Location:
    """A new location of the clinic (the first clinic row; created if there is none yet)."""
    errors = _location_fields_check(name=name, time_zone=time_zone)
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        clinic = Clinic.objects.order_by("pk").first() or Clinic.objects.create(name=settings.CLINIC_NAME)
        return _location_save(
            Location(
                clinic=clinic, name=name.strip(), address=address.strip(), phone=phone.strip(), time_zone=time_zone
            )
        )


def location_update(*, location: Location, name: str, address: str, phone: str, time_zone: str, by: User) -> Location:
    errors = _location_fields_check(name=name, time_zone=time_zone)
    if errors:
        raise ValidationError(errors)
    location.name, location.address, location.phone = name.strip(), address.strip(), phone.strip()
    location.time_zone = time_zone
    return _location_save(location)


def _room_save(room: Room) -> Room:
    if not room.name:
        raise ValidationError({"name": _("Enter the room's name.")})
    try:
        with transaction.atomic():
            room.full_clean(validate_unique=False, validate_constraints=False)
            room.save()
    except IntegrityError as error:
        if "room_unique_name" in str(error):
            raise ValidationError({"name": _("This location already has a room with this name.")}) from error
        raise
    return room


def room_create(*, location: Location, name: str, by: User) -> Room:
    return _room_save(Room(location=location, name=name.strip()))


def room_update(*, room: Room, name: str, is_active: bool, by: User) -> Room:
    """Rename or (de)activate a room. Rooms are never deleted: past appointments point at them."""
    room.name, room.is_active = name.strip(), is_active
    return _room_save(room)
