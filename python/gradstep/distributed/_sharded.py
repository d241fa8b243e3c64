"""ZeRO stage 1: each process keeps and updates only its shard of the optimizer state."""

from __future__ import annotations

import copy
import math
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from .. import _validation as v
from .._checkpoint import _decode, _encode
from .._checkpoint import _read as _read_checkpoint
from .._checkpoint import load as _load_npz
from .._checkpoint import read_state as _read_state
from .._checkpoint import save as _save_npz
from .._optimizer import Optimizer
from . import _common as c
from ._backends import Backend, DistributedError, get_backend

__all__ = ["ShardedOptimizer"]


class _Layout:
    """The parameters of one dtype, in group order, laid end to end in one flat buffer
    padded to a multiple of the number of processes; process r owns elements
    ``[r*S, (r+1)*S)``. The padding belongs to the last group that has this dtype."""

    def __init__(self, dtype: np.dtype[Any], positions: list[int], groups: list[int],
                 params: Sequence[np.ndarray], rank: int, world: int) -> None:
        self.dtype = dtype
        self.positions = positions
        offsets = [0]
        for i in positions:
            offsets.append(offsets[-1] + params[i].size)
        self.offsets = offsets
        self.size = offsets[-1]
        self.shard = -(-self.size // world)
        self.padded = self.shard * world
        self.lo, self.hi = rank * self.shard, (rank + 1) * self.shard
        self.params_flat = np.zeros(self.padded, dtype=dtype)
        self.grads_flat = np.zeros(self.padded, dtype=dtype)
        self.grad_shard = np.zeros(self.shard, dtype=dtype)
        # Each group's contiguous range in the flat buffer.
        self.group_range: dict[int, tuple[int, int]] = {}
        for k, g in enumerate(groups):
            start = self.group_range.get(g, (offsets[k], 0))[0]
            self.group_range[g] = (start, offsets[k + 1])
        self.last_group = groups[-1]
        self.group_range[self.last_group] = (self.group_range[self.last_group][0], self.padded)
        self.grad_views = [
            self.grads_flat[offsets[k] : offsets[k + 1]].reshape(params[i].shape)
            for k, i in enumerate(positions)
        ]
        # (flat view, user view) pairs: all of them, and those inside this process's shard.
        self.gather_pairs = []
        self.shard_pairs = []
        for k, i in enumerate(positions):
            flat = params[i].reshape(-1)
            o, e = offsets[k], offsets[k + 1]
            self.gather_pairs.append((self.params_flat[o:e], flat))
            a, b = max(o, self.lo), min(e, self.hi)
            if a < b:
                self.shard_pairs.append((self.params_flat[a:b], flat[a - o : b - o]))

    def local_range(self, g: int, rank: int, world: int) -> tuple[int, int] | None:
        """The flat range [a, b) of group ``g`` that process ``rank`` of ``world`` owns
        (None if it owns none of it): the same parameters split among another number
        of processes, as a checkpoint written by that many was."""
        if g not in self.group_range:
            return None
        start, end = self.group_range[g]
        shard = -(-self.size // world)
        if g == self.last_group:
            end = shard * world  # the last group owns the padding
        a, b = max(start, rank * shard), min(end, (rank + 1) * shard)
        return (a, b) if a < b else None


def _check_same_save(directory: str, shard: str, step: Any, meta: dict[str, Any]) -> None:
    if step != meta.get("step_count"):
        raise ValueError(f"cannot load {directory!r}: {shard} is at step {step} but the "
                         f"manifest at step {meta.get('step_count')} (the directory mixes "
                         "two saves)")


class ShardedOptimizer:
    r"""ZeRO stage 1 (Rajbhandari et al., "ZeRO: Memory Optimizations Toward Training
    Trillion Parameter Models", SC 2020): optimizer-state sharding over data parallelism.

    The parameters (and gradients) of each dtype are viewed as one flat buffer padded to
    a multiple of the number of processes N; process r owns block r. Each step:

    1. reduce-scatter the local gradients, so process r receives block r of
       :math:`\bar g = \frac1N\sum_r g_r`;
    2. reduce the sum of squares (float64) and a non-finite flag of every block across
       processes: clipping by the global norm (``max_norm``) and the non-finite guard
       (``skip_nonfinite``) see the whole model, exactly as :class:`DataParallel`;
    3. step block r with an ordinary ``optimizer_class`` built over views of block r
       (one view per parameter group and dtype: one C++ call each), so each process
       holds 1/N of the optimizer state;
    4. all-gather the parameters back into the users' arrays, in place.

    Every gradstep optimizer, schedule and param-group setting works, because their
    updates are element-wise; sizes need not divide by N.

    Arguments:
        optimizer_class: a gradstep optimizer class, e.g. ``gs.Adam``.
        params: a list of arrays or of param-group dicts, as for the optimizer.
        backend, max_norm, skip_nonfinite, average, sync_params, timeout: as for
            :class:`DataParallel`.
        **hyperparameters: passed to ``optimizer_class`` (floats or schedules).

    Example (run with ``torchrun --nproc_per_node=2`` or ``mpiexec -n 2 python``)::

        opt = ShardedOptimizer(gs.Adam, [w, b], backend="mpi", lr=1e-3, max_norm=1.0)
        opt.step([local_grad_w, local_grad_b])
    """

    def __init__(self, optimizer_class: type[Optimizer], params: Sequence[Any],
                 backend: str | Backend = "torch", *, max_norm: float | None = None,
                 skip_nonfinite: bool = False, average: bool = True, sync_params: bool = True,
                 timeout: float | None = None, **hyperparameters: Any) -> None:
        if not (isinstance(optimizer_class, type) and issubclass(optimizer_class, Optimizer)):
            raise TypeError(
                "optimizer_class must be a gradstep optimizer class such as gradstep.Adam, "
                f"got {optimizer_class!r}"
            )
        self.max_norm = c.check_options(max_norm, skip_nonfinite)
        self.skip_nonfinite = bool(skip_nonfinite)
        self.average = bool(average)
        self.optimizer_class = optimizer_class
        groups = self._groups(params)
        flat_params = [p for g in groups for p in g["params"]]
        named = [(f"param_groups[{g}]['params'][{i}]", p)
                 for g, grp in enumerate(groups) for i, p in enumerate(grp["params"])]
        for name, p in named:
            v.check_param(name, p)
        v.check_distinct(named)
        # Validate the hyperparameters the same way on every process (a process's shard
        # may not hold every group), then keep the completed groups for the user.
        probe = optimizer_class(
            [{**{k: x for k, x in g.items() if k != "params"}, "params": [np.zeros(1)]}
             for g in groups],
            **hyperparameters,
        )
        self.param_groups: list[dict[str, Any]] = [
            {**{k: x for k, x in pg.items() if k != "params"}, "params": g["params"]}
            for pg, g in zip(probe.param_groups, groups)
        ]
        if not any(p.size for p in flat_params):
            raise ValueError("params have no elements: there is nothing to shard")
        self.backend = get_backend(backend, timeout=timeout)
        self._params = flat_params
        self._param_ids = [id(p) for p in flat_params]
        rank, world = self.backend.rank, self.backend.world_size
        owner = [g for g, grp in enumerate(groups) for _ in grp["params"]]
        by_dtype: dict[np.dtype[Any], list[int]] = {}
        for i, p in enumerate(flat_params):
            if p.size:
                by_dtype.setdefault(p.dtype, []).append(i)
        self._layouts = [
            _Layout(dt, pos, [owner[i] for i in pos], flat_params, rank, world)
            for dt, pos in sorted(by_dtype.items(), key=lambda kv: kv[0].str)
        ]
        inner_groups: list[dict[str, Any]] = []
        self._inner_to_user: list[int] = []
        self._inner_grads: list[np.ndarray] = []
        for g, k, a, b in self._inner_ranges(rank, world):
            lay = self._layouts[k]
            if not self._inner_to_user or self._inner_to_user[-1] != g:
                hyper = {key: x for key, x in groups[g].items() if key != "params"}
                inner_groups.append({**hyper, "params": []})
                self._inner_to_user.append(g)
            inner_groups[-1]["params"].append(lay.params_flat[a:b])
            self._inner_grads.append(lay.grad_shard[a - lay.lo : b - lay.lo])
        self.optimizer: Optimizer = optimizer_class(inner_groups, **hyperparameters)
        self.skipped_steps = 0
        self.grad_norm: float | None = None
        self._scratch = np.empty(0, dtype=np.float64)
        if sync_params:
            self.broadcast_parameters()

    @staticmethod
    def _groups(params: Any) -> list[dict[str, Any]]:
        if isinstance(params, (np.ndarray, dict)) or isinstance(params, (str, bytes)):
            raise TypeError(
                "params must be a list of arrays or of param-group dicts, got "
                f"{type(params).__name__}"
            )
        items = list(params)
        if not items:
            raise ValueError("params is empty: the optimizer got no parameters to update")
        if not isinstance(items[0], dict):
            items = [{"params": items}]
        groups = []
        for g, grp in enumerate(items):
            if not isinstance(grp, dict) or "params" not in grp:
                raise TypeError(f"param group {g} must be a dict with a 'params' list")
            ps = grp["params"]
            ps = [ps] if isinstance(ps, np.ndarray) else list(ps)
            if not ps:
                raise ValueError(f"param group {g} has no parameters")
            groups.append({**grp, "params": ps})
        return groups

    def broadcast_parameters(self, root: int = 0) -> None:
        """Copy the parameters of process ``root`` to every process (a collective)."""
        for lay in self._layouts:
            for flat, user in lay.gather_pairs:
                flat[...] = user
            self.backend.broadcast(lay.params_flat, root)
            for flat, user in lay.gather_pairs:
                user[...] = flat

    # -- the step -------------------------------------------------------------------

    def step(self, grads: Sequence[np.ndarray | None]) -> None:
        """Average ``grads`` (this process's local gradients, one per parameter, in group
        order) across processes, update this process's shard, and gather the updated
        parameters into every process's arrays, in place.

        None for a parameter this process has no gradient for: it counts as zeros in the
        average (as in torch DDP). A parameter that is None on every process is an error
        here (on every process, before anything changes): a shard is stepped as a whole
        and mixes parameters, so one cannot be skipped; pass zeros or leave it out.

        A collective: every process must call it. If the call is invalid on any process,
        every process raises and nothing changes.
        """
        error: BaseException | None = None
        try:
            self._check_params()
            c.check_grads(grads, self._params)
        except (TypeError, ValueError) as exc:
            error = exc
        n = self.backend.world_size
        guard = self.max_norm is not None or self.skip_nonfinite
        # Sum of squares, non-finite, rejected call, then per parameter: processes with
        # its gradient.
        stats = np.zeros(3 + len(self._params), dtype=np.float64)
        if error is None:
            stats[3:] = [g is not None for g in grads]
        for lay in self._layouts:
            if error is None:
                for k, i in enumerate(lay.positions):
                    g = grads[i]
                    lay.grad_views[k][...] = 0 if g is None else g
            else:
                lay.grads_flat[...] = 0
            self.backend.reduce_scatter(lay.grads_flat, lay.grad_shard)
            if self.average and n > 1:
                np.divide(lay.grad_shard, n, out=lay.grad_shard)
            if guard:
                if self._scratch.size < min(lay.shard, 1 << 16):
                    self._scratch = np.empty(min(lay.shard, 1 << 16), dtype=np.float64)
                part = c.sum_of_squares(lay.grad_shard, self._scratch)
                stats[0] += part
                if not c.all_finite([lay.grad_shard], part):
                    stats[1] = 1.0
        stats[2] = 1.0 if error is not None else 0.0
        self.backend.all_reduce(stats)
        if error is not None:
            raise error
        if stats[2]:
            raise DistributedError(
                f"step() was called with invalid gradients on {int(stats[2])} of {n} "
                f"processes (see their error messages); nothing was updated on rank "
                f"{self.backend.rank}"
            )
        missing = [i for i, p in enumerate(self._params) if p.size and stats[3 + i] == 0]
        if missing:
            raise ValueError(
                f"grads[{missing[0]}] is None on every process: ShardedOptimizer steps each "
                "shard as a whole (a shard mixes parameters), so it cannot skip one; pass "
                "zeros, or leave the parameter out of the optimizer"
            )
        if guard:
            self.grad_norm = math.sqrt(stats[0]) if stats[1] == 0 else math.inf
            if stats[1] and self.skip_nonfinite:
                self.skipped_steps += 1
                return
            coef = c.clip_coefficient(self.max_norm, self.grad_norm)
            if coef is not None:
                for lay in self._layouts:
                    np.multiply(lay.grad_shard, lay.dtype.type(coef), out=lay.grad_shard)
        for lay in self._layouts:
            for flat, user in lay.shard_pairs:  # the user may have edited the parameters
                flat[...] = user
        self._push_hyperparameters()
        self.optimizer.step(self._inner_grads)
        for lay in self._layouts:
            self.backend.all_gather(lay.params_flat)
            for flat, user in lay.gather_pairs:
                user[...] = flat

    def _check_params(self) -> None:
        ids = [id(p) for g in self.param_groups for p in g["params"]]
        if ids != self._param_ids:
            raise ValueError(
                "the parameters of a ShardedOptimizer are fixed when it is created; its "
                "param_groups' hyperparameters may change, their 'params' may not"
            )

    def _push_hyperparameters(self) -> None:
        for inner, g in zip(self.optimizer.param_groups, self._inner_to_user):
            for k, x in self.param_groups[g].items():
                if k != "params":
                    inner[k] = x

    # -- state ----------------------------------------------------------------------

    @property
    def step_count(self) -> int:
        return self.optimizer.step_count

    @property
    def state(self) -> dict[int, dict[str, Any]]:
        """This process's shard of the state, keyed by the position of its views (one
        per param group and dtype that the shard touches)."""
        return self.optimizer.state

    def state_nbytes(self) -> int:
        """Bytes of optimizer-state arrays held by this process (about 1/N of the whole)."""
        return sum(x.nbytes for entry in self.optimizer.state.values()
                   for x in entry.values() if isinstance(x, np.ndarray))

    def _signature(self) -> dict[str, Any]:
        return {"world_size": self.backend.world_size, "rank": self.backend.rank,
                "params": c.param_signature(self._params)}

    def state_dict(self) -> dict[str, Any]:
        """This process's shard: the inner optimizer's state dict plus the world size,
        rank and parameter layout it belongs to."""
        return {**self._signature(), "kind": "zero1", "step_count": self.step_count,
                "skipped_steps": self.skipped_steps,
                "param_groups": [{k: copy.copy(x) for k, x in g.items() if k != "params"}
                                 for g in self.param_groups],
                "shard": self.optimizer.state_dict()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict` taken by the same rank of a run with the same
        world size and parameters."""
        if not isinstance(state_dict, dict) or state_dict.get("kind") != "zero1":
            raise ValueError("state_dict is not a ShardedOptimizer state dict")
        mine = self._signature()
        if state_dict.get("world_size") != mine["world_size"]:
            raise ValueError(
                f"state_dict is a shard of a run with {state_dict.get('world_size')} "
                f"processes, this run has {mine['world_size']}: one shard cannot be cut "
                "anew; a checkpoint directory (gradstep.distributed.save / load) can"
            )
        for key in ("rank", "params"):
            if state_dict.get(key) != mine[key]:
                raise ValueError(f"state_dict has {key}={state_dict.get(key)!r}, this "
                                 f"process has {mine[key]!r}")
        self.optimizer.load_state_dict(state_dict["shard"])
        for g, saved in zip(self.param_groups, state_dict.get("param_groups", [])):
            g.update(saved)
        self.skipped_steps = int(state_dict.get("skipped_steps", 0))

    # -- checkpoints ----------------------------------------------------------------

    def _shard_file(self) -> str:
        return f"shard-{self.backend.rank:05d}-of-{self.backend.world_size:05d}.npz"

    def save(self, directory: str | os.PathLike[str]) -> None:
        """Write a checkpoint to ``directory``: every process writes its shard
        (``shard-RRRRR-of-NNNNN.npz``, atomically), then rank 0 writes ``manifest.json``.
        A collective; if any process fails, every process raises."""
        directory = os.fspath(directory)
        b = self.backend
        error: BaseException | None = None
        try:
            os.makedirs(directory, exist_ok=True)
            _save_npz(self.optimizer, os.path.join(directory, self._shard_file()))
        except Exception as exc:
            error = exc
        c.raise_agreed(b, error, f"saving the checkpoint {directory!r}")
        if b.rank == 0:
            try:
                c.write_json_atomic(os.path.join(directory, c.MANIFEST), {
                    "format": c.FORMAT, "version": c.VERSION, "kind": "zero1",
                    "optimizer": self.optimizer_class.__name__, "world_size": b.world_size,
                    "step_count": self.step_count, "skipped_steps": self.skipped_steps,
                    "params": c.param_signature(self._params),
                    "param_groups": [{k: _encode(x) for k, x in g.items() if k != "params"}
                                     for g in self.param_groups],
                    "shard_sizes": {lay.dtype.name: lay.shard for lay in self._layouts},
                    "files": [f"shard-{r:05d}-of-{b.world_size:05d}.npz"
                              for r in range(b.world_size)],
                })
            except Exception as exc:
                error = exc
        c.raise_agreed(b, error, f"writing the manifest of {directory!r}")

    def _inner_ranges(self, rank: int, world: int) -> list[tuple[int, int, int, int]]:
        """(user group, layout, a, b) of each parameter of the inner optimizer that process
        ``rank`` of ``world`` builds, in its order (as ``__init__`` builds it)."""
        return [(g, k, *r) for g in range(len(self.param_groups))
                for k, lay in enumerate(self._layouts)
                if (r := lay.local_range(g, rank, world)) is not None]

    def _resharded_state(self, directory: str, meta: dict[str, Any]) -> dict[int, Any]:
        """This process's shard of the state of a checkpoint written by another number
        of processes: every old shard file is read and the parts of it that fall in this
        process's ranges are copied (state is element-wise; padding starts at zero)."""
        old_world = meta.get("world_size")
        if isinstance(old_world, bool) or not isinstance(old_world, int) or old_world < 1:
            raise ValueError(f"the manifest of {directory!r} has world_size={old_world!r}")
        # Each (group, layout) has at most one range per process.
        mine = {(g, k): (j, a, b) for j, (g, k, a, b) in
                enumerate(self._inner_ranges(self.backend.rank, self.backend.world_size))}
        state: dict[int, dict[str, Any]] = {}
        for r in range(old_world):
            name = f"shard-{r:05d}-of-{old_world:05d}.npz"
            path = os.path.join(directory, name)
            shard_meta, arrays = _read_checkpoint(path, self.optimizer_class.__name__)
            _check_same_save(directory, name, shard_meta.get("step_count"), meta)
            old = _read_state(path, shard_meta, arrays)
            for i, (g, k, a, b) in enumerate(self._inner_ranges(r, old_world)):
                j, a2, b2 = mine.get((g, k), (-1, 0, 0))
                lo, hi = max(a, a2), min(b, b2)
                if lo >= hi:
                    continue
                target = state.setdefault(j, {})
                for key, x in old.get(i, {}).items():
                    if not isinstance(x, np.ndarray) or x.ndim == 0:
                        target.setdefault(key, x)
                        continue
                    if x.shape != (b - a,):
                        raise ValueError(f"cannot load {path!r}: state {key!r} of shard "
                                         f"parameter {i} has shape {x.shape}, expected "
                                         f"({b - a},)")
                    if key not in target:
                        target[key] = np.zeros(b2 - a2, dtype=x.dtype)
                    target[key][lo - a2 : hi - a2] = x[lo - a : hi - a]
        return state

    def load(self, directory: str | os.PathLike[str]) -> None:
        """Restore a checkpoint written by :meth:`save` (a collective). Written by the
        same number of processes, each reads its own shard; by another number, each
        reads every shard and keeps the parts that fall in its own (the state is
        element-wise, so the result is the same state split differently). Anything
        wrong raises on every process and changes nothing."""
        directory = os.fspath(directory)
        b = self.backend
        backup = self.state_dict()
        error: BaseException | None = None
        try:
            meta = c.read_manifest(directory, "zero1", self.optimizer_class.__name__,
                                   self._params)
            if meta.get("world_size") != b.world_size:
                inner = self.optimizer.state_dict()
                self.optimizer.load_state_dict({
                    "state": self._resharded_state(directory, meta),
                    "param_groups": inner["param_groups"],
                    "step_count": meta.get("step_count", 0)})
            else:
                _load_npz(self.optimizer, os.path.join(directory, self._shard_file()))
            _check_same_save(directory, self._shard_file(), self.optimizer.step_count, meta)
            for g, saved in zip(self.param_groups, meta.get("param_groups", [])):
                for k, x in saved.items():
                    g[k] = _decode(x, g.get(k))
            self.skipped_steps = int(meta.get("skipped_steps", 0))
        except Exception as exc:
            error = exc
            self.load_state_dict(backup)
        c.raise_agreed(b, error, f"loading the checkpoint {directory!r}",
                       rollback=lambda: self.load_state_dict(backup))

    def __repr__(self) -> str:
        return (f"ShardedOptimizer({self.optimizer_class.__name__}, backend={self.backend!r}, "
                f"max_norm={self.max_norm}, skip_nonfinite={self.skip_nonfinite})")
