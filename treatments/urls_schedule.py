from django.urls import path

from treatments.views import schedule

urlpatterns = [
    path("settings/locations/", schedule.location_list, name="location_list"),
    path("settings/locations/new/", schedule.location_create, name="location_create"),
    path("settings/locations/<int:location_id>/", schedule.location_edit, name="location_edit"),
    path("settings/working-hours/<int:user_id>/", schedule.working_hours_edit, name="working_hours_edit"),
    path("settings/closures/", schedule.closure_list, name="closure_list"),
    path("settings/closures/<int:exception_id>/remove/", schedule.closure_remove, name="closure_remove"),
    path("settings/appointment-kinds/", schedule.kind_durations, name="kind_durations"),
    path("calendar/no-shows/", schedule.no_show_report, name="no_show_report"),
]
