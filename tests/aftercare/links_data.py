"""Data for the patient-link tests: a clinic, a practitioner, a patient with a plan, a
session and an appointment, and another patient whose name must never show up."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest
from django.core.cache import caches
from django.utils import timezone

from aftercare.links import patient_link_create
from mesoclinic.models import Location, User
from patients.models import Consent, ConsentText, Patient
from tests.factories import LocationFactory, PatientFactory
from treatments.models import Appointment, PlanArea, SessionArea, TreatmentPlan, TreatmentSession

OTHER_MARKER = "Zéphyrine-PLANTED-OTHER"
NOTE_MARKER = "INTERNAL-NOTE-MARKER-7f3a"
PHONE = "+33 1 44 55 66 77"


@dataclass
class World:
    location: Location
    practitioner: User
    patient: Patient
    other: Patient
    plan: TreatmentPlan
    session: TreatmentSession
    other_session: TreatmentSession

    def link(self, purpose: str, *, patient: Patient | None = None, **targets: object) -> str:
        return patient_link_create(patient=patient or self.patient, purpose=purpose, **targets)


@pytest.fixture(autouse=True)
def private_cache(settings: object) -> None:
    """Rate-limit counters in a cache of this test's own (the default one is shared)."""
    settings.CACHES = {  # type: ignore[attr-defined]
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "patient-links"}
    }
    caches["default"].clear()


def plan_for(patient: Patient, practitioner: User, *, sessions: int = 4) -> TreatmentPlan:
    plan = TreatmentPlan.objects.create(
        patient=patient,
        practitioner=practitioner,
        concern="fat_reduction",
        goal="Reduce the lower abdomen",
        status=TreatmentPlan.Status.PROPOSED,
        sessions_planned=sessions,
        min_interval_days=21,
    )
    PlanArea.objects.create(
        plan=plan,
        area="abdomen",
        technique="point_by_point",
        depth_mm=6,
        needle_gauge=30,
        needle_length_mm=13,
        points=20,
        volume_per_point_ml="0.2",
    )
    return plan


def session_for(
    plan: TreatmentPlan, *, number: int = 1, performed_at: datetime | None = None, location: Location | None = None
) -> TreatmentSession:
    now = timezone.now()
    session = TreatmentSession.objects.create(
        plan=plan,
        patient=plan.patient,
        number=number,
        practitioner=plan.practitioner,
        location=location,
        performed_at=performed_at or now - timedelta(days=2),
        status=TreatmentSession.Status.COMPLETED,
        completed_at=performed_at or now - timedelta(days=2),
        notes=NOTE_MARKER,
    )
    SessionArea.objects.create(session=session, area="abdomen", technique="point_by_point", points=20)
    return session


def appointment_for(world: World, *, starts_in: timedelta, patient: Patient | None = None) -> Appointment:
    starts_at = timezone.now() + starts_in
    return Appointment.objects.create(
        location=world.location,
        practitioner=world.practitioner,
        patient=patient or world.patient,
        kind=Appointment.Kind.TREATMENT,
        starts_at=starts_at,
        ends_at=starts_at + timedelta(minutes=45),
        created_by=world.practitioner,
    )


def photo_consent_for(patient: Patient, user: User) -> Consent:
    text = ConsentText.objects.filter(kind="photography").order_by("-version").first()
    if text is None:
        text = ConsentText.objects.create(
            kind="photography",
            version=1,
            title_en="Clinical photographs",
            body_en="I agree to clinical photographs.",
            title_fr="Photographies cliniques",
            body_fr="J'accepte les photographies cliniques.",
            published_by=user,
        )
    return Consent.objects.create(
        patient=patient,
        text=text,
        language="en",
        typed_name="x",
        signature_file="x",
        signature_sha256="0" * 64,
        witness=user,
    )


@pytest.fixture
def world(practitioner: User, manager: User) -> World:
    location = LocationFactory(name="Paris Rive Gauche", phone=PHONE, address="12 rue du Bac\n75007 Paris")
    location.clinic.phone = "+33 1 00 00 00 00"
    location.clinic.save()
    practitioner.default_location = location
    practitioner.save(update_fields=["default_location"])
    patient = PatientFactory(first_name="Camille", last_name="Durand", preferred_language="en", created_by=manager)
    other = PatientFactory(first_name=OTHER_MARKER, last_name=OTHER_MARKER, preferred_language="en", created_by=manager)
    plan = plan_for(patient, practitioner)
    session = session_for(plan, location=location)
    other_session = session_for(plan_for(other, practitioner), location=location)
    return World(
        location=location,
        practitioner=practitioner,
        patient=patient,
        other=other,
        plan=plan,
        session=session,
        other_session=other_session,
    )
