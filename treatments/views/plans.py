"""The plan builder and the plan page: practitioners and managers only."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from mesoclinic.access import CLINICAL_ROLES, patient_access, role_required
from patients.models import Patient
from treatments.forms.plans import AreaFormSet, PlanForm, PlanStartForm, product_catalogue
from treatments.models import TreatmentPlan
from treatments.selectors_outcomes import before_after_pairs, plan_gais, plan_outcome_series
from treatments.services import plans as plan_services
from treatments.services.documents import plan_document_current
from treatments.services.plans import AreaInput, PlanBlocked, PlanConflict, PlanNeedsAcknowledgement
from treatments.services.safety import plan_safety_check, plan_totals


def _plan(plan_id: int) -> TreatmentPlan:
    return get_object_or_404(
        TreatmentPlan.objects.select_related("patient", "practitioner", "consultation", "consent__text", "protocol"),
        pk=plan_id,
    )


@require_http_methods(["GET", "POST"])
@role_required(*CLINICAL_ROLES)
def plan_new(request: HttpRequest, patient_id: int) -> HttpResponse:
    patient = get_object_or_404(Patient, pk=patient_id)
    patient_access(request, patient_id=patient.pk, clinical=True, what="new plan form", action="edit")
    initial = {"consultation": request.GET.get("consultation")}
    form = PlanStartForm(request.POST or None, patient=patient, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            plan = plan_services.plan_create(
                patient=patient,
                practitioner=request.user,
                concern=data["concern"] or "",
                consultation=data["consultation"],
                protocol=data["protocol"],
                goal=data["goal"],
            )
        except ValidationError as error:
            form.add_error(None, error)
        else:
            return redirect("plan_builder", plan_id=plan.pk)
    status = 400 if form.is_bound and form.errors else 200
    return render(request, "treatments/plan_new.html", {"patient": patient, "form": form}, status=status)


def _initial_areas(plan: TreatmentPlan) -> list[dict[str, Any]]:
    rows = []
    for area in plan.areas.all():
        row: dict[str, Any] = {
            f: getattr(area, f)
            for f in (
                "area",
                "technique",
                "depth_mm",
                "needle_gauge",
                "needle_length_mm",
                "spacing_mm",
                "points",
                "volume_per_point_ml",
            )
        }
        for slot, item in enumerate(area.products.all(), start=1):
            row[f"product_{slot}"] = item.product_id
            row[f"volume_{slot}"] = item.volume_ml
        rows.append(row)
    return rows


def _area_inputs(formset: AreaFormSet) -> list[AreaInput]:
    inputs = []
    for form in formset.forms:
        data = form.cleaned_data
        if not data or not data.get("area"):
            continue
        inputs.append(
            AreaInput(
                area=data["area"],
                technique=data["technique"],
                depth_mm=data["depth_mm"],
                needle_gauge=data["needle_gauge"],
                needle_length_mm=data["needle_length_mm"],
                spacing_mm=data["spacing_mm"],
                points=data["points"],
                volume_per_point_ml=data["volume_per_point_ml"],
                products=data["products"],
            )
        )
    return inputs


@require_http_methods(["GET", "POST"])
@role_required(*CLINICAL_ROLES)
def plan_builder(request: HttpRequest, plan_id: int) -> HttpResponse:
    """One page: protocol fields, areas with their blends, live totals and safety findings."""
    plan = _plan(plan_id)
    patient_access(request, patient_id=plan.patient_id, clinical=True, what=f"plan {plan.pk} builder", action="edit")
    if plan.status in {TreatmentPlan.Status.COMPLETED, TreatmentPlan.Status.CANCELLED, TreatmentPlan.Status.SUPERSEDED}:
        messages.info(request, _("This plan can no longer be edited."))
        return redirect("plan_detail", plan_id=plan.pk)
    products = product_catalogue()
    action = request.POST.get("action", "save")
    data = request.POST.copy() if request.method == "POST" else None
    if data is not None and action == "add_area":
        total = data.get("areas-TOTAL_FORMS", "")
        # A forged count is no count: the formset then reports its management form as broken.
        data["areas-TOTAL_FORMS"] = str(min(int(total) + 1, 14)) if total.isdecimal() and len(total) < 4 else "0"
    form = PlanForm(
        data,
        initial={
            "revision": plan.revision,
            "goal": plan.goal,
            "sessions_planned": plan.sessions_planned,
            "min_interval_days": plan.min_interval_days,
            "maintenance_interval_days": plan.maintenance_interval_days,
            "review_after_days": plan.review_after_days,
        },
    )
    formset = AreaFormSet(
        data, initial=_initial_areas(plan) or [{}], prefix="areas", form_kwargs={"products": products}
    )
    findings: list = []
    totals = None
    acknowledge: list = []
    status = 200
    if data is not None:
        valid = form.is_valid() and formset.is_valid()
        if valid:
            areas = _area_inputs(formset)
            draft = plan_services.plan_draft_from_inputs(
                sessions_planned=form.cleaned_data["sessions_planned"],
                min_interval_days=form.cleaned_data["min_interval_days"],
                areas=areas,
            )
            totals = plan_totals(draft)
            findings = plan_safety_check(draft, patient=plan.patient)
            if action == "save":
                acks = {k.removeprefix("ack:"): v for k, v in request.POST.items() if k.startswith("ack:")}
                try:
                    saved = plan_services.plan_save(
                        plan=plan,
                        revision=form.cleaned_data["revision"],
                        editor=request.user,
                        goal=form.cleaned_data["goal"],
                        sessions_planned=form.cleaned_data["sessions_planned"],
                        min_interval_days=form.cleaned_data["min_interval_days"],
                        maintenance_interval_days=form.cleaned_data["maintenance_interval_days"],
                        review_after_days=form.cleaned_data["review_after_days"],
                        areas=areas,
                        acknowledgements=acks,
                    )
                except PlanNeedsAcknowledgement as error:
                    acknowledge = error.findings
                    form.add_error(None, _("Some warnings need a reason before the plan can be saved."))
                except PlanBlocked:
                    form.add_error(None, _("The plan cannot be saved: a contraindication or a dose limit blocks it."))
                except PlanConflict as error:
                    form.add_error(None, error)
                    status = 409
                except ValidationError as error:
                    form.add_error(None, error)
                else:
                    if saved.pk != plan.pk:
                        messages.warning(
                            request,
                            _(
                                "The consented plan was kept; this is version %(v)s, which needs the patient's consent again."
                            )
                            % {"v": saved.version},
                        )
                    else:
                        messages.success(request, _("Plan saved."))
                    return redirect("plan_detail", plan_id=saved.pk)
        if status == 200 and (action == "save" and (form.errors or formset.total_error_count() or acknowledge)):
            status = 400
    else:
        plan_areas = list(plan.areas.prefetch_related("products__product__components"))
        if plan_areas:
            totals = plan_totals(plan)
            findings = plan_safety_check(plan)
    known = set(plan.acknowledgements.values_list("trigger", flat=True))
    context = {
        "plan": plan,
        "patient": plan.patient,
        "form": form,
        "formset": formset,
        "totals": totals,
        "findings": findings,
        "acknowledge": acknowledge or [f for f in findings if not f.is_block and f.trigger not in known],
        "acknowledged": known,
        "ingredient_names": {c.ingredient_id: c.ingredient.name for p in products.values() for c in p.components.all()}
        if totals
        else {},
    }
    if request.htmx and action in {"preview"}:
        return render(request, "treatments/_plan_panel.html", context)
    return render(request, "treatments/plan_builder.html", context, status=status)


@require_GET
@role_required(*CLINICAL_ROLES)
def plan_detail(request: HttpRequest, plan_id: int) -> HttpResponse:
    plan = _plan(plan_id)
    patient_access(request, patient_id=plan.patient_id, clinical=True, what=f"plan {plan.pk}")
    versions = plan_services.plan_versions(plan)
    current = next((v for v in versions if v.pk == plan.pk), plan)
    previous = next((v for v in versions if v.pk == plan.previous_id), None)
    context = {
        "plan": current,
        "patient": plan.patient,
        "versions": versions,
        "diff": plan_services.plan_diff(previous, current) if previous else [],
        "totals": plan_totals(current),
        "findings": plan_safety_check(current),
        "acknowledgements": list(current.acknowledgements.select_related("acknowledged_by")),
        "sessions": list(current.sessions.select_related("practitioner").order_by("number")),
        "plan_document": plan_document_current(plan=current),
        "consent_kind": plan_services.consent_kind_for(current),
        "transitions": sorted(plan_services.TRANSITIONS.get(current.status, set())),
        "charts": [(series, series.svg()) for series in plan_outcome_series(current)],
        "gais_sessions": plan_gais(current),
        "before_after": before_after_pairs(current.patient_id),
    }
    return render(request, "treatments/plan_detail.html", context)


@require_POST
@role_required(*CLINICAL_ROLES)
def plan_transition(request: HttpRequest, plan_id: int) -> HttpResponse:
    plan = _plan(plan_id)
    patient_access(request, patient_id=plan.patient_id, clinical=True, what=f"plan {plan.pk} status", action="edit")
    to = request.POST.get("to", "")
    revision = request.POST.get("revision")
    try:
        plan_services.plan_transition(
            plan=plan, to=to, by=request.user, revision=int(revision) if revision and revision.isdecimal() else None
        )
    except (PlanBlocked, PlanNeedsAcknowledgement) as error:
        messages.error(request, " ".join(error.messages))
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, _("The plan is now: %(status)s.") % {"status": TreatmentPlan.Status(to).label})
    return redirect(reverse("plan_detail", kwargs={"plan_id": plan.pk}))


@require_GET
@role_required(*CLINICAL_ROLES)
def patient_plans(request: HttpRequest, patient_id: int) -> HttpResponse:
    patient = get_object_or_404(Patient, pk=patient_id)
    patient_access(request, patient_id=patient.pk, clinical=True, what="plans")
    plans = TreatmentPlan.objects.filter(patient=patient).select_related("practitioner").order_by("-created_at")
    return render(request, "treatments/patient_plans.html", {"patient": patient, "plans": plans})
