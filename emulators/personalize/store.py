"""SQLite-backed resource store of the Personalize emulator (one JSON row per resource).

Every resource (dataset group, schema, dataset, import job, solution, solution version, filter,
campaign, batch inference job, batch segment job) is a row ``(arn, kind, name, parent, created, data)``
where ``data`` is the resource's JSON document: the model's member names (timestamps as epoch
seconds) plus private keys starting with ``_`` (job outcome, tags, ...). The file lives under the
state folder, so an emulator restart loses nothing.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

_SCHEMA = """
CREATE TABLE IF NOT EXISTS resources (
    seq     INTEGER PRIMARY KEY AUTOINCREMENT,
    arn     TEXT NOT NULL UNIQUE,
    kind    TEXT NOT NULL,
    name    TEXT NOT NULL,
    parent  TEXT,
    created REAL NOT NULL,
    data    TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS resources_kind_name ON resources (kind, name);
CREATE INDEX IF NOT EXISTS resources_kind_parent ON resources (kind, parent);
"""


class Store:
    """Thread-safe access to the resources table (one connection, one lock)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Hold the lock (re-entrant) and run the body in one SQLite transaction."""
        with self._lock:
            if self._conn.in_transaction:
                yield
                return
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    # -- writes ------------------------------------------------------------------------------------
    def insert(self, kind: str, arn: str, name: str, parent: str | None, data: dict[str, Any]) -> None:
        with self._lock:
            self._conn.execute(
                "INSERT INTO resources (arn, kind, name, parent, created, data) VALUES (?, ?, ?, ?, ?, ?)",
                (arn, kind, name, parent, data.get("creationDateTime", time.time()), json.dumps(data)),
            )

    def put(self, arn: str, data: dict[str, Any]) -> None:
        with self._lock:
            self._conn.execute("UPDATE resources SET data = ? WHERE arn = ?", (json.dumps(data), arn))

    def update(self, arn: str, change: Callable[[dict[str, Any]], None]) -> dict[str, Any] | None:
        """Apply ``change`` to the stored document atomically; returns the new document."""
        with self.transaction():
            data = self.get(arn)
            if data is None:
                return None
            change(data)
            self.put(arn, data)
            return data

    def delete(self, arn: str) -> None:
        with self._lock:
            self._conn.execute("DELETE FROM resources WHERE arn = ?", (arn,))

    # -- reads -------------------------------------------------------------------------------------
    def get(self, arn: str, kind: str | None = None) -> dict[str, Any] | None:
        with self._lock:
            if kind is None:
                row = self._conn.execute("SELECT data FROM resources WHERE arn = ?", (arn,)).fetchone()
            else:
                row = self._conn.execute(
                    "SELECT data FROM resources WHERE arn = ? AND kind = ?", (arn, kind)
                ).fetchone()
        return json.loads(row[0]) if row else None

    def kind_of(self, arn: str) -> str | None:
        with self._lock:
            row = self._conn.execute("SELECT kind FROM resources WHERE arn = ?", (arn,)).fetchone()
        return row[0] if row else None

    def find(
        self, kind: str, *, name: str | None = None, parent: str | None = None, newest_first: bool = True
    ) -> list[dict[str, Any]]:
        sql = "SELECT data FROM resources WHERE kind = ?"
        args: list[Any] = [kind]
        if name is not None:
            sql += " AND name = ?"
            args.append(name)
        if parent is not None:
            sql += " AND parent = ?"
            args.append(parent)
        sql += " ORDER BY seq DESC" if newest_first else " ORDER BY seq ASC"
        with self._lock:
            rows = self._conn.execute(sql, args).fetchall()
        return [json.loads(r[0]) for r in rows]

    def all_rows(self) -> list[tuple[str, str, dict[str, Any]]]:
        """``(kind, arn, data)`` of every resource, oldest first."""
        with self._lock:
            rows = self._conn.execute("SELECT kind, arn, data FROM resources ORDER BY seq ASC").fetchall()
        return [(k, a, json.loads(d)) for k, a, d in rows]
