from __future__ import annotations

from django.urls import path

from treatments.views import adverse

urlpatterns = [
    path("patients/<int:patient_id>/side-effects/", adverse.adverse_list, name="adverse_list"),
    path("patients/<int:patient_id>/side-effects/new/", adverse.adverse_create, name="adverse_create"),
    path("side-effects/<int:event_id>/", adverse.adverse_detail, name="adverse_detail"),
    path("side-effects/<int:event_id>/follow-up/", adverse.adverse_follow_up, name="adverse_follow_up"),
    path("side-effects/<int:event_id>/resolve/", adverse.adverse_resolve, name="adverse_resolve"),
    path("follow-ups/", adverse.followups_due, name="followups_due"),
]
