"""The check-in after a session: answers stored once, graded side effect, practitioner alert."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from PIL import Image

from aftercare.checkin import checkin_submit, checkin_triage
from aftercare.links import LinkRefused
from aftercare.models import CheckInResponse, OutboundMessage, PatientLink
from mesoclinic.models import ReadEvent
from patients.models import ClinicalPhoto
from tests.aftercare import links_data
from tests.aftercare.links_data import PHONE, World, photo_consent_for
from treatments.models import AdverseEvent
from treatments.selectors_adverse import followups_due

pytestmark = pytest.mark.django_db

# Shared fixtures: the test data and a rate-limit cache of the test's own.
world = links_data.world
private_cache = links_data.private_cache

NONE = {"bruising": "none", "swelling": "none", "redness": "none", "pain": "none", "lumps": "none", "fever": "no"}


def _answers(**changes: str) -> dict[str, str]:
    return {**NONE, **changes}


def _url(token: str) -> str:
    return reverse("patient_link", args=[token])


def _png() -> SimpleUploadedFile:
    buffer = io.BytesIO()
    Image.new("RGB", (40, 30), (200, 120, 120)).save(buffer, format="PNG")
    return SimpleUploadedFile("arm.png", buffer.getvalue(), content_type="image/png")


# --- grading -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("answers", "severity", "main"),
    [
        ({}, 0, None),
        ({"bruising": "mild"}, 1, "bruising"),
        ({"bruising": "mild", "swelling": "moderate"}, 2, "swelling"),
        ({"pain": "severe", "swelling": "moderate"}, 3, "pain"),
        ({"redness": "mild", "pain": "mild"}, 1, "redness"),
        ({"lumps": "mild"}, 2, "lumps"),  # lumps are never just mild
        ({"fever": True}, 2, "fever"),  # fever is at least moderate
        ({"fever": True, "swelling": "moderate"}, 2, "fever"),  # equal: fever matters most
        ({"fever": True, "bruising": "severe"}, 3, "bruising"),
    ],
)
def test_severity_is_the_worst_answer(answers: dict, severity: int, main: str | None) -> None:
    triage = checkin_triage({**{key: "none" for key in NONE if key != "fever"}, "fever": False, **answers})
    assert triage.severity == severity
    assert triage.main == main


# --- the form ------------------------------------------------------------------------------


def test_form_page_asks_every_question(anonymous_client: Client, world: World) -> None:
    token = world.link("checkin", session=world.session)
    response = anonymous_client.get(_url(token))
    assert response.status_code == 200
    page = response.content.decode()
    for key in NONE:
        assert f'data-testid="question-{key}"' in page
    assert 'name="photo"' not in page  # no photo consent: no photo field, and it says why
    assert 'data-testid="no-photo"' in page
    assert PHONE in page
    assert response["Referrer-Policy"] == "no-referrer"
    assert ReadEvent.objects.filter(token_id=PatientLink.objects.get().pk, user=None).count() == 1


def test_moderate_swelling_creates_a_graded_event_and_alerts_the_practitioner(
    anonymous_client: Client, world: World
) -> None:
    token = world.link("checkin", session=world.session)
    response = anonymous_client.post(_url(token), _answers(swelling="moderate", bruising="mild", comment="Hard"))
    assert response.status_code == 200
    assert 'data-testid="checkin-thanks"' in response.content.decode()
    assert "will contact you" in response.content.decode()

    checkin = CheckInResponse.objects.get()
    assert checkin.severity == 2
    assert checkin.patient == world.patient and checkin.session == world.session
    assert checkin.answers["swelling"] == "moderate" and checkin.answers["fever"] is False
    assert checkin.ip == "127.0.0.1"
    event = AdverseEvent.objects.get()
    assert checkin.adverse_event == event
    assert (event.type, event.grade, event.reported_by) == ("swelling", 2, "patient")
    assert event.needs_triage is True
    assert list(event.sessions.all()) == [world.session]
    assert "Bruising: mild" in event.description and "Hard" in event.description

    alert = OutboundMessage.objects.get(kind="checkin_alert")
    assert alert.to_email == world.practitioner.email
    assert reverse("followups_due") in alert.body_text
    # No clinical detail in an email.
    for word in ("swelling", "Swelling", "bruising", "Hard", world.patient.last_name):
        assert word not in alert.body_text and word not in alert.subject and word not in alert.body_html
    assert PatientLink.objects.get().used_at is not None
    # It is on the practitioner's follow-ups list.
    assert event in followups_due(user=world.practitioner)


def test_mild_bruising_is_reported_without_an_alert(anonymous_client: Client, world: World) -> None:
    token = world.link("checkin", session=world.session)
    response = anonymous_client.post(_url(token), _answers(bruising="mild"))
    assert response.status_code == 200
    event = AdverseEvent.objects.get()
    assert (event.type, event.grade, event.needs_triage) == ("bruising", 1, True)
    assert CheckInResponse.objects.get().severity == 1
    assert not OutboundMessage.objects.filter(kind__in=["checkin_alert", "adverse_alert"]).exists()


def test_fever_is_reported_as_a_possible_infection(anonymous_client: Client, world: World) -> None:
    token = world.link("checkin", session=world.session)
    anonymous_client.post(_url(token), _answers(fever="yes"))
    event = AdverseEvent.objects.get()
    assert (event.type, event.grade) == ("infection", 2)
    assert OutboundMessage.objects.filter(kind="checkin_alert").count() == 1


def test_severe_pain_alerts_the_practitioner_once(anonymous_client: Client, world: World) -> None:
    token = world.link("checkin", session=world.session)
    anonymous_client.post(_url(token), _answers(pain="severe"))
    event = AdverseEvent.objects.get()
    assert (event.type, event.grade) == ("pain", 3)
    # Grade 3 raises the side-effect alert (practitioner and managers); no second email.
    to_practitioner = OutboundMessage.objects.filter(to_email=world.practitioner.email)
    assert [message.kind for message in to_practitioner] == ["adverse_alert"]


def test_nothing_to_report_is_stored_without_an_event(anonymous_client: Client, world: World) -> None:
    token = world.link("checkin", session=world.session)
    response = anonymous_client.post(_url(token), {})
    assert response.status_code == 200
    assert "glad all is well" in response.content.decode()
    checkin = CheckInResponse.objects.get()
    assert checkin.severity == 0 and checkin.adverse_event is None
    assert all(checkin.answers[key] == "none" for key in ("bruising", "swelling", "redness", "pain", "lumps"))
    assert not AdverseEvent.objects.exists()
    assert not OutboundMessage.objects.exists()


def test_replay_is_refused_and_nothing_is_created_twice(anonymous_client: Client, world: World) -> None:
    token = world.link("checkin", session=world.session)
    assert anonymous_client.post(_url(token), _answers(swelling="moderate")).status_code == 200
    replay = anonymous_client.post(_url(token), _answers(swelling="moderate"))
    assert replay.status_code == 410
    assert "already sent" in replay.content.decode()
    assert replay["Referrer-Policy"] == "no-referrer"
    again = anonymous_client.get(_url(token))
    assert again.status_code == 410
    assert CheckInResponse.objects.count() == 1
    assert AdverseEvent.objects.count() == 1
    assert OutboundMessage.objects.filter(kind="checkin_alert").count() == 1


def test_service_refuses_a_spent_link(world: World) -> None:
    token = world.link("checkin", session=world.session)
    link = PatientLink.objects.get()
    checkin_submit(link=link, answers=_answers(pain="mild"))
    stale = PatientLink.objects.get(pk=link.pk)
    stale.used_at = None  # a second request that resolved the link before the first spent it
    with pytest.raises(LinkRefused):
        checkin_submit(link=stale, answers=_answers(pain="mild"))
    assert CheckInResponse.objects.count() == 1 and AdverseEvent.objects.count() == 1
    assert token


def test_bad_answer_is_a_form_error_and_saves_nothing(anonymous_client: Client, world: World) -> None:
    token = world.link("checkin", session=world.session)
    response = anonymous_client.post(_url(token), _answers(pain="unbearable"))
    assert response.status_code == 400
    assert 'data-testid="field-error"' in response.content.decode()
    assert not CheckInResponse.objects.exists() and not AdverseEvent.objects.exists()
    assert PatientLink.objects.get().used_at is None  # the patient can still send it


def test_photo_is_stored_with_photo_consent(
    anonymous_client: Client, world: World, manager, private_storage: Path
) -> None:
    photo_consent_for(world.patient, manager)
    token = world.link("checkin", session=world.session)
    assert 'name="photo"' in anonymous_client.get(_url(token)).content.decode()
    response = anonymous_client.post(_url(token), {**_answers(redness="mild"), "photo": _png()})
    assert response.status_code == 200
    photo = ClinicalPhoto.objects.get()
    assert photo.patient == world.patient and photo.session == world.session
    # Filed as the patient's, not under a practitioner who never took it.
    assert photo.source == ClinicalPhoto.Source.PATIENT and photo.uploaded_by is None
    assert CheckInResponse.objects.get().photo == photo


def test_bad_photo_is_a_field_error_and_saves_nothing(
    anonymous_client: Client, world: World, manager, private_storage: Path
) -> None:
    photo_consent_for(world.patient, manager)
    token = world.link("checkin", session=world.session)
    bad = SimpleUploadedFile("arm.png", b"GIF89a not a photo", content_type="image/png")
    response = anonymous_client.post(_url(token), {**_answers(swelling="moderate"), "photo": bad})
    assert response.status_code == 400
    assert "Only JPEG and PNG photos are accepted" in response.content.decode()
    assert not CheckInResponse.objects.exists()
    assert not AdverseEvent.objects.exists()
    assert not OutboundMessage.objects.exists()
    assert not ClinicalPhoto.objects.exists()
    assert [p for p in private_storage.rglob("*") if p.is_file()] == []
    assert PatientLink.objects.get().used_at is None


def test_photo_without_consent_is_ignored(anonymous_client: Client, world: World, private_storage: Path) -> None:
    token = world.link("checkin", session=world.session)
    response = anonymous_client.post(_url(token), {**_answers(redness="mild"), "photo": _png()})
    assert response.status_code == 200
    assert not ClinicalPhoto.objects.exists()
    assert CheckInResponse.objects.get().photo is None


def test_checkin_link_for_another_patients_session_is_refused(anonymous_client: Client, world: World) -> None:
    token = world.link("checkin", session=world.other_session)
    assert anonymous_client.get(_url(token)).status_code == 404
    assert anonymous_client.post(_url(token), _answers(pain="severe")).status_code == 404
    assert not CheckInResponse.objects.exists() and not AdverseEvent.objects.exists()


def test_submit_writes_a_read_event_with_the_link(anonymous_client: Client, world: World) -> None:
    token = world.link("checkin", session=world.session)
    anonymous_client.post(_url(token), _answers(bruising="mild"))
    event = ReadEvent.objects.get(action="submit")
    assert event.token_id == PatientLink.objects.get().pk
    assert event.patient_id == world.patient.pk and event.user is None


def test_form_sent_with_a_null_origin_is_accepted(world: World) -> None:
    # Under "Referrer-Policy: no-referrer" browsers post forms with "Origin: null" and no
    # CSRF cookie was ever set: the token in the URL is the only key.
    token = world.link("checkin", session=world.session)
    browser = Client(enforce_csrf_checks=True)
    response = browser.post(_url(token), _answers(bruising="mild"), HTTP_ORIGIN="null")
    assert response.status_code == 200
    assert CheckInResponse.objects.count() == 1
    assert "csrftoken" not in browser.cookies
