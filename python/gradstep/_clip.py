"""Gradient clipping by the global L2 norm, in one C++ pass."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from . import _core
from . import _validation as v

__all__ = ["clip_grad_norm", "grad_norm"]


def _as_list(grads: Sequence[np.ndarray | None] | np.ndarray) -> list[np.ndarray | None]:
    if isinstance(grads, np.ndarray):
        return [grads]
    if isinstance(grads, (str, bytes)) or not isinstance(grads, Sequence):
        raise TypeError(f"grads must be a list of arrays, got {type(grads).__name__}")
    return list(grads)


def grad_norm(grads: Sequence[np.ndarray | None] | np.ndarray) -> float:
    """The L2 norm of all gradients taken together, ``sqrt(sum_i ||g_i||^2)``.

    Squares are accumulated in double in a fixed order, so the result is the same
    for any thread count. None entries are skipped.
    """
    return math.sqrt(_core.sum_squares(_as_list(grads)))


def clip_grad_norm(grads: Sequence[np.ndarray | None] | np.ndarray, max_norm: float, *,
                   error_if_nonfinite: bool = False) -> float:
    r"""Scale the gradients in place so that their global L2 norm is at most ``max_norm``.

    With :math:`n = \sqrt{\sum_i \lVert g_i \rVert^2}`, every gradient is multiplied by
    :math:`\min(1, \text{max\_norm} / (n + 10^{-6}))`, as
    ``torch.nn.utils.clip_grad_norm_`` does (Pascanu, Mikolov & Bengio, "On the
    difficulty of training recurrent neural networks", ICML 2013). Returns :math:`n`,
    the norm before clipping. If :math:`n` is NaN or infinite and
    ``error_if_nonfinite`` is set, raises ValueError before touching anything.

    Example:
        >>> import numpy as np, gradstep as gs
        >>> g = [np.array([3.0, 4.0])]
        >>> gs.clip_grad_norm(g, 1.0)
        5.0
        >>> np.round(g[0], 6)
        array([0.6, 0.8])
    """
    limit = v.nonneg("max_norm", max_norm)
    v.flag("error_if_nonfinite", error_if_nonfinite)
    arrays = _as_list(grads)
    norm = grad_norm(arrays)
    if error_if_nonfinite and not math.isfinite(norm):
        raise ValueError(
            f"the total norm of the gradients is {norm}; they hold NaN or Inf "
            "(pass error_if_nonfinite=False to clip anyway)"
        )
    coef = limit / (norm + 1e-6)
    if not coef >= 1.0:  # also scales (by NaN) when the norm is NaN, as torch does
        _core.scale_(arrays, coef)
    return norm
