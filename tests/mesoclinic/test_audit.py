from __future__ import annotations

import pytest
from django.apps import apps
from django.db import IntegrityError, InternalError, connection, transaction
from django.test import Client, RequestFactory
from django.urls import reverse
from pghistory.models import Context, Event

from mesoclinic.access import patient_access
from mesoclinic.audit import APPEND_ONLY_TRIGGER
from mesoclinic.models import ReadEvent, User

# session, user, roles, filter-form users, changes, change users, reads
AUDIT_PAGE_QUERIES = 6
DatabaseRefusal = (InternalError, IntegrityError, Exception)


def _event_model(model):
    return apps.get_model(model._meta.app_label, f"{model.__name__}Event")


def test_every_history_table_is_append_only() -> None:
    event_models = [m for m in apps.get_models() if issubclass(m, Event) and not m._meta.proxy]
    assert event_models, "no audited models found"
    for model in [*event_models, ReadEvent]:
        names = [t.name for t in getattr(model._meta, "triggers", [])]
        assert APPEND_ONLY_TRIGGER in names, f"{model.__name__} is not append-only"


def test_a_change_through_the_app_writes_an_audit_row_with_the_user(
    manager_client: Client, manager: User, practitioner: User
) -> None:
    response = manager_client.post(
        reverse("staff_update", args=[practitioner.pk]),
        {"full_name": "Paula Renamed", "role": "practitioner", "is_active": "on"},
    )
    assert response.status_code == 302
    UserEvent = _event_model(User)
    event = UserEvent.objects.filter(pgh_obj_id=practitioner.pk, full_name="Paula Renamed").get()
    assert event.pgh_context.metadata["user"] == manager.pk
    assert event.pgh_context.metadata["url"] == reverse("staff_update", args=[practitioner.pk])


def test_history_rows_cannot_be_updated_or_deleted(practitioner: User) -> None:
    UserEvent = _event_model(User)
    assert UserEvent.objects.filter(pgh_obj_id=practitioner.pk).exists()
    with pytest.raises(DatabaseRefusal), transaction.atomic():
        UserEvent.objects.filter(pgh_obj_id=practitioner.pk).update(full_name="forged")
    with pytest.raises(DatabaseRefusal), transaction.atomic():
        UserEvent.objects.filter(pgh_obj_id=practitioner.pk).delete()
    with pytest.raises(DatabaseRefusal), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {UserEvent._meta.db_table}")  # noqa: S608
    assert UserEvent.objects.filter(pgh_obj_id=practitioner.pk).exclude(full_name="forged").exists()


def test_read_events_cannot_be_updated_or_deleted(manager: User) -> None:
    event = ReadEvent.objects.create(user=manager, patient_id=7, what="patient page", path="/p/7/", method="GET")
    with pytest.raises(DatabaseRefusal), transaction.atomic():
        ReadEvent.objects.filter(pk=event.pk).update(patient_id=8)
    with pytest.raises(DatabaseRefusal), transaction.atomic():
        ReadEvent.objects.filter(pk=event.pk).delete()
    assert ReadEvent.objects.get(pk=event.pk).patient_id == 7


def test_audit_context_cannot_be_deleted_or_reassigned(manager_client: Client, practitioner: User) -> None:
    manager_client.post(
        reverse("staff_update", args=[practitioner.pk]),
        {"full_name": "Paula Again", "role": "practitioner", "is_active": "on"},
    )
    context = Context.objects.latest("created_at")
    with pytest.raises(DatabaseRefusal), transaction.atomic():
        Context.objects.filter(pk=context.pk).delete()
    with pytest.raises(DatabaseRefusal), transaction.atomic():
        Context.objects.filter(pk=context.pk).update(metadata={"user": 999, "url": "/"})


@pytest.mark.parametrize(
    ("persona", "clinical", "allowed"),
    [
        ("practitioner", True, True),
        ("manager", True, True),
        ("front_desk", True, False),
        ("front_desk", False, True),
    ],
)
def test_patient_access_checks_role_and_writes_one_read_event(
    request: pytest.FixtureRequest, persona: str, clinical: bool, allowed: bool
) -> None:
    from django.http import Http404

    user = request.getfixturevalue(persona)
    http_request = RequestFactory().get("/patients/42/", REMOTE_ADDR="198.51.100.7")
    http_request.user = user
    if allowed:
        patient_access(http_request, patient_id=42, clinical=clinical, what="patient page")
        event = ReadEvent.objects.get()
        assert (event.user, event.patient_id, event.ip, event.path) == (user, 42, "198.51.100.7", "/patients/42/")
    else:
        with pytest.raises(Http404):
            patient_access(http_request, patient_id=42, clinical=clinical, what="patient page")
        assert not ReadEvent.objects.exists()


def test_audit_page_filters_by_user_patient_and_date(manager_client: Client, manager: User, practitioner: User) -> None:
    ReadEvent.objects.create(user=practitioner, patient_id=11, what="history", path="/p/11/", method="GET")
    ReadEvent.objects.create(user=manager, patient_id=12, what="plan", path="/p/12/", method="GET")
    page = manager_client.get(reverse("audit_log"), {"patient": 11}).content.decode()
    assert "/p/11/" not in page  # paths are not shown; the what is
    assert "history" in page and "· plan" not in page
    page = manager_client.get(reverse("audit_log"), {"user": manager.pk}).content.decode()
    assert "· plan" in page and "· history" not in page
    page = manager_client.get(
        reverse("audit_log"), {"date_from": "2001-01-01", "date_to": "2001-01-02"}
    ).content.decode()
    assert "No record views match." in page


def test_audit_page_rejects_bad_filters_with_a_message(manager_client: Client) -> None:
    response = manager_client.get(reverse("audit_log"), {"date_from": "2026-02-10", "date_to": "2026-02-01"})
    assert response.status_code == 400
    assert "end date is before the start date" in response.content.decode()
    assert manager_client.get(reverse("audit_log"), {"patient": "abc"}).status_code == 400


def test_audit_page_query_count_is_constant(manager_client: Client, practitioner: User) -> None:
    def page_queries() -> int:
        from django.db import connection as conn
        from django.test.utils import CaptureQueriesContext

        with CaptureQueriesContext(conn) as ctx:
            assert manager_client.get(reverse("audit_log")).status_code == 200
        return len(ctx.captured_queries)

    page_queries()  # the first request of a session also writes the session
    ReadEvent.objects.create(user=practitioner, patient_id=1, what="x", path="/", method="GET")
    few = page_queries()
    for n in range(30):
        ReadEvent.objects.create(user=practitioner, patient_id=n, what="x", path="/", method="GET")
    assert page_queries() == few == AUDIT_PAGE_QUERIES


def test_client_ip_behind_the_proxy_is_the_forwarded_client(settings) -> None:
    from mesoclinic.audit import client_ip

    request = RequestFactory().get("/", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="1.2.3.4, 198.51.100.9")
    settings.BEHIND_PROXY = False
    assert client_ip(request) == "10.0.0.2"
    settings.BEHIND_PROXY = True
    assert client_ip(request) == "198.51.100.9"
