from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand
from django.db import transaction

from mesoclinic.access import Role
from mesoclinic.models import Clinic, Location, Room, User

DEMO_PASSWORD = "demo-clinic-2026"  # noqa: S105 - published demo login, see README  # not a password  # nosec B105

# name → (address, city of its demo patients, rooms)
DEMO_LOCATIONS = {
    "Paris – Marais": ("12 rue de Turenne, 75004 Paris", "Paris", ["Salle 1", "Salle 2", "Salle 3"]),
    "Lyon – Presqu'île": ("8 place Bellecour, 69002 Lyon", "Lyon", ["Cabinet A", "Cabinet B"]),
}

DEMO_USERS = [
    ("manager@demo.clinic", "Claire Dubois", Role.MANAGER, "Paris – Marais"),
    ("practitioner@demo.clinic", "Dr Hélène Martin", Role.PRACTITIONER, "Paris – Marais"),
    ("practitioner2@demo.clinic", "Dr Karim Benali", Role.PRACTITIONER, "Lyon – Presqu'île"),
    ("practitioner3@demo.clinic", "Dr Thomas Laurent", Role.PRACTITIONER, "Paris – Marais"),
    ("frontdesk@demo.clinic", "Julie Moreau", Role.FRONT_DESK, "Paris – Marais"),
]


class Command(BaseCommand):
    help = "Load the demo clinic, its locations, rooms, staff, patients, plans and calendar (idempotent)."

    @transaction.atomic
    def handle(self, *args: Any, **options: Any) -> None:
        clinic, _ = Clinic.objects.get_or_create(
            name=settings.CLINIC_NAME if settings.CLINIC_NAME != "MesoClinic" else "Clinique Lumière",
            defaults={"phone": "+33 1 42 00 00 00", "email": "contact@demo.clinic"},
        )
        locations: dict[str, Location] = {}
        for name, (address, _city, rooms) in DEMO_LOCATIONS.items():
            location, _ = Location.objects.get_or_create(
                clinic=clinic, name=name, defaults={"address": address, "time_zone": "Europe/Paris"}
            )
            locations[name] = location
            for room in rooms:
                Room.objects.get_or_create(location=location, name=room)
        for email, full_name, role, location_name in DEMO_USERS:
            user = User.objects.filter(email=email).first()
            if user is None:
                user = User.objects.create_user(
                    email, DEMO_PASSWORD, full_name=full_name, default_location=locations[location_name]
                )
            user.groups.add(Group.objects.get(name=role.value))
        from patients.demo import patients_demo_seed
        from treatments.catalogue_seed import catalogue_seed

        catalogue_seed()
        practitioners = list(
            User.objects.filter(email__in=["practitioner@demo.clinic", "practitioner2@demo.clinic"]).order_by("email")
        )
        manager = User.objects.get(email="manager@demo.clinic")
        created = patients_demo_seed(practitioners=practitioners, manager=manager, location=locations["Paris – Marais"])
        from treatments.demo import plans_demo_seed

        plans = plans_demo_seed()
        from treatments.demo_calendar import appointments_demo_seed

        front_desk = User.objects.get(email="frontdesk@demo.clinic")
        staff = User.objects.filter(email__in=[u[0] for u in DEMO_USERS if u[2] == Role.PRACTITIONER]).order_by("email")
        appointments = 0
        for index, (name, location) in enumerate(locations.items()):
            here = [p for p in staff if p.default_location_id == location.pk]
            appointments += appointments_demo_seed(
                location=location,
                practitioners=here,
                booked_by=front_desk,
                city=DEMO_LOCATIONS[name][1],
                # Dr Benali is away the week after next: the calendar shows his leave.
                on_leave=next((p for p in here if p.email == "practitioner2@demo.clinic"), None),
                first_patient_index=100 * index,
            )
        from aftercare.demo import messages_demo_seed

        messages_demo_seed()
        self.stdout.write(
            self.style.SUCCESS(
                f"demo data ready: {clinic.name}, {len(locations)} locations, {created} new patients, {plans} new plans,"
                f" {appointments} new appointments"
            )
        )
