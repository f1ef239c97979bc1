from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db.models import Count, Q
from django.utils import timezone

from treatments.models import (
    ACTIVE_STATUSES,
    Appointment,
    AppointmentChange,
    OpeningHours,
    ScheduleException,
    WorkingHours,
)


def _counts() -> tuple[int, ...]:
    return (
        Appointment.objects.count(),
        AppointmentChange.objects.count(),
        OpeningHours.objects.count(),
        WorkingHours.objects.count(),
        ScheduleException.objects.count(),
    )


@pytest.mark.django_db
def test_demo_calendar_is_populated_varied_and_seeded_once(private_storage) -> None:
    call_command("demo_seed")
    first = _counts()
    call_command("demo_seed")
    assert _counts() == first, "a second demo_seed must add nothing"

    now = timezone.now()
    statuses = set(Appointment.objects.values_list("status", flat=True))
    expected = {"booked", "completed", "cancelled", "no_show"}
    if Appointment.objects.filter(starts_at__date=timezone.localdate(), kind__in=["consultation", "review"]).exists():
        expected.add("checked_in")  # not on a Sunday: nobody is booked
    assert statuses == expected
    assert Appointment.objects.filter(starts_at__lt=now - timedelta(days=14)).count() > 50
    assert Appointment.objects.filter(starts_at__gt=now + timedelta(days=14), status="booked").count() > 20
    assert not Appointment.objects.filter(starts_at__gt=now, status__in=["completed", "no_show"]).exists()
    assert Appointment.objects.filter(status="cancelled", cancelled_late=True).exclude(cancel_reason="").exists()
    assert Appointment.objects.filter(kind="treatment", plan__isnull=False, status="booked").exists()
    assert Appointment.objects.filter(kind="blocked", patient__isnull=True, note="Staff meeting").exists()
    repeat_no_shows = (
        Appointment.objects.filter(status="no_show").values("patient").annotate(n=Count("pk")).filter(n__gte=2)
    )
    assert repeat_no_shows.count() >= 2
    # Every appointment has its booking in the history, and each status change its line.
    assert AppointmentChange.objects.filter(action="booked").count() == first[0]
    for status in ("completed", "cancelled", "no_show", "checked_in"):
        assert (
            AppointmentChange.objects.filter(action=status).count() >= Appointment.objects.filter(status=status).count()
        )

    # Hours, the holiday and the leave week are data, and nothing is booked in them.
    assert OpeningHours.objects.filter(weekday=6).count() == 0
    assert OpeningHours.objects.filter(weekday=5).count() == 2  # Saturday morning, both sites
    assert WorkingHours.objects.values("practitioner").distinct().count() == 3
    closure = ScheduleException.objects.get(location__name="Paris – Marais")
    leave = ScheduleException.objects.get(practitioner__isnull=False)
    assert closure.reason.startswith("Public holiday") and closure.starts_at > now
    with_patients = Appointment.objects.filter(status__in=ACTIVE_STATUSES, patient__isnull=False)
    assert not with_patients.filter(starts_at__lt=closure.ends_at, ends_at__gt=closure.starts_at).exists()
    assert not with_patients.filter(
        Q(practitioner=leave.practitioner), starts_at__lt=leave.ends_at, ends_at__gt=leave.starts_at
    ).exists()
    assert not with_patients.filter(starts_at__week_day=1).exists()  # Sunday
