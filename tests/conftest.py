"""Shared fixtures: the real model, a temporary copy of the corpus, a built index, the app, a client."""

from __future__ import annotations

import hashlib
import importlib.util
import re
import shutil
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from service import create_app
from service.embedding import load_embedder

from .live_server import live_server  # noqa: F401  (the session's `issqa serve`, for live tests)

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = ROOT / "documents"
SHARED = ROOT.parent / "shared"


def bench_script(name: str) -> ModuleType:
    """`bench/<name>.py` imported as a module: bench/ holds scripts, not a package.

    bench/ goes on the import path, as when a script runs, since scripts import one another.
    """
    if str(ROOT / "bench") not in sys.path:
        sys.path.append(str(ROOT / "bench"))
    spec = importlib.util.spec_from_file_location(name, ROOT / "bench" / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class FakeEmbedder:
    """A deterministic stand-in for plumbing tests: words hashed into a few dimensions.

    It has the real embedder's shape (encode, encode_spans, count_tokens) and counts its calls, so
    tests can tell whether anything was re-embedded. Never used for retrieval or answer quality.
    """

    name = "all-MiniLM-L6-v2"
    dimensions = 16
    max_tokens = 254

    def __init__(self) -> None:
        self.encoded = 0

    def _vector(self, text: str) -> np.ndarray:
        v = np.zeros(self.dimensions, dtype=np.float32)
        for word in re.findall(r"\w+", text.lower()):
            v[int(hashlib.md5(word.encode()).hexdigest(), 16) % self.dimensions] += 1.0
        return v / (np.linalg.norm(v) or 1.0)

    def encode(self, texts: list[str], show_progress: bool = False, *, during=None) -> np.ndarray:
        self.encoded += len(texts)
        if during is not None:
            during()
        return np.array([self._vector(t) for t in texts], dtype=np.float32).reshape(-1, self.dimensions)

    def encode_spans(self, texts, spans, progress=None):
        vectors = self.encode(texts)
        if progress and texts:
            progress(len(texts))
        return vectors, [
            np.array([self._vector(t[a:b]) for a, b in s], dtype=np.float32).reshape(-1, self.dimensions)
            for t, s in zip(texts, spans, strict=True)
        ]

    def count_tokens(self, text: str) -> int:
        return len(re.findall(r"\w+|[^\w\s]", text))


@pytest.fixture(scope="session")
def embedder():
    """The real all-MiniLM-L6-v2, loaded once for the whole session."""
    return load_embedder()


@pytest.fixture
def fake_embedder() -> FakeEmbedder:
    return FakeEmbedder()


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    """A temporary copy of documents/ that a test may change freely."""
    folder = tmp_path / "documents"
    shutil.copytree(DOCUMENTS, folder)
    return folder


@pytest.fixture(scope="session")
def news_index(tmp_path_factory: pytest.TempPathFactory, embedder) -> dict[str, Path]:
    """documents/ copied and indexed once with the real model, shared read-only by many tests."""
    base = tmp_path_factory.mktemp("news")
    docs = base / "documents"
    shutil.copytree(DOCUMENTS, docs)
    app = create_app({"DOCUMENTS": docs, "INDEX": base / "index"})
    app.extensions["issqa"].build()
    return {"DOCUMENTS": docs, "INDEX": base / "index"}


@pytest.fixture
def app(news_index):
    """The app over the real corpus and the real model."""
    return create_app({**news_index, "TESTING": True})


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def ask(client):
    """POST a question and return the parsed 200 response."""

    def _ask(question: str, **fields):
        response = client.post("/api/ask", json={"question": question, **fields})
        assert response.status_code == 200, response.get_json()
        return response.get_json()

    return _ask
