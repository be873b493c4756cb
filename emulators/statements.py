"""Statements that run in the background: the shared backend part of the Redshift Data and Athena emulators.

Both services take a SQL text, answer with an id at once, run it, and let the caller poll a status
and cancel. :class:`StatementStore` keeps one JSON document per statement in SQLite under the
emulator's state folder (a restart loses nothing: a statement that was running when the emulator
stopped is failed on start, see :meth:`StatementStore.fail_unfinished`), and :class:`StatementRunner`
runs them on a small pool of daemon threads, each with a :class:`CancelToken` the work checks and the
cancel call fires (closing a database cursor, interrupting DuckDB).
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


class StatementStore:
    """Thread-safe ``id -> JSON document`` table in ``path`` (SQLite)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute(
            "CREATE TABLE IF NOT EXISTS statements (id TEXT PRIMARY KEY, created REAL, data TEXT NOT NULL)"
        )

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def put(self, statement_id: str, doc: dict[str, Any]) -> None:
        with self._lock:
            self._conn.execute(
                "INSERT OR REPLACE INTO statements (id, created, data) VALUES (?, ?, ?)",
                (statement_id, time.time(), json.dumps(doc)),
            )

    def get(self, statement_id: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._conn.execute("SELECT data FROM statements WHERE id = ?", (statement_id,)).fetchone()
        return json.loads(row[0]) if row else None

    def update(self, statement_id: str, **changes: Any) -> dict[str, Any]:
        """Merge ``changes`` into the document (atomically) and return it."""
        with self._lock:
            doc = self.get(statement_id)
            if doc is None:
                raise KeyError(statement_id)
            doc.update(changes)
            self._conn.execute("UPDATE statements SET data = ? WHERE id = ?", (json.dumps(doc), statement_id))
            return doc

    def transition(self, statement_id: str, allowed: Iterable[str], **changes: Any) -> dict[str, Any] | None:
        """:meth:`update` only if the document's ``status`` is in ``allowed``; else ``None``."""
        with self._lock:
            doc = self.get(statement_id)
            if doc is None or doc.get("status") not in set(allowed):
                return None
            return self.update(statement_id, **changes)

    def all(self) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._conn.execute("SELECT data FROM statements ORDER BY created").fetchall()
        return [json.loads(r[0]) for r in rows]

    def fail_unfinished(self, unfinished: Iterable[str], **changes: Any) -> int:
        """Mark every statement still in an ``unfinished`` status with ``changes`` (on start)."""
        states = set(unfinished)
        count = 0
        for doc in self.all():
            if doc.get("status") in states:
                self.update(doc["id"], **changes)
                count += 1
        return count


class CancelToken:
    """Set by a cancel call; the running work registers what stops it (:meth:`on_cancel`)."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self._lock = threading.Lock()
        self._callbacks: list[Callable[[], None]] = []

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def on_cancel(self, callback: Callable[[], None]) -> None:
        with self._lock:
            self._callbacks.append(callback)
            fire = self._event.is_set()
        if fire:
            self._safe(callback)

    def cancel(self) -> None:
        with self._lock:
            self._event.set()
            callbacks = list(self._callbacks)
        for callback in callbacks:
            self._safe(callback)

    def wait(self, seconds: float) -> bool:
        """Sleep up to ``seconds``; True when cancelled meanwhile."""
        return self._event.wait(seconds)

    @staticmethod
    def _safe(callback: Callable[[], None]) -> None:
        try:
            callback()
        except Exception:  # pragma: no cover - best effort, the work also checks ``cancelled``
            log.exception("cancel callback failed")


class Cancelled(Exception):
    """Raised by a statement's work when its :class:`CancelToken` fired."""


@dataclass(frozen=True)
class Lifecycle:
    """
    How one service walks a statement's status: ``steps`` are the statuses entered before the work
    (each from the previous ones), ``running`` every status a cancel or an outcome may leave, and the
    changes of each outcome. ``failure`` turns the exception the work raised into the document's
    changes (its message is what the service reports).
    """

    steps: tuple[str, ...]
    running: tuple[str, ...]
    succeeded: Callable[[], dict[str, Any]]
    cancelled: Callable[[], dict[str, Any]]
    failure: Callable[[BaseException], dict[str, Any]]
    min_seconds: float = 0.0


def run_statement(
    store: StatementStore,
    statement_id: str,
    token: CancelToken,
    work: Callable[[dict[str, Any], CancelToken], dict[str, Any]],
    lifecycle: Lifecycle,
) -> None:
    """Walk ``statement_id`` through ``lifecycle`` around ``work(doc, token)`` (its changes are stored
    on success); the running status lasts at least ``lifecycle.min_seconds`` so a poller sees it."""
    started = time.monotonic()
    entered: list[str] = [lifecycle.running[0]]
    for status in lifecycle.steps:
        if store.transition(statement_id, entered, status=status) is None:
            return  # cancelled before it ran
        entered.append(status)
    doc = store.get(statement_id)
    if doc is None:  # pragma: no cover - statements are never deleted
        return
    try:
        changes = work(doc, token)
        remaining = lifecycle.min_seconds - (time.monotonic() - started)
        if (remaining > 0 and token.wait(remaining)) or token.cancelled:
            raise Cancelled()
    except Exception as exc:
        outcome = (
            lifecycle.cancelled() if isinstance(exc, Cancelled) or token.cancelled else lifecycle.failure(exc)
        )
        store.transition(statement_id, lifecycle.running, **outcome)
        return
    store.transition(statement_id, lifecycle.running, **lifecycle.succeeded(), **changes)


class StatementRunner:
    """Run ``work(statement_id, token)`` on ``workers`` daemon threads; :meth:`cancel` fires the token."""

    def __init__(
        self, work: Callable[[str, CancelToken], None], *, workers: int = 2, name: str = "statements"
    ) -> None:
        self._work = work
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=name)
        self._tokens: dict[str, CancelToken] = {}
        self._lock = threading.Lock()

    def submit(self, statement_id: str) -> None:
        token = CancelToken()
        with self._lock:
            self._tokens[statement_id] = token
        self._pool.submit(self._run, statement_id, token)

    def cancel(self, statement_id: str) -> bool:
        """Fire the token of a statement still queued or running; False when it has none."""
        with self._lock:
            token = self._tokens.get(statement_id)
        if token is None:
            return False
        token.cancel()
        return True

    def _run(self, statement_id: str, token: CancelToken) -> None:
        try:
            self._work(statement_id, token)
        except Exception:  # pragma: no cover - the work records its own failures
            log.exception("statement %s: unexpected error", statement_id)
        finally:
            with self._lock:
                self._tokens.pop(statement_id, None)

    def stop(self) -> None:
        with self._lock:
            tokens = list(self._tokens.values())
        for token in tokens:
            token.cancel()
        self._pool.shutdown(wait=True, cancel_futures=True)
