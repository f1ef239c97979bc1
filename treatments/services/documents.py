"""The PDF of a treatment plan: requested from the page, rendered by the worker, cached.

A ``PlanDocument`` is a derived cache of one plan version in one language. Its file
lives in the private storage under a deterministic name, so a second render replaces
the first instead of adding a copy. States: ``pending`` (queued, or stale after the plan
changed and waiting for the next request), ``rendering`` (claimed by a worker), ``done``,
``failed``. A pending document is queued when it was requested after its last render.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import mimetypes
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import storages
from django.db import transaction
from django.db.models import F, Prefetch
from django.db.models.functions import Now
from django.template.loader import render_to_string
from django.utils import timezone, translation
from weasyprint import HTML
from weasyprint.urls import URLFetcherResponse

from mesoclinic.celery import enqueue_on_commit
from mesoclinic.pdf import PDF_BASE_URL, StaticOnlyFetcher
from patients.models import Consent
from patients.services.screening import Finding
from treatments.models import (
    LotUse,
    PlanAcknowledgement,
    PlanArea,
    PlanDocument,
    PlanProduct,
    ProductComponent,
    SessionArea,
    TreatmentPlan,
    TreatmentSession,
)
from treatments.services.safety import plan_safety_check, plan_totals

logger = logging.getLogger("treatments.documents")

PRIVATE_STORAGE = "private"
TEMPLATE = "treatments/pdf/plan.html"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def plan_document_file_name(plan: TreatmentPlan, language: str) -> str:
    return f"plans/{plan.patient_id}/plan-{plan.pk}-v{plan.version}-{language}.pdf"


def _plan_language(plan: TreatmentPlan) -> str:
    language = plan.patient.preferred_language or settings.LANGUAGE_CODE
    return language[:2]


def _stale_after() -> timedelta:
    # A worker killed mid-render leaves the row ``rendering``; past the task's hard
    # time limit nobody is rendering it any more.
    return timedelta(seconds=getattr(settings, "CELERY_TASK_TIME_LIMIT", 300) + 60)


# --- Requests, renders, invalidation ------------------------------------------------


def plan_document_request(*, plan: TreatmentPlan) -> PlanDocument:
    """The plan's PDF in the patient's language: the cached file, or a render queued now.

    A finished document whose file exists is returned as is (the cache). Anything else
    — new, stale after a change, failed, file lost, or a render abandoned by a dead
    worker — is set ``pending`` and a render is enqueued after commit. A document
    already pending is enqueued again: the render's claim makes duplicates harmless,
    and it recovers a publish lost during a broker outage.
    """
    from treatments.tasks import plan_document_render as render_task

    language = _plan_language(plan)
    with transaction.atomic():
        created = PlanDocument.objects.get_or_create(plan=plan, language=language)[0]
        document = PlanDocument.objects.select_for_update().get(pk=created.pk)
        if document.status == PlanDocument.Status.DONE and _file_exists(document.file_name):
            return document
        if document.status == PlanDocument.Status.RENDERING and document.requested_at > timezone.now() - _stale_after():
            return document
        PlanDocument.objects.filter(pk=document.pk).update(
            status=PlanDocument.Status.PENDING, requested_at=Now(), error=""
        )
        enqueue_on_commit(render_task, document.pk)
        document.refresh_from_db()
    return document


def plan_document_render(*, document_id: int) -> PlanDocument | None:
    """Render a pending plan document to the private storage; a second run does nothing.

    The claim (``pending → rendering``) is a conditional UPDATE, so a redelivery or a
    second worker finds nothing to do. The result is written only if the claim still
    holds: a plan changed during the render re-queued the document, and the newer
    render writes instead.
    """
    with transaction.atomic():
        # The claim's time is its token: a later request or invalidation moves it on.
        claimed = PlanDocument.objects.filter(pk=document_id, status=PlanDocument.Status.PENDING).update(
            status=PlanDocument.Status.RENDERING, requested_at=Now(), error=""
        )
        if not claimed:
            return None
        document = PlanDocument.objects.select_related("plan__patient").get(pk=document_id)
    claimed_at = document.requested_at
    plan = document.plan
    name = plan_document_file_name(plan, document.language)
    try:
        context = plan_pdf_context(plan, document.language)
        with translation.override(document.language), timezone.override(context["time_zone"]):
            html = render_to_string(TEMPLATE, context)
        pdf, pages = pdf_render_paged(html)
        with transaction.atomic():
            current = PlanDocument.objects.select_for_update().get(pk=document_id)
            if current.status != PlanDocument.Status.RENDERING or current.requested_at != claimed_at:
                logger.info("plan document %s changed while rendering; result dropped", document_id)
                return None
            storage = storages[PRIVATE_STORAGE]
            if storage.exists(name):
                storage.delete(name)
            saved = storage.save(name, ContentFile(pdf))
            PlanDocument.objects.filter(pk=document_id).update(
                status=PlanDocument.Status.DONE,
                file_name=saved,
                sha256=hashlib.sha256(pdf).hexdigest(),
                pages=pages,
                rendered_at=Now(),
                error="",
            )
    except Exception as error:
        PlanDocument.objects.filter(
            pk=document_id, status=PlanDocument.Status.RENDERING, requested_at=claimed_at
        ).update(status=PlanDocument.Status.FAILED, error=f"{type(error).__name__}: {error}"[:2000])
        raise
    document.refresh_from_db()
    return document


@transaction.atomic
def plan_document_invalidate(*, plan: TreatmentPlan) -> int:
    """Mark the plan's PDFs stale after a change; the next request renders them again.

    Nothing is deleted: the PDF is a derived cache and its file is replaced by the
    next render. A render in progress is re-queued, since someone is waiting for it
    and it started from the old data. Returns how many documents changed.
    """
    from treatments.tasks import plan_document_render as render_task

    changed = 0
    for document in PlanDocument.objects.select_for_update().filter(plan=plan):
        if document.status == PlanDocument.Status.DONE:
            PlanDocument.objects.filter(pk=document.pk).update(status=PlanDocument.Status.PENDING)
            changed += 1
        elif document.status == PlanDocument.Status.RENDERING:
            PlanDocument.objects.filter(pk=document.pk).update(status=PlanDocument.Status.PENDING, requested_at=Now())
            enqueue_on_commit(render_task, document.pk)
            changed += 1
    return changed


def plan_document_current(*, plan: TreatmentPlan) -> PlanDocument | None:
    """The plan's document in the patient's current language, if one was ever requested."""
    return PlanDocument.objects.filter(plan=plan, language=_plan_language(plan)).first()


class TypedStaticFetcher(StaticOnlyFetcher):
    """The project's static-only fetcher, answering with the file's content type.

    WeasyPrint ignores a stylesheet served as ``text/plain`` (the default of a
    response without headers), so the type is set from the file name.
    """

    def fetch(self, url: str, headers: Any = None) -> URLFetcherResponse:
        response = super().fetch(url, headers)
        if not url.startswith("data:") and "Content-Type" not in response.headers:
            guessed = mimetypes.guess_type(url.split("?", 1)[0].split("#", 1)[0])[0]
            if guessed:
                response.headers["Content-Type"] = guessed
        return response


def plan_document_ready(*, plan_id: int) -> PlanDocument | None:
    """The finished PDF of a plan in its patient's current language, with its plan (one query)."""
    return (
        PlanDocument.objects.select_related("plan")
        .filter(plan_id=plan_id, status=PlanDocument.Status.DONE, language=F("plan__patient__preferred_language"))
        .first()
    )


def pdf_render_paged(html: str) -> tuple[bytes, int]:
    """Render HTML to PDF fetching only static files; also return the page count."""
    rendered = HTML(string=html, base_url=PDF_BASE_URL, url_fetcher=TypedStaticFetcher()).render()
    return rendered.write_pdf(), len(rendered.pages)


def _file_exists(name: str) -> bool:
    return bool(name) and storages[PRIVATE_STORAGE].exists(name)


# --- What the template shows -----------------------------------------------------------


@dataclass(frozen=True)
class ProductLine:
    name: str
    manufacturer: str
    volume_ml: Decimal


@dataclass(frozen=True)
class AreaFormulation:
    area: PlanArea
    depth_mm: Decimal
    needle_length_mm: Decimal
    spacing_mm: Decimal | None
    volume_per_point_ml: Decimal
    injected_ml: Decimal  # points × volume per point
    products: list[ProductLine]
    products_ml: Decimal


@dataclass(frozen=True)
class IngredientTotal:
    name: str
    mg: Decimal
    ml: Decimal


@dataclass(frozen=True)
class LotLine:
    area: str
    product: str
    lot_number: str
    expiry_date: date
    volume_ml: Decimal


@dataclass(frozen=True)
class SessionRecord:
    session: TreatmentSession
    lots: list[LotLine] = field(default_factory=list)


@dataclass(frozen=True)
class ScheduleLine:
    number: int
    session: TreatmentSession | None
    not_before: date | None


def _plain(value: Decimal) -> Decimal:
    """0.100 → 0.1 and 2.00 → 2, so the template shows no trailing zeros."""
    if value == value.to_integral_value():
        return value.quantize(Decimal(1))
    return value.normalize()


def _plan_for_pdf(plan_id: int) -> TreatmentPlan:
    products = PlanProduct.objects.select_related("product").prefetch_related(
        Prefetch("product__components", queryset=ProductComponent.objects.select_related("ingredient"))
    )
    return (
        TreatmentPlan.objects.select_related(
            "patient",
            "practitioner__default_location",
            "consultation",
            "consent__text",
            "consent__witness",
            "consent__withdrawal",
        )
        .prefetch_related(
            Prefetch("areas", queryset=PlanArea.objects.prefetch_related(Prefetch("products", queryset=products))),
            Prefetch("acknowledgements", queryset=PlanAcknowledgement.objects.select_related("acknowledged_by")),
        )
        .get(pk=plan_id)
    )


def _sessions_for_pdf(plan: TreatmentPlan) -> list[TreatmentSession]:
    lot_uses = LotUse.objects.select_related("lot__product")
    areas = SessionArea.objects.prefetch_related(Prefetch("lot_uses", queryset=lot_uses))
    return list(
        TreatmentSession.objects.filter(plan=plan)
        .select_related("practitioner", "location")
        .prefetch_related(Prefetch("areas", queryset=areas))
        .order_by("number")
    )


def _formulations(plan: TreatmentPlan) -> list[AreaFormulation]:
    rows = []
    for area in plan.areas.all():
        lines = [
            ProductLine(item.product.name, item.product.manufacturer, _plain(item.volume_ml))
            for item in area.products.all()
        ]
        rows.append(
            AreaFormulation(
                area=area,
                depth_mm=_plain(area.depth_mm),
                needle_length_mm=_plain(area.needle_length_mm),
                spacing_mm=_plain(area.spacing_mm) if area.spacing_mm is not None else None,
                volume_per_point_ml=_plain(area.volume_per_point_ml),
                injected_ml=_plain(area.points * area.volume_per_point_ml),
                products=lines,
                products_ml=_plain(sum((line.volume_ml for line in lines), Decimal(0))),
            )
        )
    return rows


def _ingredient_totals(plan: TreatmentPlan, mg: dict[int, Decimal], ml: dict[int, Decimal]) -> list[IngredientTotal]:
    names = {
        component.ingredient_id: component.ingredient.name
        for area in plan.areas.all()
        for item in area.products.all()
        for component in item.product.components.all()
    }
    return sorted(
        (IngredientTotal(names[pk], _plain(mg.get(pk, Decimal(0))), _plain(ml.get(pk, Decimal(0)))) for pk in names),
        key=lambda row: row.name,
    )


def _session_records(sessions: list[TreatmentSession]) -> list[SessionRecord]:
    records = []
    for session in sessions:
        lots = [
            LotLine(
                area=area.get_area_display(),
                product=use.lot.product.name,
                lot_number=use.lot.lot_number,
                expiry_date=use.lot.expiry_date,
                volume_ml=_plain(use.volume_ml),
            )
            for area in session.areas.all()
            for use in area.lot_uses.all()
        ]
        records.append(SessionRecord(session=session, lots=lots))
    return records


def _local_date(moment: datetime, zone: Any) -> date:
    return timezone.localtime(moment, zone).date()


def _schedule(
    plan: TreatmentPlan, sessions: list[TreatmentSession], zone: Any
) -> tuple[list[ScheduleLine], date | None]:
    """One line per planned session: performed (with its date) or the earliest date it may be."""
    by_number = {session.number: session for session in sessions}
    completed = [s for s in sessions if s.status == TreatmentSession.Status.COMPLETED]
    last = max(completed, key=lambda s: s.number) if completed else None
    lines = []
    for number in range(1, max([plan.sessions_planned, *by_number]) + 1):
        session = by_number.get(number)
        not_before = None
        if session is None and last is not None and number > last.number:
            not_before = _local_date(last.performed_at, zone) + timedelta(
                days=plan.min_interval_days * (number - last.number)
            )
        lines.append(ScheduleLine(number=number, session=session, not_before=not_before))
    review = None
    if plan.review_after_days and last is not None and len(completed) >= plan.sessions_planned:
        review = _local_date(last.performed_at, zone) + timedelta(days=plan.review_after_days)
    return lines, review


def _signature_data_url(consent: Consent | None) -> str:
    """The drawn signature as a data: URL (the fetcher refuses files, allows data:)."""
    if consent is None or not consent.signature_file:
        return ""
    storage = storages[PRIVATE_STORAGE]
    if not storage.exists(consent.signature_file):
        logger.warning("signature file of consent %s is missing", consent.pk)
        return ""
    with storage.open(consent.signature_file, "rb") as handle:
        png = handle.read()
    if not png.startswith(PNG_SIGNATURE):
        logger.warning("signature file of consent %s is not a PNG", consent.pk)
        return ""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def plan_pdf_context(plan: TreatmentPlan, language: str) -> dict[str, Any]:
    """Everything the plan PDF shows, read in a fixed number of queries.

    Built in the document's language: safety findings and area labels are made here.
    """
    plan = _plan_for_pdf(plan.pk)
    sessions = _sessions_for_pdf(plan)
    location = plan.practitioner.default_location
    zone = timezone.get_default_timezone()
    if location is not None and location.time_zone:
        try:
            zone = ZoneInfo(location.time_zone)
        except (KeyError, ValueError):
            logger.warning("unknown time zone %r for location %s", location.time_zone, location.pk)
    totals = plan_totals(plan)
    consent = plan.consent
    with translation.override(language):
        findings: list[Finding] = plan_safety_check(plan)
        session_records = _session_records(sessions)
    schedule, review_date = _schedule(plan, sessions, zone)
    return {
        "clinic_name": settings.CLINIC_NAME,
        "location": location,
        "time_zone": zone,
        "language": language,
        "plan": plan,
        "patient": plan.patient,
        "practitioner": plan.practitioner,
        "consultation": plan.consultation,
        "formulations": _formulations(plan),
        "total_ml": _plain(totals.total_ml),
        "total_points": totals.total_points,
        "ingredient_totals": _ingredient_totals(plan, totals.mg, totals.ml),
        "has_face_area": any(area.is_face for area in plan.areas.all()),
        "sessions": session_records,
        "schedule": schedule,
        "review_date": review_date,
        "findings": findings,
        "acknowledgements": list(plan.acknowledgements.all()),
        "consent": consent,
        "consent_title": consent.text.title(language) if consent else "",
        "consent_withdrawal": getattr(consent, "withdrawal", None) if consent else None,
        "signature_data_url": _signature_data_url(consent),
        "generated_at": timezone.now(),
    }
