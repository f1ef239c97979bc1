"""0 partial plans: a plan write that dies half-way leaves nothing half-written.

The plan services run in one transaction: a plan, its areas and their products (and the
audit trail's event rows, written by triggers in the same transaction) are there whole
or not at all. Here the database connection is killed (``pg_terminate_backend``, what a
server restart or a failover does to a session) right after the first area row is
written, and an error is raised at the very end of an edit; afterwards a fresh connection
finds no plan without its areas, no area without its products, no stray event row, and
an edited plan exactly as it was.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any
from unittest.mock import patch

import psycopg
import pytest
from django.db import InterfaceError, OperationalError, connection
from django.db.models.signals import post_save

from mesoclinic.models import User
from patients.models import Patient
from patients.services.history import history_record
from tests.factories import PatientFactory
from treatments.catalogue_seed import catalogue_seed
from treatments.models import PlanArea, PlanProduct, ProtocolTemplate, TreatmentPlan
from treatments.services import plans as plan_services
from treatments.services.plans import AreaInput, plan_create, plan_save

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def patient(practitioner: User) -> Patient:
    catalogue_seed()
    patient = PatientFactory(first_name="Nina", last_name="Petit", created_by=practitioner)
    history_record(patient=patient, recorded_by=practitioner, conditions=[], weight_kg=Decimal("60"))
    return patient


def _kill_own_session() -> None:
    """End this process's database session from another one, as a restart would."""
    db = connection.settings_dict
    pid = connection.connection.info.backend_pid
    with psycopg.connect(
        host=db["HOST"] or None,
        port=db["PORT"] or None,
        user=db["USER"],
        password=db["PASSWORD"] or None,
        dbname=db["NAME"],
        autocommit=True,
    ) as other:
        assert other.execute("SELECT pg_terminate_backend(%s)", [pid]).fetchone() == (True,)


@contextmanager
def _connection_killed_after_first(model: type) -> Iterator[list[int]]:
    saved: list[int] = []

    def after_save(sender: type, instance: Any, created: bool, **kwargs: Any) -> None:
        saved.append(instance.pk)
        if len(saved) == 1:
            _kill_own_session()

    post_save.connect(after_save, sender=model, weak=False)
    try:
        yield saved
    finally:
        post_save.disconnect(after_save, sender=model)
        connection.close()  # the dead one: the next query opens a new connection


def _event_count(table: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {table}")  # noqa: S608 - fixed table names
        return cursor.fetchone()[0]


EVENT_TABLES = ("treatments_treatmentplanevent", "treatments_planareaevent", "treatments_planproductevent")


def test_a_plan_created_from_a_protocol_is_all_or_nothing_when_the_connection_dies(
    patient: Patient, practitioner: User
) -> None:
    protocol = ProtocolTemplate.objects.get(name__startswith="Lipolysis")
    assert len(protocol.areas) >= 1 and protocol.areas[0]["products"]
    events_before = {table: _event_count(table) for table in EVENT_TABLES}

    with _connection_killed_after_first(PlanArea) as saved, pytest.raises((OperationalError, InterfaceError)):
        plan_create(patient=patient, practitioner=practitioner, concern="fat_reduction", protocol=protocol)

    assert saved, "the first area row was written before the connection died"
    assert not TreatmentPlan.objects.filter(patient=patient).exists()
    assert not PlanArea.objects.filter(pk__in=saved).exists()
    assert not PlanProduct.objects.filter(plan_area__plan__patient=patient).exists()
    assert {table: _event_count(table) for table in EVENT_TABLES} == events_before
    # And the same call on a healthy connection makes the whole plan.
    plan = plan_create(patient=patient, practitioner=practitioner, concern="fat_reduction", protocol=protocol)
    assert plan.areas.count() == len(protocol.areas)
    assert PlanProduct.objects.filter(plan_area__plan=plan).count() == sum(len(a["products"]) for a in protocol.areas)


def _area_inputs(plan: TreatmentPlan, *, points_delta: int) -> list[AreaInput]:
    return [
        AreaInput(
            area=area.area,
            technique=area.technique,
            depth_mm=area.depth_mm,
            needle_gauge=area.needle_gauge,
            needle_length_mm=area.needle_length_mm,
            spacing_mm=area.spacing_mm,
            points=area.points + points_delta,
            volume_per_point_ml=area.volume_per_point_ml,
            products=[(item.product, item.volume_ml) for item in area.products.all()],
        )
        for area in plan.areas.order_by("position")
    ]


def _snapshot(plan: TreatmentPlan) -> tuple[Any, ...]:
    plan.refresh_from_db()
    areas = list(PlanArea.objects.filter(plan=plan).order_by("pk").values_list("pk", "area", "points"))
    products = list(
        PlanProduct.objects.filter(plan_area__plan=plan).order_by("pk").values_list("pk", "product_id", "volume_ml")
    )
    return plan.revision, plan.status, plan.goal, areas, products


@pytest.mark.parametrize("failure", ["connection killed after the first area", "error at the very end"])
def test_an_edit_that_dies_half_way_leaves_the_plan_as_it_was(
    patient: Patient, practitioner: User, failure: str
) -> None:
    protocol = ProtocolTemplate.objects.get(name__startswith="Lipolysis")
    plan = plan_create(patient=patient, practitioner=practitioner, concern="fat_reduction", protocol=protocol)
    before = _snapshot(plan)
    events_before = {table: _event_count(table) for table in EVENT_TABLES}
    edit = {
        "plan": plan,
        "revision": plan.revision,
        "editor": practitioner,
        "goal": "A goal that must not be half-saved",
        "sessions_planned": plan.sessions_planned,
        "min_interval_days": plan.min_interval_days,
        "maintenance_interval_days": plan.maintenance_interval_days,
        "review_after_days": plan.review_after_days,
        "areas": _area_inputs(plan, points_delta=-2),
    }
    if failure.startswith("connection"):
        with _connection_killed_after_first(PlanArea) as saved, pytest.raises((OperationalError, InterfaceError)):
            plan_save(**edit)
        assert saved
    else:
        # Everything written, then the last step fails: all of it must go.
        with (
            patch.object(plan_services, "_documents_invalidate", side_effect=RuntimeError("disk full")),
            pytest.raises(RuntimeError),
        ):
            plan_save(**edit)

    assert _snapshot(plan) == before
    assert {table: _event_count(table) for table in EVENT_TABLES} == events_before
    # The editor's revision is still current: saving again works, whole.
    saved_plan = plan_save(**edit)
    assert saved_plan.goal == "A goal that must not be half-saved"
    points_after = sorted(saved_plan.areas.values_list("points", flat=True))
    assert points_after == sorted(points - 2 for _pk, _area, points in before[3])
