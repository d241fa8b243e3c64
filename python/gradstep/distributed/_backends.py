"""The communication backends: torch.distributed (gloo, CPU) and MPI through mpi4py.

Both implement the same five collectives over 1-D, C-contiguous NumPy buffers, in place
and without copies where the engine allows it. Neither engine is imported until a backend
is created, so ``import gradstep.distributed`` works without either of them.
"""

from __future__ import annotations

import abc
import os
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import numpy as np

__all__ = ["Backend", "DistributedError", "MPIBackend", "TorchBackend", "get_backend"]

_TORCH_ENV = ("MASTER_ADDR", "MASTER_PORT", "RANK", "WORLD_SIZE")


class DistributedError(RuntimeError):
    """A collective failed: another process died, stopped responding or called a
    different collective; or some processes rejected a call that the others accepted."""


class Backend(abc.ABC):
    """One process of a group of ``world_size`` processes that run the same program.

    Buffers are 1-D, C-contiguous float32/float64 (or float64 only where noted) arrays of
    the same size on every process; every collective is called by every process in the
    same order.
    """

    name: str
    rank: int
    world_size: int

    @abc.abstractmethod
    def all_reduce(self, buf: np.ndarray) -> None:
        """Sum ``buf`` across processes, in place; every process gets the same bits."""

    @abc.abstractmethod
    def reduce_scatter(self, send: np.ndarray, recv: np.ndarray) -> None:
        """Sum ``send`` (``world_size * recv.size`` elements) across processes and leave
        block ``rank`` of the sum in ``recv``."""

    @abc.abstractmethod
    def all_gather(self, buf: np.ndarray) -> None:
        """In place: block ``r`` of ``buf`` (``buf.size // world_size`` elements) is taken
        from process ``r`` and copied to every process."""

    @abc.abstractmethod
    def broadcast(self, buf: np.ndarray, root: int = 0) -> None:
        """Copy ``buf`` from process ``root`` to every process, in place."""

    def close(self) -> None:  # noqa: B027 - an optional hook, not every backend needs it
        """Release what the backend created (the torch process group it initialized)."""

    def agree(self, failed: bool) -> list[int]:
        """The ranks on which ``failed`` is True (a collective: every process must call it)."""
        flags = np.zeros(self.world_size, dtype=np.float64)
        flags[self.rank] = 1.0 if failed else 0.0
        self.all_reduce(flags)
        return [int(r) for r in np.flatnonzero(flags)]

    def _fail(self, op: str, exc: BaseException) -> DistributedError:
        return DistributedError(
            f"gradstep.distributed: {op} failed on rank {self.rank} of {self.world_size} "
            f"(backend {self.name}): another process probably died, stopped responding or "
            f"called a different collective; check the logs of the other processes. "
            f"Cause: {type(exc).__name__}: {exc}"
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(rank={self.rank}, world_size={self.world_size})"


class TorchBackend(Backend):
    """torch.distributed on CPU (gloo).

    Uses ``group`` (default: the default process group). When torch.distributed is not
    initialized yet, initializes the default group with gloo from the environment that
    ``torchrun`` sets (``MASTER_ADDR``, ``MASTER_PORT``, ``RANK``, ``WORLD_SIZE``), with
    ``timeout`` seconds for rendezvous and for every collective (torch's default if None).
    NumPy buffers are shared with torch tensors through ``torch.from_numpy`` (no copy).
    """

    name = "torch"

    def __init__(self, group: Any = None, timeout: float | None = None) -> None:
        try:
            import torch
            import torch.distributed as dist
        except ImportError as exc:
            raise ImportError(
                "gradstep.distributed backend 'torch' needs PyTorch with torch.distributed: "
                "pip install 'gradstep[dist-torch]'"
            ) from exc
        if not dist.is_available():
            raise ImportError(
                "gradstep.distributed backend 'torch': this PyTorch build has no "
                "torch.distributed; pip install 'gradstep[dist-torch]'"
            )
        if timeout is not None and not timeout > 0:
            raise ValueError(f"Invalid timeout: {timeout!r} (expected seconds > 0 or None)")
        self._torch = torch
        self._dist = dist
        self.owns_group = False
        if not dist.is_initialized():
            if group is not None:
                raise ValueError("group was given but torch.distributed is not initialized")
            missing = [k for k in _TORCH_ENV if k not in os.environ]
            if missing:
                raise RuntimeError(
                    "torch.distributed is not initialized and the environment does not say "
                    f"how to (missing {', '.join(missing)}): launch with "
                    "'torchrun --nproc_per_node=N script.py', or call "
                    "torch.distributed.init_process_group('gloo') before creating the backend"
                )
            kwargs: dict[str, Any] = {}
            if timeout is not None:
                kwargs["timeout"] = timedelta(seconds=timeout)
            dist.init_process_group("gloo", **kwargs)
            self.owns_group = True
        self.group = group
        kind = str(dist.get_backend(group))
        if "gloo" not in kind and "mpi" not in kind:
            raise ValueError(
                f"the torch.distributed process group uses {kind!r}; gradstep updates NumPy "
                "arrays on the CPU and needs a group that handles CPU tensors (gloo)"
            )
        self.rank = int(dist.get_rank(group))
        self.world_size = int(dist.get_world_size(group))
        self._reduce_scatter_op: Callable[..., Any] | None = getattr(
            dist, "reduce_scatter_single", None
        ) or getattr(dist, "reduce_scatter_tensor", None)
        self._all_gather_op: Callable[..., Any] | None = getattr(
            dist, "all_gather_single", None
        ) or getattr(dist, "all_gather_into_tensor", None)

    def _t(self, a: np.ndarray) -> Any:
        return self._torch.from_numpy(a)

    def _run(self, op: str, fn: Callable[[], Any]) -> None:
        try:
            fn()
        except RuntimeError as exc:  # gloo's errors, DistBackendError among them
            raise self._fail(op, exc) from exc

    def all_reduce(self, buf: np.ndarray) -> None:
        t = self._t(buf)
        self._run("all_reduce", lambda: self._dist.all_reduce(t, group=self.group))

    def reduce_scatter(self, send: np.ndarray, recv: np.ndarray) -> None:
        op = self._reduce_scatter_op
        if op is not None:
            out, inp = self._t(recv), self._t(send)
            try:
                op(out, inp, group=self.group)
                return
            except (RuntimeError, NotImplementedError) as exc:
                if "support" not in str(exc).lower():
                    raise self._fail("reduce_scatter", exc) from exc
                self._reduce_scatter_op = None  # an older gloo: fall back for good
        # Fallback: an all-reduce of a copy, then our block (more traffic, same result).
        tmp = send.copy()
        self.all_reduce(tmp)
        n = recv.size
        recv[...] = tmp[self.rank * n : (self.rank + 1) * n]

    def all_gather(self, buf: np.ndarray) -> None:
        n = buf.size // self.world_size
        mine = buf[self.rank * n : (self.rank + 1) * n].copy()  # the input may not alias the output
        op = self._all_gather_op
        if op is not None:
            try:
                op(self._t(buf), self._t(mine), group=self.group)
                return
            except (RuntimeError, NotImplementedError) as exc:
                if "support" not in str(exc).lower():
                    raise self._fail("all_gather", exc) from exc
                self._all_gather_op = None
        out = [self._t(buf[r * n : (r + 1) * n]) for r in range(self.world_size)]
        self._run("all_gather", lambda: self._dist.all_gather(out, self._t(mine), group=self.group))

    def broadcast(self, buf: np.ndarray, root: int = 0) -> None:
        t = self._t(buf)
        src = root if self.group is None else self._dist.get_global_rank(self.group, root)
        self._run("broadcast", lambda: self._dist.broadcast(t, src=src, group=self.group))

    def close(self) -> None:
        """Destroy the process group if this backend created it."""
        if self.owns_group and self._dist.is_initialized():
            self._dist.destroy_process_group()
            self.owns_group = False


class MPIBackend(Backend):
    """MPI through mpi4py, on ``comm`` (default ``MPI.COMM_WORLD``).

    With ``timeout`` (seconds) every collective is started non-blocking and waited for
    at most that long; past it a :class:`DistributedError` is raised (MPI cannot cancel a
    collective, so the program should then end: ``python -m mpi4py script.py`` turns an
    uncaught exception into ``MPI_Abort`` of the whole job). Without it, collectives block,
    and a process that dies makes ``mpiexec`` end the others.
    """

    name = "mpi"

    def __init__(self, comm: Any = None, timeout: float | None = None) -> None:
        try:
            from mpi4py import MPI
        except ImportError as exc:
            raise ImportError(
                "gradstep.distributed backend 'mpi' needs mpi4py and an MPI library: "
                "pip install 'gradstep[dist-mpi]' (mpi4py with the mpich wheel, which "
                "brings mpiexec)"
            ) from exc
        if timeout is not None and not timeout > 0:
            raise ValueError(f"Invalid timeout: {timeout!r} (expected seconds > 0 or None)")
        self._MPI = MPI
        self.comm = MPI.COMM_WORLD if comm is None else comm
        self.rank = int(self.comm.Get_rank())
        self.world_size = int(self.comm.Get_size())
        self.timeout = timeout

    def _run(self, op: str, blocking: Callable[[], Any], start: Callable[[], Any]) -> None:
        try:
            if self.timeout is None:
                blocking()
                return
            request = start()
            deadline = time.monotonic() + self.timeout
            spins = 0
            while not request.Test():
                spins += 1
                if spins > 1000:
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"no progress for {self.timeout:g} s")
                    time.sleep(1e-4)
        except (self._MPI.Exception, TimeoutError) as exc:
            raise self._fail(op, exc) from exc

    def all_reduce(self, buf: np.ndarray) -> None:
        c, mpi = self.comm, self._MPI
        self._run("all_reduce",
                  lambda: c.Allreduce(mpi.IN_PLACE, buf, op=mpi.SUM),
                  lambda: c.Iallreduce(mpi.IN_PLACE, buf, op=mpi.SUM))

    def reduce_scatter(self, send: np.ndarray, recv: np.ndarray) -> None:
        c, mpi = self.comm, self._MPI
        self._run("reduce_scatter",
                  lambda: c.Reduce_scatter_block(send, recv, op=mpi.SUM),
                  lambda: c.Ireduce_scatter_block(send, recv, op=mpi.SUM))

    def all_gather(self, buf: np.ndarray) -> None:
        c, mpi = self.comm, self._MPI
        self._run("all_gather",
                  lambda: c.Allgather(mpi.IN_PLACE, buf),
                  lambda: c.Iallgather(mpi.IN_PLACE, buf))

    def broadcast(self, buf: np.ndarray, root: int = 0) -> None:
        c = self.comm
        self._run("broadcast", lambda: c.Bcast(buf, root=root),
                  lambda: c.Ibcast(buf, root=root))


_BACKENDS = {"torch": TorchBackend, "mpi": MPIBackend}


def get_backend(backend: str | Backend = "torch", *, timeout: float | None = None) -> Backend:
    """A :class:`Backend` from its name (``"torch"`` or ``"mpi"``), or ``backend`` itself."""
    if isinstance(backend, Backend):
        if timeout is not None:
            raise ValueError("timeout applies to a backend given by name; set it on the "
                             f"{type(backend).__name__} itself")
        return backend
    if not isinstance(backend, str) or backend not in _BACKENDS:
        raise ValueError(
            f"Invalid backend: {backend!r} (expected 'torch', 'mpi' or a "
            "gradstep.distributed.Backend instance)"
        )
    return _BACKENDS[backend](timeout=timeout)
