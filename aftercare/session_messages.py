"""Messages that follow care: aftercare, the check-in, course completion, maintenance recall,
side-effect follow-ups and the plan link.

Each is an outbox row written in the transaction of the event that causes it (the session
record, the practitioner's click) or by an idempotent periodic pass (follow-ups), with a
dedupe key naming its cause, so nothing can be queued twice. Bodies carry what the patient
must do and a personal link; never a dose, a product, a lot or a note.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, tzinfo
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from django.core.exceptions import ValidationError
from django.db.models import Prefetch
from django.template.loader import render_to_string
from django.utils import formats, timezone, translation
from django.utils.translation import gettext as _

from aftercare.content import aftercare_sections, clinic_branding, message_language
from aftercare.links import LIFETIMES, patient_link_create, patient_link_url
from aftercare.models import OutboundMessage, PatientLink
from aftercare.services import message_queue
from treatments.models import AdverseEvent, TreatmentPlan, TreatmentSession

if TYPE_CHECKING:
    from mesoclinic.models import Location, User
    from patients.models import Patient

Purpose = PatientLink.Purpose
CHECKIN_AFTER = timedelta(hours=48)
COURSE_COMPLETE_AFTER = timedelta(days=1)
# A follow-up reminder is for a follow-up that is due now; one forgotten for weeks is the
# practitioner's to pick up by phone, not a surprise email.
FOLLOWUP_LOOKBACK_DAYS = 30
# Patients read their email in the day: a follow-up found at night waits for the morning.
FOLLOWUP_SEND_HOUR = 9
PLAN_SENDABLE = frozenset(
    {
        TreatmentPlan.Status.PROPOSED,
        TreatmentPlan.Status.CONSENTED,
        TreatmentPlan.Status.ACTIVE,
        TreatmentPlan.Status.COMPLETED,
    }
)


def _zone(location: Location | None) -> tzinfo:
    return ZoneInfo(location.time_zone) if location is not None else timezone.get_current_timezone()


def _day(value: datetime | date, location: Location | None) -> str:
    if isinstance(value, datetime):
        value = value.astimezone(_zone(location)).date()
    return formats.date_format(value, "l j F Y")


def _render(name: str, context: dict[str, object]) -> tuple[str, str, str]:
    subject = render_to_string(f"aftercare/email/{name}_subject.txt", context)
    return (
        " ".join(subject.split())[:300],
        render_to_string(f"aftercare/email/{name}.txt", context),
        render_to_string(f"aftercare/email/{name}.html", context),
    )


def _base_context(patient: Patient, location: Location | None) -> dict[str, object]:
    return {
        "first_name": patient.first_name,
        **clinic_branding(location),
        "preferences_url": patient_link_url(patient_link_create(patient=patient, purpose=Purpose.PREFERENCES)),
    }


def session_messages_queue(*, session: TreatmentSession) -> list[OutboundMessage]:
    """Queue what a recorded session causes: aftercare now, the check-in 48 h after the
    session and, after the last session of the course, the completion message and the
    maintenance recall. Called inside ``session_record``'s transaction."""
    patient = session.patient
    if not patient.email:
        return []
    plan = session.plan
    root = plan.root_id or plan.pk
    location = session.location
    language = message_language(patient.preferred_language)
    context = _base_context(patient, location)
    checkin_due = session.performed_at + CHECKIN_AFTER
    context["aftercare_url"] = patient_link_url(
        patient_link_create(patient=patient, purpose=Purpose.AFTERCARE, session=session, plan=plan)
    )
    context["checkin_url"] = patient_link_url(
        patient_link_create(
            patient=patient,
            purpose=Purpose.CHECKIN,
            session=session,
            expires_at=max(checkin_due, timezone.now()) + LIFETIMES[Purpose.CHECKIN],
        )
    )
    last = session.number >= plan.sessions_planned
    queued: list[OutboundMessage] = []
    with translation.override(language):
        context["session_date"] = _day(session.performed_at, location)
        context["sections"] = aftercare_sections(session=session, language=language)
        common = {"to_email": patient.email, "language": language, "patient": patient, "session": session, "plan": plan}
        subject, text, html = _render("aftercare", context)
        queued.append(
            message_queue(
                kind="aftercare",
                subject=subject,
                body_text=text,
                body_html=html,
                dedupe_key=f"aftercare:{session.pk}",
                **common,
            )
        )
        subject, text, html = _render("checkin", context)
        queued.append(
            message_queue(
                kind="checkin",
                subject=subject,
                body_text=text,
                body_html=html,
                dedupe_key=f"checkin:{session.pk}",
                due_at=checkin_due,
                **common,
            )
        )
        if last:
            if plan.review_after_days:
                context["review_date"] = _day(session.performed_at + timedelta(days=plan.review_after_days), location)
            subject, text, html = _render("course_complete", context)
            # The day after: not a second email in the same minute as the aftercare.
            queued.append(
                message_queue(
                    kind="course_complete",
                    subject=subject,
                    body_text=text,
                    body_html=html,
                    dedupe_key=f"course_complete:{root}",
                    due_at=session.performed_at + COURSE_COMPLETE_AFTER,
                    **common,
                )
            )
        if last and plan.maintenance_interval_days:
            subject, text, html = _render("maintenance_recall", context)
            queued.append(
                message_queue(
                    kind="maintenance_recall",
                    subject=subject,
                    body_text=text,
                    body_html=html,
                    dedupe_key=f"maintenance_recall:{root}:{session.pk}",
                    due_at=session.performed_at + timedelta(days=plan.maintenance_interval_days),
                    **common,
                )
            )
    return queued


def _followup_due_at(now: datetime) -> datetime:
    local = timezone.localtime(now)
    morning = datetime.combine(local.date(), time(FOLLOWUP_SEND_HOUR), tzinfo=local.tzinfo)
    return max(now, morning)


def adverse_followups_queue(*, now: datetime | None = None) -> int:
    """Periodic: ask each patient with an open side effect whose follow-up is due how it is
    going, once per follow-up date (run twice, or hourly, and each is still asked once).
    Returns how many messages were queued."""
    now = now or timezone.now()
    today = timezone.localdate(now)
    events = list(
        AdverseEvent.objects.filter(
            resolved_at__isnull=True,
            follow_up_due__lte=today,
            follow_up_due__gte=today - timedelta(days=FOLLOWUP_LOOKBACK_DAYS),
        )
        .exclude(patient__email="")
        .select_related("patient")
        .prefetch_related(
            Prefetch(
                "sessions",
                queryset=TreatmentSession.objects.select_related("location__clinic").order_by("-performed_at"),
            )
        )
        .order_by("pk")
    )
    keys = {event.pk: f"adverse_followup:{event.pk}:{event.follow_up_due.isoformat()}" for event in events}
    done = set(OutboundMessage.objects.filter(dedupe_key__in=keys.values()).values_list("dedupe_key", flat=True))
    queued = 0
    for event in events:
        if keys[event.pk] in done:
            continue
        _adverse_followup_queue(event=event, dedupe_key=keys[event.pk], due_at=_followup_due_at(now))
        queued += 1
    return queued


def _adverse_followup_queue(*, event: AdverseEvent, dedupe_key: str, due_at: datetime) -> OutboundMessage:
    patient = event.patient
    sessions = list(event.sessions.all())
    session = (
        sessions[0]
        if sessions
        else TreatmentSession.objects.filter(patient=patient)
        .select_related("location__clinic")
        .order_by("-performed_at")
        .first()
    )
    location = session.location if session is not None else None
    language = message_language(patient.preferred_language)
    context = _base_context(patient, location)
    if session is not None:
        context["checkin_url"] = patient_link_url(
            patient_link_create(
                patient=patient,
                purpose=Purpose.CHECKIN,
                session=session,
                expires_at=due_at + LIFETIMES[Purpose.CHECKIN],
            )
        )
    with translation.override(language):
        subject, text, html = _render("adverse_followup", context)
    return message_queue(
        kind="adverse_followup",
        to_email=patient.email,
        subject=subject,
        body_text=text,
        body_html=html,
        dedupe_key=dedupe_key,
        language=language,
        due_at=due_at,
        patient=patient,
        session=session,
        adverse_event=event,
    )


def plan_link_message_queue(*, plan: TreatmentPlan, by: User) -> OutboundMessage:
    """Email the patient a personal link to view and download the plan (never the PDF
    itself: medical data does not travel as an attachment to an inbox)."""
    patient = plan.patient
    if not patient.email:
        raise ValidationError(_("The patient has no email address; add one on their record first."))
    if plan.status not in PLAN_SENDABLE:
        raise ValidationError(_("Only a plan proposed to the patient, or later, can be sent."))
    now = timezone.now()
    expires_at = now + LIFETIMES[Purpose.PLAN]
    language = message_language(patient.preferred_language)
    context = _base_context(patient, None)
    context["plan_url"] = patient_link_url(
        patient_link_create(patient=patient, purpose=Purpose.PLAN, plan=plan, expires_at=expires_at)
    )
    with translation.override(language):
        context["expires_date"] = _day(expires_at, None)
        subject, text, html = _render("plan_link", context)
    # Per minute: a double click sends one email, a request the next day another.
    return message_queue(
        kind="plan_link",
        to_email=patient.email,
        subject=subject,
        body_text=text,
        body_html=html,
        dedupe_key=f"plan_link:{plan.pk}:{now:%Y%m%dT%H%M}",
        language=language,
        patient=patient,
        plan=plan,
        created_by=by,
    )
