"""Reads for booking settings and attendance: hours summaries, no-show counts, the
appointments caught by a closure."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.db.models import Count, Max, Prefetch, Q, QuerySet
from django.utils import timezone

from mesoclinic.models import Location, Room
from treatments.models import Appointment, OpeningHours, ScheduleException, Weekday

NO_SHOW_REPORT_LIMIT = 200

_NO_SHOW = Q(status=Appointment.Status.NO_SHOW)
_LATE_CANCEL = Q(status=Appointment.Status.CANCELLED, cancelled_late=True)


def patient_attendance(patient_id: int) -> dict[str, int]:
    """How a patient keeps appointments, in one query. ``cancels`` counts every
    cancellation, the late ones (under 24 hours' notice) included."""
    return Appointment.objects.filter(patient_id=patient_id).aggregate(
        no_shows=Count("pk", filter=_NO_SHOW),
        late_cancels=Count("pk", filter=_LATE_CANCEL),
        cancels=Count("pk", filter=Q(status=Appointment.Status.CANCELLED)),
        completed=Count("pk", filter=Q(status=Appointment.Status.COMPLETED)),
    )


@dataclass(frozen=True)
class NoShowRow:
    patient_id: int
    first_name: str
    last_name: str
    no_shows: int
    late_cancels: int
    last_no_show: date | None


def no_show_report(
    *, location: Location | None = None, since: date, until: date, limit: int = NO_SHOW_REPORT_LIMIT
) -> list[NoShowRow]:
    """Patients who missed or cancelled late an appointment starting between ``since`` and
    ``until`` (inclusive, in the location's zone or the clinic's), most no-shows first;
    one query, at most ``limit`` rows."""
    zone = ZoneInfo(location.time_zone) if location is not None else timezone.get_current_timezone()
    start = datetime.combine(since, time.min, tzinfo=zone)
    end = datetime.combine(until + timedelta(days=1), time.min, tzinfo=zone)
    queryset = Appointment.objects.filter(_NO_SHOW | _LATE_CANCEL, patient__isnull=False, starts_at__gte=start)
    queryset = queryset.filter(starts_at__lt=end)
    if location is not None:
        queryset = queryset.filter(location=location)
    rows = (
        queryset.values("patient_id", "patient__first_name", "patient__last_name")
        .annotate(
            no_shows=Count("pk", filter=_NO_SHOW),
            late_cancels=Count("pk", filter=_LATE_CANCEL),
            last_no_show=Max("starts_at", filter=_NO_SHOW),
        )
        .order_by("-no_shows", "-late_cancels", "patient__last_name", "patient__first_name", "patient_id")[:limit]
    )
    return [
        NoShowRow(
            patient_id=row["patient_id"],
            first_name=row["patient__first_name"],
            last_name=row["patient__last_name"],
            no_shows=row["no_shows"],
            late_cancels=row["late_cancels"],
            last_no_show=row["last_no_show"].astimezone(zone).date() if row["last_no_show"] else None,
        )
        for row in rows
    ]


def appointments_inside(exception: ScheduleException) -> QuerySet[Appointment]:
    """Booked appointments that overlap a closure (at its location) or leave (of its
    practitioner, anywhere): they have to be moved."""
    queryset = Appointment.objects.filter(
        status=Appointment.Status.BOOKED, starts_at__lt=exception.ends_at, ends_at__gt=exception.starts_at
    )
    if exception.location_id is not None:
        queryset = queryset.filter(location_id=exception.location_id)
    else:
        queryset = queryset.filter(practitioner_id=exception.practitioner_id)
    return queryset.select_related("location", "practitioner", "patient").order_by("starts_at", "pk")


def locations_overview() -> QuerySet[Location]:
    """Every location with its rooms and opening hours (three queries whatever the count)."""
    return Location.objects.order_by("-is_active", "name").prefetch_related(
        Prefetch("rooms", queryset=Room.objects.order_by("-is_active", "name")),
        Prefetch("opening_hours", queryset=OpeningHours.objects.order_by("weekday", "opens")),
    )


@dataclass(frozen=True)
class DayHours:
    weekday: int
    label: str
    intervals: list[tuple[time, time]]


def week_hours(rows: list[Any], *, start: str, end: str) -> list[DayHours]:
    """Seven days, Monday first, each with its intervals (``start``/``end`` name the row's fields)."""
    by_day: dict[int, list[tuple[time, time]]] = {day: [] for day in Weekday.values}
    for row in rows:
        by_day[row.weekday].append((getattr(row, start), getattr(row, end)))
    return [
        DayHours(weekday=day, label=str(Weekday(day).label), intervals=sorted(by_day[day])) for day in Weekday.values
    ]


def exceptions_upcoming(*, limit: int = 200) -> QuerySet[ScheduleException]:
    """Closures and leave not over yet, soonest first."""
    return (
        ScheduleException.objects.filter(ends_at__gt=timezone.now())
        .select_related("location", "practitioner", "practitioner__default_location", "created_by")
        .order_by("starts_at", "pk")[:limit]
    )
