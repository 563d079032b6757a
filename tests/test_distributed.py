"""`issqa index --ray`: without Ray it fails at once; with it, builds on a real two-node cluster.

The cluster checks live in tests/ray_cluster_checks.py and run in a pytest of their own inside a
network namespace that has only loopback (`unshare --net`, then `ip link set lo up`), so that Ray
never sends anything past 127.0.0.0/8; their output is shown here when one fails.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHECKS_SECONDS = 900


def test_ray_option_without_ray_says_what_to_install(tmp_path: Path) -> None:
    (tmp_path / "ray").mkdir()
    (tmp_path / "ray" / "__init__.py").write_text("raise ImportError('No module named ray')\n")
    result = subprocess.run(
        [sys.executable, "-m", "service.cli", "index", "--ray", "auto", "--index", str(tmp_path / "index")],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(tmp_path)},
        cwd=ROOT,
        timeout=120,
    )
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "issqa: --ray needs Ray, which is not installed: pip install 'iss-qa[ray]'"
    ]
    assert not (tmp_path / "index").exists()


def test_builds_on_a_two_node_ray_cluster(tmp_path: Path) -> None:
    groups = tmp_path / "ray-process-groups"
    script = (
        "ip link set lo up && exec env RAY_USAGE_STATS_ENABLED=0 ISSQA_RAY_NETNS=1 "
        f"ISSQA_RAY_GROUPS={groups} {sys.executable} -m pytest tests/ray_cluster_checks.py "
        f"-p no:cacheprovider -q -x -rP --durations=8 --basetemp={tmp_path / 'run'}"
    )
    process = subprocess.Popen(
        ["unshare", "--net", "--", "bash", "-c", script],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        output, _ = process.communicate(timeout=CHECKS_SECONDS)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
        output += f"\n(stopped after {CHECKS_SECONDS} s)"
    if process.returncode != 0 and groups.exists():
        # Ray nodes that a hung or killed run could not stop itself.
        for pid in groups.read_text().split():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(int(pid), signal.SIGKILL)
    (tmp_path / "checks.log").write_text(output)  # kept by pytest with the last runs' temporary folders
    assert process.returncode == 0, output[-8000:]
    assert "5 passed" in output, output[-8000:]
