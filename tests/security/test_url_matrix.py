"""Role × URL: every named URL of the app against every persona, from the URL conf.

One world (tests/security/conftest.py), then a loop over url_expectations.URLS that
collects every mismatch (status, redirect, a planted marker where it must not be, a
marker missing where it must be) and reports them together.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from allauth.account.forms import default_token_generator
from allauth.account.utils import url_str_to_user_pk
from django.conf import settings
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from aftercare.booking_messages import appointment_message_queue
from aftercare.links import LinkRefused, patient_link_resolve
from aftercare.models import PatientLink
from mesoclinic.models import User
from mesoclinic.services import staff_password_link_send
from tests.security.conftest import A, B, markers_found, response_body
from tests.security.url_expectations import LOGIN, URLS, Case, Persona, all_cases, case_url, forbidden_markers

if TYPE_CHECKING:
    from django.http import HttpResponseBase
    from django.test import Client

    from tests.security.conftest import Fingerprint, World

# Third-party URL trees, left to their own test suites: allauth's sign-in, password and
# two-factor pages, and the Django admin (technical operators only). Everything else in
# the URL conf, including Django's language switch, must have an entry.
SKIPPED_PREFIXES = ("accounts/", settings.ADMIN_URL)


def _walk(resolver: URLResolver, prefix: str = "", namespace: str = "") -> list[tuple[str, str | None]]:
    found: list[tuple[str, str | None]] = []
    for pattern in resolver.url_patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            inner = f"{namespace}{pattern.namespace}:" if pattern.namespace else namespace
            found += _walk(pattern, route, inner)
        elif isinstance(pattern, URLPattern):
            found.append((route, f"{namespace}{pattern.name}" if pattern.name else None))
    return found


def our_url_patterns() -> list[tuple[str, str | None]]:
    """(route, name) of every pattern in the URL conf outside the skipped prefixes."""
    return [(route, name) for route, name in _walk(get_resolver()) if not route.startswith(SKIPPED_PREFIXES)]


def status_problem(response: HttpResponseBase, expected: int | str) -> str:
    """Empty when the response is what was expected, else what was got."""
    if expected == LOGIN:
        location = response.get("Location", "")
        if response.status_code == 302 and location.startswith(reverse("account_login")):
            return ""
        return f"got {response.status_code} {location}, expected a redirect to the sign-in page"
    if response.status_code != expected:
        return f"got {response.status_code}, expected {expected}"
    return ""


def marker_problems(body: bytes, persona: Persona, case: Case) -> list[str]:
    problems = []
    leaked = markers_found(body, forbidden_markers(persona, case))
    if leaked:
        problems.append(f"shows markers it must not: {leaked}")
    wanted = case.shows.get(persona, ())
    missing = [marker for marker in wanted if not markers_found(body, [marker])]
    if missing:
        problems.append(f"lacks markers it must show: {missing}")
    return problems


def test_every_url_has_an_entry() -> None:
    patterns = our_url_patterns()
    unnamed = [route for route, name in patterns if name is None]
    names = {name for _route, name in patterns if name is not None}
    missing = sorted(names - set(URLS))
    stale = sorted(set(URLS) - names)
    assert not unnamed, f"URL patterns without a name (name them, then add an entry): {unnamed}"
    assert not missing, f"URLs with no entry in tests/security/url_expectations.py: {missing}"
    assert not stale, f"entries for URLs that no longer exist: {stale}"
    assert len(names) > 80, "the URL conf walk found too few URLs: is the resolver walked whole?"


def test_role_url_matrix(world: World, clients: dict[str, Client], fingerprint: Fingerprint) -> None:
    failures: list[str] = []
    checked = 0
    for name, case in all_cases():
        url = case_url(world, name, case)
        where = f"{name}{f' [{case.label}]' if case.label else ''}"
        for persona in Persona:
            response = clients[persona].get(url)
            body = response_body(response)
            checked += 1
            problem = status_problem(response, case.get[persona])
            problems = [problem] if problem else []
            problems += marker_problems(body, persona, case)
            failures += [f"{where} × {persona}: GET {url} {p}" for p in problems]
        before = fingerprint.take() if case.post_refused else {}
        for persona, expected in case.post_refused.items():
            response = clients[persona].post(url, {})
            body = response_body(response)
            checked += 1
            after = fingerprint.take()
            changed, before = fingerprint.changed(before, after), after
            problem = status_problem(response, expected)
            problems = [problem] if problem else []
            leaked = markers_found(body, forbidden_markers(persona, case))
            if leaked:
                problems.append(f"shows markers it must not: {leaked}")
            if changed:
                problems.append(f"a refused POST changed the database: {changed}")
            failures += [f"{where} × {persona}: POST {url} {p}" for p in problems]
        if "POST" not in URLS[name].methods:
            response = clients[Persona.MANAGER].post(url, {})
            response_body(response)
            if response.status_code != 405:
                failures.append(f"{where}: POST {url} got {response.status_code}, expected 405 (declared GET only)")
    assert not failures, f"{len(failures)} of {checked} requests went wrong:\n" + "\n".join(failures)


def test_link_holder_of_b_reaches_only_what_each_link_is_for(world: World, clients: dict[str, Client]) -> None:
    """B's links, each on every /p/ URL, with A's ids added to the query: the page the link
    is for, or a 404; never anything of A's, never the staff's notes about B."""
    holder = clients[Persona.LINK_HOLDER]
    a = world.a
    a_ids = (
        f"?patient={a.patient.pk}&patient_id={a.patient.pk}&plan={a.plan.pk}&session={a.session.pk}"
        f"&appointment={a.appointment.pk}&consent={a.consent.pk}&photo={a.photo.pk}&message={a.clinical_message.pk}"
    )
    purpose = PatientLink.Purpose
    # URL name → method and the purposes that open it (the others answer 404).
    routes = {
        "patient_link": ("get", set(purpose.values)),
        "patient_link_pdf": ("get", {purpose.PLAN}),
        "patient_link_cancel": ("get", {purpose.BOOKING}),
        "patient_link_confirm": ("post", {purpose.BOOKING}),
    }
    forbidden = (*A.every(), B.internal, B.team_note)
    failures = []
    for link_purpose, token in world.b.links.items():
        for name, (method, opens) in routes.items():
            for query in ("", a_ids):
                url = reverse(name, args=[token]) + query
                response = getattr(holder, method)(url)
                body = response_body(response)
                expected = 200 if link_purpose in opens else 404
                if response.status_code != expected:
                    failures.append(
                        f"{link_purpose} link: {method.upper()} {url} got {response.status_code}, expected {expected}"
                    )
                leaked = markers_found(body, forbidden)
                if leaked:
                    failures.append(f"{link_purpose} link: {method.upper()} {url} shows {leaked}")
    unknown = holder.get(reverse("patient_link", args=["x" * 43]))
    if unknown.status_code != 404 or markers_found(unknown.content, (*A.every(), *B.every())):
        failures.append(f"an unknown token got {unknown.status_code} or showed a patient's data")
    assert not failures, "\n".join(failures)


# A patient link or a password-reset link in a page body: the path, and its secret part.
_LINK_TOKEN = re.compile(r"/p/([A-Za-z0-9_-]{20,100})/")
_RESET_KEY = re.compile(r"/accounts/password/reset/key/([0-9A-Za-z]+)-([^/\s\"'<]+)/")


def working_secrets(body: bytes) -> list[str]:
    """Live patient-link tokens and valid password-reset keys found in a page."""
    text = body.decode(errors="replace")
    found = []
    for token in set(_LINK_TOKEN.findall(text)):
        try:
            link = patient_link_resolve(token)
        except LinkRefused:
            continue
        found.append(f"a live {link.purpose} link of patient {link.patient_id}")
    for uidb36, key in set(_RESET_KEY.findall(text)):
        user = User.objects.filter(pk=url_str_to_user_pk(uidb36)).first()
        if user is not None and default_token_generator.check_token(user, key):
            found.append(f"a valid password-reset link of {user.email}")
    return found


# A message's body is stored as sent, with its secrets: the booking email's confirm/cancel
# and email-preferences links, a new colleague's "set your password" link. Staff pages show
# the body with those links cut (aftercare.content.message_body_for_staff).
def test_staff_pages_never_hand_out_a_working_secret(world: World, clients: dict[str, Client]) -> None:
    booked = appointment_message_queue(appointment=world.a.appointment, action="booked")
    password = staff_password_link_send(user=world.practitioner, requested_by=world.manager)
    assert booked is not None
    # The emails themselves carry the secrets (that is what they are for).
    assert working_secrets(booked.body_text.encode()) and working_secrets(password.body_text.encode())
    pages = [
        reverse("patient_detail", args=[world.a.patient.pk]),
        reverse("message_detail", args=[booked.pk]),
        reverse("message_detail", args=[password.pk]),
        reverse("outbox_list"),
    ]
    failures = []
    for persona in (Persona.FRONT_DESK, Persona.PRACTITIONER, Persona.MANAGER):
        for url in pages:
            response = clients[persona].get(url)
            secrets = working_secrets(response_body(response)) if response.status_code == 200 else []
            if secrets:
                failures.append(f"{persona}: GET {url} shows {secrets}")
    assert not failures, "\n".join(failures)
