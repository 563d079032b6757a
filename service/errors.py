"""One family of errors, each carrying the HTTP status, a stable code and a message for people.

The HTTP layer turns any of them into `{"error": {"code": ..., "message": ...}}`; the CLI prints the
message on one line and exits non-zero. The kinds differ only in their status and default code (and
Unauthorized in the header its response carries).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType


class IssqaError(Exception):
    """Base of every error a client or a user is meant to see."""

    status = 500
    code = "internal_error"
    headers: Mapping[str, str] = MappingProxyType({})

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status


class BadRequest(IssqaError):
    """The request is malformed or a field is invalid."""

    status = 400
    code = "bad_request"


class Unauthorized(IssqaError):
    """A writing endpoint was called without the right bearer token."""

    status = 401
    code = "unauthorized"
    headers: Mapping[str, str] = MappingProxyType({"WWW-Authenticate": 'Bearer realm="iss-qa"'})


class Forbidden(IssqaError):
    """The request is understood but not allowed in this configuration."""

    status = 403
    code = "forbidden"


class NotFound(IssqaError):
    """No such route, document or model."""

    status = 404
    code = "not_found"


class Conflict(IssqaError):
    """It would replace something, and replacing was not asked for."""

    status = 409
    code = "conflict"


class RebuildInProgress(Conflict):
    """Another rebuild of the index is running."""

    code = "rebuild_in_progress"


class PayloadTooLarge(IssqaError):
    """The request or a file in it is too large."""

    status = 413
    code = "payload_too_large"


class UnsupportedMediaType(IssqaError):
    """A file of a kind iss-qa does not read, or not what its name says."""

    status = 415
    code = "unsupported_media_type"


class ConfigError(IssqaError):
    """A configuration value is invalid."""

    status = 500
    code = "config_error"


class IndexNotReady(IssqaError):
    """No usable index: missing, stale or unreadable."""

    status = 503
    code = "index_not_ready"


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
