"""The `issqa` command line: serve, index, ask, status.

Every command builds the same app as the server (`create_app`), so configuration works the same way:
defaults, then `ISSQA_*` variables, then the flags given here.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import click
from flask import Flask

from . import create_app, get_engine, uploads
from .api import status as index_status
from .distributed import DEFAULT_BATCH_SIZE
from .errors import BadRequest, IssqaError
from .indexing import BuildReport
from .models import Limits, answer_model, ask_request, parse


def _options(func: Callable[..., Any]) -> Callable[..., Any]:
    """The flags every command shares, one per configuration variable."""
    func = click.option("--model", help="Embedding model name or path [ISSQA_MODEL].")(func)
    func = click.option("--index", "index_dir", help="Index folder [ISSQA_INDEX].")(func)
    func = click.option("--documents", help="Documents folder [ISSQA_DOCUMENTS].")(func)
    return func


def _app(**flags: Any) -> Flask:
    keys = {"documents": "DOCUMENTS", "index_dir": "INDEX", "model": "MODEL", "host": "HOST", "port": "PORT"}
    return create_app({keys[k]: v for k, v in flags.items() if v is not None and k in keys})


def _fail(message: str) -> NoReturn:
    click.echo(f"issqa: {message}", err=True)
    sys.exit(1)


class Group(click.Group):
    """Turns iss-qa's own errors into a one-line message and exit status 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except IssqaError as exc:
            _fail(exc.message)


@click.group(cls=Group)
@click.version_option(package_name="iss-qa")
def main() -> None:
    """Cited answers to questions over a folder of news articles."""


@main.command()
@_options
@click.option("--host", help="Address to listen on [ISSQA_HOST, default 127.0.0.1].")
@click.option("--port", type=int, help="Port [ISSQA_PORT, default 8000].")
@click.option(
    "--workers", type=int, help="Worker processes [ISSQA_WORKERS, default: one per core, at most 8]."
)
@click.option("--threads", type=int, help="Request threads per worker [ISSQA_THREADS, default 8].")
@click.option(
    "--torch-threads",
    type=int,
    help="Model threads (onnxruntime or torch) per worker [ISSQA_TORCH_THREADS, default cores / workers].",
)
@click.option("--dev", is_flag=True, help="Flask's development server, one process (debugging only).")
def serve(
    workers: int | None, threads: int | None, torch_threads: int | None, dev: bool, **flags: Any
) -> None:
    """Build the index if it is missing or stale, then serve the API on HOST:PORT.

    In production (the default) gunicorn runs WORKERS processes of THREADS request threads each, every
    one with the model and the index loaded once; see service/serving.py.
    """
    from . import serving
    from .observability import configure_logging

    configure_logging()  # one JSON line per request on stderr
    try:
        serve_plan = serving.plan(workers, threads, torch_threads)
    except ValueError as exc:
        _fail(str(exc))
    app = _app(**flags)
    config = {key: app.config[key] for key in ("DOCUMENTS", "INDEX", "MODEL")}
    host, port = app.config["HOST"], int(app.config["PORT"])
    serving.build_if_stale(config)
    if dev:
        click.echo(f"Serving iss-qa on http://{host}:{port} with Flask's development server", err=True)
        serving.serve_dev(config, host, port)
        return
    click.echo(
        f"Serving iss-qa on http://{host}:{port}: {serve_plan.workers} workers x {serve_plan.threads} "
        f"threads, {serve_plan.torch_threads} model threads each, {serve_plan.cores} cores (Ctrl+C to stop)",
        err=True,
    )
    serving.serve_production(config, host, port, serve_plan)


@main.command("index")
@_options
@click.option("--full", is_flag=True, help="Rebuild from scratch instead of only what changed.")
@click.option(
    "--ray",
    "ray_address",
    envvar="ISSQA_RAY_ADDRESS",
    help="Embed on a Ray cluster: 'auto' joins this machine's, 'local' starts one, or HOST:PORT "
    "[ISSQA_RAY_ADDRESS; needs pip install 'iss-qa[ray]'].",
)
@click.option(
    "--ray-actors",
    type=click.IntRange(min=1),
    envvar="ISSQA_RAY_ACTORS",
    help="Embedding actors [one per CPU or GPU].",
)
@click.option(
    "--ray-batch-size",
    type=click.IntRange(min=1),
    envvar="ISSQA_RAY_BATCH_SIZE",
    default=DEFAULT_BATCH_SIZE,
    show_default=True,
    help="Documents per batch handed to an actor.",
)
def index_cmd(
    full: bool, ray_address: str | None, ray_actors: int | None, ray_batch_size: int, **flags: Any
) -> None:
    """Bring the index in step with the documents folder, embedding only new and changed documents."""
    if ray_address:
        from .distributed import require_ray

        require_ray()  # before anything slow: without Ray, one line says what to install
    engine = get_engine(_app(**flags))
    if not engine.settings.documents.is_dir():
        _fail(f"the documents folder {engine.settings.documents} does not exist")
    reason = engine.staleness()
    if reason is None and not full:
        click.echo("The index is up to date (use --full to rebuild it anyway).")
        return
    if not ray_address:
        _print_report(engine.build(full=full, show_progress=True))
        return
    from .distributed import build_on_ray

    settings = engine.settings
    report, cluster = build_on_ray(
        ray_address,
        settings.documents,
        settings.index,
        engine.embedder,
        settings.chunking,
        full=full,
        actors=ray_actors,
        batch_size=ray_batch_size,
        show_progress=True,
    )
    _print_report(report)
    click.echo(cluster.summary())


@main.command()
@_options
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--overwrite", is_flag=True, help="Replace documents that already have the same name.")
@click.option("--no-index", is_flag=True, help="Only copy the files; rebuild later with 'issqa index'.")
def add(files: tuple[Path, ...], overwrite: bool, no_index: bool, **flags: Any) -> None:
    """Copy FILES into the documents folder (checked like uploads), then update the index.

    A file that cannot be added is reported on its own line and the others still are; the exit
    status is 1 if any was refused.
    """
    engine = get_engine(_app(**flags))
    folder = engine.settings.documents
    refused = 0
    for file in files:
        try:
            try:
                data = file.read_bytes()
            except OSError as exc:
                raise BadRequest(f"cannot read the file ({exc.strerror})") from None
            name = uploads.add(folder, file.name, data, overwrite=overwrite).name
        except IssqaError as exc:
            refused += 1
            click.echo(f"issqa: {file}: {exc.message}", err=True)
            continue
        click.echo(f"added {file} as {name}")
    if refused < len(files) and not no_index:
        _print_report(engine.build(show_progress=True))
    if refused:
        sys.exit(1)


def _print_report(report: BuildReport) -> None:
    for skipped in report.skipped:
        click.echo(f"skipped {skipped.path}: {skipped.reason}", err=True)
    click.echo(report.summary())


@main.command()
@_options
@click.argument("question")
@click.option("--json", "as_json", is_flag=True, help="Print the HTTP response body.")
@click.option("--top-k", type=click.IntRange(1, 20), help="Passages to cite (1-20, default 5).")
def ask(question: str, as_json: bool, top_k: int | None, **flags: Any) -> None:
    """Answer QUESTION from the documents, with citations."""
    app = _app(**flags)
    request = parse(ask_request(Limits.of(app.config)), {"question": question, "top_k": top_k})
    answer = get_engine(app).ask(request.question, request.top_k)
    if as_json:  # the same model, so the same body, as POST /api/ask
        click.echo(answer_model(answer).model_dump_json(indent=2))
        return
    click.echo(answer.answer)
    click.echo()
    for c in answer.citations:
        date = f", {c.published}" if c.published else ""
        click.echo(f"[{c.n}] {c.title}{date} — {c.path} chars {c.start}-{c.end} (score {c.score:.2f})")


@main.command("eval")
@_options
@click.argument("path", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
@click.option(
    "--retrieval", type=click.Choice(["hybrid", "dense", "keyword"]), help="Retrieval mode to measure."
)
@click.option("--no-history", is_flag=True, help="Ignore the questions' conversation history.")
@click.option("--limit", type=int, help="Ask only the first N questions.")
@click.option(
    "--answers",
    type=click.Path(path_type=Path),
    help="Also write each question's draft and outcome to this file, one JSON object per line.",
)
def eval_cmd(
    path: Path,
    as_json: bool,
    retrieval: str | None,
    no_history: bool,
    limit: int | None,
    answers: Path | None,
    **flags: Any,
) -> None:
    """Measure retrieval, answers, refusals and latency on a benchmark folder.

    PATH holds passages.jsonl and questions.jsonl (the format of shared/benchmarks/*). The passages
    are indexed in a temporary folder with the real pipeline and every question goes through the
    code path of /api/ask.
    """
    from .evaluation import evaluate, format_figures, read_questions

    for name in ("passages.jsonl", "questions.jsonl"):
        if not (path / name).is_file():
            _fail(f"{path} has no {name}")
    app = _app(**flags)
    config = {
        key: app.config[key]
        for key in ("MODEL", "BACKEND", "MIN_CONFIDENCE", "CHUNK_TARGET_TOKENS", "CHUNK_MIN_TOKENS")
    }
    if retrieval:
        config["RETRIEVAL"] = retrieval
    questions = read_questions(path / "questions.jsonl")[:limit]
    if answers is None:
        result = evaluate(path, config, questions, use_history=not no_history)
    else:
        if answers.resolve() in {(path / name).resolve() for name in ("passages.jsonl", "questions.jsonl")}:
            _fail(f"--answers {answers} would overwrite the benchmark itself")
        if answers.is_dir():
            _fail(f"--answers {answers} is a folder; give a file name")
        try:
            out = answers.open("w", encoding="utf-8")
        except OSError as e:
            _fail(f"cannot write {answers}: {e.strerror or e}")
        with out:
            result = evaluate(
                path,
                config,
                questions,
                use_history=not no_history,
                record=lambda judged: out.write(json.dumps(judged, ensure_ascii=False) + "\n"),
            )
    click.echo(json.dumps(result, indent=2) if as_json else format_figures(result))


@main.command()
@_options
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
def status(as_json: bool, **flags: Any) -> None:
    """Show the documents, passages, model, build time and whether the index is stale."""
    info = index_status(get_engine(_app(**flags)))
    if as_json:
        click.echo(json.dumps(info, indent=2, ensure_ascii=False))
        return
    click.echo(f"documents folder: {info['documents_dir']}")
    click.echo(f"index folder:     {info['index_dir']}")
    click.echo(f"model:            {info['model']}")
    if not info["built"]:
        click.echo("index:            not built (run 'issqa index')")
        return
    click.echo(f"built at:         {info['built_at']}")
    click.echo(f"documents:        {info['documents']} indexed, {len(info['skipped'])} skipped")
    click.echo(f"passages:         {info['passages']}")
    click.echo(f"stale:            {'yes: ' + info['stale'] if info['stale'] else 'no'}")
    job = info["job"]
    if job:
        progress = (
            f", {job['phase']} {job['embedded']}/{job['to_embed']} passages"
            if job["state"] == "running"
            else ""
        )
        error = f": {job['error']}" if job["error"] else ""
        click.echo(f"last rebuild:     {job['state']}{progress}{error} (started {job['started_at']})")
    for path, skipped in info["skipped"].items():
        click.echo(f"  skipped {path}: {skipped['reason']}")


if __name__ == "__main__":
    main()
