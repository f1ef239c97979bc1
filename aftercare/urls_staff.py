from __future__ import annotations

from django.urls import path

from aftercare import views_staff as views

urlpatterns = [
    path("outbox/", views.outbox_list, name="outbox_list"),
    path("<int:message_id>/", views.message_detail, name="message_detail"),
    path("<int:message_id>/resend/", views.message_resend_view, name="message_resend"),
    path("aftercare-templates/", views.aftercare_templates, name="aftercare_templates"),
    path(
        "aftercare-templates/<str:key>/<str:language>/",
        views.aftercare_template_edit,
        name="aftercare_template_edit",
    ),
    path("plans/<int:plan_id>/email/", views.plan_email, name="plan_email"),
]
