"""Schedules: closed forms, torch parity, properties, loss-driven decisions, composition,
pickling, bad arguments, and the plot."""

from __future__ import annotations

import copy
import doctest
import math
import pickle
import re
import sys
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import gradstep as gs
from gradstep import schedules as S

pytestmark = pytest.mark.filterwarnings("error")

RTOL = 1e-12


def close(a: Any, b: Any, rtol: float = RTOL) -> bool:
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    return bool(np.all(np.abs(a - b) <= rtol * np.maximum(np.abs(b), 1e-300)))


# -- closed forms (written independently, with the math module, step by step) -----------


def _tri(t: int, base: float, peak: float, up: int, down: int) -> float:
    pos = t % (up + down)
    if pos <= up:
        return base + (peak - base) * pos / up
    return peak - (peak - base) * (pos - up) / down


def _sgdr(t: int, lr: float, t0: int, mult: float, lo: float, decay: float) -> float:
    start, i = 0, 0
    while True:
        length = max(1, math.floor(t0 * mult**i + 0.5))
        if t < start + length:
            peak = max(lo, lr * decay**i)
            return lo + (peak - lo) * (1 + math.cos(math.pi * (t - start) / length)) / 2
        start += length
        i += 1


def _anneal_cos(a: float, b: float, p: float) -> float:
    return b + (a - b) * (1 + math.cos(math.pi * p)) / 2


def _one_cycle(t: int, peak: float, total: int, pct: float, div: float, fdiv: float) -> float:
    initial = peak / div
    final = initial / fdiv
    e1 = pct * total - 1
    t = min(t, total - 1)
    if t <= e1:
        return _anneal_cos(initial, peak, t / e1)
    return _anneal_cos(peak, final, (t - e1) / (total - 1 - e1))


CLOSED: list[tuple[str, Any, Callable[[int], float]]] = [
    ("constant", S.constant(0.3), lambda t: 0.3),
    ("step_decay", S.step_decay(0.1, 7, 0.5), lambda t: 0.1 * 0.5 ** (t // 7)),
    ("multistep", S.multistep_decay(0.1, [3, 10], 0.2),
     lambda t: 0.1 * 0.2 ** ((t >= 3) + (t >= 10))),
    ("piecewise", S.piecewise_constant([3, 10], [1.0, 2.0, 3.0]),
     lambda t: 1.0 if t < 3 else 2.0 if t < 10 else 3.0),
    ("inverse_time", S.inverse_time_decay(0.5, 0.1, 4), lambda t: 0.5 / (1 + 0.1 * t / 4)),
    ("inverse_time_staircase", S.inverse_time_decay(0.5, 0.1, 4, staircase=True),
     lambda t: 0.5 / (1 + 0.1 * (t // 4))),
    ("inverse_sqrt", S.inverse_sqrt_decay(0.2), lambda t: 0.2 / math.sqrt(t + 1)),
    ("exponential", S.exponential_decay(0.1, 0.97), lambda t: 0.1 * 0.97**t),
    ("polynomial", S.polynomial_decay(0.1, 20, 2.0, 0.01),
     lambda t: 0.09 * (1 - min(t, 20) / 20) ** 2 + 0.01),
    ("cosine", S.cosine_decay(0.1, 20, 0.01),
     lambda t: 0.01 + 0.045 * (1 + math.cos(math.pi * min(t, 20) / 20))),
    ("warmup_float", S.linear_warmup(0.1, 10, 0.2),
     lambda t: 0.1 * (0.2 + 0.8 * t / 10) if t < 10 else 0.1),
    ("warmup_cosine", S.linear_warmup(S.cosine_decay(0.1, 20), 5),
     lambda t: 0.1 * t / 5 if t < 5 else 0.05 * (1 + math.cos(math.pi * min(t - 5, 20) / 20))),
    ("triangular", S.cyclic(0.01, 0.1, 4, 6), lambda t: _tri(t, 0.01, 0.1, 4, 6)),
    ("triangular2", S.cyclic(0.01, 0.1, 5, mode="triangular2"),
     lambda t: 0.01 + (_tri(t, 0.01, 0.1, 5, 5) - 0.01) * 0.5 ** (t // 10)),
    ("exp_range", S.cyclic(0.01, 0.1, 3, 2, mode="exp_range", gamma=0.99),
     lambda t: 0.01 + (_tri(t, 0.01, 0.1, 3, 2) - 0.01) * 0.99**t),
    ("sgdr", S.cosine_warm_restarts(0.1, 4, 2, 0.001),
     lambda t: _sgdr(t, 0.1, 4, 2, 0.001, 1.0)),
    ("sgdr_float", S.cosine_warm_restarts(0.1, 3, 1.7, 0.001, restart_decay=0.6),
     lambda t: _sgdr(t, 0.1, 3, 1.7, 0.001, 0.6)),
    ("one_cycle", S.one_cycle(0.1, 50, 0.3, 25.0, 1e4),
     lambda t: _one_cycle(t, 0.1, 50, 0.3, 25.0, 1e4)),
    ("one_cycle_linear", S.one_cycle(1.0, 11, 0.5, 4.0, 2.0, anneal="linear"),
     lambda t: 0.25 + 0.75 * t / 4.5 if t <= 4.5
     else 1.0 + (0.125 - 1.0) * (min(t, 10) - 4.5) / 5.5),
    ("one_cycle_momentum", S.one_cycle_momentum(50, 0.3, 0.8, 0.9),
     lambda t: _anneal_cos(0.9, 0.8, t / 14) if t <= 14
     else _anneal_cos(0.8, 0.9, (min(t, 49) - 14) / 35)),
    ("join", S.join([S.constant(1.0), S.exponential_decay(1.0, 0.5), 0.25], [3, 6]),
     lambda t: 1.0 if t < 3 else 0.5 ** (t - 3) if t < 6 else 0.25),
]


@pytest.mark.parametrize(("name", "schedule", "formula"), CLOSED, ids=[c[0] for c in CLOSED])
def test_closed_form(name: str, schedule: Any, formula: Callable[[int], float]) -> None:
    steps = [*range(120), 1000, 12345]
    expected = [formula(t) for t in steps]
    got = [schedule(t) for t in steps]
    assert all(isinstance(x, float) for x in got)
    assert close(got, expected), name
    # The vectorised path gives the same numbers (the same ufunc loops; SIMD kernels
    # may differ from their scalar tails by an ulp on some CPUs).
    arr = schedule(np.array(steps))
    assert arr.dtype == np.float64 and arr.shape == (len(steps),)
    np.testing.assert_array_max_ulp(arr, np.array(got), maxulp=2)


def test_array_shapes_and_integer_types() -> None:
    s = S.cosine_decay(1.0, 10)
    grid = np.arange(12, dtype=np.int32).reshape(3, 4)
    out = s(grid)
    assert out.shape == (3, 4)
    np.testing.assert_array_equal(out.ravel(), [s(int(t)) for t in grid.ravel()])
    assert s(np.uint8(5)) == s(5)
    assert s(np.array([], dtype=np.int64)).shape == (0,)
    assert S.cosine_warm_restarts(1.0, 3, 2.0)(np.array([], dtype=np.int64)).shape == (0,)
    assert s(np.array(3)).shape == ()


def test_plain_callables_inside_composites() -> None:
    s = S.join([lambda t: 1.0 / (t + 1), 0.5], [4])
    np.testing.assert_array_equal(s(np.arange(6)), [1.0, 0.5, 1 / 3, 0.25, 0.5, 0.5])
    w = S.linear_warmup(lambda t: 2.0, 2)
    assert [w(t) for t in range(4)] == [0.0, 1.0, 2.0, 2.0]


def test_warmup_zero_steps_is_the_schedule() -> None:
    inner = S.cosine_decay(1.0, 10)
    s = S.linear_warmup(inner, 0)
    np.testing.assert_array_equal(s(np.arange(15)), inner(np.arange(15)))


def test_cosine_decay_holds_min_lr_where_torch_turns_back_up() -> None:
    s = S.cosine_decay(1.0, 10, min_lr=0.1)
    assert s(10) == pytest.approx(0.1) and s(11) == s(10) and s(25) == s(10)


def test_one_cycle_holds_the_final_rate() -> None:
    s = S.one_cycle(0.1, 20)
    assert s(19) == pytest.approx(s.final_lr, rel=1e-15)
    assert s(20) == s(19) and s(10**6) == s(19)
    assert s.initial_lr == pytest.approx(0.004)


# -- cycle ends ----------------------------------------------------------------------


def test_cycle_ends() -> None:
    assert S.cyclic(0.1, 1.0, 2, 3).cycle_ends(16) == [4, 9, 14]
    assert S.cyclic(0.1, 1.0, 2, 3).cycle_ends(15) == [4, 9, 14]
    assert S.cyclic(0.1, 1.0, 2, 3).cycle_ends(14) == [4, 9]
    assert S.cosine_warm_restarts(1.0, 3).cycle_ends(10) == [2, 5, 8]
    assert S.cosine_warm_restarts(1.0, 2, 2).cycle_ends(30) == [1, 5, 13, 29]
    assert S.cosine_warm_restarts(1.0, 2, 1.5).cycle_ends(20) == [1, 4, 9, 16]
    assert S.cosine_warm_restarts(1.0, 2).cycle_ends(0) == []
    assert S.one_cycle(1.0, 10).cycle_ends(9) == []
    assert S.one_cycle(1.0, 10).cycle_ends(10) == [9]
    warm = S.linear_warmup(S.cosine_warm_restarts(1.0, 4), 3)
    assert warm.cycle_ends(15) == [6, 10, 14]
    assert warm.cycle_ends(3) == []
    joined = S.join([S.constant(1.0), S.cyclic(0.0, 1.0, 1), S.one_cycle(1.0, 5)], [4, 10])
    assert joined.cycle_ends(100) == [5, 7, 9, 14]
    with pytest.raises(TypeError, match="no cyclic schedule"):
        S.join([S.constant(1.0), S.constant(2.0)], [3]).cycle_ends(10)
    with pytest.raises(TypeError, match="no cyclic schedule"):
        S.linear_warmup(0.1, 3).cycle_ends(10)


def test_cycle_ends_are_where_the_cosine_bottoms_out() -> None:
    s = S.cosine_warm_restarts(1.0, 5, 1.5, min_lr=0.01)
    for e in s.cycle_ends(200):
        assert s(e + 1) == 1.0  # a restart follows every end
        assert s(e) < s(e - 1)


# -- torch parity ---------------------------------------------------------------------


def _torch_lrs(make: Callable[[Any], Any], n: int, lr: float = 0.1, optim: str = "SGD",
               key: str = "lr", **okw: Any) -> np.ndarray:
    torch = pytest.importorskip("torch")
    p = torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))
    opt = getattr(torch.optim, optim)([p], lr=lr, **okw)
    sched = make(opt)
    out = []
    for _ in range(n):
        g = opt.param_groups[0]
        out.append(g["betas"][0] if key == "betas0" else g[key])
        opt.step()
        sched.step()
    return np.array(out)


def _parity_cases() -> list[tuple[str, Any, Callable[[Any], Any], int]]:
    try:
        from torch.optim import lr_scheduler as L
    except ImportError:
        return []
    return [
        ("StepLR", S.step_decay(0.1, 7, 0.5), lambda o: L.StepLR(o, 7, 0.5), 300),
        ("MultiStepLR", S.multistep_decay(0.1, [5, 20, 90], 0.3),
         lambda o: L.MultiStepLR(o, [5, 20, 90], 0.3), 150),
        ("ExponentialLR", S.exponential_decay(0.1, 0.99), lambda o: L.ExponentialLR(o, 0.99), 500),
        ("CosineAnnealingLR", S.cosine_decay(0.1, 100, 0.001),
         lambda o: L.CosineAnnealingLR(o, 100, 0.001), 101),
        ("CosineAnnealingLR-eta0", S.cosine_decay(0.1, 37),
         lambda o: L.CosineAnnealingLR(o, 37), 38),
        ("PolynomialLR", S.polynomial_decay(0.1, 50, 2.0),
         lambda o: L.PolynomialLR(o, 50, 2.0), 70),
        ("PolynomialLR-0.9", S.polynomial_decay(0.1, 40, 0.9),
         lambda o: L.PolynomialLR(o, 40, 0.9), 60),
        ("LinearLR", S.linear_warmup(0.1, 10, 0.25), lambda o: L.LinearLR(o, 0.25, 1.0, 10), 30),
        ("CyclicLR-triangular", S.cyclic(0.01, 0.1, 5, 3),
         lambda o: L.CyclicLR(o, 0.01, 0.1, 5, 3, cycle_momentum=False), 300),
        ("CyclicLR-triangular2", S.cyclic(0.01, 0.1, 4, mode="triangular2"),
         lambda o: L.CyclicLR(o, 0.01, 0.1, 4, mode="triangular2", cycle_momentum=False), 300),
        ("CyclicLR-exp_range", S.cyclic(0.01, 0.1, 6, 2, mode="exp_range", gamma=0.995),
         lambda o: L.CyclicLR(o, 0.01, 0.1, 6, 2, mode="exp_range", gamma=0.995,
                              cycle_momentum=False), 300),
        ("CosineAnnealingWarmRestarts", S.cosine_warm_restarts(0.1, 3, 2, 0.001),
         lambda o: L.CosineAnnealingWarmRestarts(o, 3, 2, 0.001), 400),
        ("CosineAnnealingWarmRestarts-1", S.cosine_warm_restarts(0.1, 7),
         lambda o: L.CosineAnnealingWarmRestarts(o, 7), 100),
        ("OneCycleLR", S.one_cycle(0.1, 100),
         lambda o: L.OneCycleLR(o, 0.1, 100, cycle_momentum=False), 100),
        ("OneCycleLR-linear", S.one_cycle(0.3, 77, 0.4, 10.0, 100.0, anneal="linear"),
         lambda o: L.OneCycleLR(o, 0.3, 77, pct_start=0.4, anneal_strategy="linear",
                                div_factor=10.0, final_div_factor=100.0,
                                cycle_momentum=False), 77),
        ("OneCycleLR-three_phase", S.one_cycle(0.1, 60, 0.25, three_phase=True),
         lambda o: L.OneCycleLR(o, 0.1, 60, pct_start=0.25, three_phase=True,
                                cycle_momentum=False), 60),
    ]


@pytest.mark.parametrize(("name", "ours", "make", "n"), _parity_cases(),
                         ids=[c[0] for c in _parity_cases()])
def test_torch_parity(name: str, ours: Any, make: Callable[[Any], Any], n: int) -> None:
    ref = _torch_lrs(make, n)
    got = ours(np.arange(n))
    assert close(got, ref), (name, np.max(np.abs(got - ref) / np.abs(ref)))
    assert close([ours(t) for t in range(n)], ref)


def test_torch_cosine_annealing_recursion_after_t_max() -> None:
    """torch's recursive CosineAnnealingLR keeps following the cosine after T_max
    (period 2 T_max), i.e. its closed form without the min(t, T); ours holds min_lr."""
    pytest.importorskip("torch")
    from torch.optim import lr_scheduler as L

    n, t_max = 45, 10
    ref = _torch_lrs(lambda o: L.CosineAnnealingLR(o, t_max, 0.01), n)
    t = np.arange(n)
    periodic = 0.01 + (0.1 - 0.01) * (1 + np.cos(np.pi * t / t_max)) / 2
    assert close(ref, periodic, rtol=1e-10)
    ours = S.cosine_decay(0.1, t_max, 0.01)(t)
    assert close(ours[: t_max + 1], ref[: t_max + 1])
    assert np.all(ours[t_max:] == ours[t_max])


@pytest.mark.parametrize("optim", ["SGD", "Adam"])
def test_torch_parity_one_cycle_momentum(optim: str) -> None:
    pytest.importorskip("torch")
    from torch.optim import lr_scheduler as L

    n = 90
    three = optim == "Adam"
    key = "betas0" if optim == "Adam" else "momentum"
    okw = {"momentum": 0.9} if optim == "SGD" else {}
    ref = _torch_lrs(lambda o: L.OneCycleLR(o, 0.1, n, pct_start=0.3, base_momentum=0.8,
                                           max_momentum=0.93, three_phase=three),
                     n, optim=optim, key=key, **okw)
    ours = S.one_cycle_momentum(n, 0.3, base_momentum=0.8, max_momentum=0.93,
                                three_phase=three)
    assert close(ours(np.arange(n)), ref)


def test_one_cycle_momentum_drives_an_optimizer() -> None:
    w = np.zeros(3)
    lr, mom = S.one_cycle(0.1, 20), S.one_cycle_momentum(20)
    opt = gs.SGD([w], lr=lr, momentum=mom)
    adam = gs.Adam([np.zeros(3)], lr=lr, betas=(mom, 0.999))
    for _ in range(20):
        opt.step([np.ones(3)])
        adam.step([np.ones(3)])
    assert np.all(w < 0)


def _plateau_losses(seed: int, n: int = 120) -> list[float]:
    rng = np.random.default_rng(seed)
    base = np.concatenate([np.linspace(5, 1, n // 3), np.full(n - n // 3, 1.0)])
    return list(base + 0.02 * rng.standard_normal(n))


PLATEAU_SETTINGS = [
    {},
    {"factor": 0.5, "patience": 2},
    {"factor": 0.5, "patience": 0, "cooldown": 3},
    {"factor": 0.3, "patience": 3, "threshold": 0.05, "threshold_mode": "abs"},
    {"factor": 0.5, "patience": 1, "min_lr": 0.02, "eps": 1e-3},
    {"mode": "max", "factor": 0.5, "patience": 2},
    {"mode": "max", "factor": 0.5, "patience": 2, "threshold_mode": "abs", "threshold": 0.1},
]


@pytest.mark.parametrize("kw", PLATEAU_SETTINGS, ids=lambda kw: ",".join(map(str, kw.items())))
def test_torch_parity_reduce_lr_on_plateau(kw: dict[str, Any]) -> None:
    torch = pytest.importorskip("torch")
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=0.1)
    ref = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, **kw)
    ours = S.ReduceLROnPlateau(0.1, **kw)
    losses = _plateau_losses(len(kw))
    if kw.get("mode") == "max":
        losses = [-x for x in losses]
    losses[50] = float("nan")
    seen = set()
    for t, loss in enumerate(losses):
        ref.step(loss)
        reduced = ours.update(loss)
        assert ours(t) == opt.param_groups[0]["lr"], t
        assert (ours.best == ref.best) or (math.isnan(ours.best) and math.isnan(ref.best))
        assert ours.num_bad_epochs == ref.num_bad_epochs
        assert ours.cooldown_counter == ref.cooldown_counter
        seen.add(reduced)
    assert seen == {True, False}


# -- loss-driven decisions, step by step ---------------------------------------------


def test_reduce_lr_on_plateau_decisions() -> None:
    s = S.ReduceLROnPlateau(1.0, factor=0.5, patience=1, cooldown=1, min_lr=0.2)
    #        loss   lr after  bad  cooldown  reduced
    table = [
        (3.0, 1.0, 0, 0, False),   # first value: the best
        (2.0, 1.0, 0, 0, False),   # better
        (2.0, 1.0, 1, 0, False),   # not better: one bad epoch (patience 1 allows it)
        (2.5, 0.5, 0, 1, True),    # second bad epoch > patience: cut, cooldown starts
        (2.5, 0.5, 0, 0, False),   # in cooldown: bad epochs ignored
        (2.5, 0.5, 1, 0, False),
        (2.5, 0.25, 0, 1, True),
        (9.0, 0.25, 0, 0, False),
        (9.0, 0.25, 1, 0, False),
        (9.0, 0.2, 0, 1, True),    # floored at min_lr
        (9.0, 0.2, 0, 0, False),
        (9.0, 0.2, 1, 0, False),
        (9.0, 0.2, 0, 1, False),   # at min_lr: nothing to cut (still resets the counters)
        (1.0, 0.2, 0, 0, False),   # a new best
    ]
    for k, (loss, lr, bad, cool, reduced) in enumerate(table):
        assert s.update(loss) is reduced, k
        assert (s(k), s.num_bad_epochs, s.cooldown_counter) == (lr, bad, cool), k
    assert s.best == 1.0 and s.last_epoch == len(table)


def test_reduce_lr_on_plateau_threshold_rel_and_abs() -> None:
    rel = S.ReduceLROnPlateau(1.0, patience=0, threshold=0.1)
    rel.update(10.0)
    rel.update(9.5)  # not below 10 * 0.9
    assert rel(0) == 0.1
    ab = S.ReduceLROnPlateau(1.0, patience=0, threshold=0.4, threshold_mode="abs")
    ab.update(10.0)
    ab.update(9.5)  # below 10 - 0.4
    assert ab(0) == 1.0 and ab.best == 9.5


def test_bold_driver_decisions_without_rollback() -> None:
    s = S.BoldDriver(1.0, increase=2.0, decrease=0.5, max_lr=5.0, min_lr=0.2)
    nan = float("nan")
    #        loss  lr after  reference
    table = [
        (5.0, 1.0, 5.0),   # first loss: the reference
        (4.0, 2.0, 4.0),   # fell: grow
        (4.0, 2.0, 4.0),   # level: keep
        (6.0, 1.0, 6.0),   # rose: cut; without rollback the rise is taken
        (3.0, 2.0, 3.0),
        (nan, 1.0, 3.0),   # not finite: cut, never a reference
        (2.0, 2.0, 2.0),
        (1.0, 4.0, 1.0),
        (0.5, 5.0, 0.5),   # capped at max_lr
        (9.0, 2.5, 9.0),
        (99.0, 1.25, 99.0),
        (999.0, 0.625, 999.0),
        (9999.0, 0.3125, 9999.0),
        (99999.0, 0.2, 99999.0),  # floored at min_lr
    ]
    for k, (loss, lr, ref) in enumerate(table):
        assert s.update(loss) is True, k  # nothing rolled back
        assert (s(k), s.reference_loss) == (lr, ref), k
    assert (s.n_accepted, s.n_rejected) == (7, 7)


def test_bold_driver_tolerance() -> None:
    s = S.BoldDriver(1.0, tolerance=0.1)
    s.update(10.0)
    s.update(10.9)  # within 10 % of 10: accepted, level
    assert s(0) == 1.0 and s.reference_loss == 10.9
    s.update(12.1)  # above 10.9 * 1.1
    assert s(0) == 0.5


def _quadratic(w: np.ndarray) -> tuple[float, np.ndarray]:
    scales = np.arange(1.0, w.size + 1.0)
    return float(0.5 * np.sum(scales * w * w)), scales * w


@pytest.mark.parametrize("attach", ["constructor", "attach", "params_only"])
def test_bold_driver_rolls_back_params_and_optimizer_state(attach: str) -> None:
    w = np.linspace(1.0, 2.0, 4)
    driver = S.BoldDriver(0.2, increase=1.5, decrease=0.5)
    opt = gs.SGD([w], lr=driver, momentum=0.5)
    if attach == "constructor":
        driver = S.BoldDriver(0.2, increase=1.5, decrease=0.5, optimizer=opt)
        opt.param_groups[0]["lr"] = driver
    elif attach == "attach":
        driver.attach(opt)
    else:
        driver.attach(params=[w])
    good: tuple[np.ndarray, dict[str, Any]] | None = None
    rollbacks = 0
    for _ in range(40):
        loss, grad = _quadratic(w)
        kept = driver.update(loss)
        if kept:
            good = (w.copy(), opt.state_dict())
            opt.step([grad])
        else:
            rollbacks += 1
            assert good is not None
            np.testing.assert_array_equal(w, good[0])
            if attach != "params_only":
                sd = opt.state_dict()
                assert sd["step_count"] == good[1]["step_count"]
                np.testing.assert_array_equal(sd["state"][0]["momentum_buffer"],
                                              good[1]["state"][0]["momentum_buffer"])
            assert opt.param_groups[0]["lr"] is driver  # still driven by the same object
    assert rollbacks >= 1
    assert _quadratic(w)[0] < _quadratic(np.linspace(1.0, 2.0, 4))[0]


def test_bold_driver_rollback_replays_exactly() -> None:
    """After a rollback the run continues exactly as a fresh run from the last good point
    with the cut rate would."""
    w = np.array([1.0, -2.0, 0.5])
    driver = S.BoldDriver(0.9, increase=1.2, decrease=0.5)
    opt = gs.SGD([w], lr=driver, momentum=0.3)
    driver.attach(opt)
    for _ in range(30):
        loss, grad = _quadratic(w)
        if driver.update(loss):
            opt.step([grad])
        else:
            break
    else:
        pytest.fail("expected a rise")
    # Now w and opt are back at the good point; a fresh optimizer loaded from it agrees.
    w2 = w.copy()
    opt2 = gs.SGD([w2], lr=driver.current_lr, momentum=0.3)
    sd = opt.state_dict()
    sd["param_groups"][0]["lr"] = driver.current_lr
    opt2.load_state_dict(sd)
    for _ in range(3):
        g = _quadratic(w)[1]
        opt.step([g])
        opt2.step([_quadratic(w2)[1]])
    np.testing.assert_array_equal(w, w2)


def test_loss_driven_schedules_survive_optimizer_state_dict_round_trip() -> None:
    plateau = S.ReduceLROnPlateau(0.1, patience=0)
    opt = gs.SGD([np.zeros(2)], lr=plateau)
    opt.load_state_dict(opt.state_dict())
    assert opt.param_groups[0]["lr"] is plateau
    assert copy.copy(plateau) is plateau
    assert copy.deepcopy(plateau) is not plateau


def test_loss_driven_state_dict_round_trip() -> None:
    a = S.ReduceLROnPlateau(1.0, factor=0.5, patience=1)
    for loss in [3.0, 3.0, 3.0, 2.0, 2.0]:
        a.update(loss)
    b = S.ReduceLROnPlateau(1.0, factor=0.5, patience=1)
    b.load_state_dict(a.state_dict())
    for loss in [2.0, 2.0, 2.0, 1.0]:
        assert a.update(loss) == b.update(loss)
        assert a(0) == b(0)
    d = S.BoldDriver(1.0)
    for loss in [3.0, 2.0, 4.0]:
        d.update(loss)
    e = S.BoldDriver(1.0)
    e.load_state_dict(d.state_dict())
    assert (e.current_lr, e.reference_loss, e.n_accepted, e.n_rejected) == (
        d.current_lr, d.reference_loss, d.n_accepted, d.n_rejected)
    with pytest.raises(ValueError, match="missing"):
        e.load_state_dict({"current_lr": 1.0})
    w = np.ones(2)
    f = S.BoldDriver(1.0, params=[w])
    f.update(1.0)
    g = S.BoldDriver(1.0)
    with pytest.raises(ValueError, match="not attached"):
        g.load_state_dict(f.state_dict())
    g.attach(params=[np.zeros(2)])
    g.load_state_dict(f.state_dict())
    g.update(5.0)
    np.testing.assert_array_equal(g._params[0], [1.0, 1.0])  # type: ignore[index]


# -- composition with loss-driven schedules -------------------------------------------


def test_join_forwards_update_to_the_active_loss_driven_schedule() -> None:
    plateau = S.ReduceLROnPlateau(0.1, factor=0.5, patience=0)
    s = S.join([S.linear_warmup(0.1, 5), plateau], [5])
    assert s.loss_driven
    opt = gs.SGD([np.zeros(2)], lr=s)
    for t in range(12):
        opt.step([np.ones(2)])
        result = s.update(1.0)  # flat loss: every update after the first is a bad epoch
        if t < 5:
            assert result is None and plateau.last_epoch == 0
    assert plateau.last_epoch == 7
    assert plateau(0) == 0.1 * 0.5**6
    assert s(20) == plateau(0)
    # An explicit step wins over the remembered one.
    assert s.update(1.0, step=2) is None
    assert s.update(1.0, step=7) is True


def test_warmup_forwards_update_after_the_warmup() -> None:
    driver = S.BoldDriver(1.0, increase=2.0)
    s = S.linear_warmup(driver, 4, start_factor=0.5)
    assert s(0) == 0.5 and s(2) == 0.75 and s(4) == 1.0
    s(1)
    assert s.update(1.0) is None and driver.reference_loss is None
    s(4)
    assert s.update(1.0) is True and driver.reference_loss == 1.0
    s(5)
    s.update(0.5)
    assert s(5) == 2.0 and s(0) == 1.0  # the warmup ramps to the driver's current rate


def test_nested_join_forwarding_and_state_dict() -> None:
    plateau = S.ReduceLROnPlateau(1.0, patience=0, factor=0.5)
    inner = S.join([0.3, plateau], [2])
    outer = S.join([S.constant(0.1), S.linear_warmup(inner, 3)], [4])
    assert outer.loss_driven
    outer(10)  # outer 10 -> warmup 6 -> inner 3 -> the plateau
    outer.update(1.0)
    outer.update(1.0)
    assert plateau(0) == 0.5
    sd = outer.state_dict()
    assert sd["last_step"] == 10
    plateau.update(1.0)
    outer.load_state_dict(sd)
    assert plateau(0) == 0.5 and plateau.last_epoch == 2
    assert outer.update(1.0, step=8) is None  # inner step 1: the constant 0.3


# -- hypothesis properties --------------------------------------------------------------

lrs = st.floats(1e-6, 10.0)
small = st.integers(1, 40)
step_arrays = st.lists(st.integers(0, 3000), min_size=1, max_size=40)
fast = settings(max_examples=40, deadline=None)


@fast
@given(lr=lrs, size=small, gamma=st.floats(0.01, 1.0), steps=step_arrays)
def test_decays_are_nonincreasing_and_bounded(lr: float, size: int, gamma: float,
                                              steps: list[int]) -> None:
    t = np.sort(np.array(steps))
    for s in (S.step_decay(lr, size, gamma), S.exponential_decay(lr, gamma),
              S.inverse_time_decay(lr, gamma, size), S.inverse_sqrt_decay(lr),
              S.polynomial_decay(lr, size, 1.0 + gamma), S.cosine_decay(lr, size),
              S.multistep_decay(lr, [size, 2 * size], gamma)):
        v = s(t)
        assert np.all(np.diff(v) <= 1e-15 * lr), s
        assert np.all(v <= lr * (1 + 1e-15)) and np.all(v >= 0.0)
        assert s(0) == pytest.approx(lr, rel=1e-15)


@fast
@given(lr=lrs, lo=st.floats(0.0, 1.0), total=small, power=st.floats(0.1, 3.0))
def test_decay_endpoints(lr: float, lo: float, total: int, power: float) -> None:
    end = lo * lr
    p = S.polynomial_decay(lr, total, power, end)
    c = S.cosine_decay(lr, total, end)
    for s in (p, c):
        assert s(0) == pytest.approx(lr, rel=1e-14)
        assert s(total) == pytest.approx(end, rel=1e-14, abs=1e-15 * lr)
        assert s(total + 7) == s(total)


@fast
@given(lr=lrs, w=st.integers(1, 50), f0=st.floats(0.0, 1.0), steps=step_arrays)
def test_warmup_ramps_monotonically_to_the_target(lr: float, w: int, f0: float,
                                                  steps: list[int]) -> None:
    s = S.linear_warmup(S.cosine_decay(lr, 100), w, f0)
    ramp = s(np.arange(w + 1))
    assert np.all(np.diff(ramp) >= -1e-15 * lr)
    assert ramp[0] == pytest.approx(f0 * lr, rel=1e-14, abs=1e-300)
    assert ramp[w] == lr
    v = s(np.array(steps))
    assert np.all((v >= 0) & (v <= lr * (1 + 1e-15)))


@fast
@given(base=st.floats(0.0, 1.0), amp=st.floats(0.0, 1.0), up=small, down=small,
       mode=st.sampled_from(["triangular", "triangular2", "exp_range"]),
       gamma=st.floats(0.9, 1.0), steps=step_arrays)
def test_cyclic_bounds_pieces_and_endpoints(base: float, amp: float, up: int, down: int,
                                            mode: str, gamma: float, steps: list[int]) -> None:
    s = S.cyclic(base, base + amp, up, down, mode, gamma)
    v = s(np.array(steps))
    assert np.all(v >= base - 1e-15) and np.all(v <= base + amp + 1e-15)
    length = up + down
    if mode == "exp_range":  # the amplitude shrinks by gamma every step
        t = np.arange(3 * length)
        assert np.all(s(t) <= base + amp * gamma**t + 1e-15)
    for k in range(3):
        cycle = s(np.arange(k * length, (k + 1) * length + 1))
        assert cycle[0] == pytest.approx(base, abs=1e-15)
        if mode != "exp_range":
            assert np.all(np.diff(cycle[: up + 1]) >= -1e-15)
            assert np.all(np.diff(cycle[up:]) <= 1e-15)
    if mode == "triangular":
        assert s(up) == pytest.approx(base + amp, rel=1e-14)
    assert s.cycle_ends(3 * length) == [length - 1, 2 * length - 1, 3 * length - 1]


@fast
@given(lr=lrs, t0=small, mult=st.floats(1.0, 3.0), lo=st.floats(0.0, 0.5),
       decay=st.floats(0.1, 1.0), steps=step_arrays)
def test_sgdr_bounds_restarts_and_pieces(lr: float, t0: int, mult: float, lo: float,
                                         decay: float, steps: list[int]) -> None:
    s = S.cosine_warm_restarts(lr, t0, mult, lo * lr, decay)
    v = s(np.array(steps))
    assert np.all(v >= lo * lr * (1 - 1e-15)) and np.all(v <= lr * (1 + 1e-15))
    ends = s.cycle_ends(400)
    starts = [0] + [e + 1 for e in ends]
    for i, start in enumerate(starts[:-1]):
        piece = s(np.arange(start, starts[i + 1]))
        assert np.all(np.diff(piece) <= 1e-15 * lr)  # nonincreasing within a cycle
        peak = max(lo * lr, lr * decay**i)
        assert piece[0] == pytest.approx(peak, rel=1e-14)
    lengths = np.diff(starts)
    assert np.all(lengths >= 1) and np.all(np.diff(lengths) >= 0)


@fast
@given(peak=lrs, total=st.integers(2, 300), pct=st.floats(0.0, 1.0),
       div=st.floats(1.5, 100.0), fdiv=st.floats(1.0, 1e4),
       anneal=st.sampled_from(["cos", "linear"]), steps=step_arrays)
def test_one_cycle_bounds_endpoints_and_pieces(peak: float, total: int, pct: float,
                                               div: float, fdiv: float, anneal: str,
                                               steps: list[int]) -> None:
    s = S.one_cycle(peak, total, pct, div, fdiv, anneal)
    v = s(np.array(steps))
    lo = min(s.final_lr, s.initial_lr)
    assert np.all(v >= lo - 1e-14 * peak) and np.all(v <= peak * (1 + 1e-14))
    if pct < 1.0:  # with pct_start=1 the whole run is the rise (as in torch)
        assert s(total - 1) == pytest.approx(s.final_lr, rel=1e-12, abs=1e-14 * peak)
    curve = s(np.arange(total))
    top = int(np.argmax(curve))
    assert np.all(np.diff(curve[: top + 1]) >= -1e-15 * peak)
    assert np.all(np.diff(curve[top:]) <= 1e-15 * peak)
    if pct * total >= 2:
        assert curve[0] == pytest.approx(s.initial_lr, rel=1e-14)
    m = S.one_cycle_momentum(total, pct, anneal=anneal)
    mv = m(np.arange(total))
    assert np.all((mv >= 0.85 - 1e-15) & (mv <= 0.95 + 1e-15))
    # Momentum moves the other way round: at every step the same fraction of its phase.
    t = np.arange(total)
    rising = t <= pct * total - 1
    w_lr = np.where(rising, (curve - s.initial_lr) / (peak - s.initial_lr),
                    (curve - peak) / (s.final_lr - peak))
    w_m = np.where(rising, (mv - 0.95) / (0.85 - 0.95), (mv - 0.85) / (0.95 - 0.85))
    np.testing.assert_allclose(w_lr, w_m, rtol=0, atol=1e-9)


def _all_schedules() -> list[Any]:
    return [c[1] for c in CLOSED] + [
        S.ReduceLROnPlateau(0.1),
        S.BoldDriver(0.1),
        S.join([S.ReduceLROnPlateau(0.2), S.cosine_warm_restarts(0.1, 5, 1.3)], [3]),
    ]


@settings(max_examples=60, deadline=None)
@given(which=st.integers(0, len(_all_schedules()) - 1),
       steps=st.lists(st.integers(0, 10**6), min_size=0, max_size=30))
def test_array_evaluation_equals_scalar_evaluation(which: int, steps: list[int]) -> None:
    s = _all_schedules()[which]
    t = np.array(steps, dtype=np.int64)
    np.testing.assert_array_max_ulp(s(t), np.array([s(int(x)) for x in steps], dtype=np.float64),
                                    maxulp=2)


# -- values, repr, pickling --------------------------------------------------------------


@pytest.mark.parametrize("schedule", _all_schedules(), ids=lambda s: type(s).__name__)
def test_pickle_round_trip(schedule: Any) -> None:
    back = pickle.loads(pickle.dumps(schedule))
    steps = np.arange(0, 500, 7)
    np.testing.assert_array_equal(back(steps), schedule(steps))
    if not isinstance(schedule, (S.ReduceLROnPlateau, S.BoldDriver, S.Join)):
        assert back == schedule and hash(back) == hash(schedule)


@pytest.mark.parametrize("schedule", [c[1] for c in CLOSED], ids=[c[0] for c in CLOSED])
def test_repr_is_readable_and_evaluates_back(schedule: Any) -> None:
    text = repr(schedule)
    assert text.startswith(type(schedule).__name__ + "(")
    assert eval(text, dict(vars(S))) == schedule


def test_loss_driven_pickle_keeps_state_drops_attachment() -> None:
    w = np.ones(3)
    d = S.BoldDriver(0.5, params=[w])
    d.update(2.0)
    d.update(1.0)
    back = pickle.loads(pickle.dumps(d))
    assert back.current_lr == d.current_lr and back.reference_loss == 1.0
    assert d.attached and not back.attached
    assert "current_lr=0.525" in repr(d) and repr(S.ReduceLROnPlateau(0.1)).startswith(
        "ReduceLROnPlateau(lr=0.1, mode='min'")


def test_schedule_drives_the_optimizer_at_the_right_steps() -> None:
    lr = S.piecewise_constant([2, 4], [1.0, 0.5, 0.25])
    w = np.zeros(1)
    opt = gs.SGD([w], lr=lr)
    trace = []
    for _ in range(6):
        opt.step([np.ones(1)])
        trace.append(-w[0])
    np.testing.assert_allclose(np.diff([0.0, *trace]), [lr(t) for t in range(6)])


def test_docstring_examples_run() -> None:
    import gradstep._averaging as averaging

    modules: list[Any] = [S, averaging]
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        pass
    else:
        import gradstep._plot as plot

        modules.append(plot)
    for module in modules:
        failed, attempted = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
        assert attempted > 0 and failed == 0, module.__name__


# -- bad arguments ---------------------------------------------------------------------

BAD: list[tuple[str, Callable[[], Any], type[Exception], str]] = [
    ("lr str", lambda: S.step_decay("0.1", 10),
     TypeError, r"Invalid lr: '0.1' \(expected a real number\)"),
    ("lr negative", lambda: S.exponential_decay(-1.0, 0.9),
     ValueError, r"Invalid lr: -1.0 \(expected a finite number >= 0\)"),
    ("lr nan", lambda: S.cosine_decay(float("nan"), 10), ValueError, r"Invalid lr: nan"),
    ("lr bool", lambda: S.constant(True), TypeError, r"Invalid lr: True"),
    ("step_size 0", lambda: S.step_decay(0.1, 0),
     ValueError, r"Invalid step_size: 0 \(expected an integer >= 1\)"),
    ("step_size float", lambda: S.step_decay(0.1, 2.0), TypeError, r"Invalid step_size: 2.0"),
    ("gamma negative", lambda: S.step_decay(0.1, 3, -0.5), ValueError, r"Invalid gamma: -0.5"),
    ("exp gamma 0", lambda: S.exponential_decay(0.1, 0.0),
     ValueError, r"Invalid gamma: 0.0 \(expected a finite number > 0\)"),
    ("milestones unsorted", lambda: S.multistep_decay(0.1, [5, 3]),
     ValueError, r"Invalid milestones: \[5, 3\] \(expected strictly increasing"),
    ("milestones not list", lambda: S.multistep_decay(0.1, 5), TypeError, r"Invalid milestones: 5"),
    ("milestone float", lambda: S.multistep_decay(0.1, [1, 2.5]),
     TypeError, r"Invalid milestones\[1\]: 2.5"),
    ("piecewise lengths", lambda: S.piecewise_constant([3], [1.0]),
     ValueError, r"Invalid values: 1 values for 1 boundaries"),
    ("piecewise boundary 0", lambda: S.piecewise_constant([0], [1.0, 2.0]),
     ValueError, r"Invalid boundaries\[0\]: 0"),
    ("decay_steps 0", lambda: S.inverse_time_decay(0.1, 0.5, 0),
     ValueError, r"Invalid decay_steps: 0"),
    ("staircase str", lambda: S.inverse_time_decay(0.1, 0.5, staircase="yes"),
     TypeError, r"Invalid staircase: 'yes' \(expected True or False\)"),
    ("total_steps 0", lambda: S.polynomial_decay(0.1, 0), ValueError, r"Invalid total_steps: 0"),
    ("power negative", lambda: S.polynomial_decay(0.1, 5, -1.0),
     ValueError, r"Invalid power: -1.0"),
    ("cosine decay_steps", lambda: S.cosine_decay(0.1, -3), ValueError, r"Invalid decay_steps: -3"),
    ("min_lr inf", lambda: S.cosine_decay(0.1, 3, float("inf")),
     ValueError, r"Invalid min_lr: inf"),
    ("warmup negative", lambda: S.linear_warmup(0.1, -1), ValueError, r"Invalid warmup_steps: -1"),
    ("warmup start_factor", lambda: S.linear_warmup(0.1, 5, 1.5),
     ValueError, r"Invalid start_factor: 1.5 \(expected 0 <= start_factor <= 1\)"),
    ("warmup schedule", lambda: S.linear_warmup("fast", 5),
     TypeError, r"Invalid schedule_or_lr: 'fast'"),
    ("cyclic mode", lambda: S.cyclic(0.1, 1.0, 5, mode="sine"),
     ValueError,
     r"Invalid mode: 'sine' \(expected one of 'triangular', 'triangular2', 'exp_range'\)"),
    ("cyclic step_size_up", lambda: S.cyclic(0.1, 1.0, 0), ValueError, r"Invalid step_size_up: 0"),
    ("cyclic step_size_down", lambda: S.cyclic(0.1, 1.0, 3, 0),
     ValueError, r"Invalid step_size_down: 0"),
    ("cyclic gamma", lambda: S.cyclic(0.1, 1.0, 3, mode="exp_range", gamma=1.5),
     ValueError, r"Invalid gamma: 1.5 \(expected 0 < gamma <= 1\)"),
    ("sgdr T_0", lambda: S.cosine_warm_restarts(0.1, 0), ValueError, r"Invalid T_0: 0"),
    ("sgdr T_mult", lambda: S.cosine_warm_restarts(0.1, 5, 0.5),
     ValueError, r"Invalid T_mult: 0.5 \(expected a finite number >= 1\)"),
    ("sgdr restart_decay", lambda: S.cosine_warm_restarts(0.1, 5, restart_decay=0.0),
     ValueError, r"Invalid restart_decay: 0.0 \(expected 0 < restart_decay <= 1\)"),
    ("one_cycle total", lambda: S.one_cycle(0.1, 1),
     ValueError, r"Invalid total_steps: 1 \(expected an integer >= 2\)"),
    ("one_cycle pct", lambda: S.one_cycle(0.1, 10, 1.2), ValueError, r"Invalid pct_start: 1.2"),
    ("one_cycle three pct", lambda: S.one_cycle(0.1, 10, 0.7, three_phase=True),
     ValueError, r"Invalid pct_start: 0.7 \(expected 0 <= pct_start <= 0.5\)"),
    ("one_cycle anneal", lambda: S.one_cycle(0.1, 10, anneal="exp"),
     ValueError, r"Invalid anneal: 'exp'"),
    ("one_cycle div", lambda: S.one_cycle(0.1, 10, div_factor=0),
     ValueError, r"Invalid div_factor: 0"),
    ("momentum negative", lambda: S.one_cycle_momentum(10, base_momentum=-0.1),
     ValueError, r"Invalid base_momentum: -0.1"),
    ("join empty", lambda: S.join([], []), ValueError, r"Invalid schedules: \[\]"),
    ("join boundaries count", lambda: S.join([0.1, 0.2], [3, 5]),
     ValueError, r"Invalid boundaries: \[3, 5\] \(2 boundaries for 2 schedules"),
    ("join child", lambda: S.join([0.1, "x"], [3]), TypeError, r"Invalid schedules\[1\]: 'x'"),
    ("join single schedule", lambda: S.join(S.constant(0.1), []),
     TypeError, r"Invalid schedules: Constant"),
    ("plateau mode", lambda: S.ReduceLROnPlateau(0.1, mode="up"),
     ValueError, r"Invalid mode: 'up' \(expected one of 'min', 'max'\)"),
    ("plateau factor", lambda: S.ReduceLROnPlateau(0.1, factor=1.0),
     ValueError, r"Invalid factor: 1.0 \(expected 0 <= factor < 1\)"),
    ("plateau patience", lambda: S.ReduceLROnPlateau(0.1, patience=-1),
     ValueError, r"Invalid patience: -1"),
    ("plateau threshold_mode", lambda: S.ReduceLROnPlateau(0.1, threshold_mode="pct"),
     ValueError, r"Invalid threshold_mode: 'pct'"),
    ("plateau cooldown", lambda: S.ReduceLROnPlateau(0.1, cooldown=1.5),
     TypeError, r"Invalid cooldown: 1.5"),
    ("plateau loss", lambda: S.ReduceLROnPlateau(0.1).update("low"),
     TypeError, r"Invalid loss: 'low' \(expected a real number\)"),
    ("bold increase", lambda: S.BoldDriver(0.1, increase=0.9),
     ValueError, r"Invalid increase: 0.9 \(expected a finite number >= 1\)"),
    ("bold decrease", lambda: S.BoldDriver(0.1, decrease=1.0),
     ValueError, r"Invalid decrease: 1.0 \(expected 0 < decrease < 1\)"),
    ("bold max_lr", lambda: S.BoldDriver(0.1, min_lr=1.0, max_lr=0.5),
     ValueError, r"Invalid max_lr: 0.5 \(expected max_lr >= min_lr"),
    ("bold optimizer", lambda: S.BoldDriver(0.1, optimizer=object()),
     TypeError, r"Invalid optimizer: object"),
    ("bold params", lambda: S.BoldDriver(0.1, params=np.zeros(3)),
     TypeError, r"Invalid params: ndarray"),
    ("bold attach nothing", lambda: S.BoldDriver(0.1).attach(),
     ValueError, r"attach\(\) needs an optimizer"),
    ("step negative", lambda: S.constant(0.1)(-1),
     ValueError, r"Invalid step: -1 \(expected an integer >= 0\)"),
    ("step float", lambda: S.constant(0.1)(1.5), TypeError, r"Invalid step: 1.5"),
    ("step bool", lambda: S.constant(0.1)(True), TypeError, r"Invalid step: True"),
    ("step float array", lambda: S.constant(0.1)(np.ones(3)),
     TypeError, r"Invalid step: an array of dtype float64"),
    ("step negative array", lambda: S.cosine_decay(0.1, 3)(np.array([1, -2])),
     ValueError, r"Invalid step: an array holding -2"),
    ("cycle_ends n", lambda: S.cyclic(0.1, 1.0, 3).cycle_ends(-1),
     ValueError, r"Invalid n_steps: -1"),
    ("join update step", lambda: S.join([0.1], []).update(1.0, step=-3),
     ValueError, r"Invalid step: -3"),
]


@pytest.mark.parametrize(("name", "call", "exc", "pattern"), BAD, ids=[b[0] for b in BAD])
def test_bad_arguments(name: str, call: Callable[[], Any], exc: type[Exception],
                       pattern: str) -> None:
    with pytest.raises(exc, match=pattern):
        call()


def test_bad_loss_leaves_state_unchanged() -> None:
    s = S.ReduceLROnPlateau(0.1, patience=0)
    s.update(1.0)
    before = s.state_dict()
    with pytest.raises(TypeError):
        s.update(None)
    assert s.state_dict() == before
    d = S.BoldDriver(0.1)
    with pytest.raises(TypeError):
        d.update([1.0, 2.0])
    assert d.reference_loss is None and d.n_accepted == 0


def test_schedules_are_frozen() -> None:
    s = S.step_decay(0.1, 3)
    with pytest.raises(AttributeError):
        s.lr = 0.2  # type: ignore[misc]


# -- the plot ------------------------------------------------------------------------------


def test_plot_schedules_writes_a_png(tmp_path: Any) -> None:
    pytest.importorskip("matplotlib")
    from gradstep._plot import plot_schedules

    few = {"cosine": S.cosine_decay(0.1, 100), "sgdr": S.cosine_warm_restarts(0.1, 20, 1.5),
           "plain": lambda t: 0.05}
    out = plot_schedules(few, 100, tmp_path / "few.png", title="schedules")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    out = plot_schedules(few, 100, tmp_path / "log.png", log_scale=True, layout="overlay")
    assert out.stat().st_size > 5_000
    many = {name: sched for name, sched, _ in CLOSED[10:16]}
    out = plot_schedules(many, 150, str(tmp_path / "many.png"), title="grid")
    assert out.stat().st_size > 10_000


def test_plot_schedules_bad_arguments(tmp_path: Any) -> None:
    from gradstep._plot import plot_schedules

    with pytest.raises(TypeError, match="expected a dict"):
        plot_schedules([S.constant(0.1)], 10, tmp_path / "x.png")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="Invalid n_steps: 0"):
        plot_schedules({"c": S.constant(0.1)}, 0, tmp_path / "x.png")
    with pytest.raises(ValueError, match="Invalid layout"):
        plot_schedules({"c": S.constant(0.1)}, 5, tmp_path / "x.png", layout="stack")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        plot_schedules({"c": S.constant(0.1)}, 5, tmp_path / "nowhere" / "x.png")


def test_plot_schedules_names_the_extra_when_matplotlib_is_missing(
        tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from gradstep._plot import plot_schedules

    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(ImportError, match=re.escape("pip install 'gradstep[plot]'")):
        plot_schedules({"c": S.constant(0.1)}, 5, tmp_path / "x.png")
