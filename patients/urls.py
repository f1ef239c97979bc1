from django.urls import include, path

from patients.views import registry

urlpatterns = [
    path("", registry.patient_list, name="patient_list"),
    path("new/", registry.patient_create, name="patient_create"),
    path("<int:patient_id>/", registry.patient_detail, name="patient_detail"),
    path("<int:patient_id>/edit/", registry.patient_update, name="patient_update"),
    path("<int:patient_id>/archive/", registry.patient_archive, name="patient_archive"),
    path("<int:patient_id>/restore/", registry.patient_restore, name="patient_restore"),
    path("<int:patient_id>/export.json", registry.patient_export, name="patient_export"),
    path("", include("patients.urls_clinical")),
    path("", include("patients.urls_consent")),
    path("", include("patients.urls_photos")),
]
