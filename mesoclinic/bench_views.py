"""B0 baselines for the benchmarks: a hello-world view and a primary-key lookup.

Not mounted by ``mesoclinic.urls``: the benchmark serves this module as its URLconf, which
adds the two baselines in front of every real route, so that production never has an
unauthenticated page that touches the database and the benchmark measures the real pages
behind the same middleware.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.urls import include, path

from patients.models import Patient

handler403 = "mesoclinic.views.error_403"
handler404 = "mesoclinic.views.error_404"


def hello(request: HttpRequest) -> HttpResponse:
    """The cheapest page Django can serve here: no database, no template."""
    return HttpResponse("ok", content_type="text/plain")


def pk_lookup(request: HttpRequest, patient_id: int) -> HttpResponse:
    """One indexed row by primary key: the cheapest page that reads the database."""
    patient = get_object_or_404(Patient.objects.only("id"), pk=patient_id)
    return HttpResponse(str(patient.pk), content_type="text/plain")


urlpatterns = [
    path("bench/hello/", hello, name="bench_hello"),
    path("bench/pk/<int:patient_id>/", pk_lookup, name="bench_pk_lookup"),
    path("", include("mesoclinic.urls")),
]
