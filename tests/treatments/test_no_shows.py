"""No-shows and late cancellations: per patient, and the report for the front desk."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from mesoclinic.access import Role
from mesoclinic.models import ReadEvent
from tests.factories import LocationFactory, PatientFactory, UserFactory
from treatments.models import Appointment
from treatments.selectors_booking import no_show_report, patient_attendance

PARIS = ZoneInfo("Europe/Paris")


@pytest.fixture
def clinic(db, front_desk):
    site = LocationFactory(time_zone="Europe/Paris")
    return {
        "site": site,
        "other_site": LocationFactory(clinic=site.clinic, time_zone="Europe/Paris"),
        "doctor": UserFactory(role=Role.PRACTITIONER),
        "desk": front_desk,
    }


_slot = iter(range(10**6))


def _add(clinic, patient, status: str, *, days_ago: int = 10, late: bool = False, site: str = "site") -> Appointment:
    # Each appointment its own hour, so completed ones never collide in the overlap constraint.
    start = datetime.combine(timezone.localdate() - timedelta(days=days_ago), datetime.min.time(), tzinfo=PARIS)
    start += timedelta(hours=next(_slot) % 20, minutes=(next(_slot) % 4) * 15)
    return Appointment.objects.create(
        location=clinic[site],
        practitioner=UserFactory(role=Role.PRACTITIONER) if status == "completed" else clinic["doctor"],
        patient=patient,
        kind="treatment",
        starts_at=start,
        ends_at=start + timedelta(minutes=15),
        status=status,
        cancelled_late=late,
        created_by=clinic["desk"],
    )


def test_patient_attendance_counts_each_status_in_one_query(clinic, django_assert_num_queries) -> None:
    patient = PatientFactory(created_by=clinic["desk"])
    for status, late in [
        ("no_show", False),
        ("no_show", False),
        ("cancelled", True),
        ("cancelled", False),
        ("completed", False),
        ("booked", False),
    ]:
        _add(clinic, patient, status, late=late)
    _add(clinic, PatientFactory(created_by=clinic["desk"]), "no_show")  # someone else
    with django_assert_num_queries(1):
        counts = patient_attendance(patient.pk)
    assert counts == {"no_shows": 2, "late_cancels": 1, "cancels": 2, "completed": 1}


def test_patient_attendance_of_a_new_patient_is_zero(clinic) -> None:
    patient = PatientFactory(created_by=clinic["desk"])
    assert patient_attendance(patient.pk) == {"no_shows": 0, "late_cancels": 0, "cancels": 0, "completed": 0}


def test_report_counts_orders_and_filters(clinic) -> None:
    often = PatientFactory(created_by=clinic["desk"], last_name="Often")
    late = PatientFactory(created_by=clinic["desk"], last_name="Late")
    reliable = PatientFactory(created_by=clinic["desk"], last_name="Reliable")
    elsewhere = PatientFactory(created_by=clinic["desk"], last_name="Elsewhere")
    _add(clinic, often, "no_show", days_ago=30)
    latest = _add(clinic, often, "no_show", days_ago=5)
    _add(clinic, often, "cancelled", late=True)
    _add(clinic, often, "no_show", days_ago=200)  # before the period
    _add(clinic, late, "cancelled", late=True)
    _add(clinic, late, "cancelled", late=False)
    _add(clinic, reliable, "completed")
    _add(clinic, reliable, "cancelled", late=False)
    _add(clinic, elsewhere, "no_show", site="other_site")
    today = timezone.localdate()
    rows = no_show_report(location=clinic["site"], since=today - timedelta(days=90), until=today)
    assert [(r.last_name, r.no_shows, r.late_cancels) for r in rows] == [("Often", 2, 1), ("Late", 0, 1)]
    assert rows[0].last_no_show == latest.starts_at.astimezone(PARIS).date() and rows[1].last_no_show is None
    everywhere = no_show_report(since=today - timedelta(days=90), until=today)
    assert {r.last_name for r in everywhere} == {"Often", "Late", "Elsewhere"}
    assert [r.last_name for r in no_show_report(since=today - timedelta(days=90), until=today, limit=1)] == ["Often"]


def test_report_dates_are_inclusive_days(clinic) -> None:
    patient = PatientFactory(created_by=clinic["desk"])
    missed = _add(clinic, patient, "no_show", days_ago=3)
    day = missed.starts_at.astimezone(PARIS).date()
    assert len(no_show_report(since=day, until=day)) == 1
    assert no_show_report(since=day + timedelta(days=1), until=day + timedelta(days=2)) == []


def test_front_desk_sees_the_report(front_desk_client: Client, clinic) -> None:
    patient = PatientFactory(created_by=clinic["desk"], last_name="Marchand", first_name="Lise")
    _add(clinic, patient, "no_show")
    _add(clinic, patient, "no_show", days_ago=100)  # outside the default 90 days
    response = front_desk_client.get(reverse("no_show_report"))
    assert response.status_code == 200
    page = response.content.decode()
    assert "MARCHAND Lise" in page and reverse("patient_detail", args=[patient.pk]) in page
    assert response.context["rows"][0].no_shows == 1
    assert f'value="{(timezone.localdate() - timedelta(days=90)).isoformat()}"' in page
    assert ReadEvent.objects.filter(what="no-show report", patient_id=None).count() == 1


def test_report_location_filter(manager_client: Client, clinic) -> None:
    _add(clinic, PatientFactory(created_by=clinic["desk"], last_name="Here"), "no_show")
    _add(clinic, PatientFactory(created_by=clinic["desk"], last_name="There"), "no_show", site="other_site")
    page = manager_client.get(reverse("no_show_report"), {"location": clinic["site"].pk}).content.decode()
    assert "HERE" in page and "THERE" not in page


def test_practitioner_is_refused_the_report(practitioner_client: Client) -> None:
    assert practitioner_client.get(reverse("no_show_report")).status_code == 403


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"since": "2030-02-01", "until": "2030-01-01"}, "The end date is before the start date."),
        ({"since": "yesterday"}, "Enter a valid date."),
        ({"location": "999999"}, "Select a valid choice"),
    ],
)
def test_report_bad_input(front_desk_client: Client, clinic, query: dict, message: str) -> None:
    response = front_desk_client.get(reverse("no_show_report"), query)
    assert response.status_code == 400 and message in response.content.decode()
    assert not ReadEvent.objects.filter(what="no-show report").exists()


def _count(client: Client, url: str) -> int:
    client.get(url)
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries.captured_queries)


def test_report_query_count_is_pinned(front_desk_client: Client, clinic) -> None:
    def add(n: int) -> None:
        for _index in range(n):
            patient = PatientFactory(created_by=clinic["desk"])
            _add(clinic, patient, "no_show")
            _add(clinic, patient, "cancelled", late=True)

    add(1)
    one = _count(front_desk_client, reverse("no_show_report"))
    add(12)
    thirteen = _count(front_desk_client, reverse("no_show_report"))
    assert one == thirteen == 6


def test_patient_page_shows_attendance(front_desk_client: Client, clinic) -> None:
    patient = PatientFactory(created_by=clinic["desk"])
    _add(clinic, patient, "no_show")
    _add(clinic, patient, "cancelled", late=True)
    url = reverse("patient_detail", args=[patient.pk])
    page = front_desk_client.get(url).content.decode()
    assert "No-shows: 1 · Late cancellations: 1" in page
    assert 'data-testid="attendance-warning"' not in page
    _add(clinic, patient, "no_show")
    page = front_desk_client.get(url).content.decode()
    assert "No-shows: 2 · Late cancellations: 1" in page and 'data-testid="attendance-warning"' in page


def test_report_default_period_is_the_last_90_days(front_desk_client: Client, clinic) -> None:
    response = front_desk_client.get(reverse("no_show_report"))
    form = response.context["form"]
    assert form.cleaned_data["since"] == timezone.localdate() - timedelta(days=90)
    assert form.cleaned_data["until"] == timezone.localdate()
    assert isinstance(form.cleaned_data["since"], date)
