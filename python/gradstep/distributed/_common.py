"""Shared pieces of the distributed optimizers: gradient checks, the global norm and
non-finite guard, and the checkpoint manifest."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .._checkpoint import write_atomically
from ._backends import Backend, DistributedError

FORMAT = "gradstep-distributed-checkpoint"
VERSION = 1
MANIFEST = "manifest.json"
# Added to the norm before dividing, as torch.nn.utils.clip_grad_norm_ does.
CLIP_EPS = 1e-6
_CHUNK = 1 << 16


def check_grads(grads: Any, params: Sequence[np.ndarray]) -> None:
    """One gradient per parameter, each None (no gradient on this process) or an array of
    the parameter's shape and dtype."""
    if isinstance(grads, np.ndarray) or not isinstance(grads, Sequence) or isinstance(
        grads, (str, bytes)
    ):
        raise TypeError(
            "grads must be a list of arrays (one per parameter, None for none), got "
            f"{type(grads).__name__}"
        )
    if len(grads) != len(params):
        raise ValueError(
            f"step() got {len(grads)} grads for {len(params)} params; pass one gradient per "
            "parameter, in order"
        )
    for i, (g, p) in enumerate(zip(grads, params)):
        if g is None:
            continue
        if not isinstance(g, np.ndarray):
            raise TypeError(f"grads[{i}] must be a numpy.ndarray, got {type(g).__name__}")
        if g.shape != p.shape:
            raise ValueError(f"grads[{i}] has shape {g.shape}, params[{i}] has {p.shape}")
        if g.dtype != p.dtype:
            raise TypeError(
                f"grads[{i}] has dtype {g.dtype}, params[{i}] has {p.dtype}; gradstep never "
                "converts"
            )


def check_options(max_norm: Any, skip_nonfinite: Any) -> float | None:
    if max_norm is not None:
        if isinstance(max_norm, bool) or not isinstance(max_norm, (int, float, np.floating)):
            raise TypeError(f"Invalid max_norm: {max_norm!r} (expected a number or None)")
        value = float(max_norm)
        if not (math.isfinite(value) and value > 0):
            raise ValueError(f"Invalid max_norm: {max_norm!r} (expected a finite number > 0)")
    if not isinstance(skip_nonfinite, (bool, np.bool_)):
        raise TypeError(f"Invalid skip_nonfinite: {skip_nonfinite!r} (expected True or False)")
    return None if max_norm is None else value


def sum_of_squares(buf: np.ndarray, scratch: np.ndarray | None = None) -> float:
    """The sum of squares of ``buf`` accumulated in float64 (in chunks, so a float32
    buffer is never copied whole), with NumPy's pairwise summation: the same bits on
    every process for the same buffer, whatever the BLAS threading."""
    if scratch is None or scratch.size < min(_CHUNK, buf.size):
        scratch = np.empty(min(_CHUNK, buf.size), dtype=np.float64)
    total = 0.0
    for start in range(0, buf.size, _CHUNK):
        part = buf[start : start + _CHUNK]
        out = scratch[: part.size]
        np.multiply(part, part, out=out, dtype=np.float64)
        total += float(out.sum())
    return total


def all_finite(bufs: Sequence[np.ndarray], sumsq: float) -> bool:
    """Whether every element is finite: the sum of squares is finite unless an element is
    inf/nan or (float64 only) so large that its square overflows; look only then."""
    if math.isfinite(sumsq):
        return True
    return all(bool(np.isfinite(b).all()) for b in bufs)


def clip_coefficient(max_norm: float | None, norm: float) -> float | None:
    """The factor the gradients are scaled by (None: leave them alone)."""
    if max_norm is None or not math.isfinite(norm):
        return None
    coef = max_norm / (norm + CLIP_EPS)
    return coef if coef < 1.0 else None


def raise_agreed(backend: Backend, error: BaseException | None, what: str,
                 rollback: Callable[[], None] | None = None) -> None:
    """Raise on every process if ``error`` happened on any (a collective); processes
    that succeeded first undo their part with ``rollback``."""
    failed = backend.agree(error is not None)
    if error is not None:
        raise error
    if failed:
        if rollback is not None:
            rollback()
        raise DistributedError(
            f"{what} failed on rank(s) {failed} of {backend.world_size} (see their error "
            f"messages); nothing was changed on rank {backend.rank}"
        )


def param_signature(params: Sequence[np.ndarray]) -> list[list[Any]]:
    return [[list(p.shape), str(p.dtype)] for p in params]


def write_json_atomic(path: str, obj: Any) -> None:
    write_atomically(path, lambda f: f.write(json.dumps(obj, indent=1).encode("utf-8")))


def read_manifest(directory: str, kind: str, optimizer: str,
                  params: Sequence[np.ndarray]) -> dict[str, Any]:
    """The manifest of a checkpoint directory, checked against this run."""
    path = os.path.join(directory, MANIFEST)
    try:
        with open(path, encoding="utf-8") as f:
            meta = json.load(f)
    except FileNotFoundError:
        raise FileNotFoundError(
            f"{directory!r} is not a gradstep distributed checkpoint: it has no {MANIFEST}"
        ) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"cannot read the checkpoint manifest {path!r}: {exc}") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ValueError(f"{path!r} is not a gradstep distributed checkpoint manifest")
    if meta.get("version") != VERSION:
        raise ValueError(f"{path!r} has version {meta.get('version')!r}; this gradstep reads "
                         f"version {VERSION}")
    if meta.get("kind") != kind:
        raise ValueError(
            f"{directory!r} holds a {meta.get('kind')!r} checkpoint (written by "
            f"{_WRITER.get(str(meta.get('kind')), '?')}), not a {kind!r} one"
        )
    if meta.get("optimizer") != optimizer:
        raise ValueError(f"{directory!r} holds the state of {meta.get('optimizer')}, not of "
                         f"{optimizer}")
    if meta.get("params") != param_signature(params):
        raise ValueError(
            f"{directory!r} was written for parameters (shape, dtype) {meta.get('params')}, "
            f"this optimizer has {param_signature(params)}"
        )
    return meta


_WRITER = {"replicated": "DataParallel", "zero1": "ShardedOptimizer"}
