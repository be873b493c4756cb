"""A generic WSGI base that serves one AWS service from botocore's own service model.

The emulators (Personalize, Pinpoint, ...) subclass :class:`AwsService` and implement one method per
operation, named exactly like the operation (``def CreateDatasetGroup(self, params) -> dict``), or pass
a ``handlers`` mapping. This module does everything that is protocol, so a boto3 / aiobotocore client
cannot tell the emulator from AWS:

* **Request parsing** for the ``json`` protocol (``POST /`` with ``X-Amz-Target: <prefix>.<Operation>``)
  and the ``rest-json`` protocol (routing by each operation's ``http.method`` + ``http.requestUri``
  template; ``uri`` / ``querystring`` / ``header`` / ``headers`` members and a ``payload`` member).
  The handler receives a plain dict keyed by member names, exactly as boto3 would have been called
  (timestamps as timezone-aware ``datetime``, blobs as ``bytes``).
* **Request validation** with ``botocore.validate.ParamValidator`` plus the constraints it does not
  check (min/max length or range, enum, pattern), answered with AWS's error shape.
* **Response validation** against the output shape (a handler returning something the model forbids
  is an emulator bug and becomes a 500 ``InternalFailure``, so tests cannot be fooled by it), and
  serialization (timestamps as epoch seconds in JSON bodies unless the shape says otherwise).
* **Errors**: a handler (or the backend behind it) raises :class:`~emulators.errors.ServiceError`
  (code, message, optional status: by default the status the model gives that error shape, else
  400); json protocol answers
  ``{"__type": code, "message": ...}``, rest-json answers the ``x-amzn-ErrorType`` header and
  ``{"message": ..., "Message": ...}``. botocore turns both into ``ClientError`` with that code.

Authentication is NOT verified: any ``Authorization`` header (SigV4 or none) is accepted. The emulator
only listens on loopback and is meant for tests and local runs.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import logging
import re
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping
from email.utils import formatdate, parsedate_to_datetime
from typing import Any
from urllib.parse import parse_qs, unquote

import botocore.session
from botocore.model import OperationModel, ServiceModel, Shape
from botocore.validate import ParamValidator

from emulators.errors import ServiceError

log = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any]], dict[str, Any] | None]

_SESSION_LOCK = threading.Lock()
_SESSION: botocore.session.Session | None = None


def load_service_model(service_name: str) -> ServiceModel:
    """Return botocore's service model for ``service_name`` (cached session)."""
    global _SESSION
    with _SESSION_LOCK:
        if _SESSION is None:
            _SESSION = botocore.session.get_session()
        return _SESSION.get_service_model(service_name)


class _ValidationFailed(Exception):
    def __init__(self, errors: list[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors


# --------------------------------------------------------------------------------------------------
# constraint checks ParamValidator does not do
# --------------------------------------------------------------------------------------------------

_PATTERN_CACHE: dict[str, re.Pattern[str] | None] = {}


def _compile_pattern(pattern: str) -> re.Pattern[str] | None:
    if pattern not in _PATTERN_CACHE:
        try:
            _PATTERN_CACHE[pattern] = re.compile(pattern, re.DOTALL)
        except re.error:  # a model pattern Python cannot compile: do not enforce it
            _PATTERN_CACHE[pattern] = None
    return _PATTERN_CACHE[pattern]


def _matches(pattern: str, value: str) -> bool:
    """Smithy patterns are not implicitly anchored; a pattern starting with ``^`` is treated as
    anchored at both ends (AWS services reject ``"my job"`` for ``^[a-zA-Z0-9][a-zA-Z0-9\\-_]*``)."""
    compiled = _compile_pattern(pattern)
    if compiled is None:
        return True
    if pattern.startswith("^"):
        return compiled.fullmatch(value) is not None
    return compiled.search(value) is not None


def check_constraints(value: Any, shape: Shape, path: str, errors: list[str], patterns: bool = True) -> None:
    """Append AWS-style messages for min/max, enum and (if ``patterns``) pattern violations under ``value``."""
    if value is None:
        return
    meta = shape.metadata
    type_name = shape.type_name
    if type_name == "structure" and isinstance(value, Mapping):
        for name, member in shape.members.items():
            if name in value:
                check_constraints(value[name], member, f"{path}.{name}" if path else name, errors, patterns)
        return
    if type_name == "list" and isinstance(value, list):
        _check_size(len(value), meta, path, errors, "length")
        for i, item in enumerate(value):
            check_constraints(item, shape.member, f"{path}[{i}]", errors, patterns)
        return
    if type_name == "map" and isinstance(value, Mapping):
        _check_size(len(value), meta, path, errors, "length")
        for key, item in value.items():
            check_constraints(key, shape.key, f"{path}.key", errors, patterns)
            check_constraints(item, shape.value, f"{path}.{key}", errors, patterns)
        return
    if type_name == "string" and isinstance(value, str):
        _check_size(len(value), meta, path, errors, "length")
        enum = shape.enum
        if enum and value not in enum:
            errors.append(
                f"Value '{value}' at '{path}' failed to satisfy constraint: "
                f"Member must satisfy enum value set: [{', '.join(enum)}]"
            )
        pattern = meta.get("pattern") if patterns else None
        if pattern and not _matches(pattern, value):
            errors.append(
                f"Value '{value}' at '{path}' failed to satisfy constraint: "
                f"Member must satisfy regular expression pattern: {pattern}"
            )
        return
    if type_name == "blob" and isinstance(value, bytes | bytearray):
        _check_size(len(value), meta, path, errors, "length")
        return
    numeric = type_name in ("integer", "long", "float", "double")
    if numeric and isinstance(value, int | float) and not isinstance(value, bool):
        _check_size(value, meta, path, errors, "value")


def _check_size(size: float, meta: Mapping[str, Any], path: str, errors: list[str], what: str) -> None:
    if "min" in meta and size < meta["min"]:
        kind = (
            "have length greater than or equal to"
            if what == "length"
            else "have value greater than or equal to"
        )
        errors.append(f"Value at '{path}' failed to satisfy constraint: Member must {kind} {meta['min']}")
    if "max" in meta and size > meta["max"]:
        kind = "have length less than or equal to" if what == "length" else "have value less than or equal to"
        errors.append(f"Value at '{path}' failed to satisfy constraint: Member must {kind} {meta['max']}")


def validate(params: Mapping[str, Any], shape: Shape | None, *, patterns: bool = True) -> None:
    """Validate ``params`` against ``shape`` like AWS would; raise ``_ValidationFailed``.

    ``patterns=False`` skips regular-expression checks (used for responses: service models reuse one
    ARN shape for fields AWS fills with other ARNs, e.g. Personalize's ``roleArn`` has the
    ``personalize`` ARN pattern while AWS returns the IAM role ARN there)."""
    if shape is None:
        if params:
            raise _ValidationFailed([f"Unexpected members: {sorted(params)}"])
        return
    report = ParamValidator().validate(params, shape)
    errors: list[str] = []
    if report.has_errors():
        errors.append(report.generate_report())
    check_constraints(params, shape, "", errors, patterns)
    if errors:
        raise _ValidationFailed(errors)


# --------------------------------------------------------------------------------------------------
# value conversion (wire <-> python)
# --------------------------------------------------------------------------------------------------


def _parse_timestamp(value: Any) -> dt.datetime:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return dt.datetime.fromtimestamp(value, tz=dt.UTC)
    text = str(value)
    try:
        return dt.datetime.fromtimestamp(float(text), tz=dt.UTC)
    except ValueError:
        pass
    try:
        parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        parsed = parsedate_to_datetime(text)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _from_wire(value: Any, shape: Shape) -> Any:
    """Convert a JSON-decoded value to what boto3 would have been given for ``shape``."""
    if value is None:
        return None
    type_name = shape.type_name
    if type_name == "structure":
        if not isinstance(value, dict):
            return value  # let the validator complain
        out: dict[str, Any] = {}
        members = shape.members
        for key, item in value.items():
            member = members.get(key)
            out[key] = _from_wire(item, member) if member is not None else item
        return out
    if type_name == "list":
        if not isinstance(value, list):
            return value
        return [_from_wire(v, shape.member) for v in value]
    if type_name == "map":
        if not isinstance(value, dict):
            return value
        return {k: _from_wire(v, shape.value) for k, v in value.items()}
    if type_name == "timestamp":
        try:
            return _parse_timestamp(value)
        except (ValueError, TypeError, OverflowError):
            return value
    if type_name == "blob" and isinstance(value, str):
        try:
            return base64.b64decode(value)
        except ValueError:
            return value
    return value


def _format_timestamp(value: dt.datetime, fmt: str) -> Any:
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    if fmt == "iso8601":
        return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
    if fmt == "rfc822":
        return formatdate(value.timestamp(), usegmt=True)
    seconds = value.timestamp()
    return int(seconds) if seconds == int(seconds) else round(seconds, 3)


def _to_wire(value: Any, shape: Shape, default_ts: str = "unixTimestamp") -> Any:
    """Serialize a (validated) python value for a JSON body."""
    if value is None:
        return None
    type_name = shape.type_name
    if type_name == "structure":
        members = shape.members
        return {k: _to_wire(v, members[k], default_ts) for k, v in value.items() if v is not None}
    if type_name == "list":
        return [_to_wire(v, shape.member, default_ts) for v in value]
    if type_name == "map":
        return {k: _to_wire(v, shape.value, default_ts) for k, v in value.items()}
    if type_name == "timestamp":
        if isinstance(value, dt.datetime):
            return _format_timestamp(value, shape.serialization.get("timestampFormat", default_ts))
        return value
    if type_name == "blob":
        raw = value.encode() if isinstance(value, str) else bytes(value)
        return base64.b64encode(raw).decode("ascii")
    return value


def _scalar_from_text(text: str, shape: Shape) -> Any:
    type_name = shape.type_name
    if type_name in ("integer", "long"):
        try:
            return int(text)
        except ValueError:
            return text
    if type_name in ("float", "double"):
        try:
            return float(text)
        except ValueError:
            return text
    if type_name == "boolean":
        return {"true": True, "false": False}.get(text.lower(), text)
    if type_name == "timestamp":
        try:
            return _parse_timestamp(text)
        except (ValueError, TypeError):
            return text
    if type_name == "blob":
        return base64.b64decode(text)
    if type_name == "string" and shape.serialization.get("jsonvalue"):
        return json.loads(base64.b64decode(text))
    return text


def _scalar_to_text(value: Any, shape: Shape, default_ts: str) -> str:
    type_name = shape.type_name
    if type_name == "boolean":
        return "true" if value else "false"
    if type_name == "timestamp" and isinstance(value, dt.datetime):
        return str(_format_timestamp(value, shape.serialization.get("timestampFormat", default_ts)))
    if type_name == "blob":
        return base64.b64encode(value).decode("ascii")
    if type_name == "string" and shape.serialization.get("jsonvalue"):
        return base64.b64encode(json.dumps(value).encode()).decode("ascii")
    return str(value)


# --------------------------------------------------------------------------------------------------
# rest-json routing
# --------------------------------------------------------------------------------------------------


class _Route:
    def __init__(self, operation: OperationModel) -> None:
        self.operation = operation
        self.method = operation.http.get("method", "POST").upper()
        uri = operation.http.get("requestUri", "/")
        path, _, query = uri.partition("?")
        self.static_query = {k: v[0] if v else "" for k, v in parse_qs(query, keep_blank_values=True).items()}
        regex = ""
        self.labels: list[str] = []
        self.literal_chars = 0
        for part in re.split(r"(\{[^}]+\})", path):
            if part.startswith("{") and part.endswith("}"):
                label = part[1:-1]
                greedy = label.endswith("+")
                label = label.rstrip("+")
                self.labels.append(label)
                regex += f"(?P<g{len(self.labels) - 1}>{'.+' if greedy else '[^/]+'})"
            else:
                self.literal_chars += len(part)
                regex += re.escape(part)
        self.regex = re.compile(f"^{regex.rstrip('/') if regex != '/' else regex}/?$")

    def match(self, method: str, path: str, query: Mapping[str, list[str]]) -> dict[str, str] | None:
        if method != self.method:
            return None
        found = self.regex.match(path)
        if found is None:
            return None
        for key, value in self.static_query.items():
            if key not in query or (value and query[key][0] != value):
                return None
        return {label: unquote(found.group(f"g{i}")) for i, label in enumerate(self.labels)}


# --------------------------------------------------------------------------------------------------
# the WSGI service
# --------------------------------------------------------------------------------------------------


class AwsService:
    """WSGI application serving ``service_name`` with botocore's model.

    :param service_name: botocore service name (``"personalize"``, ``"pinpoint"``).
    :param handlers: optional ``{OperationName: callable(params) -> dict}``; otherwise methods of the
        subclass named after the operation are used.
    :param validation_error_code: the ``__type`` of request validation failures
        (AWS's framework answers ``ValidationException``).
    :param backend: the service's backend (``emulators/<svc>/models.py``) the handlers call;
        :meth:`close` closes it.
    """

    def __init__(
        self,
        service_name: str,
        handlers: Mapping[str, Handler] | None = None,
        *,
        validation_error_code: str = "ValidationException",
        backend: Any = None,
    ) -> None:
        self.service_name = service_name
        self.backend = backend
        self.model = load_service_model(service_name)
        self.protocol = self.model.metadata["protocol"]
        if self.protocol not in ("json", "rest-json"):
            raise ValueError(f"unsupported protocol {self.protocol!r} for {service_name}")
        self.target_prefix = self.model.metadata.get("targetPrefix", "")
        self.validation_error_code = validation_error_code
        self._handlers: dict[str, Handler] = dict(handlers or {})
        self._routes: list[_Route] = []
        if self.protocol == "rest-json":
            routes = [_Route(self.model.operation_model(n)) for n in self.model.operation_names]
            # most specific first: more literal characters, then fewer labels, then static query keys
            routes.sort(key=lambda r: (-len(r.static_query), -r.literal_chars, len(r.labels)))
            self._routes = routes

    # -- handler lookup ---------------------------------------------------------------------------
    def handler_for(self, operation_name: str) -> Handler | None:
        if operation_name in self._handlers:
            return self._handlers[operation_name]
        method = getattr(self, operation_name, None)
        return method if callable(method) else None

    def error_status(self, code: str) -> int:
        """The HTTP status the service model gives the error shape ``code`` (400 when it names none)."""
        for shape in self.model.error_shapes:
            if shape.name == code:
                return int(shape.metadata.get("error", {}).get("httpStatusCode", 400))
        return 400

    def close(self) -> None:
        """Release the backend (called by ``RunningServer.shutdown``)."""
        close = getattr(self.backend, "close", None)
        if callable(close):
            close()

    # -- WSGI -------------------------------------------------------------------------------------
    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        request_id = str(uuid.uuid4())
        try:
            status, headers, body = self._dispatch(environ)
        except ServiceError as exc:
            status, headers, body = self._error(
                exc.code, exc.message, exc.status or self.error_status(exc.code)
            )
        except _ValidationFailed as exc:
            message = f"{len(exc.errors)} validation error(s) detected: " + "; ".join(exc.errors)
            status, headers, body = self._error(self.validation_error_code, message, 400)
        except Exception as exc:  # an emulator bug: answer like AWS's internal error
            log.exception("%s emulator: internal error", self.service_name)
            status, headers, body = self._error("InternalFailure", f"{type(exc).__name__}: {exc}", 500)
        headers = [*headers, ("x-amzn-RequestId", request_id), ("Content-Length", str(len(body)))]
        start_response(f"{status} {_REASONS.get(status, 'Status')}", headers)
        return [body]

    def _error(self, code: str, message: str, status: int) -> tuple[int, list[tuple[str, str]], bytes]:
        if self.protocol == "json":
            payload = {"__type": code, "message": message}
            ctype = "application/x-amz-json-1.1"
        else:
            payload = {"message": message, "Message": message}
            ctype = "application/json"
        return status, [("Content-Type", ctype), ("x-amzn-ErrorType", code)], json.dumps(payload).encode()

    def _read_body(self, environ: dict[str, Any]) -> bytes:
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        stream = environ["wsgi.input"]
        if length:
            return stream.read(length)
        if environ.get("wsgi.input_terminated"):  # chunked request body (no Content-Length)
            return stream.read()
        return b""

    def _dispatch(self, environ: dict[str, Any]) -> tuple[int, list[tuple[str, str]], bytes]:
        body = self._read_body(environ)
        if self.protocol == "json":
            operation, params = self._parse_json(environ, body)
        else:
            operation, params = self._parse_rest_json(environ, body)
        handler = self.handler_for(operation.name)
        if handler is None:
            raise ServiceError("UnknownOperationException", f"Operation {operation.name} is not supported")
        validate(params, operation.input_shape)
        result = handler(params) or {}
        try:
            validate(result, operation.output_shape, patterns=False)
        except _ValidationFailed as exc:
            raise ServiceError(
                "InternalFailure",
                f"emulator produced a response for {operation.name} the model forbids: {exc}",
                500,
            ) from exc
        if self.protocol == "json":
            return self._serialize_json(operation, result)
        return self._serialize_rest_json(operation, result)

    # -- json protocol ----------------------------------------------------------------------------
    def _parse_json(self, environ: dict[str, Any], body: bytes) -> tuple[OperationModel, dict[str, Any]]:
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        prefix, _, name = target.partition(".")
        if environ.get("REQUEST_METHOD", "GET") != "POST" or not name or prefix != self.target_prefix:
            raise ServiceError("UnknownOperationException", f"Unknown operation {target!r}")
        if name not in self.model.operation_names:
            raise ServiceError("UnknownOperationException", f"Unknown operation {name}")
        operation = self.model.operation_model(name)
        try:
            raw = json.loads(body or b"{}")
        except ValueError as exc:
            raise ServiceError("SerializationException", f"Request body is not JSON: {exc}") from exc
        if not isinstance(raw, dict):
            raise ServiceError("SerializationException", "Request body must be a JSON object")
        params = _from_wire(raw, operation.input_shape) if operation.input_shape else raw
        return operation, params

    def _serialize_json(
        self, operation: OperationModel, result: dict[str, Any]
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        shape = operation.output_shape
        payload = _to_wire(result, shape) if shape is not None else {}
        return 200, [("Content-Type", "application/x-amz-json-1.1")], json.dumps(payload).encode()

    # -- rest-json protocol -----------------------------------------------------------------------
    def _parse_rest_json(self, environ: dict[str, Any], body: bytes) -> tuple[OperationModel, dict[str, Any]]:
        query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
        operation, labels = self._match_route(environ, query)
        shape = operation.input_shape
        if shape is None:
            return operation, {}
        payload_name = shape.serialization.get("payload")
        params, body_members = self._located_params(environ, shape, labels, query)
        if payload_name:
            member = shape.members[payload_name]
            if member.type_name in ("blob", "string"):
                if body:
                    params[payload_name] = body if member.type_name == "blob" else body.decode("utf-8")
            elif body:
                params[payload_name] = _from_wire(self._json_body(body), member)
        elif body_members and body:
            raw = self._json_body(body)
            if not isinstance(raw, dict):
                raise ServiceError("BadRequestException", "Request body must be a JSON object")
            for key, item in raw.items():
                member = body_members.get(key)
                params[key] = _from_wire(item, member) if member is not None else item
        return operation, params

    def _match_route(
        self, environ: dict[str, Any], query: Mapping[str, list[str]]
    ) -> tuple[OperationModel, dict[str, str]]:
        """The operation whose method + URI template match the request, and the URI labels' values."""
        method = environ.get("REQUEST_METHOD", "GET").upper()
        raw_path = environ.get("RAW_URI") or environ.get("REQUEST_URI")
        path = raw_path.split("?", 1)[0] if raw_path else environ.get("PATH_INFO", "/")
        for route in self._routes:
            labels = route.match(method, path, query)
            if labels is not None:
                return route.operation, labels
        raise ServiceError("UnknownOperationException", f"No operation for {method} {path}", 404)

    @staticmethod
    def _located_params(
        environ: dict[str, Any], shape: Shape, labels: dict[str, str], query: Mapping[str, list[str]]
    ) -> tuple[dict[str, Any], dict[str, Shape]]:
        """Members bound to the URI, query string and headers; and the members left for the JSON body
        (the payload member excluded)."""
        payload_name = shape.serialization.get("payload")
        headers = {k[5:].replace("_", "-").lower(): v for k, v in environ.items() if k.startswith("HTTP_")}
        if environ.get("CONTENT_TYPE"):
            headers["content-type"] = environ["CONTENT_TYPE"]
        params: dict[str, Any] = {}
        body_members: dict[str, Shape] = {}
        for name, member in shape.members.items():
            location = member.serialization.get("location")
            wire_name = member.serialization.get("name", name)
            if location == "uri":
                if wire_name in labels:
                    params[name] = _scalar_from_text(labels[wire_name], member)
            elif location == "querystring":
                if member.type_name == "map":
                    params[name] = {k: v[0] for k, v in query.items()}
                elif wire_name in query:
                    values = query[wire_name]
                    if member.type_name == "list":
                        params[name] = [_scalar_from_text(v, member.member) for v in values]
                    else:
                        params[name] = _scalar_from_text(values[0], member)
            elif location == "header":
                if wire_name.lower() in headers:
                    params[name] = _scalar_from_text(headers[wire_name.lower()], member)
            elif location == "headers":
                prefix = wire_name.lower()
                found = {k[len(prefix) :]: v for k, v in headers.items() if k.startswith(prefix)}
                if found:
                    params[name] = found
            elif name != payload_name:
                body_members[name] = member
        return params, body_members

    @staticmethod
    def _json_body(body: bytes) -> Any:
        try:
            return json.loads(body)
        except ValueError as exc:
            raise ServiceError("BadRequestException", f"Request body is not JSON: {exc}") from exc

    def _serialize_rest_json(
        self, operation: OperationModel, result: dict[str, Any]
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        status = int(operation.http.get("responseCode", 200))
        headers: list[tuple[str, str]] = [("Content-Type", "application/json")]
        shape = operation.output_shape
        if shape is None:
            return status, headers, b"{}"
        payload_name = shape.serialization.get("payload")
        body_obj: dict[str, Any] = {}
        body: bytes | None = None
        for name, value in result.items():
            member = shape.members[name]
            location = member.serialization.get("location")
            wire_name = member.serialization.get("name", name)
            if value is None:
                continue
            if location == "header":
                headers.append((wire_name, _scalar_to_text(value, member, "rfc822")))
            elif location == "headers":
                headers.extend((f"{wire_name}{k}", str(v)) for k, v in value.items())
            elif location == "statusCode":
                status = int(value)
            elif name == payload_name:
                if member.type_name == "blob":
                    body = bytes(value)
                elif member.type_name == "string":
                    body = str(value).encode("utf-8")
                else:
                    body = json.dumps(_to_wire(value, member)).encode()
            else:
                body_obj[name] = _to_wire(value, member)
        if body is None:
            body = json.dumps(body_obj).encode() if not payload_name or body_obj else b"{}"
        return status, headers, body


_REASONS = {
    200: "OK",
    201: "Created",
    202: "Accepted",
    204: "No Content",
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    409: "Conflict",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}
