"""The calendar: front desk and managers book; practitioners see it and book their own.

Calendar pages show who comes for what (names and appointment kinds), never clinical
notes: the team note is only on an appointment's own page. Times are shown in the
location's time zone, whatever the server's.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count, IntegerField, Q, QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from mesoclinic.access import Role, has_role, patient_access, staff_required
from mesoclinic.forms import day_in_range, form_add_validation_error
from mesoclinic.models import Location, Room, User
from patients.models import Patient
from treatments.forms.booking import BookingForm, practitioners
from treatments.models import Appointment, TreatmentPlan
from treatments.selectors_booking import patient_attendance
from treatments.services import booking as services

BOOKERS = (Role.FRONT_DESK, Role.MANAGER)
ACTIONS = ("check_in", "no_show", "move", "cancel")
LAYOUTS = ("grid", "list", "detail")


def _location(request: HttpRequest) -> Location:
    locations = Location.objects.filter(is_active=True).order_by("name")
    wanted = request.GET.get("location")
    if wanted and wanted.isdecimal():
        chosen = locations.filter(pk=int(wanted)).first()
        if chosen:
            return chosen
    default = getattr(request.user, "default_location_id", None)
    return locations.filter(pk=default).first() or get_object_or_404(locations[:1])


def _parse_day(text: str) -> date | None:
    """A day typed or linked; None for nonsense and for years no clinic books (9999-12-31
    would overflow the day-after arithmetic)."""
    try:
        day = date.fromisoformat(text)
    except ValueError:
        return None
    return day if day_in_range(day) else None


def _day(request: HttpRequest, parameter: str = "day", *, zone: ZoneInfo | None = None) -> date:
    return _parse_day(request.GET.get(parameter, "")) or timezone.localdate(timezone=zone)


def _by(request: HttpRequest) -> str:
    return "room" if request.GET.get("by") == "room" else "practitioner"


def _may_act(user: User, appointment: Appointment) -> bool:
    """Front desk and managers act on any appointment, a practitioner on their own."""
    return has_role(user, *BOOKERS) or appointment.practitioner_id == user.pk


class _CardText:
    """Labels and addresses every card needs, worked out once per page: a day holds
    hundreds of cards, and ``get_kind_display`` or ``{% url %}`` per card cost more than
    the SQL of the whole page (see B4 in docs/benchmarks.md)."""

    def __init__(self) -> None:
        self.kinds = {value: str(label) for value, label in Appointment.Kind.choices}
        self.statuses = {value: str(label) for value, label in Appointment.Status.choices}
        self.detail = reverse("appointment_detail", args=[0]).replace("/0/", "/{}/")
        self.action = reverse("appointment_action", args=[0]).replace("/0/", "/{}/")
        self.patient = reverse("patient_detail", args=[0]).replace("/0/", "/{}/")


def _card_flags(appointment: Appointment, user: User, now: datetime, text: _CardText | None = None) -> Appointment:
    """What the card offers: actions for those allowed, no-show once it has started."""
    text = text or _CardText()
    appointment.can_act = _may_act(user, appointment)
    appointment.has_started = appointment.starts_at <= now
    appointment.kind_label = text.kinds.get(appointment.kind, appointment.kind)
    appointment.status_label = text.statuses.get(appointment.status, appointment.status)
    appointment.detail_url = text.detail.format(appointment.pk)
    appointment.action_url = text.action.format(appointment.pk)
    appointment.patient_url = text.patient.format(appointment.patient_id) if appointment.patient_id else ""
    return appointment


def _calendar_appointments() -> QuerySet[Appointment]:
    """What a calendar card shows, in one query: names, kinds, times, never the note."""
    return (
        Appointment.objects.select_related("patient", "practitioner", "room")
        .only(
            "id",
            "location_id",
            "kind",
            "status",
            "starts_at",
            "ends_at",
            "revision",
            "patient__id",
            "patient__first_name",
            "patient__last_name",
            "practitioner__id",
            "practitioner__full_name",
            "practitioner__email",
            "room__id",
            "room__name",
        )
        .order_by("starts_at", "pk")
    )


def _lanes(location: Location, by: str, start: datetime, end: datetime) -> tuple[list[dict[str, Any]], int]:
    """The columns (day view) or rows (week view) and the number of patients still
    expected in that time.

    Every active practitioner, or every room of the location, plus whoever or whatever
    has an appointment without being in that list (a manager who treats, a room since
    closed, no room at all). Read from one grouped query, so that the appointments
    themselves are loaded only for the lanes on screen (see B4 in docs/benchmarks.md)."""
    field = "room_id" if by == "room" else "practitioner_id"
    labels = ("room__name",) if by == "room" else ("practitioner__full_name", "practitioner__email")
    present = list(
        Appointment.objects.filter(location=location, starts_at__gte=start, starts_at__lt=end)
        .values(field, *labels)
        .annotate(
            waiting=Count(
                "id", filter=Q(status=Appointment.Status.BOOKED, patient__isnull=False), output_field=IntegerField()
            )
        )
        .order_by()
    )
    waiting = sum(row["waiting"] for row in present)
    lanes: list[dict[str, Any]]
    if by == "room":
        lanes = [
            {"key": room.pk, "label": room.name}
            for room in Room.objects.filter(location=location, is_active=True).order_by("name")
        ]
        known = {lane["key"] for lane in lanes}
        extra = sorted((row for row in present if row["room_id"] not in known), key=lambda r: r["room__name"] or "")
        lanes += [{"key": row["room_id"], "label": row["room__name"]} for row in extra if row["room_id"] is not None]
        if any(row["room_id"] is None for row in present):
            lanes.append({"key": None, "label": _("No room")})
        return lanes, waiting
    lanes = [{"key": person.pk, "label": str(person)} for person in practitioners()]
    known = {lane["key"] for lane in lanes}
    for row in present:
        if row["practitioner_id"] not in known:
            label = row["practitioner__full_name"] or row["practitioner__email"]
            lanes.append({"key": row["practitioner_id"], "label": label})
    return lanes, waiting


def _lane_filter(by: str, lanes: list[dict[str, Any]]) -> Q:
    keys = [lane["key"] for lane in lanes if lane["key"] is not None]
    if by == "room":
        wanted = Q(room_id__in=keys)
        return wanted | Q(room__isnull=True) if any(lane["key"] is None for lane in lanes) else wanted
    return Q(practitioner_id__in=keys)


def _lane_key(by: str) -> Callable[[Appointment], int | None]:
    if by == "room":
        return lambda appointment: appointment.room_id
    return lambda appointment: appointment.practitioner_id


LANES_PER_PAGE = 8


def _lane_page(request: HttpRequest, lanes: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """A tablet shows a handful of columns: eight practitioners (or rooms) at a time."""
    pages = max(1, -(-len(lanes) // LANES_PER_PAGE))
    wanted = request.GET.get("lanes", "1")
    page = min(int(wanted), pages) if wanted.isdecimal() and 0 < len(wanted) < 4 and int(wanted) > 0 else 1
    first = (page - 1) * LANES_PER_PAGE
    params = request.GET.copy()
    links = []
    for number in range(1, pages + 1):
        params["lanes"] = str(number)
        shown = lanes[(number - 1) * LANES_PER_PAGE : number * LANES_PER_PAGE]
        label = f"{shown[0]['label']} – {shown[-1]['label']}" if shown else str(number)
        links.append({"url": "?" + params.urlencode(), "label": label, "current": number == page})
    return lanes[first : first + LANES_PER_PAGE], {"pages": links if pages > 1 else []}


def _query(**parameters: object) -> str:
    return "?" + urlencode({key: value for key, value in parameters.items() if value not in (None, "")})


def _nav(
    request: HttpRequest, *, location: Location, mode: str, by: str, day: date, step: timedelta, view: str = ""
) -> dict[str, Any]:
    """Links of the shared calendar header; each keeps the other choices as they are."""
    day_url, week_url = reverse("calendar_day"), reverse("calendar_week")
    here = day_url if mode == "day" else week_url
    key = "day" if mode == "day" else "week"
    return {
        "mode": mode,
        "by": by,
        "view": view,
        "location": location,
        "locations": Location.objects.filter(is_active=True).order_by("name"),
        "date_parameter": key,
        "date_value": day.isoformat(),
        "previous_url": here + _query(location=location.pk, by=by, view=view, **{key: (day - step).isoformat()}),
        "next_url": here + _query(location=location.pk, by=by, view=view, **{key: (day + step).isoformat()}),
        "today_url": here + _query(location=location.pk, by=by, view=view),
        "day_url": day_url + _query(location=location.pk, by=by, day=day.isoformat()),
        "week_url": week_url + _query(location=location.pk, by=by, week=day.isoformat()),
        "by_practitioner_url": here + _query(location=location.pk, view=view, **{key: day.isoformat()}),
        "by_room_url": here + _query(location=location.pk, by="room", view=view, **{key: day.isoformat()}),
        "grid_url": day_url + _query(location=location.pk, by=by, day=day.isoformat()),
        "list_url": day_url + _query(location=location.pk, by=by, day=day.isoformat(), view="list"),
        "can_book": has_role(request.user, *BOOKERS, Role.PRACTITIONER),
    }


@require_GET
@staff_required
def calendar_day(request: HttpRequest) -> HttpResponse:
    location = _location(request)
    zone = ZoneInfo(location.time_zone)
    day = _day(request, zone=zone)
    by = _by(request)
    view = "list" if request.GET.get("view") == "list" else ""
    start = datetime.combine(day, time.min, tzinfo=zone)
    end = datetime.combine(day + timedelta(days=1), time.min, tzinfo=zone)
    appointments_of_day = _calendar_appointments().filter(location=location, starts_at__gte=start, starts_at__lt=end)
    now, text = timezone.now(), _CardText()
    columns: list[dict[str, Any]] = []
    lane_pager: dict[str, Any] = {"pages": []}
    if view == "list":
        appointments = [_card_flags(a, request.user, now, text) for a in appointments_of_day]
        waiting = sum(1 for a in appointments if a.status == Appointment.Status.BOOKED and a.patient_id)
    else:
        columns, waiting = _lanes(location, by, start, end)
        columns, lane_pager = _lane_page(request, columns)
        appointments = [
            _card_flags(a, request.user, now, text) for a in appointments_of_day.filter(_lane_filter(by, columns))
        ]
        key = _lane_key(by)
        grouped: dict[int | None, list[Appointment]] = defaultdict(list)
        for appointment in appointments:
            grouped[key(appointment)].append(appointment)
        for column in columns:
            column["appointments"] = grouped.get(column["key"], [])
    context = {
        **_nav(request, location=location, mode="day", by=by, day=day, step=timedelta(days=1), view=view),
        "day": day,
        "is_today": day == timezone.localdate(timezone=zone),
        "columns": columns,
        "lane_pager": lane_pager,
        # The check-in list: the patients expected, in time order (blocked time has nobody).
        "arrivals": [a for a in appointments if a.kind != Appointment.Kind.BLOCKED] if view == "list" else [],
        "waiting": waiting,
        "return_url": request.get_full_path(),
        "layout": view or "grid",
    }
    with timezone.override(zone):
        return render(request, "treatments/calendar_day.html", context)


@require_GET
@staff_required
def calendar_week(request: HttpRequest) -> HttpResponse:
    location = _location(request)
    zone = ZoneInfo(location.time_zone)
    any_day = _day(request, "week", zone=zone)
    monday = any_day - timedelta(days=any_day.weekday())
    days = [monday + timedelta(days=n) for n in range(7)]
    by = _by(request)
    start = datetime.combine(monday, time.min, tzinfo=zone)
    end = datetime.combine(monday + timedelta(days=7), time.min, tzinfo=zone)
    rows, _waiting = _lanes(location, by, start, end)
    rows, lane_pager = _lane_page(request, rows)
    now, text = timezone.now(), _CardText()
    appointments = _calendar_appointments().filter(location=location, starts_at__gte=start, starts_at__lt=end)
    key = _lane_key(by)
    cells: dict[tuple[int | None, date], list[Appointment]] = defaultdict(list)
    for appointment in appointments.filter(_lane_filter(by, rows)):
        _card_flags(appointment, request.user, now, text)
        cells[(key(appointment), appointment.starts_at.astimezone(zone).date())].append(appointment)
    for row in rows:
        row["cells"] = [cells.get((row["key"], day), []) for day in days]
    context = {
        **_nav(request, location=location, mode="week", by=by, day=monday, step=timedelta(days=7)),
        "monday": monday,
        "sunday": days[-1],
        "days": [
            {"day": day, "url": reverse("calendar_day") + _query(location=location.pk, by=by, day=day.isoformat())}
            for day in days
        ],
        "rows": rows,
        "lane_pager": lane_pager,
        "today": timezone.localdate(timezone=zone),
    }
    with timezone.override(zone):
        return render(request, "treatments/calendar_week.html", context)


@require_http_methods(["GET", "POST"])
@staff_required
def appointment_new(request: HttpRequest) -> HttpResponse:
    initial = {
        "patient": request.GET.get("patient"),
        "day": request.GET.get("day") or timezone.localdate(),
        "location": request.GET.get("location") or getattr(request.user, "default_location_id", None),
        "practitioner": request.user.pk if has_role(request.user, Role.PRACTITIONER) else None,
    }
    data = request.POST.copy() if request.method == "POST" else None
    if data is not None and "T" in data.get("alternative", ""):
        # One of the proposed free starts: it sets both the day and the time.
        data["day"], data["start"] = data["alternative"].split("T", 1)
    form = BookingForm(data, initial=initial)
    alternatives: list[datetime] = []
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        if not has_role(request.user, *BOOKERS) and data["practitioner"].pk != request.user.pk:
            raise PermissionDenied
        try:
            appointment = services.appointment_book(
                location=data["location"],
                practitioner=data["practitioner"],
                room=data["room"],
                patient=data["patient_obj"],
                kind=data["kind"],
                starts_at=data["starts_at"],
                duration=timedelta(minutes=data["minutes"]) if data["minutes"] else None,
                note=data["note"],
                created_by=request.user,
                plan=data["plan_obj"],
            )
        except services.SlotTaken as taken:
            form.add_error(None, taken.messages)
            alternatives = taken.alternatives
        except ValidationError as error:
            form_add_validation_error(form, error)
        else:
            if appointment.patient_id:
                patient_access(
                    request, patient_id=appointment.patient_id, clinical=False, what="booking", action="edit"
                )
            messages.success(request, _("Booked."))
            url = (
                reverse("calendar_day")
                + f"?location={appointment.location_id}&day={timezone.localtime(appointment.starts_at).date()}"
            )
            return redirect(url)
    status = 409 if alternatives else (400 if form.is_bound and form.errors else 200)
    context = {"form": form, "alternatives": alternatives, **_plan_suggestions(request, form)}
    return render(request, "treatments/appointment_form.html", context, status=status)


def _plan_suggestions(request: HttpRequest, form: BookingForm) -> dict[str, object]:
    """The chosen patient (name, attendance) and, with a consented or active plan, the
    next session's free slots."""
    number = form.data.get("patient") or form.initial.get("patient")
    if not number or not str(number).isdecimal() or int(number) > 2**62:
        return {}
    patient = Patient.objects.filter(pk=int(number)).only("id", "first_name", "last_name", "status").first()
    if patient is None:
        return {}
    patient_access(request, patient_id=patient.pk, clinical=False, what="booking form")
    context: dict[str, object] = {"patient": patient, "attendance": patient_attendance(patient.pk)}
    plan = (
        TreatmentPlan.objects.filter(patient_id=patient.pk, status__in=["consented", "active"])
        .select_related("practitioner")
        .order_by("-created_at")
        .first()
    )
    if plan is None:
        return context
    location = _location(request)
    return {
        **context,
        "plan": plan,
        "plan_location": location,
        "plan_slots": services.plan_next_slots(plan=plan, location=location),
    }


@require_GET
@staff_required
def appointment_detail(request: HttpRequest, appointment_id: int) -> HttpResponse:
    appointment = get_object_or_404(
        Appointment.objects.select_related("location", "practitioner", "room", "patient", "created_by"),
        pk=appointment_id,
    )
    if appointment.patient_id:
        patient_access(request, patient_id=appointment.patient_id, clinical=False, what="appointment", action="view")
    _card_flags(appointment, request.user, timezone.now())
    zone = ZoneInfo(appointment.location.time_zone)
    card_layout = request.GET.get("card", "")
    if request.htmx and card_layout in LAYOUTS:
        # "Move, cancel…" on a calendar card: the card again, with every action form. The
        # calendar itself renders light cards, because hundreds of full ones are slow.
        card = {
            "a": appointment,
            "layout": card_layout,
            "by": _by(request),
            "return_url": _next_url(request),
            "full": True,
        }
        with timezone.override(zone):
            return render(request, "treatments/_appointment.html", card)
    context = {
        "a": appointment,
        "changes": list(appointment.changes.select_related("by").order_by("at", "pk")),
        "layout": "detail",
        "return_url": request.get_full_path(),
    }
    with timezone.override(zone):
        context["day_url"] = reverse("calendar_day") + _query(
            location=appointment.location_id, day=timezone.localdate(appointment.starts_at).isoformat()
        )
        return render(request, "treatments/appointment_detail.html", context)


@dataclass
class _Outcome:
    """What an action on a calendar card led to, for the card or the flash message."""

    message: str = ""
    error: str = ""
    status: int = 200
    alternatives: list[datetime] = field(default_factory=list)
    moved_away: bool = False


def _move(request: HttpRequest, appointment: Appointment) -> _Outcome:
    post = request.POST
    day_text, start_text = post.get("day", ""), post.get("start", "")
    if "T" in post.get("alternative", ""):
        # One of the free starts proposed after a refused move: it sets both day and time.
        day_text, start_text = post["alternative"].split("T", 1)
    new_day = _parse_day(day_text)
    try:
        if new_day is None:
            raise ValueError(day_text)
        new_start = datetime.combine(new_day, time.fromisoformat(start_text), tzinfo=timezone.get_current_timezone())
        revision = int(post.get("revision", ""))
        if not 0 < revision < 2**31:
            raise ValueError(revision)
    except ValueError:
        return _Outcome(error=_("Enter the new day and time."), status=400)
    previous_day = timezone.localdate(appointment.starts_at)
    moved = services.appointment_reschedule(
        appointment=appointment,
        starts_at=new_start,
        by=request.user,
        revision=revision,
        reason=post.get("reason", ""),
    )
    at = timezone.localtime(moved.starts_at)
    return _Outcome(
        message=_("Moved to %(at)s.") % {"at": at.strftime("%d/%m %H:%M")}, moved_away=at.date() != previous_day
    )


def _act(request: HttpRequest, appointment: Appointment, action: str) -> _Outcome:
    seen = request.POST.get("revision", "")
    # Refused because the appointment changed under the user (409) or because of what
    # they typed (400): the card then shows the appointment as it now is.
    conflict = appointment.status != Appointment.Status.BOOKED or (
        seen.isdecimal() and int(seen) != appointment.revision
    )
    try:
        if action == "check_in":
            services.appointment_check_in(appointment=appointment, by=request.user)
            return _Outcome(message=_("Checked in."))
        if action == "no_show":
            services.appointment_no_show(appointment=appointment, by=request.user)
            return _Outcome(message=_("Marked as a no-show."))
        if action == "cancel":
            services.appointment_cancel(appointment=appointment, by=request.user, reason=request.POST.get("reason", ""))
            return _Outcome(message=_("Cancelled."))
        if action == "move":
            return _move(request, appointment)
        return _Outcome(error=_("Unknown action."), status=400)
    except services.SlotTaken as taken:
        return _Outcome(error=taken.messages[0], status=409, alternatives=taken.alternatives)
    except ValidationError as error:
        return _Outcome(error=" ".join(error.messages), status=409 if conflict else 400)


def _next_url(request: HttpRequest) -> str:
    wanted = request.POST.get("next", "") if request.method == "POST" else request.GET.get("next", "")
    safe = url_has_allowed_host_and_scheme(
        wanted, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    )
    return wanted if safe and wanted.startswith("/") else ""


@require_POST
@staff_required
def appointment_action(request: HttpRequest, appointment_id: int) -> HttpResponse:
    appointment = get_object_or_404(
        Appointment.objects.select_related("location", "practitioner", "room", "patient"), pk=appointment_id
    )
    if not _may_act(request.user, appointment):
        raise PermissionDenied
    action = request.POST.get("action", "")
    if appointment.patient_id:
        what = f"appointment {action}" if action in ACTIONS else "appointment"
        patient_access(request, patient_id=appointment.patient_id, clinical=False, what=what, action="edit")
    zone = ZoneInfo(appointment.location.time_zone)
    next_url = _next_url(request)
    with timezone.override(zone):
        outcome = _act(request, appointment, action)
        if request.htmx:
            card = _card_flags(_calendar_appointments().get(pk=appointment.pk), request.user, timezone.now())
            layout = request.POST.get("layout", "grid")
            context = {
                "a": card,
                "layout": layout if layout in LAYOUTS else "grid",
                "by": "room" if request.POST.get("by") == "room" else "practitioner",
                "return_url": next_url,
                "card_message": outcome.message,
                "card_error": outcome.error,
                "alternatives": outcome.alternatives,
                "moved_away": outcome.moved_away,
                # A refused change keeps its forms open for another try.
                "full": bool(outcome.error),
            }
            return render(request, "treatments/_appointment.html", context, status=outcome.status)
        if outcome.error:
            free = ", ".join(timezone.localtime(start).strftime("%d/%m %H:%M") for start in outcome.alternatives)
            messages.error(request, f"{outcome.error} {_('Free nearby:')} {free}" if free else outcome.error)
        else:
            messages.success(request, outcome.message)
        if next_url and not (outcome.moved_away and request.POST.get("layout") != "detail"):
            return redirect(next_url)
        appointment.refresh_from_db(fields=["starts_at"])
        day = timezone.localdate(appointment.starts_at)
    return redirect(reverse("calendar_day") + _query(location=appointment.location_id, day=day.isoformat()))
