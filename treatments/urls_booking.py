from django.urls import path

from treatments.views import booking

urlpatterns = [
    path("calendar/", booking.calendar_day, name="calendar_day"),
    path("calendar/week/", booking.calendar_week, name="calendar_week"),
    path("calendar/book/", booking.appointment_new, name="appointment_new"),
    path("calendar/appointments/<int:appointment_id>/", booking.appointment_action, name="appointment_action"),
    path(
        "calendar/appointments/<int:appointment_id>/detail/",
        booking.appointment_detail,
        name="appointment_detail",
    ),
]
