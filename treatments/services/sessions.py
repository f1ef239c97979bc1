"""Recording a session: safety checked again, lots traced, stock decremented exactly once."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

import django.dispatch
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _

from aftercare.session_messages import session_messages_queue
from mesoclinic.models import Location, User
from patients.selectors import consent_current
from treatments.models import Lot, LotUse, Product, SessionArea, TreatmentPlan, TreatmentSession
from treatments.services.booking import appointment_complete_for_session
from treatments.services.documents import plan_document_invalidate
from treatments.services.plans import PlanBlocked, PlanNeedsAcknowledgement, consent_kind_for
from treatments.services.safety import plan_safety_check

# Sent (after commit) when a session is completed: the aftercare flow listens to it.
session_completed = django.dispatch.Signal()


@dataclass(frozen=True)
class LotInput:
    lot: Lot
    volume_ml: Decimal
    units: int


@dataclass(frozen=True)
class SessionAreaInput:
    area: str
    technique: str
    points: int
    depth_mm: Decimal | None
    lots: list[LotInput]


def session_next_number(plan: TreatmentPlan) -> int:
    root = plan.root_id or plan.pk
    return TreatmentSession.objects.filter(plan__root_id=root).count() + 1


@transaction.atomic
def session_record(
    *,
    plan: TreatmentPlan,
    number: int,
    practitioner: User,
    performed_at: datetime,
    areas: Sequence[SessionAreaInput],
    location: Location | None = None,
    anaesthetic_product: Product | None = None,
    anaesthetic_applied_at: datetime | None = None,
    immediate_reactions: str = "",
    notes: str = "",
    acknowledgements: Mapping[str, str] | None = None,
) -> TreatmentSession:
    """Record a completed session of a consented plan.

    ``number`` is the session number the form was opened for: a second submission of
    the same form finds it taken and is refused, so stock is decremented once.
    """
    acknowledgements = acknowledgements or {}
    plan = TreatmentPlan.objects.select_for_update().select_related("patient").get(pk=plan.pk)
    if plan.status not in {TreatmentPlan.Status.CONSENTED, TreatmentPlan.Status.ACTIVE}:
        raise ValidationError(
            _("Sessions are recorded on a consented plan; this one is %(s)s.") % {"s": plan.get_status_display()}
        )
    expected = session_next_number(plan)
    if number != expected:
        raise ValidationError(_("Session %(n)s is already recorded. Reload the plan to see it.") % {"n": number})
    if number > plan.sessions_planned:
        raise ValidationError(_("All %(n)s planned sessions are recorded.") % {"n": plan.sessions_planned})
    if consent_current(plan.patient, consent_kind_for(plan)) is None:
        raise ValidationError(
            _(
                "The patient's consent is no longer current (a new version was published or it was withdrawn). Capture consent again first."
            )
        )
    if performed_at > timezone.now() + timezone.timedelta(minutes=5):
        raise ValidationError({"performed_at": _("A session cannot be recorded in the future.")})
    root = plan.root_id or plan.pk
    previous = TreatmentSession.objects.filter(plan__root_id=root).order_by("-performed_at").first()
    if previous is not None:
        days = (performed_at.date() - previous.performed_at.date()).days
        if days < plan.min_interval_days:
            raise PlanBlocked(
                [
                    _finding(
                        _("Only %(days)s days since session %(n)s; this plan's minimum interval is %(min)s days.")
                        % {"days": days, "n": previous.number, "min": plan.min_interval_days},
                        "session:interval",
                    )
                ]
            )
    findings = plan_safety_check(plan)
    blocks = [f for f in findings if f.is_block]
    if blocks:
        raise PlanBlocked(blocks)
    missing = [f for f in findings if not acknowledgements.get(f.trigger, "").strip()]
    if missing:
        raise PlanNeedsAcknowledgement(missing)
    if not areas:
        raise ValidationError(_("Record at least one treated area."))
    session = TreatmentSession(
        plan=plan,
        patient=plan.patient,
        number=number,
        practitioner=practitioner,
        location=location,
        performed_at=performed_at,
        anaesthetic_product=anaesthetic_product,
        anaesthetic_applied_at=anaesthetic_applied_at,
        immediate_reactions=immediate_reactions.strip(),
        notes=notes.strip(),
        status=TreatmentSession.Status.COMPLETED,
        completed_at=timezone.now(),
        screening=[{**f.as_dict(), "acknowledged": acknowledgements.get(f.trigger, "").strip()} for f in findings],
    )
    session.full_clean()
    session.save()
    day = timezone.localdate(performed_at)
    for data in areas:
        row = SessionArea.objects.create(
            session=session, area=data.area, technique=data.technique, points=data.points, depth_mm=data.depth_mm
        )
        for use in data.lots:
            lot = use.lot
            if lot.recalled_at is not None:
                raise ValidationError(_("Lot %(lot)s is recalled and cannot be used.") % {"lot": lot.lot_number})
            if lot.expiry_date < day:
                raise ValidationError(
                    _("Lot %(lot)s expired on %(date)s and cannot be used.")
                    % {"lot": lot.lot_number, "date": date_format(lot.expiry_date, "SHORT_DATE_FORMAT")}
                )
            taken = Lot.objects.filter(pk=lot.pk, quantity_on_hand__gte=use.units).update(
                quantity_on_hand=F("quantity_on_hand") - use.units
            )
            if not taken:
                raise ValidationError(
                    _("Not enough units of lot %(lot)s in stock; correct the stock in the catalogue first.")
                    % {"lot": lot.lot_number}
                )
            LotUse.objects.create(session_area=row, lot=lot, volume_ml=use.volume_ml, units_used=use.units)
    plan.status = TreatmentPlan.Status.COMPLETED if number >= plan.sessions_planned else TreatmentPlan.Status.ACTIVE
    plan.revision += 1
    plan.save(update_fields=["status", "revision"])
    plan_document_invalidate(plan=plan)
    appointment_complete_for_session(session=session)
    # Aftercare, the check-in and course messages are outbox rows of this same transaction.
    session_messages_queue(session=session)
    transaction.on_commit(lambda: session_completed.send(sender=TreatmentSession, session_id=session.pk))
    return session


def _finding(reason: str, trigger: str):  # type: ignore[no-untyped-def]
    from patients.services.screening import Finding

    return Finding(severity="block", reason=reason, rule_id=None, trigger=trigger)
