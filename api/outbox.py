"""Notices reach someone: the outbox table, delivered to the configured webhooks.

Every notice (`store.notify`) is a row written in the same transaction as the change it reports, so
a notice exists exactly when its change does. A delivery thread claims due rows (a lease: its
`next_attempt_at` moves past the request's timeout, and on PostgreSQL `FOR UPDATE SKIP LOCKED`
keeps two processes off the same row), POSTs each to every webhook that has not yet accepted it,
signed (`X-Fieldplan-Signature: sha256=<HMAC of the body>`) and named (`X-Fieldplan-Notice-Id`, so
a receiver that gets a retry after a lost answer drops the duplicate), and records the outcome:
`delivered` when every webhook answered 2xx, else retried with exponential backoff until
`webhook_max_attempts`, then `failed` with the last error.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
import urllib.error
import urllib.request
from datetime import timedelta

from sqlalchemy import select, update

from api.context import Service
from api.tables import NoticeRow

log = logging.getLogger("fieldplan.outbox")
#: A webhook that has not answered by then counts as failed (and the claim's lease is longer).
TIMEOUT_SECONDS = 10.0
BATCH = 50


def body_of(row: NoticeRow) -> bytes:
    """What a webhook receives: the notice, with the customer's contact details where it has them."""
    return json.dumps(
        {
            "id": row.id,
            "at": row.at.isoformat(),
            "audience": row.audience,
            "kind": row.kind,
            "subject": row.subject,
            "technician_id": row.technician_id,
            "job_id": row.job_id,
            "plan_version_id": row.plan_version_id,
            "recipient": row.recipient,
            "message": row.message,
            "detail": row.detail,
        },
        sort_keys=True,
        separators=(",", ":"),
    ).encode()


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _post(url: str, body: bytes, headers: dict[str, str]) -> None:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as answer:
        if not 200 <= answer.status < 300:
            raise RuntimeError(f"HTTP {answer.status}")


def deliver_due(service: Service) -> int:
    """One pass: deliver the notices that are due; returns how many were attempted."""
    settings = service.settings
    if not settings.webhook_urls or not settings.webhook_secret:
        return 0
    now = service.now()
    with service.sessions.begin() as session:
        query = (
            select(NoticeRow)
            .where(NoticeRow.delivery == "pending", NoticeRow.next_attempt_at <= now)
            .order_by(NoticeRow.id)
            .limit(BATCH)
        )
        if session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        claimed = list(session.scalars(query))
        lease = now + timedelta(seconds=TIMEOUT_SECONDS * (len(settings.webhook_urls) + 1) * 2)
        work: list[tuple[int, bytes, list[str]]] = []
        for row in claimed:
            # Compare-and-set: of two processes that read the same row (SQLite has no SKIP LOCKED),
            # only the one whose lease lands sends it.
            taken = session.execute(
                update(NoticeRow)
                .where(NoticeRow.id == row.id, NoticeRow.next_attempt_at == row.next_attempt_at)
                .values(next_attempt_at=lease)
                .execution_options(synchronize_session=False)
            )
            if taken.rowcount == 1:  # type: ignore[attr-defined]
                work.append((row.id, body_of(row), list(row.delivered_to or [])))
    for notice_id, body, done in work:
        errors: list[str] = []
        for url in settings.webhook_urls:
            if url in done:
                continue
            headers = {
                "Content-Type": "application/json",
                "User-Agent": "fieldplan-webhook",
                "X-Fieldplan-Notice-Id": str(notice_id),
                "X-Fieldplan-Signature": signature(settings.webhook_secret, body),
            }
            try:
                _post(url, body, headers)
                done.append(url)
            except (urllib.error.URLError, OSError, RuntimeError, ValueError) as exc:
                errors.append(f"{url}: {exc}")
        _record(service, notice_id, done, errors)
    return len(work)


def _record(service: Service, notice_id: int, done: list[str], errors: list[str]) -> None:
    settings = service.settings
    now = service.now()
    with service.sessions.begin() as session:
        row = session.get(NoticeRow, notice_id)
        if row is None:
            return
        row.delivered_to = done
        row.attempts = (row.attempts or 0) + 1
        if not errors:
            row.delivery, row.delivered_at, row.next_attempt_at, row.last_error = "delivered", now, None, None
            return
        row.last_error = "; ".join(errors)[:2000]
        if row.attempts >= settings.webhook_max_attempts:
            row.delivery, row.next_attempt_at = "failed", None
            log.warning("notice %s: giving up after %s attempts: %s", notice_id, row.attempts, row.last_error)
            return
        backoff = min(3600.0, settings.webhook_retry_seconds * 2 ** (row.attempts - 1))
        row.next_attempt_at = now + timedelta(seconds=backoff)


class Deliverer:
    """The delivery thread of one service process (started with the app when webhooks are set)."""

    def __init__(self, service: Service, every: float = 1.0) -> None:
        self.service = service
        self.every = every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="outbox", daemon=True)

    def start(self) -> Deliverer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=TIMEOUT_SECONDS + 2)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                while deliver_due(self.service) and not self._stop.is_set():
                    pass
            except Exception:  # a database hiccup: the next pass retries, nothing is lost
                log.exception("notice delivery pass failed")
            self._stop.wait(self.every)
