r"""Learning-rate schedules: pure callables ``step -> value``.

A schedule maps the number of optimizer steps already taken (``0`` for the first
step) to a hyperparameter value, so ``schedule(t)`` is the value step ``t + 1``
uses. Pass one wherever an optimizer takes a hyperparameter that can vary
(``lr``, ``momentum``, ``betas[0]``, ``weight_decay``)::

    >>> import numpy as np, gradstep as gs
    >>> from gradstep import schedules
    >>> lr = schedules.linear_warmup(schedules.cosine_decay(0.1, decay_steps=90), 10)
    >>> w = np.zeros(3)
    >>> opt = gs.SGD([w], lr=lr, momentum=0.9)
    >>> round(lr(0), 6), round(lr(5), 6), lr(10), lr(100)
    (0.0, 0.05, 0.1, 0.0)

Every closed-form schedule is a small frozen dataclass: picklable, comparable, with a
readable ``repr``, and it validates its arguments when built (a ``TypeError`` or
``ValueError`` that names the argument and shows its value). Each one also evaluates
a NumPy integer array of steps in one vectorised call, which is what plotting and
analysis want::

    >>> schedules.step_decay(1.0, step_size=2, gamma=0.5)(np.arange(6))
    array([1.  , 1.  , 0.5 , 0.5 , 0.25, 0.25])

Where ``torch.optim.lr_scheduler`` has the same schedule, ``schedule(t)`` equals the
learning rate torch's scheduler gives after ``t`` calls of ``scheduler.step()``
(StepLR, MultiStepLR, ExponentialLR, CosineAnnealingLR, PolynomialLR, LinearLR,
CyclicLR, CosineAnnealingWarmRestarts, OneCycleLR, ReduceLROnPlateau); the few places
where the two differ on purpose are documented on the schedule.

Schedules with cycles (:class:`Cyclic`, :class:`CosineWarmRestarts`,
:class:`OneCycle`, and :func:`join` / :func:`linear_warmup` around them) report
``cycle_ends(n_steps)``, the step indices that end a cycle, which
``gradstep.SnapshotEnsemble`` uses to keep a copy of the parameters at each one.

Two schedules are driven by the loss instead of the step count:
:class:`ReduceLROnPlateau` and :class:`BoldDriver`. They keep state, have the same
callable face plus ``update(loss)``, ``state_dict()`` and ``load_state_dict()``, and
compose with :func:`join` and :func:`linear_warmup` (which forward ``update`` to the
loss-driven schedule active at the current step).
"""

from __future__ import annotations

import copy
import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Union, overload

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from ._optimizer import Optimizer

__all__ = [
    "BoldDriver",
    "Constant",
    "CosineDecay",
    "CosineWarmRestarts",
    "Cyclic",
    "ExponentialDecay",
    "InverseSqrtDecay",
    "InverseTimeDecay",
    "Join",
    "LinearWarmup",
    "MultistepDecay",
    "OneCycle",
    "OneCycleMomentum",
    "PiecewiseConstant",
    "PolynomialDecay",
    "ReduceLROnPlateau",
    "Schedule",
    "StepDecay",
    "bold_driver",
    "constant",
    "cosine_decay",
    "cosine_warm_restarts",
    "cyclic",
    "exponential_decay",
    "inverse_sqrt_decay",
    "inverse_time_decay",
    "join",
    "linear_warmup",
    "multistep_decay",
    "one_cycle",
    "one_cycle_momentum",
    "piecewise_constant",
    "polynomial_decay",
    "reduce_lr_on_plateau",
]

Steps = npt.NDArray[np.int64]
Values = npt.NDArray[np.float64]
StepLike = Union[int, np.integer, npt.NDArray[np.integer]]
ScheduleLike = Union[float, Callable[[int], float]]


# -- argument checks ---------------------------------------------------------------


def _real(name: str, value: Any) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"Invalid {name}: {value!r} (expected a real number)")
    return float(value)


def _finite(name: str, value: Any, expected: str = "a finite number") -> float:
    x = _real(name, value)
    if not math.isfinite(x):
        raise ValueError(f"Invalid {name}: {value!r} (expected {expected})")
    return x


def _nonneg(name: str, value: Any) -> float:
    x = _real(name, value)
    if not (math.isfinite(x) and x >= 0.0):
        raise ValueError(f"Invalid {name}: {value!r} (expected a finite number >= 0)")
    return x


def _positive(name: str, value: Any) -> float:
    x = _real(name, value)
    if not (math.isfinite(x) and x > 0.0):
        raise ValueError(f"Invalid {name}: {value!r} (expected a finite number > 0)")
    return x


def _in_range(name: str, value: Any, lo: float, hi: float, *, lo_open: bool = False,
              hi_open: bool = False) -> float:
    x = _real(name, value)
    ok = (lo < x if lo_open else lo <= x) and (x < hi if hi_open else x <= hi)
    if not ok:
        lo_op = "<" if lo_open else "<="
        hi_op = "<" if hi_open else "<="
        raise ValueError(
            f"Invalid {name}: {value!r} (expected {lo:g} {lo_op} {name} {hi_op} {hi:g})"
        )
    return x


def _int(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"Invalid {name}: {value!r} (expected an integer >= {minimum})")
    if value < minimum:
        raise ValueError(f"Invalid {name}: {value!r} (expected an integer >= {minimum})")
    return int(value)


def _choice(name: str, value: Any, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in choices:
        options = ", ".join(repr(c) for c in choices)
        raise ValueError(f"Invalid {name}: {value!r} (expected one of {options})")
    return value


def _flag(name: str, value: Any) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"Invalid {name}: {value!r} (expected True or False)")
    return bool(value)


def _int_sequence(name: str, value: Any, minimum: int) -> tuple[int, ...]:
    if isinstance(value, (str, bytes)) or not isinstance(value, (Sequence, np.ndarray)):
        raise TypeError(f"Invalid {name}: {value!r} (expected a sequence of integers)")
    out = tuple(_int(f"{name}[{i}]", x, minimum) for i, x in enumerate(value))
    for i in range(1, len(out)):
        if out[i] <= out[i - 1]:
            raise ValueError(
                f"Invalid {name}: {list(out)!r} (expected strictly increasing integers)"
            )
    return out


def _loss(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise TypeError(f"Invalid loss: {value!r} (expected a real number)") from None


def _steps(step: Any) -> tuple[Steps, bool]:
    """`step` as an int64 array and whether it was a scalar."""
    if isinstance(step, (bool, np.bool_)):
        raise TypeError(f"Invalid step: {step!r} (expected an integer >= 0 or an integer array)")
    if isinstance(step, (int, np.integer)):
        if step < 0:
            raise ValueError(f"Invalid step: {step!r} (expected an integer >= 0)")
        return np.asarray(step, dtype=np.int64), True
    if isinstance(step, np.ndarray):
        if step.dtype.kind not in "iu":
            raise TypeError(
                f"Invalid step: an array of dtype {step.dtype} (expected an integer dtype)"
            )
        t = step.astype(np.int64, copy=False)
        if t.size and int(t.min()) < 0:
            raise ValueError(f"Invalid step: an array holding {int(t.min())} (expected steps >= 0)")
        return t, False
    raise TypeError(
        f"Invalid step: {step!r} (expected an integer >= 0 or a NumPy integer array)"
    )


# -- the base class ------------------------------------------------------------------


class Schedule:
    """The base of gradstep's schedules: ``schedule(step)`` for an integer step gives a
    float, for a NumPy integer array of steps an array of float64 values of the same
    shape. Subclasses implement ``_values(t)`` on int64 arrays."""

    @overload
    def __call__(self, step: int | np.integer[Any]) -> float: ...

    @overload
    def __call__(self, step: npt.NDArray[np.integer[Any]]) -> Values: ...

    def __call__(self, step: Any) -> Any:
        t, scalar = _steps(step)
        if scalar:
            # Through a 1-element array, the same ufunc loops as for arrays of steps
            # (0-d operands take NumPy's scalar paths, which can differ by an ulp).
            return float(self._values(t.reshape(1))[0])
        return self._values(t)

    def _values(self, t: Steps) -> Values:
        raise NotImplementedError


def _eval(child: Callable[[int], float], t: Steps) -> Values:
    """A child schedule at the steps `t`. gradstep schedules are vectorised; any other
    callable is evaluated one step at a time."""
    if isinstance(child, Schedule):
        return np.asarray(child._values(t), dtype=np.float64)
    flat = t.reshape(-1)
    out = np.fromiter((float(child(int(s))) for s in flat), dtype=np.float64, count=flat.size)
    return out.reshape(t.shape)


def _as_schedule(name: str, value: Any) -> Callable[[int], float]:
    if callable(value):
        return value
    if isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_)):
        return Constant(float(value))
    raise TypeError(f"Invalid {name}: {value!r} (expected a schedule or a number)")


# -- closed-form schedules -------------------------------------------------------------


@dataclass(frozen=True)
class Constant(Schedule):
    r"""A constant value: :math:`\eta_t = \eta`.

    Example:
        >>> from gradstep.schedules import constant
        >>> constant(0.1)(1000)
        0.1
    """

    lr: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "lr", _finite("lr", self.lr))

    def _values(self, t: Steps) -> Values:
        return np.full(t.shape, self.lr)


@dataclass(frozen=True)
class StepDecay(Schedule):
    r"""Decay by ``gamma`` every ``step_size`` steps:
    :math:`\eta_t = \eta\,\gamma^{\lfloor t / s \rfloor}`.

    Equals ``torch.optim.lr_scheduler.StepLR(step_size, gamma)``. The staircase decay
    of Krizhevsky, Sutskever & Hinton, "ImageNet Classification with Deep Convolutional
    Neural Networks", NeurIPS 2012.

    Example:
        >>> from gradstep.schedules import step_decay
        >>> s = step_decay(0.1, step_size=30, gamma=0.1)
        >>> s(29), round(s(30), 12), round(s(60), 12)
        (0.1, 0.01, 0.001)
    """

    lr: float
    step_size: int
    gamma: float = 0.1

    def __post_init__(self) -> None:
        object.__setattr__(self, "lr", _nonneg("lr", self.lr))
        object.__setattr__(self, "step_size", _int("step_size", self.step_size, 1))
        object.__setattr__(self, "gamma", _nonneg("gamma", self.gamma))

    def _values(self, t: Steps) -> Values:
        k = (t // self.step_size).astype(np.float64)
        return self.lr * np.power(self.gamma, k)


@dataclass(frozen=True)
class MultistepDecay(Schedule):
    r"""Decay by ``gamma`` at each milestone:
    :math:`\eta_t = \eta\,\gamma^{\#\{m \in \text{milestones} : m \le t\}}`.

    Equals ``torch.optim.lr_scheduler.MultiStepLR(milestones, gamma)``. The decay
    happens at the milestone: ``schedule(m)`` is already decayed. Milestones must be
    strictly increasing (He et al., "Deep Residual Learning for Image Recognition",
    CVPR 2016, divide by 10 at 32k and 48k iterations).

    Example:
        >>> from gradstep.schedules import multistep_decay
        >>> s = multistep_decay(1.0, milestones=[2, 4], gamma=0.5)
        >>> [s(t) for t in range(6)]
        [1.0, 1.0, 0.5, 0.5, 0.25, 0.25]
    """

    lr: float
    milestones: Sequence[int]
    gamma: float = 0.1

    def __post_init__(self) -> None:
        object.__setattr__(self, "lr", _nonneg("lr", self.lr))
        object.__setattr__(self, "milestones", _int_sequence("milestones", self.milestones, 0))
        object.__setattr__(self, "gamma", _nonneg("gamma", self.gamma))

    def _values(self, t: Steps) -> Values:
        k = np.searchsorted(np.asarray(self.milestones, dtype=np.int64), t, side="right")
        return self.lr * np.power(self.gamma, np.asarray(k, dtype=np.float64))


@dataclass(frozen=True)
class PiecewiseConstant(Schedule):
    r"""A lookup table: ``values[i]`` from step ``boundaries[i-1]`` (inclusive) to
    ``boundaries[i]`` (exclusive); ``len(values) == len(boundaries) + 1``.

    .. math::
        \eta_t = v_i \quad\text{for } b_{i-1} \le t < b_i,\ b_{-1} = 0,\ b_n = \infty

    The value changes *at* the boundary, like :class:`MultistepDecay` milestones
    (``tf.keras``'s PiecewiseConstantDecay switches one step later).

    Example:
        >>> from gradstep.schedules import piecewise_constant
        >>> s = piecewise_constant([3, 5], [0.1, 0.05, 0.01])
        >>> [s(t) for t in (0, 2, 3, 4, 5, 100)]
        [0.1, 0.1, 0.05, 0.05, 0.01, 0.01]
    """

    boundaries: Sequence[int]
    values: Sequence[float]

    def __post_init__(self) -> None:
        b = _int_sequence("boundaries", self.boundaries, 1)
        vals = self.values
        if isinstance(vals, (str, bytes)) or not isinstance(vals, (Sequence, np.ndarray)):
            raise TypeError(f"Invalid values: {vals!r} (expected a sequence of numbers)")
        v = tuple(_finite(f"values[{i}]", x) for i, x in enumerate(vals))
        if len(v) != len(b) + 1:
            raise ValueError(
                f"Invalid values: {len(v)} values for {len(b)} boundaries "
                f"(expected len(values) == len(boundaries) + 1 == {len(b) + 1})"
            )
        object.__setattr__(self, "boundaries", b)
        object.__setattr__(self, "values", v)

    def _values(self, t: Steps) -> Values:
        i = np.searchsorted(np.asarray(self.boundaries, dtype=np.int64), t, side="right")
        return np.asarray(self.values, dtype=np.float64)[i]


@dataclass(frozen=True)
class InverseTimeDecay(Schedule):
    r"""Inverse-time decay:
    :math:`\eta_t = \eta / (1 + r\,p)` with :math:`p = t / s`, or
    :math:`p = \lfloor t / s \rfloor` when ``staircase=True`` (r = ``decay_rate``,
    s = ``decay_steps``).

    The :math:`\eta_0 / (1 + \eta_0\lambda t)` rate of Bottou, "Stochastic Gradient
    Descent Tricks", Neural Networks: Tricks of the Trade, 2012 (and Robbins & Monro's
    :math:`\sum\eta_t = \infty, \sum\eta_t^2 < \infty` conditions); as
    ``tf.keras.optimizers.schedules.InverseTimeDecay``.

    Example:
        >>> from gradstep.schedules import inverse_time_decay
        >>> s = inverse_time_decay(1.0, decay_rate=0.5, decay_steps=2, staircase=True)
        >>> [s(t) for t in range(5)]
        [1.0, 1.0, 0.6666666666666666, 0.6666666666666666, 0.5]
    """

    lr: float
    decay_rate: float
    decay_steps: int = 1
    staircase: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "lr", _nonneg("lr", self.lr))
        object.__setattr__(self, "decay_rate", _nonneg("decay_rate", self.decay_rate))
        object.__setattr__(self, "decay_steps", _int("decay_steps", self.decay_steps, 1))
        object.__setattr__(self, "staircase", _flag("staircase", self.staircase))

    def _values(self, t: Steps) -> Values:
        if self.staircase:
            p = (t // self.decay_steps).astype(np.float64)
        else:
            p = t / float(self.decay_steps)
        return self.lr / (1.0 + self.decay_rate * p)


@dataclass(frozen=True)
class InverseSqrtDecay(Schedule):
    r"""Inverse square-root decay: :math:`\eta_t = \eta / \sqrt{t + 1}`.

    The decay of Vaswani et al., "Attention Is All You Need", NeurIPS 2017 (after its
    warmup; compose with :func:`linear_warmup`), and the :math:`O(1/\sqrt{t})` rate of
    online convex optimisation (Zinkevich, ICML 2003).

    Example:
        >>> from gradstep.schedules import inverse_sqrt_decay
        >>> s = inverse_sqrt_decay(1.0)
        >>> s(0), s(3), s(99)
        (1.0, 0.5, 0.1)
    """

    lr: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "lr", _nonneg("lr", self.lr))

    def _values(self, t: Steps) -> Values:
        out: Values = self.lr / np.sqrt(t + 1.0)
        return out


@dataclass(frozen=True)
class ExponentialDecay(Schedule):
    r"""Exponential decay: :math:`\eta_t = \eta\,\gamma^t`.

    Equals ``torch.optim.lr_scheduler.ExponentialLR(gamma)``. ``gamma > 1`` grows the
    rate, as the learning-rate range test does (Smith, "Cyclical Learning Rates for
    Training Neural Networks", WACV 2017, section 3.3).

    Example:
        >>> from gradstep.schedules import exponential_decay
        >>> s = exponential_decay(1.0, gamma=0.5)
        >>> s(0), s(1), s(3)
        (1.0, 0.5, 0.125)
    """

    lr: float
    gamma: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "lr", _nonneg("lr", self.lr))
        object.__setattr__(self, "gamma", _positive("gamma", self.gamma))

    def _values(self, t: Steps) -> Values:
        return self.lr * np.power(self.gamma, t.astype(np.float64))


@dataclass(frozen=True)
class PolynomialDecay(Schedule):
    r"""Polynomial decay to ``end_lr`` over ``total_steps`` steps, then constant:

    .. math::
        \eta_t = (\eta - \eta_\text{end})\,\Bigl(1 - \frac{\min(t, T)}{T}\Bigr)^p
                 + \eta_\text{end}

    With ``end_lr=0`` this equals ``torch.optim.lr_scheduler.PolynomialLR(total_iters=T,
    power=p)``; as ``tf.keras``'s PolynomialDecay. ``power=1`` is the linear decay to
    zero, ``power=0.9`` the "poly" policy of Chen et al., DeepLab, TPAMI 2018.

    Example:
        >>> from gradstep.schedules import polynomial_decay
        >>> s = polynomial_decay(1.0, total_steps=4, power=2.0)
        >>> [s(t) for t in range(6)]
        [1.0, 0.5625, 0.25, 0.0625, 0.0, 0.0]
    """

    lr: float
    total_steps: int
    power: float = 1.0
    end_lr: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "lr", _nonneg("lr", self.lr))
        object.__setattr__(self, "total_steps", _int("total_steps", self.total_steps, 1))
        object.__setattr__(self, "power", _nonneg("power", self.power))
        object.__setattr__(self, "end_lr", _nonneg("end_lr", self.end_lr))

    def _values(self, t: Steps) -> Values:
        frac = 1.0 - np.minimum(t, self.total_steps) / float(self.total_steps)
        return (self.lr - self.end_lr) * frac**self.power + self.end_lr


@dataclass(frozen=True)
class CosineDecay(Schedule):
    r"""Cosine decay from ``lr`` to ``min_lr`` over ``decay_steps`` steps, then constant:

    .. math::
        \eta_t = \eta_\min + \tfrac12 (\eta - \eta_\min)
                 \Bigl(1 + \cos\frac{\pi \min(t, T)}{T}\Bigr)

    Loshchilov & Hutter, "SGDR: Stochastic Gradient Descent with Warm Restarts",
    ICLR 2017, eq. 5 (one cycle, no restart); as ``optax.cosine_decay_schedule``.

    For ``t <= decay_steps`` this equals ``torch.optim.lr_scheduler.CosineAnnealingLR(
    T_max=decay_steps, eta_min=min_lr)``. torch computes its rate recursively,
    :math:`\eta_{t} = \eta_\min + (\eta_{t-1} - \eta_\min)\,
    \frac{1 + \cos(\pi t/T)}{1 + \cos(\pi (t-1)/T)}`, which agrees with the closed
    form above (its ``_get_closed_form_lr``) to rounding. After ``T_max`` torch keeps
    following the cosine back up (period ``2 T_max``); this schedule stays at ``min_lr``,
    which is what a decay to a final rate wants (use :func:`cosine_warm_restarts` for
    restarts).

    Example:
        >>> from gradstep.schedules import cosine_decay
        >>> s = cosine_decay(1.0, decay_steps=4, min_lr=0.0)
        >>> [round(s(t), 6) for t in range(6)]
        [1.0, 0.853553, 0.5, 0.146447, 0.0, 0.0]
    """

    lr: float
    decay_steps: int
    min_lr: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "lr", _nonneg("lr", self.lr))
        object.__setattr__(self, "decay_steps", _int("decay_steps", self.decay_steps, 1))
        object.__setattr__(self, "min_lr", _nonneg("min_lr", self.min_lr))

    def _values(self, t: Steps) -> Values:
        tt = np.minimum(t, self.decay_steps).astype(np.float64)
        return self.min_lr + (self.lr - self.min_lr) * (
            1.0 + np.cos(math.pi * tt / self.decay_steps)
        ) / 2.0


# -- cyclic schedules ------------------------------------------------------------------


@dataclass(frozen=True)
class Cyclic(Schedule):
    r"""Cyclical learning rates (CLR): a triangle between ``base_lr`` and ``max_lr``,
    ``step_size_up`` steps up and ``step_size_down`` (default: the same) steps down.

    With cycle length :math:`L = u + d`, cycle :math:`c = \lfloor 1 + t/L \rfloor`,
    position :math:`x = 1 + t/L - c \in [0, 1)` and :math:`r = u/L`:

    .. math::
        \eta_t = \eta_\text{base} + (\eta_\max - \eta_\text{base})\,
                 \min\Bigl(\frac{x}{r}, \frac{1-x}{1-r}\Bigr)\, s

    where the amplitude scale is :math:`s = 1` (``"triangular"``),
    :math:`s = 2^{-(c-1)}` (``"triangular2"``, halved every cycle) or
    :math:`s = \gamma^t` (``"exp_range"``).

    Smith, "Cyclical Learning Rates for Training Neural Networks", WACV 2017. Equals
    ``torch.optim.lr_scheduler.CyclicLR`` with the same arguments. Cycle ``k``
    (``k = 1, 2, ...``) ends at step ``k L - 1`` (:meth:`cycle_ends`). For momentum
    cycled the other way round, build a second ``cyclic`` with ``base_lr`` and ``max_lr``
    swapped (e.g. ``cyclic(0.95, 0.85, ...)`` for ``momentum``).

    Example:
        >>> from gradstep.schedules import cyclic
        >>> s = cyclic(0.1, 0.5, step_size_up=2, mode="triangular2")
        >>> [round(s(t), 6) for t in range(8)]
        [0.1, 0.3, 0.5, 0.3, 0.1, 0.2, 0.3, 0.2]
        >>> s.cycle_ends(10)
        [3, 7]
    """

    base_lr: float
    max_lr: float
    step_size_up: int
    step_size_down: int | None = None
    mode: str = "triangular"
    gamma: float = 1.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "base_lr", _nonneg("base_lr", self.base_lr))
        object.__setattr__(self, "max_lr", _nonneg("max_lr", self.max_lr))
        object.__setattr__(self, "step_size_up", _int("step_size_up", self.step_size_up, 1))
        if self.step_size_down is not None:
            object.__setattr__(
                self, "step_size_down", _int("step_size_down", self.step_size_down, 1)
            )
        _choice("mode", self.mode, ("triangular", "triangular2", "exp_range"))
        object.__setattr__(
            self, "gamma", _in_range("gamma", self.gamma, 0.0, 1.0, lo_open=True)
        )

    @property
    def cycle_length(self) -> int:
        """Steps per cycle: ``step_size_up + step_size_down``."""
        down = self.step_size_up if self.step_size_down is None else self.step_size_down
        return self.step_size_up + down

    def _values(self, t: Steps) -> Values:
        # The same operations, in the same order, as torch's CyclicLR.get_lr.
        total = float(self.cycle_length)
        ratio = float(self.step_size_up) / total
        cycle = np.floor(1.0 + t / total)
        x = 1.0 + t / total - cycle
        scale_factor = np.where(x <= ratio, x / ratio, (x - 1.0) / (ratio - 1.0))
        height = (self.max_lr - self.base_lr) * scale_factor
        if self.mode == "triangular":
            return self.base_lr + height * 1.0
        if self.mode == "triangular2":
            with np.errstate(over="ignore"):  # 2**(cycle-1) -> inf: the amplitude is 0
                return self.base_lr + height * (1.0 / (2.0 ** (cycle - 1.0)))
        return self.base_lr + height * np.power(self.gamma, t.astype(np.float64))

    def cycle_ends(self, n_steps: int) -> list[int]:
        """The steps (``< n_steps``) that end a cycle: ``k * cycle_length - 1``."""
        n = _int("n_steps", n_steps, 0)
        length = self.cycle_length
        return list(range(length - 1, n, length))


def _sgdr_starts(t0: int, t_mult: float, upto: int) -> Values:
    """The first steps of the SGDR cycles, ``0 = s_0 < s_1 < ...``, until one is > upto.
    Cycle ``i`` lasts ``max(1, round(T_0 * T_mult**i))`` steps (halves round up)."""
    if t_mult == 1.0:
        return float(t0) * np.arange(upto // t0 + 2, dtype=np.float64)
    k = math.ceil(math.log(upto * (t_mult - 1.0) / t0 + 1.0) / math.log(t_mult)) + 2
    while True:
        with np.errstate(over="ignore"):
            lengths = np.maximum(
                1.0, np.floor(t0 * np.power(t_mult, np.arange(k, dtype=np.float64)) + 0.5)
            )
        starts = np.concatenate(([0.0], np.cumsum(lengths)))
        if starts[-1] > upto:
            return starts
        k *= 2


@dataclass(frozen=True)
class CosineWarmRestarts(Schedule):
    r"""Cosine annealing with warm restarts (SGDR).

    Cycle :math:`i = 0, 1, \dots` lasts :math:`T_i = \operatorname{round}(T_0 T_\text{mult}^i)`
    steps; at step :math:`t` with :math:`T_\text{cur}` steps into cycle :math:`i`:

    .. math::
        \eta_t = \eta_\min + \tfrac12 (\hat\eta_i - \eta_\min)
                 \Bigl(1 + \cos\frac{\pi T_\text{cur}}{T_i}\Bigr),\qquad
        \hat\eta_i = \max(\eta_\min,\ \eta\, d^{\,i})

    with the peak decayed by ``restart_decay`` :math:`d` at every restart.

    Loshchilov & Hutter, "SGDR: Stochastic Gradient Descent with Warm Restarts",
    ICLR 2017, eq. 5. With an integer ``T_mult`` and ``restart_decay=1`` this equals
    ``torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(T_0, T_mult, eta_min)``.
    Beyond torch, ``T_mult`` may be any real number >= 1: cycle lengths are then
    rounded to whole steps (halves up, at least 1), so every restart falls on a step;
    and ``restart_decay`` in (0, 1] lowers each cycle's peak (timm's ``cycle_decay``).
    :meth:`cycle_ends` gives the last step of every cycle: the points where the rate is
    lowest, where Snapshot Ensembles keep a copy of the model.

    Example:
        >>> from gradstep.schedules import cosine_warm_restarts
        >>> s = cosine_warm_restarts(1.0, T_0=2, T_mult=1.5, restart_decay=0.5)
        >>> [round(s(t), 3) for t in range(9)]
        [1.0, 0.5, 0.5, 0.375, 0.125, 0.25, 0.226, 0.164, 0.086]
        >>> s.cycle_ends(20)
        [1, 4, 9, 16]
    """

    lr: float
    T_0: int
    T_mult: float = 1.0
    min_lr: float = 0.0
    restart_decay: float = 1.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "lr", _nonneg("lr", self.lr))
        object.__setattr__(self, "T_0", _int("T_0", self.T_0, 1))
        t_mult = _real("T_mult", self.T_mult)
        if not (math.isfinite(t_mult) and t_mult >= 1.0):
            raise ValueError(f"Invalid T_mult: {self.T_mult!r} (expected a finite number >= 1)")
        object.__setattr__(self, "T_mult", t_mult)
        object.__setattr__(self, "min_lr", _nonneg("min_lr", self.min_lr))
        object.__setattr__(
            self,
            "restart_decay",
            _in_range("restart_decay", self.restart_decay, 0.0, 1.0, lo_open=True),
        )

    def _values(self, t: Steps) -> Values:
        if t.size == 0:
            return np.zeros(t.shape)
        starts = _sgdr_starts(self.T_0, self.T_mult, int(t.max()))
        i = np.searchsorted(starts, t, side="right") - 1
        t_cur = t - starts[i]
        t_i = starts[i + 1] - starts[i]
        if self.restart_decay == 1.0:
            peak: Any = self.lr
        else:
            decay = np.power(self.restart_decay, i.astype(np.float64))
            peak = np.maximum(self.min_lr, self.lr * decay)
        # As torch: eta_min + (base_lr - eta_min) * (1 + cos(pi * T_cur / T_i)) / 2.
        out: Values = self.min_lr + (peak - self.min_lr) * (
            1.0 + np.cos(math.pi * t_cur / t_i)
        ) / 2.0
        return out

    def cycle_ends(self, n_steps: int) -> list[int]:
        """The steps (``< n_steps``) that end a cycle: the step before each restart."""
        n = _int("n_steps", n_steps, 0)
        if n == 0:
            return []
        ends = _sgdr_starts(self.T_0, self.T_mult, n)[1:] - 1.0
        return [int(e) for e in ends[ends <= n - 1]]


def _one_cycle(t: Steps, total_steps: int, pct_start: float, initial: float, peak: float,
               final: float, anneal: str, three_phase: bool) -> Values:
    """torch's OneCycleLR phase logic (the same float operations), held at `final`
    from step total_steps - 1 on."""
    tf = np.minimum(t, total_steps - 1).astype(np.float64)
    if three_phase:
        ends = [float(pct_start * total_steps) - 1, float(2 * pct_start * total_steps) - 2,
                float(total_steps - 1)]
        values = [(initial, peak), (peak, initial), (initial, final)]
    else:
        ends = [float(pct_start * total_steps) - 1, float(total_steps - 1)]
        values = [(initial, peak), (peak, final)]
    out = np.empty(tf.shape)
    taken = np.zeros(tf.shape, dtype=bool)
    start = 0.0
    for k, (end, (v0, v1)) in enumerate(zip(ends, values)):
        sel = ~taken if k == len(ends) - 1 else ~taken & (tf <= end)
        width = end - start
        pct = (tf[sel] - start) / width if width != 0 else np.ones(int(sel.sum()))
        if anneal == "cos":
            out[sel] = v1 + (v0 - v1) / 2.0 * (np.cos(math.pi * pct) + 1.0)
        else:
            out[sel] = (v1 - v0) * pct + v0
        taken |= sel
        start = end
    return out


def _check_one_cycle(self: Any) -> None:
    object.__setattr__(self, "total_steps", _int("total_steps", self.total_steps, 2))
    three = _flag("three_phase", self.three_phase)
    object.__setattr__(self, "three_phase", three)
    if three:
        object.__setattr__(self, "pct_start", _in_range("pct_start", self.pct_start, 0.0, 0.5))
    else:
        object.__setattr__(self, "pct_start", _in_range("pct_start", self.pct_start, 0.0, 1.0))
    _choice("anneal", self.anneal, ("cos", "linear"))


@dataclass(frozen=True)
class OneCycle(Schedule):
    r"""The 1cycle policy: up from ``max_lr / div_factor`` to ``max_lr`` over the first
    ``pct_start`` of ``total_steps``, then down to
    ``max_lr / (div_factor * final_div_factor)``.

    Each phase anneals from :math:`a` to :math:`b` as its fraction :math:`p` goes from 0
    to 1, by cosine, :math:`b + \frac{a - b}{2}(1 + \cos \pi p)`, or linearly,
    :math:`a + (b - a) p` (``anneal="cos" | "linear"``). With ``three_phase=True`` the
    rate comes back down to the initial rate symmetrically, then anneals to the final
    rate (the paper's original form); the default two phases are fastai's.

    Smith & Topin, "Super-Convergence: Very Fast Training of Neural Networks Using
    Large Learning Rates", 2017 (arXiv:1708.07120). Equals
    ``torch.optim.lr_scheduler.OneCycleLR(max_lr, total_steps, pct_start,
    anneal_strategy=anneal, div_factor, final_div_factor, three_phase)`` for every step
    ``t < total_steps``; from ``t = total_steps - 1`` on it stays at the final rate
    (torch raises after ``total_steps`` steps and at ``t = total_steps`` extrapolates
    the last phase past its end).

    **Momentum the other way round.** 1cycle lowers momentum while it raises the rate;
    pass :class:`OneCycleMomentum` (``one_cycle_momentum``), the same phases between
    ``max_momentum`` and ``base_momentum``, as the optimizer's ``momentum`` (or as
    ``betas[0]`` for the Adam family), as torch's ``cycle_momentum=True`` does.

    Example:
        >>> import numpy as np, gradstep as gs
        >>> from gradstep.schedules import one_cycle, one_cycle_momentum
        >>> lr = one_cycle(0.1, total_steps=100)
        >>> mom = one_cycle_momentum(total_steps=100)
        >>> opt = gs.SGD([np.zeros(3)], lr=lr, momentum=mom)
        >>> round(lr(0), 12), lr(29), mom(0), mom(29)
        (0.004, 0.1, 0.95, 0.85)
        >>> lr.cycle_ends(200)
        [99]
    """

    max_lr: float
    total_steps: int
    pct_start: float = 0.3
    div_factor: float = 25.0
    final_div_factor: float = 1e4
    anneal: str = "cos"
    three_phase: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "max_lr", _nonneg("max_lr", self.max_lr))
        object.__setattr__(self, "div_factor", _positive("div_factor", self.div_factor))
        object.__setattr__(
            self, "final_div_factor", _positive("final_div_factor", self.final_div_factor)
        )
        _check_one_cycle(self)

    @property
    def initial_lr(self) -> float:
        """The rate at step 0: ``max_lr / div_factor``."""
        return self.max_lr / self.div_factor

    @property
    def final_lr(self) -> float:
        """The rate at the last step: ``initial_lr / final_div_factor``."""
        return self.initial_lr / self.final_div_factor

    def _values(self, t: Steps) -> Values:
        return _one_cycle(t, self.total_steps, self.pct_start, self.initial_lr, self.max_lr,
                          self.final_lr, self.anneal, self.three_phase)

    def cycle_ends(self, n_steps: int) -> list[int]:
        """``[total_steps - 1]`` if that step is ``< n_steps``: the one cycle's end."""
        n = _int("n_steps", n_steps, 0)
        return [self.total_steps - 1] if self.total_steps <= n else []


@dataclass(frozen=True)
class OneCycleMomentum(Schedule):
    r"""The momentum half of 1cycle: momentum cycled inversely to :class:`OneCycle`.

    The same phases as ``one_cycle(..., total_steps, pct_start, anneal=anneal,
    three_phase=three_phase)``, from ``max_momentum`` down to ``base_momentum`` while the
    rate rises, then back up to ``max_momentum`` (three phases: down, up, then held).
    Pass it as ``momentum`` (SGD, RMSprop) or as ``betas=(schedule, beta2)`` (the Adam
    family). Equals the momentum (or ``betas[0]``) that torch's ``OneCycleLR`` with
    ``cycle_momentum=True`` writes into the optimizer after ``t`` steps.

    Smith, "A disciplined approach to neural network hyper-parameters: Part 1",
    2018 (arXiv:1803.09820), section 4.3 (cyclical momentum).

    Example:
        >>> from gradstep.schedules import one_cycle_momentum
        >>> m = one_cycle_momentum(total_steps=10, pct_start=0.5, anneal="linear")
        >>> [round(m(t), 4) for t in (0, 2, 4, 9)]
        [0.95, 0.9, 0.85, 0.95]
    """

    total_steps: int
    pct_start: float = 0.3
    base_momentum: float = 0.85
    max_momentum: float = 0.95
    anneal: str = "cos"
    three_phase: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "base_momentum", _nonneg("base_momentum", self.base_momentum))
        object.__setattr__(self, "max_momentum", _nonneg("max_momentum", self.max_momentum))
        _check_one_cycle(self)

    def _values(self, t: Steps) -> Values:
        return _one_cycle(t, self.total_steps, self.pct_start, self.max_momentum,
                          self.base_momentum, self.max_momentum, self.anneal, self.three_phase)

    def cycle_ends(self, n_steps: int) -> list[int]:
        """``[total_steps - 1]`` if that step is ``< n_steps``."""
        n = _int("n_steps", n_steps, 0)
        return [self.total_steps - 1] if self.total_steps <= n else []


# -- loss-driven schedules ---------------------------------------------------------------


class _LossDriven(Schedule):
    """A schedule with state that moves on ``update(loss)``, not on the step count.

    ``copy.copy`` returns the schedule itself: it is a handle shared by the optimizer
    and the training loop (and ``Optimizer.state_dict()`` shallow-copies
    hyperparameters), so a copy would silently stop the optimizer from seeing
    ``update``. ``copy.deepcopy`` and pickling give an independent schedule.
    """

    current_lr: float

    def _values(self, t: Steps) -> Values:
        return np.full(t.shape, self.current_lr)

    def __copy__(self) -> Any:
        return self

    def update(self, loss: Any) -> Any:
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        raise NotImplementedError

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        raise NotImplementedError


def _check_state(name: str, state_dict: Any, keys: set[str]) -> dict[str, Any]:
    if not isinstance(state_dict, dict):
        raise TypeError(f"Invalid state_dict: {type(state_dict).__name__} (expected a dict)")
    missing = keys - set(state_dict)
    extra = set(state_dict) - keys
    if missing or extra:
        raise ValueError(
            f"Invalid state_dict for {name}: missing {sorted(missing)}, unexpected "
            f"{sorted(extra)} (expected the keys {sorted(keys)})"
        )
    return state_dict


class ReduceLROnPlateau(_LossDriven):
    r"""Cut the rate by ``factor`` when the monitored loss stops improving.

    After each ``update(loss)``: the loss improves on the best so far if
    :math:`\ell < \ell^* (1 - \theta)` (``mode="min"``, ``threshold_mode="rel"``;
    :math:`\ell < \ell^* - \theta` for ``"abs"``, and mirrored for ``mode="max"``);
    otherwise it is a bad epoch. When more than ``patience`` bad epochs have
    accumulated, :math:`\eta \leftarrow \max(\eta\,f, \eta_\min)` (skipped if that
    changes :math:`\eta` by no more than ``eps``), and the next ``cooldown`` updates
    count no bad epochs.

    torch's semantics exactly (``torch.optim.lr_scheduler.ReduceLROnPlateau`` with one
    parameter group): after the same sequence of losses, ``schedule(t)`` (any ``t``)
    equals the rate torch's scheduler has set. A NaN loss never improves on the best,
    as in torch. The classic "divide by 10 when the validation error plateaus" recipe
    (He et al., CVPR 2016).

    ``update(loss)`` returns True when it reduced the rate. ``schedule(t)`` returns the
    current rate whatever ``t`` is.

    Example:
        >>> from gradstep.schedules import ReduceLROnPlateau
        >>> s = ReduceLROnPlateau(1.0, factor=0.5, patience=1)
        >>> for loss in [3.0, 2.0, 2.0, 2.0, 2.0, 1.0]:
        ...     _ = s.update(loss)
        ...     print(s(0), s.num_bad_epochs)
        1.0 0
        1.0 0
        1.0 1
        0.5 0
        0.5 1
        0.5 0
    """

    def __init__(self, lr: float, mode: str = "min", factor: float = 0.1, patience: int = 10,
                 threshold: float = 1e-4, threshold_mode: str = "rel", cooldown: int = 0,
                 min_lr: float = 0.0, eps: float = 1e-8) -> None:
        self.lr = _nonneg("lr", lr)
        self.mode = _choice("mode", mode, ("min", "max"))
        self.factor = _in_range("factor", factor, 0.0, 1.0, hi_open=True)
        self.patience = _int("patience", patience, 0)
        self.threshold = _nonneg("threshold", threshold)
        self.threshold_mode = _choice("threshold_mode", threshold_mode, ("rel", "abs"))
        self.cooldown = _int("cooldown", cooldown, 0)
        self.min_lr = _nonneg("min_lr", min_lr)
        self.eps = _nonneg("eps", eps)
        self.current_lr = self.lr
        self.best = math.inf if self.mode == "min" else -math.inf
        self.num_bad_epochs = 0
        self.cooldown_counter = 0
        self.last_epoch = 0

    _STATE = frozenset({"current_lr", "best", "num_bad_epochs", "cooldown_counter",
                        "last_epoch"})

    @property
    def in_cooldown(self) -> bool:
        return self.cooldown_counter > 0

    def _is_better(self, a: float, best: float) -> bool:
        if self.mode == "min" and self.threshold_mode == "rel":
            return a < best * (1.0 - self.threshold)
        if self.mode == "min":
            return a < best - self.threshold
        if self.threshold_mode == "rel":
            return a > best * (self.threshold + 1.0)
        return a > best + self.threshold

    def update(self, loss: Any) -> bool:
        """Record one value of the monitored quantity (normally once per epoch).
        Returns True if this call reduced the rate."""
        current = _loss(loss)
        self.last_epoch += 1
        if self._is_better(current, self.best):
            self.best = current
            self.num_bad_epochs = 0
        else:
            self.num_bad_epochs += 1
        if self.in_cooldown:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0
        reduced = False
        if self.num_bad_epochs > self.patience:
            old = self.current_lr
            new = max(old * self.factor, self.min_lr)
            if old - new > self.eps:
                self.current_lr = new
                reduced = True
            self.cooldown_counter = self.cooldown
            self.num_bad_epochs = 0
        return reduced

    def state_dict(self) -> dict[str, Any]:
        """The mutable state (not the settings): ``current_lr``, ``best``,
        ``num_bad_epochs``, ``cooldown_counter``, ``last_epoch``."""
        return {k: getattr(self, k) for k in sorted(self._STATE)}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        d = _check_state("ReduceLROnPlateau", state_dict, set(self._STATE))
        values = {
            "current_lr": _nonneg("current_lr", d["current_lr"]),
            "best": _real("best", d["best"]),
            "num_bad_epochs": _int("num_bad_epochs", d["num_bad_epochs"], 0),
            "cooldown_counter": _int("cooldown_counter", d["cooldown_counter"], 0),
            "last_epoch": _int("last_epoch", d["last_epoch"], 0),
        }
        self.__dict__.update(values)

    def __repr__(self) -> str:
        return (
            f"ReduceLROnPlateau(lr={self.lr!r}, mode={self.mode!r}, factor={self.factor!r}, "
            f"patience={self.patience!r}, threshold={self.threshold!r}, "
            f"threshold_mode={self.threshold_mode!r}, cooldown={self.cooldown!r}, "
            f"min_lr={self.min_lr!r}, eps={self.eps!r}; current_lr={self.current_lr!r})"
        )


class BoldDriver(_LossDriven):
    r"""The "bold driver": grow the rate while the loss falls, cut it when it rises.

    After each ``update(loss)``, with :math:`\ell^*` the last accepted loss:

    .. math::
        \eta \leftarrow \begin{cases}
          \min(\eta\,\rho^{+}, \eta_\max) & \ell < \ell^* \\
          \eta & \ell^* \le \ell \le \ell^* + \tau |\ell^*| \\
          \max(\eta\,\rho^{-}, \eta_\min) & \ell > \ell^* + \tau |\ell^*|
                                            \text{ or } \ell \text{ not finite}
        \end{cases}

    with :math:`\rho^+` = ``increase``, :math:`\rho^-` = ``decrease`` and
    :math:`\tau` = ``tolerance``. The first finite loss is accepted as the reference.

    Vogl et al., "Accelerating the convergence of the back-propagation method",
    Biological Cybernetics 59, 1988; Battiti, "Accelerated backpropagation learning:
    two optimization methods", Complex Systems 3, 1989 (who named it).

    **Rollback.** Attached to the parameters (``params=``, ``optimizer=``, or
    :meth:`attach` once the optimizer exists, since the optimizer takes the schedule
    as its ``lr``), every accepted loss keeps a copy of the parameters and of
    ``optimizer.state_dict()``; a rise then puts both back to that last good point
    (parameters in place with ``np.copyto``, the optimizer through
    ``load_state_dict``, keeping the optimizer's current hyperparameters and
    schedules) and the reference loss stays the good one. Without an attachment the
    rise is simply taken: the rising loss becomes the reference (a non-finite loss
    never does).

    ``update(loss)`` returns True when the parameters are where ``loss`` was measured
    (step with the gradient computed there) and False after a rollback (that gradient is
    stale: compute a new one at the restored point). ``schedule(t)`` returns the current
    rate whatever ``t`` is.

    Example:
        >>> import numpy as np, gradstep as gs
        >>> from gradstep.schedules import BoldDriver
        >>> w = np.array([3.0])
        >>> driver = BoldDriver(1.2, increase=1.1, decrease=0.5)
        >>> opt = gs.SGD([w], lr=driver)
        >>> driver.attach(opt)          # roll w (and the optimizer state) back on a rise
        >>> for _ in range(6):
        ...     loss, grad = float(w @ w), 2 * w
        ...     if driver.update(loss):
        ...         opt.step([grad])
        >>> driver.n_rejected > 0, bool(abs(w[0]) < 3.0)
        (True, True)
    """

    def __init__(self, lr: float, increase: float = 1.05, decrease: float = 0.5, *,
                 tolerance: float = 0.0, min_lr: float = 0.0, max_lr: float = math.inf,
                 optimizer: Optimizer | None = None,
                 params: Sequence[np.ndarray] | None = None) -> None:
        self.lr = _nonneg("lr", lr)
        inc = _real("increase", increase)
        if not (math.isfinite(inc) and inc >= 1.0):
            raise ValueError(f"Invalid increase: {increase!r} (expected a finite number >= 1)")
        self.increase = inc
        self.decrease = _in_range("decrease", decrease, 0.0, 1.0, lo_open=True, hi_open=True)
        self.tolerance = _nonneg("tolerance", tolerance)
        self.min_lr = _nonneg("min_lr", min_lr)
        mx = _real("max_lr", max_lr)
        if not mx >= self.min_lr:
            raise ValueError(
                f"Invalid max_lr: {max_lr!r} (expected max_lr >= min_lr = {self.min_lr!r})"
            )
        self.max_lr = mx
        self.current_lr = self.lr
        self.reference_loss: float | None = None
        self.n_accepted = 0
        self.n_rejected = 0
        self._optimizer: Any = None
        self._params: list[np.ndarray] | None = None
        self._param_snapshot: list[np.ndarray] | None = None
        self._optimizer_snapshot: dict[str, Any] | None = None
        if optimizer is not None or params is not None:
            self.attach(optimizer, params)

    _STATE = frozenset({"current_lr", "reference_loss", "n_accepted", "n_rejected",
                        "param_snapshot", "optimizer_snapshot"})

    def attach(self, optimizer: Optimizer | None = None,
               params: Sequence[np.ndarray] | None = None) -> None:
        """Roll these parameters (default: all of ``optimizer``'s) and the optimizer's
        state back to the last accepted point when the loss rises. Any previous
        snapshot is dropped; the next accepted loss takes a new one."""
        if optimizer is not None and not (
            callable(getattr(optimizer, "state_dict", None))
            and callable(getattr(optimizer, "load_state_dict", None))
        ):
            raise TypeError(
                f"Invalid optimizer: {type(optimizer).__name__} (expected an object with "
                "state_dict() and load_state_dict(), e.g. a gradstep optimizer)"
            )
        if params is None:
            if optimizer is None:
                raise ValueError("attach() needs an optimizer, params, or both")
            params = [p for g in optimizer.param_groups for p in g["params"]]
        if isinstance(params, np.ndarray) or not isinstance(params, Sequence):
            raise TypeError(f"Invalid params: {type(params).__name__} (expected a list of arrays)")
        for i, p in enumerate(params):
            if not isinstance(p, np.ndarray):
                raise TypeError(f"Invalid params[{i}]: {type(p).__name__} (expected numpy.ndarray)")
            if not p.flags.writeable:
                raise ValueError(
                    f"Invalid params[{i}]: a read-only array (rollback writes in place)"
                )
        self._optimizer = optimizer
        self._params = list(params)
        self._param_snapshot = None
        self._optimizer_snapshot = None

    def detach(self) -> None:
        """Stop rolling back (and drop the snapshot)."""
        self._optimizer = None
        self._params = None
        self._param_snapshot = None
        self._optimizer_snapshot = None

    @property
    def attached(self) -> bool:
        return self._params is not None

    def _snapshot(self) -> None:
        if self._params is None:
            return
        if self._param_snapshot is None or len(self._param_snapshot) != len(self._params) or any(
            s.shape != p.shape or s.dtype != p.dtype
            for s, p in zip(self._param_snapshot, self._params)
        ):
            self._param_snapshot = [np.array(p, copy=True) for p in self._params]
        else:
            for s, p in zip(self._param_snapshot, self._params):
                np.copyto(s, p)
        if self._optimizer is not None:
            sd = self._optimizer.state_dict()  # arrays copied by the optimizer
            sd["param_groups"] = [{"params": list(g["params"])} for g in sd["param_groups"]]
            self._optimizer_snapshot = sd

    def _rollback(self) -> bool:
        if self._params is None or self._param_snapshot is None:
            return False
        for p, s in zip(self._params, self._param_snapshot):
            np.copyto(p, s)
        if self._optimizer is not None and self._optimizer_snapshot is not None:
            snap = self._optimizer_snapshot
            groups = [
                {**{k: x for k, x in live.items() if k != "params"}, "params": saved["params"]}
                for live, saved in zip(self._optimizer.param_groups, snap["param_groups"])
            ]
            restored = {k: x for k, x in snap.items() if k != "param_groups"}
            restored["param_groups"] = groups
            # load_state_dict copies the arrays, so the snapshot stays intact for reuse.
            self._optimizer.load_state_dict(restored)
        return True

    def update(self, loss: Any) -> bool:
        """Judge the loss at the current parameters. Returns False if the parameters
        were rolled back (the gradient computed with this loss is then stale)."""
        value = _loss(loss)
        finite = math.isfinite(value)
        ref = self.reference_loss
        if ref is None:
            if finite:
                self.reference_loss = value
                self.n_accepted += 1
                self._snapshot()
            else:
                self.current_lr = max(self.current_lr * self.decrease, self.min_lr)
                self.n_rejected += 1
            return True
        if finite and value <= ref + self.tolerance * abs(ref):
            if value < ref:
                self.current_lr = min(self.current_lr * self.increase, self.max_lr)
            self.reference_loss = value
            self.n_accepted += 1
            self._snapshot()
            return True
        self.current_lr = max(self.current_lr * self.decrease, self.min_lr)
        self.n_rejected += 1
        if self._rollback():
            return False
        if finite:
            self.reference_loss = value
        return True

    def state_dict(self) -> dict[str, Any]:
        """The state, including the last good point's copies when attached (so a resumed
        run can still roll back). Arrays are copies."""
        return {
            "current_lr": self.current_lr,
            "reference_loss": self.reference_loss,
            "n_accepted": self.n_accepted,
            "n_rejected": self.n_rejected,
            "param_snapshot": (
                None if self._param_snapshot is None
                else [np.array(s, copy=True) for s in self._param_snapshot]
            ),
            "optimizer_snapshot": copy.deepcopy(self._optimizer_snapshot),
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        d = _check_state("BoldDriver", state_dict, set(self._STATE))
        current = _nonneg("current_lr", d["current_lr"])
        ref = d["reference_loss"]
        ref = None if ref is None else _real("reference_loss", ref)
        n_acc = _int("n_accepted", d["n_accepted"], 0)
        n_rej = _int("n_rejected", d["n_rejected"], 0)
        snap = d["param_snapshot"]
        if snap is not None:
            if self._params is None:
                raise ValueError(
                    "state_dict holds a parameter snapshot but this BoldDriver is not "
                    "attached; call attach() first"
                )
            if len(snap) != len(self._params) or any(
                np.shape(s) != p.shape for s, p in zip(snap, self._params)
            ):
                raise ValueError(
                    "Invalid state_dict: param_snapshot does not match the attached "
                    "parameters' count and shapes"
                )
            snap = [np.array(s, dtype=p.dtype, copy=True) for s, p in zip(snap, self._params)]
        self.current_lr = current
        self.reference_loss = ref
        self.n_accepted = n_acc
        self.n_rejected = n_rej
        self._param_snapshot = snap
        self._optimizer_snapshot = copy.deepcopy(d["optimizer_snapshot"])

    def __getstate__(self) -> dict[str, Any]:
        # The attachment (live arrays, optimizer) is not part of the schedule's value.
        state = dict(self.__dict__)
        state["_optimizer"] = None
        state["_params"] = None
        return state

    def __repr__(self) -> str:
        return (
            f"BoldDriver(lr={self.lr!r}, increase={self.increase!r}, "
            f"decrease={self.decrease!r}, tolerance={self.tolerance!r}, "
            f"min_lr={self.min_lr!r}, max_lr={self.max_lr!r}; "
            f"current_lr={self.current_lr!r}, attached={self.attached})"
        )


# -- composition ---------------------------------------------------------------------------


def _forward_update(child: Any, loss: Any, step: int) -> Any:
    if isinstance(child, (Join, LinearWarmup)):
        return child.update(loss, step=step)
    if isinstance(child, _LossDriven):
        return child.update(loss)
    return None


def _is_loss_driven(child: Any) -> bool:
    if isinstance(child, (Join, LinearWarmup)):
        return child.loss_driven
    return isinstance(child, _LossDriven)


class _Composite(Schedule):
    """Remembers the last single step it was evaluated at, so ``update(loss)`` can
    reach the loss-driven schedule active at that step."""

    _last_step: list[int]

    def __call__(self, step: Any) -> Any:
        t, scalar = _steps(step)
        if scalar:
            self._last_step[0] = int(t)
            return float(self._values(t.reshape(1))[0])
        return self._values(t)

    def _resolve_step(self, step: Any) -> int:
        if step is None:
            return self._last_step[0]
        return _int("step", step, 0)


@dataclass(frozen=True)
class Join(_Composite):
    r"""Run schedules one after another: schedule ``i`` runs from step
    ``boundaries[i-1]`` (``0`` for the first) and sees its own step count from 0.

    .. math::
        \eta_t = s_i(t - b_{i-1}) \quad\text{for } b_{i-1} \le t < b_i

    As ``optax.join_schedules`` and ``torch.optim.lr_scheduler.SequentialLR``. Numbers
    among ``schedules`` are constants. A loss-driven schedule inside keeps working:
    ``update(loss, step=None)`` forwards to the schedule active at ``step`` (default:
    the step this join was last evaluated at with a single integer, i.e. the
    optimizer's latest step) and does nothing while no loss-driven schedule is active.
    ``cycle_ends`` collects the cycle ends of the cyclic schedules inside.

    Example:
        >>> from gradstep.schedules import join, constant, exponential_decay
        >>> s = join([constant(1.0), exponential_decay(1.0, gamma=0.5)], boundaries=[2])
        >>> [s(t) for t in range(5)]
        [1.0, 1.0, 1.0, 0.5, 0.25]
    """

    schedules: Sequence[ScheduleLike]
    boundaries: Sequence[int]
    _last_step: list[int] = field(default_factory=lambda: [0], init=False, repr=False,
                                  compare=False)

    def __post_init__(self) -> None:
        items = self.schedules
        if isinstance(items, (str, bytes)) or not isinstance(items, Sequence) or callable(items):
            raise TypeError(f"Invalid schedules: {items!r} (expected a list of schedules)")
        if not items:
            raise ValueError("Invalid schedules: [] (expected at least one schedule)")
        scheds = tuple(_as_schedule(f"schedules[{i}]", s) for i, s in enumerate(items))
        b = _int_sequence("boundaries", self.boundaries, 1)
        if len(b) != len(scheds) - 1:
            raise ValueError(
                f"Invalid boundaries: {list(b)!r} ({len(b)} boundaries for {len(scheds)} "
                f"schedules; expected len(boundaries) == len(schedules) - 1)"
            )
        object.__setattr__(self, "schedules", scheds)
        object.__setattr__(self, "boundaries", b)

    @property
    def _items(self) -> tuple[Any, ...]:
        return tuple(self.schedules)

    @property
    def _starts(self) -> tuple[int, ...]:
        return (0, *self.boundaries)

    def _values(self, t: Steps) -> Values:
        flat = t.reshape(-1)
        which = np.searchsorted(np.asarray(self.boundaries, dtype=np.int64), flat, side="right")
        out = np.empty(flat.shape)
        for i, (child, start) in enumerate(zip(self._items, self._starts)):
            sel = which == i
            if sel.any():
                out[sel] = _eval(child, flat[sel] - start)
        return out.reshape(t.shape)

    @property
    def loss_driven(self) -> bool:
        """Whether a loss-driven schedule is inside (then ``update`` matters)."""
        return any(_is_loss_driven(s) for s in self._items)

    def update(self, loss: Any, step: int | None = None) -> Any:
        """Forward ``loss`` to the loss-driven schedule active at ``step``; returns its
        result (None if the active schedule is not loss-driven)."""
        s = self._resolve_step(step)
        i = int(np.searchsorted(np.asarray(self.boundaries, dtype=np.int64), s, side="right"))
        return _forward_update(self._items[i], loss, s - self._starts[i])

    def state_dict(self) -> dict[str, Any]:
        """The loss-driven schedules' states, by position, and the last step seen."""
        return {
            "last_step": self._last_step[0],
            "schedules": {i: s.state_dict()
                          for i, s in enumerate(self._items) if _is_loss_driven(s)},
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        d = _check_state("Join", state_dict, {"last_step", "schedules"})
        last = _int("last_step", d["last_step"], 0)
        for i, sd in dict(d["schedules"]).items():
            k = _int("schedules index", i, 0)
            if k >= len(self._items) or not _is_loss_driven(self._items[k]):
                raise ValueError(
                    f"Invalid state_dict: schedules[{k}] is not a loss-driven schedule"
                )
            self._items[k].load_state_dict(sd)
        self._last_step[0] = last

    def cycle_ends(self, n_steps: int) -> list[int]:
        """The cycle ends (``< n_steps``) of the cyclic schedules inside, in join steps."""
        n = _int("n_steps", n_steps, 0)
        cyclic_children = [hasattr(s, "cycle_ends") for s in self._items]
        if not any(cyclic_children):
            raise TypeError(f"{self!r} holds no cyclic schedule; it has no cycle ends")
        ends: list[int] = []
        stops = (*self.boundaries, n)
        for child, start, stop, has in zip(self._items, self._starts, stops, cyclic_children):
            stop = min(stop, n)
            if has and stop > start:
                ends.extend(start + e for e in child.cycle_ends(stop - start))
        return ends


@dataclass(frozen=True)
class LinearWarmup(_Composite):
    r"""Linear warmup in front of a schedule (see :func:`linear_warmup`).

    .. math::
        \eta_t = \begin{cases}
          s(0)\,\bigl(f_0 + (1 - f_0)\,t / W\bigr) & t < W \\
          s(t - W) & t \ge W
        \end{cases}

    The inner schedule starts after the warmup, from its own step 0 (as
    ``join([ramp, schedule], [W])``, the usual "warmup, then decay").
    """

    schedule: Callable[[int], float]
    warmup_steps: int
    start_factor: float = 0.0
    _last_step: list[int] = field(default_factory=lambda: [0], init=False, repr=False,
                                  compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "schedule", _as_schedule("schedule_or_lr", self.schedule))
        object.__setattr__(self, "warmup_steps", _int("warmup_steps", self.warmup_steps, 0))
        object.__setattr__(
            self, "start_factor", _in_range("start_factor", self.start_factor, 0.0, 1.0)
        )

    def _values(self, t: Steps) -> Values:
        w = self.warmup_steps
        flat = t.reshape(-1)
        out = np.empty(flat.shape)
        ramp = flat < w
        if ramp.any():
            target = _eval(self.schedule, np.zeros(1, dtype=np.int64))[0]
            # As torch's LinearLR closed form: start + (end - start) * t / T.
            out[ramp] = target * (
                self.start_factor + (1.0 - self.start_factor) * flat[ramp] / w
            )
        rest = ~ramp
        if rest.any():
            out[rest] = _eval(self.schedule, flat[rest] - w)
        return out.reshape(t.shape)

    @property
    def loss_driven(self) -> bool:
        return _is_loss_driven(self.schedule)

    def update(self, loss: Any, step: int | None = None) -> Any:
        """Forward ``loss`` to a loss-driven inner schedule once the warmup is over
        (before, the call does nothing and returns None)."""
        s = self._resolve_step(step)
        if s < self.warmup_steps:
            return None
        return _forward_update(self.schedule, loss, s - self.warmup_steps)

    def state_dict(self) -> dict[str, Any]:
        inner = self.schedule.state_dict() if self.loss_driven else None  # type: ignore[attr-defined]
        return {"last_step": self._last_step[0], "schedule": inner}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        d = _check_state("LinearWarmup", state_dict, {"last_step", "schedule"})
        last = _int("last_step", d["last_step"], 0)
        if d["schedule"] is not None:
            if not self.loss_driven:
                raise ValueError("Invalid state_dict: the inner schedule is not loss-driven")
            self.schedule.load_state_dict(d["schedule"])  # type: ignore[attr-defined]
        self._last_step[0] = last

    def cycle_ends(self, n_steps: int) -> list[int]:
        """The inner schedule's cycle ends (``< n_steps``), shifted by the warmup."""
        n = _int("n_steps", n_steps, 0)
        if not hasattr(self.schedule, "cycle_ends"):
            raise TypeError(f"{self!r} holds no cyclic schedule; it has no cycle ends")
        w = self.warmup_steps
        if n <= w:
            return []
        return [w + e for e in self.schedule.cycle_ends(n - w)]


# -- the public names of DESIGN.md -------------------------------------------------------

constant = Constant
step_decay = StepDecay
multistep_decay = MultistepDecay
piecewise_constant = PiecewiseConstant
inverse_time_decay = InverseTimeDecay
inverse_sqrt_decay = InverseSqrtDecay
exponential_decay = ExponentialDecay
polynomial_decay = PolynomialDecay
cosine_decay = CosineDecay
cyclic = Cyclic
cosine_warm_restarts = CosineWarmRestarts
one_cycle = OneCycle
one_cycle_momentum = OneCycleMomentum
join = Join
reduce_lr_on_plateau = ReduceLROnPlateau
bold_driver = BoldDriver


def linear_warmup(schedule_or_lr: ScheduleLike, warmup_steps: int,
                  start_factor: float = 0.0) -> LinearWarmup:
    r"""Ramp linearly from ``start_factor * s(0)`` up to ``s(0)`` over ``warmup_steps``
    steps, then run the schedule ``s`` (or hold the number ``lr``) from its step 0.

    .. math::
        \eta_t = \begin{cases}
          s(0)\,\bigl(f_0 + (1 - f_0)\,t / W\bigr) & t < W \\
          s(t - W) & t \ge W
        \end{cases}

    Goyal et al., "Accurate, Large Minibatch SGD: Training ImageNet in 1 Hour", 2017
    (gradual warmup). Around a number it equals
    ``torch.optim.lr_scheduler.LinearLR(start_factor, end_factor=1.0,
    total_iters=warmup_steps)`` (torch requires ``start_factor > 0``; here 0 is allowed
    and is the default). Around a loss-driven schedule, ``update(loss)`` reaches it once
    the warmup is over; around a cyclic one, ``cycle_ends`` is shifted by the warmup.

    Example:
        >>> from gradstep.schedules import linear_warmup, cosine_decay
        >>> s = linear_warmup(cosine_decay(1.0, decay_steps=2), warmup_steps=4)
        >>> [s(t) for t in range(7)]
        [0.0, 0.25, 0.5, 0.75, 1.0, 0.5, 0.0]
    """
    return LinearWarmup(schedule_or_lr, warmup_steps, start_factor)  # type: ignore[arg-type]
