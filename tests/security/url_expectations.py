"""Who gets what from every named URL: one entry per URL name, read by test_url_matrix.py
and test_get_is_safe.py.

Adding a URL to the app makes ``test_every_url_has_an_entry`` fail until it has an entry
here: say how to build its arguments from the world (``tests/security/conftest.py``),
which methods it answers, and the status each persona gets. See docs/security.md.

Statuses: a number, or ``LOGIN`` for "302 to the sign-in page". Staff URLs are built
with patient A's ids; ``/p/`` URLs with patient B's link tokens.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from django.urls import reverse

from aftercare.models import PatientLink
from tests.security.conftest import A, B

if TYPE_CHECKING:
    from tests.security.conftest import World


class Persona(StrEnum):
    ANONYMOUS = "anonymous"
    # No account; has opened patient B's plan link in this browser.
    LINK_HOLDER = "link holder of B"
    FRONT_DESK = "front desk"
    PRACTITIONER = "practitioner"
    MANAGER = "manager"


LOGIN = "login"
Status = int | str
ANON, LINK, FRONT, PRACT, MANAGER = (
    Persona.ANONYMOUS,
    Persona.LINK_HOLDER,
    Persona.FRONT_DESK,
    Persona.PRACTITIONER,
    Persona.MANAGER,
)
Purpose = PatientLink.Purpose


class Audience(StrEnum):
    """Whose page it is, which decides the markers a persona must never find in it."""

    STAFF = "staff"  # signed-in staff; nobody else gets past the sign-in page
    PATIENT_LINK = "patient link"  # patient B through a /p/ token, whoever holds the browser
    FEED = "calendar feed"  # a practitioner's phone, through the feed token


def statuses(*, front: Status, pract: Status, manager: Status, anon: Status = LOGIN) -> dict[Persona, Status]:
    """Staff pages: anonymous visitors and link holders are both sent to sign in."""
    return {ANON: anon, LINK: anon, FRONT: front, PRACT: pract, MANAGER: manager}


def everyone(status: Status) -> dict[Persona, Status]:
    return dict.fromkeys(Persona, status)


EVERY_STAFF = statuses(front=200, pract=200, manager=200)
CLINICAL = statuses(front=403, pract=200, manager=200)  # role_required(*CLINICAL_ROLES)
MANAGER_ONLY = statuses(front=403, pract=403, manager=200)
FRONT_AND_MANAGER = statuses(front=200, pract=403, manager=200)
REFUSED = frozenset({LOGIN, 403, 404, 405})


def refusals(access: Mapping[Persona, Status]) -> dict[Persona, Status]:
    """The personas a view refuses, with their status: what a POST from them must get too."""
    return {persona: status for persona, status in access.items() if status in REFUSED}


@dataclass(frozen=True)
class Case:
    """One way to call a URL: its arguments, the GET status per persona, and the POST
    refusals to check (persona → status; personas not listed are not POSTed as)."""

    kwargs: Callable[[World], dict[str, Any]]
    get: Mapping[Persona, Status]
    post_refused: Mapping[Persona, Status] = field(default_factory=dict)
    query: Callable[[World], str] | None = None
    label: str = ""
    audience: Audience = Audience.STAFF
    # Markers that must be in the body for this persona: proves the marker check can fail.
    shows: Mapping[Persona, tuple[str, ...]] = field(default_factory=dict)
    # Markers no persona may find here, on top of the audience's rules.
    hides: tuple[str, ...] = ()


@dataclass(frozen=True)
class Entry:
    methods: frozenset[str]
    cases: tuple[Case, ...]


def page(access: Mapping[Persona, Status], *, post: bool = False, **case: Any) -> Entry:
    """A page answering GET (and POST, for forms): a POST is refused to whoever GET is."""
    methods = frozenset({"GET", "POST"} if post else {"GET"})
    refused = refusals(access) if post else {}
    return Entry(methods, (Case(get=access, post_refused=refused, **case),))


def action(allowed: Mapping[Persona, Status], **case: Any) -> Entry:
    """A POST-only URL: GET is 405 for everyone; a POST is refused as ``allowed`` says."""
    return Entry(frozenset({"POST"}), (Case(get=everyone(405), post_refused=refusals(allowed), **case),))


def also(entry: Entry, *cases: Case) -> Entry:
    return Entry(entry.methods, (*entry.cases, *cases))


# A's record named under B's id: a 404 for everyone who may read records, so that no page
# shows one patient's record while the read audit names another.
MISMATCHED = statuses(front=403, pract=404, manager=404)


def no_args(world: World) -> dict[str, Any]:
    return {}


def patient_a(world: World) -> dict[str, Any]:
    return {"patient_id": world.a.patient.pk}


def plan_a(world: World) -> dict[str, Any]:
    return {"plan_id": world.a.plan.pk}


def lot(world: World) -> dict[str, Any]:
    return {"lot_id": world.lot.pk}


def link_b(purpose: str) -> Callable[[World], dict[str, Any]]:
    def kwargs(world: World) -> dict[str, Any]:
        return {"token": world.b.links[purpose]}

    return kwargs


def calendar_query(world: World) -> str:
    day = world.a.appointment.starts_at.astimezone(ZoneInfo(world.location.time_zone)).date()
    return f"location={world.location.pk}&day={day.isoformat()}&week={day.isoformat()}"


def _link_page(purpose: str, **case: Any) -> Case:
    return Case(
        kwargs=link_b(purpose), get=everyone(200), label=f"{purpose} link", audience=Audience.PATIENT_LINK, **case
    )


URLS: dict[str, Entry] = {
    # --- mesoclinic ---------------------------------------------------------------------------
    "home": page(statuses(front=302, pract=302, manager=302), kwargs=no_args),
    "dashboard": page(EVERY_STAFF, kwargs=no_args),
    "system_status": page(MANAGER_ONLY, kwargs=no_args),
    "system_test_email": action(MANAGER_ONLY, kwargs=no_args),
    "system_test_email_progress": page(MANAGER_ONLY, kwargs=lambda w: {"message_id": w.system_message.pk}),
    "system_test_pdf": action(MANAGER_ONLY, kwargs=no_args),
    "system_test_pdf_progress": page(MANAGER_ONLY, kwargs=lambda w: {"job_id": w.system_job.pk}),
    "system_test_pdf_download": page(MANAGER_ONLY, kwargs=lambda w: {"job_id": w.system_job.pk}),
    "audit_log": page(MANAGER_ONLY, kwargs=no_args),
    "staff_list": page(MANAGER_ONLY, kwargs=no_args),
    "staff_create": page(MANAGER_ONLY, post=True, kwargs=no_args),
    "staff_update": page(MANAGER_ONLY, post=True, kwargs=lambda w: {"user_id": w.practitioner.pk}),
    "staff_password_link": action(MANAGER_ONLY, kwargs=lambda w: {"user_id": w.practitioner.pk}),
    # Django's language switch (the top bar's form): a redirect for everyone.
    "set_language": page(everyone(302), post=True, kwargs=no_args),
    # --- patients: registry -------------------------------------------------------------------
    "patient_list": page(EVERY_STAFF, kwargs=no_args, shows={FRONT: (A.last,)}),
    "patient_create": page(EVERY_STAFF, post=True, kwargs=no_args),
    "patient_detail": page(EVERY_STAFF, kwargs=patient_a, shows={FRONT: (A.first, A.last)}),
    "patient_update": page(EVERY_STAFF, post=True, kwargs=patient_a, shows={FRONT: (A.mail,)}),
    "patient_archive": action(CLINICAL, kwargs=patient_a),
    "patient_restore": action(CLINICAL, kwargs=patient_a),
    "patient_export": page(MANAGER_ONLY, kwargs=patient_a, shows={MANAGER: (A.internal, A.clinical)}),
    # --- patients: clinical -------------------------------------------------------------------
    "history_detail": page(CLINICAL, kwargs=patient_a, shows={PRACT: (A.internal,)}),
    "history_edit": page(CLINICAL, post=True, kwargs=patient_a),
    "history_confirm": action(CLINICAL, kwargs=patient_a),
    "consultation_new": page(CLINICAL, post=True, kwargs=patient_a),
    "consultation_detail": also(
        page(
            CLINICAL,
            kwargs=lambda w: {"patient_id": w.a.patient.pk, "consultation_id": w.a.consultation.pk},
            shows={PRACT: (A.internal, A.clinical)},
        ),
        Case(
            kwargs=lambda w: {"patient_id": w.b.patient.pk, "consultation_id": w.a.consultation.pk},
            get=MISMATCHED,
            label="A's consultation under B",
        ),
    ),
    "rule_list": page(MANAGER_ONLY, kwargs=no_args),
    "rule_create": page(MANAGER_ONLY, post=True, kwargs=no_args),
    "rule_edit": page(MANAGER_ONLY, post=True, kwargs=lambda w: {"rule_id": w.rule.pk}),
    # --- patients: consent --------------------------------------------------------------------
    "consent_text_list": page(MANAGER_ONLY, kwargs=no_args),
    "consent_text_publish": page(MANAGER_ONLY, post=True, kwargs=lambda w: {"kind": "lipolysis"}),
    "consent_signature": also(
        page(
            CLINICAL,
            kwargs=lambda w: {"patient_id": w.a.patient.pk, "consent_id": w.a.consent.pk},
            shows={PRACT: (A.clinical,)},
        ),
        Case(
            kwargs=lambda w: {"patient_id": w.b.patient.pk, "consent_id": w.a.consent.pk},
            get=MISMATCHED,
            label="A's consent under B",
        ),
    ),
    "consent_withdraw": also(
        action(CLINICAL, kwargs=lambda w: {"patient_id": w.a.patient.pk, "consent_id": w.a.consent.pk}),
        Case(
            kwargs=lambda w: {"patient_id": w.b.patient.pk, "consent_id": w.a.consent.pk},
            get=everyone(405),
            post_refused=refusals(MISMATCHED),
            label="A's consent under B",
        ),
    ),
    "consent_capture": page(CLINICAL, post=True, kwargs=lambda w: {"patient_id": w.a.patient.pk, "kind": "lipolysis"}),
    # --- patients: photos ---------------------------------------------------------------------
    "photo_list": page(CLINICAL, kwargs=patient_a),
    "photo_upload": page(CLINICAL, post=True, kwargs=patient_a),
    "photo_file": also(
        page(
            CLINICAL,
            kwargs=lambda w: {"patient_id": w.a.patient.pk, "photo_id": w.a.photo.pk},
            shows={PRACT: (A.clinical,)},
        ),
        Case(
            kwargs=lambda w: {"patient_id": w.b.patient.pk, "photo_id": w.a.photo.pk},
            get=MISMATCHED,
            label="A's photo under B",
        ),
    ),
    "photo_hide": also(
        page(CLINICAL, post=True, kwargs=lambda w: {"patient_id": w.a.patient.pk, "photo_id": w.a.photo.pk}),
        Case(
            kwargs=lambda w: {"patient_id": w.b.patient.pk, "photo_id": w.a.photo.pk},
            get=MISMATCHED,
            post_refused=refusals(MISMATCHED),
            label="A's photo under B",
        ),
    ),
    # --- treatments: catalogue and recall -----------------------------------------------------
    "catalogue": page(MANAGER_ONLY, kwargs=no_args),
    "product_create": page(MANAGER_ONLY, post=True, kwargs=no_args),
    "product_edit": page(MANAGER_ONLY, post=True, kwargs=lambda w: {"product_id": w.product.pk}),
    "lot_create": page(MANAGER_ONLY, post=True, kwargs=lambda w: {"product_id": w.product.pk}),
    "lot_recall": action(MANAGER_ONLY, kwargs=lot),
    "ingredient_create": page(MANAGER_ONLY, post=True, kwargs=no_args),
    "ingredient_edit": page(MANAGER_ONLY, post=True, kwargs=lambda w: {"ingredient_id": w.ingredient.pk}),
    "dose_limit_create": page(MANAGER_ONLY, post=True, kwargs=no_args),
    "dose_limit_edit": page(MANAGER_ONLY, post=True, kwargs=lambda w: {"limit_id": w.dose_limit.pk}),
    # Both patients received the lot: the manager sees both names.
    "lot_recall_detail": page(MANAGER_ONLY, kwargs=lot, shows={MANAGER: (A.last, B.last)}),
    "lot_recall_notify": action(MANAGER_ONLY, kwargs=lot),
    # --- treatments: plans, sessions, the PDF -------------------------------------------------
    "patient_plans": page(CLINICAL, kwargs=patient_a),
    "plan_new": page(CLINICAL, post=True, kwargs=patient_a),
    "plan_detail": page(CLINICAL, kwargs=plan_a, shows={PRACT: (A.clinical,)}),
    "plan_builder": page(CLINICAL, post=True, kwargs=plan_a),
    "plan_transition": action(CLINICAL, kwargs=plan_a),
    "session_record": page(CLINICAL, post=True, kwargs=plan_a),
    "session_detail": page(
        CLINICAL, post=True, kwargs=lambda w: {"session_id": w.a.session.pk}, shows={PRACT: (A.internal,)}
    ),
    "plan_pdf_request": action(CLINICAL, kwargs=plan_a),
    "plan_pdf_status": page(CLINICAL, kwargs=plan_a),
    "plan_pdf_download": page(CLINICAL, kwargs=plan_a, shows={PRACT: (A.clinical,)}),
    # --- treatments: side effects -------------------------------------------------------------
    "adverse_list": page(CLINICAL, kwargs=patient_a),
    "adverse_create": page(CLINICAL, post=True, kwargs=patient_a),
    "adverse_detail": page(CLINICAL, kwargs=lambda w: {"event_id": w.a.adverse.pk}, shows={PRACT: (A.internal,)}),
    "adverse_follow_up": action(CLINICAL, kwargs=lambda w: {"event_id": w.a.adverse.pk}),
    "adverse_resolve": action(CLINICAL, kwargs=lambda w: {"event_id": w.a.adverse.pk}),
    "followups_due": page(CLINICAL, kwargs=no_args, query=lambda w: "show=all", shows={PRACT: (A.last,)}),
    # --- treatments: calendar and booking -----------------------------------------------------
    # Calendars show names and kinds, never the team note (docs/booking.md).
    "calendar_day": page(
        EVERY_STAFF,
        kwargs=no_args,
        query=calendar_query,
        shows={FRONT: (A.last,)},
        hides=(A.team_note, B.team_note),
    ),
    "calendar_week": page(
        EVERY_STAFF,
        kwargs=no_args,
        query=calendar_query,
        shows={FRONT: (A.last,)},
        hides=(A.team_note, B.team_note),
    ),
    "appointment_new": page(
        EVERY_STAFF,
        post=True,
        kwargs=no_args,
        query=lambda w: f"patient={w.a.patient.pk}",
        shows={FRONT: (A.last,)},
    ),
    "appointment_action": also(
        action(EVERY_STAFF, kwargs=lambda w: {"appointment_id": w.a.appointment.pk}),
        # A practitioner acts on their own appointments only (the front desk on any).
        Case(
            kwargs=lambda w: {"appointment_id": w.colleague_appointment.pk},
            get=everyone(405),
            post_refused={ANON: LOGIN, LINK: LOGIN, PRACT: 403},
            label="a colleague's appointment",
        ),
    ),
    # The appointment's own page is where the team note is read, the front desk included.
    "appointment_detail": page(
        EVERY_STAFF, kwargs=lambda w: {"appointment_id": w.a.appointment.pk}, shows={FRONT: (A.team_note,)}
    ),
    # --- treatments: schedule settings --------------------------------------------------------
    "location_list": page(EVERY_STAFF, kwargs=no_args),
    "location_create": page(MANAGER_ONLY, post=True, kwargs=no_args),
    "location_edit": page(MANAGER_ONLY, post=True, kwargs=lambda w: {"location_id": w.location.pk}),
    # Everyone reads a practitioner's hours; only a manager changes them.
    "working_hours_edit": Entry(
        frozenset({"GET", "POST"}),
        (
            Case(
                kwargs=lambda w: {"user_id": w.practitioner.pk},
                get=EVERY_STAFF,
                post_refused=refusals(MANAGER_ONLY),
            ),
        ),
    ),
    # Everyone reads closures; managers record them, practitioners their own leave.
    "closure_list": Entry(
        frozenset({"GET", "POST"}),
        (Case(kwargs=no_args, get=EVERY_STAFF, post_refused=refusals(CLINICAL)),),
    ),
    # A location's closure: only a manager removes it.
    "closure_remove": action(MANAGER_ONLY, kwargs=lambda w: {"exception_id": w.closure.pk}),
    "kind_durations": page(MANAGER_ONLY, post=True, kwargs=no_args),
    "no_show_report": page(FRONT_AND_MANAGER, kwargs=no_args),
    # --- treatments: calendar feed ------------------------------------------------------------
    # No sign-in: the token is the credential, so whoever holds it gets the feed: first
    # name and initial, never a last name, a note or anything clinical.
    "calendar_feed": page(
        everyone(200),
        kwargs=lambda w: {"token": w.feed_token},
        audience=Audience.FEED,
        shows=dict.fromkeys(Persona, (A.first,)),
    ),
    "calendar_feed_settings": page(statuses(front=403, pract=200, manager=200), post=True, kwargs=no_args),
    "calendar_feed_revoke_staff": action(MANAGER_ONLY, kwargs=lambda w: {"user_id": w.practitioner.pk}),
    # --- aftercare: staff pages ---------------------------------------------------------------
    "outbox_list": page(MANAGER_ONLY, kwargs=no_args),
    "message_detail": Entry(
        frozenset({"GET"}),
        (
            # An aftercare email is clinical: the front desk gets a 404 (patient_access).
            Case(
                kwargs=lambda w: {"message_id": w.a.clinical_message.pk},
                get=statuses(front=404, pract=200, manager=200),
                label="clinical message",
                shows={PRACT: (A.clinical,)},
            ),
            Case(
                kwargs=lambda w: {"message_id": w.a.booking_message.pk},
                get=EVERY_STAFF,
                label="booking message",
                shows={FRONT: (A.last,)},
            ),
            Case(
                kwargs=lambda w: {"message_id": w.system_message.pk},
                get=statuses(front=404, pract=404, manager=200),
                label="message to staff",
            ),
        ),
    ),
    "message_resend": action(MANAGER_ONLY, kwargs=lambda w: {"message_id": w.a.clinical_message.pk}),
    "aftercare_templates": page(MANAGER_ONLY, kwargs=no_args),
    "aftercare_template_edit": page(
        MANAGER_ONLY, post=True, kwargs=lambda w: {"key": w.template.key, "language": w.template.language}
    ),
    "plan_email": action(CLINICAL, kwargs=plan_a),
    # --- aftercare: patient links (B's tokens; the session plays no part) ----------------------
    "patient_link": Entry(
        frozenset({"GET", "POST"}),
        (
            _link_page(Purpose.PLAN, shows=dict.fromkeys(Persona, (B.clinical,))),
            _link_page(Purpose.AFTERCARE),
            _link_page(Purpose.BOOKING),
            _link_page(Purpose.CHECKIN),
            _link_page(Purpose.PREFERENCES, shows=dict.fromkeys(Persona, (B.mail,))),
        ),
    ),
    "patient_link_pdf": Entry(
        frozenset({"GET"}), (_link_page(Purpose.PLAN, shows=dict.fromkeys(Persona, (B.clinical,))),)
    ),
    "patient_link_confirm": Entry(
        frozenset({"POST"}),
        (Case(kwargs=link_b(Purpose.BOOKING), get=everyone(405), audience=Audience.PATIENT_LINK),),
    ),
    "patient_link_cancel": Entry(frozenset({"GET", "POST"}), (_link_page(Purpose.BOOKING),)),
}


def case_url(world: World, name: str, case: Case) -> str:
    url = reverse(name, kwargs=case.kwargs(world))
    return f"{url}?{case.query(world)}" if case.query else url


def forbidden_markers(persona: Persona, case: Case) -> tuple[str, ...]:
    """What this persona must never find in this case's response."""
    if case.audience == Audience.PATIENT_LINK:
        # B's own pages: nothing of A's, and none of the staff's notes about B.
        found = (*A.every(), B.internal, B.team_note)
    elif case.audience == Audience.FEED:
        found = tuple(m for p in (A, B) for m in (p.last, p.mail, p.team_note, *p.medical()))
    elif persona in (ANON, LINK):
        found = (*A.every(), *B.every())
    elif persona == FRONT:
        found = (*A.medical(), *B.medical())
    else:
        found = ()
    return (*found, *case.hides)


def all_cases() -> list[tuple[str, Case]]:
    return [(name, case) for name, entry in URLS.items() for case in entry.cases]
