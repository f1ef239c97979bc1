"""No GET changes anything: every URL of url_expectations.py, as every persona, with the
database fingerprinted before and after (tests/security/conftest.py lists the tables
and columns a GET may legitimately write, and why)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tests.security.conftest import Fingerprint, response_body
from tests.security.url_expectations import URLS, Case, Persona, all_cases, case_url

if TYPE_CHECKING:
    from django.test import Client

    from tests.security.conftest import World


def first_case(name: str) -> Case:
    return URLS[name].cases[0]


def test_no_get_changes_the_database(world: World, clients: dict[str, Client], fingerprint: Fingerprint) -> None:
    # (persona, extra headers): every persona as a plain browser; then the manager again as
    # htmx, whose partial responses are separate code paths.
    passes: list[tuple[Persona, dict[str, str]]] = [(persona, {}) for persona in Persona]
    passes.append((Persona.MANAGER, {"HTTP_HX_REQUEST": "true"}))
    cases = all_cases()
    failures: list[str] = []
    statuses: set[int] = set()
    baseline = fingerprint.take()
    for persona, headers in passes:
        client = clients[persona]
        for name, case in cases:
            url = case_url(world, name, case)
            response = client.get(url, **headers)
            response_body(response)
            statuses.add(response.status_code)
            after = fingerprint.take()
            changed = Fingerprint.changed(baseline, after)
            if changed:
                how = " (htmx)" if headers else ""
                failures.append(f"{persona}{how}: GET {url} ({response.status_code}) changed {', '.join(changed)}")
                baseline = after
    assert not failures, f"{len(failures)} GET requests changed the database:\n" + "\n".join(failures)
    # The crawl reached real pages, not only sign-in redirects and refusals.
    assert {200, 302, 403, 404, 405} <= statuses


def test_the_fingerprint_sees_a_change(world: World, fingerprint: Fingerprint) -> None:
    """A crawl that can never fail proves nothing: one changed field shows."""
    before = fingerprint.take()
    world.a.patient.__class__.objects.filter(pk=world.a.patient.pk).update(city="Lyon")
    changed = Fingerprint.changed(before, fingerprint.take())
    # The row itself, and the history row its trigger wrote.
    assert [entry.split(" ")[0] for entry in changed] == ["patients_patient", "patients_patientevent"]


def test_the_patient_pdf_link_writes_only_its_render_request(
    world: World, clients: dict[str, Client], fingerprint: Fingerprint
) -> None:
    """The one GET that writes by design: a patient opening the PDF link when no file is
    ready asks for a render (the patient has no button to press). It touches the plan's
    document row and nothing else; the render itself runs after commit, in the worker."""
    from treatments.models import PlanDocument

    PlanDocument.objects.filter(pk=world.b.document.pk).update(status=PlanDocument.Status.FAILED)
    url = case_url(world, "patient_link_pdf", first_case("patient_link_pdf"))
    before = fingerprint.take()
    response = clients[Persona.LINK_HOLDER].get(url)
    assert response.status_code == 200
    assert [entry.split(" ")[0] for entry in Fingerprint.changed(before, fingerprint.take())] == [
        "treatments_plandocument"
    ]
    assert PlanDocument.objects.get(pk=world.b.document.pk).status == PlanDocument.Status.PENDING
