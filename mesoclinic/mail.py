from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Sequence
from typing import Any

from django.conf import settings
from django.core.mail.backends.base import BaseEmailBackend
from django.core.mail.message import EmailMessage
from django.utils import timezone

logger = logging.getLogger("mesoclinic.mail")


class FolderEmailBackend(BaseEmailBackend):
    """Writes every message as an ``.eml`` file under EMAIL_FOLDER and logs a line.

    Used when no SMTP server is configured, so a person trying the app can open
    exactly what a patient would receive.
    """

    def __init__(self, fail_silently: bool = False, **kwargs: Any) -> None:
        super().__init__(fail_silently=fail_silently, **kwargs)
        self.folder = settings.EMAIL_FOLDER

    def send_messages(self, email_messages: Sequence[EmailMessage]) -> int:
        self.folder.mkdir(parents=True, exist_ok=True)
        sent = 0
        for message in email_messages:
            stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
            slug = re.sub(r"[^a-z0-9]+", "-", message.subject.lower())[:40].strip("-") or "message"
            path = self.folder / f"{stamp}-{slug}-{uuid.uuid4().hex[:8]}.eml"
            path.write_bytes(message.message().as_bytes(linesep="\n"))
            logger.info("mail to %s: %s (%s)", ", ".join(message.recipients()), message.subject, path.name)
            sent += 1
        return sent
