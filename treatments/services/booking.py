"""Booking: the database refuses overlaps; the service turns that into a friendly answer."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from mesoclinic.access import Role, has_role
from mesoclinic.models import Location, Room, User
from patients.models import Patient
from treatments.models import ACTIVE_STATUSES, Appointment, TreatmentPlan

DEFAULT_DURATIONS = {
    Appointment.Kind.CONSULTATION: timedelta(minutes=45),
    Appointment.Kind.TREATMENT: timedelta(minutes=60),
    Appointment.Kind.REVIEW: timedelta(minutes=30),
    Appointment.Kind.BLOCKED: timedelta(minutes=60),
}
LATE_CANCEL = timedelta(hours=24)
# Until opening hours are data (next step of the booking issue), alternatives are sought
# between these local times.
DAY_START, DAY_END = time(8, 0), time(20, 0)
STEP = timedelta(minutes=15)


class SlotTaken(ValidationError):
    """That slot was just taken by someone else; ``alternatives`` are free starts nearby."""

    def __init__(self, message: str, alternatives: list[datetime]) -> None:
        self.alternatives = alternatives
        super().__init__(message)


def free_starts(
    *, practitioner: User, room: Room | None, location: Location, after: datetime, duration: timedelta, count: int = 3
) -> list[datetime]:
    """The next ``count`` starts (15-minute steps, opening times) free for practitioner and room."""
    horizon = after + timedelta(days=7)
    busy = list(
        Appointment.objects.filter(status__in=ACTIVE_STATUSES, starts_at__lt=horizon, ends_at__gt=after)
        .filter(Q(practitioner=practitioner) | (Q(room=room) if room is not None else Q(pk__in=[])))
        .values_list("starts_at", "ends_at")
    )
    zone = ZoneInfo(location.time_zone)
    found: list[datetime] = []
    candidate = after
    # Align to the next quarter hour.
    minute = (candidate.minute // 15 + (1 if candidate.minute % 15 or candidate.second else 0)) * 15
    candidate = candidate.replace(minute=0, second=0, microsecond=0) + timedelta(minutes=minute)
    while candidate < horizon and len(found) < count:
        local, end = candidate.astimezone(zone), candidate + duration
        local_end = end.astimezone(zone)
        open_then = local.time() >= DAY_START and local_end.time() <= DAY_END and local_end.date() == local.date()
        if open_then and all(not (start < end and candidate < stop) for start, stop in busy):
            found.append(candidate)
        candidate += STEP
    return found


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
    if errors:
        raise ValidationError(errors)


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
    duration = duration or DEFAULT_DURATIONS[Appointment.Kind(kind)]
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
            return Appointment.objects.create(
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


def appointment_reschedule(
    *,
    appointment: Appointment,
    starts_at: datetime,
    by: User,
    revision: int,
    duration: timedelta | None = None,
    room: Room | None = None,
) -> Appointment:
    duration = duration or (appointment.ends_at - appointment.starts_at)
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
                starts_at=starts_at, ends_at=starts_at + duration, room=room or appointment.room, revision=revision + 1
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
    return appointment


def _status(appointment: Appointment, *, allowed_from: set[str], to: str, **fields: object) -> Appointment:
    updated = Appointment.objects.filter(pk=appointment.pk, status__in=allowed_from).update(
        status=to, revision=appointment.revision + 1, **fields
    )
    if not updated:
        raise ValidationError(
            _("This appointment is %(status)s; that change is not possible.")
            % {"status": appointment.get_status_display()}
        )
    appointment.refresh_from_db()
    return appointment


def appointment_cancel(*, appointment: Appointment, by: User, reason: str) -> Appointment:
    if not reason.strip():
        raise ValidationError({"reason": _("Say why the appointment is cancelled.")})
    late = appointment.starts_at - timezone.now() < LATE_CANCEL
    return _status(
        appointment,
        allowed_from={Appointment.Status.BOOKED},
        to=Appointment.Status.CANCELLED,
        cancel_reason=reason.strip()[:300],
        cancelled_late=late,
    )


def appointment_check_in(*, appointment: Appointment, by: User) -> Appointment:
    return _status(appointment, allowed_from={Appointment.Status.BOOKED}, to=Appointment.Status.CHECKED_IN)


def appointment_no_show(*, appointment: Appointment, by: User) -> Appointment:
    if appointment.starts_at > timezone.now():
        raise ValidationError(_("The appointment has not started yet."))
    return _status(appointment, allowed_from={Appointment.Status.BOOKED}, to=Appointment.Status.NO_SHOW)


def plan_next_slots(
    *, plan: TreatmentPlan, location: Location, practitioner: User | None = None, count: int = 5
) -> list[tuple[datetime, Room | None]]:
    """Proposed starts for a plan's next session: after the plan's minimum interval since its
    last session or booked session, with the practitioner and a room of the location free."""
    from treatments.models import TreatmentSession

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
        # The interval counts calendar days; the search starts at that day's opening time.
        day = max(anchors).astimezone(zone).date() + timedelta(days=plan.min_interval_days)
        earliest = max(earliest, datetime.combine(day, DAY_START, tzinfo=zone))
    duration = DEFAULT_DURATIONS[Appointment.Kind.TREATMENT]
    rooms = list(Room.objects.filter(location=location, is_active=True).order_by("name"))
    room_busy: dict[int, list[tuple[datetime, datetime]]] = {r.pk: [] for r in rooms}
    for room_id, start, stop in Appointment.objects.filter(
        room__in=rooms, status__in=ACTIVE_STATUSES, starts_at__lt=earliest + timedelta(days=8), ends_at__gt=earliest
    ).values_list("room_id", "starts_at", "ends_at"):
        room_busy[room_id].append((start, stop))
    slots: list[tuple[datetime, Room | None]] = []
    for start in free_starts(
        practitioner=practitioner, room=None, location=location, after=earliest, duration=duration, count=count * 8
    ):
        end = start + duration
        room = next((r for r in rooms if all(not (b < end and start < e) for b, e in room_busy[r.pk])), None)
        if room is not None or not rooms:
            slots.append((start, room))
        if len(slots) >= count:
            break
    return slots
