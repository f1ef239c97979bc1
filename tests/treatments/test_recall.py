from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from aftercare.models import OutboundMessage
from mesoclinic.models import ReadEvent
from tests.factories import PatientFactory
from treatments.catalogue_seed import catalogue_seed
from treatments.models import Lot, LotUse, RecallFlag, SessionArea, TreatmentPlan, TreatmentSession


@pytest.fixture
def exposed(db, practitioner):
    catalogue_seed()
    lot = Lot.objects.filter(product__name="Lipo PC 5%", expiry_date__gte=timezone.localdate()).get()
    other_lot = Lot.objects.filter(product__name="Vita-C 20%", expiry_date__gte=timezone.localdate()).get()
    people = []
    for n, (email, lang) in enumerate([("a@example.fr", "fr"), ("b@example.com", "en"), ("", "fr")]):
        patient = PatientFactory(email=email, preferred_language=lang, created_by=practitioner, last_name=f"Expose{n}")
        plan = TreatmentPlan.objects.create(patient=patient, practitioner=practitioner, concern="fat_reduction")
        session = TreatmentSession.objects.create(
            plan=plan,
            patient=patient,
            number=1,
            practitioner=practitioner,
            status="completed",
            completed_at=timezone.now(),
        )
        area = SessionArea.objects.create(session=session, area="abdomen", technique="nappage", points=10)
        LotUse.objects.create(session_area=area, lot=lot if n < 3 else other_lot, volume_ml=2)
        people.append(patient)
    bystander = PatientFactory(email="c@example.fr", created_by=practitioner, last_name="Unexposed")
    plan = TreatmentPlan.objects.create(patient=bystander, practitioner=practitioner, concern="fat_reduction")
    session = TreatmentSession.objects.create(
        plan=plan,
        patient=bystander,
        number=1,
        practitioner=practitioner,
        status="completed",
        completed_at=timezone.now(),
    )
    LotUse.objects.create(
        session_area=SessionArea.objects.create(session=session, area="face", technique="nappage", points=5),
        lot=other_lot,
        volume_ml=1,
    )
    return lot, people, bystander


@pytest.mark.parametrize("persona", ["practitioner_client", "front_desk_client"])
def test_only_managers_handle_recalls(request, persona: str, exposed) -> None:
    lot = exposed[0]
    client = request.getfixturevalue(persona)
    assert client.get(reverse("lot_recall_detail", args=[lot.pk])).status_code == 403
    assert client.post(reverse("lot_recall_notify", args=[lot.pk])).status_code == 403


def test_exposed_patients_are_listed_and_reads_audited(manager_client: Client, exposed) -> None:
    lot, people, _bystander = exposed
    page = manager_client.get(reverse("lot_recall_detail", args=[lot.pk])).content.decode()
    for patient in people:
        assert patient.last_name.upper() in page
    assert "UNEXPOSED" not in page
    assert ReadEvent.objects.filter(patient_id__in=[p.pk for p in people]).count() == 3


def test_notify_needs_the_lot_recalled_first(manager_client: Client, exposed) -> None:
    lot = exposed[0]
    manager_client.post(reverse("lot_recall_notify", args=[lot.pk]))
    assert not RecallFlag.objects.exists() and not OutboundMessage.objects.exists()


def test_notify_flags_every_record_and_emails_once(
    manager_client: Client, exposed, django_capture_on_commit_callbacks, mailoutbox
) -> None:
    lot, _people, _ = exposed
    manager_client.post(reverse("lot_recall", args=[lot.pk]), {"reason": "Sterility deviation"})
    with django_capture_on_commit_callbacks(execute=True):
        manager_client.post(reverse("lot_recall_notify", args=[lot.pk]))
        manager_client.post(reverse("lot_recall_notify", args=[lot.pk]))  # a second click
    assert RecallFlag.objects.filter(lot=lot).count() == 3
    assert sorted(m.to[0] for m in mailoutbox) == ["a@example.fr", "b@example.com"]
    french = next(m for m in mailoutbox if m.to == ["a@example.fr"])
    assert "information importante" in french.subject  # the patient's language, not the clinic's
    english = next(m for m in mailoutbox if m.to == ["b@example.com"])
    assert "important information" in english.subject
    assert lot.lot_number in french.body
    page = manager_client.get(reverse("lot_recall_detail", args=[lot.pk])).content.decode()
    assert "no email" in page
