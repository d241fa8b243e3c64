"""EMA (values and parameters), ewa, and snapshot ensembles."""

from __future__ import annotations

import pickle
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import gradstep as gs
from gradstep import schedules as S
from gradstep._averaging import EMA, SnapshotEnsemble, ewa

pytestmark = pytest.mark.filterwarnings("error")


def weighted_mean(xs: list[Any], decay: float) -> Any:
    """The bias-corrected EMA as an explicit weighted mean (weights sum to one)."""
    n = len(xs)
    w = np.array([(1 - decay) * decay ** (n - 1 - k) for k in range(n)])
    w /= 1 - decay**n
    return sum(wk * np.asarray(x, dtype=np.float64) for wk, x in zip(w, xs))


# -- values ---------------------------------------------------------------------------


def test_ema_of_values_is_the_bias_corrected_weighted_mean() -> None:
    rng = np.random.default_rng(1)
    xs = list(rng.standard_normal(25))
    ema = EMA(0.8)
    for k, x in enumerate(xs):
        out = ema.update(x)
        assert isinstance(out, float)
        assert out == pytest.approx(weighted_mean(xs[: k + 1], 0.8), rel=1e-12)
    assert ema.count == 25 and ema.value == out


def test_ema_of_a_constant_is_the_constant_from_the_first_update() -> None:
    ema = EMA(0.999)
    assert [ema.update(3.0) for _ in range(5)] == pytest.approx([3.0] * 5, rel=1e-12)


def test_ema_without_bias_correction_starts_at_the_first_value() -> None:
    ema = EMA(0.5, bias_correction=False)
    assert [ema.update(x) for x in (4.0, 0.0, 0.0)] == [4.0, 2.0, 1.0]


def test_ema_of_arrays_and_a_decay_schedule() -> None:
    ema = EMA(S.piecewise_constant([2], [0.0, 0.5]))  # decay 0 twice, then 0.5
    ema.update(np.array([1.0, 2.0]))
    ema.update(np.array([3.0, 4.0]))
    out = ema.update(np.array([5.0, 6.0]))
    # prod of decays is 0: no correction; m = 0.5 * [3, 4] + 0.5 * [5, 6]
    np.testing.assert_array_equal(out, [4.0, 5.0])
    with pytest.raises(ValueError, match=r"Invalid value: shape \(3,\)"):
        ema.update(np.zeros(3))


def test_polyak_is_the_running_mean() -> None:
    xs = np.random.default_rng(2).standard_normal(40)
    ema = EMA.polyak()
    for k, x in enumerate(xs):
        assert ema.update(x) == pytest.approx(xs[: k + 1].mean(), rel=1e-12, abs=1e-15)


def test_ewa_equals_ema_updates() -> None:
    xs = np.random.default_rng(3).standard_normal(1000)
    for decay in (0.0, 0.3, 0.9, 0.999):
        for bias in (True, False):
            ema = EMA(decay, bias_correction=bias)
            ref = np.array([ema.update(x) for x in xs])
            np.testing.assert_allclose(ewa(xs, decay, bias_correction=bias), ref, rtol=1e-11,
                                       atol=1e-14)


def test_ewa_long_series_and_axis() -> None:
    n = 200_000
    xs = np.ones(n)
    out = ewa(xs, 0.9999)
    np.testing.assert_allclose(out, 1.0, rtol=1e-10)
    table = np.random.default_rng(4).standard_normal((50, 3))
    by_col = ewa(table, 0.7)
    by_row = ewa(table.T, 0.7, axis=1)
    np.testing.assert_allclose(by_col, by_row.T, rtol=1e-14)
    for j in range(3):
        np.testing.assert_allclose(by_col[:, j], ewa(table[:, j], 0.7), rtol=1e-14)
    assert ewa([], 0.5).shape == (0,)


@settings(max_examples=40, deadline=None)
@given(xs=st.lists(st.floats(-1e3, 1e3), min_size=1, max_size=60),
       decay=st.floats(0.0, 0.999))
def test_ewa_stays_within_the_range_of_the_data(xs: list[float], decay: float) -> None:
    out = ewa(xs, decay)
    lo, hi = min(xs), max(xs)
    tol = 1e-9 * max(1.0, abs(lo), abs(hi))
    assert np.all(out >= lo - tol) and np.all(out <= hi + tol)
    assert out[0] == pytest.approx(xs[0], rel=1e-12, abs=1e-12)


# -- parameters -------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_ema_of_parameters_tracks_the_weighted_mean(dtype: Any) -> None:
    rng = np.random.default_rng(5)
    w = np.zeros((3, 4), dtype)
    b = np.zeros(4, dtype)
    opt = gs.SGD([w, b], lr=0.1, momentum=0.5)
    ema = EMA(0.9, params=[w, b])
    history: list[list[np.ndarray]] = []
    for _ in range(12):
        opt.step([rng.standard_normal(w.shape).astype(dtype),
                  rng.standard_normal(b.shape).astype(dtype)])
        ema.update()
        history.append([w.copy(), b.copy()])
    avg = ema.averages()
    tol = 1e-5 if dtype == np.float32 else 1e-12
    for k, a in enumerate(avg):
        assert a.dtype == dtype
        np.testing.assert_allclose(a, weighted_mean([h[k] for h in history], 0.9), rtol=tol,
                                   atol=tol)


def test_swap_in_and_out_in_place() -> None:
    w = np.array([1.0, 2.0])
    ema = EMA(0.5, params=[w])
    ema.update()
    w += 2.0
    ema.update()
    training = w.copy()
    expected = ema.averages()[0]
    address = w.__array_interface__["data"][0]
    ema.swap_in()
    assert ema.swapped_in
    np.testing.assert_array_equal(w, expected)
    with pytest.raises(RuntimeError, match="swap_out"):
        ema.update()
    with pytest.raises(RuntimeError, match="already swapped in"):
        ema.swap_in()
    ema.swap_out()
    np.testing.assert_array_equal(w, training)
    assert w.__array_interface__["data"][0] == address
    with pytest.raises(RuntimeError, match="nothing to restore"):
        ema.swap_out()


def test_average_parameters_restores_on_error() -> None:
    w = np.ones(3)
    ema = EMA(0.9, params=[w])
    ema.update()
    w *= 5.0
    with pytest.raises(KeyError), ema.average_parameters():
        np.testing.assert_allclose(w, 1.0)
        raise KeyError("boom")
    np.testing.assert_array_equal(w, 5.0)
    assert not ema.swapped_in


def test_copy_to_and_state_dict() -> None:
    w = np.arange(4.0)
    ema = EMA(0.7, params=[w])
    for _ in range(3):
        ema.update()
        w += 1.0
    target = np.zeros(4)
    ema.copy_to([target])
    np.testing.assert_array_equal(target, ema.averages()[0])
    other = EMA(0.7, params=[np.zeros(4)])
    other.load_state_dict(ema.state_dict())
    np.testing.assert_array_equal(other.averages()[0], ema.averages()[0])
    scalar = EMA(0.5)
    scalar.update(2.0)
    back = EMA(0.5)
    back.load_state_dict(scalar.state_dict())
    assert back.update(4.0) == scalar.update(4.0)
    with pytest.raises(ValueError, match="does not match"):
        other.load_state_dict({"count": 1, "decay_product": 0.5, "average": [np.zeros(3)]})


def test_ema_pickles() -> None:
    ema = EMA(0.9)
    ema.update(1.0)
    back = pickle.loads(pickle.dumps(ema))
    assert back.update(2.0) == ema.update(2.0)
    polyak = pickle.loads(pickle.dumps(EMA.polyak()))
    polyak.update(1.0)
    assert polyak.update(3.0) == 2.0


BAD_EMA: list[tuple[str, Callable[[], Any], type[Exception], str]] = [
    ("decay 1", lambda: EMA(1.0), ValueError, r"Invalid decay: 1.0 \(expected 0 <= decay < 1\)"),
    ("decay str", lambda: EMA("0.9"),
     TypeError, r"Invalid decay: '0.9' \(expected a real number\)"),
    ("decay schedule value", lambda: EMA(S.constant(1.5)).update(1.0),
     ValueError, r"Invalid decay\(0\): 1.5"),
    ("bias flag", lambda: EMA(0.9, bias_correction=1), TypeError, r"Invalid bias_correction: 1"),
    ("params array", lambda: EMA(0.9, params=np.zeros(3)), TypeError, r"Invalid params: ndarray"),
    ("params empty", lambda: EMA(0.9, params=[]), ValueError, r"Invalid params: an empty list"),
    ("params int", lambda: EMA(0.9, params=[np.zeros(3, int)]),
     TypeError, r"Invalid params\[0\]: dtype int64"),
    ("params list", lambda: EMA(0.9, params=[[1.0]]), TypeError, r"Invalid params\[0\]: list"),
    ("values update none", lambda: EMA(0.9).update(), TypeError, r"needs a value"),
    ("params update value", lambda: EMA(0.9, params=[np.zeros(2)]).update(1.0),
     TypeError, r"takes no value"),
    ("value before update", lambda: EMA(0.9).value, ValueError, r"no value yet"),
    ("averages before update", lambda: EMA(0.9, params=[np.zeros(2)]).averages(),
     ValueError, r"no average yet"),
    ("averages of values", lambda: EMA(0.9).averages(),
     TypeError, r"needs an EMA built with params"),
    ("ewa decay", lambda: ewa([1.0], -0.1), ValueError, r"Invalid decay: -0.1"),
]


@pytest.mark.parametrize(("name", "call", "exc", "pattern"), BAD_EMA, ids=[b[0] for b in BAD_EMA])
def test_ema_bad_arguments(name: str, call: Callable[[], Any], exc: type[Exception],
                           pattern: str) -> None:
    with pytest.raises(exc, match=pattern):
        call()


def test_ema_bad_update_leaves_the_average_unchanged() -> None:
    ema = EMA(S.join([0.5, 2.0], [1]))
    ema.update(1.0)
    before = ema.state_dict()
    with pytest.raises(ValueError):
        ema.update(2.0)  # decay(1) = 2.0 is invalid
    assert ema.state_dict()["count"] == before["count"] and ema.value == 1.0


# -- snapshot ensembles ---------------------------------------------------------------


def _train(schedule: Any, n: int, ensemble_kw: dict[str, Any] | None = None,
           ) -> tuple[np.ndarray, SnapshotEnsemble, dict[int, np.ndarray]]:
    w = np.array([1.0, -1.0, 0.5])
    opt = gs.SGD([w], lr=schedule, momentum=0.5)
    ens = SnapshotEnsemble(schedule, [w], **(ensemble_kw or {}))
    seen = {}
    rng = np.random.default_rng(6)
    for t in range(n):
        opt.step([w + 0.1 * rng.standard_normal(3)])
        ens.observe(opt.step_count - 1)
        seen[t] = w.copy()
    return w, ens, seen


def test_snapshots_at_cycle_ends() -> None:
    lr = S.cosine_warm_restarts(0.1, 5, 2)
    _, ens, seen = _train(lr, 40)
    assert ens.steps == [4, 14, 34] == lr.cycle_ends(40)
    for step, snap in zip(ens.steps, ens.snapshots):
        np.testing.assert_array_equal(snap[0], seen[step])
        assert not snap[0].flags.writeable
    assert len(ens) == 3


def test_observe_is_idempotent_and_max_snapshots() -> None:
    lr = S.cyclic(0.01, 0.1, 2)
    _, ens, _ = _train(lr, 20, {"max_snapshots": 2})
    assert ens.steps == [15, 19]
    assert ens.observe(19) is False and len(ens) == 2
    assert ens.observe(18) is False
    ens.snapshot()
    assert ens.steps == [19, -1]


def test_predict_averages_the_snapshots() -> None:
    lr = S.linear_warmup(S.cosine_warm_restarts(0.1, 4), 3)
    _, ens, seen = _train(lr, 20)
    assert ens.steps == [6, 10, 14, 18]
    x = np.linspace(-1.0, 1.0, 5)

    def fn(params: list[np.ndarray], inputs: np.ndarray) -> np.ndarray:
        return np.tanh(params[0][0] * inputs + params[0][1])

    expected = np.mean([fn([seen[s]], x) for s in ens.steps], axis=0)
    np.testing.assert_allclose(ens.predict(fn, x), expected, rtol=1e-15)
    weights = [0.0, 0.0, 1.0, 3.0]
    np.testing.assert_allclose(
        ens.predict(fn, x, weights=weights),
        0.25 * fn([seen[14]], x) + 0.75 * fn([seen[18]], x), rtol=1e-14)
    mean = ens.mean_params()[0]
    np.testing.assert_allclose(mean, np.mean([seen[s] for s in ens.steps], axis=0), rtol=1e-15)
    with pytest.raises(ValueError, match="one weight per snapshot"):
        ens.predict(fn, x, weights=[1.0])
    with pytest.raises(ValueError, match="positive sum"):
        ens.predict(fn, x, weights=[0.0, 0.0, 0.0, 0.0])


def test_one_cycle_and_join_cycle_ends_drive_snapshots() -> None:
    _, ens, _ = _train(S.one_cycle(0.1, 10), 10)
    assert ens.steps == [9]
    joined = S.join([S.cyclic(0.01, 0.1, 2), S.cosine_decay(0.01, 5)], [8])
    _, ens, _ = _train(joined, 15)
    assert ens.steps == [3, 7]


def test_snapshot_state_dict_round_trip() -> None:
    lr = S.cosine_warm_restarts(0.1, 3)
    w, ens, _ = _train(lr, 10)
    other = SnapshotEnsemble(lr, [np.zeros_like(w)])
    other.load_state_dict(ens.state_dict())
    assert other.steps == ens.steps
    for a, b in zip(other.snapshots, ens.snapshots):
        np.testing.assert_array_equal(a[0], b[0])
    with pytest.raises(ValueError, match="does not match"):
        SnapshotEnsemble(lr, [np.zeros(2)]).load_state_dict(ens.state_dict())


BAD_SNAP: list[tuple[str, Callable[[], Any], type[Exception], str]] = [
    ("no cycles", lambda: SnapshotEnsemble(S.cosine_decay(0.1, 10), [np.zeros(2)]),
     TypeError, r"Invalid schedule: CosineDecay.* has no cycle_ends"),
    ("join without cycles", lambda: SnapshotEnsemble(S.join([0.1, 0.2], [3]), [np.zeros(2)]),
     TypeError, r"no cyclic schedule"),
    ("params", lambda: SnapshotEnsemble(S.cyclic(0.1, 1.0, 2), np.zeros(2)),
     TypeError, r"Invalid params: ndarray"),
    ("max_snapshots",
     lambda: SnapshotEnsemble(S.cyclic(0.1, 1.0, 2), [np.zeros(2)], max_snapshots=0),
     ValueError, r"Invalid max_snapshots: 0"),
    ("observe step", lambda: SnapshotEnsemble(S.cyclic(0.1, 1.0, 2), [np.zeros(2)]).observe(-1),
     ValueError, r"Invalid step: -1"),
    ("predict empty",
     lambda: SnapshotEnsemble(S.cyclic(0.1, 1.0, 2), [np.zeros(2)]).predict(lambda p, x: x, 1.0),
     ValueError, r"no snapshots yet"),
]


@pytest.mark.parametrize(("name", "call", "exc", "pattern"), BAD_SNAP,
                         ids=[b[0] for b in BAD_SNAP])
def test_snapshot_bad_arguments(name: str, call: Callable[[], Any], exc: type[Exception],
                                pattern: str) -> None:
    with pytest.raises(exc, match=pattern):
        call()
