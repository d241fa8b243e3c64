"""Every kernel against the float64 NumPy reference written from the papers
(tests/reference.py), over sizes that catch vector-tail bugs and both dtypes."""

from __future__ import annotations

import numpy as np
import pytest

import gradstep as gs
import reference
from conftest import DTYPES, OPTIMIZER_CASES, SHAPES, case_id, gradient_sequence

N_STEPS = 12
# float32 kernels against a float64 reference: rounding differences of a few ulp per
# step, amplified where an update divides by a small running average.
TOLERANCE = {np.float32: 2e-5, np.float64: 1e-12}


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("case", OPTIMIZER_CASES, ids=case_id)
def test_kernel_matches_reference(case, shape, dtype, rng):
    name, hyper = case
    p0 = rng.standard_normal(shape).astype(dtype)
    grads = gradient_sequence(rng, shape, N_STEPS, dtype)
    expected, expected_state = reference.run(name, p0.astype(np.float64),
                                             [g.astype(np.float64) for g in grads], **hyper)
    p = p0.copy()
    opt = getattr(gs, name)([p], **hyper)
    for g in grads:
        opt.step([g])
    assert p.dtype == dtype
    tol = TOLERANCE[dtype]
    scale = max(float(np.max(np.abs(expected))), 1e-300)
    np.testing.assert_allclose(p, expected, rtol=tol, atol=tol * scale)
    state = opt.state[0]
    assert state["step"] == expected_state["step"]
    for key, value in state.items():
        if isinstance(value, np.ndarray):
            ref = expected_state[key]
            s = max(float(np.max(np.abs(ref))), 1e-300)
            np.testing.assert_allclose(value, ref, rtol=tol, atol=tol * s, err_msg=key)


@pytest.mark.parametrize("name", ["SGD", "Adam", "RMSprop"])
def test_skipped_steps_match_reference(name, rng):
    shape = (9,)
    p0 = rng.standard_normal(shape)
    grads = gradient_sequence(rng, shape, 10, np.float64)
    pattern = [g if t % 3 != 1 else None for t, g in enumerate(grads)]
    hyper = {"lr": lambda t: 0.05 / (1 + t), "momentum": 0.9} if name == "SGD" else {"lr": 0.01}
    expected, _ = reference.run(name, p0, pattern, **hyper)
    p = p0.copy()
    opt = getattr(gs, name)([p, np.zeros(2)], **hyper)
    for g in pattern:
        opt.step([g, np.ones(2)])
    np.testing.assert_allclose(p, expected, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("hyper", [
    {"lr": 0.05, "l1": 0.01},
    {"lr": 0.05, "momentum": 0.9, "l1": 0.02, "weight_decay": 0.01},
    {"lr": 0.05, "momentum": 0.9, "weight_decay": 0.1, "decoupled_weight_decay": True},
    {"lr": 0.05, "momentum": 0.9, "nesterov": True, "l1": 0.01, "decoupled_weight_decay": True,
     "weight_decay": 0.2},
], ids=str)
def test_sgd_extras_match_reference(hyper, dtype, rng):
    """The penalties torch.optim.SGD lacks: L1 and decoupled weight decay (SGDW)."""
    shape = (64, 65)
    p0 = rng.standard_normal(shape).astype(dtype)
    grads = gradient_sequence(rng, shape, N_STEPS, dtype)
    expected, _ = reference.run("SGD", p0.astype(np.float64), [g.astype(np.float64) for g in grads],
                                **hyper)
    p = p0.copy()
    opt = gs.SGD([p], **hyper)
    for g in grads:
        opt.step([g])
    tol = TOLERANCE[dtype]
    np.testing.assert_allclose(p, expected, rtol=tol, atol=tol * float(np.max(np.abs(expected))))
