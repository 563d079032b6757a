"""Document management over HTTP: the bearer token, uploads, deletes and background rebuilds."""

from __future__ import annotations

import json
import time

import pytest

from service import create_app
from service.jobs import JOB_FILE, read_job
from service.store import BuildLock

from .files import make_pdf, page_text

TOKEN = "s3cret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


@pytest.fixture
def admin(corpus, tmp_path, fake_embedder):
    """An app with document management on, over a temporary corpus (plumbing: the fake embedder)."""
    app = create_app(
        {
            "DOCUMENTS": corpus,
            "INDEX": tmp_path / "index",
            "EMBEDDER": fake_embedder,
            "TESTING": True,
            "ADMIN_TOKEN": TOKEN,
        }
    )
    app.extensions["issqa"].build()
    return app


def wait_for_job(app, timeout: float = 60) -> dict:
    """The latest job once it has finished."""
    index_dir = app.extensions["issqa"].settings.index
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = read_job(index_dir)
        if job and job.state != "running":
            return job.to_dict()
        time.sleep(0.05)
    pytest.fail("the rebuild did not finish")


def upload(client, *files: tuple[str, bytes], headers=AUTH, **fields):
    data = {**fields, "file": [(_stream(content), name) for name, content in files]}
    return client.post("/api/documents", data=data, headers=headers, content_type="multipart/form-data")


def _stream(content: bytes):
    import io

    return io.BytesIO(content)


WRITES = [
    ("post", "/api/index/rebuild"),
    ("post", "/api/documents"),
    ("delete", "/api/documents/anything"),
]


@pytest.mark.parametrize(("method", "path"), WRITES)
def test_writing_endpoints_are_off_without_a_configured_token(client, method, path):
    response = getattr(client, method)(path, headers=AUTH)
    assert response.status_code == 403
    error = response.get_json()["error"]
    assert error["code"] == "admin_disabled" and "ISSQA_ADMIN_TOKEN" in error["message"]


@pytest.mark.parametrize(("method", "path"), WRITES)
@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}, {"Authorization": f"Basic {TOKEN}"}],
)
def test_a_missing_or_wrong_token_gets_401(admin, method, path, headers):
    response = getattr(admin.test_client(), method)(path, headers=headers)
    assert response.status_code == 401
    assert response.get_json()["error"]["code"] == "unauthorized"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_reading_endpoints_stay_open(admin):
    client = admin.test_client()
    assert client.get("/api/documents").status_code == 200
    assert client.get("/api/index").status_code == 200


def test_rebuild_runs_in_the_background_and_reports_progress(admin, corpus):
    client = admin.test_client()
    response = client.post("/api/index/rebuild", json={"full": True}, headers=AUTH)
    assert response.status_code == 202
    job = response.get_json()["job"]
    assert job["state"] == "running" and job["full"] is True and job["id"]
    assert response.headers["Location"].endswith("/api/index")
    done = wait_for_job(admin)
    assert done["id"] == job["id"] and done["state"] == "succeeded" and done["phase"] == "done"
    assert done["summary"]["full"] and len(done["summary"]["added"]) == 2
    assert done["embedded"] == done["to_embed"] == done["summary"]["embedded"] > 0
    status = client.get("/api/index").get_json()
    assert status["job"]["id"] == job["id"] and status["stale"] is None

    assert client.post("/api/index/rebuild", headers=AUTH).status_code == 202  # no body: incremental
    assert wait_for_job(admin)["summary"]["embedded"] == 0


def test_a_second_rebuild_gets_409(admin):
    with BuildLock(admin.extensions["issqa"].settings.index):
        response = admin.test_client().post("/api/index/rebuild", headers=AUTH)
    assert response.status_code == 409
    assert response.get_json()["error"]["code"] == "rebuild_in_progress"


@pytest.mark.parametrize(
    ("body", "code"),
    [(b"[]", "invalid_json"), (b'{"full": "yes"}', "invalid_full"), (b'{"x": 1}', "unknown_field")],
)
def test_a_bad_rebuild_body_gets_400(admin, body, code):
    response = admin.test_client().post(
        "/api/index/rebuild", data=body, headers={**AUTH, "Content-Type": "application/json"}
    )
    assert response.status_code == 400 and response.get_json()["error"]["code"] == code


def test_a_job_whose_process_died_reads_as_interrupted(admin):
    index_dir = admin.extensions["issqa"].settings.index
    dead = {
        "id": "abc",
        "full": False,
        "state": "running",
        "started_at": "2026-11-23T00:00:00+00:00",
        "pid": 2**22 + 7,
    }
    (index_dir / JOB_FILE).write_text(json.dumps(dead))
    job = admin.test_client().get("/api/index").get_json()["job"]
    assert job["state"] == "interrupted" and "stopped" in job["error"]


def test_an_uploaded_document_is_saved_indexed_and_served(admin, corpus):
    client = admin.test_client()
    text = b"The Zvezda service module's air leak was traced to a crack near the transfer tunnel.\n"
    response = upload(client, ("leak-report.txt", text), title="Leak report", published="2024-05-02")
    assert response.status_code == 202, response.get_json()
    body = response.get_json()
    assert body["saved"] == [{"id": "leak-report", "path": "leak-report.txt"}] and body["rejected"] == []
    assert body["job"]["state"] == "running"
    assert (corpus / "leak-report.txt").read_bytes().endswith(text)
    assert wait_for_job(admin)["summary"]["added"] == ["leak-report.txt"]
    doc = client.get("/api/documents/leak-report").get_json()
    assert doc["title"] == "Leak report" and doc["published"] == "2024-05-02"
    assert doc["text"].strip() == text.decode().strip()


def test_a_pdf_upload_is_cited_with_its_page(admin, corpus):
    client = admin.test_client()
    pdf = make_pdf([page_text(1), page_text(2), "Orbital debris forced a station reboost on page three."])
    assert upload(client, ("briefing.pdf", pdf)).status_code == 202
    assert wait_for_job(admin)["state"] == "succeeded"
    answer = client.post("/api/ask", json={"question": "Why was there a station reboost?"}).get_json()
    pages = {c["page"] for c in answer["citations"] if c["path"] == "briefing.pdf"}
    assert 3 in pages
    assert all(c["page"] is None for c in answer["citations"] if c["path"] != "briefing.pdf")


def test_upload_file_names_cannot_escape_the_documents_folder(admin, corpus, tmp_path):
    client = admin.test_client()
    response = upload(client, ("../../escape.txt", b"An article that tried to escape.\n"))
    assert response.status_code == 202
    assert response.get_json()["saved"][0]["path"] == "escape.txt"
    assert (corpus / "escape.txt").exists()
    assert not (tmp_path / "escape.txt").exists() and not (tmp_path.parent / "escape.txt").exists()
    hidden = upload(client, (".hidden.txt", b"Hidden.\n"))
    assert hidden.status_code == 400 and hidden.get_json()["error"]["code"] == "invalid_filename"
    assert not (corpus / ".hidden.txt").exists()


def test_uploads_are_checked_by_content_and_size(admin, corpus, fake_embedder, tmp_path):
    client = admin.test_client()
    before = sorted(p.name for p in corpus.iterdir())
    disguised = upload(client, ("photo.txt", PNG))
    assert disguised.status_code == 415
    assert upload(client, ("tool.exe", b"MZ...")).status_code == 415
    not_pdf = upload(client, ("fake.pdf", b"just text\n"))
    assert not_pdf.status_code == 415
    assert upload(client, ("blank.txt", b"  \n")).status_code == 400

    small = create_app(
        {
            "DOCUMENTS": corpus,
            "INDEX": tmp_path / "index",
            "EMBEDDER": fake_embedder,
            "ADMIN_TOKEN": TOKEN,
            "MAX_UPLOAD_BYTES": 2000,
        }
    ).test_client()
    big = upload(small, ("big.txt", b"word " * 1000))
    assert big.status_code == 413 and big.get_json()["error"]["code"] == "payload_too_large"
    assert sorted(p.name for p in corpus.iterdir()) == before, "nothing refused was written"


def test_one_bad_file_never_stops_the_others(admin, corpus):
    response = upload(admin.test_client(), ("good.md", b"# Good\n\nA good article.\n"), ("bad.txt", PNG))
    assert response.status_code == 202
    body = response.get_json()
    assert [s["path"] for s in body["saved"]] == ["good.md"]
    assert body["rejected"][0]["filename"] == "bad.txt"
    assert body["rejected"][0]["error"]["code"] == "unsupported_media_type"


def test_an_existing_document_is_replaced_only_when_asked(admin, corpus):
    client = admin.test_client()
    name = sorted(p.name for p in corpus.glob("*.txt"))[0]
    original = (corpus / name).read_bytes()
    response = upload(client, (name, b"A replacement.\n"))
    assert response.status_code == 409 and response.get_json()["error"]["code"] == "conflict"
    assert (corpus / name).read_bytes() == original
    assert upload(client, (name, b"A replacement.\n"), overwrite="true").status_code == 202
    assert (corpus / name).read_bytes() == b"A replacement.\n"
    assert wait_for_job(admin)["summary"]["changed"] == [name]


def test_delete_removes_the_file_and_the_document(admin, corpus):
    client = admin.test_client()
    listing = client.get("/api/documents").get_json()["documents"]
    doc = listing[0]
    response = client.delete(f"/api/documents/{doc['id']}", headers=AUTH)
    assert response.status_code == 202
    assert response.get_json()["deleted"] == {"id": doc["id"], "path": doc["path"]}
    assert not (corpus / doc["path"]).exists()
    assert wait_for_job(admin)["summary"]["removed"] == [doc["path"]]
    assert client.get(f"/api/documents/{doc['id']}").status_code == 404
    assert client.delete(f"/api/documents/{doc['id']}", headers=AUTH).status_code == 404
