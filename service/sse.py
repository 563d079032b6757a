"""Server-sent events: formatting events and cutting an answer into word-sized pieces.

Answers are extractive and computed at once, so a stream only paces their delivery; keeping the
formatting here lets `/api/ask` and the OpenAI-compatible endpoint stream exactly the same pieces.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

CONTENT_TYPE = "text/event-stream; charset=utf-8"
HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}  # no proxy may hold the stream back
_PIECE = re.compile(r"\S*\s*")


def event(data: Any, name: str | None = None) -> str:
    """One event: an optional `event:` line and a `data:` line of compact JSON (never a raw newline)."""
    payload = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    head = f"event: {name}\n" if name else ""
    return f"{head}data: {payload}\n\n"


def pieces(text: str) -> Iterator[str]:
    """`text` as word-sized pieces (a word and the whitespace after it) that join back to exactly `text`."""
    for match in _PIECE.finditer(text):
        if match.group():
            yield match.group()
