"""The error a backend raises to answer a request with an AWS error (no HTTP in it)."""

from __future__ import annotations


class ServiceError(Exception):
    """An AWS error answer: ``code`` (e.g. ``ResourceNotFoundException``) and message.

    :param status: the HTTP status; ``None`` lets the protocol layer take the one the service model
        gives the error shape (``error.httpStatusCode``; 400 when the model names none).
    """

    def __init__(self, code: str, message: str, status: int | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status
