"""Classic 2-D test surfaces and the paths gradstep's optimizers take across them.

Every optimizer starts from the same point on each surface and runs for a fixed
budget of steps. A run is judged honestly: it *reached* the goal only if it is
inside the tolerance ball at the end and stayed there from the reported step on;
it *diverged* if a coordinate became non-finite or left a generous box around the
plot; otherwise it is reported as stalled or still moving, with where it ended.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

import gradstep as gs

__all__ = [
    "OPTIMIZERS",
    "SURFACES",
    "Outcome",
    "PathResult",
    "Surface",
    "run_path",
]

Grad = Callable[[float, float], tuple[float, float]]
Value = Callable[[np.ndarray, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Minimum:
    """A point the table reports on: where it is and what to call it."""

    name: str
    xy: tuple[float, float]
    tol: float


@dataclass(frozen=True)
class Surface:
    """A 2-D function, its gradient, where paths start, and what counts as success.

    ``goals`` are the minima (or, for the saddle, the descent direction) a path may
    reach; ``lrs`` holds one learning rate per optimizer label, picked so that each
    optimizer makes a fair showing at this surface's scale (shown in the table).
    """

    key: str
    title: str
    formula: str
    f: Value
    grad: Grad
    start: tuple[float, float]
    xlim: tuple[float, float]
    ylim: tuple[float, float]
    goals: tuple[Minimum, ...]
    lrs: dict[str, float]
    log_contours: bool = True
    unbounded: bool = False  # the saddle: success is escaping downhill, f < escape_f
    escape_f: float = -1.0
    steps: int = 3000
    marks: tuple[tuple[str, tuple[float, float]], ...] = field(default_factory=tuple)

    def value(self, x: float, y: float) -> float:
        return float(self.f(np.asarray(x, dtype=float), np.asarray(y, dtype=float)))


# -- the functions -------------------------------------------------------------------


def _rosenbrock(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return (1.0 - x) ** 2 + 100.0 * (y - x * x) ** 2


def _rosenbrock_grad(x: float, y: float) -> tuple[float, float]:
    r = y - x * x
    return -2.0 * (1.0 - x) - 400.0 * x * r, 200.0 * r


def _beale(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return (
        (1.5 - x + x * y) ** 2
        + (2.25 - x + x * y * y) ** 2
        + (2.625 - x + x * y**3) ** 2
    )


def _beale_grad(x: float, y: float) -> tuple[float, float]:
    t1 = 1.5 - x + x * y
    t2 = 2.25 - x + x * y * y
    t3 = 2.625 - x + x * y**3
    gx = 2.0 * (t1 * (y - 1.0) + t2 * (y * y - 1.0) + t3 * (y**3 - 1.0))
    gy = 2.0 * x * (t1 + 2.0 * t2 * y + 3.0 * t3 * y * y)
    return gx, gy


def _saddle(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return x * x - y * y


def _saddle_grad(x: float, y: float) -> tuple[float, float]:
    return 2.0 * x, -2.0 * y


# Two wells on a gentle bowl: a narrow deep one (the global minimum) and a wide
# shallow one. Where an optimizer settles says how it treats sharp minima.
_SHARP = (-0.9, 0.9, 1.6, 0.18)  # centre x, centre y, depth, width
_FLAT = (1.2, -0.6, 1.0, 0.9)
_BOWL = 0.08


def _wells(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    out = _BOWL * (x * x + y * y)
    for cx, cy, depth, width in (_SHARP, _FLAT):
        out = out - depth * np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2.0 * width * width))
    return out


def _wells_grad(x: float, y: float) -> tuple[float, float]:
    gx = 2.0 * _BOWL * x
    gy = 2.0 * _BOWL * y
    for cx, cy, depth, width in (_SHARP, _FLAT):
        w2 = width * width
        e = depth * math.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2.0 * w2))
        gx += e * (x - cx) / w2
        gy += e * (y - cy) / w2
    return gx, gy


def _local_min(grad: Grad, x: float, y: float, lr: float = 1e-2,
               n: int = 20000) -> tuple[float, float]:
    """Plain gradient descent to locate a well's exact bottom (run once, at import)."""
    for _ in range(n):
        gx, gy = grad(x, y)
        x, y = x - lr * gx, y - lr * gy
        if gx * gx + gy * gy < 1e-24:
            break
    return x, y


# The bowl and the other well shift each well's bottom a little off its centre.
_SHARP_MIN = _local_min(_wells_grad, _SHARP[0], _SHARP[1], lr=5e-3)
_FLAT_MIN = _local_min(_wells_grad, _FLAT[0], _FLAT[1], lr=0.2)


# -- the optimizers ------------------------------------------------------------------

# (label, factory(params, lr)); the same labels key every surface's lrs table.
OPTIMIZERS: tuple[tuple[str, Callable[[list[np.ndarray], float], gs.Optimizer]], ...] = (
    ("SGD", lambda p, lr: gs.SGD(p, lr=lr)),
    ("SGD+Nesterov", lambda p, lr: gs.SGD(p, lr=lr, momentum=0.9, nesterov=True)),
    ("Adagrad", lambda p, lr: gs.Adagrad(p, lr=lr)),
    ("Adadelta", lambda p, lr: gs.Adadelta(p, lr=lr)),
    ("RMSprop", lambda p, lr: gs.RMSprop(p, lr=lr)),
    ("Rprop", lambda p, lr: gs.Rprop(p, lr=lr)),
    ("Adam", lambda p, lr: gs.Adam(p, lr=lr)),
    ("AdamW", lambda p, lr: gs.AdamW(p, lr=lr)),
    ("Adamax", lambda p, lr: gs.Adamax(p, lr=lr)),
    ("NAdam", lambda p, lr: gs.NAdam(p, lr=lr)),
    ("RAdam", lambda p, lr: gs.RAdam(p, lr=lr)),
)


def _lrs(**kw: float) -> dict[str, float]:
    names = {
        "SGD": "SGD",
        "Nesterov": "SGD+Nesterov",
        "Adagrad": "Adagrad",
        "Adadelta": "Adadelta",
        "RMSprop": "RMSprop",
        "Rprop": "Rprop",
        "Adam": "Adam",
        "AdamW": "AdamW",
        "Adamax": "Adamax",
        "NAdam": "NAdam",
        "RAdam": "RAdam",
    }
    out = {names[k]: v for k, v in kw.items()}
    missing = {label for label, _ in OPTIMIZERS} - set(out)
    assert not missing, missing
    return out


SURFACES: tuple[Surface, ...] = (
    Surface(
        key="rosenbrock",
        title="Rosenbrock",
        formula=r"$(1-x)^2 + 100\,(y-x^2)^2$",
        f=_rosenbrock,
        grad=_rosenbrock_grad,
        start=(-1.5, 2.0),
        xlim=(-2.0, 2.0),
        ylim=(-1.0, 3.0),
        goals=(Minimum("minimum", (1.0, 1.0), 1e-2),),
        lrs=_lrs(SGD=2e-3, Nesterov=1e-3, Adagrad=1.0, Adadelta=1.0, RMSprop=3e-3,
                 Rprop=1e-2, Adam=3e-2, AdamW=3e-2, Adamax=0.1, NAdam=1e-2, RAdam=1e-2),
        steps=5000,
    ),
    Surface(
        key="beale",
        title="Beale",
        formula=r"$(1.5-x+xy)^2 + (2.25-x+xy^2)^2 + (2.625-x+xy^3)^2$",
        f=_beale,
        grad=_beale_grad,
        start=(1.0, 1.4),
        xlim=(-1.0, 4.5),
        ylim=(-1.5, 2.0),
        goals=(Minimum("minimum", (3.0, 0.5), 1e-2),),
        lrs=_lrs(SGD=3e-2, Nesterov=3e-3, Adagrad=1.0, Adadelta=1.0, RMSprop=1e-2,
                 Rprop=1e-2, Adam=0.1, AdamW=0.1, Adamax=0.3, NAdam=3e-2, RAdam=1e-2),
        steps=3000,
    ),
    Surface(
        key="saddle",
        title="Saddle",
        formula=r"$x^2 - y^2$",
        f=_saddle,
        grad=_saddle_grad,
        start=(-1.5, 1e-3),
        xlim=(-2.0, 2.0),
        ylim=(-2.0, 2.0),
        goals=(Minimum("escaped", (0.0, 0.0), 0.0),),
        lrs=_lrs(SGD=1e-2, Nesterov=1e-2, Adagrad=0.1, Adadelta=1.0, RMSprop=1e-2,
                 Rprop=1e-2, Adam=1e-2, AdamW=1e-2, Adamax=1e-2, NAdam=1e-2, RAdam=1e-2),
        log_contours=False,
        unbounded=True,
        escape_f=-1.0,
        steps=1500,
        marks=(("saddle point", (0.0, 0.0)),),
    ),
    Surface(
        key="sharp_flat",
        title="Sharp and flat minima",
        formula=r"bowl $-$ narrow deep well $-$ wide shallow well",
        f=_wells,
        grad=_wells_grad,
        start=(-2.4, 2.2),
        xlim=(-3.0, 3.0),
        ylim=(-2.5, 2.8),
        goals=(
            Minimum("sharp", _SHARP_MIN, 2e-2),
            Minimum("flat", _FLAT_MIN, 2e-2),
        ),
        lrs=_lrs(SGD=0.3, Nesterov=0.1, Adagrad=0.3, Adadelta=1.0, RMSprop=1e-2,
                 Rprop=1e-2, Adam=0.1, AdamW=0.1, Adamax=0.1, NAdam=3e-2, RAdam=0.1),
        log_contours=False,
        steps=2000,
    ),
)


# -- running a path ------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """How a path ended, in words for the table."""

    status: str  # "reached", "escaped", "diverged", "stalled", "oscillating", "zigzag", "moving"
    goal: str  # which goal was reached (sharp / flat / minimum) or ""
    step: int  # the step it reached (and stayed) or diverged at; -1 if neither
    final: tuple[float, float]
    final_f: float

    dist: float = math.nan  # from the nearest goal, when not reached

    def describe(self) -> str:
        if self.status == "reached":
            what = "" if self.goal == "minimum" else f" the {self.goal} minimum"
            return f"reached{what} at step {self.step}"
        if self.status == "escaped":
            return f"escaped (f < -1) at step {self.step}"
        if self.status == "diverged":
            return f"DIVERGED at step {self.step}"
        how = {
            "stalled": "stalled",
            "oscillating": "oscillating",
            "zigzag": "zig-zagging",
            "moving": "still moving",
        }[self.status]
        where = self.goal if self.goal == "minimum" else f"{self.goal} minimum"
        if self.goal == "escaped":
            return f"not escaped: {how}, f={self.final_f:.3g}"
        return f"not reached: {how}, {self.dist:.2g} from the {where}"


@dataclass
class PathResult:
    label: str
    lr: float
    xy: np.ndarray  # (n + 1, 2), the start included; stops early on divergence or escape
    outcome: Outcome
    seconds: float


def _box(s: Surface) -> tuple[float, float, float, float]:
    wx = s.xlim[1] - s.xlim[0]
    wy = s.ylim[1] - s.ylim[0]
    return s.xlim[0] - 50 * wx, s.xlim[1] + 50 * wx, s.ylim[0] - 50 * wy, s.ylim[1] + 50 * wy


def run_path(surface: Surface, label: str, make: Callable[[list[np.ndarray], float], Any],
             lr: float | None = None, steps: int | None = None) -> PathResult:
    """Run one optimizer from the surface's start and judge where it went."""
    import time

    lr = surface.lrs[label] if lr is None else lr
    steps = surface.steps if steps is None else steps
    p = np.array(surface.start, dtype=np.float64)
    g = np.zeros(2)
    opt = make([p], lr)
    xy = np.empty((steps + 1, 2))
    xy[0] = p
    x0, x1, y0, y1 = _box(surface)
    diverged_at = -1
    escaped_at = -1
    n = steps
    t0 = time.perf_counter()
    for t in range(1, steps + 1):
        g[0], g[1] = surface.grad(float(p[0]), float(p[1]))
        if not (math.isfinite(g[0]) and math.isfinite(g[1])):
            diverged_at, n = t - 1, t - 1
            break
        opt.step([g])
        xy[t] = p
        px, py = float(p[0]), float(p[1])
        if not (x0 < px < x1 and y0 < py < y1):  # also catches NaN
            diverged_at, n = t, t
            break
        if surface.unbounded:
            if escaped_at < 0 and surface.value(px, py) < surface.escape_f:
                escaped_at = t
            # Once out of the picture an escaped path has nothing more to show.
            if escaped_at >= 0 and not (
                surface.xlim[0] <= px <= surface.xlim[1]
                and surface.ylim[0] <= py <= surface.ylim[1]
            ):
                n = t
                break
    seconds = time.perf_counter() - t0
    xy = xy[: n + 1]
    final = (float(xy[-1, 0]), float(xy[-1, 1]))
    final_f = surface.value(*final)
    if diverged_at >= 0 and escaped_at < 0:
        outcome = Outcome("diverged", "", diverged_at, final, final_f)
        return PathResult(label, lr, xy, outcome, seconds)
    if escaped_at >= 0:
        return PathResult(label, lr, xy, Outcome("escaped", "escaped", escaped_at, final, final_f),
                          seconds)
    for goal in surface.goals:
        if surface.unbounded:
            break
        d = np.hypot(xy[:, 0] - goal.xy[0], xy[:, 1] - goal.xy[1])
        if d[-1] <= goal.tol:
            outside = np.nonzero(d > goal.tol)[0]
            step = int(outside[-1]) + 1 if outside.size else 0
            return PathResult(label, lr, xy, Outcome("reached", goal.name, step, final, final_f),
                              seconds)
    # Not there: did it stop moving, or is it still on its way?
    tail = xy[-max(2, len(xy) // 10):]
    moved = float(np.hypot(*(tail[-1] - tail[0])))
    travelled = float(np.hypot(*np.diff(tail, axis=0).T).sum())
    scale = max(surface.xlim[1] - surface.xlim[0], surface.ylim[1] - surface.ylim[0])
    if moved < 1e-4 * scale:
        status = "stalled" if travelled < 1e-3 * scale else "oscillating"
    else:
        status = "zigzag" if travelled > 20 * moved else "moving"
    dists = [(math.hypot(final[0] - g.xy[0], final[1] - g.xy[1]), g.name) for g in surface.goals]
    dist, name = min(dists)
    return PathResult(label, lr, xy, Outcome(status, name, -1, final, final_f, dist), seconds)


MakeOpt = Callable[[list[np.ndarray], float], Any]


def run_surface(surface: Surface, steps: int | None = None,
                optimizers: Sequence[tuple[str, MakeOpt]] = OPTIMIZERS) -> list[PathResult]:
    return [run_path(surface, label, make, steps=steps) for label, make in optimizers]
