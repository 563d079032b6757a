"""The chat page: one HTML page at `/`, its static files, and the security headers they are served with."""

from __future__ import annotations

import logging
from pathlib import Path

from flask import Blueprint, Response, current_app, render_template

from .errors import IssqaError

# The page's files live in the app's own `templates/` and `static/` folders (service/), served by Flask.
bp = Blueprint("chat", __name__)
log = logging.getLogger(__name__)

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "form-action 'self'",
    ]
)
MAX_STARTERS = 4
MAX_TITLE_CHARS = 100


@bp.get("/")
def index() -> str:
    """The chat page, with a few starter questions drawn from the indexed documents."""
    starters, documents = _starters()
    return render_template("index.html", starters=starters, documents=documents, version=_version())


def _version() -> str:
    """A token that changes whenever the page's static files change, so browsers never run stale ones."""
    folder = Path(current_app.static_folder or "")
    return format(max((f.stat().st_mtime_ns for f in folder.glob("chat.*")), default=0), "x")[-8:]


def _starters() -> tuple[list[str], int]:
    """Starter questions built from the newest documents' titles, and how many documents there are."""
    cache = current_app.extensions.setdefault("issqa.chat", {})
    try:
        index = current_app.extensions["issqa"].index()
        if cache.get("index") is not index:
            documents = list(index.documents().values())
            newest = sorted(documents, key=lambda d: (d.published or "", d.title), reverse=True)
            titles = list(dict.fromkeys(_clip(d.title) for d in newest if d.title.strip()))
            starters = [f"What does the article “{t}” report?" for t in titles[:MAX_STARTERS]]
            cache.update(index=index, count=len(documents), starters=starters)
    except IssqaError:
        return [], 0  # no index yet: the page still opens, and /api/ask says what to run
    except Exception:  # the page must open even when the index cannot be read
        log.exception("cannot read the documents for the starter questions")
        return [], 0
    return cache["starters"], cache["count"]


def _clip(title: str) -> str:
    """A title on one line, cut at a word boundary when it is too long for a starter button."""
    title = " ".join(title.split())
    if len(title) <= MAX_TITLE_CHARS:
        return title
    return title[:MAX_TITLE_CHARS].rsplit(" ", 1)[0] + "…"


@bp.after_app_request
def security_headers(response: Response) -> Response:
    """Forbid inline script and styles, framing and MIME sniffing on every response (page, files, API)."""
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["X-Frame-Options"] = "DENY"  # frame-ancestors 'none' for browsers without CSP 2
    response.headers["Referrer-Policy"] = "no-referrer"
    return response
