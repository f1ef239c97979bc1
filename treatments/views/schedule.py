"""Schedule settings: managers edit them; the rest of the team reads the hours. Also the
no-show report for the front desk."""

from __future__ import annotations

from datetime import time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from mesoclinic.access import Role, has_role, role_required, staff_required
from mesoclinic.audit import read_event_record
from mesoclinic.forms import form_add_validation_error
from mesoclinic.models import Location, Room, User
from treatments.forms.booking import practitioners
from treatments.forms.schedule import (
    ClosureForm,
    HoursGridForm,
    KindDurationsForm,
    LocationForm,
    NoShowFilterForm,
    RoomCreateForm,
    RoomUpdateForm,
    exception_zone,
)
from treatments.models import AppointmentKindSetting, OpeningHours, ScheduleException, WorkingHours
from treatments.selectors_booking import (
    NO_SHOW_REPORT_LIMIT,
    appointments_inside,
    exceptions_upcoming,
    locations_overview,
    week_hours,
)
from treatments.selectors_booking import no_show_report as no_show_rows
from treatments.services import schedule as services


def _status(*forms: Any) -> int:
    return 400 if any(form is not None and form.is_bound and form.errors for form in forms) else 200


@require_GET
@staff_required
def location_list(request: HttpRequest) -> HttpResponse:
    locations = [
        {"location": location, "week": week_hours(list(location.opening_hours.all()), start="opens", end="closes")}
        for location in locations_overview()
    ]
    context = {
        "locations": locations,
        "practitioners": practitioners(),
        "can_edit": has_role(request.user, Role.MANAGER),
    }
    return render(request, "treatments/schedule/location_list.html", context)


@require_http_methods(["GET", "POST"])
@role_required(Role.MANAGER)
def location_create(request: HttpRequest) -> HttpResponse:
    form = LocationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            location = services.location_create(by=request.user, **form.cleaned_data)
        except ValidationError as error:
            form_add_validation_error(form, error)
        else:
            messages.success(request, _("Location created. Now set its opening hours and rooms."))
            return redirect("location_edit", location_id=location.pk)
    return render(request, "treatments/schedule/location_create.html", {"form": form}, status=_status(form))


def _location_initial(location: Location) -> dict[str, Any]:
    return {
        "name": location.name,
        "address": location.address,
        "phone": location.phone,
        "time_zone": location.time_zone,
    }


@require_http_methods(["GET", "POST"])
@role_required(Role.MANAGER)
def location_edit(request: HttpRequest, location_id: int) -> HttpResponse:
    """Details, weekly opening hours and rooms of one location; each part has its own form
    (``action`` says which was sent) so an error in one keeps the others untouched."""
    location = get_object_or_404(Location, pk=location_id)
    rows = list(OpeningHours.objects.filter(location=location).values_list("weekday", "opens", "closes"))
    rooms = list(Room.objects.filter(location=location).order_by("-is_active", "name"))
    post = request.POST if request.method == "POST" else None
    action = post.get("action") if post else None
    details = LocationForm(post if action == "details" else None, initial=_location_initial(location))
    hours = HoursGridForm(post if action == "hours" else None, rows=rows, prefix="hours")
    room_new = RoomCreateForm(post if action == "room_add" else None, prefix="room_new")
    room_forms = {
        room.pk: RoomUpdateForm(
            post if action == f"room_{room.pk}" else None,
            prefix=f"room{room.pk}",
            initial={"name": room.name, "is_active": room.is_active},
        )
        for room in rooms
    }
    if post is not None:
        done = _location_edit_apply(request, location, action, details, hours, room_new, room_forms, rooms)
        if done:
            return redirect("location_edit", location_id=location.pk)
        # A refused update may have changed the object in memory: show what is saved.
        location.refresh_from_db()
    context = {
        "location": location,
        "details": details,
        "hours": hours,
        "hours_unset": not rows,
        "room_new": room_new,
        "rooms": [(room, room_forms[room.pk]) for room in rooms],
    }
    status = _status(details, hours, room_new, *room_forms.values())
    if post is not None and action not in {"details", "hours", "room_add", *(f"room_{r.pk}" for r in rooms)}:
        status = 400
        messages.error(request, _("Unknown action."))
    return render(request, "treatments/schedule/location_edit.html", context, status=status)


def _location_edit_apply(
    request: HttpRequest,
    location: Location,
    action: str | None,
    details: LocationForm,
    hours: HoursGridForm,
    room_new: RoomCreateForm,
    room_forms: dict[int, RoomUpdateForm],
    rooms: list[Room],
) -> bool:
    """Run the service for the form that was sent; True once saved."""
    try:
        if action == "details" and details.is_valid():
            services.location_update(location=location, by=request.user, **details.cleaned_data)
            messages.success(request, _("Location saved."))
            return True
        if action == "hours" and hours.is_valid():
            services.opening_hours_replace(location=location, rows=hours.cleaned_data["rows"])
            messages.success(request, _("Opening hours saved."))
            return True
        if action == "room_add" and room_new.is_valid():
            services.room_create(location=location, name=room_new.cleaned_data["name"], by=request.user)
            messages.success(request, _("Room added."))
            return True
        for room in rooms:
            form = room_forms[room.pk]
            if action == f"room_{room.pk}" and form.is_valid():
                services.room_update(room=room, by=request.user, **form.cleaned_data)
                messages.success(request, _("Room saved."))
                return True
    except ValidationError as error:
        target = {"details": details, "hours": hours, "room_add": room_new}.get(action or "")
        if target is None:
            target = next(form for pk, form in room_forms.items() if action == f"room_{pk}")
        form_add_validation_error(target, error)
    return False


def _practitioner_or_404(user_id: int) -> User:
    person = get_object_or_404(User.objects.select_related("default_location"), pk=user_id, is_active=True)
    if not has_role(person, Role.PRACTITIONER, Role.MANAGER):
        raise Http404
    return person


@require_http_methods(["GET", "POST"])
@staff_required
def working_hours_edit(request: HttpRequest, user_id: int) -> HttpResponse:
    """A practitioner's week at each location; everyone reads it, a manager edits it."""
    can_edit = has_role(request.user, Role.MANAGER)
    if request.method == "POST" and not can_edit:
        raise PermissionDenied
    person = _practitioner_or_404(user_id)
    locations = list(locations_overview().filter(is_active=True))
    saved = list(WorkingHours.objects.filter(practitioner=person).order_by("weekday", "starts"))
    posted = request.POST.get("location") if request.method == "POST" else None
    if posted is not None and posted not in {str(location.pk) for location in locations}:
        messages.error(request, _("Choose a location."))
        posted = None
    grids = []
    bound: HoursGridForm | None = None
    for location in locations:
        mine = [row for row in saved if row.location_id == location.pk]
        data = request.POST if posted == str(location.pk) else None
        form = HoursGridForm(data, rows=[(r.weekday, r.starts, r.ends) for r in mine], prefix=f"loc{location.pk}")
        if data is not None:
            bound = form
            if form.is_valid():
                try:
                    services.working_hours_replace(
                        practitioner=person, location=location, rows=form.cleaned_data["rows"]
                    )
                except ValidationError as error:
                    form_add_validation_error(form, error)
                else:
                    messages.success(request, _("Working hours saved."))
                    return redirect("working_hours_edit", user_id=person.pk)
        grids.append(
            {
                "location": location,
                "form": form,
                "week": week_hours(mine, start="starts", end="ends"),
                "opening": week_hours(list(location.opening_hours.all()), start="opens", end="closes"),
                "opening_unset": not location.opening_hours.all(),
            }
        )
    context = {
        "person": person,
        "grids": grids,
        "hours_unset": not saved,
        "can_edit": can_edit,
        "others": practitioners().exclude(pk=person.pk),
    }
    status = 400 if request.method == "POST" and (bound is None or bound.errors) else 200
    return render(request, "treatments/schedule/working_hours.html", context, status=status)


def _closure_form(request: HttpRequest, data: Any = None) -> ClosureForm | None:
    """Managers record closures and anyone's leave; a practitioner only their own leave."""
    if has_role(request.user, Role.MANAGER):
        return ClosureForm(data, practitioners=practitioners())
    if has_role(request.user, Role.PRACTITIONER):
        own = User.objects.filter(pk=request.user.pk)
        return ClosureForm(data, practitioners=own, own_leave_only=True, initial={"practitioner": request.user.pk})
    return None


def _may_remove(user: Any, exception: ScheduleException) -> bool:
    if has_role(user, Role.MANAGER):
        return True
    return exception.location_id is None and exception.practitioner_id == user.pk and has_role(user, Role.PRACTITIONER)


def _calendar_url(location_id: int, day: Any) -> str:
    return reverse("calendar_day") + "?" + urlencode({"location": location_id, "day": day.isoformat()})


def _inside_rows(exception: ScheduleException) -> list[dict[str, Any]]:
    rows = []
    for appointment in appointments_inside(exception):
        local = appointment.starts_at.astimezone(ZoneInfo(appointment.location.time_zone))
        rows.append(
            {"appointment": appointment, "local": local, "url": _calendar_url(appointment.location_id, local.date())}
        )
    return rows


def _exception_row(user: Any, exception: ScheduleException) -> dict[str, Any]:
    """The period as it was entered: whole days when it runs midnight to midnight locally."""
    zone = exception_zone(location=exception.location, practitioner=exception.practitioner)
    first, last = exception.starts_at.astimezone(zone), exception.ends_at.astimezone(zone)
    whole_days = first.time() == time.min and last.time() == time.min
    return {
        "exception": exception,
        "first": first,
        "last": last,
        "last_day": (last - timedelta(days=1)).date(),
        "whole_days": whole_days,
        "can_remove": _may_remove(user, exception),
    }


@require_http_methods(["GET", "POST"])
@staff_required
def closure_list(request: HttpRequest) -> HttpResponse:
    form = _closure_form(request, request.POST if request.method == "POST" else None)
    if request.method == "POST":
        if form is None:
            raise PermissionDenied
        if form.is_valid():
            data = form.cleaned_data
            try:
                exception = services.schedule_exception_create(
                    location=data.get("location"),
                    practitioner=data.get("practitioner"),
                    starts_at=data["starts_at"],
                    ends_at=data["ends_at"],
                    reason=data["reason"],
                    by=request.user,
                )
            except ValidationError as error:
                form_add_validation_error(form, error)
            else:
                messages.success(request, _("Saved."))
                return redirect(reverse("closure_list") + "?" + urlencode({"created": exception.pk}))
    created = None
    wanted = request.GET.get("created", "")
    if wanted.isdecimal():
        created = ScheduleException.objects.select_related("location", "practitioner").filter(pk=int(wanted)).first()
    exceptions = [_exception_row(request.user, exception) for exception in exceptions_upcoming()]
    context = {
        "form": form,
        "exceptions": exceptions,
        "created": created,
        "inside": _inside_rows(created) if created else [],
    }
    return render(request, "treatments/schedule/closure_list.html", context, status=_status(form))


@require_POST
@staff_required
def closure_remove(request: HttpRequest, exception_id: int) -> HttpResponse:
    exception = get_object_or_404(ScheduleException, pk=exception_id)
    if not _may_remove(request.user, exception):
        raise PermissionDenied
    services.schedule_exception_remove(exception=exception, by=request.user)
    messages.success(request, _("Removed."))
    return redirect("closure_list")


@require_http_methods(["GET", "POST"])
@role_required(Role.MANAGER)
def kind_durations(request: HttpRequest) -> HttpResponse:
    current = dict(AppointmentKindSetting.objects.values_list("kind", "default_minutes"))
    form = KindDurationsForm(request.POST or None, initial=current)
    if request.method == "POST" and form.is_valid():
        try:
            with transaction.atomic():
                for kind, minutes in form.cleaned_data.items():
                    if current.get(kind) != minutes:
                        services.kind_duration_set(kind=kind, minutes=minutes, by=request.user)
        except ValidationError as error:
            form_add_validation_error(form, error)
        else:
            messages.success(request, _("Durations saved."))
            return redirect("kind_durations")
    return render(request, "treatments/schedule/kind_durations.html", {"form": form}, status=_status(form))


@require_GET
@role_required(Role.FRONT_DESK, Role.MANAGER)
def no_show_report(request: HttpRequest) -> HttpResponse:
    data = request.GET.copy()
    today = timezone.localdate()
    data.setdefault("since", (today - timedelta(days=90)).isoformat())
    data.setdefault("until", today.isoformat())
    form = NoShowFilterForm(data)
    rows = []
    if form.is_valid():
        filters = form.cleaned_data
        rows = no_show_rows(location=filters["location"], since=filters["since"], until=filters["until"])
        # Names of many patients at once: one audit row for the report, not one per patient.
        read_event_record(request, patient_id=None, what="no-show report")
    context = {"form": form, "rows": rows, "capped": len(rows) >= NO_SHOW_REPORT_LIMIT}
    return render(request, "treatments/no_show_report.html", context, status=_status(form))
