"""Medical history, screening and consultations."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from mesoclinic.models import ReadEvent
from patients.models import Allergen, Consultation, ContraindicationRule, Measurement, MedicalHistory, Patient
from patients.services.history import history_record
from patients.services.screening import IngredientRef, screening_run
from tests.factories import PatientFactory

MARKER = "PLANTED-CLINICAL-MARKER-7f3a"


@pytest.fixture
def patient(manager) -> Patient:
    return PatientFactory(first_name="Inès", last_name="Garcia", created_by=manager)


def _history(patient, user, **overrides):
    data = {"conditions": [], "medications": [], "allergies": []}
    data.update(overrides)
    return history_record(patient=patient, recorded_by=user, **data)


# --- screening ------------------------------------------------------------------------------


def test_pregnancy_blocks(patient, practitioner) -> None:
    findings = screening_run(history=_history(patient, practitioner, conditions=["pregnancy"]))
    assert [(f.severity, f.trigger) for f in findings] == [("block", "condition:pregnancy")]


def test_anticoagulant_warns(patient, practitioner) -> None:
    history = _history(patient, practitioner, medications=[{"name": "Apixaban", "flags": ["anticoagulant"]}])
    findings = screening_run(history=history)
    assert [(f.severity, f.trigger) for f in findings] == [("warn", "medication:anticoagulant")]
    assert "bruising" in findings[0].reason


def test_soy_allergy_blocks_phosphatidylcholine_only(patient, practitioner) -> None:
    history = _history(patient, practitioner, allergies=[Allergen.objects.get(code="soy")])
    pc = IngredientRef("Phosphatidylcholine", "lipolytic", frozenset({"soy"}))
    vitamin_c = IngredientRef("Vitamin C", "vitamin", frozenset())
    assert [f.trigger for f in screening_run(history=history, ingredients=[pc, vitamin_c]) if f.is_block] == [
        "allergen:soy"
    ]
    assert screening_run(history=history, ingredients=[vitamin_c]) == []
    blocked = screening_run(history=history, ingredients=[pc])[0]
    assert blocked.applies_to == "Phosphatidylcholine"


def test_gallstones_block_only_lipolytics(patient, practitioner) -> None:
    history = _history(patient, practitioner, conditions=["gallstones"])
    assert screening_run(history=history, ingredients=[IngredientRef("HA", "hyaluronic_acid")]) == []
    assert screening_run(history=history, ingredients=[IngredientRef("DCA", "lipolytic")])[0].is_block


def test_rules_are_data_a_manager_can_change(patient, practitioner) -> None:
    ContraindicationRule.objects.filter(condition="keloid_tendency").update(severity="block")
    history = _history(patient, practitioner, conditions=["keloid_tendency"])
    assert screening_run(history=history)[0].is_block
    ContraindicationRule.objects.filter(condition="keloid_tendency").update(is_active=False)
    assert screening_run(history=history) == []


def test_no_history_is_a_warning(patient) -> None:
    findings = screening_run(history=None)
    assert findings[0].trigger == "history:missing" and findings[0].severity == "warn"


# --- history versions ---------------------------------------------------------------------------


def test_every_save_is_a_new_immutable_version(practitioner_client: Client, patient) -> None:
    url = reverse("history_edit", args=[patient.pk])
    base = {"med-TOTAL_FORMS": "2", "med-INITIAL_FORMS": "0", "med-MIN_NUM_FORMS": "0", "med-MAX_NUM_FORMS": "30"}
    practitioner_client.post(url, {**base, "conditions": ["herpes"], "weight_kg": "64.5", "height_cm": "168"})
    practitioner_client.post(
        url,
        {
            **base,
            "conditions": ["herpes", "pregnancy"],
            "weight_kg": "65",
            "med-0-name": "Aspirine",
            "med-0-flags": ["antiplatelet"],
        },
    )
    versions = list(MedicalHistory.objects.filter(patient=patient).order_by("version"))
    assert [v.version for v in versions] == [1, 2]
    assert versions[0].conditions == ["herpes"] and versions[1].conditions == ["herpes", "pregnancy"]
    assert versions[1].medications.get().flags == ["antiplatelet"]
    with pytest.raises(Exception):  # noqa: B017 - the database refuses any rewrite
        MedicalHistory.objects.filter(pk=versions[0].pk).update(conditions=[])


def test_history_page_shows_since_and_last_confirmed(practitioner_client: Client, practitioner, patient) -> None:
    _history(patient, practitioner, conditions=["herpes"])
    _history(patient, practitioner, conditions=["herpes", "gallstones"])
    page = practitioner_client.get(reverse("history_detail", args=[patient.pk])).content.decode()
    assert "Herpes" in page and "Gallstones" in page and "Recorded since" in page and "Last confirmed" in page


def test_confirm_unchanged_creates_a_confirmation_version(practitioner_client: Client, practitioner, patient) -> None:
    _history(
        patient, practitioner, conditions=["herpes"], medications=[{"name": "Xarelto", "flags": ["anticoagulant"]}]
    )
    response = practitioner_client.post(reverse("history_confirm", args=[patient.pk]))
    assert response.status_code == 302
    latest = MedicalHistory.objects.filter(patient=patient).first()
    assert latest.version == 2 and latest.is_confirmation_only
    assert latest.conditions == ["herpes"] and latest.medications.get().name == "Xarelto"


def test_reconfirmation_is_prompted_when_history_is_old(practitioner_client: Client, practitioner, patient) -> None:
    import time_machine

    with time_machine.travel(timezone.now() - timezone.timedelta(days=40)):
        _history(patient, practitioner, conditions=[])
    page = practitioner_client.get(reverse("consultation_new", args=[patient.pk])).content.decode()
    assert 'data-testid="reconfirm-prompt"' in page
    practitioner_client.post(reverse("history_confirm", args=[patient.pk]))
    page = practitioner_client.get(reverse("consultation_new", args=[patient.pk])).content.decode()
    assert 'data-testid="reconfirm-prompt"' not in page


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"weight_kg": "0"}, "greater than or equal to 20"),
        ({"weight_kg": "900"}, "less than or equal to 350"),
        ({"height_cm": "20"}, "greater than or equal to 100"),
        ({"conditions": ["vampirism"]}, "Select a valid choice"),
        ({"no_known_allergies": "on", "allergies_other": "pollen"}, "cannot be ticked together"),
        ({"med-0-flags": ["anticoagulant"]}, "Name the medication"),
    ],
)
def test_bad_history_input_is_refused(practitioner_client: Client, patient, data: dict, message: str) -> None:
    base = {"med-TOTAL_FORMS": "2", "med-INITIAL_FORMS": "0", "med-MIN_NUM_FORMS": "0", "med-MAX_NUM_FORMS": "30"}
    response = practitioner_client.post(reverse("history_edit", args=[patient.pk]), {**base, **data})
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not MedicalHistory.objects.exists()


# --- consultations -----------------------------------------------------------------------------

CONSULT = {
    "concerns": ["fat_reduction"],
    "areas": ["abdomen", "flanks"],
    "fitzpatrick": "3",
    "glogau": "2",
    "findings": "Localised adiposity, good skin quality.",
    "recommendation": "Lipolysis, 4 sessions 4 weeks apart.",
    "m-TOTAL_FORMS": "3",
    "m-INITIAL_FORMS": "0",
    "m-MIN_NUM_FORMS": "0",
    "m-MAX_NUM_FORMS": "40",
    "m-0-kind": "circumference",
    "m-0-area": "abdomen",
    "m-0-landmark": "umbilicus",
    "m-0-value": "92.5",
    "m-1-kind": "weight",
    "m-1-value": "71",
}


def _consult(**changes):
    return {"held_at": timezone.localtime().strftime("%Y-%m-%dT%H:%M"), **CONSULT, **changes}


def test_consultation_records_assessment_measurements_and_screening(
    practitioner_client: Client, practitioner, patient
) -> None:
    _history(patient, practitioner, conditions=["gallstones"])
    response = practitioner_client.post(reverse("consultation_new", args=[patient.pk]), _consult())
    assert response.status_code == 302, response.content.decode()[:2000]
    consultation = Consultation.objects.get()
    assert consultation.practitioner == practitioner and consultation.fitzpatrick == 3 and consultation.glogau == 2
    assert consultation.history.version == 1
    assert consultation.screening[0]["trigger"] == "condition:gallstones"
    assert {(m.kind, m.area, m.value) for m in Measurement.objects.all()} == {
        ("circumference", "abdomen", Decimal("92.5")),
        ("weight", "", Decimal("71.0")),
    }
    page = practitioner_client.get(response.url).content.decode()
    assert "Gallstones" in page and "umbilicus" in page and "Fat reduction" in page


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"fitzpatrick": "7"}, "Select a valid choice"),
        ({"glogau": "0"}, "Select a valid choice"),
        ({"concerns": []}, "This field is required"),
        ({"areas": ["elbow-of-doom"]}, "Select a valid choice"),
        ({"m-0-value": "900"}, "Expected between"),
        ({"m-0-area": ""}, "Which area was measured"),
        ({"held_at": "2999-01-01T10:00"}, "in the future"),
    ],
)
def test_bad_consultation_input_is_refused(practitioner_client: Client, patient, changes: dict, message: str) -> None:
    response = practitioner_client.post(reverse("consultation_new", args=[patient.pk]), _consult(**changes))
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not Consultation.objects.exists() and not Measurement.objects.exists()


# --- roles: front desk sees nothing clinical -----------------------------------------------------

CLINICAL_URLS = ["history_detail", "history_edit", "consultation_new"]


@pytest.mark.parametrize("name", CLINICAL_URLS)
def test_front_desk_is_refused_clinical_pages(front_desk_client: Client, patient, name: str) -> None:
    assert front_desk_client.get(reverse(name, args=[patient.pk])).status_code == 403


@pytest.mark.parametrize("name", CLINICAL_URLS)
@pytest.mark.parametrize("persona", ["practitioner_client", "manager_client"])
def test_clinical_roles_reach_clinical_pages(request, persona: str, patient, name: str) -> None:
    assert request.getfixturevalue(persona).get(reverse(name, args=[patient.pk])).status_code == 200


@pytest.mark.django_db
@pytest.mark.parametrize("name", CLINICAL_URLS)
def test_anonymous_is_sent_to_login(anonymous_client: Client, name: str) -> None:
    response = anonymous_client.get(reverse(name, args=[1]))
    assert response.status_code == 302 and "/accounts/login/" in response.url


def test_front_desk_pages_contain_no_planted_clinical_marker(front_desk_client: Client, practitioner, patient) -> None:
    _history(patient, practitioner, conditions=["herpes"], conditions_detail=MARKER, previous_treatments=MARKER)
    from patients.services.consultation import consultation_create

    consultation = consultation_create(
        patient=patient,
        practitioner=practitioner,
        held_at=timezone.now(),
        concerns=["cellulite"],
        areas=["thighs"],
        findings=MARKER,
    )
    urls = [
        reverse("patient_detail", args=[patient.pk]),
        reverse("patient_update", args=[patient.pk]),
        reverse("patient_list") + "?q=garcia",
        reverse("history_detail", args=[patient.pk]),
        reverse("consultation_detail", args=[patient.pk, consultation.pk]),
        reverse("patient_export", args=[patient.pk]),
    ]
    for url in urls:
        body = front_desk_client.get(url).content.decode()
        assert MARKER not in body, url
        assert "Herpes" not in body and "Cellulite" not in body, url


def test_clinical_page_views_are_audited(practitioner_client: Client, practitioner, patient) -> None:
    practitioner_client.get(reverse("history_detail", args=[patient.pk]))
    assert ReadEvent.objects.filter(user=practitioner, patient_id=patient.pk, what="medical history").count() == 1


# --- pinned query counts at two sizes -------------------------------------------------------------


def _count(client: Client, url: str) -> int:
    client.get(url)
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(url).status_code == 200
    return len(ctx.captured_queries)


def _related(patient, practitioner, n: int) -> None:
    from patients.services.consultation import consultation_create

    for _ in range(n):
        _history(
            patient,
            practitioner,
            conditions=["herpes"],
            medications=[{"name": "X", "flags": ["antiplatelet"]}],
            allergies=[Allergen.objects.get(code="egg")],
        )
        consultation_create(
            patient=patient, practitioner=practitioner, held_at=timezone.now(), concerns=["cellulite"], areas=["thighs"]
        )


@pytest.mark.parametrize("name", ["patient_detail", "history_detail"])
def test_query_counts_are_equal_with_1_and_50_related_rows(
    practitioner_client: Client, practitioner, name: str
) -> None:
    small = PatientFactory(created_by=practitioner)
    large = PatientFactory(created_by=practitioner)
    _related(small, practitioner, 1)
    _related(large, practitioner, 50)
    one = _count(practitioner_client, reverse(name, args=[small.pk]))
    fifty = _count(practitioner_client, reverse(name, args=[large.pk]))
    assert one == fifty == {"patient_detail": 16, "history_detail": 10}[name]


def test_export_has_the_clinical_record_of_this_patient_only(manager_client: Client, practitioner, patient) -> None:
    import json

    from patients.services.consultation import consultation_create

    other = PatientFactory(created_by=practitioner)
    _history(patient, practitioner, conditions=["herpes"])
    _history(other, practitioner, conditions=["pregnancy"], conditions_detail="OTHER-PATIENT-ONLY")
    consultation_create(
        patient=patient, practitioner=practitioner, held_at=timezone.now(), concerns=["cellulite"], areas=["thighs"]
    )
    body = manager_client.get(reverse("patient_export", args=[patient.pk])).content.decode()
    data = json.loads(body)
    assert data["medical_history_versions"][0]["conditions"] == ["herpes"]
    assert data["consultations"][0]["concerns"] == ["cellulite"]
    assert "OTHER-PATIENT-ONLY" not in body and "pregnancy" not in body
