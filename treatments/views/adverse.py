"""Side effects and their follow-up: practitioners and managers only."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from mesoclinic.access import CLINICAL_ROLES, patient_access, role_required
from mesoclinic.audit import read_event_record
from mesoclinic.forms import form_add_validation_error
from patients.models import Patient
from treatments import selectors_adverse as selectors
from treatments.forms.adverse import AdverseEventForm, FollowUpForm, ResolveForm
from treatments.models import AdverseEvent
from treatments.services.adverse import (
    ALERT_GRADE,
    adverse_event_follow_up,
    adverse_event_record,
    adverse_event_resolve,
)

if TYPE_CHECKING:
    from mesoclinic.models import User


def _staff(request: HttpRequest) -> User:
    # role_required has already sent anonymous visitors to the sign-in page.
    return cast("User", request.user)


def _event(request: HttpRequest, event_id: int, *, what: str, action: str = "view") -> AdverseEvent:
    event = selectors.adverse_event_detail(event_id)
    if event is None:
        raise Http404
    patient_access(request, patient_id=event.patient_id, clinical=True, what=f"{what} {event.pk}", action=action)
    return event


@require_GET
@role_required(*CLINICAL_ROLES)
def adverse_list(request: HttpRequest, patient_id: int) -> HttpResponse:
    patient = get_object_or_404(Patient, pk=patient_id)
    patient_access(request, patient_id=patient.pk, clinical=True, what="side effects")
    events = selectors.patient_adverse_events(patient)
    return render(request, "treatments/adverse/list.html", {"patient": patient, "events": events})


@require_http_methods(["GET", "POST"])
@role_required(*CLINICAL_ROLES)
def adverse_create(request: HttpRequest, patient_id: int) -> HttpResponse:
    patient = get_object_or_404(Patient, pk=patient_id)
    patient_access(request, patient_id=patient.pk, clinical=True, what="side effect form", action="edit")
    initial = {"onset_at": timezone.localtime().replace(second=0, microsecond=0)}
    form = AdverseEventForm(request.POST or None, initial=initial, patient=patient)
    if request.method == "POST" and form.is_valid():
        try:
            event = adverse_event_record(patient=patient, recorded_by=_staff(request), **form.cleaned_data)
        except ValidationError as error:
            form_add_validation_error(form, error)
        else:
            messages.success(request, _("Side effect recorded."))
            if event.grade >= ALERT_GRADE:
                messages.warning(
                    request,
                    _("Grade %(grade)s: the practitioner and the managers are alerted by email.")
                    % {"grade": event.grade},
                )
            return redirect("adverse_detail", event_id=event.pk)
    status = 400 if form.is_bound and form.errors else 200
    return render(request, "treatments/adverse/form.html", {"patient": patient, "form": form}, status=status)


def _detail(
    request: HttpRequest,
    event: AdverseEvent,
    *,
    follow_up_form: FollowUpForm | None = None,
    resolve_form: ResolveForm | None = None,
    status: int = 200,
) -> HttpResponse:
    context = {
        "patient": event.patient,
        "event": event,
        "follow_up_form": follow_up_form or FollowUpForm(initial={"grade": event.grade}),
        "resolve_form": resolve_form or ResolveForm(),
        "watch_until": selectors.late_infection_watch_until(event),
    }
    return render(request, "treatments/adverse/detail.html", context, status=status)


@require_GET
@role_required(*CLINICAL_ROLES)
def adverse_detail(request: HttpRequest, event_id: int) -> HttpResponse:
    return _detail(request, _event(request, event_id, what="side effect"))


@require_POST
@role_required(*CLINICAL_ROLES)
def adverse_follow_up(request: HttpRequest, event_id: int) -> HttpResponse:
    event = _event(request, event_id, what="side effect follow-up", action="edit")
    form = FollowUpForm(request.POST)
    if form.is_valid():
        try:
            adverse_event_follow_up(event=event, by=_staff(request), **form.cleaned_data)
        except ValidationError as error:
            form_add_validation_error(form, error)
        else:
            messages.success(request, _("Follow-up recorded."))
            return redirect("adverse_detail", event_id=event.pk)
    return _detail(request, event, follow_up_form=form, status=400)


@require_POST
@role_required(*CLINICAL_ROLES)
def adverse_resolve(request: HttpRequest, event_id: int) -> HttpResponse:
    event = _event(request, event_id, what="side effect resolution", action="edit")
    form = ResolveForm(request.POST)
    if form.is_valid():
        try:
            adverse_event_resolve(event=event, by=_staff(request), **form.cleaned_data)
        except ValidationError as error:
            form_add_validation_error(form, error)
        else:
            messages.success(request, _("Side effect marked as resolved."))
            return redirect("adverse_detail", event_id=event.pk)
    return _detail(request, event, resolve_form=form, status=400)


@require_GET
@role_required(*CLINICAL_ROLES)
def followups_due(request: HttpRequest) -> HttpResponse:
    default_owner = selectors.followups_owner_default(request.user)
    show = request.GET.get("show") or ("mine" if default_owner is not None else "all")
    if show not in {"mine", "all"}:
        show = "all" if default_owner is None else "mine"
    events = selectors.followups_due(user=request.user if show == "mine" else None)
    # A list across patients: one audit row for the page rather than one per patient.
    read_event_record(request, patient_id=None, what=f"side-effect follow-ups due ({show}, {len(events)})")
    context = {"events": events, "show": show, "today": timezone.localdate()}
    return render(request, "treatments/adverse/followups_due.html", context)
