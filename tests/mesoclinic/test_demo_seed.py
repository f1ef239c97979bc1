from __future__ import annotations

import pytest
from django.core.management import call_command

from mesoclinic.access import Role, user_roles
from mesoclinic.models import User
from patients.models import ClinicalPhoto, Consent, Consultation, MedicalHistory, Patient
from treatments.models import Lot, Product


@pytest.mark.django_db
def test_demo_seed_is_idempotent_and_varied(private_storage) -> None:
    call_command("demo_seed")
    counts = (
        Patient.objects.count(),
        MedicalHistory.objects.count(),
        Consultation.objects.count(),
        Consent.objects.count(),
        Lot.objects.count(),
    )
    call_command("demo_seed")
    assert (
        Patient.objects.count(),
        MedicalHistory.objects.count(),
        Consultation.objects.count(),
        Consent.objects.count(),
        Lot.objects.count(),
    ) == counts
    assert counts[0] >= 8 and counts[2] >= 4 and counts[3] >= 4 and Product.objects.count() >= 6
    assert Patient.objects.filter(status="archived").exists()
    assert ClinicalPhoto.objects.count() == 2
    from treatments.models import LotUse, TreatmentPlan

    assert set(TreatmentPlan.objects.values_list("status", flat=True)) == {"draft", "proposed", "active"}
    assert LotUse.objects.count() >= 1
    from treatments.models import AdverseEvent

    # One reported at the demo's consultation, one from the demo check-in.
    assert AdverseEvent.objects.filter(needs_triage=True).count() == 2
    from aftercare.models import CheckInResponse, OutboundMessage

    assert CheckInResponse.objects.count() == 1
    kinds = set(OutboundMessage.objects.values_list("kind", flat=True))
    assert {"appointment_booked", "appointment_reminder", "aftercare", "checkin"} <= kinds
    assert OutboundMessage.objects.filter(status="failed").count() == 1
    assert AdverseEvent.objects.filter(resolved_at__isnull=False).count() == 1
    assert user_roles(User.objects.get(email="frontdesk@demo.clinic")) == {Role.FRONT_DESK}
    assert User.objects.get(email="manager@demo.clinic").check_password("demo-clinic-2026")
