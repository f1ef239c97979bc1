"""The calendar: front desk and managers book; practitioners see it and book their own."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from mesoclinic.access import Role, has_role, patient_access, staff_required
from mesoclinic.forms import form_add_validation_error
from mesoclinic.models import Location
from treatments.forms.booking import BookingForm, practitioners
from treatments.models import Appointment, TreatmentPlan
from treatments.services import booking as services

BOOKERS = (Role.FRONT_DESK, Role.MANAGER)


def _location(request: HttpRequest) -> Location:
    locations = Location.objects.filter(is_active=True).order_by("name")
    wanted = request.GET.get("location")
    if wanted and wanted.isdigit():
        chosen = locations.filter(pk=int(wanted)).first()
        if chosen:
            return chosen
    default = getattr(request.user, "default_location_id", None)
    return locations.filter(pk=default).first() or get_object_or_404(locations[:1])


def _day(request: HttpRequest) -> date:
    try:
        return date.fromisoformat(request.GET.get("day", ""))
    except ValueError:
        return timezone.localdate()


@require_GET
@staff_required
def calendar_day(request: HttpRequest) -> HttpResponse:
    location = _location(request)
    day = _day(request)
    zone = ZoneInfo(location.time_zone)
    start = datetime.combine(day, time.min, tzinfo=zone)
    appointments = list(
        Appointment.objects.filter(location=location, starts_at__gte=start, starts_at__lt=start + timedelta(days=1))
        .select_related("patient", "practitioner", "room")
        .only(
            "id",
            "kind",
            "status",
            "starts_at",
            "ends_at",
            "revision",
            "note",
            "patient__id",
            "patient__first_name",
            "patient__last_name",
            "practitioner__id",
            "practitioner__full_name",
            "room__id",
            "room__name",
        )
        .order_by("starts_at")
    )
    columns = [
        {"practitioner": p, "appointments": [a for a in appointments if a.practitioner_id == p.pk]}
        for p in practitioners()
    ]
    context = {
        "location": location,
        "locations": Location.objects.filter(is_active=True).order_by("name"),
        "day": day,
        "previous_day": day - timedelta(days=1),
        "next_day": day + timedelta(days=1),
        "columns": columns,
        "can_book": has_role(request.user, *BOOKERS, Role.PRACTITIONER),
        "can_manage": has_role(request.user, *BOOKERS),
    }
    return render(request, "treatments/calendar_day.html", context)


@require_http_methods(["GET", "POST"])
@staff_required
def appointment_new(request: HttpRequest) -> HttpResponse:
    initial = {
        "patient": request.GET.get("patient"),
        "day": request.GET.get("day") or timezone.localdate(),
        "location": getattr(request.user, "default_location_id", None),
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
    """For a patient with a consented or active plan: the next session's free slots."""
    number = form.data.get("patient") or form.initial.get("patient")
    if not number or not str(number).isdigit():
        return {}
    plan = (
        TreatmentPlan.objects.filter(patient_id=int(number), status__in=["consented", "active"])
        .select_related("practitioner")
        .order_by("-created_at")
        .first()
    )
    if plan is None:
        return {}
    location = _location(request)
    return {
        "plan": plan,
        "plan_location": location,
        "plan_slots": services.plan_next_slots(plan=plan, location=location),
    }


@require_POST
@staff_required
def appointment_action(request: HttpRequest, appointment_id: int) -> HttpResponse:
    appointment = get_object_or_404(Appointment.objects.select_related("location"), pk=appointment_id)
    if not has_role(request.user, *BOOKERS) and appointment.practitioner_id != request.user.pk:
        raise PermissionDenied
    action = request.POST.get("action")
    try:
        if action == "check_in":
            services.appointment_check_in(appointment=appointment, by=request.user)
        elif action == "no_show":
            services.appointment_no_show(appointment=appointment, by=request.user)
        elif action == "move":
            zone = ZoneInfo(appointment.location.time_zone)
            try:
                new_start = datetime.combine(
                    date.fromisoformat(request.POST.get("day", "")),
                    time.fromisoformat(request.POST.get("start", "")),
                    tzinfo=zone,
                )
                revision = int(request.POST.get("revision", ""))
            except ValueError:
                messages.error(request, _("Enter the new day and time."))
            else:
                moved = services.appointment_reschedule(
                    appointment=appointment, starts_at=new_start, by=request.user, revision=revision
                )
                messages.success(
                    request, _("Moved to %(at)s.") % {"at": timezone.localtime(moved.starts_at).strftime("%d/%m %H:%M")}
                )
                appointment = moved
        elif action == "cancel":
            services.appointment_cancel(appointment=appointment, by=request.user, reason=request.POST.get("reason", ""))
        else:
            messages.error(request, _("Unknown action."))
    except services.SlotTaken as taken:
        free = ", ".join(timezone.localtime(a).strftime("%d/%m %H:%M") for a in taken.alternatives)
        messages.error(request, f"{taken.messages[0]} {_('Free nearby:')} {free}")
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    if appointment.patient_id:
        patient_access(
            request, patient_id=appointment.patient_id, clinical=False, what=f"appointment {action}", action="edit"
        )
    day = timezone.localtime(appointment.starts_at).date()
    return redirect(reverse("calendar_day") + f"?location={appointment.location_id}&day={day}")
