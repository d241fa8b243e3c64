"""Global-norm clipping (one C++ pass, accumulated in double) and the non-finite guard."""

from __future__ import annotations

import math

import numpy as np
import pytest

import gradstep as gs


def grads_of(rng, dtype=np.float64):
    return [rng.standard_normal(s).astype(dtype) for s in [(1,), (7,), (300_001,), (64, 65)]]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_norm_matches_numpy_in_double(rng, dtype):
    grads = grads_of(rng, dtype)
    expected = math.sqrt(sum(float(np.sum(g.astype(np.float64) ** 2)) for g in grads))
    assert gs.grad_norm(grads) == pytest.approx(expected, rel=1e-13)


def test_norm_is_identical_for_any_thread_count(rng):
    grads = grads_of(rng, np.float32)
    old = gs.get_num_threads()
    try:
        norms = []
        for t in (1, 2, 3):
            gs.set_num_threads(t)
            norms.append(gs.grad_norm(grads))
    finally:
        gs.set_num_threads(old)
    assert norms[0] == norms[1] == norms[2]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_clip_scales_in_place_to_max_norm(rng, dtype):
    grads = grads_of(rng, dtype)
    before = [g.copy() for g in grads]
    norm = gs.clip_grad_norm(grads, 2.5)
    coef = 2.5 / (norm + 1e-6)
    for g, b in zip(grads, before):
        np.testing.assert_array_equal(g, b * dtype(coef))
    assert gs.grad_norm(grads) == pytest.approx(2.5, rel=1e-5)


def test_clip_below_the_limit_leaves_grads_untouched(rng):
    grads = grads_of(rng)
    before = [g.copy() for g in grads]
    norm = gs.clip_grad_norm(grads, 1e9)
    assert norm > 0
    for g, b in zip(grads, before):
        np.testing.assert_array_equal(g, b)


def test_clip_matches_torch(rng):
    torch = pytest.importorskip("torch")
    grads = grads_of(rng)
    tensors = [torch.zeros(g.shape, dtype=torch.float64, requires_grad=True) for g in grads]
    for t, g in zip(tensors, grads):
        t.grad = torch.from_numpy(g.copy())
    tnorm = torch.nn.utils.clip_grad_norm_(tensors, 1.5)
    norm = gs.clip_grad_norm(grads, 1.5)
    assert norm == pytest.approx(float(tnorm), rel=1e-12)
    for t, g in zip(tensors, grads):
        np.testing.assert_allclose(g, t.grad.numpy(), rtol=1e-12)


def test_clip_nonfinite_error_touches_nothing(rng):
    grads = grads_of(rng)
    grads[1][3] = np.inf
    before = [g.copy() for g in grads]
    with pytest.raises(ValueError, match="hold NaN or Inf"):
        gs.clip_grad_norm(grads, 1.0, error_if_nonfinite=True)
    for g, b in zip(grads, before):
        np.testing.assert_array_equal(g, b)


def test_clip_refuses_bad_input_before_writing(rng):
    a = rng.standard_normal(5)
    ro = rng.standard_normal(5)
    ro.flags.writeable = False
    before = a.copy()
    with pytest.raises(ValueError, match=r"arrays\[1\] is read-only"):
        gs.clip_grad_norm([a * 100, ro], 1.0)
    with pytest.raises(ValueError, match="Invalid max_norm: -1"):
        gs.clip_grad_norm([a], -1)
    with pytest.raises(TypeError, match=r"arrays\[0\] has dtype int64"):
        gs.clip_grad_norm([np.ones(3, np.int64)], 1.0)
    np.testing.assert_array_equal(a, before)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_guard_skips_the_whole_step(rng, bad):
    a, b = rng.standard_normal(4), rng.standard_normal(3).astype(np.float32)
    opt = gs.Adam([a, b], lr=lambda t: 0.1 / (t + 1), skip_nonfinite=True)
    twin = gs.Adam([a.copy(), b.copy()], lr=lambda t: 0.1 / (t + 1))
    log = []
    for t in range(6):
        ga, gb = rng.standard_normal(4), rng.standard_normal(3).astype(np.float32)
        if t in (0, 3):
            gb = gb.copy()
            gb[1] = bad
            before = (a.copy(), b.copy(), opt.state_dict())
            opt.step([ga, gb])
            np.testing.assert_array_equal(a, before[0])
            np.testing.assert_array_equal(b, before[1])
            assert opt.step_count == before[2]["step_count"]
            log.append("skipped")
        else:
            opt.step([ga, gb])
            twin.step([ga, gb])
            log.append("stepped")
    assert log == ["skipped", "stepped", "stepped", "skipped", "stepped", "stepped"]
    assert opt.skipped_steps == 2
    assert opt.step_count == 4
    # Skipped steps never happened: the schedule and bias corrections saw 4 steps.
    for x, y in zip([a, b], twin.param_groups[0]["params"]):
        np.testing.assert_array_equal(x, y)


def test_without_guard_nan_propagates():
    p = np.zeros(2)
    gs.SGD([p], lr=0.1).step([np.array([np.nan, 1.0])])
    assert np.isnan(p[0]) and p[1] == -0.1
