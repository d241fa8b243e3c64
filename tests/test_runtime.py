"""The runtime around the kernels: SIMD level selection, the thread pool across
fork and next to torch, build information."""

from __future__ import annotations

import multiprocessing as mp
import os
import subprocess
import sys

import numpy as np
import pytest

import gradstep as gs
from gradstep import _core


def run_python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, env={**os.environ, **env})


def test_environment_forces_a_lower_level():
    out = run_python("import gradstep as gs; print(gs.build_info()['simd_level'])",
                     GRADSTEP_SIMD="baseline")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "baseline"


def test_unknown_level_in_environment_fails_loudly():
    out = run_python("import gradstep", GRADSTEP_SIMD="avx9000")
    assert out.returncode != 0
    assert "unknown SIMD level 'avx9000'" in out.stderr


def test_build_info_reports_what_runs():
    info = gs.build_info()
    assert info["simd_level"] == _core.simd_level()
    assert info["num_threads"] == gs.get_num_threads() >= 1
    assert info["compiler"]
    assert info["available_cores"] >= 1


def _child_step(queue):
    p = np.zeros(200_000, np.float32)
    gs.set_num_threads(2)
    gs.SGD([p], lr=0.5).step([np.ones_like(p)])
    queue.put(float(p.sum()))


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
# Python 3.12+ warns that fork in a threaded process may deadlock: the point here.
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_pool_works_in_a_forked_child():
    # Use the pool in the parent first, so the child inherits a pool whose
    # threads do not exist in it.
    gs.set_num_threads(2)
    p = np.zeros(200_000, np.float32)
    gs.SGD([p], lr=0.5).step([np.ones_like(p)])
    ctx = mp.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_child_step, args=(queue,))
    child.start()
    child.join(timeout=60)
    assert child.exitcode == 0
    assert queue.get(timeout=5) == pytest.approx(-0.5 * 200_000)


def test_threads_next_to_torch():
    torch = pytest.importorskip("torch")
    torch.set_num_threads(2)
    gs.set_num_threads(2)
    a = torch.randn(300_000, dtype=torch.float64)
    p = np.zeros(300_000)
    opt = gs.Adam([p], lr=0.1)
    for _ in range(3):
        (a * 2).sum()  # torch's own pool busy in between
        opt.step([a.numpy()])
    assert np.all(np.isfinite(p))
    assert opt.state[0]["step"] == 3
