"""The treatment plan PDF: request a render, follow its progress, download it."""

from __future__ import annotations

from django.core.files.storage import storages
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET, require_POST

from mesoclinic.access import CLINICAL_ROLES, patient_access, role_required
from treatments.models import TreatmentPlan
from treatments.services import documents

PARTIAL = "treatments/documents/_pdf_status.html"


def _plan(plan_id: int) -> TreatmentPlan:
    return get_object_or_404(TreatmentPlan.objects.select_related("patient"), pk=plan_id)


def _what(plan: TreatmentPlan) -> str:
    return f"treatment plan #{plan.pk} v{plan.version} PDF"


@require_POST
@role_required(*CLINICAL_ROLES)
def plan_document_request_view(request: HttpRequest, plan_id: int) -> HttpResponse:
    plan = _plan(plan_id)
    patient_access(request, patient_id=plan.patient_id, clinical=True, what=_what(plan))
    document = documents.plan_document_request(plan=plan)
    return render(request, PARTIAL, {"plan": plan, "document": document})


@require_GET
@role_required(*CLINICAL_ROLES)
def plan_document_status(request: HttpRequest, plan_id: int) -> HttpResponse:
    plan = _plan(plan_id)
    patient_access(request, patient_id=plan.patient_id, clinical=True, what=_what(plan))
    document = documents.plan_document_current(plan=plan)
    return render(request, PARTIAL, {"plan": plan, "document": document})


@require_GET
@role_required(*CLINICAL_ROLES)
def plan_document_download(request: HttpRequest, plan_id: int) -> FileResponse:
    document = documents.plan_document_ready(plan_id=plan_id)
    if document is None:
        raise Http404
    plan = document.plan
    patient_access(request, patient_id=plan.patient_id, clinical=True, what=_what(plan), action="download")
    try:
        handle = storages[documents.PRIVATE_STORAGE].open(document.file_name, "rb")
    except FileNotFoundError:
        raise Http404 from None
    response = FileResponse(
        handle,
        as_attachment=True,
        filename=f"plan-{plan.pk}-v{plan.version}-{document.language}.pdf",
        content_type="application/pdf",
    )
    response["Cache-Control"] = "no-store"
    return response
