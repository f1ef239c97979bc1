"""B4 data: one location, 10 rooms, 50 practitioners, 20,000 patients, 1,000,000 appointments.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/mesoclinic_bench1m \\
        .venv/bin/python manage.py bench_seed_calendar

Everything is generated in PostgreSQL (``INSERT … SELECT generate_series``), deterministic
and idempotent: a second run finds the rows and adds nothing. The history triggers are
skipped for the load (``pgtrigger.ignore``, no superuser needed): these rows are synthetic
and the calendar views never read their history. Refuses a database whose name does not
contain "bench" unless ``--force``: a million appointments is not something to put in a
clinic's database by a typo.

The slots never overlap, so the exclusion constraints accept them: each practitioner works
Monday to Friday, 09:00–13:00 and 14:00–18:00 in 30-minute slots (16 a day, in the
location's zone); on a given day ten of the practitioners hold a room each (practitioner p
on day d when (p + d) is a multiple of 5, room ((p + d) / 5) mod 10: ten distinct rooms),
the others see patients without one. The days run back from six months ahead, so about
80 % lie in the past (completed, some cancelled or no-show) and the rest are booked.
"""

from __future__ import annotations

import time as clock
from datetime import timedelta
from typing import Any

import pgtrigger
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection, models, transaction
from django.utils import timezone

from mesoclinic.access import Role
from mesoclinic.models import Clinic, Location, Room, User
from patients.models import Patient
from treatments.models import Appointment

LOCATION = "Bench – Centre"
SLOTS_PER_DAY = 16
DAYS_AHEAD = 182


def _defaults(model: type[models.Model], given: dict[str, str]) -> tuple[list[str], list[str], dict[str, Any]]:
    """Columns and SQL expressions for an INSERT … SELECT: ``given`` (column → expression),
    every other column its Django default. A column added later (with a default) needs no
    change here; one without a default fails loudly."""
    columns, expressions, params = [], [], {}
    for field in model._meta.concrete_fields:
        if field.primary_key or isinstance(field, models.GeneratedField):
            continue
        columns.append(connection.ops.quote_name(field.column))
        if field.column in given:
            expressions.append(given[field.column])
        else:
            params[f"default_{field.column}"] = field.get_db_prep_save(field.get_default(), connection)
            expressions.append(f"%(default_{field.column})s")
    return columns, expressions, params


def _bound(sql: str, params: dict[str, Any]) -> str:
    """The statement with its values in it: pgtrigger's ignore wrapper prepends a positional
    placeholder, which psycopg refuses to mix with named ones."""
    return connection.ops.compose_sql(sql, params)


class Command(BaseCommand):
    help = "Seed the B4 calendar benchmark data (1M appointments, 50 practitioners); idempotent."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--appointments", type=int, default=1_000_000)
        parser.add_argument("--practitioners", type=int, default=50)
        parser.add_argument("--patients", type=int, default=20_000)
        parser.add_argument("--force", action="store_true", help="seed a database whose name lacks 'bench'")

    def handle(self, *args: Any, **options: Any) -> None:
        name = connection.settings_dict["NAME"] or ""
        if "bench" not in name and not options["force"]:
            raise CommandError(f"Database {name!r} does not look like a benchmark database (use --force).")
        started = clock.monotonic()
        with transaction.atomic():
            location, practitioners, front_desk = self._staff(options["practitioners"])
            patients = self._patients(options["patients"], front_desk)
        with transaction.atomic():
            created = self._appointments(options["appointments"], location, practitioners, patients, front_desk)
        if created:
            with connection.cursor() as cursor:
                for table in (Appointment._meta.db_table, Patient._meta.db_table):
                    cursor.execute(f"ANALYZE {connection.ops.quote_name(table)}")
        total = Appointment.objects.filter(location=location).count()
        self.stdout.write(
            self.style.SUCCESS(
                f"bench calendar: location {location.pk}, {len(practitioners)} practitioners, "
                f"{len(patients)} patients, {created} new appointments ({total} in all) "
                f"in {clock.monotonic() - started:.0f} s"
            )
        )

    def _staff(self, count: int) -> tuple[Location, list[User], User]:
        clinic = Clinic.objects.filter(name="Clinique Bench").first() or Clinic.objects.create(name="Clinique Bench")
        location, _ = Location.objects.get_or_create(
            clinic=clinic,
            name=LOCATION,
            defaults={"address": "1 rue du Banc, 75001 Paris", "time_zone": "Europe/Paris"},
        )
        for number in range(1, 11):
            Room.objects.get_or_create(location=location, name=f"Salle {number:02d}")
        practitioner_group = Group.objects.get(name=Role.PRACTITIONER.value)
        practitioners = []
        for number in range(1, count + 1):
            email = f"bench.practitioner{number:02d}@bench.invalid"
            user = User.objects.filter(email=email).first()
            if user is None:
                # No password: the benchmark signs in by session, nobody signs in as them.
                user = User.objects.create_user(
                    email, None, full_name=f"Dr Bench {number:02d}", default_location=location
                )
                user.groups.add(practitioner_group)
            practitioners.append(user)
        front_desk = User.objects.filter(email="bench.frontdesk@bench.invalid").first()
        if front_desk is None:
            front_desk = User.objects.create_user(
                "bench.frontdesk@bench.invalid", None, full_name="Bench Front Desk", default_location=location
            )
            front_desk.groups.add(Group.objects.get(name=Role.FRONT_DESK.value))
        return location, practitioners, front_desk

    def _patients(self, count: int, created_by: User) -> list[int]:
        existing = Patient.objects.filter(email__startswith="bench.patient.", email__endswith="@bench.invalid").count()
        if existing < count:
            columns, expressions, params = _defaults(
                Patient,
                {
                    "first_name": "(ARRAY['Léa','Manon','Chloé','Emma','Julie','Thomas','Nicolas','Sarah'])[1 + mod(n, 8)]",
                    "last_name": "'Bench' || lpad(n::text, 6, '0')",
                    "birth_date": "DATE '1950-01-01' + mod(n * 37, 18000)",
                    "email": "'bench.patient.' || n || '@bench.invalid'",
                    "phone": "'+3370' || lpad(n::text, 7, '0')",
                    "city": "'Paris'",
                    "created_by_id": "%(created_by)s",
                    "created_at": "%(now)s",
                },
            )
            params |= {"created_by": created_by.pk, "now": timezone.now(), "first": existing + 1, "last": count}
            # Identifiers come from the model, values are parameters.
            sql = (
                f"INSERT INTO {Patient._meta.db_table} ({', '.join(columns)}) "  # noqa: S608  # identifiers from the models  # nosec B608
                f"SELECT {', '.join(expressions)} FROM generate_series(%(first)s, %(last)s) AS n"
            )
            with pgtrigger.ignore(), connection.cursor() as cursor:
                cursor.execute(_bound(sql, params))
        return list(
            Patient.objects.filter(email__startswith="bench.patient.", email__endswith="@bench.invalid")
            .order_by("pk")
            .values_list("pk", flat=True)[:count]
        )

    def _appointments(
        self, count: int, location: Location, practitioners: list[User], patients: list[int], created_by: User
    ) -> int:
        if Appointment.objects.filter(location=location).exists():
            return 0
        rooms = list(Room.objects.filter(location=location).order_by("name").values_list("pk", flat=True))[:10]
        per_day = SLOTS_PER_DAY * len(practitioners)
        weekdays = -(-count // per_day)  # rounded up
        last_day = timezone.localdate() + timedelta(days=DAYS_AHEAD)
        # i numbers the slots; h is a multiplicative hash of i (Knuth, the well-mixed high bits).
        # k (0–19) picks the kind, u (0–99) the status; both from a hash of the slot number.
        given = {
            "location_id": "%(location)s",
            "practitioner_id": "(%(practitioners)s::bigint[])[p + 1]",
            "room_id": "CASE WHEN mod(p + back, 5) = 0 THEN (%(rooms)s::bigint[])[1 + mod((p + back) / 5, 10)] END",
            "patient_id": "CASE WHEN k = 0 THEN NULL ELSE (%(patients)s::bigint[])[1 + mod(i * 7919, %(n_patients)s)] END",
            "kind": "CASE WHEN k = 0 THEN 'blocked' WHEN k < 5 THEN 'consultation' WHEN k < 10 THEN 'review' ELSE 'treatment' END",
            "starts_at": "starts_at",
            "ends_at": "starts_at + interval '30 minutes'",
            "status": (
                "CASE WHEN k = 0 THEN (CASE WHEN past THEN 'completed' ELSE 'booked' END)"
                " WHEN NOT past THEN (CASE WHEN u < 4 THEN 'cancelled' ELSE 'booked' END)"
                " WHEN u < 5 THEN 'no_show' WHEN u < 13 THEN 'cancelled' ELSE 'completed' END"
            ),
            "cancelled_late": "(k > 0 AND past AND u BETWEEN 5 AND 7)",
            "cancel_reason": (
                "CASE WHEN k > 0 AND ((past AND u BETWEEN 5 AND 12) OR (NOT past AND u < 4))"
                " THEN 'Bench: cancelled' ELSE '' END"
            ),
            "created_by_id": "%(created_by)s",
            "created_at": "starts_at - interval '10 days'",
            "revision": "CASE WHEN past THEN 2 ELSE 1 END",
        }
        columns, expressions, params = _defaults(Appointment, given)
        params |= {
            "location": location.pk,
            "practitioners": [p.pk for p in practitioners],
            "rooms": rooms,
            "patients": patients,
            "n_patients": len(patients),
            "zone": location.time_zone,
            "now": timezone.now(),
            "last_day": last_day,
            "weekdays": weekdays,
            "per_day": len(practitioners),
            "count": count,
            "created_by": created_by.pk,
        }
        # Identifiers come from the models, values are parameters.
        sql = f"""
            WITH days AS (
                SELECT day::date AS day, (row_number() OVER (ORDER BY day DESC) - 1)::int AS back
                FROM generate_series(
                    %(last_day)s::date - %(weekdays)s * 2, %(last_day)s::date, interval '1 day'
                ) AS day
                WHERE extract(isodow FROM day) < 6
            ), slots AS (
                SELECT day, back, p, s, ((back * %(per_day)s + p) * {SLOTS_PER_DAY} + s)::bigint AS i
                FROM days, generate_series(0, %(per_day)s - 1) AS p, generate_series(0, {SLOTS_PER_DAY - 1}) AS s
                WHERE back < %(weekdays)s
                ORDER BY i
                LIMIT %(count)s
            ), timed AS (
                SELECT slots.*, (day + make_time(
                    CASE WHEN s < 8 THEN 9 ELSE 14 END + mod(s, 8) / 2, 30 * mod(s, 2), 0
                )) AT TIME ZONE %(zone)s AS starts_at,
                mod(i * 2654435761, 4294967296) / 65536 AS h
                FROM slots
            ), rolled AS (
                SELECT timed.*, mod(h / 100, 20) AS k, mod(h, 100) AS u, starts_at < %(now)s AS past FROM timed
            )
            INSERT INTO {Appointment._meta.db_table} ({", ".join(columns)})
            SELECT {", ".join(expressions)} FROM rolled
        """  # noqa: S608
        with pgtrigger.ignore(), connection.cursor() as cursor:
            cursor.execute(_bound(sql, params))
            return cursor.rowcount
