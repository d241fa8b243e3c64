"""Checks of the NumPy reference optimizers (tests/reference.py).

Two kinds: closed forms that need nothing but NumPy, and whole-trajectory
cross-checks against torch.optim's single-tensor code path (skipped when
torch is not installed). Both compare whole arrays, params and state.
"""

from __future__ import annotations

import inspect
import math
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(__file__))

import reference
from reference import run

pytestmark = pytest.mark.filterwarnings("error")

NAMES = [
    "SGD",
    "Adagrad",
    "Adadelta",
    "RMSprop",
    "Rprop",
    "Adam",
    "AdamW",
    "Adamax",
    "NAdam",
    "RAdam",
]
SHAPE = (7, 3)
STEPS = 100
RTOL = 1e-12
ATOL_PER_SCALE = 1e-14

# gradstep extras of SGD that torch's SGD does not have (emulated in the cross-check)
SGD_EXTRAS = {"l1", "decoupled_weight_decay"}
# torch constructor arguments that select an implementation, not the maths
TORCH_IMPLEMENTATION_ARGS = {"foreach", "differentiable", "fused", "capturable"}


def make_problem(seed: int = 0, steps: int = STEPS) -> tuple[np.ndarray, list[np.ndarray]]:
    """A start point and ``steps`` gradients.

    Each coordinate gets a drift plus noise, so same-sign runs and sign flips
    both occur (Rprop), and about 3% exact zeros (the sign(0) branches).
    """
    rng = np.random.default_rng(seed)
    p0 = rng.standard_normal(SHAPE)
    drift = rng.standard_normal(SHAPE)
    grads = []
    for _ in range(steps):
        g = drift + rng.standard_normal(SHAPE) * rng.choice([0.1, 1.0, 3.0])
        g[rng.random(SHAPE) < 0.03] = 0.0
        grads.append(g)
    return p0, grads


def assert_close(actual: Any, expected: Any, what: str) -> None:
    expected = np.asarray(expected, dtype=np.float64)
    scale = float(np.max(np.abs(expected))) if expected.size else 0.0
    np.testing.assert_allclose(
        np.asarray(actual, dtype=np.float64),
        expected,
        rtol=RTOL,
        atol=ATOL_PER_SCALE * scale,
        err_msg=what,
    )


# --------------------------------------------------------------------------
# torch.optim side


@pytest.fixture
def torch64() -> Iterator[Any]:
    """torch with float64 as default dtype (torch keeps step/mu_product in it)."""
    torch = pytest.importorskip("torch")
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        yield torch
    finally:
        torch.set_default_dtype(previous)


def run_torch(
    torch: Any, name: str, p0: np.ndarray, grads: Sequence[np.ndarray | None], **hyper: Any
) -> tuple[np.ndarray, dict[str, Any]]:
    """The same run through ``torch.optim.<name>(foreach=False)``.

    Schedules are written into the param group before each step. SGD's
    gradstep extras are emulated around torch's SGD: decoupled decay as
    ``p *= 1 - lr wd`` before the step (torch's weight_decay set to 0), and
    ``l1 sign(p)`` folded into the gradient handed to torch, with the sign
    that survives torch's ``maximize`` negation.
    """
    hyper = dict(hyper)
    l1 = hyper.pop("l1", 0.0)
    decoupled_sgd = name == "SGD" and hyper.pop("decoupled_weight_decay", False)

    def at(value: Any, t: int) -> Any:
        return value(t) if callable(value) else value

    sgdw_decay = hyper.pop("weight_decay", 0.0) if decoupled_sgd else 0.0
    schedules = {k: v for k, v in hyper.items() if callable(v)}
    p = torch.nn.Parameter(torch.tensor(p0, dtype=torch.float64))
    opt = getattr(torch.optim, name)([p], foreach=False, **{k: at(v, 0) for k, v in hyper.items()})
    group = opt.param_groups[0]
    maximize = hyper.get("maximize", False)
    for t, g in enumerate(grads):
        for key, schedule in schedules.items():
            group[key] = schedule(t)
        if g is None:
            p.grad = None
        else:
            with torch.no_grad():
                wd = at(sgdw_decay, t)
                if wd != 0:
                    p.mul_(1.0 - group["lr"] * wd)
                gt = torch.tensor(g, dtype=torch.float64)
                if l1 != 0:
                    gt = gt + (-1.0 if maximize else 1.0) * l1 * torch.sign(p)
            p.grad = gt
        opt.step()
    state: dict[str, Any] = {}
    for key, value in opt.state[p].items():
        if key in ("step", "mu_product"):
            state[key] = float(value)
        else:
            state[key] = value.detach().numpy().copy()
    return p.detach().numpy().copy(), state


def assert_matches_torch(
    torch: Any, name: str, p0: np.ndarray, grads: list[Any], **hyper: Any
) -> None:
    p_ref, s_ref = run(name, p0, grads, **hyper)
    p_torch, s_torch = run_torch(torch, name, p0, grads, **hyper)
    assert_close(p_ref, p_torch, f"{name} params")

    ref_keys = set(s_ref)
    if name == "SGD":  # torch's SGD keeps no step count; gradstep does
        assert s_ref["step"] == sum(g is not None for g in grads)
        ref_keys.discard("step")
    assert ref_keys == set(s_torch), f"{name} state keys"
    for key, expected in s_torch.items():
        if key == "step":
            assert isinstance(s_ref["step"], int)
            assert s_ref["step"] == expected
        else:
            assert_close(s_ref[key], expected, f"{name} state[{key!r}]")


CASES: list[tuple[str, dict[str, Any]]] = [
    ("SGD", {}),
    ("SGD", {"lr": 0.1}),
    ("SGD", {"lr": 0.05, "momentum": 0.9}),
    ("SGD", {"lr": 0.05, "momentum": 0.9, "dampening": 0.5}),
    ("SGD", {"lr": 0.05, "momentum": 0.9, "nesterov": True}),
    ("SGD", {"lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 0.1}),
    ("SGD", {"lr": 0.1, "weight_decay": 0.1}),
    ("SGD", {"lr": 0.05, "momentum": 0.5, "weight_decay": 0.01, "maximize": True}),
    (
        "SGD",
        {"lr": 0.05, "momentum": 0.9, "dampening": 0.1, "weight_decay": 0.05, "maximize": True},
    ),
    ("SGD", {"lr": 0.1, "maximize": True}),
    ("SGD", {"lr": 0.05, "l1": 0.01}),
    ("SGD", {"lr": 0.05, "l1": 0.02, "momentum": 0.9, "weight_decay": 0.1, "maximize": True}),
    ("SGD", {"lr": 0.05, "decoupled_weight_decay": True, "weight_decay": 0.1}),
    ("SGD", {"lr": 0.05, "decoupled_weight_decay": True, "weight_decay": 0.1, "momentum": 0.9}),
    (
        "SGD",
        {
            "lr": 0.05,
            "decoupled_weight_decay": True,
            "weight_decay": 0.2,
            "momentum": 0.8,
            "nesterov": True,
            "l1": 0.01,
            "maximize": True,
        },
    ),
    ("Adagrad", {}),
    ("Adagrad", {"lr": 0.1, "lr_decay": 0.01}),
    ("Adagrad", {"initial_accumulator_value": 0.1}),
    (
        "Adagrad",
        {
            "lr": 0.1,
            "lr_decay": 0.05,
            "initial_accumulator_value": 0.5,
            "weight_decay": 0.1,
            "eps": 1e-6,
        },
    ),
    ("Adagrad", {"maximize": True, "weight_decay": 0.01}),
    ("Adadelta", {}),
    ("Adadelta", {"lr": 0.5, "rho": 0.5, "eps": 1e-4}),
    ("Adadelta", {"weight_decay": 0.1, "maximize": True}),
    ("RMSprop", {}),
    ("RMSprop", {"centered": True}),
    ("RMSprop", {"lr": 1e-3, "momentum": 0.9}),
    ("RMSprop", {"lr": 1e-3, "centered": True, "momentum": 0.5}),
    (
        "RMSprop",
        {
            "lr": 1e-3,
            "alpha": 0.9,
            "eps": 1e-6,
            "weight_decay": 0.1,
            "momentum": 0.9,
            "centered": True,
            "maximize": True,
        },
    ),
    ("Rprop", {}),
    ("Rprop", {"lr": 0.1, "etas": (0.3, 1.5), "step_sizes": (1e-3, 0.2)}),
    ("Rprop", {"lr": 0.01, "step_sizes": (1e-4, 0.05)}),
    ("Rprop", {"maximize": True}),
    ("Adam", {}),
    ("Adam", {"lr": 0.01, "amsgrad": True}),
    ("Adam", {"lr": 0.01, "weight_decay": 0.1}),
    ("Adam", {"lr": 0.01, "weight_decay": 0.1, "decoupled_weight_decay": True}),
    (
        "Adam",
        {
            "lr": 0.01,
            "weight_decay": 0.1,
            "decoupled_weight_decay": True,
            "amsgrad": True,
            "maximize": True,
        },
    ),
    ("Adam", {"lr": 0.01, "weight_decay": 0.05, "amsgrad": True, "maximize": True}),
    ("Adam", {"lr": 0.01, "betas": (0.3, 0.6), "eps": 1e-3}),  # lerp's weight >= 0.5 branch
    ("Adam", {"lr": 0.01, "betas": (0.0, 0.99)}),
    ("AdamW", {}),
    ("AdamW", {"lr": 0.01, "weight_decay": 0.1, "amsgrad": True, "maximize": True}),
    ("AdamW", {"lr": 0.01, "betas": (0.5, 0.9)}),
    ("Adamax", {}),
    ("Adamax", {"lr": 0.01, "weight_decay": 0.1, "maximize": True}),
    ("Adamax", {"lr": 0.01, "betas": (0.2, 0.5), "eps": 1e-3}),
    ("NAdam", {}),
    ("NAdam", {"lr": 0.01, "momentum_decay": 0.1}),
    ("NAdam", {"lr": 0.01, "momentum_decay": 0.0}),
    ("NAdam", {"lr": 0.01, "weight_decay": 0.1}),
    ("NAdam", {"lr": 0.01, "weight_decay": 0.1, "decoupled_weight_decay": True}),
    (
        "NAdam",
        {
            "lr": 0.01,
            "betas": (0.3, 0.9),
            "weight_decay": 0.05,
            "decoupled_weight_decay": True,
            "maximize": True,
        },
    ),
    ("RAdam", {}),  # rho_t <= 5 for steps 1-5, rectified afterwards
    ("RAdam", {"lr": 0.01, "betas": (0.9, 0.6)}),  # rho_inf = 4: never rectified
    ("RAdam", {"lr": 0.01, "betas": (0.9, 0.9), "weight_decay": 0.1}),
    ("RAdam", {"lr": 0.01, "weight_decay": 0.1, "decoupled_weight_decay": True, "maximize": True}),
    ("RAdam", {"lr": 0.01, "betas": (0.5, 0.99), "eps": 1e-4}),
]


def case_id(case: tuple[str, dict[str, Any]]) -> str:
    name, hyper = case
    return name + ("-" + ",".join(f"{k}={v}" for k, v in hyper.items()) if hyper else "-defaults")


@pytest.mark.parametrize("name, hyper", CASES, ids=[case_id(c) for c in CASES])
def test_matches_torch(torch64: Any, name: str, hyper: dict[str, Any]) -> None:
    p0, grads = make_problem(seed=len(name) + len(hyper))
    assert_matches_torch(torch64, name, p0, grads, **hyper)


def test_every_optimizer_is_cross_checked() -> None:
    assert {name for name, _ in CASES} == set(NAMES) == set(reference.ALGORITHMS)


@pytest.mark.parametrize("name", NAMES)
def test_skipped_steps_match_torch(torch64: Any, name: str) -> None:
    p0, grads = make_problem(seed=3, steps=40)
    with_gaps: list[np.ndarray | None] = list(grads)
    for i in (0, 1, 7, 8, 9, 20, 39):
        with_gaps[i] = None
    hyper: dict[str, Any] = {"lr": lambda t: 0.01 * (1 + 0.05 * t)}
    if name == "SGD":
        hyper.update(momentum=0.9)
    assert_matches_torch(torch64, name, p0, with_gaps, **hyper)


SCHEDULED: list[tuple[str, dict[str, Any]]] = [
    (
        "SGD",
        {
            "lr": lambda t: 0.1 / (1 + t),
            "momentum": lambda t: 0.5 + 0.004 * t,
            "weight_decay": lambda t: 0.001 * t,
        },
    ),
    (
        "SGD",
        {
            "lr": lambda t: 0.05 * 0.99**t,
            "decoupled_weight_decay": True,
            "weight_decay": lambda t: 0.1 + 0.001 * t,
        },
    ),
    (
        "Adam",
        {"lr": lambda t: 0.01 * min(1.0, (t + 1) / 10), "weight_decay": lambda t: 0.01 * (t % 3)},
    ),
    ("AdamW", {"lr": lambda t: 0.01 * math.cos(t / 100), "weight_decay": lambda t: 0.1 / (1 + t)}),
    (
        "NAdam",
        {
            "lr": lambda t: 0.01 / math.sqrt(t + 1),
            "weight_decay": lambda t: 0.05,
            "decoupled_weight_decay": True,
        },
    ),
    ("RAdam", {"lr": lambda t: 0.01 * 0.98**t, "weight_decay": lambda t: 0.01 * t / 100}),
    ("Adagrad", {"lr": lambda t: 0.1 * (1 + t % 5)}),
    ("Adadelta", {"lr": lambda t: 1.0 / (1 + t)}),
    ("RMSprop", {"lr": lambda t: 1e-3 * (1 + t / 50), "momentum": 0.9, "centered": True}),
    ("Rprop", {"lr": lambda t: 0.5 + t}),  # only the value at the first step matters
    ("Adamax", {"lr": lambda t: 0.02 / (1 + t)}),
]


@pytest.mark.parametrize(
    "name, hyper", SCHEDULED, ids=[f"{n}-{i}" for i, (n, _) in enumerate(SCHEDULED)]
)
def test_schedules_match_torch(torch64: Any, name: str, hyper: dict[str, Any]) -> None:
    p0, grads = make_problem(seed=11)
    assert_matches_torch(torch64, name, p0, grads, **hyper)


@pytest.mark.parametrize("name", NAMES)
def test_defaults_are_torchs(name: str) -> None:
    torch = pytest.importorskip("torch")
    signature = inspect.signature(getattr(torch.optim, name).__init__)
    torch_defaults = {
        k: v.default
        for k, v in signature.parameters.items()
        if k not in ("self", "params") and k not in TORCH_IMPLEMENTATION_ARGS
    }
    ours = dict(reference.DEFAULTS[name])
    if name == "SGD":
        assert ours.pop("l1") == 0.0 and ours.pop("decoupled_weight_decay") is False
    assert ours == torch_defaults


def test_radam_cases_cover_both_sides_of_the_rectification() -> None:
    def rho(beta2: float, t: int) -> float:
        rho_inf = 2 / (1 - beta2) - 1
        return rho_inf - 2 * t * beta2**t / (1 - beta2**t)

    default = [rho(0.999, t) > 5 for t in range(1, STEPS + 1)]
    assert not any(default[:5]) and all(default[5:])
    assert not any(rho(0.6, t) > 5 for t in range(1, STEPS + 1))


# --------------------------------------------------------------------------
# Closed forms (no torch)


def constant_grads(g: np.ndarray, n: int) -> list[np.ndarray]:
    return [g.copy() for _ in range(n)]


def test_plain_sgd_is_the_sum_of_gradients() -> None:
    p0, grads = make_problem(seed=1)
    p, state = run("SGD", p0, grads, lr=0.03)
    assert_close(p, p0 - 0.03 * np.sum(grads, axis=0), "plain SGD")
    assert state == {"step": STEPS}


@pytest.mark.parametrize("nesterov", [False, True])
def test_sgd_momentum_on_a_constant_gradient_is_a_geometric_series(nesterov: bool) -> None:
    lr, mu, n = 0.1, 0.9, 50
    p0 = np.zeros(SHAPE)
    g = np.linspace(-2.0, 3.0, p0.size).reshape(SHAPE)
    p, state = run("SGD", p0, constant_grads(g, n), lr=lr, momentum=mu, nesterov=nesterov)
    # b_k = g (1 - mu^k) / (1 - mu); heavy ball moves by b_k, Nesterov by g + mu b_k
    b = [(1 - mu**k) / (1 - mu) for k in range(1, n + 1)]
    moves = [mu * bk + 1 for bk in b] if nesterov else b
    assert_close(p, -lr * sum(moves) * g, "momentum closed form")
    assert_close(state["momentum_buffer"], b[-1] * g, "momentum buffer")


def test_sgd_dampening_starts_from_the_raw_gradient() -> None:
    mu, tau, n = 0.5, 0.3, 6
    g = np.full(SHAPE, 2.0)
    _, state = run("SGD", np.zeros(SHAPE), constant_grads(g, n), momentum=mu, dampening=tau)
    b = 1.0  # torch: b_1 = g, undamped
    for _ in range(n - 1):
        b = mu * b + (1 - tau)
    assert_close(state["momentum_buffer"], b * g, "dampened buffer")


@pytest.mark.parametrize("maximize", [False, True])
def test_adam_first_step_moves_each_coordinate_by_about_lr(maximize: bool) -> None:
    lr, eps = 0.01, 1e-8
    p0 = np.zeros(SHAPE)
    g = np.geomspace(1e-9, 1e3, p0.size).reshape(SHAPE) * np.where(
        np.arange(p0.size) % 2, 1, -1
    ).reshape(SHAPE)
    for name in ("Adam", "AdamW", "RAdam"):
        p, _ = run(name, p0, [g], lr=lr, eps=eps, maximize=maximize, weight_decay=0.0)
        sign = 1.0 if maximize else -1.0
        if name == "RAdam":  # rho_1 = 1 <= 5: plain momentum step on the bias-corrected mean
            expected = sign * lr * g
        else:  # m_hat = g, sqrt(v_hat) = |g|
            expected = sign * lr * g / (np.abs(g) + eps)
        assert_close(p, expected, name)
    p, _ = run("Adam", p0, [g], lr=lr, eps=0.0)
    assert_close(p, -lr * np.sign(g), "Adam without eps: exactly lr * sign(g)")


def test_adam_state_after_two_steps() -> None:
    beta1, beta2 = 0.8, 0.95
    g1, g2 = np.full(SHAPE, 2.0), np.full(SHAPE, -1.0)
    _, state = run("Adam", np.zeros(SHAPE), [g1, g2], betas=(beta1, beta2), amsgrad=True)
    assert_close(state["exp_avg"], beta1 * (1 - beta1) * g1 + (1 - beta1) * g2, "exp_avg")
    v1 = (1 - beta2) * g1**2
    v2 = beta2 * v1 + (1 - beta2) * g2**2
    assert_close(state["exp_avg_sq"], v2, "exp_avg_sq")
    assert_close(state["max_exp_avg_sq"], np.maximum(v1, v2), "max_exp_avg_sq")
    assert state["step"] == 2


def test_rprop_step_sizes_grow_by_etaplus_and_clamp() -> None:
    lr, etaplus, step_max, n = 0.01, 1.2, 0.05, 20
    g = np.where(np.arange(21).reshape(SHAPE) % 2 == 0, 1.0, -0.5)
    p0 = np.zeros(SHAPE)
    p, state = run(
        "Rprop", p0, constant_grads(g, n), lr=lr, etas=(0.5, etaplus), step_sizes=(1e-6, step_max)
    )
    # first step: no previous gradient, factor 1; then x1.2 per step up to the max
    sizes = [min(lr * etaplus**k, step_max) for k in range(n)]
    assert sizes[-1] == step_max and sizes[5] < step_max
    assert_close(state["step_size"], np.full(SHAPE, sizes[-1]), "step_size")
    assert_close(p, -np.sign(g) * sum(sizes), "Rprop params")
    assert_close(state["prev"], g, "prev")


def test_rprop_sign_flip_shrinks_and_skips_one_move() -> None:
    lr, etaminus, etaplus = 0.1, 0.5, 1.2
    g = np.ones(SHAPE)
    # +, +, -, -: steps of size lr, lr*1.2, then a flip (size lr*1.2*0.5, no move, prev = 0),
    # then s = 0: factor 1, move by lr*0.6 in the new direction
    p, state = run("Rprop", np.zeros(SHAPE), [g, g, -g, -g], lr=lr, etas=(etaminus, etaplus))
    assert_close(p, -(lr + lr * etaplus) * g + lr * etaplus * etaminus * g, "Rprop after flip")
    assert_close(state["step_size"], np.full(SHAPE, lr * etaplus * etaminus), "step_size")
    assert_close(state["prev"], -g, "prev")
    _, state3 = run("Rprop", np.zeros(SHAPE), [g, g, -g], lr=lr, etas=(etaminus, etaplus))
    assert_close(state3["prev"], np.zeros(SHAPE), "prev is zeroed on a flip")


def test_rprop_clamps_at_the_minimum() -> None:
    g = np.ones(SHAPE)
    alternating = [g if k % 2 == 0 else -g for k in range(30)]
    _, state = run("Rprop", np.zeros(SHAPE), alternating, lr=0.01, step_sizes=(1e-3, 1.0))
    assert_close(state["step_size"], np.full(SHAPE, 1e-3), "step_size at min")


def test_sgd_l1_moves_towards_zero_by_lr_l1_per_step() -> None:
    lr, l1, n = 0.1, 0.5, 10
    p0 = np.linspace(-5.0, 5.0, 21).reshape(SHAPE)
    p0[p0 == 0] = 10.0
    p, _ = run("SGD", p0, constant_grads(np.zeros(SHAPE), n), lr=lr, l1=l1)
    assert_close(p, p0 - n * lr * l1 * np.sign(p0), "l1 closed form")
    # at zero sign(0) = 0: a zero parameter with zero gradient stays put
    p, _ = run("SGD", np.zeros(SHAPE), constant_grads(np.zeros(SHAPE), 3), lr=lr, l1=l1)
    assert np.array_equal(p, np.zeros(SHAPE))


def test_sgd_l1_is_added_after_maximize() -> None:
    p0, g = np.full(SHAPE, 2.0), np.full(SHAPE, 3.0)
    p, _ = run("SGD", p0, [g], lr=0.1, l1=0.5, maximize=True)
    assert_close(p, p0 - 0.1 * (-g + 0.5), "maximize then l1")


@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_sgdw_with_zero_gradient_is_pure_shrinkage(momentum: float) -> None:
    lr, wd, n = 0.1, 0.3, 25
    p0, _ = make_problem(seed=5, steps=0)
    p, state = run(
        "SGD",
        p0,
        constant_grads(np.zeros(SHAPE), n),
        lr=lr,
        weight_decay=wd,
        momentum=momentum,
        decoupled_weight_decay=True,
    )
    assert_close(p, p0 * (1 - lr * wd) ** n, "SGDW shrinkage")
    if momentum:
        assert np.array_equal(state["momentum_buffer"], np.zeros(SHAPE))


def test_sgdw_differs_from_coupled_decay_under_momentum() -> None:
    lr, wd, mu = 0.1, 0.3, 0.9
    p0 = np.ones(SHAPE)
    zeros = constant_grads(np.zeros(SHAPE), 2)
    coupled, _ = run("SGD", p0, zeros, lr=lr, weight_decay=wd, momentum=mu)
    # coupled: b1 = wd p0, p1 = p0 (1 - lr wd); b2 = mu b1 + wd p1
    p1 = 1 - lr * wd
    assert_close(
        coupled, np.full(SHAPE, p1 - lr * (mu * wd + wd * p1)), "coupled decay with momentum"
    )
    decoupled, _ = run(
        "SGD", p0, zeros, lr=lr, weight_decay=wd, momentum=mu, decoupled_weight_decay=True
    )
    assert_close(decoupled, np.full(SHAPE, p1**2), "decoupled decay")


def test_adagrad_constant_gradient_with_lr_decay() -> None:
    lr, lr_decay, init, eps, n = 0.1, 0.2, 0.5, 1e-10, 8
    g = np.linspace(-1.0, 1.0, 21).reshape(SHAPE)
    p, state = run(
        "Adagrad",
        np.zeros(SHAPE),
        constant_grads(g, n),
        lr=lr,
        lr_decay=lr_decay,
        initial_accumulator_value=init,
    )
    expected = -sum(
        lr / (1 + (k - 1) * lr_decay) * g / (np.sqrt(init + k * g**2) + eps)
        for k in range(1, n + 1)
    )
    assert_close(p, expected, "Adagrad")
    assert_close(state["sum"], init + n * g**2, "sum")


def test_adamax_exp_inf_is_a_decayed_max() -> None:
    beta2, eps = 0.5, 1e-8
    g1, g2 = np.full(SHAPE, 4.0), np.full(SHAPE, 1.0)
    _, state = run("Adamax", np.zeros(SHAPE), [g1, g2], betas=(0.9, beta2), eps=eps)
    assert_close(state["exp_inf"], np.full(SHAPE, max(beta2 * (4.0 + eps), 1.0 + eps)), "exp_inf")


def test_nadam_mu_product() -> None:
    beta1, psi, n = 0.9, 0.004, 7
    _, state = run(
        "NAdam",
        np.zeros(SHAPE),
        constant_grads(np.ones(SHAPE), n),
        betas=(beta1, 0.999),
        momentum_decay=psi,
    )
    expected = math.prod(beta1 * (1 - 0.5 * 0.96 ** (t * psi)) for t in range(1, n + 1))
    assert state["mu_product"] == pytest.approx(expected, rel=1e-14)
    assert isinstance(state["mu_product"], float)


@pytest.mark.parametrize("name", NAMES)
def test_none_gradients_change_nothing(name: str) -> None:
    p0, grads = make_problem(seed=2, steps=6)
    gapped: list[np.ndarray | None] = [None, grads[0], None, None, *grads[1:], None]
    p_dense, s_dense = run(name, p0, grads)
    p_gapped, s_gapped = run(name, p0, gapped)
    assert np.array_equal(p_dense, p_gapped)
    assert s_dense.keys() == s_gapped.keys() and s_gapped["step"] == len(grads)
    for key, value in s_dense.items():
        assert np.array_equal(value, s_gapped[key]), key


@pytest.mark.parametrize("name", NAMES)
def test_no_gradient_at_all(name: str) -> None:
    p0 = np.arange(21.0).reshape(SHAPE)
    p, state = run(name, p0, [None, None])
    assert np.array_equal(p, p0) and state["step"] == 0
    expected_keys = (
        {"step", "sum"} if name == "Adagrad" else {"step"}
    )  # torch builds Adagrad's state eagerly
    assert set(state) == expected_keys


def test_schedules_are_indexed_by_position_in_grads() -> None:
    g = np.ones(SHAPE)
    seen: list[int] = []

    def lr(t: int) -> float:
        seen.append(t)
        return 0.1 * (t + 1)

    p, _ = run("SGD", np.zeros(SHAPE), [g, None, g, g], lr=lr)
    assert_close(p, -(0.1 + 0.3 + 0.4) * g, "scheduled lr")
    assert 1 not in seen  # a skipped step evaluates nothing but still advances t


def test_inputs_are_not_modified_and_results_are_float64() -> None:
    p0 = np.ones(SHAPE, dtype=np.float32)
    g = np.full(SHAPE, 0.5, dtype=np.float32)
    for name in NAMES:
        p, state = run(name, p0, [g, g])
        assert p.dtype == np.float64 and p is not p0
        assert all(v.dtype == np.float64 for v in state.values() if isinstance(v, np.ndarray))
        assert np.array_equal(p0, np.ones(SHAPE)) and np.array_equal(g, np.full(SHAPE, 0.5))


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda: run("Adamm", np.zeros(3), []), ValueError, "unknown optimizer 'Adamm'"),
        (lambda: run("Adam", np.zeros(3), [], momentum=0.9), TypeError, "momentum"),
        (
            lambda: run("AdamW", np.zeros(3), [], decoupled_weight_decay=False),
            TypeError,
            "decoupled_weight_decay",
        ),
        (lambda: run("Adagrad", np.zeros(3), [], l1=0.1), TypeError, "l1"),
        (lambda: run("SGD", np.zeros(3), [np.zeros(4)]), ValueError, r"grads\[0\] has shape"),
        (lambda: run("SGD", np.zeros(3), [np.zeros(3)], nesterov=True), ValueError, "Nesterov"),
        (lambda: run("Rprop", np.zeros(3), [np.zeros(3)], etas=(1.0, 1.2)), ValueError, "eta"),
    ],
)
def test_bad_calls(call: Callable[[], Any], error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        call()
