from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.test import Client

from mesoclinic.access import Role
from mesoclinic.celery import app as celery_app
from mesoclinic.models import User
from tests.factories import UserFactory


@pytest.fixture(scope="session", autouse=True)
def static_manifest(django_db_blocker: object) -> None:
    """Pages are rendered with the production static storage, which needs the manifest."""
    from django.core.management import call_command

    call_command("collectstatic", interactive=False, verbosity=0)


@pytest.fixture(autouse=True)
def celery_eager(request: pytest.FixtureRequest) -> Iterator[None]:
    """Tasks run in-process unless a test starts a real worker (marker ``worker``)."""
    eager = request.node.get_closest_marker("worker") is None
    previous = celery_app.conf.task_always_eager, celery_app.conf.task_eager_propagates
    celery_app.conf.task_always_eager = eager
    celery_app.conf.task_eager_propagates = eager
    yield
    celery_app.conf.task_always_eager, celery_app.conf.task_eager_propagates = previous


@pytest.fixture(autouse=True)
def mail_folder(tmp_path_factory: pytest.TempPathFactory, settings: object) -> None:
    settings.EMAIL_FOLDER = tmp_path_factory.mktemp("mail")  # type: ignore[attr-defined]


@pytest.fixture(autouse=True)
def reference_data(request: pytest.FixtureRequest) -> None:
    """Transactional tests run after a flush that also removed what data migrations
    loaded (roles, allergens, contraindication rules): load it again for them."""
    marker = request.node.get_closest_marker("django_db")
    if not (marker and marker.kwargs.get("transaction")) and "live_server" not in request.fixturenames:
        return
    request.getfixturevalue("transactional_db")
    from django.apps import apps
    from django.contrib.auth.management import create_permissions
    from django.contrib.auth.models import Group, Permission

    from aftercare.seed import aftercare_templates_seed
    from mesoclinic.access import roles_sync
    from patients.vocabulary import vocabulary_seed

    create_permissions(apps.get_app_config("mesoclinic"), verbosity=0)
    roles_sync(Group, Permission)
    vocabulary_seed(apps)
    aftercare_templates_seed()


@pytest.fixture
def private_storage(tmp_path_factory: pytest.TempPathFactory, settings: object) -> object:
    """The private storage (photos, signatures, PDFs) in a fresh folder for this test."""
    from django.core.files.storage import storages

    folder = tmp_path_factory.mktemp("private")
    storages._storages.pop("private", None)
    settings.STORAGES = {  # type: ignore[attr-defined]
        **settings.STORAGES,  # type: ignore[attr-defined]
        "private": {**settings.STORAGES["private"], "OPTIONS": {"location": str(folder)}},  # type: ignore[attr-defined]
    }
    return folder


# Personas: alice the manager, paula the practitioner, fred at the front desk,
# and an anonymous visitor.
@pytest.fixture
def manager(db: None) -> User:
    return UserFactory(email="alice@example.test", full_name="Alice Manager", role=Role.MANAGER)


@pytest.fixture
def practitioner(db: None) -> User:
    return UserFactory(email="paula@example.test", full_name="Paula Practitioner", role=Role.PRACTITIONER)


@pytest.fixture
def front_desk(db: None) -> User:
    return UserFactory(email="fred@example.test", full_name="Fred Frontdesk", role=Role.FRONT_DESK)


def _client_for(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def manager_client(manager: User) -> Client:
    return _client_for(manager)


@pytest.fixture
def practitioner_client(practitioner: User) -> Client:
    return _client_for(practitioner)


@pytest.fixture
def front_desk_client(front_desk: User) -> Client:
    return _client_for(front_desk)


@pytest.fixture
def anonymous_client() -> Client:
    return Client()
