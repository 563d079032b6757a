"""Production serving: the process and thread plan, and `--dev` against gunicorn (no timing)."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from service import serving
from service.cli import main


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
