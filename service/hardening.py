"""Per-client rate limits, CORS and the client address behind proxies: what keeps the service up and contained.

Rate limits cover the routes that do work for a client (`/api/*`, `/v1/*`); the page, its files, the
API description and the health and metrics routes stay free, so probes and scrapers are never
refused. CORS is off unless origins are configured: a browser page elsewhere cannot read answers.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, Response, request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from limits import parse_many
from werkzeug.middleware.proxy_fix import ProxyFix

from .errors import ConfigError

LIMITED_BLUEPRINTS = frozenset({"api", "openai"})
CORS_PREFIXES = ("/api/", "/v1/", "/openapi.json")
CORS_ALLOW_HEADERS = "Content-Type, Authorization, Accept, X-Request-ID"
CORS_EXPOSE_HEADERS = "X-Request-ID, Retry-After, X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset"
OFF = {"", "off", "none", "false", "0", "no"}


def rate_limit(app: Flask, explicit: bool) -> str | None:
    """The configured limit string, or None when limiting is off.

    Under `TESTING` it is off unless the test (or the environment) set `RATE_LIMIT` itself: test apps
    make many requests from one address on purpose.
    """
    value = str(app.config.get("RATE_LIMIT") or "").strip()
    if value.lower() in OFF or (app.config.get("TESTING") and not explicit):
        return None
    try:
        parse_many(value)
    except ValueError:
        raise ConfigError(
            f"RATE_LIMIT must look like '120 per minute' or '10/second;200/hour', not {value!r}"
        ) from None
    return value


def cors_origins(app: Flask) -> list[str]:
    """Allowed CORS origins from `CORS_ORIGINS`: a list, or a comma-separated string; empty means off."""
    value = app.config.get("CORS_ORIGINS") or []
    if isinstance(value, str):
        value = value.split(",")
    return [str(origin).strip().rstrip("/") for origin in value if str(origin).strip()]


def init_app(app: Flask, explicit_rate_limit: bool = False) -> Limiter:
    """Install the proxy fix, the rate limiter and CORS on `app` (after the request-id hooks)."""
    proxies = int(app.config.get("PROXY_COUNT") or 0)
    if proxies > 0:  # trust X-Forwarded-For from this many proxies, so limits apply per real client
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies, x_host=proxies)  # type: ignore[method-assign]

    @app.after_request
    def retry_after_only_on_429(response: Response) -> Response:
        # The limiter sets Retry-After on every limited response; it means something only on a 429.
        if response.status_code != 429:
            response.headers.pop("Retry-After", None)
        return response

    limit = rate_limit(app, explicit_rate_limit)
    limiter = Limiter(
        get_remote_address,
        # One budget per client across all limited routes, not one per route.
        application_limits=[limit] if limit else [],
        application_limits_exempt_when=_exempt,
        headers_enabled=True,
        storage_uri=app.config.get("RATELIMIT_STORAGE_URI") or "memory://",
        enabled=limit is not None,
    )
    limiter.init_app(app)
    app.extensions["issqa.limiter"] = limiter

    origins = cors_origins(app)
    if origins:

        @app.after_request
        def cors(response: Response) -> Response:
            return _cors(response, origins)

    return limiter


def _exempt() -> bool:
    """Only the API blueprints are limited, and never a CORS preflight."""
    return request.blueprint not in LIMITED_BLUEPRINTS or request.method == "OPTIONS"


def _cors(response: Response, origins: list[str]) -> Response:
    """Let the configured origins (or any, with `*`) read the API's responses; nothing else changes."""
    if not request.path.startswith(CORS_PREFIXES):
        return response
    response.vary.add("Origin")
    origin = request.headers.get("Origin", "").rstrip("/")
    if not origin or ("*" not in origins and origin not in origins):
        return response
    headers: dict[str, Any] = {
        "Access-Control-Allow-Origin": "*" if "*" in origins else origin,
        "Access-Control-Expose-Headers": CORS_EXPOSE_HEADERS,
    }
    if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
        headers.update(
            {
                "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
                "Access-Control-Allow-Headers": CORS_ALLOW_HEADERS,
                "Access-Control-Max-Age": "600",
            }
        )
    response.headers.update(headers)
    return response
