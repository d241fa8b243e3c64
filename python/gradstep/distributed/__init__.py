"""Data-parallel training and ZeRO-1 optimizer-state sharding on an existing engine.

Two backends behind one small interface (:class:`Backend`): torch.distributed with gloo
on CPU (``pip install 'gradstep[dist-torch]'``, launch with ``torchrun``) and MPI through
mpi4py (``pip install 'gradstep[dist-mpi]'``, launch with ``mpiexec``). Neither is
imported until it is used.

- :class:`DataParallel` wraps any gradstep optimizer: every step averages the local
  gradients with one all-reduce over a flat buffer, then steps.
- :class:`ShardedOptimizer` is ZeRO stage 1: reduce-scatter the gradients, step only
  this process's 1/N of the parameters (so it holds 1/N of the optimizer state), then
  all-gather the parameters.

Both take this process's local gradients in ``step(grads)``, leave every process with
the same parameters, offer global-norm clipping (``max_norm``) and a non-finite guard
(``skip_nonfinite``) reduced over the whole model, and save/load checkpoints as a
directory with one file per shard and a manifest.
"""

from __future__ import annotations

import os
from typing import Union

from ._backends import Backend, DistributedError, MPIBackend, TorchBackend, get_backend
from ._data_parallel import DataParallel
from ._sharded import ShardedOptimizer

__all__ = [
    "Backend",
    "DataParallel",
    "DistributedError",
    "MPIBackend",
    "ShardedOptimizer",
    "TorchBackend",
    "get_backend",
    "load",
    "save",
]

Distributed = Union[DataParallel, ShardedOptimizer]


def save(optimizer: Distributed, directory: str | os.PathLike[str]) -> None:
    """Write a checkpoint of a distributed optimizer to ``directory`` (a collective):
    shard files plus ``manifest.json``. See :meth:`ShardedOptimizer.save`."""
    if not isinstance(optimizer, (DataParallel, ShardedOptimizer)):
        raise TypeError("optimizer must be a DataParallel or ShardedOptimizer, got "
                        f"{type(optimizer).__name__} (use gradstep.save for a plain optimizer)")
    optimizer.save(directory)


def load(optimizer: Distributed, directory: str | os.PathLike[str]) -> None:
    """Restore a checkpoint written by :func:`save` (a collective). A ZeRO-1 checkpoint
    may be loaded by another number of processes than wrote it: each reads every shard."""
    if not isinstance(optimizer, (DataParallel, ShardedOptimizer)):
        raise TypeError("optimizer must be a DataParallel or ShardedOptimizer, got "
                        f"{type(optimizer).__name__} (use gradstep.load for a plain optimizer)")
    optimizer.load(directory)
