"""Outcomes: measurements per session, GAIS by practitioner and patient, satisfaction."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import transaction

from treatments.models import SessionMeasurement, SessionOutcome, TreatmentSession


@transaction.atomic
def session_outcome_save(
    *,
    session: TreatmentSession,
    gais_practitioner: int | None,
    gais_patient: int | None,
    satisfaction: int | None,
    measurements: Sequence[dict[str, Any]] = (),
) -> SessionOutcome:
    """Record how the session went; measurements are added (earlier ones stay)."""
    outcome, _ = SessionOutcome.objects.get_or_create(session=session)
    outcome.gais_practitioner = gais_practitioner
    outcome.gais_patient = gais_patient
    outcome.satisfaction = satisfaction
    outcome.full_clean()
    outcome.save()
    for item in measurements:
        row = SessionMeasurement(
            session=session,
            patient_id=session.patient_id,
            kind=item["kind"],
            area=item.get("area") or "",
            landmark=(item.get("landmark") or "").strip(),
            value=item["value"],
        )
        row.full_clean(exclude=["session", "patient"])
        row.save()
    return outcome
