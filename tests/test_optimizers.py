"""Behaviour of the optimizers beyond one tensor: multi-tensor groups, skipped
gradients, hyperparameters as schedules, threads and SIMD levels, state dicts."""

from __future__ import annotations

import numpy as np
import pytest

import gradstep as gs
from conftest import OPTIMIZER_CASES, case_id, gradient_sequence
from gradstep import _core


def run(name, hyper, params, grads_per_step):
    opt = getattr(gs, name)(params, **hyper)
    for grads in grads_per_step:
        opt.step(grads)
    return opt


@pytest.mark.parametrize("case", OPTIMIZER_CASES, ids=case_id)
def test_one_group_of_many_tensors_equals_one_optimizer_per_tensor(case, rng):
    name, hyper = case
    shapes = [(1,), (7,), (33,), (3, 5), (64, 65), (2, 3, 4)]
    params = [rng.standard_normal(s) for s in shapes]
    grads = [gradient_sequence(rng, s, 12, np.float64) for s in shapes]
    separate = [p.copy() for p in params]
    run(name, hyper, params, [[g[t] for g in grads] for t in range(12)])
    for p, g in zip(separate, grads):
        run(name, hyper, [p], [[g[t]] for t in range(12)])
    for a, b in zip(params, separate):
        np.testing.assert_array_equal(a, b)


def test_mixed_dtypes_in_one_group(rng):
    a32 = rng.standard_normal(10).astype(np.float32)
    b64 = rng.standard_normal(6)
    c32 = rng.standard_normal((2, 3)).astype(np.float32)
    ref = [x.copy() for x in (a32, b64, c32)]
    opt = gs.Adam([a32, b64, c32], lr=0.01)
    single = [gs.Adam([x], lr=0.01) for x in ref]
    for _ in range(5):
        grads = [rng.standard_normal(x.shape).astype(x.dtype) for x in (a32, b64, c32)]
        opt.step(grads)
        for o, g in zip(single, grads):
            o.step([g])
    for x, y in zip((a32, b64, c32), ref):
        np.testing.assert_array_equal(x, y)


def test_none_gradient_skips_parameter_and_its_state(rng):
    a, b = rng.standard_normal(4), rng.standard_normal(3)
    b0 = b.copy()
    opt = gs.Adam([a, b], lr=0.1)
    opt.step([np.ones(4), None])
    np.testing.assert_array_equal(b, b0)
    assert opt.state[0]["step"] == 1
    assert 1 not in opt.state or opt.state[1]["step"] == 0
    opt.step([np.ones(4), np.ones(3)])
    # b's first real step is its step 1: same as a fresh optimizer's first step.
    fresh = b0.copy()
    gs.Adam([fresh], lr=0.1).step([np.ones(3)])
    np.testing.assert_array_equal(b, fresh)
    assert opt.state[0]["step"] == 2 and opt.state[1]["step"] == 1


def test_hyperparameter_schedules_are_evaluated_at_the_step_count(rng):
    p = rng.standard_normal(5)
    q = p.copy()
    grads = gradient_sequence(rng, (5,), 20, np.float64)
    lrs = [0.1 * 0.9**t for t in range(20)]
    moms = [0.5 + 0.02 * t for t in range(20)]
    opt = gs.SGD([p], lr=lambda t: 0.1 * 0.9**t, momentum=lambda t: 0.5 + 0.02 * t)
    manual = gs.SGD([q], lr=lrs[0], momentum=moms[0])
    for t, g in enumerate(grads):
        manual.param_groups[0]["lr"] = lrs[t]
        manual.param_groups[0]["momentum"] = moms[t]
        opt.step([g])
        manual.step([g])
    np.testing.assert_array_equal(p, q)


def test_group_edits_between_steps_take_effect(rng):
    """The per-group config is cached between steps; every kind of edit must still be
    seen: a new value, a list mutated in place, a key removed (default) or added back."""
    g = [rng.standard_normal(4) for _ in range(5)]
    p = np.zeros(4)
    opt = gs.Adam([p], lr=0.1, betas=[0.9, 0.999])
    ref = np.zeros(4)
    ref_opt = gs.Adam([ref], lr=0.1, betas=(0.9, 0.999))
    opt.step([g[0]])
    ref_opt.step([g[0]])
    opt.param_groups[0]["lr"] = 0.05                  # a new value
    ref_opt.param_groups[0]["lr"] = 0.05
    opt.step([g[1]])
    ref_opt.step([g[1]])
    opt.param_groups[0]["betas"][0] = 0.8             # the same list, mutated
    ref_opt.param_groups[0]["betas"] = (0.8, 0.999)
    opt.step([g[2]])
    ref_opt.step([g[2]])
    np.testing.assert_array_equal(p, ref)
    opt.param_groups[0]["betas"][1] = 1.5             # mutated to an invalid value
    before = p.copy()
    with pytest.raises(ValueError, match="beta"):
        opt.step([g[3]])
    np.testing.assert_array_equal(p, before)
    opt.param_groups[0]["betas"][1] = 0.999
    opt.param_groups[0]["weight_decay"] = 0.5          # a changed key
    ref_opt.param_groups[0]["weight_decay"] = 0.5
    opt.step([g[3]])
    ref_opt.step([g[3]])
    np.testing.assert_array_equal(p, ref)


def test_beta1_schedule(rng):
    p = rng.standard_normal(5)
    q = p.copy()
    opt = gs.Adam([p], lr=0.01, betas=(lambda t: 0.95 - 0.01 * t, 0.999))
    manual = gs.Adam([q], lr=0.01)
    for t in range(10):
        g = rng.standard_normal(5)
        manual.param_groups[0]["betas"] = (0.95 - 0.01 * t, 0.999)
        opt.step([g])
        manual.step([g])
    np.testing.assert_array_equal(p, q)


def test_strided_view_is_refused_and_base_array_updated_in_place(rng):
    base = rng.standard_normal((4, 6))
    with pytest.raises(ValueError, match="not C-contiguous"):
        gs.SGD([base[:, ::2]], lr=0.1)
    row = base[1]  # a contiguous view: updated in place, visible through the base
    before = base.copy()
    gs.SGD([row], lr=0.5).step([np.ones(6)])
    np.testing.assert_array_equal(base[1], before[1] - 0.5)
    np.testing.assert_array_equal(base[0], before[0])


@pytest.mark.parametrize("name", ["Adam", "SGD", "RMSprop", "NAdam", "Rprop"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_results_do_not_depend_on_thread_count(name, dtype, rng):
    hyper = {"momentum": 0.9} if name == "SGD" else {}
    shapes = [(300_001,), (17,), (70_000,), (5, 7)]
    params = [rng.standard_normal(s).astype(dtype) for s in shapes]
    grads = [[rng.standard_normal(s).astype(dtype) for s in shapes] for _ in range(3)]
    results = []
    old = gs.get_num_threads()
    try:
        for threads in (1, 2, 3):
            gs.set_num_threads(threads)
            ps = [p.copy() for p in params]
            run(name, hyper, ps, grads)
            results.append(ps)
    finally:
        gs.set_num_threads(old)
    for other in results[1:]:
        for a, b in zip(results[0], other):
            np.testing.assert_array_equal(a, b)


def test_set_num_threads_validates():
    with pytest.raises(ValueError, match="num_threads must be >= 1, got 0"):
        gs.set_num_threads(0)
    old = gs.get_num_threads()
    gs.set_num_threads(3)
    assert gs.get_num_threads() == 3
    gs.set_num_threads(old)


def supported_levels():
    built = _core.simd_levels_built()
    best = built.index(_core.simd_level_supported())
    return built[: best + 1]


@pytest.mark.parametrize("case", OPTIMIZER_CASES, ids=case_id)
def test_every_simd_level_gives_identical_bits(case, rng):
    name, hyper = case
    levels = supported_levels()
    shapes = [(1023,), (64, 65), (3,)]
    start = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    grads = [[rng.standard_normal(s).astype(np.float32) for s in shapes] for _ in range(4)]
    start64 = [p.astype(np.float64) for p in start]
    grads64 = [[g.astype(np.float64) for g in gs_] for gs_ in grads]
    out = {}
    active = _core.simd_level()
    try:
        for level in levels:
            _core.set_simd_level(level)
            p32 = [p.copy() for p in start]
            p64 = [p.copy() for p in start64]
            run(name, hyper, p32, grads)
            run(name, hyper, p64, grads64)
            out[level] = p32 + p64
    finally:
        _core.set_simd_level(active)
    for level in levels[1:]:
        for a, b in zip(out[levels[0]], out[level]):
            np.testing.assert_array_equal(a, b, err_msg=f"{level} differs from {levels[0]}")


def test_simd_level_controls():
    info = gs.build_info()
    assert info["simd_levels_built"][0] == "baseline"
    assert info["simd_level"] in info["simd_levels_built"]
    with pytest.raises(ValueError, match="unknown SIMD level 'avx9000'"):
        _core.set_simd_level("avx9000")


def test_state_dict_round_trip_continues_the_same_trajectory(rng):
    shapes = [(3, 4), (5,)]
    params = [rng.standard_normal(s) for s in shapes]
    twin = [p.copy() for p in params]
    grads = [[rng.standard_normal(s) for s in shapes] for _ in range(10)]
    opt = gs.NAdam(params, lr=0.01, weight_decay=0.1)
    for g in grads[:5]:
        opt.step(g)
    saved = opt.state_dict()
    for g in grads[5:]:
        opt.step(g)
    other = gs.NAdam(twin, lr=0.01, weight_decay=0.1)
    for g in grads[:5]:
        other.step(g)
    replay = gs.NAdam([p.copy() for p in twin], lr=0.01, weight_decay=0.1)
    for p, q in zip(replay.param_groups[0]["params"], twin):
        np.copyto(p, q)
    replay.load_state_dict(saved)
    for g in grads[5:]:
        replay.step(g)
    for a, b in zip(params, replay.param_groups[0]["params"]):
        np.testing.assert_array_equal(a, b)
    mu = replay.state_dict()["state"][0]["mu_product"]
    assert mu == opt.state_dict()["state"][0]["mu_product"]


def test_state_dict_is_a_snapshot(rng):
    p = rng.standard_normal(4)
    opt = gs.Adam([p])
    opt.step([np.ones(4)])
    sd = opt.state_dict()
    m = sd["state"][0]["exp_avg"].copy()
    opt.step([np.ones(4)])
    np.testing.assert_array_equal(sd["state"][0]["exp_avg"], m)
    assert sd["state"][0]["step"] == 1


def test_add_param_group_later(rng):
    a, b = rng.standard_normal(3), rng.standard_normal(2)
    opt = gs.SGD([a], lr=0.1, momentum=0.9)
    opt.step([np.ones(3)])
    opt.add_param_group({"params": [b], "lr": 0.5})
    b0 = b.copy()
    opt.step([np.ones(3), np.ones(2)])
    np.testing.assert_allclose(b, b0 - 0.5)
    assert opt.state[1]["step"] == 1


def test_repr_lists_groups():
    opt = gs.Adam([np.zeros(2)], lr=0.5)
    text = repr(opt)
    assert text.startswith("Adam (") and "lr: 0.5" in text


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name,key,kw", [
    ("Adam", "exp_avg", {"betas": (0.0, 0.999)}), ("AdamW", "exp_avg", {"betas": (0.0, 0.999)}),
    ("Adamax", "exp_avg", {"betas": (0.0, 0.999)}), ("NAdam", "exp_avg", {"betas": (0.0, 0.999)}),
    ("RAdam", "exp_avg", {"betas": (0.0, 0.999)}),
    ("RMSprop", "grad_avg", {"alpha": 0.0, "centered": True}),
])
def test_average_with_zero_decay_is_the_gradient_exactly(name, key, kw, dtype):
    """A moving average with weight 1 on the new value (beta1 = 0, alpha = 0) is the
    gradient itself, bit for bit, even after a gradient 1e8 times larger: formed as
    m + (g - m), a small g would cancel against the large m (float32: 1000 + (1e-5 - 1000)
    is 0)."""
    p = np.ones(5, dtype)
    opt = getattr(gs, name)([p], lr=1e-3, **kw)
    for scale in (1e3, 1e-5, 1e4, 3e-6):
        g = (scale * np.linspace(-1.0, 1.3, 5)).astype(dtype)
        opt.step([g])
        np.testing.assert_array_equal(opt.state[0][key], g)
