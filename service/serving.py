"""Production serving: gunicorn with threaded workers, each loading the model and the index once.

`issqa serve` runs `N` gunicorn worker processes (`gthread`: `T` request threads each). Encoding a
question is CPU-bound work done by the model (onnxruntime by default, or torch), so each worker gets
`torch_threads` model threads and `workers × torch_threads` never exceeds the cores: more would only
make the threads contend. On 2 cores, two single-threaded workers answer 16 clients about twice as
fast as one two-threaded worker, at the same one-client latency (docs/benchmarks.md, section 10). The
vector file is memory-mapped read-only (`store.read_vector_index`) and the passage store is SQLite
opened read-only, so N workers share one copy of both in the page cache; only the model's own memory
is per worker. With the ONNX backend a worker never imports torch.

The master process never runs the model: a stale index is built, and a missing ONNX export made, in
a separate (spawned) process before the workers start, because torch's OpenMP thread pool does not
survive `fork()` (a forked child of a process that ran a parallel region hangs in its next one), and
so that no worker loads torch to export. `--dev` runs Flask's development server in one process
instead.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# Request threads per worker. Questions in flight together in one worker share a forward pass
# (embedding.py), so more threads mean larger batches under load: 8 against 4 measured in
# docs/benchmarks.md, section 10.
DEFAULT_THREADS = 8
MAX_DEFAULT_WORKERS = 8  # each worker holds its own model (~0.25 GB resident with ONNX): cap the default
TIMEOUT_SECONDS = 120  # a worker silent this long is restarted (loading the model takes seconds)
GRACEFUL_SECONDS = 10


@dataclass(frozen=True)
class ServePlan:
    """How many processes and threads serve, for a machine with `cores` usable cores."""

    workers: int
    threads: int
    torch_threads: int
    cores: int


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity, else the machine's count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def _setting(given: int | None, environ: Mapping[str, str], name: str) -> int | None:
    if given is not None:
        value = given
    elif environ.get(name, "").strip():
        try:
            value = int(environ[name])
        except ValueError:
            raise ValueError(f"{name} must be a whole number, not {environ[name]!r}") from None
    else:
        return None
    if value < 1:
        raise ValueError(f"{name.removeprefix('ISSQA_').lower()} must be at least 1, not {value}")
    return value


def plan(
    workers: int | None = None,
    threads: int | None = None,
    torch_threads: int | None = None,
    cores: int | None = None,
    environ: Mapping[str, str] = os.environ,
) -> ServePlan:
    """Workers, request threads and torch threads: flags, else `ISSQA_*` variables, else defaults.

    Defaults: one worker per core (at most MAX_DEFAULT_WORKERS), DEFAULT_THREADS request threads per
    worker, and the cores shared out as torch threads (`cores // workers`, at least 1), so that
    `workers × torch_threads <= cores` whenever `workers <= cores`.
    """
    cores = cores or usable_cores()
    workers = _setting(workers, environ, "ISSQA_WORKERS") or min(cores, MAX_DEFAULT_WORKERS)
    threads = _setting(threads, environ, "ISSQA_THREADS") or DEFAULT_THREADS
    torch_threads = _setting(torch_threads, environ, "ISSQA_TORCH_THREADS") or max(1, cores // workers)
    return ServePlan(workers, threads, torch_threads, cores)


def set_torch_threads(count: int) -> None:
    """Limit the model (onnxruntime, or torch when it is the backend) to `count` threads in this process.

    Never imports torch: a worker on the ONNX backend stays without it (embedding.set_threads).
    """
    from .embedding import set_threads

    set_threads(count)


def build_if_stale(config: dict[str, Any]) -> None:
    """Build the index in a spawned process when it is missing or stale (see the module's docstring)."""
    import click

    from . import create_app, get_engine
    from .embedding import check_device, check_precision, default_device, default_precision, needs_export

    engine = get_engine(create_app(config))
    check_device(default_device())  # a bad ISSQA_DEVICE: one line here, not workers failing to boot
    check_precision(default_precision())  # and the same for ISSQA_QUESTION_PRECISION
    reason = engine.staleness()
    if not reason:
        if needs_export(engine.settings.model, engine.settings.backend):
            # Once, here, rather than in every worker: exporting imports torch.
            click.echo("Preparing the model: its ONNX export, or its int8 copy (once).", err=True)
            _spawn(config, prepare_only=True)
        return
    click.echo(f"Building the index: {reason}.", err=True)
    _spawn(config)


def _spawn(config: dict[str, Any], prepare_only: bool = False) -> None:
    """Run `_build` in a spawned process and wait: the master never loads the model."""
    context = multiprocessing.get_context("spawn")
    process = context.Process(target=_build, args=(config, prepare_only), name="issqa-build")
    process.start()
    process.join()
    if process.exitcode != 0:
        from .errors import IssqaError

        what = "exporting the model" if prepare_only else "building the index"
        raise IssqaError(f"{what} failed (exit status {process.exitcode})")


def _build(config: dict[str, Any], prepare_only: bool = False) -> None:
    import click

    from . import create_app, get_engine
    from .errors import RebuildInProgress

    engine = get_engine(create_app(config))
    if prepare_only:
        from .embedding import prepare

        prepare(engine.settings.model, engine.settings.backend)
        return
    try:
        report = engine.build(show_progress=True)
    except RebuildInProgress as exc:  # its result is served as soon as it is written
        click.echo(f"{exc.message} Serving the current index meanwhile.", err=True)
        return
    for skipped in report.skipped:
        click.echo(f"skipped {skipped.path}: {skipped.reason}", err=True)
    click.echo(report.summary(), err=True)


# Asked by each worker before it serves. Its made-up word is held by no passage, so the question takes
# every step a user's may: the model, the index, both searches, the confidence model, and the spelling
# word list that `query.respell` loads on first use. The first user question to need that list paid
# about 0.13 s for it in each worker, and under load so did every question queued behind it
# (bench/first_question.py).
WARM_UP_QUESTION = "Who wrote the Warmupquestionx report?"


def load_app(config: dict[str, Any]) -> Any:
    """The Flask app of one worker, with its model and index loaded and one question asked."""
    from . import create_app, get_engine

    app = create_app(config)
    get_engine(app).ask(WARM_UP_QUESTION)  # loads the model and the index too
    return app


MAX_DRAIN_BYTES = 1024 * 1024  # an unread body up to this size is read away to keep the connection


def drain_unread_body(wsgi_app: Any) -> Any:
    """Read away what the app left unread of a request body, so the connection stays usable.

    A request refused before its body is read (413 for a body over the limit) leaves the body on the
    socket; gunicorn then answers "Connection: keep-alive" but closes the connection, and a keep-alive
    client sees it dropped on its next request. Bodies beyond MAX_DRAIN_BYTES are left (and dropped).
    """

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        result = wsgi_app(environ, start_response)
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if 0 < length <= MAX_DRAIN_BYTES:
            stream = environ["wsgi.input"]
            with contextlib.suppress(OSError, ValueError):
                while stream.read(65536):
                    pass
        return result

    return app


def serve_dev(config: dict[str, Any], host: str, port: int) -> None:
    """Flask's development server, one process (`issqa serve --dev`): for debugging only."""
    app = load_app(config)
    app.run(host=host, port=port, threaded=True, use_reloader=False)


def serve_production(config: dict[str, Any], host: str, port: int, serve_plan: ServePlan) -> None:
    """Gunicorn with `serve_plan.workers` gthread workers on HOST:PORT, until SIGTERM or SIGINT."""
    from gunicorn.app.base import BaseApplication

    metrics_dir = tempfile.mkdtemp(prefix="issqa-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir  # read by each worker's prometheus_client

    def post_fork(server: Any, worker: Any) -> None:
        set_torch_threads(serve_plan.torch_threads)
        from prometheus_client import values

        values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]  # multiprocess values, now that the dir is set

    def child_exit(server: Any, worker: Any) -> None:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid, metrics_dir)  # type: ignore[no-untyped-call]

    options = {
        "bind": f"[{host}]:{port}" if ":" in host else f"{host}:{port}",
        "workers": serve_plan.workers,
        "threads": serve_plan.threads,
        "worker_class": "gthread",
        "timeout": TIMEOUT_SECONDS,
        "graceful_timeout": GRACEFUL_SECONDS,
        "keepalive": 5,
        "preload_app": False,  # each worker imports the app itself: nothing torch-related crosses a fork
        "accesslog": None,  # iss-qa logs every request itself, as JSON
        "errorlog": "-",
        "loglevel": "warning",
        "proc_name": "iss-qa",
        "control_socket_disable": True,
        "post_fork": post_fork,
        "child_exit": child_exit,
    }

    class Server(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            for key, value in options.items():
                if key in self.cfg.settings:
                    self.cfg.set(key, value)

        def load(self) -> Any:
            app = load_app(config)
            app.wsgi_app = drain_unread_body(app.wsgi_app)
            return app

    try:
        Server().run()
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)
