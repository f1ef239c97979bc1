from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from mesoclinic.models import ReadEvent
from patients.models import Patient
from tests.factories import PatientFactory

VALID = {
    "first_name": "Camille",
    "last_name": "Rousseau",
    "birth_date": "1988-04-02",
    "sex": "female",
    "email": "camille@example.fr",
    "phone": "06 11 22 33 44",
    "country": "FR",
    "preferred_language": "fr",
    "email_transactional": "on",
}


@pytest.fixture
def patient(manager) -> Patient:
    return PatientFactory(first_name="Léa", last_name="Bernard", created_by=manager)


# --- role × URL -------------------------------------------------------------------------

PATIENT_URLS = ["patient_detail", "patient_update"]


@pytest.mark.django_db
@pytest.mark.parametrize("name", ["patient_list", "patient_create"])
def test_anonymous_is_sent_to_login(anonymous_client: Client, name: str) -> None:
    response = anonymous_client.get(reverse(name))
    assert response.status_code == 302 and "/accounts/login/" in response.url


@pytest.mark.parametrize("persona", ["front_desk_client", "practitioner_client", "manager_client"])
@pytest.mark.parametrize("name", ["patient_list", "patient_create"])
def test_every_role_reaches_the_registry(request, persona: str, name: str) -> None:
    assert request.getfixturevalue(persona).get(reverse(name)).status_code == 200


@pytest.mark.parametrize("persona", ["front_desk_client", "practitioner_client", "manager_client"])
@pytest.mark.parametrize("name", PATIENT_URLS)
def test_patient_pages_by_role(request, persona: str, name: str, patient: Patient) -> None:
    assert request.getfixturevalue(persona).get(reverse(name, args=[patient.pk])).status_code == 200


def test_export_is_for_managers_only(front_desk_client, practitioner_client, anonymous_client, patient) -> None:
    url = reverse("patient_export", args=[patient.pk])
    assert front_desk_client.get(url).status_code == 403
    assert practitioner_client.get(url).status_code == 403
    assert anonymous_client.get(url).status_code == 302


def test_archive_is_refused_to_front_desk(front_desk_client, patient) -> None:
    response = front_desk_client.post(reverse("patient_archive", args=[patient.pk]), {"reason": "x"})
    assert response.status_code == 403
    patient.refresh_from_db()
    assert patient.status == "active"


def test_front_desk_sees_no_clinical_controls(front_desk_client, patient) -> None:
    page = front_desk_client.get(reverse("patient_detail", args=[patient.pk])).content.decode()
    assert "Archive record" not in page and "Export record" not in page


def test_unknown_patient_is_404(manager_client) -> None:
    assert manager_client.get(reverse("patient_detail", args=[999999])).status_code == 404


# --- create, duplicates, bad input -------------------------------------------------------


def test_create_patient(practitioner_client: Client, practitioner) -> None:
    response = practitioner_client.post(reverse("patient_create"), VALID)
    patient = Patient.objects.get(last_name="Rousseau")
    assert response.status_code == 302 and response.url == reverse("patient_detail", args=[patient.pk])
    assert str(patient.phone) == "+33611223344"
    assert patient.created_by == practitioner
    assert patient.search_name == "rousseau camille"


def test_duplicate_is_warned_and_linked_then_created_on_confirmation(front_desk_client: Client, patient) -> None:
    data = {
        **VALID,
        "first_name": "Lea",
        "last_name": "BERNARD",
        "birth_date": patient.birth_date.isoformat(),
        "email": "",
        "phone": "",
    }
    response = front_desk_client.post(reverse("patient_create"), data)
    page = response.content.decode()
    assert response.status_code == 200
    assert "may already have a record" in page
    assert reverse("patient_detail", args=[patient.pk]) in page
    assert Patient.objects.count() == 1
    response = front_desk_client.post(reverse("patient_create"), {**data, "confirm_new": "1"})
    assert response.status_code == 302
    assert Patient.objects.count() == 2


def test_same_email_is_a_duplicate(front_desk_client: Client, patient) -> None:
    response = front_desk_client.post(reverse("patient_create"), {**VALID, "email": patient.email.upper()})
    assert "may already have a record" in response.content.decode()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"birth_date": (timezone.localdate() + timedelta(days=1)).isoformat()}, "in the future"),
        ({"birth_date": "1850-01-01"}, "more than 120 years"),
        ({"birth_date": "31/02/1990"}, "Enter a valid date"),
        ({"email": "camille@"}, "valid email"),
        ({"phone": "12"}, "valid phone number"),
        ({"first_name": "<script>alert(1)</script>"}, "letters, spaces"),
        ({"last_name": "Robert'); DROP TABLE patients_patient;--"}, "letters, spaces"),
        ({"first_name": ""}, "required"),
        ({"country": "France"}, "at most 2 characters"),
        ({"country": "F1"}, "two-letter country code"),
        ({"city": "Paris\x07"}, "special characters"),
        ({"first_name": "A" * 101}, "at most 100 characters"),
    ],
)
def test_bad_input_gives_a_clear_error_and_saves_nothing(
    practitioner_client: Client, changes: dict, message: str
) -> None:
    response = practitioner_client.post(reverse("patient_create"), {**VALID, **changes})
    assert response.status_code == 400
    page = response.content.decode()
    assert message in page
    assert "<script>alert(1)</script>" not in page
    assert not Patient.objects.exists()


def test_stored_text_is_escaped(manager_client: Client, patient) -> None:
    Patient.objects.filter(pk=patient.pk).update(city='<img src=x onerror="alert(1)">')
    page = manager_client.get(reverse("patient_detail", args=[patient.pk])).content.decode()
    assert "<img src=x" not in page and "&lt;img src=x" in page


# --- corrections keep history, archive -----------------------------------------------------


def test_correction_keeps_the_old_value_with_who_and_when(practitioner_client: Client, practitioner, patient) -> None:
    data = {
        **VALID,
        "first_name": "Léa",
        "last_name": "Bernard-Petit",
        "birth_date": patient.birth_date.isoformat(),
        "email": patient.email,
        "phone": str(patient.phone),
    }
    response = practitioner_client.post(reverse("patient_update", args=[patient.pk]), data)
    assert response.status_code == 302
    events = list(patient.events.order_by("pgh_id"))
    assert [e.last_name for e in events] == ["Bernard", "Bernard-Petit"]
    assert events[-1].pgh_context.metadata["user"] == practitioner.pk


def test_archive_and_restore(practitioner_client: Client, patient) -> None:
    response = practitioner_client.post(reverse("patient_archive", args=[patient.pk]), {"reason": "moved abroad"})
    assert response.status_code == 302
    patient.refresh_from_db()
    assert patient.status == "archived" and patient.archived_reason == "moved abroad"
    practitioner_client.post(reverse("patient_restore", args=[patient.pk]))
    patient.refresh_from_db()
    assert patient.status == "active" and patient.archived_at is None


def test_archive_without_reason_changes_nothing(practitioner_client: Client, patient) -> None:
    practitioner_client.post(reverse("patient_archive", args=[patient.pk]), {"reason": "  "})
    patient.refresh_from_db()
    assert patient.status == "active"


# --- audit of reads, export --------------------------------------------------------------------


def test_each_patient_page_view_writes_one_read_event(front_desk_client, front_desk, patient) -> None:
    front_desk_client.get(reverse("patient_detail", args=[patient.pk]))
    event = ReadEvent.objects.get()
    assert (event.user, event.patient_id, event.action) == (front_desk, patient.pk, "view")


def test_export_contains_this_patient_only(manager_client: Client, manager, patient) -> None:
    other = PatientFactory(first_name="Autre", last_name="Personne", created_by=manager)
    response = manager_client.get(reverse("patient_export", args=[patient.pk]))
    assert response.status_code == 200 and response["Content-Disposition"].startswith("attachment")
    body = response.content.decode()
    data = json.loads(body)
    assert data["patient"]["id"] == patient.pk and data["patient"]["last_name"] == "Bernard"
    assert other.last_name not in body and other.email not in body
    assert ReadEvent.objects.filter(patient_id=patient.pk, action="export").count() == 1


# --- pinned query counts -------------------------------------------------------------------


def _count(client: Client, url: str) -> int:
    client.get(url)  # warm the session
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(url).status_code == 200
    return len(ctx.captured_queries)


def test_list_query_count_is_the_same_for_1_and_50_patients(manager_client: Client, manager) -> None:
    PatientFactory(created_by=manager)
    one = _count(manager_client, reverse("patient_list"))
    for _ in range(49):
        PatientFactory(created_by=manager)
    assert _count(manager_client, reverse("patient_list")) == one == 4


def test_patient_page_query_count_for_front_desk(front_desk_client: Client, patient) -> None:
    assert _count(front_desk_client, reverse("patient_detail", args=[patient.pk])) == 7


def test_birth_date_today_is_accepted(practitioner_client: Client) -> None:
    today = timezone.localdate()
    response = practitioner_client.post(reverse("patient_create"), {**VALID, "birth_date": today.isoformat()})
    assert response.status_code == 302
    assert Patient.objects.get().birth_date == today


def test_search_page_query_count_is_the_same_for_1_and_40_matches(front_desk_client: Client, manager) -> None:
    PatientFactory(last_name="Martin", created_by=manager)
    url = reverse("patient_list") + "?q=martin"
    one = _count(front_desk_client, url)
    for _ in range(39):
        PatientFactory(last_name="Martin", created_by=manager)
    assert _count(front_desk_client, url) == one == 4


def test_deep_list_page_costs_the_queries_of_page_one(front_desk_client: Client, manager) -> None:
    for _ in range(60):
        PatientFactory(created_by=manager)
    first = front_desk_client.get(reverse("patient_list"))
    after = first.context["page"].next_cursor
    assert after
    page_one = _count(front_desk_client, reverse("patient_list"))
    assert _count(front_desk_client, reverse("patient_list") + f"?after={after}") == page_one


@pytest.mark.parametrize("persona", ["front_desk_client", "practitioner_client"])
def test_patient_page_query_count_is_the_same_for_a_new_and_a_busy_record(request, persona: str, patient) -> None:
    """A record with treatment courses, consents and sessions (the benchmark's seed, small)
    costs the queries of a record with nothing yet."""
    from django.core.management import call_command

    from treatments.models import TreatmentSession

    client = request.getfixturevalue(persona)
    new = _count(client, reverse("patient_detail", args=[patient.pk]))
    call_command("bench_seed_patients", patients=5, sessions=40, practitioners=2, force=True, verbosity=0)
    busy = TreatmentSession.objects.values_list("patient_id", flat=True).order_by("patient_id").first()
    assert TreatmentSession.objects.filter(patient_id=busy).count() >= 4
    assert _count(client, reverse("patient_detail", args=[busy])) == new


def test_list_rows_link_to_each_patient_page(front_desk_client: Client, patient) -> None:
    page = front_desk_client.get(reverse("patient_list")).content.decode()
    assert f'href="{reverse("patient_detail", args=[patient.pk])}"' in page
