"""One family of errors, each carrying the HTTP status, a stable code and a message for people.

The HTTP layer turns any of them into `{"error": {"code": ..., "message": ...}}`; the CLI prints the
message on one line and exits non-zero. The kinds differ only in their status and default code, so
they are rows of data (`_kind`), still classes so that `except NotFound:` works.
"""

from __future__ import annotations

from collections.abc import Mapping


class IssqaError(Exception):
    """Base of every error a client or a user is meant to see."""

    status = 500
    code = "internal_error"
    headers: Mapping[str, str] = {}

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status


def _kind(
    name: str,
    status: int,
    code: str,
    doc: str,
    base: type[IssqaError] = IssqaError,
    headers: Mapping[str, str] | None = None,
) -> type[IssqaError]:
    """A subclass of `base` with this status and default code (and these response headers)."""
    attributes = {"status": status, "code": code, "__doc__": doc, "__module__": __name__}
    return type(name, (base,), {**attributes, **({"headers": headers} if headers else {})})


# name, status, default code, what it means
BadRequest = _kind("BadRequest", 400, "bad_request", "The request is malformed or a field is invalid.")
Unauthorized = _kind(
    "Unauthorized",
    401,
    "unauthorized",
    "A writing endpoint was called without the right bearer token.",
    headers={"WWW-Authenticate": 'Bearer realm="iss-qa"'},
)
Forbidden = _kind(
    "Forbidden", 403, "forbidden", "The request is understood but not allowed in this configuration."
)
NotFound = _kind("NotFound", 404, "not_found", "No such route, document or model.")
Conflict = _kind("Conflict", 409, "conflict", "It would replace something, and replacing was not asked for.")
RebuildInProgress = _kind(
    "RebuildInProgress", 409, "rebuild_in_progress", "Another rebuild of the index is running.", Conflict
)
PayloadTooLarge = _kind(
    "PayloadTooLarge", 413, "payload_too_large", "The request or a file in it is too large."
)
UnsupportedMediaType = _kind(
    "UnsupportedMediaType",
    415,
    "unsupported_media_type",
    "A file of a kind iss-qa does not read, or not what its name says.",
)
ConfigError = _kind("ConfigError", 500, "config_error", "A configuration value is invalid.")
IndexNotReady = _kind(
    "IndexNotReady", 503, "index_not_ready", "No usable index: missing, stale or unreadable."
)

# The code of every HTTP error by status, for those raised by Flask and Werkzeug (404, 405, 413, 429...).
HTTP_CODES = {
    kind.status: kind.code
    for kind in (
        BadRequest,
        Unauthorized,
        Forbidden,
        NotFound,
        Conflict,
        PayloadTooLarge,
        UnsupportedMediaType,
    )
} | {405: "method_not_allowed", 429: "too_many_requests"}
