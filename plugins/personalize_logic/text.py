"""
What counts as text for the readers (pure, no Airflow import).

JSON can carry a lone UTF-16 surrogate (``"\\ud800"``), and a line decoded with ``surrogateescape``
carries its undecodable bytes as surrogates: Python keeps both in a ``str``, but no UTF-8 file, CSV
or SQLite store can hold them, and writing one raises ``UnicodeEncodeError`` far from where it came
in. Every reader checks values with :func:`is_text` where they enter, so such a value is a counted
quarantine entry, a dead letter or an error naming its field, never a crash later.
"""

from __future__ import annotations


def is_text(value: str) -> bool:
    """Whether ``value`` can be written as UTF-8 (it holds no lone surrogate)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
