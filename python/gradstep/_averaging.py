r"""Averaging around the training loop: exponentially weighted averages (of a loss or of
the parameters) and snapshot ensembles.

* :class:`EMA`: :math:`m_n = \beta m_{n-1} + (1-\beta) x_n` with bias correction, for a
  number or array you pass in (a smoothed loss), or for the parameters themselves
  (averaged weights for evaluation, swapped into the live arrays and back, in place).
* :func:`ewa`: the same average over a whole series in one vectorised call.
* :class:`SnapshotEnsemble`: a copy of the parameters at the end of each cycle of a
  cyclic schedule, and the ensemble's averaged prediction.
"""

from __future__ import annotations

import contextlib
import numbers
from collections.abc import Iterator, Sequence
from typing import Any, Callable, Union

import numpy as np
import numpy.typing as npt

__all__ = ["EMA", "SnapshotEnsemble", "ewa"]

Decay = Union[float, Callable[[int], float]]


def _decay_value(name: str, value: Any) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"Invalid {name}: {value!r} (expected a real number)")
    d = float(value)
    if not 0.0 <= d < 1.0:
        raise ValueError(f"Invalid {name}: {value!r} (expected 0 <= decay < 1)")
    return d


def _flag(name: str, value: Any) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"Invalid {name}: {value!r} (expected True or False)")
    return bool(value)


def _param_list(name: str, params: Any) -> list[np.ndarray]:
    if isinstance(params, np.ndarray) or not isinstance(params, Sequence) or isinstance(
        params, (str, bytes)
    ):
        raise TypeError(
            f"Invalid {name}: {type(params).__name__} (expected a list of numpy arrays; "
            "wrap a single array in a list)"
        )
    if not params:
        raise ValueError(f"Invalid {name}: an empty list (expected at least one array)")
    out = []
    for i, p in enumerate(params):
        if not isinstance(p, np.ndarray):
            raise TypeError(f"Invalid {name}[{i}]: {type(p).__name__} (expected numpy.ndarray)")
        if p.dtype.kind != "f":
            raise TypeError(f"Invalid {name}[{i}]: dtype {p.dtype} (expected a floating dtype)")
        out.append(p)
    return out


def _polyak_decay(n: int) -> float:
    """``n / (n + 1)``: makes the EMA the running arithmetic mean."""
    return n / (n + 1.0)


class EMA:
    r"""Exponentially weighted moving average with bias correction.

    .. math::
        m_n = \beta_n m_{n-1} + (1 - \beta_n)\,x_n,\quad m_0 = 0,\qquad
        \hat m_n = \frac{m_n}{1 - \prod_{k \le n} \beta_k}

    :math:`\hat m_n` is a weighted mean of :math:`x_1..x_n` whose weights sum to one
    (the correction of Kingma & Ba, "Adam", ICLR 2015, section 3). ``decay`` is a
    number in [0, 1) or a callable ``n -> decay`` (``n`` = updates so far), e.g. a
    schedule; :meth:`EMA.polyak` uses :math:`\beta_n = n/(n+1)`, the running mean of
    Polyak & Juditsky, "Acceleration of stochastic approximation by averaging", SIAM J.
    Control Optim. 30(4), 1992. With ``bias_correction=False`` the average starts at the
    first value instead of at 0 (:math:`m_1 = x_1`) and is never rescaled.

    Two uses:

    * **Values** (``params=None``): ``update(x)`` with a number or an array (a loss,
      a metric) returns the current average; :attr:`value` reads it.
    * **Parameters** (``params=[w, b, ...]``): ``update()`` folds the parameters'
      current values into averages kept alongside them (same dtype, updated in place).
      For evaluation, ``with ema.average_parameters(): ...`` writes the averaged
      weights into the live arrays and restores the training weights afterwards
      (also :meth:`swap_in` / :meth:`swap_out`); :meth:`copy_to` writes them for good.

    Example:
        >>> import numpy as np, gradstep as gs
        >>> from gradstep._averaging import EMA
        >>> smooth = EMA(0.9)
        >>> [round(smooth.update(x), 4) for x in (1.0, 1.0, 4.0)]
        [1.0, 1.0, 2.107]
        >>> w = np.zeros(2)
        >>> opt = gs.SGD([w], lr=0.5)
        >>> ema = EMA(0.5, params=[w])
        >>> for _ in range(3):
        ...     opt.step([np.ones(2)])      # w: -0.5, -1.0, -1.5
        ...     ema.update()
        >>> with ema.average_parameters():
        ...     print(w)                    # the averaged weights
        [-1.21428571 -1.21428571]
        >>> w                               # the training weights again
        array([-1.5, -1.5])
    """

    def __init__(self, decay: Decay = 0.999, params: Sequence[np.ndarray] | None = None, *,
                 bias_correction: bool = True) -> None:
        if not callable(decay):
            decay = _decay_value("decay", decay)
        self.decay = decay
        self.bias_correction = _flag("bias_correction", bias_correction)
        self.params = None if params is None else _param_list("params", params)
        self.count = 0
        self._product = 1.0  # prod of the decays so far
        self._value: Any = None  # values mode: float64 array
        self._shadow: list[np.ndarray] | None = (
            None if self.params is None else [np.zeros_like(p) for p in self.params]
        )
        self._backup: list[np.ndarray] | None = None

    @classmethod
    def polyak(cls, params: Sequence[np.ndarray] | None = None) -> EMA:
        """The running arithmetic mean of every update so far (Polyak-Ruppert)."""
        return cls(_polyak_decay, params)

    def _next_decay(self) -> float:
        if callable(self.decay):
            return _decay_value(f"decay({self.count})", self.decay(self.count))
        return self.decay

    @property
    def correction(self) -> float:
        """The factor the raw average is divided by: ``1 - prod(decays)`` (1 without
        bias correction)."""
        return 1.0 - self._product if self.bias_correction else 1.0

    # -- values mode ----------------------------------------------------------------

    def update(self, value: Any = None) -> Any:
        """Fold one value in (values mode) and return the average, or fold the
        parameters' current values in (parameters mode) and return None."""
        if self.params is None:
            if value is None:
                raise TypeError("EMA.update() needs a value (this EMA tracks values, not params)")
            x = np.asarray(value, dtype=np.float64)
            if self._value is not None and x.shape != self._value.shape:
                raise ValueError(
                    f"Invalid value: shape {x.shape} (the average has shape {self._value.shape})"
                )
            d = self._next_decay()
            if self._value is None:
                self._value = x.copy() if not self.bias_correction else (1.0 - d) * x
            else:
                self._value = d * self._value + (1.0 - d) * x
            self._product *= d
            self.count += 1
            return self.value
        if value is not None:
            raise TypeError(
                "EMA.update() takes no value when it tracks parameters; it reads them"
            )
        if self._backup is not None:
            raise RuntimeError(
                "EMA.update() while the averaged weights are swapped in; call swap_out() first"
            )
        d = self._next_decay()
        assert self._shadow is not None
        for s, p in zip(self._shadow, self.params):
            if self.count == 0 and not self.bias_correction:
                np.copyto(s, p)
            else:
                s *= d
                s += (1.0 - d) * p
        self._product *= d
        self.count += 1
        return None

    @property
    def value(self) -> Any:
        """The bias-corrected average (values mode): a float for scalar inputs, else an
        array."""
        if self.params is not None:
            raise TypeError("EMA.value is for values; use averages() for parameters")
        if self._value is None:
            raise ValueError("EMA.value: no value yet (call update(x) first)")
        v = self._value / self.correction
        return float(v) if v.ndim == 0 else v

    # -- parameters mode ------------------------------------------------------------

    def _need_params(self, what: str) -> list[np.ndarray]:
        if self.params is None or self._shadow is None:
            raise TypeError(f"EMA.{what} needs an EMA built with params=[...]")
        if self.count == 0:
            raise ValueError(f"EMA.{what}: no average yet (call update() first)")
        return self._shadow

    def averages(self) -> list[np.ndarray]:
        """New arrays holding the bias-corrected averaged parameters."""
        shadow = self._need_params("averages()")
        return [s / s.dtype.type(self.correction) for s in shadow]

    def copy_to(self, params: Sequence[np.ndarray] | None = None) -> None:
        """Write the averaged parameters into ``params`` (default: the tracked ones) in
        place, keeping no copy of what was there."""
        shadow = self._need_params("copy_to()")
        targets = self.params if params is None else _param_list("params", params)
        assert targets is not None
        if len(targets) != len(shadow) or any(t.shape != s.shape for t, s in zip(targets, shadow)):
            raise ValueError("Invalid params: they do not match the averaged parameters' shapes")
        c = self.correction
        for t, s in zip(targets, shadow):
            np.divide(s, c, out=t, casting="same_kind")

    def swap_in(self) -> None:
        """Put the averaged weights into the live parameter arrays (in place), keeping
        the training weights to bring back with :meth:`swap_out`."""
        self._need_params("swap_in()")
        if self._backup is not None:
            raise RuntimeError("EMA.swap_in(): the averaged weights are already swapped in")
        assert self.params is not None
        backup = [p.copy() for p in self.params]
        self.copy_to()
        self._backup = backup

    def swap_out(self) -> None:
        """Restore the training weights saved by :meth:`swap_in` (in place)."""
        if self._backup is None:
            raise RuntimeError("EMA.swap_out(): nothing to restore (swap_in() was not called)")
        assert self.params is not None
        for p, b in zip(self.params, self._backup):
            np.copyto(p, b)
        self._backup = None

    @property
    def swapped_in(self) -> bool:
        return self._backup is not None

    @contextlib.contextmanager
    def average_parameters(self) -> Iterator[None]:
        """``with ema.average_parameters(): evaluate()``: the averaged weights inside the
        block, the training weights again after it (also when it raises)."""
        self.swap_in()
        try:
            yield
        finally:
            self.swap_out()

    # -- state ----------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """``count``, the product of decays and the raw (uncorrected) averages, copied."""
        if self.params is None:
            avg: Any = None if self._value is None else self._value.copy()
        else:
            assert self._shadow is not None
            avg = [s.copy() for s in self._shadow]
        return {"count": self.count, "decay_product": self._product, "average": avg}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if not isinstance(state_dict, dict) or set(state_dict) != {
            "count", "decay_product", "average"
        }:
            raise ValueError(
                "Invalid state_dict for EMA (expected the keys 'average', 'count', "
                "'decay_product')"
            )
        count = state_dict["count"]
        if isinstance(count, bool) or not isinstance(count, numbers.Integral) or count < 0:
            raise ValueError(f"Invalid count: {count!r} (expected an integer >= 0)")
        product = float(state_dict["decay_product"])
        if not 0.0 <= product <= 1.0:
            raise ValueError(f"Invalid decay_product: {product!r} (expected 0 <= x <= 1)")
        avg = state_dict["average"]
        if self.params is None:
            value = None if avg is None else np.array(avg, dtype=np.float64, copy=True)
            self._value = value
        else:
            assert self._shadow is not None
            if not isinstance(avg, (list, tuple)) or len(avg) != len(self._shadow) or any(
                np.shape(a) != s.shape for a, s in zip(avg, self._shadow)
            ):
                raise ValueError(
                    "Invalid state_dict: 'average' does not match the parameters' count "
                    "and shapes"
                )
            for s, a in zip(self._shadow, avg):
                np.copyto(s, np.asarray(a), casting="same_kind")
        self.count = int(count)
        self._product = product

    def __repr__(self) -> str:
        what = "values" if self.params is None else f"{len(self.params)} params"
        return (
            f"EMA(decay={self.decay!r}, bias_correction={self.bias_correction}; {what}, "
            f"count={self.count})"
        )


def ewa(values: npt.ArrayLike, decay: float, *, bias_correction: bool = True,
        axis: int = 0) -> npt.NDArray[np.float64]:
    r"""The exponentially weighted average of a whole series at every point, in one call:
    element ``n`` equals what :class:`EMA` returns after the ``n + 1``-th update
    (same ``decay`` and ``bias_correction``).

    .. math::
        \hat m_n = \frac{(1-\beta)\sum_{k \le n} \beta^{\,n-k} x_k}{1 - \beta^{\,n+1}}

    Computed by a doubling scan (``log2(n)`` vectorised passes, each multiplying only
    by powers of :math:`\beta \le 1`, so long series neither overflow nor lose
    accuracy). Useful for smoothing a loss curve before plotting it.

    Example:
        >>> from gradstep._averaging import ewa
        >>> ewa([1.0, 1.0, 4.0], 0.9).round(4)
        array([1.   , 1.   , 2.107])
    """
    d = _decay_value("decay", decay)
    bias = _flag("bias_correction", bias_correction)
    x = np.moveaxis(np.asarray(values, dtype=np.float64), axis, 0)
    n = x.shape[0]
    s = (1.0 - d) * x
    if n and not bias:
        s[0] = x[0]
    k, p = 1, d
    while k < n and p > 0.0:
        s[k:] += p * s[:-k]
        k *= 2
        p *= p
    if bias:
        idx = np.arange(1, n + 1, dtype=np.float64).reshape((n,) + (1,) * (x.ndim - 1))
        s /= 1.0 - np.power(d, idx)
    return np.moveaxis(s, 0, axis)


class SnapshotEnsemble:
    r"""Snapshot ensembles: a copy of the parameters at the end of each cycle of a
    cyclic schedule, averaged at prediction time.

    The rate falls to its minimum at the end of every cycle of
    ``cosine_warm_restarts`` (or ``cyclic``, ``one_cycle``, or ``join`` /
    ``linear_warmup`` around them), where the model sits in a good local minimum; the
    restart then sends it to another. Huang et al., "Snapshot Ensembles: Train 1, get M
    for free", ICLR 2017.

    Call :meth:`observe` after every optimizer step with the index of the step just
    taken (``t``, the one that used ``schedule(t)``; ``opt.step_count - 1``): on a step
    listed in ``schedule.cycle_ends`` it keeps a read-only copy of ``params``. Keep at
    most ``max_snapshots`` (the latest ones; default all). :meth:`predict` averages
    ``fn(snapshot_params, x)`` over the snapshots; :meth:`mean_params` averages the
    snapshots' weights instead (one model, as in stochastic weight averaging).

    Example:
        >>> import numpy as np, gradstep as gs
        >>> from gradstep._averaging import SnapshotEnsemble
        >>> from gradstep.schedules import cosine_warm_restarts
        >>> lr = cosine_warm_restarts(0.1, T_0=10)
        >>> w = np.ones(2)
        >>> opt = gs.SGD([w], lr=lr)
        >>> ens = SnapshotEnsemble(lr, [w])
        >>> for t in range(30):
        ...     opt.step([2 * w])
        ...     _ = ens.observe(t)
        >>> ens.steps
        [9, 19, 29]
        >>> ens.predict(lambda p, x: p[0] * x, np.array([1.0, 2.0])).shape
        (2,)
    """

    def __init__(self, schedule: Any, params: Sequence[np.ndarray], *,
                 max_snapshots: int | None = None) -> None:
        ends = getattr(schedule, "cycle_ends", None)
        if not callable(ends):
            raise TypeError(
                f"Invalid schedule: {schedule!r} has no cycle_ends(); use a cyclic schedule "
                "(cosine_warm_restarts, cyclic, one_cycle, or join/linear_warmup around one)"
            )
        ends(0)  # raises TypeError for a composite without a cyclic schedule inside
        if max_snapshots is not None and (
            isinstance(max_snapshots, bool) or not isinstance(max_snapshots, numbers.Integral)
            or max_snapshots < 1
        ):
            raise ValueError(
                f"Invalid max_snapshots: {max_snapshots!r} (expected an integer >= 1 or None)"
            )
        self.schedule = schedule
        self.params = _param_list("params", params)
        self.max_snapshots = None if max_snapshots is None else int(max_snapshots)
        self.snapshots: list[list[np.ndarray]] = []
        self.steps: list[int] = []

    def observe(self, step: int) -> bool:
        """After optimizer step ``step`` (0-based): keep a snapshot if that step ends a
        cycle. Returns whether it did. Observing the same step twice keeps one copy."""
        if isinstance(step, (bool, np.bool_)) or not isinstance(step, numbers.Integral) or step < 0:
            raise ValueError(f"Invalid step: {step!r} (expected an integer >= 0)")
        t = int(step)
        ends = self.schedule.cycle_ends(t + 1)
        if not ends or ends[-1] != t or (self.steps and self.steps[-1] == t):
            return False
        self.snapshot(t)
        return True

    def snapshot(self, step: int | None = None) -> None:
        """Keep a copy of the parameters now (``step`` is only recorded)."""
        copies = []
        for p in self.params:
            c = p.copy()
            c.flags.writeable = False
            copies.append(c)
        self.snapshots.append(copies)
        self.steps.append(-1 if step is None else int(step))
        if self.max_snapshots is not None and len(self.snapshots) > self.max_snapshots:
            del self.snapshots[0]
            del self.steps[0]

    def __len__(self) -> int:
        return len(self.snapshots)

    def _need(self, what: str) -> None:
        if not self.snapshots:
            raise ValueError(f"SnapshotEnsemble.{what}: no snapshots yet (no cycle has ended)")

    def predict(self, fn: Callable[[list[np.ndarray], Any], Any], x: Any,
                weights: npt.ArrayLike | None = None) -> npt.NDArray[Any]:
        """The mean of ``fn(snapshot_params, x)`` over the snapshots (weighted by
        ``weights``, one per snapshot, if given). ``fn`` gets the list of arrays, in
        the order of ``params``."""
        self._need("predict()")
        outs = np.stack([np.asarray(fn(snap, x)) for snap in self.snapshots])
        if weights is None:
            return np.asarray(outs.mean(axis=0))
        w = np.asarray(weights, dtype=np.float64)
        if w.shape != (len(self.snapshots),):
            raise ValueError(
                f"Invalid weights: shape {w.shape} (expected one weight per snapshot, "
                f"({len(self.snapshots)},))"
            )
        if not (np.all(np.isfinite(w)) and np.all(w >= 0) and w.sum() > 0):
            raise ValueError("Invalid weights: expected finite numbers >= 0 with a positive sum")
        return np.asarray(np.tensordot(w / w.sum(), outs, axes=1))

    def mean_params(self) -> list[np.ndarray]:
        """The element-wise mean of the snapshots' parameters (new arrays, the params'
        dtypes)."""
        self._need("mean_params()")
        return [
            np.mean(np.stack(group), axis=0, dtype=np.float64).astype(group[0].dtype)
            for group in zip(*self.snapshots)
        ]

    def state_dict(self) -> dict[str, Any]:
        return {"steps": list(self.steps),
                "snapshots": [[a.copy() for a in snap] for snap in self.snapshots]}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if not isinstance(state_dict, dict) or set(state_dict) != {"steps", "snapshots"}:
            raise ValueError(
                "Invalid state_dict for SnapshotEnsemble (expected the keys 'snapshots', 'steps')"
            )
        steps = [int(s) for s in state_dict["steps"]]
        snaps = state_dict["snapshots"]
        if len(steps) != len(snaps):
            raise ValueError("Invalid state_dict: 'steps' and 'snapshots' differ in length")
        loaded = []
        for snap in snaps:
            if len(snap) != len(self.params) or any(
                np.shape(a) != p.shape for a, p in zip(snap, self.params)
            ):
                raise ValueError("Invalid state_dict: a snapshot does not match the parameters")
            copies = []
            for a, p in zip(snap, self.params):
                c = np.array(a, dtype=p.dtype, copy=True)
                c.flags.writeable = False
                copies.append(c)
            loaded.append(copies)
        self.snapshots = loaded
        self.steps = steps

    def __repr__(self) -> str:
        return (
            f"SnapshotEnsemble(schedule={self.schedule!r}, {len(self.params)} params, "
            f"max_snapshots={self.max_snapshots!r}; snapshots at steps {self.steps})"
        )
