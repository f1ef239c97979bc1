"""The treatment plan PDF: rendered by the task, cached per plan version, served to clinicians."""

from __future__ import annotations

import hashlib
import io
import subprocess
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from unittest import mock

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import storages
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from PIL import Image, ImageDraw

from mesoclinic.models import ReadEvent, User
from mesoclinic.pdf import PDF_BASE_URL, StaticOnlyFetcher
from patients.models import Consent, ConsentText, Consultation, Patient
from patients.services.history import history_record
from tests.factories import LocationFactory, PatientFactory
from treatments.catalogue_seed import catalogue_seed
from treatments.models import (
    Lot,
    LotUse,
    PlanAcknowledgement,
    PlanArea,
    PlanDocument,
    PlanProduct,
    Product,
    SessionArea,
    TreatmentPlan,
    TreatmentSession,
)
from treatments.services import documents
from treatments.services.documents import (
    plan_document_file_name,
    plan_document_invalidate,
    plan_document_request,
    plan_pdf_context,
)
from treatments.tasks import plan_document_render

# area, technique, depth, gauge, needle length, spacing, points, mL per point, [(product, mL per session)]
AREAS = [
    (
        "abdomen",
        "point_by_point",
        "6",
        30,
        "6",
        "15",
        20,
        "0.2",
        [("Lipo PC 5%", "4"), ("Lidocaine 1% (no adrenaline)", "1")],
    ),
    ("thighs", "nappage", "3", 32, "4", "3", 40, "0.1", [("Cellu Caffeine 5%", "3"), ("Organic Silicon 0.5%", "1")]),
    ("face", "micropapules", "1.5", 32, "4", "10", 30, "0.05", [("HA Booster 1.35%", "1.5")]),
]


def png_signature() -> bytes:
    image = Image.new("RGBA", (300, 100), (0, 0, 0, 0))
    ImageDraw.Draw(image).line([(10, 80), (90, 20), (180, 85), (290, 25)], fill="black", width=4)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def pdf_text(path: Path) -> str:
    """The PDF's text with whitespace collapsed, so that a table cell wrapping over two lines still matches."""
    text = subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True, check=True).stdout
    return " ".join(text.split())


@pytest.fixture(autouse=True)
def private_storage(tmp_path: Path, settings) -> Iterator[Path]:
    root = tmp_path / "private"
    storages._storages.pop("private", None)
    settings.STORAGES = {
        **settings.STORAGES,
        "private": {**settings.STORAGES["private"], "OPTIONS": {"location": str(root)}},
    }
    yield root
    storages._storages.pop("private", None)


def session_record(plan: TreatmentPlan, number: int, performed_at, practitioner: User) -> TreatmentSession:
    session = TreatmentSession.objects.create(
        plan=plan,
        patient=plan.patient,
        number=number,
        practitioner=practitioner,
        performed_at=performed_at,
        status=TreatmentSession.Status.COMPLETED,
        completed_at=performed_at + timedelta(minutes=40),
    )
    for area in plan.areas.all():
        done = SessionArea.objects.create(
            session=session, area=area.area, technique=area.technique, points=area.points, depth_mm=area.depth_mm
        )
        for item in area.products.all():
            lot = Lot.objects.get(product=item.product, expiry_date__gte=timezone.localdate())
            LotUse.objects.create(session_area=done, lot=lot, volume_ml=item.volume_ml)
    return session


def plan_build(practitioner: User, manager: User, *, language: str = "en", city: str = "Lyon") -> TreatmentPlan:
    """A consented lipolysis plan over three areas, two sessions done, one warning acknowledged."""
    catalogue_seed()
    practitioner.default_location = LocationFactory(
        name="Paris Centre", address="12 rue de la Paix\n75002 Paris", phone="+33 1 23 45 67 89"
    )
    practitioner.save(update_fields=["default_location"])
    patient = PatientFactory(
        first_name="Hélène", last_name="Dubois", preferred_language=language, city=city, created_by=practitioner
    )
    history = history_record(
        patient=patient,
        recorded_by=practitioner,
        conditions=[],
        weight_kg=Decimal("68"),
        medications=[{"name": "Aspirin 100 mg", "flags": ["antiplatelet"]}],
    )
    consultation = Consultation.objects.create(
        patient=patient,
        practitioner=practitioner,
        history=history,
        concerns=["fat_reduction", "skin_rejuvenation"],
        areas=["abdomen", "thighs", "face"],
        fitzpatrick=3,
        glogau=2,
        findings="Localised adiposity below the navel.",
        recommendation="Four sessions of lipolysis, then review.",
    )
    text = ConsentText.objects.create(
        kind="lipolysis",
        version=2,
        title_en="Consent to injection lipolysis",
        body_en="I understand the risks.",
        title_fr="Consentement à la lipolyse par injection",
        body_fr="Je comprends les risques.",
        published_by=manager,
    )
    png = png_signature()
    signature = storages["private"].save(f"consents/{patient.pk}/signature.png", ContentFile(png))
    consent = Consent.objects.create(
        patient=patient,
        text=text,
        language=language,
        typed_name="Hélène Dubois",
        signature_file=signature,
        signature_sha256=hashlib.sha256(png).hexdigest(),
        witness=practitioner,
    )
    plan = TreatmentPlan.objects.create(
        patient=patient,
        consultation=consultation,
        practitioner=practitioner,
        status=TreatmentPlan.Status.ACTIVE,
        concern="fat_reduction",
        goal="Flatter abdomen",
        sessions_planned=4,
        min_interval_days=28,
        maintenance_interval_days=180,
        review_after_days=56,
        consent=consent,
        consented_at=timezone.now(),
    )
    for position, (area, technique, depth, gauge, length, spacing, points, per_point, products) in enumerate(AREAS):
        plan_area = PlanArea.objects.create(
            plan=plan,
            area=area,
            technique=technique,
            depth_mm=Decimal(depth),
            needle_gauge=gauge,
            needle_length_mm=Decimal(length),
            spacing_mm=Decimal(spacing),
            points=points,
            volume_per_point_ml=Decimal(per_point),
            position=position,
        )
        for name, volume in products:
            PlanProduct.objects.create(
                plan_area=plan_area, product=Product.objects.get(name=name), volume_ml=Decimal(volume)
            )
    PlanAcknowledgement.objects.create(
        plan=plan,
        trigger="medication:antiplatelet",
        finding="Antiplatelet: more bruising",
        reason="Aspirin paused by the GP for the course",
        acknowledged_by=practitioner,
    )
    first = timezone.now() - timedelta(days=40)
    session_record(plan, 1, first, practitioner)
    session_record(plan, 2, first + timedelta(days=29), practitioner)
    return plan


@pytest.fixture
def plan(practitioner: User, manager: User) -> TreatmentPlan:
    return plan_build(practitioner, manager)


def rendered(plan: TreatmentPlan, capture) -> PlanDocument:
    with capture(execute=True):
        document = plan_document_request(plan=plan)
    document.refresh_from_db()
    assert document.status == PlanDocument.Status.DONE, document.error
    return document


def lot_numbers(plan: TreatmentPlan) -> set[str]:
    return set(LotUse.objects.filter(session_area__session__plan=plan).values_list("lot__lot_number", flat=True))


# --- Rendering -------------------------------------------------------------------------


def test_pdf_holds_patient_products_lots_and_schedule(
    plan: TreatmentPlan, private_storage: Path, django_capture_on_commit_callbacks
) -> None:
    document = rendered(plan, django_capture_on_commit_callbacks)
    path = private_storage / document.file_name
    assert document.file_name == f"plans/{plan.patient_id}/plan-{plan.pk}-v1-en.pdf"
    assert document.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    text = pdf_text(path)
    assert "DUBOIS Hélène" in text and "Patient number" in text and str(plan.patient_id) in text
    for name in ("Lipo PC 5%", "Lidocaine 1% (no adrenaline)", "Cellu Caffeine 5%", "HA Booster 1.35%"):
        assert name in text
    assert lot_numbers(plan) and all(number in text for number in lot_numbers(plan))
    for number in (1, 2, 3, 4):
        assert f"Session {number}" in text
    assert "not before" in text and "56 days after the last session" in text
    assert "Localised adiposity below the navel." in text and "Fat reduction" in text
    assert "Aspirin paused by the GP for the course" in text  # the acknowledgement and its reason
    assert "Consent to injection lipolysis" in text and "Paula Practitioner" in text
    assert "Do not shower for 8 hours" in text and "No make-up on the face" in text  # a face area
    assert "Paris Centre" in text
    assert f"Page 1 / {document.pages}" in text and f"Page {document.pages} / {document.pages}" in text


def test_pdf_embeds_the_signature_as_an_image(
    plan: TreatmentPlan, private_storage: Path, django_capture_on_commit_callbacks
) -> None:
    document = rendered(plan, django_capture_on_commit_callbacks)
    listing = subprocess.run(
        ["pdfimages", "-list", str(private_storage / document.file_name)], capture_output=True, text=True, check=True
    ).stdout
    assert " 300   100 " in listing  # the signature's pixel size


def test_french_patient_gets_a_french_pdf(
    practitioner: User, manager: User, private_storage: Path, django_capture_on_commit_callbacks
) -> None:
    plan = plan_build(practitioner, manager, language="fr")
    document = rendered(plan, django_capture_on_commit_callbacks)
    assert document.language == "fr" and document.file_name.endswith("-fr.pdf")
    text = pdf_text(private_storage / document.file_name)
    for heading in ("Date de naissance", "Numéro de patient", "Motifs de consultation", "Consentement", "Témoin"):
        assert heading in text
    assert "Cuisses" in text and "Réduction des graisses localisées" in text  # areas and concerns
    assert "Consentement à la lipolyse par injection" in text  # the consent title in the patient's language
    assert "Date of birth" not in text and "Witness" not in text and "Thighs" not in text  # lots table too


def test_context_is_read_in_a_fixed_number_of_queries(plan: TreatmentPlan, practitioner: User) -> None:
    with CaptureQueriesContext(connection) as small:
        plan_pdf_context(plan, "en")
    session_record(plan, 3, timezone.now() - timedelta(days=2), practitioner)
    session_record(plan, 4, timezone.now() - timedelta(days=1), practitioner)
    with CaptureQueriesContext(connection) as large:
        context = plan_pdf_context(plan, "en")
    assert len(context["sessions"]) == 4 and len(large) == len(small)
    assert len(small) <= 20


# --- The task and the cache ----------------------------------------------------------------


def test_task_run_twice_renders_once_and_leaves_one_file(plan: TreatmentPlan, private_storage: Path) -> None:
    document = PlanDocument.objects.create(plan=plan, language="en")
    with mock.patch.object(documents, "pdf_render_paged", wraps=documents.pdf_render_paged) as renderer:
        plan_document_render(document.pk)
        plan_document_render(document.pk)
    assert renderer.call_count == 1
    document.refresh_from_db()
    assert document.status == PlanDocument.Status.DONE and document.pages and document.pages >= 2
    assert [p.name for p in (private_storage / "plans" / str(plan.patient_id)).iterdir()] == [
        f"plan-{plan.pk}-v1-en.pdf"
    ]


def test_a_done_document_is_served_from_the_cache(plan: TreatmentPlan, django_capture_on_commit_callbacks) -> None:
    first = rendered(plan, django_capture_on_commit_callbacks)
    with (
        mock.patch.object(documents, "pdf_render_paged") as renderer,
        django_capture_on_commit_callbacks(execute=True) as callbacks,
    ):
        again = plan_document_request(plan=plan)
    assert renderer.call_count == 0 and callbacks == []
    assert again.pk == first.pk and again.sha256 == first.sha256 and again.rendered_at == first.rendered_at


def test_invalidate_makes_the_next_request_render_again(
    plan: TreatmentPlan, private_storage: Path, django_capture_on_commit_callbacks
) -> None:
    first = rendered(plan, django_capture_on_commit_callbacks)
    plan.goal = "Flatter abdomen and firmer thighs"
    plan.save(update_fields=["goal"])
    assert plan_document_invalidate(plan=plan) == 1
    first.refresh_from_db()
    assert first.status == PlanDocument.Status.PENDING
    assert (private_storage / first.file_name).exists()  # nothing deleted until the next render replaces it
    with mock.patch.object(documents, "pdf_render_paged", wraps=documents.pdf_render_paged) as renderer:
        second = rendered(plan, django_capture_on_commit_callbacks)
    assert renderer.call_count == 1 and second.rendered_at > first.rendered_at
    assert "Flatter abdomen and firmer thighs" in pdf_text(private_storage / second.file_name)
    assert len(list((private_storage / "plans" / str(plan.patient_id)).iterdir())) == 1


def test_a_lost_file_is_rendered_again(
    plan: TreatmentPlan, private_storage: Path, django_capture_on_commit_callbacks
) -> None:
    document = rendered(plan, django_capture_on_commit_callbacks)
    (private_storage / document.file_name).unlink()
    assert rendered(plan, django_capture_on_commit_callbacks).status == PlanDocument.Status.DONE
    assert (private_storage / document.file_name).exists()


def test_a_failed_render_is_recorded_and_raised_then_can_be_retried(
    plan: TreatmentPlan, private_storage: Path, django_capture_on_commit_callbacks
) -> None:
    document = PlanDocument.objects.create(plan=plan, language="en")
    with (
        mock.patch.object(documents, "pdf_render_paged", side_effect=OSError("disk full")),
        pytest.raises(OSError, match="disk full"),
    ):
        plan_document_render(document.pk)
    document.refresh_from_db()
    assert document.status == PlanDocument.Status.FAILED and document.error == "OSError: disk full"
    assert not (private_storage / "plans").exists()
    retried = rendered(plan, django_capture_on_commit_callbacks)
    assert retried.pk == document.pk and retried.error == ""


def test_a_change_during_the_render_drops_its_result(plan: TreatmentPlan, private_storage: Path) -> None:
    document = PlanDocument.objects.create(plan=plan, language="en")
    real = documents.pdf_render_paged

    def render_while_the_plan_changes(html: str) -> tuple[bytes, int]:
        plan_document_invalidate(plan=plan)  # the edit lands while the worker renders
        return real(html)

    with mock.patch.object(documents, "pdf_render_paged", side_effect=render_while_the_plan_changes):
        assert plan_document_render(document.pk) is None
    document.refresh_from_db()
    assert document.status == PlanDocument.Status.PENDING and document.file_name == ""
    assert not (private_storage / "plans").exists()


def test_a_render_abandoned_by_a_dead_worker_is_queued_again(
    plan: TreatmentPlan, django_capture_on_commit_callbacks
) -> None:
    document = PlanDocument.objects.create(plan=plan, language="en", status=PlanDocument.Status.RENDERING)
    PlanDocument.objects.filter(pk=document.pk).update(requested_at=timezone.now() - timedelta(hours=1))
    assert rendered(plan, django_capture_on_commit_callbacks).pk == document.pk


def test_a_render_in_progress_is_left_alone(plan: TreatmentPlan, django_capture_on_commit_callbacks) -> None:
    PlanDocument.objects.create(plan=plan, language="en", status=PlanDocument.Status.RENDERING)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        document = plan_document_request(plan=plan)
    assert document.status == PlanDocument.Status.RENDERING and callbacks == []


# --- Nothing is fetched from outside --------------------------------------------------------


def test_hostile_patient_data_is_escaped_and_fetches_nothing(
    practitioner: User, manager: User, private_storage: Path, django_capture_on_commit_callbacks
) -> None:
    hostile = '<img src="file:///etc/passwd">'
    plan = plan_build(practitioner, manager, city=hostile)
    Patient.objects.filter(pk=plan.patient_id).update(
        address_line='<link rel="stylesheet" href="http://evil.test/a.css">'
    )
    fetched: list[str] = []
    real_fetch = StaticOnlyFetcher.fetch

    def spy(self: StaticOnlyFetcher, url: str, headers: object = None) -> object:
        fetched.append(url)
        return real_fetch(self, url, headers)

    with mock.patch.object(StaticOnlyFetcher, "fetch", spy):
        document = rendered(plan, django_capture_on_commit_callbacks)
    assert fetched, "the stylesheet comes through the fetcher"
    assert all(url.startswith((f"{PDF_BASE_URL}static/", "data:image/png;base64,")) for url in fetched), fetched
    text = pdf_text(private_storage / document.file_name)
    assert hostile in text and "http://evil.test/a.css" in text  # shown as text, not followed


def test_the_renderer_refuses_files_and_other_hosts(caplog: pytest.LogCaptureFixture) -> None:
    pdf, pages = documents.pdf_render_paged(
        '<p>x</p><img src="file:///etc/passwd"><link rel="stylesheet" href="https://evil.test/a.css">'
    )
    assert pdf.startswith(b"%PDF") and pages == 1
    assert "refused to fetch file:///etc/passwd" in caplog.text
    assert "refused to fetch https://evil.test/a.css" in caplog.text


# --- Views ----------------------------------------------------------------------------------

URLS = [
    ("post", "plan_pdf_request"),
    ("get", "plan_pdf_status"),
    ("get", "plan_pdf_download"),
]


@pytest.mark.parametrize(("method", "name"), URLS)
def test_anonymous_is_sent_to_login(anonymous_client: Client, plan: TreatmentPlan, method: str, name: str) -> None:
    response = getattr(anonymous_client, method)(reverse(name, args=[plan.pk]))
    assert response.status_code == 302 and response.url.startswith(reverse("account_login"))


@pytest.mark.parametrize(("method", "name"), URLS)
def test_front_desk_is_refused(front_desk_client: Client, plan: TreatmentPlan, method: str, name: str) -> None:
    response = getattr(front_desk_client, method)(reverse(name, args=[plan.pk]))
    assert response.status_code == 403
    assert not ReadEvent.objects.filter(patient_id=plan.patient_id).exists()
    assert not PlanDocument.objects.exists()


@pytest.mark.parametrize("persona", ["practitioner_client", "manager_client"])
def test_clinicians_request_follow_and_download(
    request: pytest.FixtureRequest, persona: str, plan: TreatmentPlan, django_capture_on_commit_callbacks
) -> None:
    client: Client = request.getfixturevalue(persona)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("plan_pdf_request", args=[plan.pk]))
    assert response.status_code == 200
    status = client.get(reverse("plan_pdf_status", args=[plan.pk]))
    assert status.status_code == 200
    assert 'data-status="done"' in status.content.decode() and "hx-trigger" not in status.content.decode()
    download = client.get(reverse("plan_pdf_download", args=[plan.pk]))
    assert download.status_code == 200
    assert download["Content-Type"] == "application/pdf"
    assert download["Content-Disposition"].startswith("attachment;")
    assert f'filename="plan-{plan.pk}-v1-en.pdf"' in download["Content-Disposition"]
    assert "no-store" in download["Cache-Control"]
    assert b"".join(download.streaming_content).startswith(b"%PDF")


def test_download_writes_a_read_event(
    practitioner_client: Client, practitioner: User, plan: TreatmentPlan, django_capture_on_commit_callbacks
) -> None:
    rendered(plan, django_capture_on_commit_callbacks)
    response = practitioner_client.get(reverse("plan_pdf_download", args=[plan.pk]))
    b"".join(response.streaming_content)
    event = ReadEvent.objects.filter(patient_id=plan.patient_id, action="download").get()
    assert event.user == practitioner and f"plan #{plan.pk}" in event.what


def test_request_shows_progress_while_the_worker_has_not_run(practitioner_client: Client, plan: TreatmentPlan) -> None:
    response = practitioner_client.post(reverse("plan_pdf_request", args=[plan.pk]))  # on_commit not run
    page = response.content.decode()
    assert 'data-status="pending"' in page and 'hx-trigger="every 1s"' in page
    assert reverse("plan_pdf_status", args=[plan.pk]) in page
    assert practitioner_client.get(reverse("plan_pdf_download", args=[plan.pk])).status_code == 404


def test_status_offers_to_prepare_when_there_is_no_pdf_or_the_plan_changed(
    practitioner_client: Client, plan: TreatmentPlan, django_capture_on_commit_callbacks
) -> None:
    page = practitioner_client.get(reverse("plan_pdf_status", args=[plan.pk])).content.decode()
    assert 'data-status="none"' in page and reverse("plan_pdf_request", args=[plan.pk]) in page
    assert "hx-trigger" not in page
    rendered(plan, django_capture_on_commit_callbacks)
    plan_document_invalidate(plan=plan)
    page = practitioner_client.get(reverse("plan_pdf_status", args=[plan.pk])).content.decode()
    assert 'data-status="stale"' in page and "hx-trigger" not in page
    assert practitioner_client.get(reverse("plan_pdf_download", args=[plan.pk])).status_code == 404


def test_request_is_post_only_and_unknown_plans_are_404(practitioner_client: Client, plan: TreatmentPlan) -> None:
    assert practitioner_client.get(reverse("plan_pdf_request", args=[plan.pk])).status_code == 405
    assert practitioner_client.post(reverse("plan_pdf_request", args=[plan.pk + 999])).status_code == 404


def test_file_name_is_per_plan_version_and_language(plan: TreatmentPlan) -> None:
    assert plan_document_file_name(plan, "fr") == f"plans/{plan.patient_id}/plan-{plan.pk}-v1-fr.pdf"


def test_download_of_a_lost_file_is_404(
    practitioner_client: Client, plan: TreatmentPlan, private_storage: Path, django_capture_on_commit_callbacks
) -> None:
    document = rendered(plan, django_capture_on_commit_callbacks)
    (private_storage / document.file_name).unlink()
    assert practitioner_client.get(reverse("plan_pdf_download", args=[plan.pk])).status_code == 404


def test_a_new_language_gets_its_own_document(
    plan: TreatmentPlan, private_storage: Path, django_capture_on_commit_callbacks
) -> None:
    english = rendered(plan, django_capture_on_commit_callbacks)
    Patient.objects.filter(pk=plan.patient_id).update(preferred_language="fr")
    plan.refresh_from_db()
    plan.patient.refresh_from_db()
    french = rendered(plan, django_capture_on_commit_callbacks)
    assert french.pk != english.pk and french.language == "fr"
    assert sorted(p.name for p in (private_storage / "plans" / str(plan.patient_id)).iterdir()) == [
        f"plan-{plan.pk}-v1-en.pdf",
        f"plan-{plan.pk}-v1-fr.pdf",
    ]
