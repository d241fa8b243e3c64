"""Trajectory parity with torch.optim: same settings and gradients, same parameters.

float64: relative difference below 1e-10 after 100 steps; float32: below 1e-5.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import gradstep as gs
from conftest import OPTIMIZER_CASES, case_id, gradient_sequence

torch = pytest.importorskip("torch")

N_STEPS = 100
SHAPES = [(7, 3), (5,), (1,)]


@pytest.fixture
def torch_default_float64():
    """torch keeps step counters and NAdam's mu_product as default-dtype scalars; in
    float64 runs they must be float64 too for a 1e-10 comparison to be meaningful."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


def torch_hyper(name: str, hyper: dict[str, Any]) -> dict[str, Any]:
    out = dict(hyper)
    if name in ("SGD",):
        out.pop("l1", None)
    out.setdefault("foreach", False)
    return out


def run_both(name: str, hyper: dict[str, Any], dtype: Any, rng: np.random.Generator):
    tdtype = torch.float64 if dtype == np.float64 else torch.float32
    params = [rng.standard_normal(s).astype(dtype) for s in SHAPES]
    grads = [gradient_sequence(rng, s, N_STEPS, dtype) for s in SHAPES]
    tparams = [torch.tensor(p.copy(), dtype=tdtype, requires_grad=True) for p in params]
    topt = getattr(torch.optim, name)(tparams, **torch_hyper(name, hyper))
    opt = getattr(gs, name)(params, **hyper)
    for t in range(N_STEPS):
        for tp, g in zip(tparams, grads):
            tp.grad = torch.from_numpy(g[t].copy())
        topt.step()
        opt.step([g[t] for g in grads])
    return params, [tp.detach().numpy() for tp in tparams], opt, topt


def assert_relative(actual: np.ndarray, expected: np.ndarray, rel: float) -> None:
    scale = float(np.max(np.abs(expected)))
    np.testing.assert_allclose(actual, expected, rtol=rel, atol=rel * scale)


@pytest.mark.parametrize("case", OPTIMIZER_CASES, ids=case_id)
def test_float64_matches_torch(case, rng, torch_default_float64):
    name, hyper = case
    ours, theirs, opt, topt = run_both(name, hyper, np.float64, rng)
    for a, b in zip(ours, theirs):
        assert_relative(a, b, 1e-10)
    # The state follows too, buffer by buffer (torch's SGD keeps no step counter).
    tstate = topt.state_dict()["state"]
    compared = 0
    for i, entry in opt.state.items():
        for key, value in entry.items():
            if key == "step" and name == "SGD":
                continue
            ref = tstate[i][key]
            compared += 1
            if isinstance(value, np.ndarray):
                assert_relative(value, ref.numpy(), 1e-10)
            else:
                assert value == pytest.approx(float(ref), rel=1e-12), key
    assert compared == sum(len(e) for e in tstate.values() if e)


@pytest.mark.parametrize("case", OPTIMIZER_CASES, ids=case_id)
def test_float32_matches_torch(case, rng):
    name, hyper = case
    ours, theirs, _, _ = run_both(name, hyper, np.float32, rng)
    for a, b in zip(ours, theirs):
        assert a.dtype == np.float32
        assert_relative(a, b, 1e-5)


def test_lr_schedule_matches_torch_scheduler(rng, torch_default_float64):
    """A callable lr evaluated at the step count equals torch's LambdaLR-driven lr."""
    shape = (4, 3)
    p = rng.standard_normal(shape)
    grads = gradient_sequence(rng, shape, 40, np.float64)
    tp = torch.tensor(p.copy(), requires_grad=True)
    topt = torch.optim.SGD([tp], lr=0.1, momentum=0.9, foreach=False)
    sched = torch.optim.lr_scheduler.LambdaLR(topt, lambda t: 0.95**t)
    opt = gs.SGD([p], lr=lambda t: 0.1 * 0.95**t, momentum=0.9)
    for g in grads:
        tp.grad = torch.from_numpy(g.copy())
        topt.step()
        sched.step()
        opt.step([g])
    assert_relative(p, tp.detach().numpy(), 1e-12)


def test_param_groups_match_torch(rng, torch_default_float64):
    a, b = rng.standard_normal((3, 4)), rng.standard_normal(6)
    ga = gradient_sequence(rng, a.shape, 30, np.float64)
    gb = gradient_sequence(rng, b.shape, 30, np.float64)
    ta, tb = (torch.tensor(x.copy(), requires_grad=True) for x in (a, b))
    groups = lambda x, y: [{"params": [x], "weight_decay": 0.1}, {"params": [y], "lr": 0.05}]  # noqa: E731
    topt = torch.optim.Adam(groups(ta, tb), lr=0.01, foreach=False)
    opt = gs.Adam(groups(a, b), lr=0.01)
    for t in range(30):
        ta.grad, tb.grad = torch.from_numpy(ga[t].copy()), torch.from_numpy(gb[t].copy())
        if t == 15:  # editing a group between steps takes effect at the next step
            topt.param_groups[1]["lr"] = 0.2
            opt.param_groups[1]["lr"] = 0.2
        topt.step()
        opt.step([ga[t], gb[t]])
    assert_relative(a, ta.detach().numpy(), 1e-10)
    assert_relative(b, tb.detach().numpy(), 1e-10)


def test_state_dict_has_torch_shape(rng, torch_default_float64):
    p = rng.standard_normal(5)
    tp = torch.tensor(p.copy(), requires_grad=True)
    topt = torch.optim.Adam([tp], lr=0.01, amsgrad=True, foreach=False)
    opt = gs.Adam([p], lr=0.01, amsgrad=True)
    g = rng.standard_normal(5)
    tp.grad = torch.from_numpy(g.copy())
    topt.step()
    opt.step([g])
    ours, theirs = opt.state_dict(), topt.state_dict()
    assert set(ours["state"][0]) == set(theirs["state"][0])
    assert ours["param_groups"][0]["params"] == theirs["param_groups"][0]["params"]
    for key in ("lr", "betas", "eps", "weight_decay", "amsgrad", "maximize",
                "decoupled_weight_decay"):
        assert ours["param_groups"][0][key] == theirs["param_groups"][0][key], key


def test_torch_sgd_state_dict_continues_momentum(rng, torch_default_float64):
    """torch's SGD state has a momentum buffer but no step count: loading it must
    not restart the buffer."""
    p = rng.standard_normal(6)
    tp = torch.tensor(p.copy(), requires_grad=True)
    topt = torch.optim.SGD([tp], lr=0.1, momentum=0.9, dampening=0.5, foreach=False)
    grads = gradient_sequence(rng, (6,), 6, np.float64)
    for g in grads[:3]:
        tp.grad = torch.from_numpy(g.copy())
        topt.step()
    q = tp.detach().numpy().copy()
    opt = gs.SGD([q], lr=0.1, momentum=0.9, dampening=0.5)
    sd = topt.state_dict()
    state = {i: {k: v.numpy() for k, v in e.items()} for i, e in sd["state"].items()}
    opt.load_state_dict({"state": state, "param_groups": sd["param_groups"]})
    for g in grads[3:]:
        tp.grad = torch.from_numpy(g.copy())
        topt.step()
        opt.step([g])
    assert_relative(q, tp.detach().numpy(), 1e-12)



@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("beta1", [0.0, 0.3, 0.5, 0.9])
@pytest.mark.parametrize("name", ["Adam", "AdamW", "Adamax", "NAdam", "RAdam"])
def test_first_moment_follows_torch_lerp(name, beta1, dtype):
    """torch forms lerp(m, g, w) as g - (g - m)(1 - w) when w >= 0.5, so beta1 = 0 gives
    m = g exactly, where m + (g - m) would lose a small gradient against a large previous
    one (float32: m = 1000, g = 1e-5 gives 0). Gradients jump by up to 9 orders of
    magnitude; the first moment stays within a few ulps of torch's (which fuses the
    multiply-add where gradstep, for bits independent of the SIMD level, does not)."""
    tdtype = torch.float64 if dtype == np.float64 else torch.float32
    eps = np.finfo(dtype).eps
    rng = np.random.default_rng(int(beta1 * 10))
    scales = [1e3, 1e-5, 1.0, 1e4, 3e-6, 0.5]
    grads = [(s * rng.standard_normal(9)).astype(dtype) for s in scales]
    p = np.ones(9, dtype)
    tp = torch.tensor(p.copy(), dtype=tdtype, requires_grad=True)
    kwargs = dict(lr=1e-3, betas=(beta1, 0.999))
    opt = getattr(gs, name)([p], **kwargs)
    topt = getattr(torch.optim, name)([tp], foreach=False, **kwargs)
    previous = np.zeros(9, dtype)
    for g in grads:
        tp.grad = torch.from_numpy(g.copy())
        topt.step()
        opt.step([g])
        m = opt.state[0]["exp_avg"]
        scale = np.maximum(np.abs(g), beta1 * np.abs(previous))
        assert np.all(np.abs(m - topt.state[tp]["exp_avg"].numpy()) <= 4 * eps * scale)
        if beta1 == 0.0:
            np.testing.assert_array_equal(m, g)
        previous = m.copy()
