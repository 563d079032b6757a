#!/usr/bin/env bash
# Issue 13's server layouts on a machine of more cores: one short run on the device machine (16 cores).
#
# The device machine reaches nothing and has Python 3.12 with torch, onnxruntime, tokenizers,
# sentence-transformers and numpy, but not the rest of what a serving process imports, nor the model.
# `prepare` (here) gathers into .device/ (ignored by git) the wheels of the rest, the packaged model's
# files less its weights, and SQuAD v1.1 dev (perf.py indexes its first 200 passages). `run`
# (there) installs the wheels, gives the model seeded random weights (bench/random_model.py: the
# layout's speed depends on the shapes only) and runs bench/perf.py's in-process and HTTP parts for
# the default layout and the others given (LAYOUTS), writing perf.txt under $OUT.
#
#   bash bench/device_layouts.sh prepare ../shared/benchmarks/squad-v1.1-dev
#   device run: command "bash bench/device_layouts.sh run", carry [".device"], timeout_s 540
#   dry run here: INSTALLED=1 LAYOUTS=2x1 PATH=.venv/bin:$PATH OUT=/tmp/out bash bench/device_layouts.sh run
#
# Figures are the model's speed, not its answers: the random weights rank nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
DEVICE=.device
PASSAGES=200
# Carried as cp312 manylinux wheels: what a serving process imports beyond the device's own packages.
WHEELS="faiss-cpu==1.15.1 tantivy==0.27.0 pyspellchecker==0.9.1 rapidfuzz==3.14.6 pystemmer==3.1.0
pydantic==2.14.4 pydantic-core==2.50.5 typing-inspection==0.4.5 annotated-types==0.8.0
typing-extensions gunicorn==27.0.1 flask==3.1.3 blinker==1.9.0 itsdangerous==2.2.0
flask-limiter==4.1.1 limits==5.8.0 deprecated==3.0.1 ordered-set==4.1.0"

prepare() {
    local squad=$1
    grep -qx "/$DEVICE/" .git/info/exclude 2>/dev/null || echo "/$DEVICE/" >> .git/info/exclude
    rm -rf "$DEVICE" && mkdir -p "$DEVICE/whl" "$DEVICE/squad"
    # shellcheck disable=SC2086
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
        --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d "$DEVICE/whl" $WHEELS
    local model
    model=$(.venv/bin/python -c "from service.embedding import resolve_model as r, DEFAULT_MODEL as m; print(r(m))")
    cp -r "$model" "$DEVICE/model-files"
    rm -f "$DEVICE/model-files/model.safetensors" "$DEVICE/model-files/README.md"
    cp "$squad/passages.jsonl" "$squad/questions.jsonl" "$DEVICE/squad/"  # perf.py takes the first passages
    du -sh "$DEVICE"
}

run() {
    local out=${OUT:-/tmp/out}
    mkdir -p "$out"
    if [ "${INSTALLED:-0}" = 1 ]; then  # a dry run here, in the project's own environment
        export PYTHONPATH=$PWD
    else
        python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
            --target /tmp/site "$DEVICE"/whl/*.whl
        export PYTHONPATH=/tmp/site:$PWD
    fi
    export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
    python3 bench/random_model.py /tmp/model --from "$DEVICE/model-files"
    export ISSQA_MODEL=/tmp/model ISSQA_DEVICE=cpu
    { nproc; python3 -c "import torch, onnxruntime; print(torch.__version__, onnxruntime.__version__)"; } \
        | tee "$out/perf.txt"
    python3 bench/perf.py "$DEVICE/squad" --passages "$PASSAGES" --questions 150 --seconds 8 \
        --skip build --layouts "${LAYOUTS:-default,8x2,16x1,4x4}" 2>&1 | tee -a "$out/perf.txt"
}

case "${1:-}" in
prepare) prepare "${2:?the squad-v1.1-dev folder}" ;;
run) run ;;
*) echo "usage: $0 prepare SQUAD_V1_1_DEV | run" >&2; exit 2 ;;
esac
