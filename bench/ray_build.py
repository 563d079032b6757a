"""A build through Ray Data against a local build of the same documents, in one run.

    python bench/ray_build.py [--documents ../shared/corpora/wikipedia-space] [--rounds 2]

Runs itself inside a network namespace with only loopback (`unshare --net`, as root), because Ray
looks for the machine's external address. There it starts a one-node Ray cluster with as many CPUs as
this machine has, then alternates full local builds (`indexing.build_index`, torch on all cores) and
full Ray builds (`distributed.build_on_ray`: one single-threaded actor per CPU, each loading the model
once per build), and prints passages per second for each and their ratio. A Ray build's time
includes starting its actors and loading the model in each; the cluster's own start is not counted.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"


def in_namespace() -> None:
    """Run this script again inside a loopback-only network namespace, and exit with its status."""
    script = "ip link set lo up && exec " + " ".join([sys.executable, *map(str, sys.argv)])
    env = {**os.environ, "ISSQA_RAY_NETNS": "1", "RAY_USAGE_STATS_ENABLED": "0"}
    sys.exit(subprocess.run(["unshare", "--net", "--", "bash", "-c", script], env=env, cwd=ROOT).returncode)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--documents", type=Path, default=SHARED / "corpora" / "wikipedia-space")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    if os.environ.get("ISSQA_RAY_NETNS") != "1":
        in_namespace()

    with tempfile.TemporaryDirectory(dir="/tmp", prefix="ray-") as tmp:  # short: Ray's socket paths
        # Ray's token authentication with this run's own token; set before Ray reads its configuration.
        token = Path(tmp) / "auth_token"
        token.write_text(secrets.token_hex(32))
        os.environ.update({"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token)})
        import ray

        from service.distributed import build_on_ray
        from service.embedding import load_embedder
        from service.indexing import build_index

        cores = len(os.sched_getaffinity(0))
        embedder = load_embedder()
        embedder.encode(["warm up"])
        ray.init(
            address="local",
            _temp_dir=str(Path(tmp) / "r"),
            num_cpus=cores,
            num_gpus=0,
            include_dashboard=False,
            log_to_driver=False,
            logging_level=logging.ERROR,
            runtime_env={"env_vars": {"HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}},
        )
        local_seconds, ray_seconds, passages, actors = [], [], 0, 0
        for _ in range(args.rounds):
            for kind in ("local", "ray"):
                index = Path(tmp) / f"index-{kind}"
                shutil.rmtree(index, ignore_errors=True)
                started = time.perf_counter()
                if kind == "local":
                    report = build_index(args.documents, index, embedder, full=True)
                    local_seconds.append(time.perf_counter() - started)
                else:
                    report, cluster = build_on_ray("local", args.documents, index, embedder, full=True)
                    ray_seconds.append(time.perf_counter() - started)
                    actors = len(cluster.actors)
                passages = report.passages
        ray.shutdown()
    local, distributed = statistics.median(local_seconds), statistics.median(ray_seconds)
    print(
        json.dumps(
            {
                "documents": str(args.documents),
                "passages": passages,
                "cores": cores,
                "ray_actors": actors,
                "local_seconds": [round(s, 1) for s in local_seconds],
                "ray_seconds": [round(s, 1) for s in ray_seconds],
                "local_passages_per_second": round(passages / local, 1),
                "ray_passages_per_second": round(passages / distributed, 1),
                "ray_vs_local_throughput": round(local / distributed, 3),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
