"""Reads for side effects: a patient's events, one event in full, the follow-ups due."""

from __future__ import annotations

from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from django.db.models import Exists, F, OuterRef, Prefetch, Q, QuerySet
from django.utils import timezone

from mesoclinic.access import Role, has_role
from treatments.models import AdverseEvent, AdverseEventNote, AdverseEventType, Lot, TreatmentSession
from treatments.services.adverse import LATE_INFECTION_WATCH_DAYS

if TYPE_CHECKING:
    from patients.models import Patient

# "Due" includes tomorrow, so a practitioner can call ahead.
DUE_AHEAD = timedelta(days=1)
PATIENT_CARD_EVENTS = 5


def _with_links(queryset: QuerySet[AdverseEvent]) -> QuerySet[AdverseEvent]:
    return queryset.select_related("patient", "recorded_by").prefetch_related(
        Prefetch(
            "sessions",
            queryset=TreatmentSession.objects.select_related("practitioner").order_by("performed_at"),
        ),
        Prefetch("lots", queryset=Lot.objects.select_related("product").order_by("lot_number")),
    )


def patient_adverse_events(patient: Patient, *, limit: int | None = None) -> list[AdverseEvent]:
    """A patient's side effects, open ones first, newest onset first."""
    queryset = _with_links(AdverseEvent.objects.filter(patient=patient)).order_by(
        F("resolved_at").desc(nulls_first=True), "-onset_at", "-pk"
    )
    return list(queryset[:limit] if limit else queryset)


def patient_adverse_latest(patient: Patient) -> list[AdverseEvent]:
    """The few events the patient page card shows (context ``adverse_events``)."""
    return list(
        AdverseEvent.objects.filter(patient=patient).order_by(
            F("resolved_at").desc(nulls_first=True), "-onset_at", "-pk"
        )[:PATIENT_CARD_EVENTS]
    )


def adverse_event_detail(event_id: int) -> AdverseEvent | None:
    """One event with its sessions, lots and follow-up notes (authors included)."""
    return (
        _with_links(AdverseEvent.objects.filter(pk=event_id))
        .prefetch_related(Prefetch("notes", queryset=AdverseEventNote.objects.select_related("by").order_by("at")))
        .first()
    )


def patient_session_choices(patient: Patient) -> QuerySet[TreatmentSession]:
    return TreatmentSession.objects.filter(patient=patient).select_related("practitioner").order_by("-performed_at")


def patient_lot_choices(patient: Patient) -> QuerySet[Lot]:
    """Lots administered to this patient at any session: the only ones an event can name."""
    used = Lot.objects.filter(uses__session_area__session__patient=patient).values("pk")
    return Lot.objects.filter(pk__in=used).select_related("product").order_by("product__name", "lot_number")


def late_infection_watch_until(event: AdverseEvent) -> date | None:
    """For an infection: the end of the ~3-month window after the latest linked session
    (or the onset) in which an atypical mycobacterial infection can still appear."""
    if event.type != AdverseEventType.INFECTION:
        return None
    moments = [s.performed_at for s in event.sessions.all()] or [event.onset_at]
    return timezone.localtime(max(moments)).date() + timedelta(days=LATE_INFECTION_WATCH_DAYS)


def followups_owner_default(user: Any) -> Any:
    """Whose follow-ups a page shows first: a practitioner's own, everyone's for a manager."""
    return None if has_role(user, Role.MANAGER) else user


def _followups_due_queryset(*, user: Any = None, today: date | None = None) -> QuerySet[AdverseEvent]:
    today = today or timezone.localdate()
    queryset = AdverseEvent.objects.filter(resolved_at__isnull=True).filter(
        Q(follow_up_due__lte=today + DUE_AHEAD) | Q(needs_triage=True)
    )
    if user is not None:
        links = AdverseEvent.sessions.through.objects.filter(adverseevent_id=OuterRef("pk"))
        mine = links.filter(treatmentsession__practitioner=user)
        # An event linked to no session and recorded by no one (a patient's report)
        # belongs to whoever has treated that patient.
        treated = TreatmentSession.objects.filter(patient_id=OuterRef("patient_id"), practitioner=user)
        queryset = queryset.filter(
            Q(Exists(mine)) | Q(recorded_by=user) | (Q(recorded_by__isnull=True) & ~Exists(links) & Exists(treated))
        )
    return queryset


def followups_due(*, user: Any = None, today: date | None = None) -> list[AdverseEvent]:
    """Unresolved events due by tomorrow or waiting for triage, most severe first.

    With ``user``: only events linked to their sessions or recorded by them.
    """
    queryset = _followups_due_queryset(user=user, today=today)
    return list(_with_links(queryset).order_by("-grade", F("follow_up_due").asc(nulls_first=True), "onset_at", "pk"))


def followups_due_count(*, user: Any = None, today: date | None = None) -> int:
    """The dashboard card's number (context ``followups_count``)."""
    return _followups_due_queryset(user=user, today=today).count()
