from __future__ import annotations

from typing import Any

import factory
from django.contrib.auth.models import Group

from mesoclinic.access import Role, roles_sync
from mesoclinic.models import Clinic, Location, Room, User

PASSWORD = "correct-horse-battery-staple"


def role_group(role: Role) -> Group:
    """The role's group; transactional tests flush what the data migration created."""
    group = Group.objects.filter(name=role.value).first()
    if group is None:
        from django.apps import apps
        from django.contrib.auth.management import create_permissions
        from django.contrib.auth.models import Permission

        create_permissions(apps.get_app_config("mesoclinic"), verbosity=0)
        roles_sync(Group, Permission)
        group = Group.objects.get(name=role.value)
    return group


class ClinicFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Clinic

    name = "Clinique Test"


class LocationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Location

    clinic = factory.SubFactory(ClinicFactory)
    name = factory.Sequence(lambda n: f"Site {n}")


class RoomFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Room

    location = factory.SubFactory(LocationFactory)
    name = factory.Sequence(lambda n: f"Room {n}")


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"staff{n}@example.test")
    full_name = factory.Faker("name", locale="fr_FR")
    password = factory.django.Password(PASSWORD)

    @factory.post_generation
    def role(self, create: bool, extracted: Role | None, **kwargs: Any) -> None:
        if create and extracted:
            self.groups.add(role_group(extracted))


class PatientFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "patients.Patient"

    first_name = factory.Faker("first_name", locale="fr_FR")
    last_name = factory.Faker("last_name", locale="fr_FR")
    birth_date = factory.Faker("date_of_birth", minimum_age=18, maximum_age=80)
    sex = "female"
    email = factory.Sequence(lambda n: f"patient{n}@example.test")
    phone = factory.Sequence(lambda n: f"+336{n:08d}")
    city = "Paris"
    created_by = factory.SubFactory(UserFactory)
