"""A STREAM-like memory-bandwidth probe written with in-place NumPy ufuncs.

What it measures: ``a += b`` on two float arrays (``np.add(a, b, out=a)``), i.e. read a,
read b, write a -- 3 * itemsize bytes per element, all of them compulsory traffic. The
written array is read first, so its cache lines are already owned when they are written:
there is no hidden read-for-ownership and no temporary, which a STREAM triad written as
``a[:] = b + s * c`` would add (a temporary for ``s * c`` and one for the sum, two extra
passes). The read:write mix (2:1) is close to an optimizer step's (Adam: 4 reads, 3 writes,
all read-modify-write like ``a += b``).

Several threads: the arrays are cut into one contiguous slice per thread and each Python
thread runs ``np.add`` on its slice; NumPy releases the GIL inside the loop, so the slices
run in parallel. The time of a pass is the wall time from a barrier to the last thread's
end. The bandwidth reported is the best (max) over repetitions, as STREAM reports.

Run as a script to print bandwidth against footprint: ``python bench/stream.py``.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import numpy as np

__all__ = ["Probe", "bandwidth", "probe"]

BYTES_PER_ELEMENT_WORDS = 3  # read a, read b, write a


@dataclass(frozen=True)
class Probe:
    footprint: int  # bytes of the two arrays together
    threads: int
    dtype: str
    gbps: float  # best over repetitions, GB/s = 1e9 bytes/s
    median_gbps: float

    def describe(self) -> str:
        return (f"a += b, {self.dtype}, footprint {self.footprint / 2**20:.0f} MiB, "
                f"{self.threads} thread(s): {self.gbps:.1f} GB/s best, "
                f"{self.median_gbps:.1f} GB/s median")


def _pass_times(a: np.ndarray, b: np.ndarray, threads: int, reps: int,
                inner: int) -> list[float]:
    n = a.size
    bounds = [n * i // threads for i in range(threads + 1)]
    slices = [(a[bounds[i]:bounds[i + 1]], b[bounds[i]:bounds[i + 1]]) for i in range(threads)]
    if threads == 1:
        out = []
        for _ in range(reps):
            t0 = time.perf_counter()
            for _ in range(inner):
                np.add(a, b, out=a)
            out.append((time.perf_counter() - t0) / inner)
        return out
    start = threading.Barrier(threads + 1)
    done = threading.Barrier(threads + 1)
    stop = [False]

    def work(i: int) -> None:
        x, y = slices[i]
        while True:
            start.wait()
            if stop[0]:
                return
            for _ in range(inner):
                np.add(x, y, out=x)
            done.wait()

    workers = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(threads)]
    for w in workers:
        w.start()
    out = []
    try:
        for _ in range(reps):
            start.wait()
            t0 = time.perf_counter()
            done.wait()
            out.append((time.perf_counter() - t0) / inner)
    finally:
        stop[0] = True
        start.wait()
        for w in workers:
            w.join()
    return out


def probe(footprint: int, threads: int = 1, dtype: str = "float32", reps: int = 7,
          min_seconds: float = 0.01) -> Probe:
    """Bandwidth of ``a += b`` with ``footprint`` bytes in the two arrays together."""
    item = np.dtype(dtype).itemsize
    n = max(threads * 64, footprint // (2 * item))
    n -= n % 64
    a = np.zeros(n, dtype)
    b = np.full(n, 1e-30, dtype)
    # One untimed pass sizes the inner repeat so a timed block lasts >= min_seconds.
    t = min(_pass_times(a, b, threads, 2, 1))
    inner = max(1, int(min_seconds / max(t, 1e-9)))
    times = _pass_times(a, b, threads, reps, inner)
    moved = BYTES_PER_ELEMENT_WORDS * n * item
    return Probe(footprint=2 * n * item, threads=threads, dtype=dtype,
                 gbps=moved / min(times) / 1e9,
                 median_gbps=moved / float(np.median(times)) / 1e9)


def bandwidth(footprint: int, threads: int = 1, dtype: str = "float32") -> float:
    """Best GB/s of ``a += b`` at this footprint (bytes of both arrays)."""
    return probe(footprint, threads, dtype).gbps


if __name__ == "__main__":
    import os

    cores = len(os.sched_getaffinity(0))
    for mib in (1, 4, 16, 64, 256, 1024, 2048):
        for th in sorted({1, cores}):
            print(probe(mib * 2**20, th).describe(), flush=True)
