"""Checks of hyperparameters and parameters, with messages that name the argument."""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from typing import Any

import numpy as np

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def real(name: str, value: Any) -> float:
    """`value` as a float; bool, complex and non-numbers are a TypeError."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"Invalid {name}: {value!r} (expected a real number)")
    return float(value)


def nonneg(name: str, value: Any) -> float:
    v = real(name, value)
    if not (math.isfinite(v) and v >= 0.0):
        raise ValueError(f"Invalid {name}: {value!r} (expected a finite number >= 0)")
    return v


def unit_interval(name: str, value: Any, *, closed: bool = False) -> float:
    v = real(name, value)
    ok = 0.0 <= v <= 1.0 if closed else 0.0 <= v < 1.0
    if not ok:
        bound = "<=" if closed else "<"
        raise ValueError(f"Invalid {name}: {value!r} (expected 0 <= {name} {bound} 1)")
    return v


def flag(name: str, value: Any) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"Invalid {name}: {value!r} (expected True or False)")
    return bool(value)


def pair(name: str, value: Any) -> tuple[Any, Any]:
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise TypeError(f"Invalid {name}: {value!r} (expected a pair of numbers)")
    return value[0], value[1]


def resolve(value: Any, step: int) -> Any:
    """A hyperparameter's value at optimizer step `step`: callables (schedules) are
    evaluated, pairs resolved element-wise, anything else returned as is."""
    if callable(value):
        return value(step)
    if isinstance(value, tuple):
        return tuple(resolve(v, step) for v in value)
    if isinstance(value, list):
        return [resolve(v, step) for v in value]
    return value


def is_scheduled(value: Any) -> bool:
    if callable(value):
        return True
    if isinstance(value, (tuple, list)):
        return any(callable(v) for v in value)
    return False


def check_param(name: str, p: Any) -> np.ndarray:
    """A parameter must be a writeable, C-contiguous float32/float64 ndarray."""
    if not isinstance(p, np.ndarray):
        raise TypeError(
            f"{name} must be a numpy.ndarray of float32 or float64, got {type(p).__name__}"
        )
    if p.dtype not in FLOAT_DTYPES or not p.dtype.isnative:
        raise TypeError(
            f"{name} has dtype {p.dtype}; gradstep updates float32 and float64 arrays "
            "(native byte order) in place and never converts them"
        )
    if not p.flags.c_contiguous:
        raise ValueError(
            f"{name} is not C-contiguous (shape {p.shape}, strides {p.strides}); gradstep "
            "updates parameters in place and never copies, so pass the contiguous array itself"
        )
    if not p.flags.writeable:
        raise ValueError(f"{name} is read-only; parameters must be writeable arrays")
    return p


def check_distinct(named: list[tuple[str, np.ndarray]]) -> None:
    """No two parameters may share memory (an update would apply twice)."""
    spans = []
    for name, p in named:
        if p.nbytes == 0:
            continue
        start = p.__array_interface__["data"][0]
        spans.append((start, start + p.nbytes, name))
    spans.sort()
    for (_, end_a, name_a), (start_b, _, name_b) in zip(spans, spans[1:]):
        if start_b < end_a:
            raise ValueError(
                f"{name_a} and {name_b} share memory (the same array twice, or overlapping "
                "views); each parameter must be its own array"
            )


Check = Callable[[dict[str, Any]], None]
