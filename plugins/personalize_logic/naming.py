"""
Deterministic Amazon Personalize job names.

Personalize job names (``jobName`` of dataset import, batch inference and batch segment jobs, and the
``name`` of a solution version) are 1-63 characters long and match ``^[a-zA-Z0-9][a-zA-Z0-9\\-_]*``.
They must also be stable for one (DAG run, task, map index): a retry of the task has to find the job
its previous attempt created instead of starting (and paying for) a second one.

:func:`job_name` builds such a name from a readable part (prefix, task id, run id, cleaned and
truncated) followed by a short hash of the *unmodified* inputs, so two different runs never collide
even when their readable parts are cut to the same text.

Pure module: no Airflow import.
"""

from __future__ import annotations

import hashlib
import re

MAX_JOB_NAME_LENGTH = 63
HASH_LENGTH = 10
JOB_NAME_PATTERN = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9\-_]*$")

_INVALID_CHARS = re.compile(r"[^a-zA-Z0-9\-_]+")
_REPEATED_SEPARATORS = re.compile(r"[-_]{2,}")


def sanitize(text: str) -> str:
    """
    Turn ``text`` into characters a Personalize name accepts.

    Every run of characters outside ``[a-zA-Z0-9-_]`` becomes one ``-``, runs of separators are
    collapsed to their first character and separators are stripped from both ends.

    >>> sanitize("scheduled__2025-01-01T00:00:00+00:00")
    'scheduled_2025-01-01T00-00-00-00-00'
    """
    cleaned = _INVALID_CHARS.sub("-", text)
    cleaned = _REPEATED_SEPARATORS.sub(lambda match: match.group(0)[0], cleaned)
    return cleaned.strip("-_")


def stable_hash(*parts: str, length: int = HASH_LENGTH) -> str:
    """Return the first ``length`` hex digits of the SHA-256 of ``parts`` (unambiguously joined)."""
    digest = hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()
    return digest[:length]


def job_name(prefix: str, dag_id: str, run_id: str, task_id: str, map_index: int | None = -1) -> str:
    """
    Build the deterministic job name for one (DAG run, task, map index).

    The result is ``<readable>-<hash>``: ``readable`` is ``prefix-task_id-run_id`` (plus the map index
    of a mapped task) made safe by :func:`sanitize` and cut so that the whole name fits in
    :data:`MAX_JOB_NAME_LENGTH` characters; ``hash`` is :func:`stable_hash` of all inputs, so the name
    stays unique even when the readable part is truncated or the sanitizer maps two ids to the same
    text.

    :param prefix: Short readable prefix, e.g. ``"import-interactions"``. May be empty.
    :param dag_id: The DAG id.
    :param run_id: The DAG run id.
    :param task_id: The task id.
    :param map_index: The map index of a mapped task instance; ``-1`` or ``None`` when not mapped.
    :return: A name of at most 63 characters matching ``^[a-zA-Z0-9][a-zA-Z0-9\\-_]*``.
    """
    index = -1 if map_index is None else int(map_index)
    digest = stable_hash(prefix, dag_id, run_id, task_id, str(index))
    readable_parts = [prefix, task_id, run_id]
    if index >= 0:
        readable_parts.append(str(index))
    readable = sanitize("-".join(part for part in readable_parts if part))
    budget = MAX_JOB_NAME_LENGTH - len(digest) - 1
    readable = readable[:budget].rstrip("-_")
    name = f"{readable}-{digest}" if readable else digest
    validate_job_name(name)
    return name


def validate_job_name(name: str) -> str:
    """
    Check ``name`` against the Personalize naming rules and return it unchanged.

    :raises ValueError: naming the rule that ``name`` breaks.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"Personalize job name must be a non-empty string, got {name!r}.")
    if len(name) > MAX_JOB_NAME_LENGTH:
        raise ValueError(
            f"Personalize job name {name!r} is {len(name)} characters long; "
            f"the maximum is {MAX_JOB_NAME_LENGTH}."
        )
    if not JOB_NAME_PATTERN.match(name):
        raise ValueError(
            f"Personalize job name {name!r} must match {JOB_NAME_PATTERN.pattern} "
            "(start with a letter or digit; then letters, digits, '-' or '_')."
        )
    return name
