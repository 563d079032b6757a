"""iss-qa: cited answers to questions over a folder of news articles."""

from __future__ import annotations

from typing import Any

from flask import Flask

from .engine import DEFAULTS, Engine, Settings


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Build the Flask app: defaults, then `ISSQA_*` environment variables, then `config`."""
    app = Flask(__name__)
    app.config.update(DEFAULTS)
    app.config["MAX_CONTENT_LENGTH"] = 64 * 1024
    app.config["JSON_SORT_KEYS"] = False
    app.config.from_prefixed_env("ISSQA")
    if config:
        app.config.update(config)

    app.extensions["issqa"] = Engine(Settings.from_config(app.config), embedder=app.config.get("EMBEDDER"))

    from . import api, chat

    app.register_blueprint(api.bp)
    app.register_blueprint(chat.bp)
    api.register_error_handlers(app)
    return app


def get_engine(app: Flask) -> Engine:
    """The app's engine (one per app, created with it)."""
    return app.extensions["issqa"]
