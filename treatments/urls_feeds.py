from django.urls import path

from treatments.views import feeds

urlpatterns = [
    path("calendar/feed/<str:token>.ics", feeds.calendar_feed, name="calendar_feed"),
    path("calendar/my-feed/", feeds.calendar_feed_settings, name="calendar_feed_settings"),
    path(
        "staff/<int:user_id>/calendar-feed/revoke/", feeds.calendar_feed_revoke_staff, name="calendar_feed_revoke_staff"
    ),
]
