"""Side-by-side speed of gradstep, a careful NumPy implementation and torch.optim.

``python -m gradstep bench [--quick]`` runs this module's :func:`main`; the full suite
(``bench/bench_optimizers.py`` in the source tree) drives the same machinery over more
optimizers, sizes up to 1e8 elements, and writes ``bench/RESULTS.md`` and the plots.

Method
------
* One case = (optimizer, dtype, tensor layout, thread count). Every implementation gets
  its own copy of the parameters and its own state; the gradients (read only) are shared.
* Paired, interleaved runs: gradstep and one peer alternate blocks of ``k`` steps
  (A B B A A B ...), each block about ``block_seconds`` long; the speed-up over the peer is
  the median over pairs of ``t_peer / t_gradstep``, so slow drifts of a shared, noisy
  machine cancel. ns per element is the median block time / (k * elements). With more
  than one thread every timed block follows an untimed block of the same implementation,
  so the previous implementation's still-spinning workers cannot take its cores.
* Bandwidth: each optimizer moves a known number of bytes per element and step (Adam
  fp32: read p, g, m, v and write p, m, v = 28 B). Its GB/s is set against a STREAM-like
  probe, ``a += b`` with in-place NumPy (read a, read b, write a: 3 words per element, no
  temporaries, no read-for-ownership), run *paired with gradstep* on arrays with the same
  footprint (so an in-cache case is compared with in-cache bandwidth), and against the
  DRAM bandwidth of the same probe on a footprint far larger than the last-level cache.
* The NumPy peer is what a careful NumPy user writes: in-place ufuncs with ``out=``,
  preallocated temporaries, scalar coefficients folded per step, and large tensors
  processed in cache-sized chunks so temporaries stay in L2. It is single-threaded.
* torch.optim: ``foreach=False`` (the for-loop, torch's default on CPU), ``foreach=True``
  and ``fused=True`` where torch has a fused CPU kernel (SGD, Adagrad, Adam, AdamW in torch
  2.x). ``torch.set_num_threads`` follows the case's thread count.

A benchmark never asserts a time: the tests run this in ``--smoke`` mode and check only
the shape of the table.
"""

from __future__ import annotations

import argparse
import datetime
import gc
import math
import os
import platform
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

import numpy as np

import gradstep as gs

__all__ = ["Case", "Config", "Result", "machine", "main", "markdown", "run"]

# ---------------------------------------------------------------------------------------
# What each optimizer is in this benchmark: constructor kwargs (shared by gradstep and
# torch), arrays touched, words read and written per element and step.


@dataclass(frozen=True)
class Spec:
    name: str  # gradstep / torch class name
    label: str  # as shown in tables
    kwargs: dict[str, Any]
    arrays: int  # distinct arrays touched (footprint)
    reads: int
    writes: int
    fused: bool  # torch has fused=True on CPU

    def bytes_per_element(self, itemsize: int) -> int:
        return (self.reads + self.writes) * itemsize


SPECS: dict[str, Spec] = {
    s.label: s
    for s in [
        Spec("Adam", "Adam", {"lr": 1e-3}, 4, 4, 3, True),
        Spec("AdamW", "AdamW", {"lr": 1e-3, "weight_decay": 1e-2}, 4, 4, 3, True),
        Spec("SGD", "SGD-momentum", {"lr": 1e-3, "momentum": 0.9}, 3, 3, 2, True),
        Spec("RMSprop", "RMSprop", {"lr": 1e-3}, 3, 3, 2, False),
        Spec("Adagrad", "Adagrad", {"lr": 1e-3}, 3, 3, 2, True),
        Spec("Adadelta", "Adadelta", {"lr": 1e-3}, 4, 4, 3, False),
        Spec("Adamax", "Adamax", {"lr": 1e-3}, 4, 4, 3, False),
        Spec("NAdam", "NAdam", {"lr": 1e-3}, 4, 4, 3, False),
        Spec("RAdam", "RAdam", {"lr": 1e-3}, 4, 4, 3, False),
        Spec("Rprop", "Rprop", {"lr": 1e-3}, 4, 4, 3, False),
    ]
}
CORE = ["Adam", "AdamW", "SGD-momentum", "RMSprop", "Adagrad"]
UNFUSABLE = ["Adadelta", "Adamax", "NAdam", "RAdam", "Rprop"]
PEERS = ["numpy", "loop", "foreach", "fused"]
PEER_LABELS = {
    "gradstep": "gradstep",
    "numpy": "NumPy",
    "loop": "torch for-loop",
    "foreach": "torch foreach",
    "fused": "torch fused",
    "probe": "a+=b probe",
}


# ---------------------------------------------------------------------------------------
# The careful NumPy implementations: one function per optimizer, on (views of) arrays,
# with two preallocated temporaries t, u of the same length. Coefficients come from
# `coefficients(step)` computed once per step, as the kernels do.

Arr = np.ndarray
Scalars = dict[str, float]


def _np_sgd(p: Arr, g: Arr, st: list[Arr], t: Arr, u: Arr, c: Scalars) -> None:
    (buf,) = st
    if c["first"]:
        np.copyto(buf, g)
    else:
        buf *= c["momentum"]
        buf += g
    np.multiply(buf, c["lr"], out=t)
    p -= t


def _rms_descent(p: Arr, g: Arr, s: Arr, t: Arr, eps: float, lr: float) -> None:
    """p -= lr * g / (sqrt(s) + eps), with t as scratch."""
    np.sqrt(s, out=t)
    t += eps
    np.divide(g, t, out=t)
    t *= lr
    p -= t


def _np_adagrad(p: Arr, g: Arr, st: list[Arr], t: Arr, u: Arr, c: Scalars) -> None:
    (s,) = st
    np.multiply(g, g, out=t)
    s += t
    _rms_descent(p, g, s, t, c["eps"], c["clr"])


def _np_rmsprop(p: Arr, g: Arr, st: list[Arr], t: Arr, u: Arr, c: Scalars) -> None:
    (s,) = st
    np.multiply(g, g, out=t)
    s -= t  # s = alpha s + (1 - alpha) g^2 = alpha (s - g^2) + g^2
    s *= c["alpha"]
    s += t
    _rms_descent(p, g, s, t, c["eps"], c["lr"])


def _np_adadelta(p: Arr, g: Arr, st: list[Arr], t: Arr, u: Arr, c: Scalars) -> None:
    s, a = st
    rho = c["rho"]
    np.multiply(g, g, out=t)
    s -= t
    s *= rho
    s += t
    np.add(s, c["eps"], out=t)
    np.sqrt(t, out=t)  # std
    np.add(a, c["eps"], out=u)
    np.sqrt(u, out=u)
    u /= t
    u *= g  # delta
    np.multiply(u, u, out=t)
    a -= t
    a *= rho
    a += t
    u *= c["lr"]
    p -= u


def _lerp(m: Arr, g: Arr, t: Arr, w: float) -> None:
    np.subtract(g, m, out=t)
    t *= w
    m += t


def _second_moment(v: Arr, g: Arr, t: Arr, beta2: float) -> None:
    np.multiply(g, g, out=t)
    v -= t
    v *= beta2
    v += t


def _np_adam(p: Arr, g: Arr, st: list[Arr], t: Arr, u: Arr, c: Scalars) -> None:
    m, v = st
    if c["decay"] != 1.0:
        p *= c["decay"]
    _lerp(m, g, t, c["one_minus_beta1"])
    _second_moment(v, g, t, c["beta2"])
    np.sqrt(v, out=t)
    t *= c["inv_bc2_sqrt"]
    t += c["eps"]
    np.divide(m, t, out=t)
    t *= c["step_size"]
    p -= t


def _np_adamax(p: Arr, g: Arr, st: list[Arr], t: Arr, u: Arr, c: Scalars) -> None:
    m, inf = st
    _lerp(m, g, t, c["one_minus_beta1"])
    inf *= c["beta2"]
    np.abs(g, out=t)
    t += c["eps"]
    np.maximum(inf, t, out=inf)
    np.divide(m, inf, out=t)
    t *= c["clr"]
    p -= t


def _np_nadam(p: Arr, g: Arr, st: list[Arr], t: Arr, u: Arr, c: Scalars) -> None:
    m, v = st
    _lerp(m, g, t, c["one_minus_beta1"])
    _second_moment(v, g, t, c["beta2"])
    np.sqrt(v, out=t)
    t *= c["inv_bc2_sqrt"]
    t += c["eps"]  # denom
    np.multiply(m, c["ratio"], out=u)  # (c2 / c1) m + g, then * c1 / denom
    u += g
    u /= t
    u *= c["c1"]
    p -= u


def _np_radam(p: Arr, g: Arr, st: list[Arr], t: Arr, u: Arr, c: Scalars) -> None:
    m, v = st
    _lerp(m, g, t, c["one_minus_beta1"])
    _second_moment(v, g, t, c["beta2"])
    if c["rectified"]:
        np.sqrt(v, out=t)
        t += c["eps"]
        np.divide(m, t, out=t)
        t *= c["scale"]
    else:
        np.multiply(m, c["scale"], out=t)
    p -= t


def _np_rprop(p: Arr, g: Arr, st: list[Arr], t: Arr, u: Arr, c: Scalars) -> None:
    prev, step = st
    np.multiply(g, prev, out=t)
    pos = t > 0
    neg = t < 0
    t.fill(1.0)
    np.copyto(t, c["etaplus"], where=pos)
    np.copyto(t, c["etaminus"], where=neg)
    step *= t
    np.clip(step, c["step_min"], c["step_max"], out=step)
    np.copyto(prev, g)
    np.copyto(prev, 0, where=neg)  # no move, and no memory, after a sign flip
    np.sign(prev, out=t)
    t *= step
    p -= t


class NumpyOptimizer:
    """torch.optim's single-tensor algorithms in careful NumPy (see the module doc)."""

    # Large tensors are updated in chunks of this many elements so the ~10 passes of
    # in-place ufuncs hit L2 instead of DRAM; small tensors go in one piece.
    chunk = 1 << 14

    def __init__(self, spec: Spec, params: list[Arr]) -> None:
        self.spec = spec
        self.params = params
        self.h = {**_torch_defaults(spec.name), **spec.kwargs}
        self.fn: Callable[[Arr, Arr, list[Arr], Arr, Arr, Scalars], None] = {
            "SGD": _np_sgd, "Adagrad": _np_adagrad, "RMSprop": _np_rmsprop,
            "Adadelta": _np_adadelta, "Adam": _np_adam, "AdamW": _np_adam,
            "Adamax": _np_adamax, "NAdam": _np_nadam, "RAdam": _np_radam, "Rprop": _np_rprop,
        }[spec.name]
        self.state = [self._init_state(p) for p in params]
        longest = min(max(p.size for p in params), self.chunk)
        dtype = params[0].dtype
        self.t = np.empty(longest, dtype)
        self.u = np.empty(longest, dtype)
        self.steps = 0
        self.mu_product = 1.0

    def _init_state(self, p: Arr) -> list[Arr]:
        name = self.spec.name
        if name in ("SGD", "Adagrad", "RMSprop"):
            return [np.zeros(p.size, p.dtype)]
        if name == "Rprop":
            return [np.zeros(p.size, p.dtype), np.full(p.size, self.h["lr"], p.dtype)]
        return [np.zeros(p.size, p.dtype), np.zeros(p.size, p.dtype)]

    def coefficients(self, step: int) -> Scalars:
        h = self.h
        name = self.spec.name
        c: Scalars = {"lr": h["lr"], "eps": h.get("eps", 0.0), "first": float(step == 1)}
        if name == "SGD":
            c["momentum"] = h["momentum"]
        elif name == "Adagrad":
            c["clr"] = h["lr"] / (1 + (step - 1) * h["lr_decay"])
        elif name == "RMSprop":
            c["alpha"] = h["alpha"]
        elif name == "Adadelta":
            c["rho"] = h["rho"]
        elif name == "Rprop":
            c.update(etaminus=h["etas"][0], etaplus=h["etas"][1],
                     step_min=h["step_sizes"][0], step_max=h["step_sizes"][1])
        else:
            b1, b2 = h["betas"]
            bc1 = 1 - b1**step
            bc2 = 1 - b2**step
            c.update(one_minus_beta1=1 - b1, beta2=b2, inv_bc2_sqrt=1 / math.sqrt(bc2))
            if name in ("Adam", "AdamW"):
                c["step_size"] = h["lr"] / bc1
                c["decay"] = 1 - h["lr"] * h["weight_decay"] if name == "AdamW" else 1.0
            elif name == "Adamax":
                c["clr"] = h["lr"] / bc1
            elif name == "NAdam":
                psi = h["momentum_decay"]
                mu = b1 * (1 - 0.5 * 0.96 ** (step * psi))
                mu_next = b1 * (1 - 0.5 * 0.96 ** ((step + 1) * psi))
                self.mu_product *= mu
                c1 = h["lr"] * (1 - mu) / (1 - self.mu_product)
                c2 = h["lr"] * mu_next / (1 - self.mu_product * mu_next)
                c.update(c1=c1, ratio=c2 / c1)
            elif name == "RAdam":
                rho_inf = 2 / (1 - b2) - 1
                rho_t = rho_inf - 2 * step * b2**step / bc2
                if rho_t > 5.0:
                    rect = math.sqrt((rho_t - 4) * (rho_t - 2) * rho_inf
                                     / ((rho_inf - 4) * (rho_inf - 2) * rho_t))
                    c.update(rectified=1.0, scale=h["lr"] * rect * math.sqrt(bc2) / bc1)
                else:
                    c.update(rectified=0.0, scale=h["lr"] / bc1)
        return c

    def step(self, grads: Sequence[Arr]) -> None:
        self.steps += 1
        c = self.coefficients(self.steps)
        fn, t, u, chunk = self.fn, self.t, self.u, self.chunk
        for p, g, st in zip(self.params, grads, self.state):
            pf = p.reshape(-1)
            gf = g.reshape(-1)
            n = pf.size
            if n <= chunk:
                fn(pf, gf, st, t[:n], u[:n], c)
                continue
            for lo in range(0, n, chunk):
                hi = min(lo + chunk, n)
                fn(pf[lo:hi], gf[lo:hi], [s[lo:hi] for s in st], t[: hi - lo], u[: hi - lo], c)


def _torch_defaults(name: str) -> dict[str, Any]:
    """torch.optim's defaults (also gradstep's), for the NumPy implementations."""
    defaults: dict[str, dict[str, Any]] = {
        "SGD": dict(lr=1e-3, momentum=0.0),
        "Adagrad": dict(lr=1e-2, lr_decay=0.0, eps=1e-10),
        "RMSprop": dict(lr=1e-2, alpha=0.99, eps=1e-8),
        "Adadelta": dict(lr=1.0, rho=0.9, eps=1e-6),
        "Rprop": dict(lr=1e-2, etas=(0.5, 1.2), step_sizes=(1e-6, 50.0)),
        "Adam": dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0),
        "AdamW": dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2),
        "Adamax": dict(lr=2e-3, betas=(0.9, 0.999), eps=1e-8),
        "NAdam": dict(lr=2e-3, betas=(0.9, 0.999), eps=1e-8, momentum_decay=4e-3),
        "RAdam": dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8),
    }
    return defaults[name]


# ---------------------------------------------------------------------------------------
# Implementations behind one face: step() runs one optimizer step; params() the arrays.


class Impl:
    key = ""

    def step(self) -> None:
        raise NotImplementedError

    def params(self) -> list[Arr]:
        raise NotImplementedError

    def close(self) -> None:
        pass


class GradstepImpl(Impl):
    key = "gradstep"

    def __init__(self, spec: Spec, params: list[Arr], grads: list[Arr]) -> None:
        self.p = params
        self.g = grads
        self.opt = getattr(gs, spec.name)(params, **spec.kwargs)

    def step(self) -> None:
        self.opt.step(self.g)

    def params(self) -> list[Arr]:
        return self.p


class NumpyImpl(Impl):
    key = "numpy"

    def __init__(self, spec: Spec, params: list[Arr], grads: list[Arr]) -> None:
        self.p = params
        self.g = grads
        self.opt = NumpyOptimizer(spec, params)

    def step(self) -> None:
        self.opt.step(self.g)

    def params(self) -> list[Arr]:
        return self.p


class TorchImpl(Impl):
    def __init__(self, spec: Spec, params: list[Arr], grads: list[Arr], variant: str) -> None:
        import torch

        self.key = variant
        self.p = params
        self.tp = [torch.from_numpy(p) for p in params]
        for tp, g in zip(self.tp, grads):
            tp.grad = torch.from_numpy(g)
        flag = {"loop": {"foreach": False}, "foreach": {"foreach": True},
                "fused": {"fused": True}}[variant]
        self.opt = getattr(torch.optim, spec.name)(self.tp, **spec.kwargs, **flag)

    def step(self) -> None:
        self.opt.step()

    def params(self) -> list[Arr]:
        return self.p

    def close(self) -> None:
        for tp in self.tp:
            tp.grad = None
        self.opt.state.clear()


class ProbeImpl(Impl):
    """``a += b`` on two arrays holding `footprint` bytes together, split over threads."""

    key = "probe"

    def __init__(self, footprint: int, threads: int, dtype: np.dtype[Any]) -> None:
        item = dtype.itemsize
        n = max(64 * threads, footprint // (2 * item))
        self.a = np.zeros(n, dtype)
        self.b = np.full(n, 1e-30, dtype)
        # Several passes per step when threads must meet at a barrier, so the barrier's
        # tens of microseconds do not count as missing bandwidth on small arrays.
        self.passes = max(1, (1 << 22) // n) if threads > 1 else 1
        self.bytes = 3 * n * item * self.passes
        self.threads = threads
        self._pool: _AddPool | None = (_AddPool(self.a, self.b, threads, self.passes)
                                       if threads > 1 else None)

    def step(self) -> None:
        if self._pool is None:
            np.add(self.a, self.b, out=self.a)
        else:
            self._pool.run()

    def params(self) -> list[Arr]:
        return [self.a]

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None


class _AddPool:
    """Persistent threads, each running np.add on its own slice (NumPy drops the GIL)."""

    def __init__(self, a: Arr, b: Arr, threads: int, passes: int = 1) -> None:
        self.passes = passes
        n = a.size
        bounds = [n * i // threads // 16 * 16 for i in range(threads)] + [n]
        self.slices = [(a[bounds[i]:bounds[i + 1]], b[bounds[i]:bounds[i + 1]])
                       for i in range(threads)]
        self.start = threading.Barrier(threads)
        self.done = threading.Barrier(threads)
        self.stop = False
        self.workers = [threading.Thread(target=self._work, args=(i,), daemon=True)
                        for i in range(1, threads)]
        for w in self.workers:
            w.start()

    def _work(self, i: int) -> None:
        x, y = self.slices[i]
        while True:
            self.start.wait()
            if self.stop:
                return
            for _ in range(self.passes):
                np.add(x, y, out=x)
            self.done.wait()

    def run(self) -> None:
        self.start.wait()
        x, y = self.slices[0]
        for _ in range(self.passes):  # the calling thread does slice 0
            np.add(x, y, out=x)
        self.done.wait()

    def close(self) -> None:
        self.stop = True
        self.start.wait()
        for w in self.workers:
            w.join()


def probe_dram(threads: int, footprint: int, dtype: str = "float32",
               reps: int = 5) -> dict[str, float]:
    """Best and median GB/s of the ``a += b`` probe on arrays of `footprint` bytes together
    (the benchmarks use one far beyond the last-level cache)."""
    impl = ProbeImpl(footprint, threads, np.dtype(dtype))
    try:
        impl.step()
        times = []
        for _ in range(reps):
            t0 = time.perf_counter()
            impl.step()
            times.append(time.perf_counter() - t0)
    finally:
        impl.close()
    return {"threads": threads, "footprint": footprint, "best": impl.bytes / min(times) / 1e9,
            "median": impl.bytes / float(np.median(times)) / 1e9}


# ---------------------------------------------------------------------------------------
# Cases and results.


@dataclass(frozen=True)
class Case:
    optimizer: str  # label in SPECS
    dtype: str
    layout: str  # "1e6" (one tensor) or "10000x100" (10,000 tensors of 100)
    threads: int

    @property
    def spec(self) -> Spec:
        return SPECS[self.optimizer]

    def shapes(self) -> list[int]:
        if "x" in self.layout:
            count, each = (int(float(x)) for x in self.layout.split("x"))
            return [each] * count
        return [int(float(self.layout))]

    @property
    def elements(self) -> int:
        return sum(self.shapes())


@dataclass
class Result:
    case: Case
    ns: dict[str, float] = field(default_factory=dict)  # impl -> ns per element per step
    speedup: dict[str, float] = field(default_factory=dict)  # peer -> median t_peer/t_gs
    probe_share: float = float("nan")  # gradstep GB/s / paired probe GB/s (same footprint)
    probe_gbps: float = float("nan")
    skipped: dict[str, str] = field(default_factory=dict)

    def gbps(self, impl: str = "gradstep") -> float:
        item = np.dtype(self.case.dtype).itemsize
        return self.case.spec.bytes_per_element(item) / self.ns[impl]


@dataclass
class Config:
    optimizers: list[str]
    dtypes: list[str]
    layouts: list[str]
    threads: list[int]
    peers: list[str]
    rounds: int = 5
    block_seconds: float = 0.005
    big_rounds: int = 3  # rounds at >= 5e7 elements, where one step takes 50-1000 ms
    dram_footprint: int = 1 << 30
    numpy_all_threads: bool = False  # NumPy is single-threaded: its 1-thread rows apply
    check: bool = True
    peer_budget: float = 20.0  # seconds of paired rounds per peer, at most
    layouts_for: dict[str, list[str]] = field(default_factory=dict)  # per-optimizer override

    def cases(self) -> list[Case]:
        out = []
        for opt in self.optimizers:
            for dtype in self.dtypes:
                for layout in self.layouts_for.get(opt, self.layouts):
                    for th in self.threads:
                        out.append(Case(opt, dtype, layout, th))
        return out


def _available_peers(spec: Spec, wanted: list[str]) -> tuple[list[str], dict[str, str]]:
    peers, skipped = [], {}
    try:
        import torch  # noqa: F401
        has_torch = True
    except ImportError:
        has_torch = False
    for peer in wanted:
        if peer in ("loop", "foreach", "fused") and not has_torch:
            skipped[peer] = "torch not installed"
        elif peer == "fused" and not spec.fused:
            skipped[peer] = "torch has no fused CPU kernel"
        else:
            peers.append(peer)
    return peers, skipped


def _make(key: str, spec: Spec, params: list[Arr], grads: list[Arr]) -> Impl:
    ps = [p.copy() for p in params]
    if key == "gradstep":
        return GradstepImpl(spec, ps, grads)
    if key == "numpy":
        return NumpyImpl(spec, ps, grads)
    return TorchImpl(spec, ps, grads, key)


# With several threads, the implementations' idle workers spin for a while after each
# step before they sleep (gradstep's pool for 200 us, torch's OpenMP workers for
# milliseconds), and the spinning workers of the block just run take the cores from the
# next one: on 2 vCPUs that cost whichever ran second up to 2x. So with more than one
# thread every timed block follows an untimed lead-in block of the same implementation,
# which absorbs the other's spinning tail and wakes its own workers. (An idle pause
# instead was worse: after tens of milliseconds asleep the caches were cold.)


def _set_threads(n: int) -> None:
    gs.set_num_threads(n)
    try:
        import torch

        torch.set_num_threads(n)
    except ImportError:
        pass


def _block(impl: Impl, k: int) -> float:
    t0 = time.perf_counter()
    for _ in range(k):
        impl.step()
    return (time.perf_counter() - t0) / k


def _warm(impl: Impl, steps: int, budget: float, minimum: int = 2) -> float:
    """Take `steps` untimed steps (fewer if they exceed `budget` seconds, but at least
    `minimum`); return the time of the last one."""
    t0 = time.perf_counter()
    last = 0.0
    for i in range(max(minimum, steps)):
        last = _block(impl, 1)
        if i + 1 >= minimum and time.perf_counter() - t0 > budget:
            break
    return last


def _steps_per_block(impl: Impl, t_step: float, seconds: float) -> int:
    if t_step < seconds / 4:  # cheap step: measure once more with several steps
        k = max(1, int(seconds / 4 / max(t_step, 1e-9)))
        t_step = _block(impl, k)
    return max(1, round(seconds / max(t_step, 1e-9)))


def _timed_block(impl: Impl, k: int, lead_in: bool) -> float:
    if lead_in:
        _block(impl, k)
    return _block(impl, k)


def _paired(a: Impl, b: Impl, ta1: float, tb1: float, rounds: int, seconds: float,
            budget: float, lead_in: bool = False) -> tuple[list[float], list[float]]:
    """Interleaved blocks A B B A A B ...; with ``lead_in``, each timed block follows an
    untimed one of the same implementation (see the note above ``_set_threads``)."""
    ka = _steps_per_block(a, ta1, seconds)
    kb = _steps_per_block(b, tb1, seconds)
    # A peer that takes seconds per step (torch's OpenMP threads on a busy machine can)
    # gets fewer rounds, at least 2, so one case cannot eat the whole run.
    per_round = (ta1 * ka + tb1 * kb) * (2 if lead_in else 1)
    rounds = max(2, min(rounds, int(budget / max(per_round, 1e-9))))
    ta, tb = [], []
    for r in range(rounds):
        if r % 2 == 0:
            ta.append(_timed_block(a, ka, lead_in))
            tb.append(_timed_block(b, kb, lead_in))
        else:
            tb.append(_timed_block(b, kb, lead_in))
            ta.append(_timed_block(a, ka, lead_in))
    return ta, tb


def _data(case: Case, seed: int = 0) -> tuple[list[Arr], list[Arr]]:
    rng = np.random.default_rng(seed)
    dtype = np.dtype(case.dtype)
    shapes = case.shapes()
    total = sum(shapes)
    # Two flat buffers cut into tensors would make neighbours contiguous; real models
    # allocate each tensor separately, so do that.
    if len(shapes) == 1:
        p = [rng.standard_normal(total, dtype=np.float32).astype(dtype, copy=False)]
        g = [rng.standard_normal(total, dtype=np.float32).astype(dtype, copy=False)]
        return p, g
    ps = [rng.standard_normal(n).astype(dtype) for n in shapes]
    gs_ = [rng.standard_normal(n).astype(dtype) for n in shapes]
    return ps, gs_


def run_case(case: Case, cfg: Config, log: Callable[[str], None] = lambda s: None) -> Result:
    spec = case.spec
    res = Result(case)
    peers, res.skipped = _available_peers(spec, cfg.peers)
    if case.threads > 1 and "numpy" in peers and not cfg.numpy_all_threads:
        peers.remove("numpy")
        res.skipped["numpy"] = "single-threaded: see the 1-thread row"
    _set_threads(case.threads)
    big = case.elements >= 50_000_000
    rounds = cfg.big_rounds if big else cfg.rounds
    warm = 3
    minimum = 6 if spec.name == "RAdam" else (1 if big else 2)  # RAdam: rectified from 6
    params, grads = _data(case)
    gc.collect()
    gc_was = gc.isenabled()
    gc.disable()
    try:
        mine = _make("gradstep", spec, params, grads)
        _warm(mine, warm, cfg.peer_budget / 4, minimum)
        mine_times: list[float] = []
        item = np.dtype(case.dtype).itemsize
        for peer in [*peers, "probe"]:
            if peer == "probe":
                footprint = spec.arrays * case.elements * item
                other: Impl = ProbeImpl(footprint, case.threads, np.dtype(case.dtype))
            else:
                other = _make(peer, spec, params, grads)
            try:
                tb1 = _warm(other, warm, cfg.peer_budget / 4, minimum)
                ta1 = _block(mine, 1)
                ta, tb = _paired(mine, other, ta1, tb1, rounds, cfg.block_seconds,
                                 cfg.peer_budget, lead_in=case.threads > 1)
            finally:
                other.close()
            mine_times += ta
            ratios = [b / a for a, b in zip(ta, tb)]
            if peer == "probe":
                probe_bytes = other.bytes  # type: ignore[attr-defined]
                mine_bytes = spec.bytes_per_element(item) * case.elements
                res.probe_gbps = probe_bytes / float(np.median(tb)) / 1e9
                res.probe_share = float(np.median([mine_bytes / a / (probe_bytes / b)
                                                   for a, b in zip(ta, tb)]))
            else:
                res.ns[peer] = float(np.median(tb)) / case.elements * 1e9
                res.speedup[peer] = float(np.median(ratios))
            log(f"  {peer}: done")
            del other
            gc.collect()
        res.ns["gradstep"] = float(np.median(mine_times)) / case.elements * 1e9
        mine.close()
        del mine
    finally:
        del params, grads
        gc.collect()
        if gc_was:
            gc.enable()
    return res


def check_agreement(optimizers: list[str], dtypes: list[str], peers: list[str],
                    steps: int = 8) -> list[str]:
    """Run every implementation a few steps on small data and compare with gradstep, so
    the timings compare the same work. Returns the disagreements (empty when all agree)."""
    problems = []
    rng = np.random.default_rng(1)
    for opt in optimizers:
        spec = SPECS[opt]
        wanted, _ = _available_peers(spec, peers)
        for dtype in dtypes:
            params = [rng.standard_normal(n).astype(dtype) for n in (1000, 37)]
            grad_sets = [[rng.standard_normal(p.size).astype(dtype) for p in params]
                         for _ in range(3)]
            runs: dict[str, list[Arr]] = {}
            for key in ["gradstep", *wanted]:
                grads = [g.copy() for g in grad_sets[0]]
                impl = _make(key, spec, params, grads)
                for s in range(steps):
                    for g, src in zip(grads, grad_sets[s % 3]):
                        np.copyto(g, src)
                    impl.step()
                runs[key] = [p.copy() for p in impl.params()]
                impl.close()
            rtol = 1e-8 if dtype == "float64" else 1e-3
            for key in wanted:
                for a, b in zip(runs["gradstep"], runs[key]):
                    start = params[0 if a.size == 1000 else 1]
                    moved = np.abs(a - start)
                    err = np.abs(a - b)
                    # Relative to the largest distance travelled (the size of the steps,
                    # which is what the implementations compute), plus a few ulps of p.
                    ulp = float(np.finfo(a.dtype).eps)
                    bound = rtol * float(moved.max()) + 16 * ulp * (np.abs(a) + np.abs(start))
                    if not np.all(err <= bound):
                        problems.append(
                            f"{opt} {dtype}: {PEER_LABELS[key]} differs from gradstep by up "
                            f"to {float(err.max()):.3g} after {steps} steps")
                        break
    return problems


def run(cfg: Config, log: Callable[[str], None] = lambda s: None) -> dict[str, Any]:
    """Run the configured cases; returns a JSON-able dict with machine, probes, results."""
    saved = gs.get_num_threads()
    t0 = time.perf_counter()
    out: dict[str, Any] = {"machine": machine(), "config": asdict(cfg), "results": [],
                           "problems": [], "dram": []}
    try:
        if cfg.check:
            out["problems"] = check_agreement(cfg.optimizers, cfg.dtypes, cfg.peers)
            for p in out["problems"]:
                log("WARNING: " + p)
        for th in cfg.threads:
            out["dram"].append(probe_dram(th, cfg.dram_footprint))
            log(f"DRAM probe, {th} thread(s): {out['dram'][-1]['median']:.1f} GB/s median")
        cases = cfg.cases()
        for i, case in enumerate(cases):
            log(f"[{i + 1}/{len(cases)}] {case.optimizer} {case.dtype} {case.layout} "
                f"threads={case.threads}  ({time.perf_counter() - t0:.0f} s)")
            r = run_case(case, cfg)
            out["results"].append(_result_dict(r))
    finally:
        _set_threads(saved)
    out["seconds"] = time.perf_counter() - t0
    if hasattr(os, "getloadavg"):
        out["machine"]["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    return out


def _result_dict(r: Result) -> dict[str, Any]:
    return {"case": asdict(r.case), "ns": r.ns, "speedup": r.speedup,
            "probe_share": r.probe_share, "probe_gbps": r.probe_gbps, "skipped": r.skipped,
            "bytes_per_element": r.case.spec.bytes_per_element(np.dtype(r.case.dtype).itemsize)}


def machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    info: dict[str, Any] = {
        "cpu": cpu,
        "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
        else os.cpu_count(),
        "gradstep": gs.build_info(),
        "numpy": np.__version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M"),
    }
    if hasattr(os, "getloadavg"):
        info["loadavg"] = [round(x, 2) for x in os.getloadavg()]
    try:
        import torch

        info["torch"] = torch.__version__
    except ImportError:
        info["torch"] = None
    for key in ("OMP_NUM_THREADS", "OPENBLAS_CORETYPE", "GRADSTEP_SIMD"):
        if os.environ.get(key):
            info.setdefault("env", {})[key] = os.environ[key]
    try:
        with open("/proc/meminfo") as f:
            info["memory_gib"] = round(int(f.readline().split()[1]) / 2**20, 1)
    except (OSError, ValueError, IndexError):
        pass
    return info


# ---------------------------------------------------------------------------------------
# Tables.


def _fmt_ns(x: float) -> str:
    return f"{x:.3f}" if x < 1 else f"{x:.2f}" if x < 100 else f"{x:.0f}"


def markdown(data: dict[str, Any]) -> str:
    """The results as one markdown table: a row per case, a column per peer with
    ``speed-upx (peer ns/element)``."""
    dram = {d["threads"]: d["median"] for d in data["dram"]}
    peers = [p for p in PEERS if p in data["config"]["peers"]]
    head = (["optimizer", "dtype", "tensors", "thr", "gradstep ns/el", "GB/s", "% probe",
             "% DRAM"] + [f"vs {PEER_LABELS[p]}" for p in peers])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in data["results"]:
        c = r["case"]
        ns = r["ns"]["gradstep"]
        gbps = r["bytes_per_element"] / ns
        share = r["probe_share"]
        cells = [c["optimizer"], c["dtype"].replace("float", "f"), c["layout"], str(c["threads"]),
                 _fmt_ns(ns), f"{gbps:.1f}",
                 "—" if math.isnan(share) else f"{100 * share:.0f}%",
                 f"{100 * gbps / dram[c['threads']]:.0f}%" if c["threads"] in dram else "—"]
        for p in peers:
            if p in r["speedup"]:
                cells.append(f"{r['speedup'][p]:.2f}x ({_fmt_ns(r['ns'][p])})")
            else:
                cells.append("—")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def legend(data: dict[str, Any]) -> str:
    dram = ", ".join(f"{d['threads']} thread(s) {d['median']:.1f} GB/s (best {d['best']:.1f})"
                     for d in data["dram"])
    fp = data["dram"][0]["footprint"] / 2**20 if data["dram"] else 0
    return (
        "ns/el: nanoseconds per element per step (median block). GB/s: compulsory bytes moved "
        "(reads + writes of p, g and the state, e.g. Adam fp32 28 B/element) / time. "
        "% probe: gradstep's GB/s over the `a += b` probe's on arrays of the same footprint, "
        "median of paired runs. % DRAM: over the probe at "
        f"{fp:.0f} MiB ({dram}). vs X: median of paired t_X / t_gradstep (>1: gradstep "
        "faster), X's ns/el in brackets. NumPy is single-threaded, so it has no all-core row."
    )


def describe_machine(m: dict[str, Any]) -> str:
    b = m["gradstep"]
    return (f"{m['cpu']}, {m['cores']} cores, {m.get('memory_gib', '?')} GiB; "
            f"gradstep {b['version']} ({b['compiler']}, SIMD {b['simd_level']} of "
            f"{'/'.join(b['simd_levels_built'])}); numpy {m['numpy']}, torch {m['torch']}, "
            f"Python {m['python']}; {m['platform']}; {m['date']}"
            + (f"; load average {m['loadavg'][0]} at start" if m.get("loadavg") else "")
            + (f", {m['loadavg_end'][0]} at end" if m.get("loadavg_end") else "")
            + (f"; env {m['env']}" if m.get("env") else ""))


# ---------------------------------------------------------------------------------------
# Command line.

QUICK: dict[str, Any] = dict(
    optimizers=["Adam", "RMSprop"], dtypes=["float32"], layouts=["1e4", "1e6", "1e7", "10000x100"],
    rounds=3, block_seconds=0.002, dram_footprint=1 << 29, peer_budget=0.5)
DEFAULT: dict[str, Any] = dict(
    optimizers=CORE, dtypes=["float32", "float64"],
    layouts=["1e4", "1e5", "1e6", "1e7", "1000x1000", "10000x100"], rounds=5,
    block_seconds=0.005, dram_footprint=1 << 30, peer_budget=5.0)
SMOKE: dict[str, Any] = dict(
    optimizers=["Adam", "RMSprop"], dtypes=["float32"], layouts=["1e3", "20x50"], rounds=2,
    block_seconds=0.0005, dram_footprint=1 << 22, threads=[1], peer_budget=0.2)


def parser(prog: str = "python -m gradstep bench") -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog=prog,
        description="Time gradstep against NumPy and torch.optim side by side "
                    "(paired, interleaved runs) and print a markdown table.")
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true",
                      help="Adam and RMSprop in float32 up to 1e7: under a minute")
    mode.add_argument("--smoke", action="store_true",
                      help="tiny sizes, a few seconds: checks the machinery, not the speed")
    ap.add_argument("--optimizers", type=lambda s: s.split(","),
                    help=f"comma-separated, from {','.join(SPECS)}")
    ap.add_argument("--dtypes", type=lambda s: s.split(","), help="float32,float64")
    ap.add_argument("--sizes", type=lambda s: s.split(","), dest="layouts",
                    help="e.g. 1e4,1e6,10000x100 (COUNTxSIZE: many tensors)")
    ap.add_argument("--threads", type=lambda s: [int(x) for x in s.split(",")],
                    help="thread counts (default: 1 and all cores)")
    ap.add_argument("--peers", type=lambda s: s.split(","),
                    help=f"subset of {','.join(PEERS)} (default: all)")
    ap.add_argument("--rounds", type=int, help="paired rounds per peer")
    ap.add_argument("--no-check", action="store_true",
                    help="skip the check that every implementation computes the same steps")
    ap.add_argument("--json", metavar="PATH", help="also save the raw results as JSON")
    ap.add_argument("-v", "--verbose", action="store_true", help="progress on stderr")
    return ap


def config_from(args: argparse.Namespace) -> Config:
    base: dict[str, Any] = dict(SMOKE if args.smoke else QUICK if args.quick else DEFAULT)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (
        os.cpu_count() or 1)
    base.setdefault("threads", sorted({1, cores}))
    for key in ("optimizers", "dtypes", "layouts", "threads", "rounds"):
        if getattr(args, key) is not None:
            base[key] = getattr(args, key)
    base["peers"] = args.peers if args.peers is not None else list(PEERS)
    base["check"] = not args.no_check
    for opt in base["optimizers"]:
        if opt not in SPECS:
            raise SystemExit(f"unknown optimizer {opt!r}; choose from {', '.join(SPECS)}")
    for p in base["peers"]:
        if p not in PEERS:
            raise SystemExit(f"unknown peer {p!r}; choose from {', '.join(PEERS)}")
    return Config(**base)


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m gradstep bench``; returns the exit status."""
    args = parser().parse_args(argv)
    cfg = config_from(args)

    def log(s: str) -> None:
        if args.verbose:
            print(s, file=sys.stderr, flush=True)

    data = run(cfg, log)
    print(f"gradstep bench on {describe_machine(data['machine'])}\n")
    print(markdown(data))
    print()
    print(legend(data))
    for p in data["problems"]:
        print(f"WARNING: {p}")
    print(f"\n({data['seconds']:.0f} s)")
    if args.json:
        import json

        with open(args.json, "w") as f:
            json.dump(data, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
