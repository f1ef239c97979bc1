"""Demo calendar: hours, closures, leave and six weeks of appointments in varied states."""

from __future__ import annotations

import random
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from mesoclinic.models import Location, Room, User
from patients.models import Patient
from patients.services.registry import patient_create
from treatments.models import (
    Appointment,
    AppointmentChange,
    OpeningHours,
    ScheduleException,
    TreatmentPlan,
    TreatmentSession,
    WorkingHours,
)

# email of the patient → (protocol name prefix, final status, sessions to record)

FULL_DAY = ((time(9), time(13)), (time(14), time(19)))
MORNING = ((time(9), time(13)),)
AFTERNOON = ((time(14), time(19)),)
OPENING_HOURS = {**dict.fromkeys(range(5), FULL_DAY), 5: MORNING}  # Sunday closed
# Each practitioner's week, by weekday; someone not listed works Monday to Friday.
DEMO_WORKING_HOURS = {
    "practitioner@demo.clinic": {0: FULL_DAY, 1: FULL_DAY, 3: FULL_DAY},
    "practitioner3@demo.clinic": {2: FULL_DAY, 4: FULL_DAY, 5: MORNING},
    "practitioner2@demo.clinic": {0: AFTERNOON, 2: FULL_DAY, 3: FULL_DAY, 4: MORNING, 5: MORNING},
}
MINUTES = {Appointment.Kind.CONSULTATION: 45, Appointment.Kind.REVIEW: 30, Appointment.Kind.TREATMENT: 60}
WEEKS = 3
CANCEL_REASONS = (
    "Patient unwell",
    "Work commitment, will call back",
    "Childcare problem",
    "Train strike",
    "Wants to think about the plan",
)
LATE_CANCEL_REASONS = ("Called in the morning: fever", "Car broke down", "Forgot, called after the reminder")
NOTES = ("First visit, referred by a friend", "Bring previous photos", "Prefers the afternoon", "Speaks English")
FIRST_NAMES = (
    "Léa", "Manon", "Chloé", "Emma", "Julie", "Laura", "Sarah", "Pauline", "Mathilde", "Clara", "Océane",
    "Anaïs", "Margaux", "Lucie", "Élodie", "Justine", "Céline", "Nathalie", "Isabelle", "Thomas", "Nicolas",
    "Julien", "Antoine",
)  # fmt: skip
LAST_NAMES = (
    "Bernard", "Petit", "Durand", "Leroy", "Simon", "Laurent", "Michel", "Fontaine", "Chevalier", "Robin",
    "Mercier", "Blanc", "Guérin", "Boyer", "Roux", "Fournier", "Girard", "Bonnet", "Dupont", "Lemaire",
    "Faure", "André", "Gauthier", "Perrin", "Morel", "Clément", "Lucas", "Renaud", "Colin",
)  # fmt: skip


def _easter(year: int) -> date:
    """Gregorian Easter Sunday (the anonymous algorithm)."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = divmod(b, 4)
    g = (8 * b + 13) // 25
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    l = (32 + 2 * e + 2 * i - h - k) % 7  # noqa: E741 - the algorithm's own name
    m = (a + 11 * h + 22 * l) // 451
    month, day = divmod(h + l - 7 * m + 114, 31)
    return date(year, month, day + 1)


def french_public_holidays(year: int) -> dict[date, str]:
    easter = _easter(year)
    return {
        date(year, 1, 1): "New Year's Day",
        easter + timedelta(days=1): "Easter Monday",
        date(year, 5, 1): "Labour Day",
        date(year, 5, 8): "Victory in Europe Day",
        easter + timedelta(days=39): "Ascension Day",
        easter + timedelta(days=50): "Whit Monday",
        date(year, 7, 14): "Bastille Day",
        date(year, 8, 15): "Assumption Day",
        date(year, 11, 1): "All Saints' Day",
        date(year, 11, 11): "Armistice Day",
        date(year, 12, 25): "Christmas Day",
    }


def _ascii(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()


def _calendar_patients(*, city: str, count: int, first_index: int, created_by: User) -> None:
    """Demographics-only patients, so that the calendar is not six people coming every day.
    Names pair a first and a last name by index (23 and 29 are coprime: no pair repeats)."""
    wanted = []
    for k in range(first_index, first_index + count):
        first, last = FIRST_NAMES[k % len(FIRST_NAMES)], LAST_NAMES[k % len(LAST_NAMES)]
        wanted.append((first, last, f"{_ascii(first)}.{_ascii(last)}@example.net", k))
    existing = set(Patient.objects.filter(email__in=[w[2] for w in wanted]).values_list("email", flat=True))
    for first, last, email, k in wanted:
        if email in existing:
            continue
        patient_create(
            created_by=created_by,
            first_name=first,
            last_name=last,
            birth_date=date(1960 + k % 40, 1 + k % 12, 1 + k % 28),
            sex="male" if first in ("Thomas", "Nicolas", "Julien", "Antoine") else "female",
            email=email,
            phone=f"+3361{k:07d}",
            city=city,
            country="FR",
            preferred_language="en" if k % 9 == 0 else "fr",
            email_transactional=True,
        )


def _hours_seed(*, location: Location, practitioners: list[User]) -> None:
    if not OpeningHours.objects.filter(location=location).exists():
        OpeningHours.objects.bulk_create(
            OpeningHours(location=location, weekday=weekday, opens=opens, closes=closes)
            for weekday, periods in OPENING_HOURS.items()
            for opens, closes in periods
        )
    for practitioner in practitioners:
        if WorkingHours.objects.filter(practitioner=practitioner, location=location).exists():
            continue
        week = DEMO_WORKING_HOURS.get(practitioner.email, dict.fromkeys(range(5), FULL_DAY))
        WorkingHours.objects.bulk_create(
            WorkingHours(practitioner=practitioner, location=location, weekday=weekday, starts=starts, ends=ends)
            for weekday, periods in week.items()
            for starts, ends in periods
        )


def _closures_seed(
    *, location: Location, on_leave: User | None, today: date, zone: ZoneInfo, by: User
) -> tuple[set[date], set[date]]:
    """The next public holiday closes the location; ``on_leave`` is away the week after next.
    Returns (closed days, leave days); past holidays are closed days too (nobody was booked)."""
    holidays = {**french_public_holidays(today.year), **french_public_holidays(today.year + 1)}
    holidays |= french_public_holidays(today.year - 1)
    upcoming = min(day for day in holidays if day > today)
    midnight = datetime.combine(upcoming, time.min, tzinfo=zone)
    ScheduleException.objects.get_or_create(
        location=location,
        practitioner=None,
        starts_at=midnight,
        defaults={
            "ends_at": midnight + timedelta(days=1),
            "reason": f"Public holiday: {holidays[upcoming]}",
            "created_by": by,
        },
    )
    leave: set[date] = set()
    if on_leave is not None:
        monday = today + timedelta(days=14 - today.weekday())
        leave = {monday + timedelta(days=n) for n in range(7)}
        start = datetime.combine(monday, time.min, tzinfo=zone)
        if not ScheduleException.objects.filter(practitioner=on_leave, reason="Annual leave").exists():
            ScheduleException.objects.create(
                practitioner=on_leave,
                starts_at=start,
                ends_at=start + timedelta(days=7),
                reason="Annual leave",
                created_by=by,
            )
    return set(holidays), leave


@dataclass
class _Slot:
    practitioner: User
    room: Room | None
    starts_at: datetime
    kind: str
    minutes: int
    patient: Patient | None = None
    plan: TreatmentPlan | None = None
    note: str = ""


def _slots(
    *,
    practitioner: User,
    room: Room | None,
    days: list[date],
    fill: set[date],
    zone: ZoneInfo,
    patients: list[Patient],
    first: dict[tuple[int, date], list[_Slot]],
    rng: random.Random,
) -> list[_Slot]:
    """A practitioner's working ``days``: what ``first`` holds opens the day (a plan's
    session), then, on the days in ``fill``, consultations and reviews with a few gaps."""
    slots: list[_Slot] = []
    pool = list(patients)
    rng.shuffle(pool)
    week = DEMO_WORKING_HOURS.get(practitioner.email, dict.fromkeys(range(5), FULL_DAY))
    for day in days:
        opening = list(first.get((practitioner.pk, day), []))
        for starts, ends in week.get(day.weekday(), ()):
            moment = datetime.combine(day, starts, tzinfo=zone)
            end = datetime.combine(day, ends, tzinfo=zone)
            while opening or day in fill:
                if opening:
                    slot = opening.pop(0)
                    slot.starts_at, slot.room = moment, room
                elif rng.random() < 0.15:
                    moment += timedelta(minutes=rng.choice((15, 30)))
                    continue
                else:
                    kind = rng.choices((Appointment.Kind.CONSULTATION, Appointment.Kind.REVIEW), (2, 3))[0]
                    note = rng.choice(NOTES) if rng.random() < 0.1 else ""
                    slot = _Slot(
                        practitioner, room, moment, kind, MINUTES[kind], pool[len(slots) % len(pool)], note=note
                    )
                if moment + timedelta(minutes=slot.minutes) > end:
                    break
                slots.append(slot)
                moment += timedelta(minutes=slot.minutes)
    return slots


def _plan_sessions(
    *, practitioners: list[User], workdays: dict[int, list[date]], today: date
) -> dict[tuple[int, date], list[_Slot]]:
    """The next session of every consented or active plan, on the first working day after
    the plan's interval (up to eight weeks ahead)."""
    first: dict[tuple[int, date], list[_Slot]] = {}
    plans = TreatmentPlan.objects.filter(
        status__in=[TreatmentPlan.Status.CONSENTED, TreatmentPlan.Status.ACTIVE],
        practitioner__in=practitioners,
        patient__status=Patient.Status.ACTIVE,
    ).select_related("patient", "practitioner")
    for plan in plans:
        sessions = TreatmentSession.objects.filter(patient=plan.patient_id)
        last = sessions.order_by("-performed_at").values_list("performed_at", flat=True).first()
        earliest = today + timedelta(days=1)
        if last is not None:
            earliest = max(earliest, timezone.localdate(last) + timedelta(days=plan.min_interval_days))
        day = next((d for d in workdays.get(plan.practitioner_id, []) if d >= earliest), None)
        if day is not None:
            slot = _Slot(plan.practitioner, None, None, Appointment.Kind.TREATMENT, 60, plan.patient, plan)  # type: ignore[arg-type]
            first.setdefault((plan.practitioner_id, day), []).append(slot)
    return first


def _change(
    appointment: Appointment, action: str, by: User | None, at: datetime, **fields: object
) -> AppointmentChange:
    return AppointmentChange(appointment=appointment, action=action, by=by, at=at, **fields)


def _change_ensure(appointment: Appointment, action: str, by: User, **fields: object) -> None:
    """The booking service writes its own history once the booking step lands; until then
    (and never twice) the demo writes it."""
    if not AppointmentChange.objects.filter(appointment=appointment, action=action).exists():
        _change(appointment, action, by, timezone.now(), **fields).save()


def _past_create(
    slots: list[_Slot], *, location: Location, booked_by: User, now: datetime, today: date, rng: random.Random
) -> int:
    """Appointments that already happened (the booking service refuses the past): written
    directly, each with the history a front desk would have left."""
    started = [s for s in slots if s.starts_at <= now - timedelta(minutes=5)]
    if not started:
        return 0
    # The two patients seen most often missed a few: the no-show report has something to show.
    seen: dict[int, int] = {}
    for slot in started:
        if slot.patient is not None and slot.starts_at.date() < today:
            seen[slot.patient.pk] = seen.get(slot.patient.pk, 0) + 1
    prone = dict.fromkeys(sorted(seen, key=lambda pk: (-seen[pk], pk))[:2], 0)
    todays = [s for s in started if s.starts_at.date() == today and s.patient is not None]
    checked_in = {id(s) for s in todays[-2:]}
    appointments, changes = [], []
    for slot in started:
        created_at = slot.starts_at - timedelta(days=rng.randint(2, 20), hours=rng.randint(0, 8))
        appointment = Appointment(
            location=location,
            practitioner=slot.practitioner,
            room=slot.room,
            patient=slot.patient,
            plan=slot.plan,
            kind=slot.kind,
            starts_at=slot.starts_at,
            ends_at=slot.starts_at + timedelta(minutes=slot.minutes),
            note=slot.note,
            created_by=booked_by,
            created_at=created_at,
            revision=2,
            status=Appointment.Status.COMPLETED,
        )
        history = [_change(appointment, "booked", booked_by, created_at, to_starts_at=slot.starts_at)]
        roll = rng.random()
        patient_id = slot.patient.pk if slot.patient else None
        if id(slot) in checked_in or (slot.patient is not None and appointment.ends_at > now):
            appointment.status = Appointment.Status.CHECKED_IN
            history.append(_change(appointment, "checked_in", booked_by, slot.starts_at - timedelta(minutes=4)))
        elif (patient_id in prone and prone[patient_id] < 3) or (slot.patient is not None and roll < 0.04):
            if patient_id in prone:
                prone[patient_id] += 1
            appointment.status = Appointment.Status.NO_SHOW
            history.append(_change(appointment, "no_show", booked_by, slot.starts_at + timedelta(minutes=20)))
        elif roll < 0.15:
            late = roll < 0.09
            appointment.status = Appointment.Status.CANCELLED
            appointment.cancelled_late = late
            appointment.cancel_reason = rng.choice(LATE_CANCEL_REASONS if late else CANCEL_REASONS)
            at = slot.starts_at - (timedelta(hours=3) if late else timedelta(days=rng.randint(2, 6)))
            history.append(
                _change(appointment, "cancelled", booked_by, max(at, created_at), reason=appointment.cancel_reason)
            )
        else:
            history.append(_change(appointment, "completed", slot.practitioner, appointment.ends_at))
        appointments.append(appointment)
        changes.extend(history)
    Appointment.objects.bulk_create(appointments)
    for change in changes:
        change.appointment_id = change.appointment.pk
    AppointmentChange.objects.bulk_create(changes)
    return len(appointments)


def _future_book(slots: list[_Slot], *, location: Location, booked_by: User, now: datetime, rng: random.Random) -> int:
    """Appointments still to come, through the booking service (its checks and history).
    A slot it refuses (hours, closure, leave, a clash) is skipped: the demo never fails."""
    from treatments.services.booking import appointment_book, appointment_cancel, appointment_check_in

    booked: list[Appointment] = []
    for slot in slots:
        if slot.starts_at <= now - timedelta(minutes=5):
            continue
        try:
            with transaction.atomic():
                appointment = appointment_book(
                    location=location,
                    practitioner=slot.practitioner,
                    kind=slot.kind,
                    starts_at=slot.starts_at,
                    created_by=booked_by,
                    patient=slot.patient,
                    room=slot.room,
                    duration=timedelta(minutes=slot.minutes),
                    plan=slot.plan,
                    note=slot.note,
                )
                _change_ensure(appointment, "booked", booked_by, to_starts_at=appointment.starts_at)
        except ValidationError:
            continue
        booked.append(appointment)
    for appointment in booked:
        try:
            with transaction.atomic():
                # A plan's next session stays booked: it shows on the calendar and the plan.
                if appointment.kind != "blocked" and appointment.plan_id is None and rng.random() < 0.05:
                    reason = rng.choice(CANCEL_REASONS)
                    appointment_cancel(appointment=appointment, by=booked_by, reason=reason)
                    _change_ensure(appointment, "cancelled", booked_by, reason=reason)
        except ValidationError:
            continue
    # Somebody is always early: two of today's patients are already in the waiting room.
    zone = ZoneInfo(location.time_zone)
    today = timezone.localdate(now, zone)
    already = Appointment.objects.filter(location=location, status="checked_in", starts_at__date=today).count()
    todays = [a for a in booked if timezone.localdate(a.starts_at, zone) == today and a.patient_id]
    for appointment in todays[: max(0, 2 - already)]:
        try:
            with transaction.atomic():
                appointment_check_in(appointment=appointment, by=booked_by)
                _change_ensure(appointment, "checked_in", booked_by)
        except ValidationError:
            continue
    return len(booked)


@transaction.atomic
def appointments_demo_seed(
    *,
    location: Location,
    practitioners: list[User],
    booked_by: User,
    city: str,
    on_leave: User | None = None,
    patients_per_practitioner: int = 24,
    first_patient_index: int = 0,
) -> int:
    """Opening and working hours, the next public holiday, a leave week, demo patients and
    three weeks of appointments either side of today at ``location``; return how many
    appointments were created. Skips what exists: a location with appointments gets none."""
    zone = ZoneInfo(location.time_zone)
    now = timezone.now()
    today = timezone.localdate(now, zone)
    _hours_seed(location=location, practitioners=practitioners)
    closed, leave = _closures_seed(location=location, on_leave=on_leave, today=today, zone=zone, by=booked_by)
    if not practitioners or Appointment.objects.filter(location=location).exists():
        return 0
    _calendar_patients(
        city=city,
        count=patients_per_practitioner * len(practitioners),
        first_index=first_patient_index,
        created_by=booked_by,
    )
    patients = list(Patient.objects.filter(status=Patient.Status.ACTIVE, city=city).order_by("pk").only("id", "status"))
    if not patients:
        return 0
    rng = random.Random(f"{location.name}-{today}")  # noqa: S311 - demo data, not secrets  # not a secret  # nosec B311
    days = [today + timedelta(days=n) for n in range(-7 * WEEKS, 7 * WEEKS + 1)]
    ahead = [today + timedelta(days=n) for n in range(1, 57)]
    workdays = {
        p.pk: [
            d
            for d in ahead
            if d.weekday() in DEMO_WORKING_HOURS.get(p.email, dict.fromkeys(range(5), FULL_DAY))
            and d not in closed
            and not (p == on_leave and d in leave)
        ]
        for p in practitioners
    }
    first = _plan_sessions(practitioners=practitioners, workdays=workdays, today=today)
    rooms = list(Room.objects.filter(location=location, is_active=True).order_by("name"))
    slots: list[_Slot] = []
    for index, practitioner in enumerate(practitioners):
        away = leave if practitioner == on_leave else set()
        fill = {d for d in days if d not in closed and d not in away}
        slots += _slots(
            practitioner=practitioner,
            # One room each, so that two practitioners never want the same one.
            room=rooms[index % len(rooms)] if rooms else None,
            days=sorted(fill | {d for (pk, d) in first if pk == practitioner.pk}),
            fill=fill,
            zone=zone,
            patients=patients,
            first=first,
            rng=rng,
        )
    # The team meets over lunch next Thursday (blocked time needs no patient nor opening hours).
    thursday = today + timedelta(days=(3 - today.weekday()) % 7 + 7)
    meeting = datetime.combine(thursday, time(13), tzinfo=zone)
    slots += [_Slot(p, None, meeting, Appointment.Kind.BLOCKED, 60, note="Staff meeting") for p in practitioners]
    slots.sort(key=lambda s: s.starts_at)
    created = _past_create(slots, location=location, booked_by=booked_by, now=now, today=today, rng=rng)
    return created + _future_book(slots, location=location, booked_by=booked_by, now=now, rng=rng)
