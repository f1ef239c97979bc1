from django.urls import path

from patients.views import clinical

urlpatterns = [
    path("<int:patient_id>/history/", clinical.history_detail, name="history_detail"),
    path("<int:patient_id>/history/edit/", clinical.history_edit, name="history_edit"),
    path("<int:patient_id>/history/confirm/", clinical.history_confirm, name="history_confirm"),
    path("<int:patient_id>/consultations/new/", clinical.consultation_new, name="consultation_new"),
    path(
        "<int:patient_id>/consultations/<int:consultation_id>/",
        clinical.consultation_detail,
        name="consultation_detail",
    ),
]
