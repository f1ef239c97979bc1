from __future__ import annotations

import signal
import subprocess
import sys
import time
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from mesoclinic.management.commands.demo_seed import DEMO_PASSWORD, DEMO_USERS


class Command(BaseCommand):
    help = "Run web, Celery worker and Celery beat in the foreground; Ctrl-C stops all three."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--host", default="127.0.0.1")

    def handle(self, *args: Any, port: int, host: str, **options: Any) -> None:
        python = sys.executable
        (settings.VAR_DIR / "celery").mkdir(parents=True, exist_ok=True)
        web = (
            [python, "manage.py", "runserver", f"{host}:{port}", "--noreload"]
            if settings.DEBUG
            else [
                python,
                "-m",
                "gunicorn",
                "mesoclinic.wsgi",
                "-b",
                f"{host}:{port}",
                "-k",
                "gthread",
                "--threads",
                "8",
            ]
        )
        commands = {
            "web": web,
            "worker": [python, "-m", "celery", "-A", "mesoclinic", "worker", "-l", "info", "-c", "2"],
            "beat": [python, "-m", "celery", "-A", "mesoclinic", "beat", "-l", "info"],
        }
        processes = {name: subprocess.Popen(cmd) for name, cmd in commands.items()}  # noqa: S603  # fixed argv  # nosec B603
        url = f"http://{host}:{port}/"
        self.stdout.write(self.style.SUCCESS(f"\nMesoClinic is starting at {url}"))
        self.stdout.write(f"Demo logins (password {DEMO_PASSWORD}):")
        for email, name, role, _ in DEMO_USERS:
            self.stdout.write(f"  {email:<28} {role.value:<13} {name}")
        mail = settings.EMAIL_FOLDER if not settings.EMAIL_HOST else settings.EMAIL_HOST
        self.stdout.write(f"Outgoing mail: {mail}\nCtrl-C stops web, worker and beat.\n")
        stopping = False

        def stop(*_: Any) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        try:
            while not stopping:
                for name, process in processes.items():
                    if process.poll() is not None:
                        self.stderr.write(f"{name} exited with {process.returncode}; stopping the others")
                        stopping = True
                time.sleep(0.5)
        finally:
            for process in processes.values():
                if process.poll() is None:
                    process.send_signal(signal.SIGTERM)
            for process in processes.values():
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()
