"""Checkpoints: an optimizer's state in a ``.npz`` file, without pickle, written atomically."""

from __future__ import annotations

import json
import math
import os
import tempfile
import zipfile
from collections.abc import Callable
from typing import Any, BinaryIO

import numpy as np

from ._minimize import LBFGS
from ._optimizer import Optimizer

__all__ = ["load", "save"]

_FORMAT = "gradstep-checkpoint"
_VERSION = 1
_META = "__gradstep__"


def _encode(value: Any) -> Any:
    """A hyperparameter as JSON. Schedules are kept by the live optimizer (they are code,
    not data): the file records only that one was there."""
    if callable(value):
        return {"__schedule__": repr(value)}
    if isinstance(value, tuple):
        return {"__tuple__": [_encode(x) for x in value]}
    if isinstance(value, list):
        return [_encode(x) for x in value]
    if isinstance(value, (np.floating, np.integer, np.bool_)):
        return value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return {"__float__": repr(value)}
    return value


def _decode(value: Any, current: Any) -> Any:
    if isinstance(value, dict):
        if "__schedule__" in value:
            return current  # the live optimizer's schedule continues at the restored step
        if "__tuple__" in value:
            cur = current if isinstance(current, tuple) else (None,) * len(value["__tuple__"])
            return tuple(_decode(x, c) for x, c in zip(value["__tuple__"], cur))
        if "__float__" in value:
            return float(value["__float__"])
    if isinstance(value, list):
        return [_decode(x, None) for x in value]
    return value


def save(optimizer: Optimizer | LBFGS, path: str | os.PathLike[str]) -> None:
    """Write the optimizer's state to ``path`` (a ``.npz`` file).

    ``optimizer`` is one of the first-order optimizers or a step-wise :class:`LBFGS`.
    The file is written to a temporary file in the same directory, flushed to disk
    and renamed over ``path``, so a crash mid-save leaves any previous file intact.
    Loading it into a fresh optimizer over the same parameters with :func:`load`
    continues the exact same trajectory.
    """
    if isinstance(optimizer, LBFGS):
        _save_lbfgs(optimizer, os.fspath(path))
        return
    if not isinstance(optimizer, Optimizer):
        raise TypeError(f"optimizer must be a gradstep optimizer, got {type(optimizer).__name__}")
    sd = optimizer.state_dict()
    arrays: dict[str, np.ndarray] = {}
    state_meta: dict[str, dict[str, Any]] = {}
    for index, entry in sd["state"].items():
        scalars = {}
        for name, value in entry.items():
            if isinstance(value, np.ndarray):
                arrays[f"state/{index}/{name}"] = value
            else:
                scalars[name] = value
        state_meta[str(index)] = scalars
    meta = {
        "format": _FORMAT,
        "version": _VERSION,
        "optimizer": type(optimizer).__name__,
        "step_count": sd["step_count"],
        "param_groups": [{k: _encode(x) for k, x in g.items()} for g in sd["param_groups"]],
        "state": state_meta,
    }
    _write(os.fspath(path), meta, arrays)


def _save_lbfgs(optimizer: LBFGS, path: str) -> None:
    """LBFGS.state_dict() is flat: its arrays go in as ``lbfgs/<name>``, its numbers
    into the metadata."""
    sd = optimizer.state_dict()
    arrays = {f"lbfgs/{k}": v for k, v in sd.items() if isinstance(v, np.ndarray)}
    scalars = {k: _encode(v) for k, v in sd.items() if not isinstance(v, np.ndarray)}
    meta = {"format": _FORMAT, "version": _VERSION, "optimizer": "LBFGS", "lbfgs": scalars}
    _write(path, meta, arrays)


def _load_lbfgs(optimizer: LBFGS, path: str, meta: dict[str, Any],
                arrays: dict[str, np.ndarray]) -> None:
    scalars = meta.get("lbfgs")
    if not isinstance(scalars, dict):
        raise ValueError(f"cannot load {path!r}: it has no LBFGS state")
    state: dict[str, Any] = {k: _decode(v, None) for k, v in scalars.items()}
    for key, value in arrays.items():
        prefix, _, name = key.partition("/")
        if prefix != "lbfgs" or not name:
            raise ValueError(f"cannot load {path!r}: unexpected entry {key!r}")
        state[name] = value
    try:
        optimizer.load_state_dict(state)
    except (TypeError, ValueError, KeyError) as exc:
        raise ValueError(f"cannot load {path!r} into this optimizer: {exc}") from None


def _write(path: str, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
    """The arrays and the JSON metadata as one .npz file, written atomically."""
    arrays = {**arrays, _META: np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8)}
    write_atomically(path, lambda f: np.savez(f, **arrays))  # type: ignore[arg-type]


def write_atomically(path: str, write: Callable[[BinaryIO], object]) -> None:
    """Call ``write(f)`` on a temporary file beside ``path``, flush it to disk and rename
    it over ``path``: a crash at any point leaves the previous file intact."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".gradstep-", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    if hasattr(os, "O_DIRECTORY"):
        dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def load(optimizer: Optimizer | LBFGS, path: str | os.PathLike[str]) -> None:
    """Restore the state written by :func:`save` into ``optimizer``.

    The optimizer must be of the same class over parameters of the same shapes.
    A truncated, foreign or mismatched file raises ValueError naming the file, and
    leaves the optimizer unchanged.
    """
    if not isinstance(optimizer, (Optimizer, LBFGS)):
        raise TypeError(f"optimizer must be a gradstep optimizer, got {type(optimizer).__name__}")
    path = os.fspath(path)
    meta, arrays = _read(path, type(optimizer).__name__)
    if isinstance(optimizer, LBFGS):
        _load_lbfgs(optimizer, path, meta, arrays)
        return
    state = read_state(path, meta, arrays)
    groups = []
    for g, saved in enumerate(meta.get("param_groups", [])):
        current = optimizer.param_groups[g] if g < len(optimizer.param_groups) else {}
        groups.append({k: (x if k == "params" else _decode(x, current.get(k)))
                       for k, x in saved.items()})
    try:
        optimizer.load_state_dict(
            {"state": state, "param_groups": groups, "step_count": meta.get("step_count", 0)}
        )
    except (TypeError, ValueError) as exc:
        raise ValueError(f"cannot load {path!r} into this optimizer: {exc}") from None


def _read(path: str, optimizer: str) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The metadata and arrays of a checkpoint file written for `optimizer` (a class
    name); ValueError naming the file for anything else."""
    try:
        # Open the file here so it is closed even when numpy cannot parse it.
        with open(path, "rb") as f:
            data = np.load(f, allow_pickle=False)
            if not hasattr(data, "files"):
                raise ValueError("it is a single array, not a checkpoint archive")
            if _META not in data.files:
                raise ValueError("it has no gradstep metadata")
            meta = json.loads(bytes(data[_META]).decode("utf-8"))
            if not isinstance(meta, dict) or meta.get("format") != _FORMAT:
                raise ValueError("it is not a gradstep checkpoint")
            arrays = {k: data[k] for k in data.files if k != _META}
            data.close()
    except (OSError, zipfile.BadZipFile, EOFError, KeyError, UnicodeDecodeError,
            json.JSONDecodeError, ValueError) as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise ValueError(f"cannot load {path!r}: {exc}") from None
    if meta.get("version") != _VERSION:
        raise ValueError(f"cannot load {path!r}: checkpoint version {meta.get('version')!r} "
                         f"(this gradstep reads version {_VERSION})")
    if meta.get("optimizer") != optimizer:
        raise ValueError(
            f"cannot load {path!r}: it holds the state of {meta.get('optimizer')}, not of "
            f"{optimizer}"
        )
    return meta, arrays


def read_state(path: str, meta: dict[str, Any],
               arrays: dict[str, np.ndarray]) -> dict[int, dict[str, Any]]:
    """The per-parameter state held by a first-order optimizer's checkpoint file (its
    metadata and arrays, as `_read` gives them), as ``{index: {name: array or number}}``,
    what ``state_dict()["state"]`` holds."""
    state: dict[int, dict[str, Any]] = {}
    for index, scalars in meta.get("state", {}).items():
        state[int(index)] = dict(scalars)
    for key, value in arrays.items():
        parts = key.split("/")
        if len(parts) != 3 or parts[0] != "state":
            raise ValueError(f"cannot load {path!r}: unexpected entry {key!r}")
        state.setdefault(int(parts[1]), {})[parts[2]] = value
    return state
