"""Audit completeness: a scripted list of K patient reads, exports and writes, made through
the web client, leaves exactly K audit events of the right kind, each naming who acted.

Reads and exports are read-audit rows (``ReadEvent``: view, export, download); writes are
change-history rows (pghistory events, whose context carries the user). A write also
leaves one read-audit row with the action ``edit`` (the record was opened to change it),
and a refused or non-patient request leaves nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from django.apps import apps
from django.db.models import Max
from django.urls import reverse
from django.utils import timezone
from pghistory.models import Event

from aftercare.models import PatientLink
from mesoclinic.models import ReadEvent
from patients.forms.registry import PatientForm
from tests.security.conftest import response_body
from tests.security.url_expectations import Persona

if TYPE_CHECKING:
    from django.test import Client

    from mesoclinic.models import User
    from tests.security.conftest import World

READ_ACTIONS = frozenset({"view", "export", "download"})


@dataclass(frozen=True)
class Step:
    """One thing a person does, and the audit events it must leave."""

    persona: Persona
    url: Callable[[World], str]
    status: int
    reads: tuple[str, ...] = ()  # ReadEvent actions
    changes: tuple[tuple[str, str], ...] = ()  # (tracked model, pghistory label)
    data: Callable[[World], dict[str, Any]] | None = None  # a POST when given

    @property
    def counted(self) -> int:
        """This step's share of K: one per read or export, one per history event."""
        return sum(1 for action in self.reads if action in READ_ACTIONS) + len(self.changes)


def _demographics_with_new_city(world: World) -> dict[str, Any]:
    form = PatientForm(instance=world.a.patient)
    data: dict[str, Any] = {}
    for name in form.fields:
        value = form[name].value()
        if isinstance(value, bool):
            if value:
                data[name] = "on"
            continue
        data[name] = "" if value is None else value if isinstance(value, list) else str(value)
    data["city"] = "Bordeaux"
    return data


def _consultation(world: World) -> dict[str, Any]:
    held_at = timezone.localtime() - timedelta(hours=1)
    return {
        "held_at": held_at.strftime("%Y-%m-%dT%H:%M"),
        "location": world.location.pk,
        "concerns": ["fat_reduction"],
        "areas": ["abdomen"],
        "fitzpatrick": "3",
        "glogau": "",
        "findings": "Audit-count consultation.",
        "recommendation": "",
        "m-TOTAL_FORMS": "0",
        "m-INITIAL_FORMS": "0",
        "m-MIN_NUM_FORMS": "0",
        "m-MAX_NUM_FORMS": "40",
    }


def _b_link(purpose: str, suffix: str = "") -> Callable[[World], str]:
    return lambda w: reverse("patient_link", args=[w.b.links[purpose]]) + suffix


PLAN_LINK = PatientLink.Purpose.PLAN
ANON, LINK, FRONT, PRACT, MANAGER = (
    Persona.ANONYMOUS,
    Persona.LINK_HOLDER,
    Persona.FRONT_DESK,
    Persona.PRACTITIONER,
    Persona.MANAGER,
)
A_PATIENT = "patients.Patient"

SCRIPT: list[Step] = [
    # Reads.
    Step(PRACT, lambda w: reverse("patient_detail", args=[w.a.patient.pk]), 200, reads=("view",)),
    Step(FRONT, lambda w: reverse("patient_detail", args=[w.a.patient.pk]), 200, reads=("view",)),
    Step(PRACT, lambda w: reverse("history_detail", args=[w.a.patient.pk]), 200, reads=("view",)),
    Step(
        PRACT,
        lambda w: reverse("consultation_detail", args=[w.a.patient.pk, w.a.consultation.pk]),
        200,
        reads=("view",),
    ),
    Step(MANAGER, lambda w: reverse("photo_file", args=[w.a.patient.pk, w.a.photo.pk]), 200, reads=("view",)),
    Step(PRACT, lambda w: reverse("adverse_detail", args=[w.a.adverse.pk]), 200, reads=("view",)),
    Step(FRONT, lambda w: reverse("appointment_detail", args=[w.a.appointment.pk]), 200, reads=("view",)),
    Step(LINK, _b_link(PLAN_LINK), 200, reads=("view",)),
    # Exports and downloads.
    Step(MANAGER, lambda w: reverse("patient_export", args=[w.a.patient.pk]), 200, reads=("export",)),
    Step(PRACT, lambda w: reverse("plan_pdf_download", args=[w.a.plan.pk]), 200, reads=("download",)),
    Step(LINK, _b_link(PLAN_LINK, "pdf/"), 200, reads=("download",)),
    # Writes.
    Step(
        FRONT,
        lambda w: reverse("patient_update", args=[w.a.patient.pk]),
        302,
        reads=("edit",),
        changes=((A_PATIENT, "update"),),
        data=_demographics_with_new_city,
    ),
    Step(
        PRACT,
        lambda w: reverse("consultation_new", args=[w.a.patient.pk]),
        302,
        reads=("edit",),
        changes=(("patients.Consultation", "insert"),),
        data=_consultation,
    ),
    Step(
        PRACT,
        lambda w: reverse("adverse_follow_up", args=[w.a.adverse.pk]),
        302,
        reads=("edit",),
        changes=(("treatments.AdverseEvent", "update"),),
        data=lambda w: {"grade": "1", "note": "Fading, seen at the desk."},
    ),
    Step(
        FRONT,
        lambda w: reverse("appointment_action", args=[w.a.appointment.pk]),
        302,
        reads=("edit",),
        changes=(("treatments.Appointment", "update"),),
        data=lambda w: {"action": "cancel", "reason": "Patient called", "revision": str(w.a.appointment.revision)},
    ),
    Step(
        MANAGER,
        lambda w: reverse("patient_archive", args=[w.b.patient.pk]),
        302,
        reads=("edit",),
        changes=((A_PATIENT, "update"),),
        data=lambda w: {"reason": "Moved abroad"},
    ),
    # Not patient reads: nothing to record.
    Step(MANAGER, lambda w: reverse("audit_log"), 200),
    Step(FRONT, lambda w: reverse("history_detail", args=[w.a.patient.pk]), 403),
    Step(ANON, lambda w: reverse("patient_detail", args=[w.a.patient.pk]), 302),
]


@dataclass
class Trail:
    """Where each audit table stood, to find the rows a step added."""

    last_read: int
    last_event: dict[type[Event], int] = field(default_factory=dict)

    @classmethod
    def now(cls) -> Trail:
        models = [m for m in apps.get_models() if issubclass(m, Event) and not m._meta.proxy]
        return cls(
            last_read=ReadEvent.objects.aggregate(m=Max("pk"))["m"] or 0,
            last_event={m: m.objects.aggregate(n=Max("pgh_id"))["n"] or 0 for m in models},
        )

    def reads_since(self) -> list[ReadEvent]:
        return list(ReadEvent.objects.filter(pk__gt=self.last_read).order_by("pk"))

    def events_since(self) -> list[Event]:
        found: list[Event] = []
        for model, last in self.last_event.items():
            found += model.objects.filter(pgh_id__gt=last).select_related("pgh_context")
        return found


def _actor(world: World, persona: Persona) -> User | None:
    return {FRONT: world.front_desk, PRACT: world.practitioner, MANAGER: world.manager}.get(persona)


def test_k_scripted_actions_leave_exactly_k_audit_events(world: World, clients: dict[str, Client]) -> None:
    k = sum(step.counted for step in SCRIPT)
    writes = sum(1 for step in SCRIPT if step.changes)
    assert k == 16 and writes == 5, "the script changed: recount K"
    link = PatientLink.objects.get(plan=world.b.plan, purpose=PLAN_LINK)
    start = Trail.now()
    failures: list[str] = []
    for number, step in enumerate(SCRIPT, start=1):
        url = step.url(world)
        trail = Trail.now()
        client = clients[step.persona]
        response = client.post(url, step.data(world)) if step.data else client.get(url)
        response_body(response)
        where = f"step {number} ({step.persona}, {'POST' if step.data else 'GET'} {url})"
        if response.status_code != step.status:
            failures.append(f"{where}: got {response.status_code}, expected {step.status}")
            continue
        actor = _actor(world, step.persona)
        reads = trail.reads_since()
        if sorted(r.action for r in reads) != sorted(step.reads):
            failures.append(f"{where}: read events {[(r.action, r.what) for r in reads]}, expected {step.reads}")
        for read in reads:
            # A patient link has no user: the link itself is the actor.
            expected_token = link.pk if step.persona == LINK else None
            if read.user_id != (actor.pk if actor else None) or read.token_id != expected_token:
                failures.append(f"{where}: read event by user {read.user_id} / link {read.token_id}")
        events = trail.events_since()
        got = sorted((e.pgh_tracked_model._meta.label, e.pgh_label) for e in events)
        if got != sorted(step.changes):
            failures.append(f"{where}: history events {got}, expected {sorted(step.changes)}")
        for event in events:
            context = event.pgh_context.metadata if event.pgh_context else {}
            if actor is None or context.get("user") != actor.pk or context.get("url") != url:
                failures.append(f"{where}: history event {event.pgh_tracked_model.__name__} context {context}")
    assert not failures, "\n".join(failures)
    reads = start.reads_since()
    events = start.events_since()
    assert sum(1 for r in reads if r.action in READ_ACTIONS) + len(events) == k
    assert sum(1 for r in reads if r.action == "edit") == writes
    assert len(reads) + len(events) == k + writes
