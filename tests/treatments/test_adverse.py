"""Side effects: recording, grading alerts, follow-up notes, resolution, the follow-ups due list."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import ProgrammingError, connection, transaction
from django.template.loader import render_to_string
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape

from aftercare.models import OutboundMessage
from mesoclinic.access import Role
from mesoclinic.models import ReadEvent, User
from patients.models import Patient
from tests.factories import PatientFactory, UserFactory
from treatments.catalogue_seed import catalogue_seed
from treatments.models import AdverseEvent, AdverseEventNote, Lot, LotUse, SessionArea, TreatmentPlan, TreatmentSession
from treatments.selectors_adverse import followups_due, followups_due_count
from treatments.services.adverse import (
    adverse_alert_queue,
    adverse_event_follow_up,
    adverse_event_record,
    adverse_event_report_by_patient,
    adverse_event_resolve,
)

MARKER = "PLANTED-ADVERSE-MARKER-91c2"


# --- data -------------------------------------------------------------------------------------


@pytest.fixture
def lots(db) -> list[Lot]:
    catalogue_seed()
    return list(Lot.objects.filter(expiry_date__gte=timezone.localdate()).order_by("pk")[:3])


@pytest.fixture
def patient(manager) -> Patient:
    return PatientFactory(first_name="Inès", last_name="Garcia", created_by=manager)


@pytest.fixture
def colleague(db) -> User:
    return UserFactory(email="colin@example.test", full_name="Colin Colleague", role=Role.PRACTITIONER)


def _session(patient: Patient, practitioner: User, used: list[Lot], *, number: int = 1, days_ago: int = 10):
    plan = TreatmentPlan.objects.filter(patient=patient).first() or TreatmentPlan.objects.create(
        patient=patient, practitioner=practitioner, concern="fat_reduction"
    )
    session = TreatmentSession.objects.create(
        plan=plan,
        patient=patient,
        number=number,
        practitioner=practitioner,
        performed_at=timezone.now() - timedelta(days=days_ago),
    )
    area = SessionArea.objects.create(session=session, area="abdomen", technique="point_by_point", points=20)
    for lot in used:
        LotUse.objects.create(session_area=area, lot=lot, volume_ml=Decimal("2"))
    return session


def _record(patient: Patient, by: User | None, **changes) -> AdverseEvent:
    data = {
        "patient": patient,
        "type": "bruising",
        "grade": 1,
        "onset_at": timezone.now() - timedelta(days=1),
        "reported_by": "practitioner",
        "recorded_by": by,
    }
    data.update(changes)
    return adverse_event_record(**data)


def _local(moment) -> str:
    return timezone.localtime(moment).strftime("%Y-%m-%dT%H:%M")


def _post_data(**changes) -> dict:
    data = {
        "type": "swelling",
        "grade": "2",
        "onset_at": _local(timezone.now() - timedelta(days=2)),
        "reported_by": "practitioner",
        "description": "Swelling of the lower abdomen.",
        "actions_taken": "Cold packs.",
    }
    data.update(changes)
    return {key: value for key, value in data.items() if value is not None}


# --- role × URL ---------------------------------------------------------------------------------


@pytest.fixture
def event(patient, practitioner, lots) -> AdverseEvent:
    session = _session(patient, practitioner, lots[:1])
    return _record(patient, practitioner, sessions=[session], lots=lots[:1], description=MARKER)


def _urls(event: AdverseEvent) -> list[str]:
    return [
        reverse("adverse_list", kwargs={"patient_id": event.patient_id}),
        reverse("adverse_create", kwargs={"patient_id": event.patient_id}),
        reverse("adverse_detail", kwargs={"event_id": event.pk}),
        reverse("followups_due"),
    ]


@pytest.mark.parametrize("index", range(4))
def test_anonymous_is_sent_to_login(anonymous_client: Client, event, index: int) -> None:
    response = anonymous_client.get(_urls(event)[index])
    assert response.status_code == 302
    assert response.url.startswith(reverse("account_login"))


@pytest.mark.parametrize("index", range(4))
def test_front_desk_is_refused_and_never_sees_clinical_text(front_desk_client: Client, event, index: int) -> None:
    response = front_desk_client.get(_urls(event)[index])
    assert response.status_code == 403
    assert MARKER not in response.content.decode()


@pytest.mark.parametrize("persona", ["practitioner_client", "manager_client"])
@pytest.mark.parametrize("index", range(4))
def test_clinical_roles_get_the_pages(request: pytest.FixtureRequest, persona: str, event, index: int) -> None:
    response = request.getfixturevalue(persona).get(_urls(event)[index])
    assert response.status_code == 200


def test_clinical_text_reaches_clinicians_only(practitioner_client: Client, front_desk_client: Client, event) -> None:
    url = reverse("adverse_detail", kwargs={"event_id": event.pk})
    assert MARKER in practitioner_client.get(url).content.decode()
    assert MARKER not in front_desk_client.get(url).content.decode()


def test_front_desk_and_anonymous_cannot_post(front_desk_client: Client, anonymous_client: Client, event) -> None:
    follow_up = reverse("adverse_follow_up", kwargs={"event_id": event.pk})
    resolve = reverse("adverse_resolve", kwargs={"event_id": event.pk})
    create = reverse("adverse_create", kwargs={"patient_id": event.patient_id})
    assert front_desk_client.post(follow_up, {"grade": "1", "note": "x"}).status_code == 403
    assert front_desk_client.post(resolve, {"resolution": "gone"}).status_code == 403
    assert front_desk_client.post(create, _post_data()).status_code == 403
    assert anonymous_client.post(resolve, {"resolution": "gone"}).status_code == 302
    event.refresh_from_db()
    assert event.resolved_at is None and not event.notes.exists()
    assert AdverseEvent.objects.count() == 1


def test_unknown_event_is_404(practitioner_client: Client, db) -> None:
    assert practitioner_client.get(reverse("adverse_detail", kwargs={"event_id": 999999})).status_code == 404


# --- recording ----------------------------------------------------------------------------------


def test_record_with_sessions_and_lots(practitioner_client: Client, practitioner, patient, lots) -> None:
    first = _session(patient, practitioner, lots[:2], number=1, days_ago=30)
    second = _session(patient, practitioner, lots[2:3], number=2, days_ago=5)
    url = reverse("adverse_create", kwargs={"patient_id": patient.pk})
    page = practitioner_client.get(url).content.decode()
    assert lots[0].lot_number in page and lots[2].lot_number in page

    data = _post_data(sessions=[first.pk, second.pk], lots=[lots[0].pk, lots[2].pk])
    response = practitioner_client.post(url, data)
    assert response.status_code == 302, response.content.decode()[:3000]
    event = AdverseEvent.objects.get()
    assert (event.type, event.grade, event.reported_by, event.recorded_by) == (
        "swelling",
        2,
        "practitioner",
        practitioner,
    )
    assert set(event.sessions.all()) == {first, second}
    assert set(event.lots.all()) == {lots[0], lots[2]}
    assert event.follow_up_due == timezone.localtime(event.onset_at).date() + timedelta(days=7)
    assert not event.needs_triage
    assert ReadEvent.objects.filter(patient_id=patient.pk, what="side effect form", action="edit").exists()
    detail = practitioner_client.get(response.url).content.decode()
    assert "Swelling of the lower abdomen." in detail and lots[2].lot_number in detail and "Cold packs." in detail
    assert not OutboundMessage.objects.exists()


def test_grade_three_is_followed_up_in_two_days(practitioner, patient) -> None:
    event = _record(patient, practitioner, grade=3)
    assert event.follow_up_due == timezone.localtime(event.onset_at).date() + timedelta(days=2)


def test_an_explicit_follow_up_date_is_kept(practitioner, patient) -> None:
    due = timezone.localdate() + timedelta(days=20)
    assert _record(patient, practitioner, follow_up_due=due).follow_up_due == due


def _other_patient_session(manager, colleague, lots):
    return _session(PatientFactory(created_by=manager), colleague, lots[1:2])


@pytest.mark.parametrize(
    ("case", "field", "message"),
    [
        ("grade 0", "grade", "Choose a grade from 1 (mild) to 5 (death)."),
        ("grade 6", "grade", "Choose a grade from 1 (mild) to 5 (death)."),
        ("onset in the future", "onset_at", "The onset cannot be in the future."),
        ("onset before 2000", "onset_at", "This date is too far in the past."),
        ("onset before the linked session", "onset_at", "The onset is before the linked session"),
        ("session of another patient", "sessions", "is not one of this patient&#x27;s sessions."),
        ("lot not used on the patient", "lots", "was not used on this patient."),
        ("lot not used in the linked session", "lots", "was not used in the linked sessions."),
        ("empty type", "type", "Choose the type of side effect."),
        ("unknown type", "type", "Select a valid choice."),
    ],
)
def test_bad_input_is_refused_next_to_the_field(
    practitioner_client: Client, practitioner, manager, colleague, patient, lots, case: str, field: str, message: str
) -> None:
    own = _session(patient, practitioner, lots[:1], number=1, days_ago=10)
    _session(patient, practitioner, lots[2:3], number=2, days_ago=3)
    foreign = _other_patient_session(manager, colleague, lots)
    changes: dict = {
        "grade 0": {"grade": "0"},
        "grade 6": {"grade": "6"},
        "onset in the future": {"onset_at": _local(timezone.now() + timedelta(days=2))},
        "onset before 2000": {"onset_at": "1999-12-31T10:00"},
        "onset before the linked session": {
            "sessions": [own.pk],
            "onset_at": _local(timezone.now() - timedelta(days=20)),
        },
        "session of another patient": {"sessions": [own.pk, foreign.pk]},
        "lot not used on the patient": {"lots": [lots[1].pk]},
        "lot not used in the linked session": {"sessions": [own.pk], "lots": [lots[2].pk]},
        "empty type": {"type": ""},
        "unknown type": {"type": "vampire_bite"},
    }[case]
    response = practitioner_client.post(
        reverse("adverse_create", kwargs={"patient_id": patient.pk}), _post_data(**changes)
    )
    assert response.status_code == 400
    form = response.context["form"]
    assert any(message.replace("&#x27;", "'") in error for error in form.errors[field]), form.errors
    assert message in response.content.decode()
    assert f'id="error_1_id_{field}"' in response.content.decode()
    assert not AdverseEvent.objects.exists()
    assert not OutboundMessage.objects.exists()


def test_service_refuses_foreign_sessions_and_lots(practitioner, manager, colleague, patient, lots) -> None:
    _session(patient, practitioner, lots[:1])
    foreign = _other_patient_session(manager, colleague, lots)
    with pytest.raises(ValidationError) as error:
        _record(patient, practitioner, sessions=[foreign])
    assert "sessions" in error.value.message_dict
    with pytest.raises(ValidationError) as error:
        _record(patient, practitioner, lots=[lots[1]])
    assert "lots" in error.value.message_dict
    with pytest.raises(ValidationError) as error:
        _record(patient, practitioner, grade=0)
    assert "grade" in error.value.message_dict
    assert not AdverseEvent.objects.exists()
    # Without a session, a lot used at any of the patient's sessions is accepted.
    assert list(_record(patient, practitioner, lots=[lots[0]]).lots.all()) == [lots[0]]


# --- alerts ------------------------------------------------------------------------------------


@pytest.fixture
def staff(practitioner, manager, colleague, front_desk) -> dict[str, User]:
    gone = UserFactory(email="old.manager@example.test", role=Role.MANAGER)
    gone.is_active = False
    gone.save(update_fields=["is_active"])
    return {"practitioner": practitioner, "manager": manager, "colleague": colleague, "front_desk": front_desk}


def _alerts() -> list[OutboundMessage]:
    return list(OutboundMessage.objects.filter(kind="adverse_alert").order_by("to_email"))


def test_grade_three_alerts_the_practitioner_and_managers_once(
    practitioner_client: Client,
    staff,
    patient,
    lots,
    django_capture_on_commit_callbacks,
    mailoutbox,
) -> None:
    session = _session(patient, staff["practitioner"], lots[:1])
    url = reverse("adverse_create", kwargs={"patient_id": patient.pk})
    data = _post_data(type="infection", grade="3", description=MARKER, sessions=[session.pk], lots=[lots[0].pk])
    with django_capture_on_commit_callbacks(execute=True):
        response = practitioner_client.post(url, data)
    assert response.status_code == 302
    event = AdverseEvent.objects.get()
    alerts = _alerts()
    assert [m.to_email for m in alerts] == ["alice@example.test", "paula@example.test"]
    assert {m.dedupe_key for m in alerts} == {
        f"adverse-alert:{event.pk}:3:{staff['manager'].pk}",
        f"adverse-alert:{event.pk}:3:{staff['practitioner'].pk}",
    }
    assert sorted(mail.to[0] for mail in mailoutbox) == ["alice@example.test", "paula@example.test"]
    link = settings.SITE_URL + reverse("adverse_detail", kwargs={"event_id": event.pk})
    for mail in mailoutbox:
        html = mail.alternatives[0][0]
        for text in (mail.subject, mail.body, html):
            assert MARKER not in text and "Garcia" not in text and "nfection" not in text
        assert "grade 3 side effect" in mail.body and link in mail.body and link in html

    # Saving again at the same grade (a follow-up, or the alert asked again) sends nothing more.
    with django_capture_on_commit_callbacks(execute=True):
        adverse_event_follow_up(event=event, by=staff["practitioner"], grade=3, note="Still inflamed.")
        adverse_alert_queue(event=event)
    assert len(_alerts()) == 2 and len(mailoutbox) == 2


def test_raising_the_grade_by_follow_up_alerts(staff, patient, lots) -> None:
    session = _session(patient, staff["colleague"], lots[:1])
    event = _record(patient, staff["practitioner"], grade=2, sessions=[session])
    assert _alerts() == []
    adverse_event_follow_up(event=event, by=staff["practitioner"], grade=2, note="Same.")
    assert _alerts() == []
    adverse_event_follow_up(event=event, by=staff["practitioner"], grade=3, note="Abscess forming.")
    # The practitioner of the linked session (Colin), not the recorder, and the manager.
    assert [m.to_email for m in _alerts()] == ["alice@example.test", "colin@example.test"]
    assert {m.dedupe_key.split(":")[2] for m in _alerts()} == {"3"}
    event.refresh_from_db()
    assert event.grade == 3 and event.follow_up_due == timezone.localdate() + timedelta(days=2)
    adverse_event_follow_up(event=event, by=staff["practitioner"], grade=4, note="Admitted to hospital.")
    assert len(_alerts()) == 4


def test_alert_without_session_goes_to_the_recorder(staff, patient) -> None:
    _record(patient, staff["colleague"], grade=4)
    assert [m.to_email for m in _alerts()] == ["alice@example.test", "colin@example.test"]


def test_patient_report_alert_goes_to_the_latest_practitioner(staff, patient, lots) -> None:
    _session(patient, staff["practitioner"], lots[:1], number=1, days_ago=40)
    _session(patient, staff["colleague"], lots[:1], number=2, days_ago=8)
    adverse_event_report_by_patient(
        patient=patient, type="pain", severity_word="Severe", onset_at=timezone.now(), description="It hurts."
    )
    assert [m.to_email for m in _alerts()] == ["alice@example.test", "colin@example.test"]


# --- follow-up and resolution -----------------------------------------------------------------


def test_follow_up_notes_are_append_only(practitioner_client: Client, event) -> None:
    url = reverse("adverse_follow_up", kwargs={"event_id": event.pk})
    response = practitioner_client.post(url, {"grade": "2", "note": "Bruise larger, arnica advised."})
    assert response.status_code == 302
    note = AdverseEventNote.objects.get(event=event)
    assert note.grade == 2 and note.by.email == "paula@example.test"
    event.refresh_from_db()
    assert event.grade == 2 and event.follow_up_due == timezone.localdate() + timedelta(days=7)
    assert "Bruise larger, arnica advised." in practitioner_client.get(response.url).content.decode()
    with pytest.raises(ProgrammingError, match="Cannot update or delete"), transaction.atomic():
        AdverseEventNote.objects.filter(pk=note.pk).update(note="rewritten")
    with pytest.raises(ProgrammingError, match="Cannot update or delete"), transaction.atomic():
        AdverseEventNote.objects.filter(pk=note.pk).delete()
    note.refresh_from_db()
    assert note.note == "Bruise larger, arnica advised."


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"grade": "7", "note": "x"}, "grade", "Choose a grade from 1 (mild) to 5 (death)."),
        ({"grade": "2", "note": "  "}, "note", "Write what was seen or said at this follow-up."),
        ({"grade": "2", "note": "ok", "follow_up_due": "2001-01-01"}, "follow_up_due", "cannot be before"),
    ],
)
def test_bad_follow_up_is_refused(practitioner_client: Client, event, data: dict, field: str, message: str) -> None:
    response = practitioner_client.post(reverse("adverse_follow_up", kwargs={"event_id": event.pk}), data)
    assert response.status_code == 400
    assert any(message in error for error in response.context["follow_up_form"].errors[field])
    assert message in response.content.decode()
    assert not AdverseEventNote.objects.exists()
    event.refresh_from_db()
    assert event.grade == 1


def test_resolve_removes_the_event_from_the_follow_ups_due(practitioner_client: Client, practitioner, event) -> None:
    AdverseEvent.objects.filter(pk=event.pk).update(follow_up_due=timezone.localdate())
    marker = f'data-event="{event.pk}"'
    assert marker in practitioner_client.get(reverse("followups_due")).content.decode()
    response = practitioner_client.post(
        reverse("adverse_resolve", kwargs={"event_id": event.pk}), {"resolution": "Bruise gone."}
    )
    assert response.status_code == 302
    event.refresh_from_db()
    assert event.resolved_at is not None and event.resolution == "Bruise gone."
    assert event.notes.get().note == "Bruise gone."
    assert marker not in practitioner_client.get(reverse("followups_due")).content.decode()
    assert followups_due(user=None) == []
    with pytest.raises(ValidationError):
        adverse_event_resolve(event=event, by=practitioner, resolution="again")


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"resolution": ""}, "resolution", "Describe how the side effect resolved."),
        ({"resolution": "ok", "resolved_at": "2001-01-01T10:00"}, "resolved_at", "cannot be before the onset"),
        ({"resolution": "ok", "resolved_at": "2999-01-01T10:00"}, "resolved_at", "cannot be in the future"),
    ],
)
def test_bad_resolution_is_refused(practitioner_client: Client, event, data: dict, field: str, message: str) -> None:
    response = practitioner_client.post(reverse("adverse_resolve", kwargs={"event_id": event.pk}), data)
    assert response.status_code == 400
    assert any(message in error for error in response.context["resolve_form"].errors[field])
    event.refresh_from_db()
    assert event.resolved_at is None and not event.notes.exists()


def test_infection_shows_the_three_month_window(practitioner_client: Client, practitioner, patient, lots) -> None:
    session = _session(patient, practitioner, lots[:1], days_ago=14)
    infection = _record(patient, practitioner, type="infection", grade=2, sessions=[session])
    bruise = _record(patient, practitioner, type="bruising", sessions=[session])
    page = practitioner_client.get(reverse("adverse_detail", kwargs={"event_id": infection.pk})).content.decode()
    assert 'data-testid="infection-window"' in page and "about 3 months" in page
    page = practitioner_client.get(reverse("adverse_detail", kwargs={"event_id": bruise.pk})).content.decode()
    assert 'data-testid="infection-window"' not in page


# --- the follow-ups due list ----------------------------------------------------------------------


def test_patient_report_needs_triage_and_is_listed(
    practitioner_client: Client, practitioner, colleague, patient, lots
) -> None:
    session = _session(patient, practitioner, lots[:1])
    event = adverse_event_report_by_patient(
        patient=patient,
        type="nodules",
        severity_word="moderate",
        onset_at=timezone.now() - timedelta(hours=3),
        description="A small lump.",
        session=session,
    )
    assert (event.grade, event.reported_by, event.recorded_by, event.needs_triage) == (2, "patient", None, True)
    assert event.follow_up_due > timezone.localdate() + timedelta(days=1)  # listed for triage, not for its date
    assert followups_due(user=practitioner) == [event]
    assert followups_due(user=colleague) == []
    page = practitioner_client.get(reverse("followups_due")).content.decode()
    assert f'data-event="{event.pk}"' in page and 'data-testid="needs-triage"' in page
    # Grading it at a follow-up ends the triage.
    adverse_event_follow_up(event=event, by=practitioner, grade=1, note="Called: small, soft, improving.")
    event.refresh_from_db()
    assert not event.needs_triage and followups_due(user=None) == []


def test_unknown_severity_word_is_refused(patient) -> None:
    with pytest.raises(ValidationError) as error:
        adverse_event_report_by_patient(
            patient=patient, type="pain", severity_word="awful", onset_at=timezone.now(), description=""
        )
    assert "severity_word" in error.value.message_dict
    assert not AdverseEvent.objects.exists()


def test_due_window_and_order(practitioner, patient) -> None:
    today = timezone.localdate()
    tomorrow = _record(patient, practitioner, grade=1, follow_up_due=today + timedelta(days=1))
    later = _record(patient, practitioner, grade=2, follow_up_due=today + timedelta(days=2))
    severe = _record(patient, practitioner, grade=3, follow_up_due=today + timedelta(days=1))
    overdue = _record(
        patient,
        practitioner,
        grade=1,
        onset_at=timezone.now() - timedelta(days=20),
        follow_up_due=today - timedelta(days=3),
    )
    assert followups_due(user=practitioner, today=today) == [severe, overdue, tomorrow]
    assert later not in followups_due(user=None, today=today)
    assert followups_due_count(user=practitioner, today=today) == 3


def test_practitioners_see_their_own_by_default_managers_everyone(
    practitioner_client: Client, manager_client: Client, practitioner, colleague, patient, lots
) -> None:
    own = _record(patient, practitioner, follow_up_due=timezone.localdate())
    session = _session(PatientFactory(created_by=colleague), colleague, lots[:1])
    theirs = _record(session.patient, colleague, sessions=[session], follow_up_due=timezone.localdate())
    mine_page = practitioner_client.get(reverse("followups_due")).content.decode()
    assert f'data-event="{own.pk}"' in mine_page and f'data-event="{theirs.pk}"' not in mine_page
    all_page = practitioner_client.get(reverse("followups_due") + "?show=all").content.decode()
    assert f'data-event="{own.pk}"' in all_page and f'data-event="{theirs.pk}"' in all_page
    manager_page = manager_client.get(reverse("followups_due")).content.decode()
    assert f'data-event="{own.pk}"' in manager_page and f'data-event="{theirs.pk}"' in manager_page


def _events(count: int, practitioner: User, manager: User, lots: list[Lot]) -> None:
    for index in range(count):
        patient = PatientFactory(created_by=manager)
        session = _session(patient, practitioner, lots[:2])
        _record(
            patient,
            practitioner,
            grade=1 + index % 3,
            sessions=[session],
            lots=lots[:2],
            follow_up_due=timezone.localdate(),
            description=f"event {index}",
        )


def _queries(client: Client, url: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200
    return len(queries)


def test_follow_ups_due_query_count_does_not_grow(practitioner_client: Client, practitioner, manager, lots) -> None:
    url = reverse("followups_due")
    _events(1, practitioner, manager, lots)
    one = _queries(practitioner_client, url)
    _events(19, practitioner, manager, lots)
    page = practitioner_client.get(url).content.decode()
    assert page.count('data-testid="followup-row"') == 20
    assert _queries(practitioner_client, url) == one


def test_patient_list_query_count_does_not_grow(practitioner_client: Client, practitioner, patient, lots) -> None:
    session = _session(patient, practitioner, lots[:2])
    url = reverse("adverse_list", kwargs={"patient_id": patient.pk})
    _record(patient, practitioner, sessions=[session], lots=lots[:2])
    one = _queries(practitioner_client, url)
    for _index in range(19):
        _record(patient, practitioner, sessions=[session], lots=lots[:2])
    assert practitioner_client.get(url).content.decode().count('data-testid="adverse-row"') == 20
    assert _queries(practitioner_client, url) == one


def test_detail_query_count_does_not_grow(practitioner_client: Client, practitioner, patient, lots) -> None:
    first = _session(patient, practitioner, lots[:1], number=1, days_ago=20)
    event = _record(patient, practitioner, type="infection", sessions=[first], lots=lots[:1])
    adverse_event_follow_up(event=event, by=practitioner, grade=1, note="Day 1.")
    url = reverse("adverse_detail", kwargs={"event_id": event.pk})
    one = _queries(practitioner_client, url)
    second = _session(patient, practitioner, lots[1:3], number=2, days_ago=10)
    event.sessions.add(second)
    event.lots.add(*lots[1:3])
    for day in range(2, 12):
        adverse_event_follow_up(event=event, by=practitioner, grade=1, note=f"Day {day}.")
    assert "Day 11." in practitioner_client.get(url).content.decode()
    assert _queries(practitioner_client, url) == one


def test_a_resolved_event_refuses_a_follow_up_visibly(practitioner_client: Client, practitioner, event) -> None:
    adverse_event_resolve(event=event, by=practitioner, resolution="Gone.")
    response = practitioner_client.post(
        reverse("adverse_follow_up", kwargs={"event_id": event.pk}), {"grade": "2", "note": "Back again?"}
    )
    assert response.status_code == 400
    assert "already resolved" in response.content.decode()
    assert event.notes.count() == 1


# --- partials ----------------------------------------------------------------------------------


def test_partials_render(practitioner, patient) -> None:
    event = _record(patient, practitioner, type="redness", grade=3)
    card = render_to_string("treatments/adverse/_patient_card.html", {"patient": patient, "adverse_events": [event]})
    assert "Redness" in card and reverse("adverse_detail", kwargs={"event_id": event.pk}) in card
    assert reverse("adverse_create", kwargs={"patient_id": patient.pk}) in card
    dashboard = render_to_string("treatments/adverse/_dashboard_card.html", {"followups_count": 4})
    assert ">4<" in dashboard and reverse("followups_due") in dashboard
    assert escape("Nothing due.") in render_to_string("treatments/adverse/_dashboard_card.html", {"followups_count": 0})
