from django.urls import path

from patients import views

urlpatterns = [
    path("", views.patient_list, name="patient_list"),
    path("new/", views.patient_create, name="patient_create"),
    path("<int:patient_id>/", views.patient_detail, name="patient_detail"),
    path("<int:patient_id>/edit/", views.patient_update, name="patient_update"),
    path("<int:patient_id>/archive/", views.patient_archive, name="patient_archive"),
    path("<int:patient_id>/restore/", views.patient_restore, name="patient_restore"),
    path("<int:patient_id>/export.json", views.patient_export, name="patient_export"),
]
