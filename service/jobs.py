"""Background rebuilds: one at a time per index folder, with progress any process can read.

A rebuild started over HTTP runs in a thread of the server that received it, holding the index
folder's build lock. Its state is written to `<index>/job.json` as it goes, so every worker of the
server (and `issqa status`) reports the same job; a job whose process died reads as "interrupted".
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .engine import Engine
from .errors import IssqaError
from .store import BuildLock, write_json

JOB_FILE = "job.json"
MAX_PASSES = 3  # documents changed during a build get picked up by another pass, up to this many
WRITE_EVERY = 0.5  # seconds between progress writes

log = logging.getLogger(__name__)


@dataclass
class Job:
    """A rebuild's identity, state and progress, as `GET /api/index` shows it."""

    id: str
    full: bool
    state: str  # running, succeeded, failed or interrupted
    started_at: str
    finished_at: str | None = None
    phase: str = "reading"  # reading, embedding, writing, done
    embedded: int = 0  # passages embedded so far in this pass
    to_embed: int = 0  # passages this pass embeds
    passes: int = 0
    summary: dict[str, Any] | None = None
    error: str | None = None
    pid: int = field(default_factory=os.getpid)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        del data["pid"]
        return data


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def read_job(index_dir: Path) -> Job | None:
    """The latest rebuild job of this index folder, or None when there has been none."""
    try:
        data = json.loads((index_dir / JOB_FILE).read_text(encoding="utf-8"))
        job = Job(**data)
    except (OSError, ValueError, TypeError):
        return None
    if job.state == "running" and not _alive(job.pid):
        job.state, job.error = "interrupted", "the process running the rebuild stopped before it finished"
    return job


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _write(index_dir: Path, job: Job) -> None:
    write_json(index_dir / JOB_FILE, asdict(job))


def start_rebuild(engine: Engine, full: bool = False) -> Job:
    """Start a rebuild in a background thread and return its job at once.

    Raises `RebuildInProgress` (409) when any process is already rebuilding this index.
    """
    index_dir = engine.settings.index
    lock = BuildLock(index_dir).acquire()
    job = Job(id=uuid.uuid4().hex[:12], full=full, state="running", started_at=_now())
    try:
        _write(index_dir, job)
        threading.Thread(target=_run, args=(engine, job, lock), name=f"rebuild-{job.id}", daemon=True).start()
    except BaseException:
        lock.release()
        raise
    return job


def _run(engine: Engine, job: Job, lock: BuildLock) -> None:
    index_dir = engine.settings.index
    last_write = 0.0

    def progress(done: int, total: int) -> None:
        nonlocal last_write
        job.phase = "writing" if total and done >= total else "embedding"
        job.embedded, job.to_embed = done, total
        if time.monotonic() - last_write >= WRITE_EVERY or done >= total:
            _write(index_dir, job)
            last_write = time.monotonic()

    try:
        while True:
            job.passes += 1
            job.phase = "reading"
            report = engine.build(full=job.full and job.passes == 1, progress=progress, lock=lock)
            job.summary = _merge(job.summary, report.to_dict())
            if job.passes >= MAX_PASSES or engine.staleness() is None:
                break
        job.state, job.phase = "succeeded", "done"
    except IssqaError as exc:
        job.state, job.error = "failed", exc.message
    except Exception as exc:  # a job must always end with a state, whatever broke
        log.exception("rebuild %s failed", job.id)
        job.state, job.error = "failed", f"{type(exc).__name__}: {exc}"
    finally:
        lock.release()
        job.finished_at = _now()
        _write(index_dir, job)


def _merge(before: dict[str, Any] | None, after: dict[str, Any]) -> dict[str, Any]:
    """One summary for all passes of a job: what was added or embedded adds up; totals are the last pass's."""
    if before is None:
        return after
    merged = dict(after)
    for key in ("added", "changed", "removed"):
        merged[key] = before[key] + after[key]
    merged["embedded"] = before["embedded"] + after["embedded"]
    merged["seconds"] = round(before["seconds"] + after["seconds"], 2)
    merged["full"] = before["full"]
    return merged
