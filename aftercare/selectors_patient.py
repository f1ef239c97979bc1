"""Reads for the pages behind patient links: only the link's own patient and target."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from aftercare.models import PatientLink
from mesoclinic.models import Clinic, Location
from treatments.models import Appointment, PlanArea, TreatmentPlan, TreatmentSession

if TYPE_CHECKING:
    from datetime import tzinfo


def patient_language(link: PatientLink, *, asked: str = "") -> str:
    """The language the patient's pages are shown in: the one picked on the page
    (``?lang=``, for this visit only: a GET changes nothing stored), else the patient's,
    else the clinic's."""
    known = {code for code, _name in settings.LANGUAGES}
    if asked in known:
        return asked
    language = (link.patient.preferred_language or "")[:2]
    return language if language in known else settings.LANGUAGE_CODE


def _zone(location: Location | None) -> tzinfo:
    if location is not None and location.time_zone:
        try:
            return ZoneInfo(location.time_zone)
        except (KeyError, ValueError):
            pass
    return timezone.get_default_timezone()


@dataclass(frozen=True)
class Contact:
    """Who the patient calls: the site they go to, else the clinic."""

    name: str
    phone: str

    @classmethod
    def of(cls, location: Location | None) -> Contact:
        if location is not None:
            clinic = location.clinic
            return cls(name=clinic.name or settings.CLINIC_NAME, phone=location.phone or clinic.phone)
        clinic = Clinic.objects.order_by("pk").only("name", "phone").first()
        if clinic is None:
            return cls(name=settings.CLINIC_NAME, phone="")
        return cls(name=clinic.name, phone=clinic.phone)


@dataclass(frozen=True)
class ScheduleLine:
    number: int
    performed_on: date | None
    not_before: date | None


@dataclass(frozen=True)
class PlanSummary:
    plan: TreatmentPlan
    areas: list[PlanArea]
    schedule: list[ScheduleLine]
    contact: Contact
    replaced: bool  # a newer version exists: this one is kept for the record only
    review_on: date | None = None
    sessions_done: int = field(default=0)


def patient_plan_summary(link: PatientLink) -> PlanSummary | None:
    """The plan of a plan link, as a patient reads it: areas and schedule, no notes."""
    plan = (
        TreatmentPlan.objects.select_related("practitioner__default_location__clinic")
        .filter(pk=link.plan_id, patient_id=link.patient_id)
        .exclude(status=TreatmentPlan.Status.DRAFT)
        .first()
    )
    if plan is None:
        return None
    location = plan.practitioner.default_location
    zone = _zone(location)
    root = plan.root_id or plan.pk
    areas = list(PlanArea.objects.filter(plan=plan).order_by("position", "pk"))
    sessions = list(
        TreatmentSession.objects.filter(Q(plan_id=root) | Q(plan__root_id=root), patient_id=link.patient_id)
        .only("number", "performed_at", "status")
        .order_by("number")
    )
    by_number = {session.number: session for session in sessions}
    done = [s for s in sessions if s.status == TreatmentSession.Status.COMPLETED]
    last = max(done, key=lambda s: s.number) if done else None
    schedule = []
    for number in range(1, max([plan.sessions_planned, *by_number]) + 1):
        session = by_number.get(number)
        performed_on = timezone.localtime(session.performed_at, zone).date() if session else None
        not_before = None
        if session is None and last is not None and number > last.number:
            not_before = timezone.localtime(last.performed_at, zone).date() + timedelta(
                days=plan.min_interval_days * (number - last.number)
            )
        schedule.append(ScheduleLine(number=number, performed_on=performed_on, not_before=not_before))
    review_on = None
    if plan.review_after_days and last is not None and len(done) >= plan.sessions_planned:
        review_on = timezone.localtime(last.performed_at, zone).date() + timedelta(days=plan.review_after_days)
    return PlanSummary(
        plan=plan,
        areas=areas,
        schedule=schedule,
        contact=Contact.of(location),
        replaced=plan.status == TreatmentPlan.Status.SUPERSEDED,
        review_on=review_on,
        sessions_done=len(done),
    )


def patient_link_session(link: PatientLink) -> TreatmentSession | None:
    """The session of an aftercare or check-in link, with where to call."""
    return (
        TreatmentSession.objects.select_related("location__clinic", "practitioner__default_location__clinic")
        .filter(pk=link.session_id, patient_id=link.patient_id)
        .first()
    )


def session_contact(session: TreatmentSession) -> Contact:
    return Contact.of(session.location or session.practitioner.default_location)


def session_zone(session: TreatmentSession) -> tzinfo:
    return _zone(session.location or session.practitioner.default_location)


def patient_link_appointment(link: PatientLink) -> Appointment | None:
    """The appointment of a booking link (never one named by the request)."""
    return (
        Appointment.objects.select_related("location__clinic", "practitioner")
        .filter(pk=link.appointment_id, patient_id=link.patient_id)
        .first()
    )


def appointment_zone(appointment: Appointment) -> tzinfo:
    return _zone(appointment.location)


def clinic_contact() -> Contact:
    """Where to call, for pages that have no session or appointment to hand."""
    return Contact.of(None)
