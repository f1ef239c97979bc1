"""Side effects: recorded, graded (CTCAE 1–5), followed up until resolved.

A grade of 3 or more (severe, life-threatening, death) alerts the practitioner(s)
concerned and every active manager by email through the outbox; the dedupe key
carries the event, the grade and the recipient, so saving again never alerts twice.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.formats import date_format
from django.utils.translation import gettext as _

from aftercare.services import message_queue
from mesoclinic.access import Role
from mesoclinic.models import User
from treatments.models import AdverseEvent, AdverseEventNote, AdverseEventType, Lot, LotUse, TreatmentSession

if TYPE_CHECKING:
    from patients.models import Patient

ALERT_GRADE = 3
FOLLOW_UP_DAYS_MILD = 7
FOLLOW_UP_DAYS_SEVERE = 2
# Atypical mycobacterial infection can show 1–12 weeks after a session (DOMAIN.md).
LATE_INFECTION_WATCH_DAYS = 90
EARLIEST_ONSET = date(2000, 1, 1)
# Clocks of a phone and a server differ a little; a minute ago is not the future.
FUTURE_TOLERANCE = timedelta(minutes=5)
TEXT_MAX = 5000
PATIENT_SEVERITY_GRADES = {"mild": 1, "moderate": 2, "severe": 3}


def follow_up_default(*, grade: int, start: date) -> date:
    """The next follow-up: soon for a severe event, within the week otherwise."""
    days = FOLLOW_UP_DAYS_SEVERE if grade >= ALERT_GRADE else FOLLOW_UP_DAYS_MILD
    return start + timedelta(days=days)


def _text(value: str, field: str) -> str:
    value = (value or "").strip()
    if len(value) > TEXT_MAX:
        raise ValidationError({field: _("Keep this under %(max)s characters.") % {"max": TEXT_MAX}})
    return value


def _grade_check(grade: Any) -> int:
    if not isinstance(grade, int) or isinstance(grade, bool) or not 1 <= grade <= 5:
        raise ValidationError({"grade": _("Choose a grade from 1 (mild) to 5 (death).")})
    return grade


def _type_check(value: str) -> str:
    if value not in AdverseEventType.values:
        raise ValidationError({"type": _("Choose the type of side effect.")})
    return value


def _aware(value: datetime | None, field: str) -> datetime:
    if value is None:
        raise ValidationError({field: _("Enter a date and time.")})
    return timezone.make_aware(value) if timezone.is_naive(value) else value


def _onset_check(*, patient: Patient, onset_at: datetime, sessions: list[TreatmentSession]) -> None:
    if onset_at > timezone.now() + FUTURE_TOLERANCE:
        raise ValidationError({"onset_at": _("The onset cannot be in the future.")})
    onset_day = timezone.localtime(onset_at).date()
    if onset_day < EARLIEST_ONSET or onset_day < patient.birth_date:
        raise ValidationError({"onset_at": _("This date is too far in the past.")})
    if sessions:
        first = min(timezone.localtime(s.performed_at).date() for s in sessions)
        if onset_day < first:
            raise ValidationError(
                {
                    "onset_at": _("The onset is before the linked session of %(day)s.")
                    % {"day": date_format(first, "SHORT_DATE_FORMAT")}
                }
            )


def _sessions_check(*, patient: Patient, sessions: Iterable[TreatmentSession]) -> list[TreatmentSession]:
    sessions = list(sessions)
    foreign = [s for s in sessions if s.patient_id != patient.pk]
    if foreign:
        raise ValidationError({"sessions": _("Link only this patient's own sessions.")})
    return sessions


def _lots_check(*, patient: Patient, sessions: list[TreatmentSession], lots: Iterable[Lot]) -> list[Lot]:
    lots = list(lots)
    if not lots:
        return lots
    uses = LotUse.objects.filter(lot__in=lots)
    if sessions:
        uses = uses.filter(session_area__session__in=sessions)
        message = _("Lot %(lot)s was not used in the linked sessions.")
    else:
        uses = uses.filter(session_area__session__patient=patient)
        message = _("Lot %(lot)s was not used on this patient.")
    used = set(uses.values_list("lot_id", flat=True))
    for lot in lots:
        if lot.pk not in used:
            raise ValidationError({"lots": message % {"lot": lot.lot_number}})
    return lots


def _follow_up_check(value: date | None, *, not_before: date) -> None:
    if value is not None and value < not_before:
        raise ValidationError(
            {
                "follow_up_due": _("The next follow-up cannot be before %(day)s.")
                % {"day": date_format(not_before, "SHORT_DATE_FORMAT")}
            }
        )


def _event_create(
    *,
    patient: Patient,
    type: str,
    grade: int,
    onset_at: datetime,
    reported_by: str,
    recorded_by: User | None,
    description: str,
    actions_taken: str,
    sessions: Iterable[TreatmentSession],
    lots: Iterable[Lot],
    follow_up_due: date | None,
    needs_triage: bool,
) -> AdverseEvent:
    type = _type_check(type)
    grade = _grade_check(grade)
    session_list = _sessions_check(patient=patient, sessions=sessions)
    onset_at = _aware(onset_at, "onset_at")
    _onset_check(patient=patient, onset_at=onset_at, sessions=session_list)
    lot_list = _lots_check(patient=patient, sessions=session_list, lots=lots)
    onset_day = timezone.localtime(onset_at).date()
    _follow_up_check(follow_up_due, not_before=onset_day)
    event = AdverseEvent(
        patient=patient,
        type=type,
        grade=grade,
        onset_at=onset_at,
        reported_by=reported_by,
        recorded_by=recorded_by,
        description=_text(description, "description"),
        actions_taken=_text(actions_taken, "actions_taken"),
        follow_up_due=follow_up_due or follow_up_default(grade=grade, start=onset_day),
        needs_triage=needs_triage,
    )
    event.full_clean()
    event.save()
    if session_list:
        event.sessions.set(session_list)
    if lot_list:
        event.lots.set(lot_list)
    if grade >= ALERT_GRADE:
        adverse_alert_queue(event=event)
    return event


@transaction.atomic
def adverse_event_record(
    *,
    patient: Patient,
    type: str,
    grade: int,
    onset_at: datetime,
    reported_by: str,
    recorded_by: User | None,
    description: str = "",
    actions_taken: str = "",
    sessions: Iterable[TreatmentSession] = (),
    lots: Iterable[Lot] = (),
    follow_up_due: date | None = None,
) -> AdverseEvent:
    """Record a side effect seen or heard by staff, linked to sessions and lots.

    Without ``follow_up_due`` the next follow-up is 7 days after onset, or 2 days
    for grade 3 or more. Grade 3 or more alerts the practitioner(s) and managers.
    """
    if reported_by not in AdverseEvent.Reporter.values:
        raise ValidationError({"reported_by": _("Say who reported the side effect.")})
    return _event_create(
        patient=patient,
        type=type,
        grade=grade,
        onset_at=onset_at,
        reported_by=reported_by,
        recorded_by=recorded_by,
        description=description,
        actions_taken=actions_taken,
        sessions=sessions,
        lots=lots,
        follow_up_due=follow_up_due,
        needs_triage=False,
    )


@transaction.atomic
def adverse_event_report_by_patient(
    *,
    patient: Patient,
    type: str,
    severity_word: str,
    onset_at: datetime,
    description: str,
    session: TreatmentSession | None = None,
) -> AdverseEvent:
    """A side effect the patient reports (check-in form): graded from their words, to be triaged."""
    grade = PATIENT_SEVERITY_GRADES.get((severity_word or "").strip().lower())
    if grade is None:
        raise ValidationError({"severity_word": _("Say whether it is mild, moderate or severe.")})
    return _event_create(
        patient=patient,
        type=type,
        grade=grade,
        onset_at=onset_at,
        reported_by=AdverseEvent.Reporter.PATIENT,
        recorded_by=None,
        description=description,
        actions_taken="",
        sessions=[session] if session is not None else [],
        lots=(),
        follow_up_due=None,
        needs_triage=True,
    )


def _locked(event: AdverseEvent) -> AdverseEvent:
    # Two follow-ups saved at once must see each other's grade.
    return AdverseEvent.objects.select_for_update().get(pk=event.pk)


@transaction.atomic
def adverse_event_follow_up(
    *, event: AdverseEvent, by: User, grade: int, note: str, follow_up_due: date | None = None
) -> AdverseEventNote:
    """Add a follow-up note, set the current grade and the next follow-up date.

    Raising the grade to 3 or more alerts the practitioner(s) and managers.
    """
    current = _locked(event)
    if current.resolved_at is not None:
        raise ValidationError(_("This side effect is already resolved."))
    grade = _grade_check(grade)
    text = _text(note, "note")
    if not text:
        raise ValidationError({"note": _("Write what was seen or said at this follow-up.")})
    today = timezone.localdate()
    _follow_up_check(follow_up_due, not_before=today)
    previous_grade = current.grade
    entry = AdverseEventNote.objects.create(event=current, by=by, grade=grade, note=text)
    current.grade = grade
    current.follow_up_due = follow_up_due or follow_up_default(grade=grade, start=today)
    current.needs_triage = False
    current.save(update_fields=["grade", "follow_up_due", "needs_triage"])
    if grade >= ALERT_GRADE and grade > previous_grade:
        adverse_alert_queue(event=current)
    event.grade, event.follow_up_due, event.needs_triage = current.grade, current.follow_up_due, False
    return entry


@transaction.atomic
def adverse_event_resolve(
    *, event: AdverseEvent, by: User, resolution: str, resolved_at: datetime | None = None
) -> AdverseEvent:
    """Close a side effect: how it ended and when. A closing note records who closed it."""
    current = _locked(event)
    if current.resolved_at is not None:
        raise ValidationError(_("This side effect is already resolved."))
    text = _text(resolution, "resolution")
    if not text:
        raise ValidationError({"resolution": _("Describe how the side effect resolved.")})
    resolved_at = _aware(resolved_at, "resolved_at") if resolved_at is not None else timezone.now()
    if resolved_at > timezone.now() + FUTURE_TOLERANCE:
        raise ValidationError({"resolved_at": _("The resolution cannot be in the future.")})
    if resolved_at < current.onset_at:
        raise ValidationError({"resolved_at": _("The resolution cannot be before the onset.")})
    current.resolved_at = resolved_at
    current.resolution = text
    current.needs_triage = False
    current.full_clean()
    current.save(update_fields=["resolved_at", "resolution", "needs_triage"])
    AdverseEventNote.objects.create(event=current, by=by, grade=current.grade, note=text)
    event.resolved_at, event.resolution, event.needs_triage = resolved_at, text, False
    return current


def adverse_alert_recipients(event: AdverseEvent) -> list[User]:
    """The practitioner(s) of the linked sessions (else the recorder, else the patient's
    latest practitioner) and every active manager, each once."""
    practitioners = list(
        User.objects.filter(is_active=True, pk__in=event.sessions.values("practitioner_id")).order_by("pk")
    )
    if not practitioners and event.recorded_by_id is not None:
        practitioners = list(User.objects.filter(is_active=True, pk=event.recorded_by_id))
    if not practitioners:
        latest = (
            TreatmentSession.objects.filter(patient_id=event.patient_id, practitioner__is_active=True)
            .select_related("practitioner")
            .order_by("-performed_at")
            .first()
        )
        practitioners = [latest.practitioner] if latest is not None else []
    managers = User.objects.filter(Q(groups__name=Role.MANAGER.value) | Q(is_superuser=True), is_active=True)
    recipients: dict[int, User] = {user.pk: user for user in practitioners}
    for manager in managers.distinct().order_by("pk"):
        recipients.setdefault(manager.pk, manager)
    return [user for user in recipients.values() if user.email]


def adverse_alert_queue(*, event: AdverseEvent) -> list[Any]:
    """Queue one alert per recipient for this event at its current grade (deduplicated)."""
    path = reverse("adverse_detail", kwargs={"event_id": event.pk})
    messages = []
    for user in adverse_alert_recipients(event):
        context = {
            "user": user,
            "grade": event.grade,
            "link": f"{settings.SITE_URL}{path}",
            "clinic_name": settings.CLINIC_NAME,
        }
        # Staff have no language of their own: the clinic's language.
        with translation.override(settings.LANGUAGE_CODE):
            subject = render_to_string("treatments/email/adverse_alert_subject.txt", context).strip()
            body_text = render_to_string("treatments/email/adverse_alert.txt", context)
            body_html = render_to_string("treatments/email/adverse_alert.html", context)
        messages.append(
            message_queue(
                kind="adverse_alert",
                to_email=user.email,
                subject=subject,
                body_text=body_text,
                body_html=body_html,
                dedupe_key=f"adverse-alert:{event.pk}:{event.grade}:{user.pk}",
                language=settings.LANGUAGE_CODE,
            )
        )
    return messages
