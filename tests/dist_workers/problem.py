"""The model, data and optimizer settings shared by the distributed workers and by the
single-process reference in tests/test_distributed.py."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np

import gradstep as gs

STEPS = 30
GLOBAL_BATCH = 12  # divisible by 1, 2, 3 and 4
NAN_STEP = 7  # rank 0 puts a nan into its local gradient at this step
MAX_NORM = 2.0
# Uneven sizes (none divides by 2 or 3 as a total), a float64 parameter, and two groups.
GROUPS: list[list[tuple[tuple[int, ...], Any]]] = [
    [((7,), np.float32), ((3, 5), np.float64), ((31, 33), np.float32)],
    [((1,), np.float32), ((1023,), np.float32)],
]


@dataclass(frozen=True)
class ExpDecay:
    """lr * gamma**t: a schedule (a callable step -> value)."""

    lr: float
    gamma: float

    def __call__(self, step: int) -> float:
        return self.lr * self.gamma**step


OPTIMIZERS: dict[str, tuple[type[gs.Optimizer], dict[str, Any]]] = {
    "Adam": (gs.Adam, dict(lr=ExpDecay(0.05, 0.97), amsgrad=True)),
    "SGD": (gs.SGD, dict(lr=ExpDecay(0.1, 0.97), momentum=0.9, nesterov=True)),
    "NAdam": (gs.NAdam, dict(lr=ExpDecay(0.05, 0.97))),
    "AdamW": (gs.AdamW, dict(lr=ExpDecay(0.05, 0.97))),
    "Adamax": (gs.Adamax, dict(lr=ExpDecay(0.05, 0.97))),
    "RAdam": (gs.RAdam, dict(lr=ExpDecay(0.05, 0.97))),
    "RMSprop": (gs.RMSprop, dict(lr=ExpDecay(0.01, 0.97), momentum=0.5, centered=True)),
    "Adagrad": (gs.Adagrad, dict(lr=ExpDecay(0.1, 0.97), lr_decay=0.01)),
    "Adadelta": (gs.Adadelta, dict(lr=ExpDecay(1.0, 0.97))),
    "Rprop": (gs.Rprop, dict(lr=ExpDecay(0.01, 0.97))),
}


def initial_params() -> list[np.ndarray]:
    rng = np.random.default_rng(7)
    return [rng.standard_normal(shape).astype(dt) for grp in GROUPS for shape, dt in grp]


def param_groups(params: list[np.ndarray], name: str) -> list[dict[str, Any]]:
    """Two groups; the second has its own schedule (half the first one's rate)."""
    n0 = len(GROUPS[0])
    lr = OPTIMIZERS[name][1]["lr"]
    return [{"params": params[:n0]},
            {"params": params[n0:], "lr": ExpDecay(lr.lr / 2, lr.gamma)}]


def make_optimizer(name: str, params: list[np.ndarray]) -> gs.Optimizer:
    cls, hyper = OPTIMIZERS[name]
    return cls(param_groups(params, name), **hyper)


# Three optimizers with any number of processes; every optimizer with two.
CORE = ("Adam", "SGD", "NAdam")


@functools.cache
def _data(step: int, index: int, size: int, dtype: str) -> np.ndarray:
    rng = np.random.default_rng([step, index])
    x = rng.standard_normal((GLOBAL_BATCH, size)).astype(dtype)
    x.flags.writeable = False
    return x


def local_grads(params: list[np.ndarray], step: int, rank: int, world: int) -> list[np.ndarray]:
    """The gradient of this rank's part of the global batch (a mean over its samples) of a
    loss whose gradient is tanh(2 (p - x)) * (0.5 + |x|), scaled differently per step so
    that clipping engages on some steps only."""
    per = GLOBAL_BATCH // world
    scale = 0.02 * (1 + step % 5)
    out = []
    for i, p in enumerate(params):
        x = _data(step, i, p.size, p.dtype.str)[rank * per : (rank + 1) * per]
        flat = p.reshape(1, -1)
        g = (np.tanh(2 * (flat - x)) * (0.5 + np.abs(x))).mean(axis=0) * p.dtype.type(scale)
        out.append(g.reshape(p.shape).astype(p.dtype))
    if step == NAN_STEP and rank == 0:
        out[-1].reshape(-1)[-1] = np.nan  # owned by the last rank in ZeRO-1
    return out


def state_nbytes(opt: gs.Optimizer) -> int:
    return sum(x.nbytes for entry in opt.state.values() for x in entry.values()
               if isinstance(x, np.ndarray))
