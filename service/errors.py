"""One family of errors, each carrying the HTTP status, a stable code and a message for people.

The HTTP layer turns any of them into `{"error": {"code": ..., "message": ...}}`; the CLI prints the
message on one line and exits non-zero.
"""

from __future__ import annotations


class IssqaError(Exception):
    """Base of every error a client or a user is meant to see."""

    status = 500
    code = "internal_error"
    headers: dict[str, str] = {}  # noqa: RUF012  (read-only class default)

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status

    def to_dict(self) -> dict[str, dict[str, str]]:
        return {"error": {"code": self.code, "message": self.message}}


class BadRequest(IssqaError):
    """The request is malformed or a field is invalid."""

    status = 400
    code = "bad_request"


class NotFound(IssqaError):
    status = 404
    code = "not_found"


class IndexNotReady(IssqaError):
    """There is no usable index yet: it is missing, stale or unreadable."""

    status = 503
    code = "index_not_ready"


class ConfigError(IssqaError):
    """A configuration value is invalid."""

    code = "config_error"


class Unauthorized(IssqaError):
    """A writing endpoint was called without the right bearer token."""

    status = 401
    code = "unauthorized"
    headers = {"WWW-Authenticate": 'Bearer realm="iss-qa"'}  # noqa: RUF012


class Forbidden(IssqaError):
    """The request is understood but not allowed in this configuration."""

    status = 403
    code = "forbidden"


class Conflict(IssqaError):
    """The request would replace something that exists, and replacing was not asked for."""

    status = 409
    code = "conflict"


class RebuildInProgress(Conflict):
    """Another rebuild of the same index is running; only one may run at a time."""

    code = "rebuild_in_progress"


class PayloadTooLarge(IssqaError):
    """The request or the file in it is over a size limit."""

    status = 413
    code = "payload_too_large"


class UnsupportedMediaType(IssqaError):
    """The file is of a kind iss-qa does not read, or its content is not what its name says."""

    status = 415
    code = "unsupported_media_type"
