"""Patients' links, mounted at /p/ (no account; the token is the only key)."""

from __future__ import annotations

from django.urls import path

from aftercare import views_patient

urlpatterns = [
    path("<str:token>/", views_patient.patient_link, name="patient_link"),
    path("<str:token>/pdf/", views_patient.patient_link_pdf, name="patient_link_pdf"),
    path("<str:token>/confirm/", views_patient.patient_link_confirm, name="patient_link_confirm"),
    path("<str:token>/cancel/", views_patient.patient_link_cancel, name="patient_link_cancel"),
]
