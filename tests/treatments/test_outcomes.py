from __future__ import annotations

from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from patients.services.consultation import consultation_create
from tests.factories import PatientFactory
from treatments.models import SessionMeasurement, SessionOutcome, TreatmentPlan, TreatmentSession
from treatments.selectors_outcomes import plan_outcome_series


@pytest.fixture
def course(db, practitioner):
    patient = PatientFactory(created_by=practitioner)
    consultation = consultation_create(
        patient=patient,
        practitioner=practitioner,
        held_at=timezone.now() - timezone.timedelta(days=60),
        concerns=["fat_reduction"],
        areas=["abdomen"],
        measurements=[{"kind": "circumference", "area": "abdomen", "value": Decimal("92"), "landmark": "umbilicus"}],
    )
    plan = TreatmentPlan.objects.create(
        patient=patient, practitioner=practitioner, concern="fat_reduction", consultation=consultation
    )
    TreatmentPlan.objects.filter(pk=plan.pk).update(root=plan)
    plan.refresh_from_db()
    sessions = [
        TreatmentSession.objects.create(
            plan=plan,
            patient=patient,
            number=n,
            practitioner=practitioner,
            status="completed",
            completed_at=timezone.now(),
            performed_at=timezone.now() - timezone.timedelta(days=40 - 14 * n),
        )
        for n in (1, 2)
    ]
    return patient, plan, sessions


def test_outcome_saved_from_the_session_page(practitioner_client: Client, course) -> None:
    _, _plan, sessions = course
    data = {
        "gais_practitioner": "2",
        "gais_patient": "3",
        "satisfaction": "8",
        "m-TOTAL_FORMS": "3",
        "m-INITIAL_FORMS": "0",
        "m-MIN_NUM_FORMS": "0",
        "m-MAX_NUM_FORMS": "20",
        "m-0-kind": "circumference",
        "m-0-area": "abdomen",
        "m-0-landmark": "umbilicus",
        "m-0-value": "89.5",
    }
    response = practitioner_client.post(reverse("session_detail", args=[sessions[0].pk]), data)
    assert response.status_code == 302
    outcome = SessionOutcome.objects.get(session=sessions[0])
    assert (outcome.gais_practitioner, outcome.gais_patient, outcome.satisfaction) == (2, 3, 8)
    assert SessionMeasurement.objects.get().value == Decimal("89.5")


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("gais_patient", "6", "Select a valid choice"),
        ("satisfaction", "11", "less than or equal to 10"),
        ("m-0-value", "900", "Expected between"),
    ],
)
def test_bad_outcome_input(practitioner_client: Client, course, field: str, value: str, message: str) -> None:
    _, _, sessions = course
    data = {
        "m-TOTAL_FORMS": "1",
        "m-INITIAL_FORMS": "0",
        "m-0-kind": "circumference",
        "m-0-area": "abdomen",
        "m-0-value": "80",
        field: value,
    }
    response = practitioner_client.post(reverse("session_detail", args=[sessions[0].pk]), data)
    assert response.status_code == 400 and message in response.content.decode()
    assert not SessionOutcome.objects.exists() and not SessionMeasurement.objects.exists()


def test_series_runs_from_baseline_through_sessions_and_is_charted(practitioner_client: Client, course) -> None:
    patient, plan, sessions = course
    for session, value in zip(sessions, ("89.5", "87"), strict=True):
        SessionMeasurement.objects.create(
            session=session, patient=patient, kind="circumference", area="abdomen", value=Decimal(value)
        )
    series = plan_outcome_series(plan)
    assert [(p.label, p.value) for p in series[0].points] == [
        ("Baseline", Decimal("92.0")),
        ("S1", Decimal("89.5")),
        ("S2", Decimal("87")),
    ]
    page = practitioner_client.get(reverse("plan_detail", args=[plan.pk])).content.decode()
    assert 'data-testid="chart"' in page and "<polyline" in page and "Baseline 92.0, S1 89.5, S2 87" in page


def test_front_desk_cannot_record_outcomes(front_desk_client: Client, course) -> None:
    _, _, sessions = course
    assert (
        front_desk_client.post(reverse("session_detail", args=[sessions[0].pk]), {"satisfaction": "9"}).status_code
        == 403
    )
    assert not SessionOutcome.objects.exists()


def test_photo_linked_to_a_session_shows_on_the_session_page(
    practitioner_client: Client, course, private_storage
) -> None:
    import io

    from PIL import Image

    from patients.models import ClinicalPhoto, Consent, ConsentText

    patient, _plan, sessions = course
    user = sessions[0].practitioner
    text = ConsentText.objects.create(
        kind="photography", version=1, title_en="t", body_en="b", title_fr="t", body_fr="b", published_by=user
    )
    Consent.objects.create(
        patient=patient,
        text=text,
        language="fr",
        typed_name="x",
        signature_file="x",
        signature_sha256="0" * 64,
        witness=user,
    )
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 150, 120)).save(buffer, format="JPEG")
    buffer.seek(0)
    buffer.name = "after.jpg"
    url = reverse("photo_upload", args=[patient.pk]) + f"?session={sessions[1].pk}"
    assert f'value="{sessions[1].pk}" selected' in practitioner_client.get(url).content.decode()
    response = practitioner_client.post(
        url, {"file": buffer, "area": "abdomen", "view": "front", "session": sessions[1].pk}
    )
    assert response.status_code == 302
    photo = ClinicalPhoto.objects.get()
    assert photo.session == sessions[1]
    page = practitioner_client.get(reverse("session_detail", args=[sessions[1].pk])).content.decode()
    assert reverse("photo_file", args=[patient.pk, photo.pk]) in page
