"""When can someone be booked: opening hours ∩ working hours − closures − leave − bookings.

Hours are wall-clock times in the location's time zone; every interval is turned into
UTC before any arithmetic, so a DST change day has 23 or 25 real hours and a 60-minute
slot lasts 60 minutes whichever side of the change it falls.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.db.models import Q

from mesoclinic.models import Location, Room, User
from treatments.models import ACTIVE_STATUSES, Appointment, AppointmentKindSetting, OpeningHours, ScheduleException
from treatments.models import WorkingHours as WorkingHoursRow

Interval = tuple[datetime, datetime]
Hours = list[tuple[time, time]]

# A location nobody has set hours for yet (the calendar says so).
FALLBACK_HOURS: Hours = [(time(8, 0), time(20, 0))]
STEP = timedelta(minutes=15)
BUILT_IN_MINUTES = {"consultation": 45, "treatment": 60, "review": 30, "blocked": 60}


def kind_duration(kind: str) -> timedelta:
    """The default duration of an appointment kind (a manager sets it; seeded by migration)."""
    minutes = AppointmentKindSetting.objects.filter(kind=kind).values_list("default_minutes", flat=True).first()
    return timedelta(minutes=minutes or BUILT_IN_MINUTES.get(kind, 60))


def _intersect(first: Hours, second: Hours) -> Hours:
    out = []
    for a_start, a_end in first:
        for b_start, b_end in second:
            start, end = max(a_start, b_start), min(a_end, b_end)
            if start < end:
                out.append((start, end))
    return sorted(out)


def _subtract(intervals: list[Interval], holes: list[Interval]) -> list[Interval]:
    for hole_start, hole_end in holes:
        next_intervals: list[Interval] = []
        for start, end in intervals:
            if hole_end <= start or end <= hole_start:
                next_intervals.append((start, end))
                continue
            if start < hole_start:
                next_intervals.append((start, hole_start))
            if hole_end < end:
                next_intervals.append((hole_end, end))
        intervals = next_intervals
    return intervals


@dataclass
class Schedule:
    """One practitioner's (and optionally one room's) week-by-week availability at one
    location over a window, loaded in four queries."""

    location: Location
    zone: ZoneInfo
    opening: dict[int, Hours]
    working: dict[int, Hours] | None  # None: the practitioner has no hours set anywhere
    closed: list[Interval]
    busy: list[Interval]
    room_busy: dict[int, list[Interval]] = field(default_factory=dict)
    hours_set: bool = True

    def hours_on(self, day: date) -> Hours:
        """The wall-clock hours the practitioner can be booked on ``day`` (before closures)."""
        opening = self.opening.get(day.weekday(), []) if self.hours_set else FALLBACK_HOURS
        if self.working is None:
            return opening
        return _intersect(opening, self.working.get(day.weekday(), []))

    def open_intervals(self, start: datetime, end: datetime) -> list[Interval]:
        """Bookable UTC intervals overlapping [start, end), closures and leave removed."""
        first = start.astimezone(self.zone).date() - timedelta(days=1)
        last = end.astimezone(self.zone).date() + timedelta(days=1)
        intervals: list[Interval] = []
        day = first
        while day <= last:
            for opens, closes in self.hours_on(day):
                a = datetime.combine(day, opens, tzinfo=self.zone).astimezone(UTC)
                b = datetime.combine(day, closes, tzinfo=self.zone).astimezone(UTC)
                if a < end and start < b:
                    intervals.append((a, b))
            day += timedelta(days=1)
        return _subtract(intervals, self.closed)

    def within_hours(self, start: datetime, end: datetime) -> bool:
        return any(a <= start and end <= b for a, b in self.open_intervals(start, end))

    def is_free(self, start: datetime, end: datetime, room: Room | None = None) -> bool:
        busy = self.busy + (self.room_busy.get(room.pk, []) if room is not None else [])
        return all(not (a < end and start < b) for a, b in busy)


def schedule_load(
    *,
    location: Location,
    practitioner: User,
    start: datetime,
    end: datetime,
    rooms: list[Room] | None = None,
    exclude_appointment: int | None = None,
) -> Schedule:
    zone = ZoneInfo(location.time_zone)
    opening: dict[int, Hours] = defaultdict(list)
    rows = list(OpeningHours.objects.filter(location=location).values_list("weekday", "opens", "closes"))
    for weekday, opens, closes in rows:
        opening[weekday].append((opens, closes))
    working: dict[int, Hours] | None = None
    worked = list(
        WorkingHoursRow.objects.filter(practitioner=practitioner).values_list(
            "location_id", "weekday", "starts", "ends"
        )
    )
    if worked:
        working = defaultdict(list)
        for location_id, weekday, starts, ends in worked:
            if location_id == location.pk:
                working[weekday].append((starts, ends))
    # Closures and leave are whole local days at most a few weeks long: widen the window by
    # a day each side so that a closure starting before ``start`` still counts.
    closed = list(
        ScheduleException.objects.filter(Q(location=location) | Q(practitioner=practitioner))
        .filter(starts_at__lt=end + timedelta(days=1), ends_at__gt=start - timedelta(days=1))
        .values_list("starts_at", "ends_at")
    )
    room_ids = [r.pk for r in rooms or []]
    busy: list[Interval] = []
    room_busy: dict[int, list[Interval]] = {pk: [] for pk in room_ids}
    taken = Appointment.objects.filter(status__in=ACTIVE_STATUSES, starts_at__lt=end, ends_at__gt=start).filter(
        Q(practitioner=practitioner) | Q(room_id__in=room_ids)
    )
    if exclude_appointment is not None:
        taken = taken.exclude(pk=exclude_appointment)
    for practitioner_id, room_id, a, b in taken.values_list("practitioner_id", "room_id", "starts_at", "ends_at"):
        if practitioner_id == practitioner.pk:
            busy.append((a, b))
        if room_id in room_busy:
            room_busy[room_id].append((a, b))
    return Schedule(
        location=location,
        zone=zone,
        opening=dict(opening),
        working=dict(working) if working is not None else None,
        closed=closed,
        busy=busy,
        room_busy=room_busy,
        hours_set=bool(rows),
    )


def _first_step(moment: datetime, zone: ZoneInfo) -> datetime:
    """The first quarter hour (local wall clock) at or after ``moment``."""
    local = moment.astimezone(zone)
    extra = (-local.minute) % 15
    aligned = local.replace(second=0, microsecond=0) + timedelta(minutes=extra)
    if aligned < local:
        aligned += STEP
    return aligned.astimezone(UTC)


def schedule_free_starts(
    schedule: Schedule,
    *,
    after: datetime,
    until: datetime,
    duration: timedelta,
    count: int,
    rooms: list[Room] | None = None,
) -> list[tuple[datetime, Room | None]]:
    """Up to ``count`` starts in [after, until) where the whole ``duration`` fits in the
    practitioner's hours and nobody's bookings; with ``rooms``, only starts where one of
    them is free too (the first free one is given)."""
    found: list[tuple[datetime, Room | None]] = []
    for opens, closes in schedule.open_intervals(after, until):
        candidate = _first_step(max(opens, after), schedule.zone)
        while candidate + duration <= closes and candidate < until:
            end = candidate + duration
            if schedule.is_free(candidate, end):
                room = None
                if rooms:
                    room = next((r for r in rooms if schedule.is_free(candidate, end, r)), None)
                if room is not None or not rooms:
                    found.append((candidate, room))
                    if len(found) >= count:
                        return found
            candidate += STEP
    return found
