"""Plain data parallelism: average the gradients with one all-reduce, then step."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from .._checkpoint import load as _load_npz
from .._checkpoint import save as _save_npz
from .._optimizer import Optimizer
from . import _common as c
from ._backends import Backend, DistributedError, get_backend

__all__ = ["DataParallel"]

_STATE_FILE = "optimizer.npz"


class _Flat:
    """The gradients of one dtype laid end to end in one buffer, followed by `extra`
    slots (for the first dtype: one per parameter that counts the processes that have
    its gradient, then one that carries 'this process rejected the call')."""

    def __init__(self, dtype: np.dtype[Any], positions: list[int],
                 params: Sequence[np.ndarray], extra: int) -> None:
        self.dtype = dtype
        self.positions = positions
        sizes = [params[i].size for i in positions]
        self.offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(int).tolist()
        self.size = self.offsets[-1]
        self.buf = np.zeros(self.size + extra, dtype=dtype)
        self.body = self.buf[: self.size]
        self.extra = self.buf[self.size :]
        self.views = [
            self.buf[self.offsets[k] : self.offsets[k + 1]].reshape(params[i].shape)
            for k, i in enumerate(positions)
        ]


class DataParallel:
    r"""Data-parallel training with any gradstep optimizer.

    Every process holds the whole model and the whole optimizer state and computes
    gradients on its own part of the batch. :meth:`step` averages the local gradients
    across processes with **one all-reduce over a flat buffer** (one per dtype when the
    model mixes float32 and float64), optionally clips them by their global norm and
    skips steps with non-finite values, then runs the wrapped optimizer's step, so every
    process applies the same update to the same parameters:

    .. math::
        \bar g = \frac{1}{N}\sum_{r=0}^{N-1} g_r,\qquad
        \bar g \leftarrow \bar g \cdot \min\Big(1, \frac{\text{max\_norm}}
        {\lVert \bar g \rVert_2 + 10^{-6}}\Big)

    Arguments:
        optimizer: a gradstep optimizer over this process's copy of the parameters.
        backend: ``"torch"`` (torch.distributed, gloo), ``"mpi"`` (mpi4py) or a
            :class:`~gradstep.distributed.Backend`.
        max_norm: clip the averaged gradient to this global L2 norm (as
            ``torch.nn.utils.clip_grad_norm_``); None (default) does not clip.
        skip_nonfinite: when the averaged gradient has an inf or nan on any process,
            skip the step on every process (the step counter and schedules do not
            advance; :attr:`skipped_steps` counts them).
        average: divide the summed gradient by the number of processes (default);
            False keeps the sum.
        sync_params: broadcast the parameters from rank 0 at construction (default), so
            every process starts from the same point.
        timeout: seconds a collective may wait, for a backend given by name (see
            :class:`~gradstep.distributed.TorchBackend` and
            :class:`~gradstep.distributed.MPIBackend`).

    The user's gradient arrays are never written. Example (run with
    ``torchrun --nproc_per_node=2`` or ``mpiexec -n 2 python``)::

        w = np.zeros((784, 10), np.float32)
        opt = DataParallel(gs.Adam([w], lr=1e-3), backend="torch", max_norm=1.0)
        opt.step([local_grad_w])        # every process now holds the same w
    """

    def __init__(self, optimizer: Optimizer, backend: str | Backend = "torch", *,
                 max_norm: float | None = None, skip_nonfinite: bool = False,
                 average: bool = True, sync_params: bool = True,
                 timeout: float | None = None) -> None:
        if not isinstance(optimizer, Optimizer):
            raise TypeError(
                f"optimizer must be a gradstep optimizer, got {type(optimizer).__name__}"
            )
        self.max_norm = c.check_options(max_norm, skip_nonfinite)
        self.skip_nonfinite = bool(skip_nonfinite)
        self.average = bool(average)
        self.optimizer = optimizer
        self.backend = get_backend(backend, timeout=timeout)
        self.skipped_steps = 0
        self.grad_norm: float | None = None
        self._key: list[int] = []
        self._flats: list[_Flat] = []
        self._scratch = np.empty(0, dtype=np.float64)
        self._layout()
        if sync_params:
            self.broadcast_parameters()

    # -- layout ---------------------------------------------------------------------

    def _params(self) -> list[np.ndarray]:
        return [p for grp in self.optimizer.param_groups for p in grp["params"]]

    def _layout(self) -> list[np.ndarray]:
        params = self._params()
        key = [id(p) for p in params]
        if key != self._key:
            by_dtype: dict[np.dtype[Any], list[int]] = {}
            for i, p in enumerate(params):
                by_dtype.setdefault(p.dtype, []).append(i)
            self._flats = [
                _Flat(dt, pos, params, extra=len(params) + 1 if k == 0 else 0)
                for k, (dt, pos) in enumerate(
                    sorted(by_dtype.items(), key=lambda kv: kv[0].str)
                )
            ]
            self._key = key
        return params

    def broadcast_parameters(self, root: int = 0) -> None:
        """Copy the parameters of process ``root`` to every process (a collective)."""
        params = self._layout()
        for flat in self._flats:
            buf = np.empty(flat.size, dtype=flat.dtype)
            for k, i in enumerate(flat.positions):
                buf[flat.offsets[k] : flat.offsets[k + 1]] = params[i].reshape(-1)
            self.backend.broadcast(buf, root)
            for k, i in enumerate(flat.positions):
                params[i].reshape(-1)[...] = buf[flat.offsets[k] : flat.offsets[k + 1]]

    # -- the step -------------------------------------------------------------------

    def step(self, grads: Sequence[np.ndarray | None]) -> None:
        """Average ``grads`` (this process's local gradients, one per parameter) across
        processes, then update the parameters in place with the wrapped optimizer.

        None for a parameter this process has no gradient for: it counts as zeros in the
        average (as in torch DDP); a parameter that is None on every process is skipped,
        as the optimizer itself skips it.

        A collective: every process must call it. If the call is invalid on any process,
        every process raises and nothing changes.
        """
        params = self._layout()
        error: BaseException | None = None
        try:
            c.check_grads(grads, params)
        except (TypeError, ValueError) as exc:
            error = exc
        for k, flat in enumerate(self._flats):
            if error is None:
                for j, i in enumerate(flat.positions):
                    g = grads[i]
                    flat.views[j][...] = 0 if g is None else g
            else:
                flat.body[...] = 0
            if k == 0:
                flat.extra[:-1] = 0 if error is not None else [g is not None for g in grads]
                flat.extra[-1] = 1 if error is not None else 0
            self.backend.all_reduce(flat.buf)
        bad = round(float(self._flats[0].extra[-1])) if self._flats else 0
        if error is not None:
            raise error
        if bad:
            raise DistributedError(
                f"step() was called with invalid gradients on {bad} of "
                f"{self.backend.world_size} processes (see their error messages); nothing "
                f"was updated on rank {self.backend.rank}"
            )
        n = self.backend.world_size
        if self.average and n > 1:
            for flat in self._flats:
                np.divide(flat.body, n, out=flat.body)
        if self.max_norm is not None or self.skip_nonfinite:
            sumsq = 0.0
            for flat in self._flats:
                if self._scratch.size < min(flat.size, 1 << 16):
                    self._scratch = np.empty(min(flat.size, 1 << 16), dtype=np.float64)
                sumsq += c.sum_of_squares(flat.body, self._scratch)
            finite = c.all_finite([f.body for f in self._flats], sumsq)
            self.grad_norm = float(np.sqrt(sumsq))
            if self.skip_nonfinite and not finite:
                self.skipped_steps += 1
                return
            coef = c.clip_coefficient(self.max_norm, self.grad_norm)
            if coef is not None:
                for flat in self._flats:
                    np.multiply(flat.body, flat.dtype.type(coef), out=flat.body)
        # A parameter no process has a gradient for is skipped, as by the optimizer
        # itself; one that only some have counts as zero on the others (torch DDP's rule).
        have = self._flats[0].extra[:-1]
        views: list[np.ndarray | None] = [None] * len(params)
        for flat in self._flats:
            for j, i in enumerate(flat.positions):
                if have[i] > 0:
                    views[i] = flat.views[j]
        self.optimizer.step(views)

    # -- the wrapped optimizer ------------------------------------------------------

    @property
    def param_groups(self) -> list[dict[str, Any]]:
        return self.optimizer.param_groups

    @property
    def state(self) -> dict[int, dict[str, Any]]:
        return self.optimizer.state

    @property
    def step_count(self) -> int:
        return self.optimizer.step_count

    def state_dict(self) -> dict[str, Any]:
        return {**self.optimizer.state_dict(), "skipped_steps": self.skipped_steps}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        sd = dict(state_dict)
        skipped = int(sd.pop("skipped_steps", 0))
        self.optimizer.load_state_dict(sd)
        self.skipped_steps = skipped

    # -- checkpoints ----------------------------------------------------------------

    def save(self, directory: str | os.PathLike[str]) -> None:
        """Write the (replicated) optimizer state to ``directory``: rank 0 writes
        ``optimizer.npz`` and ``manifest.json``. A collective; it can be loaded with any
        number of processes."""
        directory = os.fspath(directory)
        b = self.backend
        error: BaseException | None = None
        if b.rank == 0:
            try:
                os.makedirs(directory, exist_ok=True)
                _save_npz(self.optimizer, os.path.join(directory, _STATE_FILE))
                c.write_json_atomic(os.path.join(directory, c.MANIFEST), {
                    "format": c.FORMAT, "version": c.VERSION, "kind": "replicated",
                    "optimizer": type(self.optimizer).__name__, "world_size": b.world_size,
                    "step_count": self.optimizer.step_count,
                    "skipped_steps": self.skipped_steps,
                    "params": c.param_signature(self._params()), "files": [_STATE_FILE],
                })
            except Exception as exc:
                error = exc
        c.raise_agreed(b, error, f"saving the checkpoint {directory!r}")

    def load(self, directory: str | os.PathLike[str]) -> None:
        """Restore a checkpoint written by :meth:`save` on every process (a collective).
        On error on any process every process raises and nothing changes."""
        directory = os.fspath(directory)
        error: BaseException | None = None
        backup = self.state_dict()
        try:
            meta = c.read_manifest(directory, "replicated", type(self.optimizer).__name__,
                                   self._params())
            _load_npz(self.optimizer, os.path.join(directory, _STATE_FILE))
            self.skipped_steps = int(meta.get("skipped_steps", 0))
        except Exception as exc:
            error = exc
        c.raise_agreed(self.backend, error, f"loading the checkpoint {directory!r}",
                       rollback=lambda: self.load_state_dict(backup))

    def __repr__(self) -> str:
        return (f"DataParallel({type(self.optimizer).__name__}, backend={self.backend!r}, "
                f"max_norm={self.max_norm}, skip_nonfinite={self.skip_nonfinite})")
