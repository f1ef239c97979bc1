from django.urls import path

from treatments.views import plans, sessions

urlpatterns = [
    path("patients/<int:patient_id>/plans/", plans.patient_plans, name="patient_plans"),
    path("patients/<int:patient_id>/plans/new/", plans.plan_new, name="plan_new"),
    path("plans/<int:plan_id>/", plans.plan_detail, name="plan_detail"),
    path("plans/<int:plan_id>/builder/", plans.plan_builder, name="plan_builder"),
    path("plans/<int:plan_id>/status/", plans.plan_transition, name="plan_transition"),
    path("plans/<int:plan_id>/sessions/new/", sessions.session_record, name="session_record"),
    path("sessions/<int:session_id>/", sessions.session_detail, name="session_detail"),
]
