"""The `issqa` command line, in-process and as a real server process."""

from __future__ import annotations

import json
import os
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner

from service import create_app
from service.cli import main
from service.testing import serve


@pytest.fixture
def env(corpus: Path, tmp_path: Path) -> dict[str, str]:
    return {"ISSQA_DOCUMENTS": str(corpus), "ISSQA_INDEX": str(tmp_path / "index")}


def run(args: list[str], env: dict[str, str]):
    return CliRunner().invoke(main, args, env=env, catch_exceptions=False)


def test_index_status_and_ask_from_the_command_line(env, corpus):
    result = run(["status"], env)
    assert result.exit_code == 0 and "not built" in result.output

    result = run(["index"], env)
    assert result.exit_code == 0, result.output
    assert "Rebuilt from scratch: 2 added, 0 changed, 0 removed, 0 unchanged, 0 skipped" in result.output
    assert "passage/s" in result.output, "a progress bar with the embedding rate"

    assert "up to date" in run(["index"], env).output
    assert "Rebuilt from scratch: 2 added" in run(["index", "--full"], env).output

    status = run(["status"], env).output
    assert "stale:            no" in status and "passages:" in status
    (corpus / "extra.txt").write_text("Another article about the station.", encoding="utf-8")
    assert (
        "stale:            yes: documents changed since the last build: 1 added"
        in run(["status"], env).output
    )
    (corpus / "extra.txt").unlink()

    result = run(["ask", "Who replaced Rogozin?"], env)
    assert result.exit_code == 0
    assert "Rogozin" in result.output and "[1] NASA to resume joint ISS flights" in result.output


def test_add_copies_checked_files_and_updates_the_index(env, corpus, tmp_path):
    run(["index"], env)
    outside = tmp_path / "incoming"
    outside.mkdir()
    good = outside / "orbit-news.md"
    good.write_text("# Orbit news\n\nThe Zvezda module's leak was patched by the crew in March.\n")
    empty = outside / "empty.txt"
    empty.write_text("   \n")
    before = {p.name for p in corpus.iterdir()}

    result = run(["add", str(good), str(empty)], env)
    assert result.exit_code == 1, "one file was refused"
    assert f"added {good} as orbit-news.md" in result.output
    refusal = [line for line in result.output.splitlines() if line.startswith("issqa: ")]
    assert len(refusal) == 1 and str(empty) in refusal[0]
    assert "Updated the index: 1 added, 0 changed, 0 removed, 2 unchanged" in result.output
    assert {p.name for p in corpus.iterdir()} == before | {"orbit-news.md"}
    assert good.read_bytes() == (corpus / "orbit-news.md").read_bytes()

    again = run(["add", str(good)], env)
    assert again.exit_code == 1 and "already" in again.output.lower()
    assert run(["add", "--overwrite", str(good)], env).exit_code == 0


def test_a_second_rebuild_is_refused_in_one_line(env, corpus):
    from service.store import BuildLock

    with BuildLock(Path(env["ISSQA_INDEX"])):
        result = CliRunner().invoke(main, ["index"], env=env)
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        f"issqa: A rebuild of the index is already in progress (process {os.getpid()}); "
        "try again when it has finished."
    ]


def test_ask_json_prints_exactly_the_http_body(env):
    run(["index"], env)
    result = run(["ask", "--json", "--top-k", "3", "Which cosmonaut flies on SpaceX?"], env)
    assert result.exit_code == 0
    cli_body = json.loads(result.output)
    app = create_app({"DOCUMENTS": env["ISSQA_DOCUMENTS"], "INDEX": env["ISSQA_INDEX"]})
    http = app.test_client().post(
        "/api/ask", json={"question": "Which cosmonaut flies on SpaceX?", "top_k": 3}
    )
    http_body = http.get_json()
    cli_body.pop("took_ms"), http_body.pop("took_ms")
    assert cli_body == http_body


def test_flags_override_the_environment(env, tmp_path):
    other = tmp_path / "other-index"
    result = run(["index", "--index", str(other)], env)
    assert result.exit_code == 0 and (other / "manifest.json").exists()
    assert not Path(env["ISSQA_INDEX"], "manifest.json").exists()


def test_errors_are_one_line_and_exit_non_zero(env, tmp_path):
    result = CliRunner().invoke(main, ["ask", "Who replaced Rogozin?"], env=env)
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("issqa: ") and "issqa index" in lines[0]

    result = CliRunner().invoke(main, ["index", "--documents", str(tmp_path / "missing")], env=env)
    assert result.exit_code == 1
    assert result.output.strip() == f"issqa: the documents folder {tmp_path / 'missing'} does not exist"

    result = CliRunner().invoke(main, ["ask", "--top-k", "99", "x"], env=env)
    assert result.exit_code == 2 and "99" in result.output


def serve_once(env: dict[str, str], log: Path) -> tuple[dict, str]:
    """Start `issqa serve` as a real process, ask one question over HTTP, stop it; its output too."""
    with serve(env=env, log=log) as server:
        request = urllib.request.Request(
            f"{server.url}/api/ask",
            data=json.dumps({"question": "Who replaced Rogozin?"}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            body = json.load(response)
    return body, log.read_text(errors="replace")


def test_serve_builds_when_needed_and_restarts_without_re_embedding(env, tmp_path):
    body, output = serve_once(env, tmp_path / "first.log")
    assert "Building the index: no index has been built" in output
    assert body["answered"] and "Yuri Borisov" in body["citations"][0]["passage"]
    built_at = json.loads(Path(env["ISSQA_INDEX"], "manifest.json").read_text())["built_at"]
    manifest_mtime = Path(env["ISSQA_INDEX"], "manifest.json").stat().st_mtime_ns

    body, output = serve_once(env, tmp_path / "second.log")
    assert "Building the index" not in output
    assert body["answered"]
    assert Path(env["ISSQA_INDEX"], "manifest.json").stat().st_mtime_ns == manifest_mtime
    assert json.loads(Path(env["ISSQA_INDEX"], "manifest.json").read_text())["built_at"] == built_at
