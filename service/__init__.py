"""iss-qa: cited answers to questions over a folder of news articles."""

from __future__ import annotations

import os
from typing import Any

from flask import Flask

from .engine import DEFAULTS, Engine, Settings

# The HTTP layer's own settings, beside the engine's DEFAULTS; each can be set as ISSQA_<NAME>.
HTTP_DEFAULTS: dict[str, Any] = {
    "MAX_CONTENT_LENGTH": 64 * 1024,  # request bodies, in bytes
    "MAX_CHAT_BODY_BYTES": 256 * 1024,  # /v1/chat/completions: chat front ends resend whole conversations
    "MAX_HISTORY_TURNS": 20,  # history entries per /api/ask request (the chat page sends at most 16)
    "MAX_HISTORY_CHARS": 32_000,  # characters of history per request, all entries together
    "RATE_LIMIT": "120 per minute",  # per client address on /api and /v1; "off" disables it
    "CORS_ORIGINS": "",  # origins allowed to read the API from a browser ("*" for any); empty: CORS off
    "PROXY_COUNT": 0,  # trusted reverse proxies in front, whose X-Forwarded-For names the client
    "ACCESS_LOG": True,  # one JSON line per request on stderr
    "ADMIN_TOKEN": "",  # bearer token for the writing endpoints (uploads, deletes, rebuilds); empty: off
    "MAX_UPLOAD_BYTES": 32 * 1024 * 1024,  # one POST /api/documents request, all files together
}


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Build the Flask app: defaults, then `ISSQA_*` environment variables, then `config`."""
    app = Flask(__name__)
    app.config.update(DEFAULTS)
    app.config.update(HTTP_DEFAULTS)
    app.json.sort_keys = False  # type: ignore[attr-defined]  # keep the documented field order
    app.config.from_prefixed_env("ISSQA")
    if config:
        app.config.update(config)

    app.extensions["issqa"] = Engine(Settings.from_config(app.config), embedder=app.config.get("EMBEDDER"))

    from . import api, chat, hardening, observability, openai_api, openapi

    # Request ids and timing first, so that every later hook and early answer (a 429, a 413) has them.
    observability.init_app(app)
    explicit_limit = bool(config and "RATE_LIMIT" in config) or "ISSQA_RATE_LIMIT" in os.environ
    hardening.init_app(app, explicit_rate_limit=explicit_limit)
    app.register_blueprint(api.bp)
    app.register_blueprint(openai_api.bp)
    app.register_blueprint(openapi.bp)
    app.register_blueprint(chat.bp)
    api.register_error_handlers(app)
    return app


def get_engine(app: Flask) -> Engine:
    """The app's engine (one per app, created with it)."""
    engine: Engine = app.extensions["issqa"]
    return engine
