"""Live rebuilds: a real server keeps answering while it rebuilds, and serves the new index at once."""

from __future__ import annotations

import json
import shutil
import threading
import time
import urllib.error
import urllib.request
import uuid

from .conftest import DOCUMENTS, SHARED
from .live_server import running_server

TOKEN = "live-token"


def call(
    url: str, method: str = "GET", body: bytes | None = None, headers: dict | None = None
) -> tuple[int, dict]:
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def multipart(name: str, content: bytes) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
            f"Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        + content
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return body, f"multipart/form-data; boundary={boundary}"


def test_questions_during_a_rebuild_and_the_switch_all_succeed(tmp_path):
    documents = tmp_path / "documents"
    shutil.copytree(DOCUMENTS, documents)
    env = {"ISSQA_ADMIN_TOKEN": TOKEN, "ISSQA_RATE_LIMIT": "off"}
    with running_server(documents, tmp_path / "index", tmp_path / "serve.log", env) as url:
        results: list[tuple[int, float]] = []
        stop = threading.Event()

        def ask_in_a_loop() -> None:
            question = json.dumps({"question": "Who replaced Rogozin at Roscosmos?"}).encode()
            while not stop.is_set():
                status, _ = call(f"{url}/api/ask", "POST", question, {"Content-Type": "application/json"})
                results.append((status, time.monotonic()))

        asker = threading.Thread(target=ask_in_a_loop)
        asker.start()
        try:
            time.sleep(1)
            article = (SHARED / "corpora" / "wikipedia-space" / "Artemis_program.txt").read_bytes()
            body, content_type = multipart("artemis.txt", article)
            auth = {"Authorization": f"Bearer {TOKEN}"}
            status, uploaded = call(
                f"{url}/api/documents", "POST", body, {**auth, "Content-Type": content_type}
            )
            assert status == 202, uploaded
            started = time.monotonic()
            job = uploaded["job"]
            seen_progress = False
            while job["state"] == "running":
                assert time.monotonic() - started < 300, "the rebuild did not finish"
                time.sleep(0.2)
                _, info = call(f"{url}/api/index")
                job = info["job"]
                seen_progress |= job["phase"] == "embedding" and job["to_embed"] > 0
            finished = time.monotonic()
            time.sleep(1)  # questions after the switch too
        finally:
            stop.set()
            asker.join()

        assert job["state"] == "succeeded", job
        assert job["summary"]["added"] == ["artemis.txt"] and job["summary"]["unchanged"] == 2
        assert seen_progress, "the job reported its progress while embedding"
        during = [s for s, t in results if started <= t <= finished]
        assert len(during) >= 3, "questions were asked while the index was rebuilt"
        assert [s for s, _ in results] == [200] * len(results), "every question succeeded"

        status, answer = call(
            f"{url}/api/ask",
            "POST",
            json.dumps({"question": "What is the Artemis program?"}).encode(),
            {"Content-Type": "application/json"},
        )
        assert status == 200 and answer["citations"][0]["path"] == "artemis.txt", "served without a restart"
        assert call(f"{url}/api/index")[1]["stale"] is None
