from __future__ import annotations

from django.conf import settings
from django.contrib import admin
from django.urls import include, path

from mesoclinic import views

handler403 = "mesoclinic.views.error_403"
handler404 = "mesoclinic.views.error_404"

urlpatterns = [
    path("", views.home, name="home"),
    path("dashboard/", views.dashboard, name="dashboard"),
    path("manage/status/", views.system_status, name="system_status"),
    path("manage/status/test-email/", views.system_test_email, name="system_test_email"),
    path(
        "manage/status/test-email/<int:message_id>/",
        views.system_test_email_progress,
        name="system_test_email_progress",
    ),
    path("manage/status/test-pdf/", views.system_test_pdf, name="system_test_pdf"),
    path("manage/status/test-pdf/<int:job_id>/", views.system_test_pdf_progress, name="system_test_pdf_progress"),
    path(
        "manage/status/test-pdf/<int:job_id>/download/",
        views.system_test_pdf_download,
        name="system_test_pdf_download",
    ),
    path("manage/audit/", views.audit_log, name="audit_log"),
    path("manage/staff/", views.staff_list, name="staff_list"),
    path("manage/staff/new/", views.staff_create, name="staff_create"),
    path("manage/staff/<int:user_id>/", views.staff_update, name="staff_update"),
    path("manage/staff/<int:user_id>/password-link/", views.staff_password_link, name="staff_password_link"),
    path("patients/", include("patients.urls")),
    path("treatments/", include("treatments.urls")),
    path("messages/", include("aftercare.urls_staff")),
    # Patients' links (no account): short, so that they survive being copied by hand.
    path("p/", include("aftercare.urls_patient")),
    path("accounts/", include("allauth.urls")),
    path("i18n/", include("django.conf.urls.i18n")),
    path(settings.ADMIN_URL, admin.site.urls),
]
