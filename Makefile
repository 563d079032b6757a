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

# Debian packages $(1) unless the shell test $(2) passes; without them $(3) fail (never skip).
define apt_install
	@if ! { $(2); }; then \
		if command -v apt-get >/dev/null; then \
			SUDO=$$([ "$$(id -u)" -eq 0 ] || echo sudo); \
			$$SUDO apt-get update && \
			$$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $(1) \
				|| echo "warning: could not install $(1); $(3) will fail" >&2; \
		else \
			echo "warning: $(1) missing and there is no apt-get; $(3) will fail" >&2; \
		fi; \
	fi
endef

# Headless Chromium for the browser tests (tests/test_chat.py): Playwright's own download is not used.
browser:
	$(call apt_install,chromium chromium-driver,[ -x /usr/bin/chromium ],the browser tests)

# nginx and redis-server for deploy/ and its tests (tests/test_deploy.py).
deploy-tools:
	$(call apt_install,nginx redis-server,{ command -v nginx || [ -x /usr/sbin/nginx ]; } >/dev/null && command -v redis-server >/dev/null,the deploy tests)

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
