"""Session records: what was done, with which lots."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import Prefetch
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from mesoclinic.access import CLINICAL_ROLES, patient_access, role_required
from mesoclinic.forms import form_add_validation_error
from treatments.forms.outcomes import OutcomeForm, OutcomeMeasurementFormSet
from treatments.forms.sessions import SessionForm
from treatments.models import (
    Lot,
    LotUse,
    PlanArea,
    Product,
    SessionArea,
    SessionOutcome,
    TreatmentPlan,
    TreatmentSession,
)
from treatments.services.outcomes import session_outcome_save
from treatments.services.plans import PlanBlocked, PlanNeedsAcknowledgement
from treatments.services.safety import plan_safety_check
from treatments.services.sessions import LotInput, SessionAreaInput, session_next_number
from treatments.services.sessions import session_record as record


@require_http_methods(["GET", "POST"])
@role_required(*CLINICAL_ROLES)
def session_record(request: HttpRequest, plan_id: int) -> HttpResponse:
    plan = get_object_or_404(TreatmentPlan.objects.select_related("patient"), pk=plan_id)
    patient_access(
        request, patient_id=plan.patient_id, clinical=True, what=f"plan {plan.pk} session form", action="edit"
    )
    plan_areas = list(PlanArea.objects.filter(plan=plan).prefetch_related("products__product"))
    product_ids = {item.product_id for area in plan_areas for item in area.products.all()}
    lots = list(Lot.objects.filter(product_id__in=product_ids).select_related("product").order_by("expiry_date"))
    anaesthetics = Product.objects.filter(components__ingredient__category="anaesthetic", is_active=True).distinct()
    initial = {
        "number": session_next_number(plan),
        "performed_at": timezone.localtime().replace(second=0, microsecond=0),
        "location": request.user.default_location_id,
    }
    form = SessionForm(
        request.POST or None, initial=initial, plan_areas=plan_areas, lots=lots, anaesthetics=anaesthetics
    )
    findings = plan_safety_check(plan)
    acknowledge = [f for f in findings if not f.is_block]
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            data = form.cleaned_data
            areas = [
                SessionAreaInput(
                    area=area.area,
                    technique=area.technique,
                    points=points,
                    depth_mm=depth,
                    lots=[LotInput(lot=lot, volume_ml=volume, units=units) for lot, volume, units in uses],
                )
                for area, points, depth, uses in data["areas"]
            ]
            acks = {k.removeprefix("ack:"): v for k, v in request.POST.items() if k.startswith("ack:")}
            try:
                session = record(
                    plan=plan,
                    number=data["number"],
                    practitioner=request.user,
                    performed_at=data["performed_at"],
                    location=data["location"],
                    anaesthetic_product=data["anaesthetic_product"],
                    anaesthetic_applied_at=data["anaesthetic_applied_at"],
                    immediate_reactions=data["immediate_reactions"],
                    notes=data["notes"],
                    areas=areas,
                    acknowledgements=acks,
                )
            except (PlanBlocked, PlanNeedsAcknowledgement) as error:
                form.add_error(None, error.messages)
            except ValidationError as error:
                form_add_validation_error(form, error)
            else:
                messages.success(
                    request, _("Session %(n)s recorded; the aftercare message is on its way.") % {"n": session.number}
                )
                return redirect("session_detail", session_id=session.pk)
    context = {
        "plan": plan,
        "patient": plan.patient,
        "form": form,
        "groups": form.bound_groups(),
        "findings": findings,
        "acknowledge": acknowledge,
    }
    return render(request, "treatments/session_form.html", context, status=status)


@require_http_methods(["GET", "POST"])
@role_required(*CLINICAL_ROLES)
def session_detail(request: HttpRequest, session_id: int) -> HttpResponse:
    session = get_object_or_404(
        TreatmentSession.objects.select_related(
            "plan", "patient", "practitioner", "anaesthetic_product", "location"
        ).prefetch_related(
            Prefetch(
                "areas",
                queryset=SessionArea.objects.prefetch_related(
                    Prefetch("lot_uses", queryset=LotUse.objects.select_related("lot__product"))
                ),
            )
        ),
        pk=session_id,
    )
    patient_access(
        request,
        patient_id=session.patient_id,
        clinical=True,
        what=f"session {session.pk}",
        action="edit" if request.method == "POST" else "view",
    )
    outcome = SessionOutcome.objects.filter(session=session).first()
    initial = (
        {
            "gais_practitioner": outcome.gais_practitioner,
            "gais_patient": outcome.gais_patient,
            "satisfaction": outcome.satisfaction,
        }
        if outcome
        else {}
    )
    form = OutcomeForm(request.POST or None, initial=initial)
    measurements = OutcomeMeasurementFormSet(request.POST or None, prefix="m")
    if request.method == "POST" and form.is_valid() and measurements.is_valid():
        session_outcome_save(
            session=session,
            measurements=[m for m in measurements.cleaned_data if m and m.get("kind")],
            **form.cleaned_data,
        )
        messages.success(request, _("Outcome saved."))
        return redirect("session_detail", session_id=session.pk)
    context = {
        "session": session,
        "plan": session.plan,
        "patient": session.patient,
        "form": form,
        "measurements": measurements,
        "recorded": list(session.measurements.all()),
        "photos": list(session.photos.filter(hidden_at__isnull=True).order_by("taken_at")),
    }
    return render(request, "treatments/session_detail.html", context, status=400 if request.method == "POST" else 200)
