from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class MesoclinicConfig(AppConfig):
    name = "mesoclinic"
    verbose_name = _("Clinic")

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_in

        from mesoclinic.middleware import session_clock_start

        user_logged_in.connect(session_clock_start, dispatch_uid="mesoclinic_session_clock")
