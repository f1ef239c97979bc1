from django.urls import path

from patients.views import clinical, rules

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

urlpatterns += [
    path("contraindication-rules/", rules.rule_list, name="rule_list"),
    path("contraindication-rules/new/", rules.rule_edit, name="rule_create"),
    path("contraindication-rules/<int:rule_id>/", rules.rule_edit, name="rule_edit"),
]
