"""Booking: the database refuses overlaps; the service turns that into a friendly answer."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from aftercare.booking_messages import appointment_message_queue
from mesoclinic.access import Role, has_role
from mesoclinic.models import Location, Room, User
from patients.models import Patient
from treatments.models import ACTIVE_STATUSES, Appointment, AppointmentChange, TreatmentPlan, TreatmentSession
from treatments.services import availability

LATE_CANCEL = timedelta(hours=24)
# How far ahead "next free slot" looks.
SEARCH_HORIZON = timedelta(weeks=6)


class SlotTaken(ValidationError):
    """That slot was just taken by someone else; ``alternatives`` are free starts nearby."""

    def __init__(self, message: str, alternatives: list[datetime]) -> None:
        self.alternatives = alternatives
        super().__init__(message)


def free_starts(
    *, practitioner: User, room: Room | None, location: Location, after: datetime, duration: timedelta, count: int = 3
) -> list[datetime]:
    """The next ``count`` starts (quarter hours, within the practitioner's hours at the
    location, outside closures and leave) free for the practitioner and the room."""
    until = after + SEARCH_HORIZON
    rooms = [room] if room is not None else None
    schedule = availability.schedule_load(
        location=location, practitioner=practitioner, start=after, end=until, rooms=rooms
    )
    starts = availability.schedule_free_starts(
        schedule, after=after, until=until, duration=duration, count=count, rooms=rooms
    )
    return [start for start, _room in starts]


def _slot_taken(
    error: IntegrityError,
    *,
    practitioner: User,
    room: Room | None,
    location: Location,
    starts_at: datetime,
    duration: timedelta,
) -> SlotTaken | None:
    """The friendly answer to an overlap refused by an exclusion constraint (None: another error)."""
    text = str(error)
    if "appointment_no_practitioner_overlap" in text:
        message = _("That slot was just taken: the practitioner is already booked then.")
    elif "appointment_no_room_overlap" in text:
        message = _("That slot was just taken: the room is already booked then.")
    else:
        return None
    alternatives = free_starts(
        practitioner=practitioner, room=room, location=location, after=starts_at, duration=duration
    )
    return SlotTaken(message, alternatives)


def _hours_text(schedule: availability.Schedule, day: date) -> str:
    hours = schedule.hours_on(day)
    if not hours:
        return _("not working that day")
    return ", ".join(f"{a:%H:%M}–{b:%H:%M}" for a, b in hours)


def _validate(
    *,
    location: Location,
    practitioner: User,
    room: Room | None,
    patient: Patient | None,
    kind: str,
    starts_at: datetime,
    duration: timedelta,
) -> None:
    errors: dict[str, str] = {}
    if kind != Appointment.Kind.BLOCKED and patient is None:
        errors["patient"] = _("Choose the patient.")
    if patient is not None and patient.status != Patient.Status.ACTIVE:
        errors["patient"] = _("This record is archived: restore it before booking.")
    if not practitioner.is_active or not has_role(practitioner, Role.PRACTITIONER, Role.MANAGER):
        errors["practitioner"] = _("Choose an active practitioner.")
    if room is not None and room.location_id != location.pk:
        errors["room"] = _("This room is at another location.")
    if not timedelta(minutes=5) <= duration <= timedelta(hours=8):
        errors["duration"] = _("An appointment lasts between 5 minutes and 8 hours.")
    if starts_at < timezone.now() - timedelta(minutes=5):
        errors["starts_at"] = _("This time has passed.")
    if not errors and kind != Appointment.Kind.BLOCKED:
        # Blocked time (meetings, breaks) may be put anywhere; patients only in working hours.
        end = starts_at + duration
        schedule = availability.schedule_load(location=location, practitioner=practitioner, start=starts_at, end=end)
        if not schedule.within_hours(starts_at, end):
            local = starts_at.astimezone(schedule.zone)
            errors["starts_at"] = _(
                "Outside %(name)s's hours at %(location)s on %(day)s (%(hours)s), or during a closure or leave."
            ) % {
                "name": practitioner,
                "location": location.name,
                "day": local.strftime("%d/%m"),
                "hours": _hours_text(schedule, local.date()),
            }
    if errors:
        raise ValidationError(errors)


def _history(
    appointment: Appointment,
    action: str,
    by: User | None,
    *,
    reason: str = "",
    from_starts_at: datetime | None = None,
) -> None:
    AppointmentChange.objects.create(
        appointment=appointment,
        by=by,
        action=action,
        from_starts_at=from_starts_at,
        to_starts_at=appointment.starts_at,
        reason=reason.strip()[:300],
    )
    if action in {AppointmentChange.Action.BOOKED, AppointmentChange.Action.MOVED, AppointmentChange.Action.CANCELLED}:
        # The patient's message is an outbox row in this same transaction: a rolled-back
        # booking leaves no message, a committed one exactly one.
        appointment_message_queue(appointment=appointment, action=action)


@transaction.atomic
def appointment_book(
    *,
    location: Location,
    practitioner: User,
    kind: str,
    starts_at: datetime,
    created_by: User,
    patient: Patient | None = None,
    room: Room | None = None,
    duration: timedelta | None = None,
    plan: TreatmentPlan | None = None,
    note: str = "",
) -> Appointment:
    """Book a slot. Two people booking the same slot at once: one wins, the other gets
    :class:`SlotTaken` with free alternatives (the exclusion constraints decide)."""
    duration = duration or availability.kind_duration(kind)
    _validate(
        location=location,
        practitioner=practitioner,
        room=room,
        patient=patient,
        kind=kind,
        starts_at=starts_at,
        duration=duration,
    )
    if plan is not None and (patient is None or plan.patient_id != patient.pk):
        raise ValidationError({"plan": _("This plan belongs to another patient.")})
    try:
        with transaction.atomic():
            appointment = Appointment.objects.create(
                location=location,
                practitioner=practitioner,
                room=room,
                patient=patient,
                plan=plan,
                kind=kind,
                starts_at=starts_at,
                ends_at=starts_at + duration,
                note=note.strip()[:300],
                created_by=created_by,
            )
    except IntegrityError as error:
        taken = _slot_taken(
            error, practitioner=practitioner, room=room, location=location, starts_at=starts_at, duration=duration
        )
        if taken is None:
            raise
        raise taken from error
    _history(appointment, AppointmentChange.Action.BOOKED, created_by)
    return appointment


@transaction.atomic
def appointment_reschedule(
    *,
    appointment: Appointment,
    starts_at: datetime,
    by: User,
    revision: int,
    duration: timedelta | None = None,
    room: Room | None = None,
    reason: str = "",
) -> Appointment:
    """Move a booked appointment. ``revision`` is the one the user saw: if someone changed
    the appointment since, nothing moves and the user is asked to reload."""
    reason = reason.replace("\x00", "")  # PostgreSQL text cannot hold NUL
    duration = duration or (appointment.ends_at - appointment.starts_at)
    previous_start = appointment.starts_at
    _validate(
        location=appointment.location,
        practitioner=appointment.practitioner,
        room=room or appointment.room,
        patient=appointment.patient,
        kind=appointment.kind,
        starts_at=starts_at,
        duration=duration,
    )
    try:
        with transaction.atomic():
            updated = Appointment.objects.filter(
                pk=appointment.pk, revision=revision, status=Appointment.Status.BOOKED
            ).update(
                starts_at=starts_at,
                ends_at=starts_at + duration,
                room=room or appointment.room,
                revision=revision + 1,
                # The patient confirmed the old time, not this one.
                patient_confirmed_at=None,
            )
    except IntegrityError as error:
        taken = _slot_taken(
            error,
            practitioner=appointment.practitioner,
            room=room or appointment.room,
            location=appointment.location,
            starts_at=starts_at,
            duration=duration,
        )
        if taken is None:
            raise
        raise taken from error
    if not updated:
        raise ValidationError(
            _("This appointment changed since you opened it (or is no longer booked). Reload the page.")
        )
    appointment.refresh_from_db()
    _history(appointment, AppointmentChange.Action.MOVED, by, reason=reason, from_starts_at=previous_start)
    return appointment


def _status(
    appointment: Appointment, *, by: User | None, allowed_from: set[str], to: str, reason: str = "", **fields: object
) -> Appointment:
    updated = Appointment.objects.filter(pk=appointment.pk, status__in=allowed_from).update(
        status=to, revision=appointment.revision + 1, **fields
    )
    if not updated:
        raise ValidationError(
            _("This appointment is %(status)s; that change is not possible.")
            % {"status": appointment.get_status_display()}
        )
    appointment.refresh_from_db()
    _history(appointment, AppointmentChange.Action(to), by, reason=reason)
    return appointment


@transaction.atomic
def appointment_cancel(*, appointment: Appointment, by: User | None, reason: str) -> Appointment:
    """Cancel a booked appointment; ``by`` is None when the patient cancels through their link."""
    reason = reason.replace("\x00", "")  # PostgreSQL text cannot hold NUL
    if not reason.strip():
        raise ValidationError({"reason": _("Say why the appointment is cancelled.")})
    late = appointment.starts_at - timezone.now() < LATE_CANCEL
    return _status(
        appointment,
        by=by,
        allowed_from={Appointment.Status.BOOKED},
        to=Appointment.Status.CANCELLED,
        reason=reason,
        cancel_reason=reason.strip()[:300],
        cancelled_late=late,
    )


@transaction.atomic
def appointment_check_in(*, appointment: Appointment, by: User) -> Appointment:
    return _status(appointment, by=by, allowed_from={Appointment.Status.BOOKED}, to=Appointment.Status.CHECKED_IN)


@transaction.atomic
def appointment_no_show(*, appointment: Appointment, by: User) -> Appointment:
    if appointment.starts_at > timezone.now():
        raise ValidationError(_("The appointment has not started yet."))
    return _status(appointment, by=by, allowed_from={Appointment.Status.BOOKED}, to=Appointment.Status.NO_SHOW)


def appointment_complete_for_session(*, session: TreatmentSession) -> Appointment | None:
    """The practitioner's session record completes that day's appointment of the plan
    (booked or checked in), if there is one. Called inside ``session_record``."""
    zone = ZoneInfo(session.location.time_zone) if session.location_id else timezone.get_current_timezone()
    day = session.performed_at.astimezone(zone).date()
    start = datetime.combine(day, time.min, tzinfo=zone)
    root = session.plan.root_id or session.plan_id
    appointment = (
        Appointment.objects.select_for_update()
        .filter(
            patient_id=session.patient_id,
            plan__root_id=root,
            status__in=[Appointment.Status.BOOKED, Appointment.Status.CHECKED_IN],
            starts_at__gte=start,
            starts_at__lt=start + timedelta(days=1),
            session__isnull=True,
        )
        .order_by("starts_at")
        .first()
    )
    if appointment is None:
        return None
    return _status(
        appointment,
        by=session.practitioner,
        allowed_from={Appointment.Status.BOOKED, Appointment.Status.CHECKED_IN},
        to=Appointment.Status.COMPLETED,
        session=session,
    )


def plan_next_slots(
    *, plan: TreatmentPlan, location: Location, practitioner: User | None = None, count: int = 5
) -> list[tuple[datetime, Room | None]]:
    """Proposed starts for a plan's next session: on or after the day the plan's minimum
    interval allows since its last session or booked session, within the practitioner's
    hours, outside closures and leave, with a room of the location free for the session's
    whole duration."""
    practitioner = practitioner or plan.practitioner
    root = plan.root_id or plan.pk
    last_done = (
        TreatmentSession.objects.filter(plan__root_id=root)
        .order_by("-performed_at")
        .values_list("performed_at", flat=True)
        .first()
    )
    last_booked = (
        Appointment.objects.filter(plan__root_id=root, status__in=ACTIVE_STATUSES)
        .order_by("-starts_at")
        .values_list("starts_at", flat=True)
        .first()
    )
    anchors = [moment for moment in (last_done, last_booked) if moment is not None]
    zone = ZoneInfo(location.time_zone)
    earliest = timezone.now() + timedelta(hours=1)
    if anchors:
        # The interval counts calendar days in the clinic's zone, from midnight.
        day = max(anchors).astimezone(zone).date() + timedelta(days=plan.min_interval_days)
        earliest = max(earliest, datetime.combine(day, time.min, tzinfo=zone))
    duration = availability.kind_duration(Appointment.Kind.TREATMENT)
    rooms = list(Room.objects.filter(location=location, is_active=True).order_by("name"))
    until = earliest + SEARCH_HORIZON
    schedule = availability.schedule_load(
        location=location, practitioner=practitioner, start=earliest, end=until, rooms=rooms
    )
    return availability.schedule_free_starts(
        schedule, after=earliest, until=until, duration=duration, count=count, rooms=rooms or None
    )
