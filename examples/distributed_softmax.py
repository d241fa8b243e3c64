"""Data-parallel softmax regression with gradstep.distributed, on seeded synthetic data.

Every process draws the same global batch each step, computes the gradient of its own
slice, and the distributed optimizer averages the gradients and updates the (identical)
parameters on every process.

    torchrun --standalone --nproc_per_node=2 examples/distributed_softmax.py
    mpiexec -n 2 python examples/distributed_softmax.py
    mpiexec -n 2 python examples/distributed_softmax.py --sharded --optimizer sgd

The backend is taken from the launcher (``--backend torch|mpi`` to choose). ``--json``
prints one line of results for examples/distributed_scaling.py.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time

import numpy as np

import gradstep as gs
from gradstep import distributed as dist

OPTIMIZERS = {"adam": gs.Adam, "sgd": gs.SGD, "nadam": gs.NAdam, "adamw": gs.AdamW}


def detect_backend() -> str:
    if "TORCHELASTIC_RUN_ID" in os.environ or "LOCAL_RANK" in os.environ:
        return "torch"
    if any(k in os.environ for k in ("PMI_RANK", "PMIX_RANK", "OMPI_COMM_WORLD_RANK")):
        return "mpi"
    raise SystemExit("launch with torchrun or mpiexec, or pass --backend torch|mpi")


def make_data(n: int, features: int, classes: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian inputs labelled by a random linear teacher plus noise (the same on every
    process: it depends only on the seed)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, features)).astype(np.float32)
    teacher = rng.standard_normal((features, classes)).astype(np.float32)
    logits = x @ teacher + 2.0 * rng.standard_normal((n, classes)).astype(np.float32)
    return x, logits.argmax(axis=1)


def loss_and_grads(w: np.ndarray, b: np.ndarray, x: np.ndarray,
                   y: np.ndarray) -> tuple[float, list[np.ndarray]]:
    """Mean softmax cross-entropy over (x, y) and its gradient with respect to w and b."""
    z = x @ w + b
    z -= z.max(axis=1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(axis=1, keepdims=True)
    n = x.shape[0]
    loss = float(-np.log(p[np.arange(n), y] + 1e-12).mean())
    p[np.arange(n), y] -= 1.0
    p /= n
    return loss, [x.T @ p, p.sum(axis=0)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--backend", choices=["torch", "mpi"], default=None)
    ap.add_argument("--sharded", action="store_true", help="ZeRO-1 (ShardedOptimizer)")
    ap.add_argument("--optimizer", choices=sorted(OPTIMIZERS), default="adam")
    ap.add_argument("--lr", type=float, default=1e-2)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--batch", type=int, default=2048, help="global batch size")
    ap.add_argument("--features", type=int, default=256)
    ap.add_argument("--classes", type=int, default=20)
    ap.add_argument("--samples", type=int, default=32768)
    ap.add_argument("--max-norm", type=float, default=5.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true", help="print one JSON line of results")
    args = ap.parse_args()

    backend = dist.get_backend(args.backend or detect_backend())
    rank, world = backend.rank, backend.world_size
    if args.batch % world:
        raise SystemExit(f"--batch {args.batch} must divide by the {world} processes")
    # Share the cores between the processes on this machine.
    gs.set_num_threads(max(1, (os.cpu_count() or 1) // world))

    x, y = make_data(args.samples, args.features, args.classes, args.seed)
    w = np.zeros((args.features, args.classes), np.float32)
    b = np.zeros(args.classes, np.float32)
    cls = OPTIMIZERS[args.optimizer]
    steps = args.steps

    def cosine(t: int) -> float:  # a schedule: any callable step -> value
        return args.lr * 0.5 * (1.0 + math.cos(math.pi * min(t, steps) / steps))

    hyper: dict[str, object] = {"lr": cosine}
    if args.optimizer == "sgd":
        hyper["momentum"] = 0.9
    opt: dist.DataParallel | dist.ShardedOptimizer
    if args.sharded:
        opt = dist.ShardedOptimizer(cls, [w, b], backend, max_norm=args.max_norm, **hyper)
    else:
        opt = dist.DataParallel(cls([w, b], **hyper), backend, max_norm=args.max_norm)

    rng = np.random.default_rng(args.seed + 1)  # the same batches on every process
    local = args.batch // world
    times = []
    loss_buf = np.zeros(1)
    for step in range(args.steps):
        idx = rng.integers(0, args.samples, args.batch)[rank * local : (rank + 1) * local]
        start = time.perf_counter()
        loss, grads = loss_and_grads(w, b, x[idx], y[idx])
        opt.step(grads)
        times.append(time.perf_counter() - start)
        if step % 50 == 0 or step == args.steps - 1:
            loss_buf[0] = loss / world
            backend.all_reduce(loss_buf)  # the global batch's loss, for the log
            if rank == 0 and not args.json:
                print(f"step {step:4d}  loss {loss_buf[0]:.4f}  grad norm {opt.grad_norm:.3f}")

    accuracy = float(((x @ w + b).argmax(axis=1) == y).mean())
    state = (opt.state_nbytes() if isinstance(opt, dist.ShardedOptimizer) else sum(
        a.nbytes for e in opt.state.values() for a in e.values() if isinstance(a, np.ndarray)))
    step_ms = 1e3 * float(np.median(times[len(times) // 5 :]))
    if rank == 0:
        result = {"backend": backend.name, "world_size": world, "sharded": args.sharded,
                  "optimizer": args.optimizer, "params": w.size + b.size,
                  "step_ms": round(step_ms, 3), "accuracy": round(accuracy, 4),
                  "state_bytes_rank0": state}
        if args.json:
            print(json.dumps(result))
        else:
            print(f"{'ZeRO-1' if args.sharded else 'data parallel'} on {world} process(es) "
                  f"({backend.name}): accuracy {accuracy:.3f}, {step_ms:.2f} ms/step, "
                  f"optimizer state on rank 0: {state} bytes")
    backend.close()


if __name__ == "__main__":
    main()
