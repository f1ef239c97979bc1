"""Writes to the outbox (``outbox``) and the sending state machine (``sending``)."""

from __future__ import annotations

from aftercare.services.outbox import (
    SAFETY_KINDS,
    message_allowed,
    message_cancel_pending,
    message_is_safety,
    message_queue,
    message_resend,
    outbox_pending_count,
)
from aftercare.services.sending import (
    ALERT_KIND,
    MAX_ATTEMPTS,
    message_header_id,
    message_send,
    message_send_batch,
    message_sweep_due,
)

__all__ = [
    "ALERT_KIND",
    "MAX_ATTEMPTS",
    "SAFETY_KINDS",
    "message_allowed",
    "message_cancel_pending",
    "message_header_id",
    "message_is_safety",
    "message_queue",
    "message_resend",
    "message_send",
    "message_send_batch",
    "message_sweep_due",
    "outbox_pending_count",
]
