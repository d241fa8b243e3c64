"""Step time of examples/distributed_softmax.py against the number of processes, on this
machine (loopback), for both launchers, as a Markdown table.

    python examples/distributed_scaling.py [--worlds 1 2 3] [--steps 100]

A launcher or backend that is not installed is left out. Times are medians per step
(gradient of the local slice + communication + update) for a fixed global batch.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCRIPT = str(HERE / "distributed_softmax.py")


def tool(name: str) -> str | None:
    local = Path(sys.executable).parent / name
    return str(local) if local.exists() else shutil.which(name)


def run(backend: str, world: int, sharded: bool, extra: list[str]) -> dict[str, object]:
    args = [SCRIPT, "--json", *extra] + (["--sharded"] if sharded else [])
    if backend == "torch":
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               f"--nproc_per_node={world}", *args]
    else:
        cmd = [str(tool("mpiexec")), "-hosts", "127.0.0.1", "-n", str(world), sys.executable,
               *args]
    env = {**os.environ, "GLOO_SOCKET_IFNAME": "lo"}
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env, check=True)
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("{")]
    return dict(json.loads(lines[-1]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--worlds", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--features", type=int, default=512)
    ap.add_argument("--classes", type=int, default=100)
    ap.add_argument("--batch", type=int, default=1536)
    args = ap.parse_args()
    extra = ["--steps", str(args.steps), "--features", str(args.features),
             "--classes", str(args.classes), "--batch", str(args.batch)]
    backends = []
    if importlib.util.find_spec("torch") is not None:
        backends.append("torch")
    if importlib.util.find_spec("mpi4py") is not None and tool("mpiexec"):
        backends.append("mpi")
    params = args.features * args.classes + args.classes
    print(f"softmax regression, {params} float32 parameters, Adam, global batch {args.batch}, "
          f"{os.cpu_count()} cores, loopback\n")
    print("| processes | backend | DataParallel ms/step | ShardedOptimizer ms/step "
          "| optimizer state per process |")
    print("|---|---|---|---|---|")
    for world in args.worlds:
        for backend in backends:
            dp = run(backend, world, False, extra)
            zero = run(backend, world, True, extra)
            print(f"| {world} | {backend} | {dp['step_ms']:.2f} | {zero['step_ms']:.2f} "
                  f"| {int(dp['state_bytes_rank0']) // 1024} KiB -> "  # type: ignore[call-overload]
                  f"{int(zero['state_bytes_rank0']) // 1024} KiB |", flush=True)  # type: ignore[call-overload]


if __name__ == "__main__":
    main()
