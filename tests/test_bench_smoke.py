"""Every bench runs: each bench/*.py with a `__main__` block is run once with --smoke (its smallest meaningful
version, seconds) in a subprocess, so a refactor that breaks a bench fails the suite instead of `make bench`.

Discovery is automatic: a new bench script is covered without editing this file (it must accept --smoke).
bench/comfy_env.py, bench/search_problems.py and bench/learned_counter.py are libraries (no `__main__`) and are
exercised through the benches that import them. The smoke runs write where --quick does (bench/results/,
output/bench/)."""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
TIMEOUT_S = 300
MAIN = re.compile(r"^if __name__ == ['\"]__main__['\"]\s*:", re.MULTILINE)

if not (ROOT / ".build" / "comfyui" / "comfy" / "model_management.py").exists():
    pytest.skip("ComfyUI not extracted in .build/comfyui (run scripts/setup.sh)", allow_module_level=True)


def bench_scripts():
    return sorted(p.name for p in BENCH.glob("*.py") if MAIN.search(p.read_text(encoding="utf-8")))


SCRIPTS = bench_scripts()


def test_discovery_finds_the_benches():
    for name in ("sde_overhead.py", "search_overhead.py", "particle_batching.py", "decode_reward_share.py",
                 "reward_per_nfe.py", "memory.py", "gpu_bench.py", "search_curves.py", "playground.py",
                 "reward_agreement.py", "cost_per_nfe.py"):
        assert name in SCRIPTS, f"bench/{name} not discovered (found {SCRIPTS})"
    for lib in ("comfy_env.py", "search_problems.py", "learned_counter.py"):
        assert lib not in SCRIPTS


@pytest.mark.parametrize("script", SCRIPTS)
def test_bench_smoke(script):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    cmd = [sys.executable, str(BENCH / script), "--smoke"]
    try:
        p = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired as e:
        err = e.stderr.decode(errors="replace") if isinstance(e.stderr, bytes) else (e.stderr or "")
        pytest.fail(f"bench/{script} --smoke ran past {TIMEOUT_S} s; stderr tail:\n{err[-3000:]}")
    tail = p.stderr[-3000:]
    assert p.returncode == 0, f"bench/{script} --smoke exited {p.returncode}; stderr tail:\n{tail}"
    assert p.stdout.strip(), f"bench/{script} --smoke printed nothing on stdout; stderr tail:\n{tail}"
