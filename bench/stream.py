"""Memory bandwidth against footprint: the ``a += b`` probe of the benchmarks.

The probe itself (in-place ``np.add(a, b, out=a)``: read a, read b, write a, no temporary
and no read-for-ownership; several threads each add their own slice) is
``gradstep._bench.probe_dram``, the one bench/bench_optimizers.py and
bench/bench_minimize.py set their results against. This script sweeps the footprint to
show where the caches end:

    python bench/stream.py
"""

from __future__ import annotations

import os

from gradstep._bench import probe_dram

if __name__ == "__main__":
    cores = len(os.sched_getaffinity(0))
    for mib in (1, 4, 16, 64, 256, 1024, 2048):
        for threads in sorted({1, cores}):
            r = probe_dram(threads, mib << 20)
            print(f"a += b, float32, footprint {mib} MiB, {threads} thread(s): "
                  f"{r['best']:.1f} GB/s best, {r['median']:.1f} GB/s median", flush=True)
