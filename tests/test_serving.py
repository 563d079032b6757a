"""Production serving: the process and thread plan, `--dev` against gunicorn, and torch-free workers (no timing)."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from service import serving
from service.cli import main

from .conftest import DOCUMENTS
from .live_server import running_server
from .test_jobs import call


@pytest.mark.parametrize("cores", [1, 2, 3, 4, 8, 16, 64])
def test_default_plan_never_oversubscribes_the_cores(cores):
    plan = serving.plan(cores=cores, environ={})
    assert plan.workers >= 1 and plan.threads >= 1 and plan.torch_threads >= 1
    assert plan.workers * plan.torch_threads <= cores
    assert plan.workers == min(cores, serving.MAX_DEFAULT_WORKERS)


def test_flags_beat_the_environment_which_beats_the_defaults():
    environ = {"ISSQA_WORKERS": "2", "ISSQA_THREADS": "8", "ISSQA_TORCH_THREADS": "3"}
    assert serving.plan(cores=8, environ=environ) == serving.ServePlan(2, 8, 3, 8)
    assert serving.plan(workers=1, cores=8, environ=environ).workers == 1
    # Fewer workers than cores: the rest go to torch.
    assert serving.plan(workers=2, cores=8, environ={}) == serving.ServePlan(2, serving.DEFAULT_THREADS, 4, 8)


@pytest.mark.parametrize("environ", [{"ISSQA_WORKERS": "0"}, {"ISSQA_THREADS": "many"}])
def test_bad_settings_are_refused(environ):
    with pytest.raises(ValueError):
        serving.plan(cores=2, environ=environ)


def _record(monkeypatch):
    calls: list[tuple] = []
    monkeypatch.setattr(serving, "build_if_stale", lambda config: calls.append(("build", config)))
    monkeypatch.setattr(serving, "serve_dev", lambda config, host, port: calls.append(("dev", host, port)))
    monkeypatch.setattr(
        serving,
        "serve_production",
        lambda config, host, port, plan: calls.append(("gunicorn", host, port, plan)),
    )
    return calls


def test_serve_runs_gunicorn_by_default_and_flask_only_with_dev(monkeypatch, tmp_path):
    calls = _record(monkeypatch)
    env = {"ISSQA_INDEX": str(tmp_path / "index"), "ISSQA_WORKERS": "", "ISSQA_TORCH_THREADS": ""}
    result = CliRunner().invoke(
        main, ["serve", "--port", "8123", "--workers", "2", "--threads", "3"], env=env
    )
    assert result.exit_code == 0, result.output
    assert [c[0] for c in calls] == ["build", "gunicorn"]
    _, host, port, plan = calls[1]
    assert (host, port, plan.workers, plan.threads) == ("127.0.0.1", 8123, 2, 3)
    assert "2 workers x 3 threads" in result.output

    calls.clear()
    result = CliRunner().invoke(main, ["serve", "--dev", "--port", "8124"], env=env)
    assert result.exit_code == 0, result.output
    assert [c[0] for c in calls] == ["build", "dev"]
    assert "development server" in result.output


def test_serve_refuses_a_bad_worker_count(monkeypatch):
    _record(monkeypatch)
    result = CliRunner().invoke(main, ["serve", "--workers", "0"])
    assert result.exit_code == 1 and result.output.startswith("issqa: workers must be at least 1")


def test_an_unread_body_is_read_away_so_keep_alive_survives():
    import io

    body = io.BytesIO(b"x" * 70_000)

    def refuse(environ, start_response):  # like a 413 answered before the body is read
        start_response("413 Request Entity Too Large", [])
        return [b"too large"]

    app = serving.drain_unread_body(refuse)
    result = app({"CONTENT_LENGTH": "70000", "wsgi.input": body}, lambda status, headers: None)
    assert result == [b"too large"] and body.read() == b""


def _children(pid: int) -> list[int]:
    """Processes whose parent is `pid` (from /proc: Linux only, as the server is)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # it ended meanwhile
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def _cmdline(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " ")


def _libraries(pid: int) -> str:
    return Path(f"/proc/{pid}/maps").read_text()


def test_gunicorn_workers_serve_and_rebuild_without_torch(tmp_path):
    """Real `issqa serve` workers (default backend) never load torch: not to answer, not to rebuild."""
    documents = tmp_path / "documents"
    shutil.copytree(DOCUMENTS, documents)
    token = "serve-token"
    env = {"ISSQA_ADMIN_TOKEN": token, "ISSQA_RATE_LIMIT": "off", "ISSQA_WORKERS": "2", "ISSQA_BACKEND": ""}
    with running_server(documents, tmp_path / "index", tmp_path / "serve.log", env) as url:
        question = json.dumps({"question": "Who replaced Rogozin?"}).encode()
        headers = {"Content-Type": "application/json"}
        for _ in range(4):
            assert call(f"{url}/api/ask", "POST", question, headers)[0] == 200
        port = url.rsplit(":", 1)[1]  # this server's master (the session's live server may run too)
        (master,) = [
            p for p in _children(os.getpid()) if " serve " in _cmdline(p) and f"--port {port}" in _cmdline(p)
        ]
        # gunicorn's workers are forks of the master (the same command line); multiprocessing's
        # resource tracker, left by the spawned build, is not one.
        workers = [p for p in _children(master) if "multiprocessing" not in _cmdline(p)]
        assert len(workers) == 2
        status, started = call(
            f"{url}/api/index/rebuild",
            "POST",
            b'{"full": true}',
            {**headers, "Authorization": f"Bearer {token}"},
        )
        assert status == 202, started
        deadline = time.monotonic() + 120
        job = started["job"]
        while job["state"] == "running" and time.monotonic() < deadline:
            time.sleep(0.2)
            job = call(f"{url}/api/index")[1]["job"]
        assert job["state"] == "succeeded" and job["summary"]["embedded"] > 0, job
        assert call(f"{url}/api/ask", "POST", question, headers)[0] == 200
        for pid in [master, *workers]:
            maps = _libraries(pid)
            assert "libtorch" not in maps, f"process {pid} loaded torch"
        for pid in workers:
            assert "onnxruntime" in _libraries(pid)  # it is the ONNX model that answers


@pytest.mark.parametrize(
    ("setting", "value", "message"),
    [
        ("ISSQA_DEVICE", "gpu", "ISSQA_DEVICE must be one of auto, cpu, cuda, not 'gpu'"),
        (
            "ISSQA_QUESTION_PRECISION",
            "int4",
            "ISSQA_QUESTION_PRECISION must be one of fp32, int8, not 'int4'",
        ),
    ],
)
def test_serve_refuses_a_bad_model_setting_before_starting_anything(
    monkeypatch, tmp_path, setting, value, message
):
    real = serving.build_if_stale
    calls = _record(monkeypatch)
    monkeypatch.setattr(serving, "build_if_stale", real)  # the real check, then recorded servers
    env = {"ISSQA_INDEX": str(tmp_path / "index"), setting: value}
    result = CliRunner().invoke(main, ["serve", "--port", "8125"], env=env)
    assert result.exit_code == 1
    assert result.output.startswith(f"issqa: {message}")
    assert calls == []  # neither gunicorn nor the development server started


def test_a_worker_loads_what_a_first_question_needs_before_it_serves(news_index):
    # The spelling word list loads on the first word no passage holds; a worker loads it while it
    # starts, so no user's question waits for it.
    from service import text

    text._english.cache_clear()
    serving.load_app({**news_index})
    assert text._english.cache_info().currsize == 1
