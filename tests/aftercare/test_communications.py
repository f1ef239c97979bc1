"""The communications log on the patient page, one message as sent, the manager's outbox and
resend, the plan sent as a link, lot recall rows in the patient's log."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from aftercare.models import OutboundMessage, PatientLink
from mesoclinic.models import ReadEvent, User
from patients.models import Patient
from tests.factories import PatientFactory

Status = OutboundMessage.Status
AFTERCARE_SECRET = "AFTERCARE-BODY-6620"
BOOKING_SECRET = "BOOKING-BODY-6620"


def _message(patient: Patient | None, kind: str = "appointment_booked", **fields) -> OutboundMessage:
    status = fields.pop("status", Status.SENT)
    return OutboundMessage.objects.create(
        kind=kind,
        patient=patient,
        to_email=patient.email if patient else "alice@example.test",
        subject=fields.pop("subject", f"Subject of {kind}"),
        body_text=fields.pop("body_text", f"Body of {kind}"),
        dedupe_key=fields.pop("dedupe_key", f"test:{OutboundMessage.objects.count()}:{kind}"),
        status=status,
        sent_at=timezone.now() if status == Status.SENT else None,
        **fields,
    )


@pytest.fixture
def patient(db: None, front_desk: User) -> Patient:
    return PatientFactory(created_by=front_desk, first_name="Nina", last_name="Petit")


@pytest.fixture
def log(patient: Patient) -> dict[str, OutboundMessage]:
    return {
        "aftercare": _message(patient, "aftercare", body_text=AFTERCARE_SECRET, subject="Your aftercare instructions"),
        "booking": _message(patient, "appointment_booked", body_text=BOOKING_SECRET),
    }


# --- the patient page ------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["manager_client", "practitioner_client"])
def test_clinical_staff_see_every_message_as_sent(request, who: str, patient, log) -> None:
    client: Client = request.getfixturevalue(who)
    page = client.get(reverse("patient_detail", args=[patient.pk])).content.decode()
    assert page.count('data-testid="message-row"') == 2
    assert AFTERCARE_SECRET in page and BOOKING_SECRET in page
    assert "Aftercare instructions" in page and "Booking confirmation" in page
    assert reverse("message_detail", args=[log["aftercare"].pk]) in page


def test_the_front_desk_sees_that_aftercare_went_out_but_not_what_it_said(front_desk_client, patient, log) -> None:
    page = front_desk_client.get(reverse("patient_detail", args=[patient.pk])).content.decode()
    assert page.count('data-testid="message-row"') == 2
    assert "Aftercare instructions" in page and 'data-status="sent"' in page
    assert AFTERCARE_SECRET not in page and "Your aftercare instructions" not in page
    assert reverse("message_detail", args=[log["aftercare"].pk]) not in page
    assert BOOKING_SECRET in page  # booking messages are the front desk's business


def test_the_log_shows_the_latest_twenty(manager_client, patient) -> None:
    for _ in range(23):
        _message(patient)
    page = manager_client.get(reverse("patient_detail", args=[patient.pk])).content.decode()
    assert page.count('data-testid="message-row"') == 20


def test_no_message_yet(manager_client, patient) -> None:
    page = manager_client.get(reverse("patient_detail", args=[patient.pk])).content.decode()
    assert 'data-testid="messages-empty"' in page


# --- one message -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("who", "kind", "expected"),
    [
        ("manager_client", "aftercare", 200),
        ("practitioner_client", "aftercare", 200),
        ("front_desk_client", "aftercare", 404),
        ("front_desk_client", "booking", 200),
        ("practitioner_client", "booking", 200),
    ],
)
def test_message_detail_by_role(request, who: str, kind: str, expected: int, log) -> None:
    client: Client = request.getfixturevalue(who)
    message = log[kind]
    response = client.get(reverse("message_detail", args=[message.pk]))
    assert response.status_code == expected
    if expected == 200:
        assert message.body_text in response.content.decode()


def test_reading_a_message_is_audited(practitioner_client, practitioner, log) -> None:
    message = log["aftercare"]
    practitioner_client.get(reverse("message_detail", args=[message.pk]))
    event = ReadEvent.objects.get(user=practitioner, patient_id=message.patient_id)
    assert event.what == f"message {message.pk} (aftercare)"


def test_staff_alerts_are_for_managers_only(manager_client, practitioner_client, db) -> None:
    alert = _message(None, "outbox_failed_alert", body_text="ALERT-BODY")
    assert practitioner_client.get(reverse("message_detail", args=[alert.pk])).status_code == 404
    response = manager_client.get(reverse("message_detail", args=[alert.pk]))
    assert response.status_code == 200 and "ALERT-BODY" in response.content.decode()


def test_anonymous_visitors_are_sent_to_sign_in(anonymous_client, log) -> None:
    for url in (
        reverse("message_detail", args=[log["booking"].pk]),
        reverse("outbox_list"),
        reverse("message_resend", args=[log["booking"].pk]),
    ):
        response = anonymous_client.get(url) if "resend" not in url else anonymous_client.post(url)
        assert response.status_code == 302 and "/accounts/login/" in response.url


def test_unknown_message_is_404(manager_client, db) -> None:
    assert manager_client.get(reverse("message_detail", args=[999999])).status_code == 404


# --- the outbox -------------------------------------------------------------------------------


def test_the_outbox_lists_failed_and_pending_newest_first(manager_client, patient) -> None:
    sent = _message(patient, "appointment_booked")
    failed = _message(patient, "aftercare", status=Status.FAILED, last_error="SMTPRecipientsRefused: 550 no such user")
    waiting = _message(patient, "appointment_reminder", status=Status.SCHEDULED, due_at=timezone.now() + timedelta(1))
    cancelled = _message(patient, "appointment_reminder", status=Status.CANCELLED)
    page = manager_client.get(reverse("outbox_list")).content.decode()
    shown = [f'data-message="{m.pk}"' for m in (waiting, failed)]
    assert all(s in page for s in shown) and page.index(shown[0]) < page.index(shown[1])
    assert f'data-message="{sent.pk}"' not in page and f'data-message="{cancelled.pk}"' not in page
    assert "550 no such user" in page
    only_failed = manager_client.get(reverse("outbox_list"), {"status": "failed"}).content.decode()
    assert f'data-message="{failed.pk}"' in only_failed and f'data-message="{waiting.pk}"' not in only_failed
    # An unknown filter is the default view, not an error.
    assert manager_client.get(reverse("outbox_list"), {"status": "nonsense"}).status_code == 200


@pytest.mark.parametrize("who", ["practitioner_client", "front_desk_client"])
def test_only_managers_see_the_outbox(request, who: str, db) -> None:
    client: Client = request.getfixturevalue(who)
    assert client.get(reverse("outbox_list")).status_code == 403


def test_the_outbox_pages_by_keyset(manager_client, patient, settings) -> None:
    from aftercare import views_staff

    settings.DEBUG = False
    page_size = views_staff.OUTBOX_PAGE
    rows = [_message(patient, status=Status.FAILED) for _ in range(page_size + 3)]
    first = manager_client.get(reverse("outbox_list")).content.decode()
    assert first.count('data-testid="outbox-row"') == page_size
    older = manager_client.get(reverse("outbox_list"), {"before": rows[3].pk}).content.decode()
    assert older.count('data-testid="outbox-row"') == 3
    assert f"before={rows[3].pk}" in first


def _outbox_queries(client: Client) -> int:
    with CaptureQueriesContext(connection) as context:
        assert client.get(reverse("outbox_list")).status_code == 200
    return len(context.captured_queries)


def test_outbox_query_count_does_not_grow_with_rows(manager_client, db) -> None:
    patients = [PatientFactory() for _ in range(3)]
    for patient in patients:
        _message(patient, status=Status.FAILED)
    small = _outbox_queries(manager_client)
    for index in range(40):
        _message(patients[index % 3] if index % 4 else None, status=Status.SCHEDULED)
    # Session, user, roles, the page of rows (patients joined).
    assert small == _outbox_queries(manager_client) == 4


# --- resend -----------------------------------------------------------------------------------


def test_a_manager_resends_a_failed_message_as_a_new_row(manager_client, manager, patient) -> None:
    failed = _message(patient, "aftercare", status=Status.FAILED, body_text=AFTERCARE_SECRET, last_error="boom")
    response = manager_client.post(reverse("message_resend", args=[failed.pk]))
    copy = OutboundMessage.objects.exclude(pk=failed.pk).get()
    assert response.status_code == 302 and response.url == reverse("message_detail", args=[copy.pk])
    assert copy.resend_of == failed and copy.created_by == manager
    assert copy.body_text == AFTERCARE_SECRET and copy.status in {Status.SCHEDULED, Status.SENT}
    failed.refresh_from_db()
    assert failed.status == Status.FAILED and failed.last_error == "boom"
    page = manager_client.get(reverse("message_detail", args=[failed.pk])).content.decode()
    assert reverse("message_detail", args=[copy.pk]) in page


def test_a_pending_message_cannot_be_resent(manager_client, patient) -> None:
    waiting = _message(patient, status=Status.SCHEDULED)
    response = manager_client.post(reverse("message_resend", args=[waiting.pk]))
    assert response.status_code == 409
    assert OutboundMessage.objects.count() == 1


@pytest.mark.parametrize("who", ["practitioner_client", "front_desk_client"])
def test_only_managers_resend(request, who: str, patient) -> None:
    failed = _message(patient, status=Status.FAILED)
    client: Client = request.getfixturevalue(who)
    assert client.post(reverse("message_resend", args=[failed.pk])).status_code == 403
    assert OutboundMessage.objects.count() == 1


def test_resend_is_post_only(manager_client, patient) -> None:
    failed = _message(patient, status=Status.FAILED)
    assert manager_client.get(reverse("message_resend", args=[failed.pk])).status_code == 405


# --- the plan, by email ----------------------------------------------------------------------


@pytest.fixture
def plan(db, practitioner):
    from tests.aftercare.test_session_messages import consented_plan, make_patient

    return consented_plan(make_patient(practitioner), practitioner)


def test_a_practitioner_emails_the_plan_as_a_link(practitioner_client, practitioner, plan) -> None:
    response = practitioner_client.post(reverse("plan_email", args=[plan.pk]))
    assert response.status_code == 302 and response.url == reverse("plan_detail", args=[plan.pk])
    message = OutboundMessage.objects.get(kind="plan_link")
    assert message.plan == plan and message.patient == plan.patient and message.created_by == practitioner
    link = PatientLink.objects.get(purpose="plan")
    assert link.plan == plan and link.patient == plan.patient
    assert "/p/" in message.body_text and "not attached" in message.body_text
    assert not message.ics and "HA Booster" not in message.body_text
    page = practitioner_client.get(reverse("plan_detail", args=[plan.pk])).content.decode()
    assert 'data-testid="plan-email"' in page and plan.patient.email in page


def test_the_front_desk_cannot_email_a_plan(front_desk_client, plan) -> None:
    assert front_desk_client.post(reverse("plan_email", args=[plan.pk])).status_code == 403
    assert not OutboundMessage.objects.filter(kind="plan_link").exists()


def test_a_plan_cannot_be_emailed_to_a_patient_without_address(practitioner_client, plan) -> None:
    Patient.objects.filter(pk=plan.patient_id).update(email="")
    response = practitioner_client.post(reverse("plan_email", args=[plan.pk]), follow=True)
    assert "no email address" in response.content.decode()
    assert not OutboundMessage.objects.filter(kind="plan_link").exists()


def test_a_draft_plan_is_not_emailed(practitioner_client, practitioner) -> None:
    from tests.aftercare.test_session_messages import make_patient
    from treatments.services.plans import plan_create

    draft = plan_create(patient=make_patient(practitioner), practitioner=practitioner, concern="cellulite")
    response = practitioner_client.post(reverse("plan_email", args=[draft.pk]), follow=True)
    assert "Only a plan proposed to the patient" in response.content.decode()
    assert not OutboundMessage.objects.exists()


def test_emailing_an_unknown_plan_is_404(practitioner_client, db) -> None:
    assert practitioner_client.post(reverse("plan_email", args=[999999])).status_code == 404


# --- lot recall rows belong to the patient ----------------------------------------------------


def test_lot_recall_messages_appear_in_the_patients_log(manager_client, manager, practitioner) -> None:
    from tests.aftercare.test_session_messages import consented_plan, make_patient, record
    from treatments.models import Lot
    from treatments.services.recall import recall_notify

    patient = make_patient(practitioner, email_transactional=False)
    session = record(consented_plan(patient, practitioner), practitioner, None)
    lot = Lot.objects.filter(uses__session_area__session=session).first()
    Lot.objects.filter(pk=lot.pk).update(recalled_at=timezone.now())
    assert recall_notify(lot=lot, by=manager) == 1
    message = OutboundMessage.objects.get(kind="lot_recall")
    # A safety message: it goes even though booking and aftercare emails are off.
    assert message.patient == patient and message.session == session and message.status == Status.SCHEDULED
    page = manager_client.get(reverse("patient_detail", args=[patient.pk])).content.decode()
    assert 'data-kind="lot_recall"' in page
