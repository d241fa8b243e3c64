"""The C++ core stands alone: no Python in its headers, and a plain C++ program
built against them gives the same numbers as the Python API."""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import numpy as np
import pytest

import gradstep as gs

HERE = os.path.dirname(os.path.abspath(__file__))
EXAMPLE = os.path.join(HERE, os.pardir, "cpp", "examples", "rosenbrock_adam.cpp")


def headers() -> list[str]:
    root = os.path.join(gs.get_include(), "gradstep")
    return sorted(os.path.join(root, f) for f in os.listdir(root) if f.endswith(".hpp"))


def test_headers_are_shipped():
    names = {os.path.basename(h) for h in headers()}
    assert {"sgd.hpp", "adagrad.hpp", "adadelta.hpp", "rmsprop.hpp", "rprop.hpp", "adam.hpp",
            "common.hpp", "gradstep.hpp"} <= names


@pytest.mark.parametrize("path", headers(), ids=os.path.basename)
def test_header_has_no_python(path):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    for forbidden in ("pybind11", "Python.h", "numpy", "PyObject"):
        assert forbidden not in text, f"{os.path.basename(path)} mentions {forbidden}"
    for include in re.findall(r'#include\s+[<"]([^>"]+)[>"]', text):
        assert "/" not in include or include.startswith("gradstep/"), include


def compiler() -> str | None:
    for name in (os.environ.get("CXX"), "c++", "g++", "clang++"):
        if name and shutil.which(name):
            return name
    return None


@pytest.mark.skipif(compiler() is None, reason="no C++ compiler")
@pytest.mark.skipif(not os.path.exists(EXAMPLE), reason="source tree not available")
def test_plain_cpp_example_matches_python(tmp_path):
    exe = str(tmp_path / "rosenbrock_adam")
    subprocess.run([compiler(), "-std=c++17", "-O2", "-fno-math-errno", "-Wall", "-Wextra",
                    "-Werror", "-I", gs.get_include(), EXAMPLE, "-o", exe, "-pthread"],
                   check=True, timeout=300)
    out = subprocess.run([exe, "500", "300"], check=True, capture_output=True, text=True,
                         timeout=60).stdout.split()
    values = dict(zip(out[::2], out[1::2]))
    a, b = np.full(500, -1.2), np.full(500, 1.0)
    opt = gs.Adam([a, b], lr=0.02)
    for _ in range(300):
        r, s = b - a * a, 1 - a
        opt.step([-400 * a * r - 2 * s, 200 * r])
    assert int(values["steps"]) == 300
    # Same kernels, same operations: the parameters agree to the last bit.
    assert float(values["x0"]) == a[0]
    assert float(values["x1"]) == b[0]


POOL_STRESS = os.path.join(HERE, "cpp", "pool_stress.cpp")


def _build_pool_stress(tmp_path, extra: list[str]) -> str | None:
    exe = str(tmp_path / ("pool_stress" + "_".join(extra).replace("-", "")))
    cmd = [str(compiler()), "-std=c++17", "-O2", "-g", "-Wall", "-Wextra", "-Werror", *extra,
           "-I", gs.get_include(), POOL_STRESS, "-o", exe, "-pthread"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    return exe if done.returncode == 0 else None


@pytest.mark.skipif(compiler() is None, reason="no C++ compiler")
@pytest.mark.skipif(not os.path.exists(POOL_STRESS), reason="source tree not available")
@pytest.mark.parametrize("sanitize", [[], ["-fsanitize=thread"]], ids=["plain", "tsan"])
def test_thread_pool_runs_every_task_once(tmp_path, sanitize):
    """Every task of every job exactly once, none after parallel_for returns, with more
    threads than cores, concurrent callers, and workers that sleep between jobs."""
    exe = _build_pool_stress(tmp_path, sanitize)
    if exe is None:
        if sanitize:
            pytest.skip("this compiler cannot build with ThreadSanitizer")
        raise AssertionError("pool_stress.cpp does not compile")
    for threads, jobs, callers in [(2, 1500, 1), (3, 1000, 2), (4, 500, 3)]:
        out = subprocess.run([exe, str(threads), str(jobs), str(callers)], capture_output=True,
                             text=True, timeout=300)
        assert out.returncode == 0 and out.stdout.strip() == "ok", out.stdout + out.stderr


LBFGS_CONSTANT_N = os.path.join(HERE, "cpp", "lbfgs_constant_n.cpp")


@pytest.mark.skipif(compiler() is None, reason="no C++ compiler")
@pytest.mark.skipif(not os.path.exists(LBFGS_CONSTANT_N), reason="source tree not available")
@pytest.mark.parametrize("opt", ["-O2", "-O3"])
def test_lbfgs_header_builds_warning_free_with_constant_size(tmp_path, opt):
    """An embedding code with the size fixed at compile time: GCC then checks the element
    loops' trip counts (-Waggressive-loop-optimizations, which flagged the two-loop's
    dot loops called directly with a constant n); the header must stay warning-free under
    -Werror, the loops give exact sums on exact data, and H g for a pair with y = 2 s is
    g / 2."""
    exe = str(tmp_path / "lbfgs_constant_n")
    subprocess.run([compiler(), "-std=c++17", opt, "-fno-math-errno", "-Wall", "-Wextra",
                    "-Werror", "-I", gs.get_include(), LBFGS_CONSTANT_N, "-o", exe, "-pthread"],
                   check=True, timeout=300)
    out = subprocess.run([exe], check=True, capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "ok", out.stdout
