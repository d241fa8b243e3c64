"""The demo: its models' gradients, its surfaces' gradients, and a quick end-to-end run."""

from __future__ import annotations

import importlib.util
import io
import subprocess
import sys

import numpy as np
import pytest

from gradstep._demo import surfaces as surf
from gradstep._demo.data import Standardizer, make_dataset
from gradstep._demo.models import MLP, SoftmaxRegression


def _numeric_grads(model, x, y, eps=1e-6):
    out = []
    for p in model.params:
        g = np.zeros_like(p)
        flat, gflat = p.reshape(-1), g.reshape(-1)
        for i in range(flat.size):
            old = flat[i]
            flat[i] = old + eps
            up = model.loss(x, y)
            flat[i] = old - eps
            down = model.loss(x, y)
            flat[i] = old
            gflat[i] = (up - down) / (2 * eps)
        out.append(g)
    return out


@pytest.mark.parametrize("kind", ["softmax", "mlp"])
def test_model_gradients_match_finite_differences(kind):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((13, 5))
    y = rng.integers(0, 3, 13)
    if kind == "softmax":
        model = SoftmaxRegression(5, 3, rng, np.float64)
        for p in model.params:  # start away from the all-zero initialisation
            p[...] = rng.standard_normal(p.shape) * 0.5
    else:
        model = MLP(5, 7, 3, rng, np.float64)
        model.b1[...] = rng.standard_normal(7) * 0.3
    loss, grads = model.loss_and_grads(x, y)
    assert loss == pytest.approx(model.loss(x, y), rel=1e-12)
    numeric = _numeric_grads(model, x, y)
    assert len(grads) == len(model.params)
    for p, g, n in zip(model.params, grads, numeric):
        assert g.shape == p.shape and g.dtype == p.dtype and g.flags.c_contiguous
        np.testing.assert_allclose(g, n, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("surface", surf.SURFACES, ids=lambda s: s.key)
def test_surface_gradients_match_finite_differences(surface):
    rng = np.random.default_rng(0)
    eps = 1e-6
    for _ in range(5):
        x = rng.uniform(*surface.xlim)
        y = rng.uniform(*surface.ylim)
        gx, gy = surface.grad(x, y)
        nx = (surface.value(x + eps, y) - surface.value(x - eps, y)) / (2 * eps)
        ny = (surface.value(x, y + eps) - surface.value(x, y - eps)) / (2 * eps)
        assert gx == pytest.approx(nx, rel=1e-5, abs=1e-6)
        assert gy == pytest.approx(ny, rel=1e-5, abs=1e-6)


@pytest.mark.parametrize("surface", [s for s in surf.SURFACES if not s.unbounded],
                         ids=lambda s: s.key)
def test_marked_minima_are_stationary(surface):
    for goal in surface.goals:
        gx, gy = surface.grad(*goal.xy)
        assert np.hypot(gx, gy) < 1e-6, goal


def test_outcomes_are_honest():
    rosen = surf.SURFACES[0]
    make = dict(surf.OPTIMIZERS)["SGD"]
    blown = surf.run_path(rosen, "SGD", make, lr=0.1, steps=100)
    assert blown.outcome.status == "diverged"
    assert "DIVERGED" in blown.outcome.describe()
    short = surf.run_path(rosen, "SGD", make, lr=1e-4, steps=50)
    assert short.outcome.status != "reached"
    assert short.outcome.describe().startswith("not reached")
    good = surf.run_path(rosen, "SGD+Nesterov", dict(surf.OPTIMIZERS)["SGD+Nesterov"])
    assert good.outcome.status == "reached"
    d = np.hypot(*(good.xy[good.outcome.step:] - np.array([1.0, 1.0])).T)
    assert (d <= rosen.goals[0].tol).all()


def test_data_is_deterministic_and_standardised_on_train_only():
    a = make_dataset(n_train=200, n_test=50)
    b = make_dataset(n_train=200, n_test=50)
    np.testing.assert_array_equal(a.x_train, b.x_train)
    np.testing.assert_array_equal(a.y_test, b.y_test)
    s = Standardizer().fit(a.x_train)
    z = s.transform(a.x_train)
    np.testing.assert_allclose(z.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(z.std(axis=0), 1, atol=1e-4)
    assert not np.allclose(s.transform(a.x_test).mean(axis=0), 0, atol=1e-3)


def test_demo_quick_no_plots_subprocess(tmp_path):
    out = tmp_path / "figs"
    proc = subprocess.run(
        [sys.executable, "-m", "gradstep", "demo", "--quick", "--no-plots", "--out", str(out)],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout
    for surface in surf.SURFACES:
        assert surface.title in text
    for name in ("softmax regression", "MLP", "Adam", "RAdam", "test acc"):
        assert name in text
    assert 'pip install "gradstep[plot]"' in text
    assert not out.exists()


@pytest.mark.skipif(importlib.util.find_spec("matplotlib") is None, reason="needs matplotlib")
def test_demo_quick_writes_pngs(tmp_path):
    from gradstep._demo.runner import run_demo

    buf = io.StringIO()

    assert run_demo(tmp_path, quick=True, plots=True, out=buf) == 0
    pngs = sorted(p.name for p in tmp_path.glob("*.png"))
    expected = {f"paths_{s.key}.png" for s in surf.SURFACES} | {"loss_optimizers.png"}
    assert expected <= set(pngs)
    for name in pngs:
        data = (tmp_path / name).read_bytes()
        assert data.startswith(b"\x89PNG") and len(data) > 10_000
        assert str(tmp_path / name) in buf.getvalue()


def test_bench_subcommand_is_wired():
    from gradstep.__main__ import _parser

    assert "bench" in _parser().format_help()


def test_no_command_prints_help(capsys):
    from gradstep.__main__ import main

    assert main([]) == 2
    assert "demo" in capsys.readouterr().out
