"""The patient benchmarks' seed and script, at a size a test can afford (a few seconds).

The real runs (100,000 and 1,000,000 patients, gunicorn and wrk) are in docs/benchmarks.md;
these tests keep the seed command and the measuring code working between runs.
"""

from __future__ import annotations

import sys
import unicodedata
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from patients.models import Consent, Patient
from treatments.models import TreatmentPlan, TreatmentSession

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import harness
import patients_bench

pytestmark = pytest.mark.django_db


@pytest.fixture
def seeded() -> None:
    call_command("bench_seed_patients", patients=300, sessions=402, practitioners=5, force=True, verbosity=0)


def test_seed_refuses_a_database_not_named_bench() -> None:
    with pytest.raises(CommandError, match="does not look like a benchmark database"):
        call_command("bench_seed_patients", patients=10, sessions=0, verbosity=0)
    assert not Patient.objects.exists()


def test_seed_makes_realistic_patients_and_courses(seeded) -> None:
    assert Patient.objects.count() == 300
    names = list(Patient.objects.values_list("last_name", "first_name", "search_name"))
    surnames = [last for last, _, _ in names]
    # Common surnames repeat, the long tail gives many distinct ones.
    assert 100 < len(set(surnames)) < 300
    accented = [n for n in names if unicodedata.normalize("NFKD", n[0] + n[1]) != n[0] + n[1]]
    assert accented, "no accented name at all"
    # search_name is the database's folding: no accent, lower case.
    assert all(search == search.lower() and search.isascii() for _, _, search in names)
    assert Patient.objects.exclude(phone="").filter(phone__startswith="+33").count() > 250
    sessions = TreatmentSession.objects.all()
    assert sessions.count() == 402
    assert TreatmentPlan.objects.count() == 101 == Consent.objects.count()
    assert sessions.values("practitioner").distinct().count() == 5
    plan = TreatmentPlan.objects.order_by("pk").first()
    # Each plan is its own root and carries its patient's consent.
    assert plan.root_id == plan.pk and plan.consent.patient_id == plan.patient_id
    assert not sessions.filter(performed_at__gt=timezone.now()).exists()
    # The load skips the history triggers: no synthetic history.
    assert not Patient.events.rel.related_model.objects.exists()


def test_seed_is_idempotent(seeded) -> None:
    call_command("bench_seed_patients", patients=300, sessions=402, practitioners=5, force=True, verbosity=0)
    assert Patient.objects.count() == 300
    assert TreatmentSession.objects.count() == 402


def test_query_mix_and_b2_figures(seeded) -> None:
    mix = patients_bench.query_mix(50)
    assert len(mix) == 50
    assert {category for category, _ in mix} == {"rare name", "common surname", "typo", "short input", "full name"}
    result = patients_bench.b2_run(20, runs_b5=3)
    assert len(result["rows"]) == 20
    assert all(row["sql"] > 0 and row["queries"] >= 1 for row in result["rows"])
    assert result["deep_page"] >= 1 and result["b5"]["page_deep"]["p95"] > 0
    text = patients_bench.b2_section(result, "cmd", None)
    assert text.startswith("## B2 — name search SQL") and "| **all** | 20 |" in text


def test_deep_page_cursor_points_at_that_page(seeded) -> None:
    from patients.selectors import PAGE_SIZE, Cursor, patient_search

    page, raw = patients_bench.deep_page()
    active = list(Patient.objects.filter(status="active").order_by("search_name", "pk").values_list("pk", flat=True))
    assert page == (len(active) - 1) // PAGE_SIZE
    rows = patient_search("", cursor=Cursor.decode(raw)).patients
    assert [p.pk for p in rows] == active[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]


def test_doc_update_replaces_its_section_and_keeps_number_order(tmp_path) -> None:
    doc = tmp_path / "benchmarks.md"
    doc.write_text("# Benchmarks\n\nIntro.\n\n## B4 — calendar\n\nfour\n\n## B7 — PDF plan\n\nseven\n")
    harness.doc_update("## B1 — patient list and search\n\none\n", doc)
    harness.doc_update("## B5 — deep pagination\n\nfive\n", doc)
    harness.doc_update("## B1 — patient list and search\n\none again\n", doc)
    text = doc.read_text()
    titles = [line for line in text.splitlines() if line.startswith("## ")]
    assert titles == [
        "## B1 — patient list and search",
        "## B4 — calendar",
        "## B5 — deep pagination",
        "## B7 — PDF plan",
    ]
    assert "one again" in text and "\none\n" not in text and "four" in text and "seven" in text
