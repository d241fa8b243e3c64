"""One process of a distributed test run, launched by tests/test_distributed.py.

    python worker.py SCENARIO BACKEND OUTDIR WORLD_SIZE [ARG]

with torch.distributed's environment (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT) or
under mpiexec. Results go to OUTDIR/SCENARIO-rankR.npz; errors to stderr and the exit code.
"""

from __future__ import annotations

import os
import sys
import traceback

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import problem as P

import gradstep as gs
from gradstep import distributed as dist


def run(cls_name: str, opt_name: str, backend: dist.Backend, steps: range,
        params: list[np.ndarray], opt: object = None, *, clip: bool = True) -> object:
    cls, hyper = P.OPTIMIZERS[opt_name]
    options = dict(max_norm=P.MAX_NORM, skip_nonfinite=True) if clip else {}
    if opt is None:
        if cls_name == "dp":
            inner = cls(P.param_groups(params, opt_name), **hyper)
            opt = dist.DataParallel(inner, backend, **options)
        else:
            opt = dist.ShardedOptimizer(cls, P.param_groups(params, opt_name), backend,
                                        **hyper, **options)
    for t in steps:
        grads = P.local_grads(params, t, backend.rank, backend.world_size)
        if not clip:
            for g in grads:
                np.nan_to_num(g, copy=False)
        opt.step(grads)  # type: ignore[attr-defined]
    return opt


def equivalence(backend: dist.Backend, outdir: str) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    full = backend.world_size == 2
    for mode in ("dp", "zero"):
        for name in P.OPTIMIZERS if full else P.CORE:
            params = P.initial_params()
            opt = run(mode, name, backend, range(P.STEPS), params)
            for i, p in enumerate(params):
                out[f"{mode}/{name}/{i}"] = p
            out[f"{mode}/{name}/skipped"] = np.array(opt.skipped_steps)  # type: ignore[attr-defined]
            inner = opt.optimizer  # type: ignore[attr-defined]
            out[f"{mode}/{name}/state_nbytes"] = np.array(P.state_nbytes(inner))
        if not full:
            continue
        # Without clipping and nan: the bits where the reduction order allows.
        params = P.initial_params()
        run(mode, "Adam", backend, range(P.STEPS), params, clip=False)
        for i, p in enumerate(params):
            out[f"{mode}/noclip/{i}"] = p
        # Checkpoint at step 15, go on to 30; then resume a fresh optimizer from it.
        params = P.initial_params()
        ckpt = os.path.join(outdir, f"ckpt-{mode}")
        opt = run(mode, "Adam", backend, range(15), params)
        dist.save(opt, ckpt)  # type: ignore[arg-type]
        at15 = [p.copy() for p in params]
        run(mode, "Adam", backend, range(15, P.STEPS), params, opt)
        resumed = [p.copy() for p in at15]
        cls, hyper = P.OPTIMIZERS["Adam"]
        options = dict(max_norm=P.MAX_NORM, skip_nonfinite=True)
        if mode == "dp":
            opt2: object = dist.DataParallel(cls(P.param_groups(resumed, "Adam"), **hyper), backend,
                                             **options)
        else:
            opt2 = dist.ShardedOptimizer(cls, P.param_groups(resumed, "Adam"), backend, **hyper,
                                         **options)
        dist.load(opt2, ckpt)  # type: ignore[arg-type]
        run(mode, "Adam", backend, range(15, P.STEPS), resumed, opt2)
        out[f"{mode}/resume_equal"] = np.array(
            all(np.array_equal(a, b) for a, b in zip(params, resumed)))
    return out


def die(backend: dist.Backend, mode: str) -> dict[str, np.ndarray]:
    params = P.initial_params()
    cls, hyper = P.OPTIMIZERS["Adam"]
    if mode == "dp":
        opt: object = dist.DataParallel(cls(P.param_groups(params, "Adam"), **hyper), backend)
    else:
        opt = dist.ShardedOptimizer(cls, P.param_groups(params, "Adam"), backend, **hyper)
    for t in range(P.STEPS):
        if t == 3 and backend.rank == 1:
            os._exit(17)  # dies without a word, mid-run
        grads = [np.nan_to_num(g) for g in P.local_grads(params, t, backend.rank,
                                                           backend.world_size)]
        opt.step(grads)  # type: ignore[attr-defined]
    return {"finished": np.array(True)}


def reshard(backend: dist.Backend, ckpt: str) -> dict[str, np.ndarray]:
    """Load a ZeRO-1 checkpoint written by another number of processes and go on."""
    params = P.initial_params()
    cls, hyper = P.OPTIMIZERS["Adam"]
    opt = dist.ShardedOptimizer(cls, P.param_groups(params, "Adam"), backend, **hyper)
    opt.load(ckpt)
    loaded = opt.step_count
    nbytes = opt.state_nbytes()
    run("zero", "Adam", backend, range(15, 17), params, opt)
    return {"step_count": np.array(loaded), "state_nbytes": np.array(nbytes),
            "after": np.array(opt.step_count)}


def missing_grads(backend: dist.Backend) -> dict[str, np.ndarray]:
    """Rank 0 has no gradient (None) for parameter 1 on every step: the same parameters
    as when it passes zeros for it, with DataParallel and with ShardedOptimizer."""
    out: dict[str, np.ndarray] = {}
    cls, hyper = P.OPTIMIZERS["Adam"]
    for mode in ("dp", "zero"):
        finals = []
        for use_none in (True, False):
            params = P.initial_params()
            if mode == "dp":
                opt: object = dist.DataParallel(cls(P.param_groups(params, "Adam"), **hyper),
                                                backend)
            else:
                opt = dist.ShardedOptimizer(cls, P.param_groups(params, "Adam"), backend,
                                            **hyper)
            for t in range(5):
                grads: list[np.ndarray | None] = [
                    np.nan_to_num(g) for g in P.local_grads(params, t, backend.rank,
                                                            backend.world_size)]
                if backend.rank == 0:
                    grads[1] = None if use_none else np.zeros_like(params[1])
                opt.step(grads)  # type: ignore[attr-defined]
            finals.append(params)
        out[f"{mode}/equal"] = np.array(
            all(np.array_equal(a, b) for a, b in zip(*finals)))
        out[f"{mode}/moved"] = np.array(not np.array_equal(finals[0][1], P.initial_params()[1]))
    return out


def main() -> None:
    scenario, backend_name, outdir, world = sys.argv[1:5]
    arg = sys.argv[5] if len(sys.argv) > 5 else ""
    gs.set_num_threads(1)
    timeout = float(arg) if scenario == "die" and backend_name == "mpi" and arg else None
    if scenario == "die" and backend_name == "torch":
        timeout = 20.0
    backend = dist.get_backend(backend_name, timeout=timeout)
    if backend.world_size != int(world):
        sys.exit(f"expected {world} processes, got {backend.world_size}: mpi4py and mpiexec "
                 "come from different MPI libraries?")
    try:
        if scenario == "equivalence":
            result = equivalence(backend, outdir)
        elif scenario == "die":
            result = die(backend, "dp" if backend_name == "torch" else "zero")
        elif scenario == "reshard":
            result = reshard(backend, arg)
        elif scenario == "missing":
            result = missing_grads(backend)
        else:
            sys.exit(f"unknown scenario {scenario!r}")
    except dist.DistributedError:
        traceback.print_exc()
        sys.stderr.flush()
        os._exit(3)  # MPI cannot finalize after a failed collective
    np.savez(os.path.join(outdir, f"{scenario}-rank{backend.rank}.npz"), **result)
    backend.close()


if __name__ == "__main__":
    main()
