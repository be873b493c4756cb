"""The emulator's job scheduler: one background worker, a time-ordered queue, and lazy settling.

Every asynchronous resource goes through two events:

* ``run`` (due a quarter of ``min_job_seconds`` after creation, so ``CREATE PENDING`` is observable):
  the worker thread marks the resource in progress and does the work (import, training, batch job);
  the result is stored as the resource's ``_outcome`` together with ``readyAt`` =
  max(work done, created + ``min_job_seconds``);
* ``finish`` (due at ``readyAt``): the outcome becomes the visible status. Request threads call
  :meth:`JobScheduler.settle` before answering, so a finish is applied on time even while the single
  worker is busy training something else.

Work runs on one thread so the emulator never uses more than one core for jobs.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)


class JobScheduler:
    """Time-ordered ``run`` / ``finish`` events executed by one daemon worker thread.

    :param run: ``run(arn)`` does the work of a job; returns the time its outcome becomes visible
        (or ``None`` when there is nothing to finish, e.g. the resource disappeared).
    :param finish: ``finish(arn)`` applies a stored outcome.
    """

    def __init__(self, run: Callable[[str], float | None], finish: Callable[[str], None], name: str) -> None:
        self._run = run
        self._finish = finish
        self._heap: list[tuple[float, int, str, str]] = []
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._settle_lock = threading.Lock()
        self._stopping = False
        self._busy = False
        self._thread = threading.Thread(target=self._loop, name=f"{name}-jobs", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 60.0) -> None:
        """Stop after the job being worked on (if any) is done."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def schedule_run(self, arn: str, due: float) -> None:
        self._push(due, "run", arn)

    def schedule_finish(self, arn: str, due: float) -> None:
        self._push(due, "finish", arn)

    def _push(self, due: float, action: str, arn: str) -> None:
        with self._cond:
            heapq.heappush(self._heap, (due, next(self._seq), action, arn))
            self._cond.notify_all()

    def settle(self) -> None:
        """Apply every ``finish`` that is due now (cheap; called by request threads)."""
        now = time.time()
        due: list[str] = []
        with self._cond:
            keep: list[tuple[float, int, str, str]] = []
            while self._heap and self._heap[0][0] <= now:
                event = heapq.heappop(self._heap)
                if event[2] == "finish":
                    due.append(event[3])
                else:
                    keep.append(event)
            for event in keep:
                heapq.heappush(self._heap, event)
        with self._settle_lock:
            for arn in due:
                self._safe(self._finish, arn)

    def _safe(self, fn: Callable[[str], object], arn: str) -> object:
        try:
            return fn(arn)
        except Exception:  # a bug must not kill the worker
            log.exception("personalize emulator: job step failed for %s", arn)
            return None

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._stopping and (not self._heap or self._heap[0][0] > time.time()):
                    timeout = self._heap[0][0] - time.time() if self._heap else None
                    self._cond.wait(timeout if timeout is None else max(timeout, 0.0))
                if self._stopping:
                    return
                _, _, action, arn = heapq.heappop(self._heap)
            if action == "finish":
                with self._settle_lock:
                    self._safe(self._finish, arn)
                continue
            ready = self._safe(self._run, arn)
            if isinstance(ready, int | float):
                self.schedule_finish(arn, float(ready))
