"""The sending state machine: claim a row, send it over a shared SMTP connection, record it.

SCHEDULED → SENDING (claimed by a conditional update, a few rows at a time) → SENT, or back
to SCHEDULED with a backoff on a temporary error, or FAILED (5xx, or the attempt cap) with
the managers alerted. The sweeper hands due rows to batch tasks and puts back rows a dead
worker left in SENDING. docs/outbox.md explains the guarantees and their limits.
"""

from __future__ import annotations

import logging
import random
import smtplib
import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime, timedelta
from email.utils import parseaddr
from functools import lru_cache, partial
from typing import Any

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.db import InterfaceError, OperationalError, connection, transaction
from django.db.models import F, Q
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from kombu.exceptions import OperationalError as BrokerError
from psycopg import InterfaceError as DriverInterfaceError
from psycopg import OperationalError as DriverOperationalError

from aftercare.models import OutboundMessage

logger = logging.getLogger("mesoclinic.outbox")

MAX_ATTEMPTS = 6
ALERT_KIND = "outbox_failed_alert"
# A batch takes no new row after this long: well inside the task's soft time limit (240 s).
BATCH_SECONDS = 120.0
# Rows claimed per statement. Only the row on the wire can be in doubt when a worker dies;
# the others of its chunk were never sent and simply go again after the lease.
CLAIM_CHUNK = 10

Status = OutboundMessage.Status


def _sending_lease() -> timedelta:
    # Longer than any one SMTP transaction can take (EMAIL_TIMEOUT bounds each exchange),
    # so only a row whose sender is gone is ever taken back.
    return timedelta(seconds=getattr(settings, "OUTBOX_SENDING_LEASE_SECONDS", 300))


def _queued_lease() -> timedelta:
    # How long a row handed to a send task is left to that task before the sweeper hands
    # it again (the task may have been lost with the broker).
    return timedelta(seconds=getattr(settings, "OUTBOX_QUEUED_LEASE_SECONDS", 120))


def _batch_size() -> int:
    return max(1, int(getattr(settings, "OUTBOX_BATCH_SIZE", 50)))


def _sweep_limit() -> int:
    return max(1, int(getattr(settings, "OUTBOX_SWEEP_LIMIT", 5000)))


@lru_cache(maxsize=4)
def _sender_domain(from_email: str) -> str:
    return parseaddr(from_email)[1].rpartition("@")[2] or "mesoclinic.localhost"


def message_header_id(message_id: int) -> str:
    """The Message-ID of an outbox row: the same on every attempt, so a receiver (and we)
    can recognise a duplicate should one ever get through."""
    return f"<outbox-{message_id}@{_sender_domain(settings.DEFAULT_FROM_EMAIL)}>"


def _ics_method(ics: str) -> str:
    # Mail clients act on the part's method parameter, which must match the file's METHOD.
    for line in ics.splitlines():
        if line.upper().startswith("METHOD:"):
            return line.split(":", 1)[1].strip().upper() or "PUBLISH"
    return "PUBLISH"


def _email(message: OutboundMessage, mail: Any) -> EmailMultiAlternatives:
    email = EmailMultiAlternatives(
        subject=message.subject,
        body=message.body_text,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[message.to_email],
        connection=mail,
        headers={"Message-ID": message_header_id(message.pk), "X-MesoClinic-Message": str(message.pk)},
    )
    if message.body_html:
        email.attach_alternative(message.body_html, "text/html")
    if message.ics:
        email.attach("appointment.ics", message.ics, f"text/calendar; method={_ics_method(message.ics)}")
    return email


def _backoff(attempt: int) -> timedelta:
    # 1, 2, 4, 8 … minutes with ±20% jitter so that retries after an outage spread out.
    base = 60 * 2 ** max(attempt - 1, 0)
    return timedelta(seconds=base * random.uniform(0.8, 1.2))  # noqa: S311 - jitter, not security  # not a secret  # nosec B311


def _smtp_code(error: BaseException) -> int | None:
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _text in error.recipients.values()]
        return min(codes) if codes else None
    code = getattr(error, "smtp_code", None)
    return int(code) if code is not None else None


def _is_permanent(error: BaseException) -> bool:
    code = _smtp_code(error)
    if code is not None:
        return 500 <= code < 600
    # A message that cannot be built (a line break in a header, an impossible encoding)
    # will not build better later.
    return isinstance(error, ValueError)


def _connection_unusable(error: BaseException) -> bool:
    """Whether the connection can carry the next message of the batch after ``error``."""
    code = _smtp_code(error)
    if code is not None:
        return code == 421  # "closing channel": smtplib has already closed it
    # A ValueError is raised before a byte goes to the server. Timeouts, resets and anything
    # unexpected leave the SMTP dialogue possibly out of step.
    return not isinstance(error, ValueError)


_TABLE = OutboundMessage._meta.db_table
_CLAIM = (
    f"UPDATE {_TABLE} SET status = %s, claimed_at = %s, attempts = attempts + 1 "  # noqa: S608 - the model's table  # identifiers from the models  # nosec B608
    "WHERE id = ANY(%s) AND status = %s AND due_at <= %s RETURNING *"
)
_SENT = (
    f"UPDATE {_TABLE} SET status = %s, sent_at = %s, last_error = '', provider_message_id = %s "  # noqa: S608  # identifiers from the models  # nosec B608
    "WHERE id = %s"
)


def _claim(message_ids: Sequence[int]) -> list[OutboundMessage]:
    """SCHEDULED → SENDING for those of the rows that are due and unclaimed, in the given order.

    One statement that claims and reads, committed at once: whoever updates a row first
    sends it; a second task, sweeper or retry finds it no longer SCHEDULED."""
    now = timezone.now()
    rows = OutboundMessage.objects.raw(_CLAIM, [Status.SENDING, now, list(message_ids), Status.SCHEDULED, now])
    claimed = {row.pk: row for row in rows}
    return [claimed[pk] for pk in message_ids if pk in claimed]


def _message_sent(message: OutboundMessage) -> None:
    # Unconditional on purpose: the server has the message, whatever happened to the row
    # meanwhile (a lease taken back), so SENT is the truth and stops a second send.
    # A plain statement: this runs once per message, right after the server's 250.
    try:
        _message_sent_id(message.pk)
    except (OperationalError, InterfaceError):
        _message_sent_through_outage(message.pk)


def _message_sent_id(message_id: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute(_SENT, [Status.SENT, timezone.now(), message_header_id(message_id), message_id])


def _message_sent_through_outage(message_id: int) -> None:
    """Record SENT for a message the server has accepted, waiting for the database to come
    back if it has gone (a restart, a failover), for at most half the sending lease.

    Giving up at once would leave the row SENDING, and the sweeper would send the message
    a second time once the lease ran out. The row was claimed moments before it went out,
    so within half the lease no sweeper can have taken it back."""
    deadline = time.monotonic() + _sending_lease().total_seconds() / 2
    pause = 0.1
    while True:
        try:
            connection.close()  # the broken one: the next statement opens a new connection
            _message_sent_id(message_id)
            return
        except (OperationalError, InterfaceError):
            if time.monotonic() + pause > deadline:
                logger.error("message %s was accepted by the mail server but could not be marked sent", message_id)
                raise
            time.sleep(pause)
            pause = min(pause * 2, 2.0)


class _SentMarks:
    """Marks accepted messages SENT from a helper thread, on the task's own database
    connection, while the next message's envelope (MAIL, RCPT) goes to the mail server.

    The round trip to PostgreSQL then costs no time of its own. Nothing is given up for
    it: the next message's DATA, the only step that can deliver it, waits for the mark
    (``guard``), and so does every other use of the connection (``wait``), so at most one
    accepted message is ever unrecorded — the same window as marking it inline."""

    def __init__(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="outbox-sent")
        self._pending: Future[Any] | None = None
        self._pending_id: int | None = None

    def record(self, message: OutboundMessage) -> None:
        self.wait()
        # Same connection (and transaction, if any) as the claim: psycopg serialises use
        # from two threads, and this class ensures there is never any to serialise.
        raw = connection.connection
        params = [Status.SENT.value, timezone.now(), message_header_id(message.pk), message.pk]
        self._pending = self._executor.submit(raw.execute, _SENT, params)
        self._pending_id = message.pk

    def wait(self) -> None:
        if self._pending is not None:
            pending, self._pending = self._pending, None
            try:
                pending.result()
            except (DriverOperationalError, DriverInterfaceError):
                # The server has this message: its mark must reach the database, even if
                # that means waiting for the database to come back.
                assert self._pending_id is not None
                _message_sent_through_outage(self._pending_id)

    def guard(self, mail: Any) -> bool:
        """Make an SMTP connection wait for the last mark before each DATA; False for
        other mail backends (the caller then waits before each send)."""
        smtp = getattr(mail, "connection", None)
        if not isinstance(smtp, smtplib.SMTP):
            return False
        data = smtp.data

        def data_after_mark(msg: bytes) -> tuple[int, bytes]:
            self.wait()
            return data(msg)

        smtp.data = data_after_mark  # type: ignore[method-assign]
        return True

    def close(self) -> None:
        try:
            self.wait()
        finally:
            self._executor.shutdown()


def _unclaim(messages: Sequence[OutboundMessage]) -> None:
    """Give back rows this batch claimed but never put on the wire (no attempt counted)."""
    for message in messages:
        OutboundMessage.objects.filter(pk=message.pk, status=Status.SENDING, claimed_at=message.claimed_at).update(
            status=Status.SCHEDULED, claimed_at=None, attempts=F("attempts") - 1
        )


def _message_failed(message: OutboundMessage, error: BaseException, *, permanent: bool | None = None) -> None:
    text = f"{type(error).__name__}: {error}"[:2000]
    if permanent is None:
        permanent = _is_permanent(error)
    # Fenced by our claim time: if the lease was taken back and the row claimed again,
    # the newer sender owns the row and we leave it alone.
    ours = OutboundMessage.objects.filter(pk=message.pk, status=Status.SENDING, claimed_at=message.claimed_at)
    if permanent or message.attempts >= MAX_ATTEMPTS:
        with transaction.atomic():
            if ours.update(status=Status.FAILED, last_error=text):
                logger.error("message %s failed for good after %s attempt(s): %s", message.pk, message.attempts, text)
                _managers_alert(message)
        return
    due_at = timezone.now() + _backoff(message.attempts)
    if ours.update(status=Status.SCHEDULED, due_at=due_at, claimed_at=None, last_error=text):
        logger.warning("message %s will be retried at %s: %s", message.pk, due_at.isoformat(), text)


def _release(message_ids: Sequence[int]) -> None:
    """Give rows handed to a task back to the next sweep, without counting an attempt."""
    if message_ids:
        OutboundMessage.objects.filter(pk__in=list(message_ids), status=Status.SCHEDULED).update(claimed_at=None)


def _connection_close(mail: Any) -> None:
    try:
        mail.close()
    except Exception:  # the server may be gone already; nothing to undo
        logger.info("outbox: closing the mail connection failed", exc_info=True)


def message_send_batch(*, message_ids: Sequence[int]) -> int:
    """Send the given outbox rows over one mail connection; returns how many were sent now.

    Rows are claimed a few at a time just before they are sent, and each is marked SENT
    right after the server accepts it, so of the rows a killed worker leaves in SENDING
    (taken back by the sweeper after the lease) only the one on the wire may have been
    delivered. Rows already claimed elsewhere, sent, cancelled or not due are skipped.
    If the connection breaks, the rest of the batch goes back to the next sweep without
    counting an attempt."""
    pending = list(dict.fromkeys(message_ids))
    deadline = time.monotonic() + BATCH_SECONDS
    claimed: list[OutboundMessage] = []
    marks = _SentMarks()
    mail = None
    guarded = False
    sent = 0
    try:
        while (claimed or pending) and time.monotonic() < deadline:
            if not claimed:
                marks.wait()
                claimed = _claim(pending[:CLAIM_CHUNK])
                del pending[:CLAIM_CHUNK]
                continue
            message = claimed.pop(0)
            if mail is None:
                mail = get_connection()
                try:
                    mail.open()
                except Exception as error:  # noqa: BLE001 - recorded on the row, retried later
                    # Refused, timed out, or refused our credentials: about the server,
                    # not the message, so never a permanent failure of the message.
                    marks.wait()
                    _message_failed(message, error, permanent=False)
                    mail = None
                    break
                guarded = marks.guard(mail)
            if not guarded:
                marks.wait()
            try:
                count = mail.send_messages([_email(message, mail)])
            except Exception as error:  # noqa: BLE001 - every failure is recorded on the row
                marks.wait()
                _message_failed(message, error)
                if _connection_unusable(error):
                    break
                continue
            if not count:
                marks.wait()
                _message_failed(message, ValueError("the mail backend accepted no recipient"))
                continue
            marks.record(message)
            sent += 1
    finally:
        marks.close()
        _unclaim(claimed)
        _release(pending)
        if mail is not None:
            _connection_close(mail)
    return sent


def message_send(*, message_id: int) -> bool:
    """Send one outbox row if it is still due and unclaimed. Returns whether it was sent now."""
    return message_send_batch(message_ids=[message_id]) == 1


def _managers_alert(message: OutboundMessage) -> None:
    """Queue one email per active manager saying a message failed for good (once per message).

    Only the kind and the row's number: the outbox page behind the link shows the rest to
    whoever may see it."""
    from aftercare.services.outbox import message_queue
    from mesoclinic.access import Role
    from mesoclinic.models import User

    if message.kind == ALERT_KIND:
        # An alert that cannot be delivered is not alerted about by email again.
        logger.error("outbox alert %s to %s could not be delivered", message.pk, message.to_email)
        return
    managers = (
        User.objects.filter(Q(groups__name=Role.MANAGER.value) | Q(is_superuser=True), is_active=True)
        .exclude(email="")
        .distinct()
        .order_by("pk")
    )
    context = {
        "number": message.pk,
        "kind": message.kind,
        "link": f"{settings.SITE_URL}/messages/outbox/",
        "clinic": settings.CLINIC_NAME,
    }
    # Staff have no language of their own: the clinic's language.
    with translation.override(settings.LANGUAGE_CODE):
        subject = _("An email could not be delivered")
        body_text = (
            _(
                "An email could not be delivered and will not be retried.\n\n"
                "Message no. %(number)s (%(kind)s)\n\n"
                "Open the outbox to see it and send it again:\n%(link)s"
            )
            % context
            + f"\n\n-- \n{context['clinic']}\n"
        )
    for user in managers:
        message_queue(
            kind=ALERT_KIND,
            to_email=user.email,
            subject=subject,
            body_text=body_text,
            dedupe_key=f"{ALERT_KIND}:{message.pk}:{user.pk}",
            language=settings.LANGUAGE_CODE,
        )


def _sending_recover(now: datetime) -> int:
    """Put rows left in SENDING longer than the lease (their worker died) back to SCHEDULED.

    A row at the attempt cap is failed instead, so a message that kills its worker every
    time cannot loop for ever."""
    stuck = OutboundMessage.objects.filter(status=Status.SENDING, claimed_at__lt=now - _sending_lease())
    recovered = stuck.filter(attempts__lt=MAX_ATTEMPTS).update(
        status=Status.SCHEDULED,
        claimed_at=None,
        last_error="interrupted while sending (worker lost); sending again",
    )
    if recovered:
        logger.warning("outbox: %s message(s) left in sending taken back", recovered)
    for message in stuck.filter(attempts__gte=MAX_ATTEMPTS):
        with transaction.atomic():
            updated = OutboundMessage.objects.filter(
                pk=message.pk, status=Status.SENDING, claimed_at=message.claimed_at
            ).update(status=Status.FAILED, last_error="interrupted while sending, attempts exhausted")
            if updated:
                _managers_alert(message)
    return recovered


def _batches_publish(batches: list[list[int]]) -> None:
    from aftercare.tasks import message_send_batch as task

    for position, batch in enumerate(batches):
        try:
            task.apply_async(args=[batch])
        except (BrokerError, OSError) as error:
            # Stop at the first failure (each publish retries for a while) and give the rows
            # straight back to the next sweep rather than waiting out the queued lease.
            unpublished = [pk for rest in batches[position:] for pk in rest]
            logger.error(
                "outbox: broker unavailable, %s message(s) left for the next sweep: %s", len(unpublished), error
            )
            _release(unpublished)
            return


def message_sweep_due() -> list[int]:
    """Hand due rows to batch send tasks (beat runs this every minute); returns their ids.

    Also takes back rows a dead worker left in SENDING. The rows are picked with
    ``select_for_update(skip_locked=True)`` and marked as handed over (``claimed_at`` on
    a SCHEDULED row), so a second sweeper running at the same time, or the next one,
    does not hand them again while their task is queued."""
    now = timezone.now()
    _sending_recover(now)
    size = _batch_size()
    with transaction.atomic():
        ids = list(
            OutboundMessage.objects.select_for_update(skip_locked=True)
            .filter(status=Status.SCHEDULED, due_at__lte=now)
            .filter(Q(claimed_at__isnull=True) | Q(claimed_at__lte=now - _queued_lease()))
            .order_by("due_at", "pk")
            .values_list("pk", flat=True)[: _sweep_limit()]
        )
        if ids:
            OutboundMessage.objects.filter(pk__in=ids).update(claimed_at=now)
            batches = [ids[start : start + size] for start in range(0, len(ids), size)]
            transaction.on_commit(partial(_batches_publish, batches))
    return ids
