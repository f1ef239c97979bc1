from __future__ import annotations

from django.urls import path

from treatments.views import documents

urlpatterns = [
    path("plans/<int:plan_id>/pdf/", documents.plan_document_request_view, name="plan_pdf_request"),
    path("plans/<int:plan_id>/pdf/status/", documents.plan_document_status, name="plan_pdf_status"),
    path("plans/<int:plan_id>/pdf/download/", documents.plan_document_download, name="plan_pdf_download"),
]
