from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from aftercare.models import OutboundMessage
from mesoclinic.access import Role, user_roles
from mesoclinic.models import User
from tests.factories import LocationFactory


def test_manager_creates_a_staff_account_that_gets_a_password_link(
    manager_client: Client, django_capture_on_commit_callbacks, mailoutbox: list
) -> None:
    location = LocationFactory()
    with django_capture_on_commit_callbacks(execute=True):
        response = manager_client.post(
            reverse("staff_create"),
            {
                "full_name": "Dr Nadia Roux",
                "email": "Nadia@Example.test",
                "role": "practitioner",
                "default_location": location.pk,
            },
        )
    assert response.status_code == 302
    user = User.objects.get(email="nadia@example.test")
    assert not user.has_usable_password()
    assert user_roles(user) == {Role.PRACTITIONER}
    assert OutboundMessage.objects.get(kind="staff_password").status == OutboundMessage.Status.SENT
    assert "/accounts/password/reset/key/" in mailoutbox[0].body


@pytest.mark.parametrize(
    ("data", "field_error"),
    [
        ({"full_name": "", "email": "a@b.test", "role": "manager"}, "This field is required"),
        ({"full_name": "<script>alert(1)</script>", "email": "a@b.test", "role": "manager"}, "cannot contain"),
        ({"full_name": "Ok Name", "email": "not-an-email", "role": "manager"}, "valid email"),
        ({"full_name": "Ok Name", "email": "a@b.test", "role": "superhero"}, "Select a valid choice"),
        ({"full_name": "Ok Name", "email": "alice@example.test", "role": "manager"}, "already exists"),
    ],
)
def test_bad_staff_input_is_refused_with_a_message(manager_client: Client, data: dict, field_error: str) -> None:
    before = User.objects.count()
    response = manager_client.post(reverse("staff_create"), data)
    assert response.status_code == 400
    assert field_error in response.content.decode()
    assert "<script>alert(1)</script>" not in response.content.decode()
    assert User.objects.count() == before


def test_manager_changes_role_and_deactivates(manager_client: Client, practitioner: User) -> None:
    response = manager_client.post(
        reverse("staff_update", args=[practitioner.pk]), {"full_name": "Paula P", "role": "front_desk"}
    )
    assert response.status_code == 302
    practitioner.refresh_from_db()
    assert not practitioner.is_active
    assert user_roles(User.objects.get(pk=practitioner.pk)) == frozenset()  # inactive: no roles at all
    assert set(practitioner.groups.values_list("name", flat=True)) == {"front_desk"}


def test_manager_cannot_lock_themselves_out(manager_client: Client, manager: User) -> None:
    response = manager_client.post(
        reverse("staff_update", args=[manager.pk]), {"full_name": "Alice", "role": "front_desk", "is_active": "on"}
    )
    assert response.status_code == 400
    assert "your own manager role" in response.content.decode()
    assert user_roles(User.objects.get(pk=manager.pk)) == {Role.MANAGER}


def test_staff_list_query_count_is_constant(manager_client: Client) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from tests.factories import UserFactory

    def count() -> int:
        with CaptureQueriesContext(connection) as ctx:
            manager_client.get(reverse("staff_list"))
        return len(ctx.captured_queries)

    count()
    UserFactory(role=Role.PRACTITIONER)
    few = count()
    for _ in range(15):
        UserFactory(role=Role.FRONT_DESK)
    assert count() == few == 5
