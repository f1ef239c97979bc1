"""Pages behind patient links: each purpose, refusals, headers, rate limit, isolation, language."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
import time_machine
from django.core.files.base import ContentFile
from django.core.files.storage import storages
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape

from aftercare.content import aftercare_sections
from aftercare.links import patient_links_revoke
from aftercare.models import AftercareTemplate, OutboundMessage, PatientLink
from aftercare.seed import GENERAL
from aftercare.services import message_queue
from mesoclinic.models import ReadEvent
from tests.aftercare import links_data
from tests.aftercare.links_data import NOTE_MARKER, OTHER_MARKER, PHONE, World, appointment_for, session_for
from treatments.models import Appointment, AppointmentChange, PlanDocument, TreatmentPlan
from treatments.services.documents import plan_document_file_name

pytestmark = pytest.mark.django_db

# Shared fixtures: the test data and a rate-limit cache of the test's own.
world = links_data.world
private_cache = links_data.private_cache


def _url(token: str, name: str = "patient_link") -> str:
    return reverse(name, args=[token])


def _page(response) -> str:
    return response.content.decode()


def _tampered(token: str) -> str:
    return token[:-1] + ("A" if token[-1] != "A" else "B")


def _assert_private(response) -> None:
    assert response["Referrer-Policy"] == "no-referrer"
    assert response["Cache-Control"] == "no-store"
    assert "noindex" in response["X-Robots-Tag"]


# --- plan ----------------------------------------------------------------------------------


def test_plan_page_shows_the_summary_without_internal_notes(anonymous_client: Client, world: World) -> None:
    token = world.link("plan", plan=world.plan)
    response = anonymous_client.get(_url(token))
    assert response.status_code == 200
    page = _page(response)
    assert "Your treatment plan" in page
    assert "Abdomen" in page
    assert "Reduce the lower abdomen" in page
    assert "1 of 4 sessions done" in page
    assert _url(token, "patient_link_pdf") in page
    assert NOTE_MARKER not in page
    # Footer: the clinic's name and the site's phone, no staff navigation.
    assert PHONE in page
    assert reverse("dashboard") not in page and reverse("patient_list") not in page
    _assert_private(response)


def test_plan_page_writes_a_read_event_with_the_link(anonymous_client: Client, world: World) -> None:
    token = world.link("plan", plan=world.plan)
    link = PatientLink.objects.get()
    assert anonymous_client.get(_url(token)).status_code == 200
    event = ReadEvent.objects.get(token_id=link.pk)
    assert event.user is None
    assert event.patient_id == world.patient.pk
    assert "treatment plan" in event.what
    link.refresh_from_db()
    assert link.last_seen_at is not None


def test_plan_page_queries_do_not_grow_with_sessions(anonymous_client: Client, world: World) -> None:
    token = world.link("plan", plan=world.plan)
    anonymous_client.get(_url(token))  # warm the session and static manifest

    def count() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert anonymous_client.get(_url(token)).status_code == 200
        return len(queries)

    few = count()
    for number in (2, 3, 4):
        session_for(world.plan, number=number, location=world.location)
    assert count() == few
    assert few <= 8


def test_plan_pdf_is_requested_then_streamed(
    anonymous_client: Client, world: World, private_storage: Path, django_capture_on_commit_callbacks
) -> None:
    token = world.link("plan", plan=world.plan)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = anonymous_client.get(_url(token, "patient_link_pdf"))
    assert response.status_code == 200
    assert 'http-equiv="refresh"' in _page(response)
    assert "being prepared" in _page(response)
    _assert_private(response)
    document = PlanDocument.objects.get(plan=world.plan)
    assert document.status == PlanDocument.Status.PENDING
    assert document.language == "en"
    assert len(callbacks) == 1  # one render queued

    # A refresh while the render is pending queues nothing more.
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert anonymous_client.get(_url(token, "patient_link_pdf")).status_code == 200
    assert callbacks == []

    # The worker finished: the PDF is streamed as an attachment.
    name = plan_document_file_name(world.plan, "en")
    storages["private"].save(name, ContentFile(b"%PDF-1.7 test"))
    PlanDocument.objects.filter(pk=document.pk).update(status=PlanDocument.Status.DONE, file_name=name)
    response = anonymous_client.get(_url(token, "patient_link_pdf"))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"].startswith("attachment")
    assert b"".join(response.streaming_content) == b"%PDF-1.7 test"
    _assert_private(response)
    assert ReadEvent.objects.filter(token_id=PatientLink.objects.get().pk, action="download").count() == 1


def test_pdf_url_refuses_a_link_of_another_purpose(anonymous_client: Client, world: World) -> None:
    token = world.link("checkin", session=world.session)
    response = anonymous_client.get(_url(token, "patient_link_pdf"))
    assert response.status_code == 404
    assert not PlanDocument.objects.exists()


def test_draft_plan_is_not_shown(anonymous_client: Client, world: World) -> None:
    TreatmentPlan.objects.filter(pk=world.plan.pk).update(status=TreatmentPlan.Status.DRAFT)
    token = world.link("plan", plan=world.plan)
    response = anonymous_client.get(_url(token))
    assert response.status_code == 404
    assert "Reduce the lower abdomen" not in _page(response)


# --- aftercare -----------------------------------------------------------------------------


def test_aftercare_page_shows_the_sessions_advice_and_the_phone(anonymous_client: Client, world: World) -> None:
    # A manager's wording of the general advice is what the patient reads.
    AftercareTemplate.objects.update_or_create(
        key=GENERAL, language="en", defaults={"title": "PLANTED-TITLE", "body": "PLANTED-BODY line", "is_active": True}
    )
    sections = aftercare_sections(session=world.session, language="en")
    assert ("PLANTED-TITLE", "PLANTED-BODY line") in sections
    token = world.link("aftercare", session=world.session)
    response = anonymous_client.get(_url(token))
    assert response.status_code == 200
    page = _page(response)
    assert "After your session" in page
    assert page.count('data-testid="aftercare-section"') == len(sections)
    for title, _body in sections:
        assert escape(title) in page
    assert "PLANTED-BODY line" in page
    assert PHONE in page
    assert 'data-testid="emergency"' in page
    assert NOTE_MARKER not in page
    _assert_private(response)
    assert ReadEvent.objects.filter(token_id=PatientLink.objects.get().pk, patient_id=world.patient.pk).exists()


# --- booking -------------------------------------------------------------------------------


def test_booking_page_shows_the_appointment(anonymous_client: Client, world: World) -> None:
    appointment = appointment_for(world, starts_in=timedelta(days=3))
    token = world.link("booking", appointment=appointment)
    response = anonymous_client.get(_url(token))
    assert response.status_code == 200
    page = _page(response)
    local = timezone.localtime(appointment.starts_at)
    assert local.strftime("%H:%M") in page
    assert "Paris Rive Gauche" in page
    assert world.practitioner.full_name in page
    assert 'data-testid="confirm-appointment"' in page
    assert 'data-testid="cancel-start"' in page
    _assert_private(response)


def test_confirm_sets_the_patients_confirmation(anonymous_client: Client, world: World) -> None:
    appointment = appointment_for(world, starts_in=timedelta(days=3))
    token = world.link("booking", appointment=appointment)
    response = anonymous_client.post(_url(token, "patient_link_confirm"))
    assert response.status_code == 200
    assert "your appointment is confirmed" in _page(response)
    appointment.refresh_from_db()
    assert appointment.patient_confirmed_at is not None
    assert appointment.status == Appointment.Status.BOOKED


def test_confirm_is_post_only(anonymous_client: Client, world: World) -> None:
    appointment = appointment_for(world, starts_in=timedelta(days=3))
    token = world.link("booking", appointment=appointment)
    assert anonymous_client.get(_url(token, "patient_link_confirm")).status_code == 405
    appointment.refresh_from_db()
    assert appointment.patient_confirmed_at is None


def test_cancel_asks_first_then_cancels_outside_the_window(anonymous_client: Client, world: World) -> None:
    appointment = appointment_for(world, starts_in=timedelta(days=3))
    token = world.link("booking", appointment=appointment)
    question = anonymous_client.get(_url(token, "patient_link_cancel"))
    assert question.status_code == 200
    assert 'data-testid="cancel-question"' in _page(question)
    appointment.refresh_from_db()
    assert appointment.status == Appointment.Status.BOOKED

    response = anonymous_client.post(_url(token, "patient_link_cancel"))
    assert response.status_code == 200
    assert 'data-testid="booking-done"' in _page(response)
    appointment.refresh_from_db()
    assert appointment.status == Appointment.Status.CANCELLED
    assert appointment.cancelled_late is False
    change = AppointmentChange.objects.get(appointment=appointment, action="cancelled")
    assert change.by is None
    assert change.reason == "Cancelled by the patient online"
    # The cancellation email goes out as for any cancellation.
    assert OutboundMessage.objects.filter(appointment=appointment, kind="appointment_cancelled").count() == 1


def test_cancel_within_the_late_window_is_refused(anonymous_client: Client, world: World) -> None:
    appointment = appointment_for(world, starts_in=timedelta(hours=20))
    token = world.link("booking", appointment=appointment)
    page = _page(anonymous_client.get(_url(token)))
    assert 'data-testid="call-to-cancel"' in page
    assert PHONE in page
    assert 'data-testid="cancel-start"' not in page

    response = anonymous_client.post(_url(token, "patient_link_cancel"))
    assert response.status_code == 409
    assert "please call the clinic" in _page(response)
    appointment.refresh_from_db()
    assert appointment.status == Appointment.Status.BOOKED
    assert not AppointmentChange.objects.filter(appointment=appointment).exists()


def test_booking_link_acts_only_on_its_own_appointment(anonymous_client: Client, world: World) -> None:
    mine = appointment_for(world, starts_in=timedelta(days=3))
    theirs = appointment_for(world, starts_in=timedelta(days=4), patient=world.other)
    token = world.link("booking", appointment=mine)
    # Whatever the request names, the target is the link's.
    anonymous_client.post(_url(token, "patient_link_cancel"), {"appointment": theirs.pk, "appointment_id": theirs.pk})
    theirs.refresh_from_db()
    mine.refresh_from_db()
    assert theirs.status == Appointment.Status.BOOKED
    assert mine.status == Appointment.Status.CANCELLED


def test_link_whose_target_is_another_patients_shows_nothing(anonymous_client: Client, world: World) -> None:
    # A corrupt row (link of this patient, appointment of another) must not leak.
    theirs = appointment_for(world, starts_in=timedelta(days=4), patient=world.other)
    token = world.link("booking", appointment=theirs)
    response = anonymous_client.get(_url(token))
    assert response.status_code == 404
    assert OTHER_MARKER not in _page(response)
    assert anonymous_client.post(_url(token, "patient_link_cancel")).status_code == 404
    assert anonymous_client.post(_url(token, "patient_link_confirm")).status_code == 404
    theirs.refresh_from_db()
    assert theirs.patient_confirmed_at is None
    assert theirs.status == Appointment.Status.BOOKED


# --- preferences ---------------------------------------------------------------------------


def test_preferences_page_and_changes_are_recorded(anonymous_client: Client, world: World) -> None:
    token = world.link("preferences")
    response = anonymous_client.get(_url(token))
    assert response.status_code == 200
    assert "Camille Durand" in _page(response)
    assert OTHER_MARKER not in _page(response)

    response = anonymous_client.post(_url(token), {"email_transactional": "on", "marketing_opt_in": "on"})
    assert response.status_code == 200
    assert 'data-testid="preferences-saved"' in _page(response)
    world.patient.refresh_from_db()
    assert world.patient.marketing_opt_in and world.patient.marketing_opt_in_at is not None
    assert world.patient.email_withdrawn_at is None

    response = anonymous_client.post(_url(token), {"withdraw_all": "on"})
    world.patient.refresh_from_db()
    assert world.patient.email_withdrawn_at is not None
    assert world.patient.marketing_opt_in is False and world.patient.marketing_opt_in_at is None
    assert world.patient.email_transactional is False
    assert "the clinic phones you instead" in _page(response)

    # Re-enabling from the same page.
    anonymous_client.post(_url(token), {"email_transactional": "on"})
    world.patient.refresh_from_db()
    assert world.patient.email_withdrawn_at is None
    assert world.patient.email_transactional is True

    history = world.patient.events.order_by("pgh_id")
    assert [event.email_withdrawn_at is not None for event in history][-2:] == [True, False]
    assert ReadEvent.objects.filter(token_id=PatientLink.objects.get().pk, action="change").count() == 3


def test_preferences_cancel_what_is_already_queued(anonymous_client: Client, world: World) -> None:
    def queued(kind: str) -> OutboundMessage:
        return message_queue(
            kind=kind,
            to_email=world.patient.email,
            subject=kind,
            body_text=kind,
            dedupe_key=f"{kind}:{world.session.pk}",
            due_at=timezone.now() + timedelta(days=1),
            patient=world.patient,
            session=world.session,
        )

    reminder, checkin = queued("appointment_reminder"), queued("checkin")
    token = world.link("preferences")
    # Booking emails off: the reminder is cancelled, the safety check-in still goes.
    anonymous_client.post(_url(token), {})
    reminder.refresh_from_db()
    checkin.refresh_from_db()
    assert reminder.status == OutboundMessage.Status.CANCELLED and "not sent" in reminder.last_error
    assert checkin.status == OutboundMessage.Status.SCHEDULED
    # All email withdrawn: the check-in is cancelled too.
    anonymous_client.post(_url(token), {"withdraw_all": "on"})
    checkin.refresh_from_db()
    assert checkin.status == OutboundMessage.Status.CANCELLED
    assert "withdrew all email" in checkin.last_error


def test_post_is_refused_on_read_only_purposes(anonymous_client: Client, world: World) -> None:
    token = world.link("plan", plan=world.plan)
    assert anonymous_client.post(_url(token)).status_code == 405


# --- refusals ------------------------------------------------------------------------------


def test_unknown_token_gets_a_friendly_404(anonymous_client: Client, world: World) -> None:
    response = anonymous_client.get(_url("not-a-real-token"))
    assert response.status_code == 404
    assert 'data-testid="link-refused"' in _page(response)
    assert "This link is not valid" in _page(response)
    assert "Traceback" not in _page(response)
    _assert_private(response)


def test_tampered_token_gets_a_friendly_404(anonymous_client: Client, world: World) -> None:
    token = world.link("plan", plan=world.plan)
    response = anonymous_client.get(_url(_tampered(token)))
    assert response.status_code == 404
    assert "This link is not valid" in _page(response)
    assert "Reduce the lower abdomen" not in _page(response)
    assert not ReadEvent.objects.exists()


def test_expired_link_gets_410(anonymous_client: Client, world: World) -> None:
    token = world.link("aftercare", session=world.session)
    with time_machine.travel(timezone.now() + timedelta(days=31)):
        response = anonymous_client.get(_url(token))
    assert response.status_code == 410
    assert "This link has expired" in _page(response)
    assert PHONE not in _page(response)  # nothing about the session, not even its site
    _assert_private(response)


def test_revoked_link_gets_410(anonymous_client: Client, world: World) -> None:
    token = world.link("plan", plan=world.plan)
    patient_links_revoke(patient=world.patient)
    response = anonymous_client.get(_url(token))
    assert response.status_code == 410
    assert "withdrawn by the clinic" in _page(response)
    assert "Reduce the lower abdomen" not in _page(response)


def test_another_patients_link_shows_only_that_patient(anonymous_client: Client, world: World) -> None:
    mine = world.link("plan", plan=world.plan)
    page = _page(anonymous_client.get(_url(mine)))
    assert "Camille Durand" in page
    assert OTHER_MARKER not in page
    theirs = world.link("plan", patient=world.other, plan=world.other_session.plan)
    page = _page(anonymous_client.get(_url(theirs)))
    assert OTHER_MARKER in page
    assert "Camille" not in page


def test_link_to_another_patients_plan_is_refused(anonymous_client: Client, world: World) -> None:
    token = world.link("plan", plan=world.other_session.plan)
    response = anonymous_client.get(_url(token))
    assert response.status_code == 404
    assert OTHER_MARKER not in _page(response)


# --- rate limit, language -------------------------------------------------------------------


def test_rate_limit_answers_429(anonymous_client: Client, world: World, settings) -> None:
    settings.PATIENT_LINK_RATE_LIMIT = 3
    token = world.link("plan", plan=world.plan)
    statuses = [anonymous_client.get(_url(token)).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    response = anonymous_client.get(_url("guess-another-token"))
    assert response.status_code == 429
    assert 'data-testid="rate-limited"' in _page(response)
    assert response["Retry-After"] == "60"
    _assert_private(response)
    # Another address is not held back.
    other = Client(REMOTE_ADDR="192.0.2.7")
    assert other.get(_url(token)).status_code == 200


def test_french_patient_sees_a_french_page(anonymous_client: Client, world: World) -> None:
    world.patient.preferred_language = "fr"
    world.patient.save(update_fields=["preferred_language"])
    token = world.link("plan", plan=world.plan)
    response = anonymous_client.get(_url(token), HTTP_ACCEPT_LANGUAGE="en")
    page = _page(response)
    assert '<html lang="fr">' in page
    assert "Aller au contenu" in page
    assert response["Content-Language"] == "fr"


def test_the_patient_can_switch_language_for_the_visit(anonymous_client: Client, world: World) -> None:
    world.patient.preferred_language = "en"
    world.patient.save(update_fields=["preferred_language"])
    token = world.link("plan", plan=world.plan)
    english = _page(anonymous_client.get(_url(token)))
    assert '<html lang="en">' in english and 'href="?lang=fr"' in english

    response = anonymous_client.get(_url(token) + "?lang=fr")
    page = _page(response)
    assert '<html lang="fr">' in page and response["Content-Language"] == "fr"
    assert 'href="?lang=en"' in page
    # The page's own links keep the choice.
    assert reverse("patient_link_pdf", args=[token]) + "?lang=fr" in page
    # A visit changes nothing stored, and a made-up language falls back to the patient's.
    world.patient.refresh_from_db()
    assert world.patient.preferred_language == "en"
    assert '<html lang="en">' in _page(anonymous_client.get(_url(token) + "?lang=xx<script>"))
