"""A model folder shaped like the packaged one, with seeded random weights, for speed runs only.

Why: how fast a server layout answers (workers, model threads, batching) depends on the model's
shapes, not on its weights, and the packaged model (88 MB) cannot travel to the device machine
beside the wheels a run needs (64 MiB in all; bench/device_layouts.sh). The folder keeps every file of
FROM but the weights (configuration, tokenizer, pooling), and gets a transformer of the same
configuration initialised from a fixed seed. Its vectors mean nothing: use it for timing, never for
retrieval or answer figures.

    python bench/random_model.py OUT [--from FOLDER]
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

WEIGHTS = ("model.safetensors", "pytorch_model.bin")
SEED = 0


def packaged() -> Path:
    """The packaged model's folder (the default FROM)."""
    from service.embedding import DEFAULT_MODEL, resolve_model

    return Path(resolve_model(DEFAULT_MODEL))


def make(source: Path, out: Path) -> None:
    """Copy `source` without its weights into `out` and write seeded random weights of its configuration."""
    import torch
    from transformers import AutoConfig, AutoModel

    shutil.copytree(source, out, ignore=shutil.ignore_patterns(*WEIGHTS), dirs_exist_ok=True)
    torch.manual_seed(SEED)
    model = AutoModel.from_config(AutoConfig.from_pretrained(out))
    model.save_pretrained(out, safe_serialization=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument(
        "--from", dest="source", type=Path, help="a model folder (default: the packaged model)"
    )
    args = parser.parse_args()
    make(args.source or packaged(), args.out)
    print(f"{args.out}: {sum(f.stat().st_size for f in args.out.rglob('*') if f.is_file()) / 2**20:.0f} MiB")


if __name__ == "__main__":
    main()
