# Two commands do all set-up on a fresh machine: `make serve` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install browser deploy-tools serve test lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch first and pinned: anything looser pulls a multi-GB CUDA build.
	$(BIN)/python -m pip install --quiet torch==2.13.0
	# The ray extra too: the tests cover `issqa index --ray`.
	$(BIN)/python -m pip install --quiet -e '.[dev,ray]'
	touch $(STAMP)

# The model's ONNX export (the default backend), made once into the cache folder (ISSQA_ONNX_CACHE,
# else ~/.cache/iss-qa/onnx); a no-op, without loading torch, when it is already there.
install: $(STAMP)
	@$(BIN)/python -c 'from service.embedding import prepare; print("ONNX model:", prepare())'

serve: install
	$(BIN)/issqa serve

# Headless Chromium for the browser tests (tests/test_chat.py), from the distribution's packages.
# Without it those tests fail (never skip): Playwright's own browser download is not used.
browser:
	@if [ ! -x /usr/bin/chromium ]; then \
		if command -v apt-get >/dev/null; then \
			SUDO=$$([ "$$(id -u)" -eq 0 ] || echo sudo); \
			$$SUDO apt-get update && \
			$$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium chromium-driver \
				|| echo "warning: could not install chromium; the browser tests will fail" >&2; \
		else \
			echo "warning: /usr/bin/chromium is missing and there is no apt-get; the browser tests will fail" >&2; \
		fi; \
	fi

# nginx and redis-server for deploy/ and its tests (tests/test_deploy.py), from the distribution's packages.
deploy-tools:
	@if ! command -v nginx >/dev/null && [ ! -x /usr/sbin/nginx ] || ! command -v redis-server >/dev/null; then \
		if command -v apt-get >/dev/null; then \
			SUDO=$$([ "$$(id -u)" -eq 0 ] || echo sudo); \
			$$SUDO apt-get update && \
			$$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nginx redis-server \
				|| echo "warning: could not install nginx and redis-server; the deploy tests will fail" >&2; \
		else \
			echo "warning: nginx or redis-server is missing and there is no apt-get; the deploy tests will fail" >&2; \
		fi; \
	fi

test: install browser deploy-tools
	$(BIN)/ruff check service tests bench deploy
	$(BIN)/mypy --strict service
	$(BIN)/python -m pytest

bench: install
	$(BIN)/issqa eval ../shared/benchmarks/squad-v1.1-dev
	$(BIN)/issqa eval evals/iss-news
	$(BIN)/issqa eval evals/space-conversations
	$(BIN)/issqa eval evals/space-conversations --no-history

clean:
	rm -rf $(VENV) index .pytest_cache
