from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from mesoclinic.embedded import embedded_database_stop


class Command(BaseCommand):
    help = "Show or stop the embedded PostgreSQL under var/ (used when DATABASE_URL is unset)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=["status", "stop"])

    def handle(self, *args: Any, action: str, **options: Any) -> None:
        if settings.DATABASE_URL:
            self.stdout.write("DATABASE_URL is set: the embedded server is not used.")
            return
        if action == "stop":
            embedded_database_stop(settings.VAR_DIR / "pgdata")
            self.stdout.write("embedded PostgreSQL stopped")
        else:
            db = settings.DATABASES["default"]
            self.stdout.write(f"embedded PostgreSQL running: socket {db['HOST']}, database {db['NAME']}")
