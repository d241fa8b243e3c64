"""Bad input: a clear TypeError/ValueError naming the argument, raised before any buffer
is touched. Every case checks that params and optimizer state are exactly unchanged."""

from __future__ import annotations

import copy
from typing import Any, Callable

import numpy as np
import pytest

import gradstep as gs


def snapshot(opt: gs.Optimizer, params: list[np.ndarray]) -> tuple[Any, ...]:
    return (
        [p.copy() for p in params],
        copy.deepcopy(opt.state_dict()),
        [dict(g, params=None) for g in opt.param_groups],
    )


def assert_same(before: tuple[Any, ...], after: tuple[Any, ...]) -> None:
    for a, b in zip(before[0], after[0]):
        np.testing.assert_array_equal(a, b)
    sa, sb = before[1], after[1]
    assert sa["step_count"] == sb["step_count"]
    assert sa["state"].keys() == sb["state"].keys()
    for i in sa["state"]:
        for k, x in sa["state"][i].items():
            np.testing.assert_array_equal(x, sb["state"][i][k])
    assert before[2] == after[2]


def fresh(kind: str = "Adam", **hyper: Any) -> tuple[gs.Optimizer, list[np.ndarray]]:
    """An optimizer that has taken two steps, so it has state worth protecting."""
    rng = np.random.default_rng(1)
    params = [rng.standard_normal((3, 4)).astype(np.float32), rng.standard_normal(5).astype(np.float32)]
    opt = getattr(gs, kind)(params, **hyper)
    for _ in range(2):
        opt.step([rng.standard_normal(p.shape).astype(np.float32) for p in params])
    return opt, params


def good_grads(params: list[np.ndarray]) -> list[np.ndarray]:
    return [np.ones_like(p) for p in params]


Step = Callable[[gs.Optimizer, list[np.ndarray]], None]

# (id, call, exception type, message pattern)
STEP_ERRORS: list[tuple[str, Step, type[Exception], str]] = [
    ("too few grads", lambda o, ps: o.step(good_grads(ps)[:1]), ValueError, r"got 1 grads for 2 params"),
    ("too many grads", lambda o, ps: o.step([*good_grads(ps), None]), ValueError, r"got 3 grads for 2 params"),
    ("grads not a list", lambda o, ps: o.step(np.ones(3)), TypeError, r"grads must be a list"),
    ("grads a string", lambda o, ps: o.step("ab"), TypeError, r"grads must be a list"),
    ("wrong shape", lambda o, ps: o.step([np.ones((4, 3), np.float32), np.ones(5, np.float32)]),
     ValueError, r"grads\[0\] has shape \(4, 3\), expected \(3, 4\)"),
    ("wrong size", lambda o, ps: o.step([np.ones((3, 4), np.float32), np.ones(6, np.float32)]),
     ValueError, r"grads\[1\] has shape \(6,\), expected \(5,\)"),
    ("wrong dtype", lambda o, ps: o.step([np.ones((3, 4)), np.ones(5, np.float32)]),
     TypeError, r"grads\[0\] has dtype float64, expected float32"),
    ("integer grad", lambda o, ps: o.step([np.ones((3, 4), np.int32), np.ones(5, np.float32)]),
     TypeError, r"grads\[0\] has dtype int32"),
    ("list as grad", lambda o, ps: o.step([np.ones((3, 4), np.float32), [1.0] * 5]),
     TypeError, r"grads\[1\] must be a numpy.ndarray of float32, got list"),
    ("strided grad", lambda o, ps: o.step([np.ones((3, 8), np.float32)[:, ::2], np.ones(5, np.float32)]),
     ValueError, r"grads\[0\] is not C-contiguous"),
    ("byte-swapped grad", lambda o, ps: o.step([np.ones((3, 4), ">f4"), np.ones(5, np.float32)]),
     TypeError, r"grads\[0\] has dtype >f4"),
    ("grad aliases param", lambda o, ps: o.step([ps[0], np.ones(5, np.float32)]),
     ValueError, r"grads\[0\] shares memory with params\[0\]"),
]


@pytest.mark.parametrize("call,exc,pattern", [c[1:] for c in STEP_ERRORS], ids=[c[0] for c in STEP_ERRORS])
def test_step_errors_leave_everything_unchanged(call: Step, exc: type[Exception], pattern: str) -> None:
    opt, params = fresh("Adam", amsgrad=True)
    before = snapshot(opt, params)
    with pytest.raises(exc, match=pattern):
        call(opt, params)
    assert_same(before, snapshot(opt, params))
    opt.step(good_grads(params))  # and the optimizer still works
    assert opt.step_count == 3


def test_error_in_second_group_leaves_first_group_unchanged() -> None:
    a, b = np.zeros(3), np.zeros(4)
    opt = gs.SGD([{"params": [a]}, {"params": [b], "lr": 0.5}], lr=0.1, momentum=0.9)
    opt.step([np.ones(3), np.ones(4)])
    before = snapshot(opt, [a, b])
    with pytest.raises(ValueError, match=r"grads\[1\] has shape \(5,\), expected \(4,\)"):
        opt.step([np.ones(3), np.ones(5)])
    assert_same(before, snapshot(opt, [a, b]))


def test_first_step_error_allocates_no_state() -> None:
    a = np.zeros(3, np.float32)
    opt = gs.Adam([a])
    with pytest.raises(TypeError):
        opt.step([np.ones(3)])
    assert opt.state == {}
    assert opt.step_count == 0


def test_bad_hyperparameter_edit_is_caught_at_step() -> None:
    opt, params = fresh("Adam")
    before = snapshot(opt, params)
    opt.param_groups[0]["betas"] = (0.9, 1.0)
    with pytest.raises(ValueError, match=r"Invalid beta2 \(betas\[1\]\): 1.0"):
        opt.step(good_grads(params))
    opt.param_groups[0]["betas"] = (0.9, 0.999)
    assert_same(before, snapshot(opt, params))


def read_only(a: np.ndarray) -> np.ndarray:
    a.flags.writeable = False
    return a


def _ctor(kind: str, **kw: Any) -> Callable[[], Any]:
    return lambda: getattr(gs, kind)([np.zeros(3)], **kw)


CTOR_ERRORS: list[tuple[str, Callable[[], Any], type[Exception], str]] = [
    ("negative lr", _ctor("Adam", lr=-1e-3), ValueError, r"Invalid lr: -0.001"),
    ("nan lr", _ctor("SGD", lr=float("nan")), ValueError, r"Invalid lr: nan"),
    ("string lr", _ctor("SGD", lr="0.1"), TypeError, r"Invalid lr: '0.1'"),
    ("beta1 = 1", _ctor("Adam", betas=(1.0, 0.999)), ValueError, r"Invalid beta1 \(betas\[0\]\): 1.0"),
    ("beta2 < 0", _ctor("NAdam", betas=(0.9, -0.1)), ValueError, r"Invalid beta2 \(betas\[1\]\): -0.1"),
    ("betas not pair", _ctor("Adam", betas=0.9), TypeError, r"Invalid betas: 0.9"),
    ("negative eps", _ctor("Adam", eps=-1e-8), ValueError, r"Invalid eps"),
    ("negative weight decay", _ctor("AdamW", weight_decay=-0.1), ValueError, r"Invalid weight_decay: -0.1"),
    ("nesterov without momentum", _ctor("SGD", nesterov=True), ValueError, r"nesterov=True with momentum=0"),
    ("nesterov with dampening", _ctor("SGD", nesterov=True, momentum=0.9, dampening=0.1), ValueError,
     r"dampening = 0"),
    ("negative momentum", _ctor("SGD", momentum=-0.5), ValueError, r"Invalid momentum: -0.5"),
    ("rprop etas inverted", _ctor("Rprop", etas=(1.2, 0.5)), ValueError, r"Invalid etas: \(1.2, 0.5\)"),
    ("rprop etas both above 1", _ctor("Rprop", etas=(1.1, 1.2)), ValueError, r"Invalid etas"),
    ("rprop step sizes inverted", _ctor("Rprop", step_sizes=(1.0, 0.1)), ValueError, r"Invalid step_sizes"),
    ("rho > 1", _ctor("Adadelta", rho=1.5), ValueError, r"Invalid rho: 1.5"),
    ("alpha < 0", _ctor("RMSprop", alpha=-0.1), ValueError, r"Invalid alpha: -0.1"),
    ("amsgrad not bool", _ctor("Adam", amsgrad="yes"), TypeError, r"Invalid amsgrad: 'yes'"),
    ("negative lr_decay", _ctor("Adagrad", lr_decay=-1.0), ValueError, r"Invalid lr_decay"),
    ("negative l1", _ctor("SGD", l1=-0.1), ValueError, r"Invalid l1: -0.1"),
    ("unknown group key", lambda: gs.Adam([{"params": [np.zeros(3)], "lrr": 0.1}]), ValueError,
     r"unknown hyperparameters \['lrr'\]"),
    ("schedule on eps", _ctor("Adam", eps=lambda t: 1e-8), TypeError, r"eps cannot be a schedule"),
    ("empty params", lambda: gs.Adam([]), ValueError, r"params is empty"),
    ("single array", lambda: gs.Adam(np.zeros(3)), TypeError, r"wrap it in a list"),
    ("list param", lambda: gs.Adam([[0.0, 1.0]]), TypeError, r"must be a numpy.ndarray of float32 or float64, got list"),
    ("int param", lambda: gs.Adam([np.zeros(3, np.int64)]), TypeError, r"has dtype int64"),
    ("float16 param", lambda: gs.SGD([np.zeros(3, np.float16)]), TypeError, r"has dtype float16"),
    ("read-only param", lambda: gs.SGD([read_only(np.zeros(3))]), ValueError, r"read-only"),
    ("strided param", lambda: gs.SGD([np.zeros((4, 4))[:, 1]]), ValueError, r"not C-contiguous"),
    ("transposed param", lambda: gs.SGD([np.zeros((4, 3)).T]), ValueError, r"not C-contiguous"),
    ("same array twice", lambda: (lambda a: gs.SGD([a, a]))(np.zeros(3)), ValueError, r"share memory"),
    ("overlapping views", lambda: (lambda a: gs.SGD([a[:3], a[2:]]))(np.zeros(5)), ValueError, r"share memory"),
    ("same array in two groups", lambda: (lambda a: gs.SGD([{"params": [a]}, {"params": [a]}]))(np.zeros(3)),
     ValueError, r"share memory"),
]


@pytest.mark.parametrize("make,exc,pattern", [c[1:] for c in CTOR_ERRORS], ids=[c[0] for c in CTOR_ERRORS])
def test_constructor_errors(make: Callable[[], Any], exc: type[Exception], pattern: str) -> None:
    with pytest.raises(exc, match=pattern):
        make()


def test_schedule_with_out_of_range_value_is_refused_before_writing() -> None:
    p = np.ones(3)
    opt = gs.SGD([p], lr=lambda t: 0.1 if t < 2 else -0.1)
    opt.step([np.ones(3)])
    opt.step([np.ones(3)])
    before = p.copy()
    with pytest.raises(ValueError, match=r"Invalid lr: -0.1"):
        opt.step([np.ones(3)])
    np.testing.assert_array_equal(p, before)
    assert opt.step_count == 2


def test_add_param_group_errors_leave_groups_unchanged() -> None:
    a = np.zeros(3)
    opt = gs.SGD([a], lr=0.1)
    with pytest.raises(ValueError, match=r"share memory"):
        opt.add_param_group({"params": [a]})
    with pytest.raises(ValueError, match=r"Invalid lr"):
        opt.add_param_group({"params": [np.zeros(2)], "lr": -1.0})
    assert len(opt.param_groups) == 1


def test_replacing_a_param_with_a_bad_array_is_caught_at_step() -> None:
    a, b = np.zeros(3), np.zeros(4)
    opt = gs.SGD([a, b], lr=0.1)
    opt.param_groups[0]["params"][1] = np.zeros((4, 4))[:, 0]
    with pytest.raises(ValueError, match=r"param_groups\[0\]\['params'\]\[1\] is not C-contiguous"):
        opt.step([np.ones(3), np.ones(4)])
    np.testing.assert_array_equal(a, 0.0)


STATE_DICT_ERRORS: list[tuple[str, Callable[[dict[str, Any]], Any], type[Exception], str]] = [
    ("not a dict", lambda sd: [], TypeError, r"state_dict must be a dict"),
    ("no state", lambda sd: {"param_groups": sd["param_groups"]}, ValueError, r"no 'state'"),
    ("group count", lambda sd: {**sd, "param_groups": sd["param_groups"] * 2}, ValueError, r"2 param groups"),
    ("param count", lambda sd: {**sd, "param_groups": [{**sd["param_groups"][0], "params": [0]}]},
     ValueError, r"has 1 params"),
    ("wrong shape", lambda sd: {**sd, "state": {0: {**sd["state"][0], "exp_avg": np.zeros(7)}}},
     ValueError, r"state\[0\]\['exp_avg'\] has shape \(7,\)"),
    ("foreign key", lambda sd: {**sd, "state": {0: {**sd["state"][0], "momentum_buffer": np.zeros((3, 4))}}},
     ValueError, r"entries \['momentum_buffer'\]"),
    ("index out of range", lambda sd: {**sd, "state": {5: sd["state"][0]}}, ValueError, r"index 5 is out of range"),
    ("bad hyper", lambda sd: {**sd, "param_groups": [{**sd["param_groups"][0], "lr": -1}]},
     ValueError, r"Invalid lr"),
    ("negative step", lambda sd: {**sd, "state": {0: {**sd["state"][0], "step": -3}}}, ValueError, r"step"),
]


@pytest.mark.parametrize("mutate,exc,pattern", [c[1:] for c in STATE_DICT_ERRORS],
                         ids=[c[0] for c in STATE_DICT_ERRORS])
def test_load_state_dict_errors_leave_everything_unchanged(mutate, exc, pattern) -> None:
    opt, params = fresh("Adam")
    before = snapshot(opt, params)
    with pytest.raises(exc, match=pattern):
        opt.load_state_dict(mutate(opt.state_dict()))
    assert_same(before, snapshot(opt, params))
