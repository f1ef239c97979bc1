"""What a recorded session causes: aftercare now, the check-in 48 h later, course completion
and maintenance recall; side-effect follow-ups; all in the patient's language."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.db import transaction
from django.utils import timezone

from aftercare.models import AftercareTemplate, OutboundMessage, PatientLink
from aftercare.services import message_sweep_due
from aftercare.session_messages import adverse_followups_queue
from mesoclinic.models import Location, User
from patients.models import Patient
from patients.services.history import history_record
from tests.factories import LocationFactory, PatientFactory
from tests.treatments.test_plans import _consent
from treatments.catalogue_seed import catalogue_seed
from treatments.models import AdverseEvent, Lot, ProtocolTemplate, TreatmentPlan, TreatmentSession
from treatments.services.plans import consent_kind_for, plan_create, plan_transition
from treatments.services.sessions import LotInput, SessionAreaInput, session_record

PARIS = ZoneInfo("Europe/Paris")
NOW = datetime(2030, 3, 4, 11, 0, tzinfo=PARIS)
SKIN_BOOSTER = "Skin booster — face, neck (3 × 3 weeks)"
LIPOLYSIS = "Lipolysis — abdomen (4 × 4 weeks)"
Status = OutboundMessage.Status


@pytest.fixture
def clock():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture
def location(db: None) -> Location:
    return LocationFactory(time_zone="Europe/Paris", name="Opéra", phone="01 23 45 67 89")


def make_patient(created_by: User, **fields) -> Patient:
    fields.setdefault("preferred_language", "en")
    patient = PatientFactory(created_by=created_by, first_name="Nina", **fields)
    history_record(patient=patient, recorded_by=created_by, conditions=[], weight_kg=Decimal("60"))
    return patient


def consented_plan(patient: Patient, practitioner: User, *, protocol: str = SKIN_BOOSTER, **course) -> TreatmentPlan:
    """A plan from a seeded protocol, consented (``course`` overrides its schedule)."""
    if not ProtocolTemplate.objects.exists():
        catalogue_seed()
    plan = plan_create(
        patient=patient, practitioner=practitioner, protocol=ProtocolTemplate.objects.get(name=protocol), concern=""
    )
    if course:
        TreatmentPlan.objects.filter(pk=plan.pk).update(**course)
        plan.refresh_from_db()
    _consent(patient, practitioner, kind=consent_kind_for(plan))
    plan_transition(plan=plan, to="proposed", by=practitioner)
    return plan_transition(plan=plan, to="consented", by=practitioner)


def record(plan: TreatmentPlan, practitioner: User, location: Location | None, **extra) -> TreatmentSession:
    areas = []
    for plan_area in plan.areas.prefetch_related("products"):
        product = plan_area.products.all()[0].product
        lot = Lot.objects.filter(
            product=product, recalled_at__isnull=True, expiry_date__gte=timezone.localdate(), quantity_on_hand__gte=1
        ).first()
        areas.append(
            SessionAreaInput(
                area=plan_area.area,
                technique=plan_area.technique,
                points=plan_area.points,
                depth_mm=plan_area.depth_mm,
                lots=[LotInput(lot=lot, volume_ml=Decimal("1"), units=1)],
            )
        )
    root = plan.root_id or plan.pk
    return session_record(
        plan=plan,
        number=TreatmentSession.objects.filter(plan__root_id=root).count() + 1,
        practitioner=practitioner,
        performed_at=extra.pop("performed_at", timezone.now()),
        areas=areas,
        location=location,
        **extra,
    )


def _rows(session: TreatmentSession) -> dict[str, OutboundMessage]:
    return {m.kind: m for m in OutboundMessage.objects.filter(session=session)}


def test_a_session_queues_aftercare_now_and_the_check_in_48_hours_later(clock, location, practitioner) -> None:
    patient = make_patient(practitioner)
    plan = consented_plan(patient, practitioner)
    session = record(plan, practitioner, location, notes="NOTE-MARKER-3318")
    rows = _rows(session)
    assert set(rows) == {"aftercare", "checkin"}  # session 1 of 3: the course goes on
    aftercare, checkin = rows["aftercare"], rows["checkin"]
    assert aftercare.due_at == timezone.now() and aftercare.status == Status.SCHEDULED
    assert checkin.due_at == session.performed_at + timedelta(hours=48)
    assert aftercare.patient == patient and aftercare.plan == plan and aftercare.language == "en"
    assert aftercare.subject == "Your aftercare instructions — Clinique Test"
    body = aftercare.body_text
    # General advice first, then face and neck (the treated areas), the concern, warning signs.
    order = ["do not shower", "make-up on the treated skin", "décolleté out of the sun", "Redness at the injection"]
    positions = [body.index(text) for text in [*order, "lump, heat, fever"]]
    assert positions == sorted(positions)
    assert "The clinic's phone: 01 23 45 67 89" in body
    assert body.count("make-up on the treated skin") == 2  # face and neck sections, each once
    lots = Lot.objects.filter(uses__session_area__session=session)
    for text in (aftercare.subject, body, aftercare.body_html, checkin.body_text, checkin.body_html):
        assert "HA Booster" not in text and "NOTE-MARKER-3318" not in text
        for lot in lots:
            assert lot.lot_number not in text
    assert "How are you since your session on Monday 4 March 2030?" in checkin.body_text
    links = PatientLink.objects.filter(patient=patient)
    assert links.get(purpose="aftercare").session == session
    check_link = links.get(purpose="checkin")
    assert check_link.session == session and check_link.expires_at > checkin.due_at + timedelta(days=7)


def test_the_check_in_goes_out_when_its_time_comes(
    clock, location, practitioner, mailoutbox: list, django_capture_on_commit_callbacks
) -> None:
    plan = consented_plan(make_patient(practitioner), practitioner)
    with django_capture_on_commit_callbacks(execute=True):
        session = record(plan, practitioner, location)
    assert [mail.subject for mail in mailoutbox] == ["Your aftercare instructions — Clinique Test"]
    clock.move_to(session.performed_at + timedelta(hours=47))
    with django_capture_on_commit_callbacks(execute=True):
        message_sweep_due()
    assert len(mailoutbox) == 1
    clock.move_to(session.performed_at + timedelta(hours=48, minutes=1))
    with django_capture_on_commit_callbacks(execute=True):
        message_sweep_due()
    assert mailoutbox[-1].subject == "How are you after your session? — Clinique Test"
    assert "/p/" in mailoutbox[-1].body
    assert _rows(session)["checkin"].status == Status.SENT


def test_the_last_session_adds_course_completion_and_maintenance_recall(clock, location, practitioner) -> None:
    plan = consented_plan(make_patient(practitioner), practitioner, sessions_planned=1)
    assert plan.maintenance_interval_days == 180 and plan.review_after_days == 30
    session = record(plan, practitioner, location)
    rows = _rows(session)
    assert set(rows) == {"aftercare", "checkin", "course_complete", "maintenance_recall"}
    complete, recall = rows["course_complete"], rows["maintenance_recall"]
    assert complete.due_at == session.performed_at + timedelta(days=1)
    assert "review appointment around Wednesday 3 April 2030" in complete.body_text
    assert "01 23 45 67 89" in complete.body_text
    assert recall.due_at == session.performed_at + timedelta(days=180)
    assert recall.dedupe_key == f"maintenance_recall:{plan.pk}:{session.pk}"
    assert "maintenance session" in recall.subject


def test_no_maintenance_recall_without_a_maintenance_rhythm(clock, location, practitioner) -> None:
    plan = consented_plan(make_patient(practitioner), practitioner, sessions_planned=1, maintenance_interval_days=None)
    rows = _rows(record(plan, practitioner, location))
    assert "course_complete" in rows and "maintenance_recall" not in rows


def test_a_french_patient_gets_the_french_aftercare(clock, location, practitioner) -> None:
    patient = make_patient(practitioner, preferred_language="fr")
    plan = consented_plan(patient, practitioner, protocol=LIPOLYSIS)
    aftercare = _rows(record(plan, practitioner, location))["aftercare"]
    assert aftercare.language == "fr"
    # The advice is the seeded French rows; the body areas and the concern add theirs.
    assert "Après votre séance" in aftercare.body_text
    assert "ne prenez pas de douche" in aftercare.body_text
    assert "Portez des vêtements amples" in aftercare.body_text
    assert "Réduction des graisses" in aftercare.body_text
    assert "Appelez la clinique sans attendre" in aftercare.body_text
    assert "make-up" not in aftercare.body_text and "Ne vous maquillez pas" not in aftercare.body_text
    assert "lundi 4 mars 2030" in aftercare.body_text.lower()


def test_a_missing_translation_falls_back_to_english_and_a_turned_off_section_is_left_out(
    clock, location, practitioner
) -> None:
    AftercareTemplate.objects.filter(key="area:face", language="fr").delete()
    AftercareTemplate.objects.filter(key="area:neck_decollete").update(is_active=False)
    patient = make_patient(practitioner, preferred_language="fr")
    aftercare = _rows(record(consented_plan(patient, practitioner), practitioner, location))["aftercare"]
    assert "Do not put make-up on the treated skin" in aftercare.body_text
    assert "décolleté" not in aftercare.body_text.lower()
    assert "Après votre séance" in aftercare.body_text


def test_safety_messages_go_even_without_booking_emails_but_not_the_course_ones(clock, location, practitioner) -> None:
    patient = make_patient(practitioner, email_transactional=False)
    rows = _rows(record(consented_plan(patient, practitioner, sessions_planned=1), practitioner, location))
    assert rows["aftercare"].status == Status.SCHEDULED
    assert rows["checkin"].status == Status.SCHEDULED
    assert rows["course_complete"].status == Status.CANCELLED
    assert rows["maintenance_recall"].status == Status.CANCELLED


def test_no_message_for_a_patient_without_email(clock, location, practitioner) -> None:
    patient = make_patient(practitioner, email="")
    session = record(consented_plan(patient, practitioner), practitioner, location)
    assert not OutboundMessage.objects.filter(session=session).exists()


def test_a_rolled_back_session_leaves_no_message(clock, location, practitioner) -> None:
    plan = consented_plan(make_patient(practitioner), practitioner)

    class Abort(Exception):
        pass

    with pytest.raises(Abort), transaction.atomic():
        record(plan, practitioner, location)
        raise Abort
    assert not OutboundMessage.objects.exists()
    assert not PatientLink.objects.exists()


def test_recording_through_the_page_queues_the_aftercare(clock, location, practitioner, practitioner_client) -> None:
    from django.urls import reverse

    from tests.treatments.test_plans import _session_data

    plan = consented_plan(make_patient(practitioner), practitioner, protocol=LIPOLYSIS)
    lot = Lot.objects.filter(
        product__name="Lipo PC 5%", recalled_at__isnull=True, expiry_date__gte=timezone.localdate()
    ).first()
    data = _session_data(plan, lot)
    data["performed_at"] = timezone.localtime().strftime("%Y-%m-%dT%H:%M")
    response = practitioner_client.post(reverse("session_record", args=[plan.pk]), data)
    assert response.status_code == 302
    session = TreatmentSession.objects.get(plan=plan)
    aftercare = _rows(session)["aftercare"]
    assert "Wear loose, comfortable clothing" in aftercare.body_text
    assert "Lipo PC" not in aftercare.body_text


# --- side-effect follow-ups ------------------------------------------------------------------


def _event(session: TreatmentSession, *, due: date | None, resolved: bool = False) -> AdverseEvent:
    event = AdverseEvent.objects.create(
        patient=session.patient,
        type="bruising",
        grade=1,
        onset_at=session.performed_at,
        reported_by="practitioner",
        follow_up_due=due,
        resolved_at=session.performed_at + timedelta(days=1) if resolved else None,
    )
    event.sessions.add(session)
    return event


def test_follow_up_reminders_once_per_due_date(clock, location, practitioner) -> None:
    session = record(consented_plan(make_patient(practitioner), practitioner), practitioner, location)
    today = timezone.localdate()
    due = _event(session, due=today)
    _event(session, due=today + timedelta(days=1))  # not yet
    _event(session, due=today - timedelta(days=2), resolved=True)  # resolved
    assert adverse_followups_queue() == 1
    assert adverse_followups_queue() == 0  # run twice: still one
    rows = OutboundMessage.objects.filter(kind="adverse_followup")
    message = rows.get()
    assert message.adverse_event == due and message.session == session and message.patient == session.patient
    assert message.dedupe_key == f"adverse_followup:{due.pk}:{today.isoformat()}"
    assert "How is it going?" in message.body_text and "/p/" in message.body_text
    assert "01 23 45 67 89" in message.body_text and "Bruising" not in message.body_text
    link = PatientLink.objects.filter(purpose="checkin", session=session).order_by("-pk").first()
    assert link is not None and link.expires_at > message.due_at
    # The practitioner moves the next follow-up a week on: one more message, that day.
    AdverseEvent.objects.filter(pk=due.pk).update(follow_up_due=today + timedelta(days=7))
    clock.move_to(NOW + timedelta(days=7))
    assert adverse_followups_queue() == 2  # this one, and the one that was "not yet"
    assert rows.filter(adverse_event=due).count() == 2


def test_follow_ups_found_at_night_wait_for_the_morning(clock, location, practitioner) -> None:
    session = record(consented_plan(make_patient(practitioner), practitioner), practitioner, location)
    _event(session, due=timezone.localdate() + timedelta(days=1))
    clock.move_to(datetime(2030, 3, 5, 3, 0, tzinfo=PARIS))
    assert adverse_followups_queue() == 1
    message = OutboundMessage.objects.get(kind="adverse_followup")
    assert message.due_at == datetime(2030, 3, 5, 9, 0, tzinfo=PARIS)


def test_long_forgotten_follow_ups_are_not_mailed(clock, location, practitioner) -> None:
    session = record(consented_plan(make_patient(practitioner), practitioner), practitioner, location)
    _event(session, due=timezone.localdate() - timedelta(days=45))
    assert adverse_followups_queue() == 0
