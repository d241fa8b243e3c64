"""gradstep.minimize (L-BFGS) side by side with scipy's L-BFGS-B, in one process.

    python bench/bench_minimize.py            # full: n up to 1e6 (solver) and 1e7 (two-loop)
    python bench/bench_minimize.py --quick    # smoke mode, a few seconds

Markdown tables:

1. Evaluations to reach scipy's final f (and 1b, the same on bounded problems, where
   gradstep runs L-BFGS-B): scipy L-BFGS-B runs with its defaults; then both
   solvers' evaluation histories are searched for the first f within
   1e-8 * max(1, |f_scipy|) of scipy's final f. ratio = gradstep / scipy (<= 1 is the goal).
   1c: ill-conditioned quadratics of several sizes, conditions and starting points,
   where the stop is a rounding coincidence: gradstep run past its own stopping test.
2. Solver time per iteration, excluding the time spent inside f/g (a diagonal
   quadratic, so f/g is cheap), for a fixed number of iterations: gradstep with its
   default thread count (the passes over n split across the pool above 2^16 elements)
   and with one thread; scipy's L-BFGS-B is single-threaded (run with
   OPENBLAS_NUM_THREADS=1).
3. The two-loop recursion alone (history 10, float64 and float32) against the memory
   bandwidth measured in the same run with the same thread count by the probe of
   bench/bench_optimizers.py: ``a += b`` in place on 3 GiB (far beyond the last-level
   cache; read a, read b, write a, no read-for-ownership). The
   two-loop moves 8k - 1 vectors of n for k stored pairs (each pass fuses a dot
   product with an axpy; the last one yields g'd for the line search).

A benchmark never asserts a time.
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable

import numpy as np

import gradstep as gs
from gradstep import _core
from gradstep._bench import probe_dram
from gradstep._minimize import minimize

try:
    import scipy.optimize as so
except ImportError:  # pragma: no cover
    so = None


# ----------------------------------------------------------------------------- problems


def ext_rosenbrock(x):
    a, b = x[::2], x[1::2]
    t = b - a * a
    g = np.empty_like(x)
    g[::2] = -400.0 * a * t - 2.0 * (1.0 - a)
    g[1::2] = 200.0 * t
    return float(np.sum(100.0 * t * t + (1.0 - a) ** 2)), g


def powell_singular(x):
    x1, x2, x3, x4 = x[0::4], x[1::4], x[2::4], x[3::4]
    a, b, c, d = x1 + 10 * x2, x3 - x4, x2 - 2 * x3, x1 - x4
    g = np.empty_like(x)
    g[0::4] = 2 * a + 40 * d**3
    g[1::4] = 20 * a + 4 * c**3
    g[2::4] = 10 * b - 8 * c**3
    g[3::4] = -10 * b - 40 * d**3
    return float(np.sum(a**2 + 5 * b**2 + c**4 + 10 * d**4)), g


def beale(x):
    x1, x2 = x
    t1, t2, t3 = 1.5 - x1 + x1 * x2, 2.25 - x1 + x1 * x2**2, 2.625 - x1 + x1 * x2**3
    g = np.array([2 * t1 * (x2 - 1) + 2 * t2 * (x2**2 - 1) + 2 * t3 * (x2**3 - 1),
                  2 * t1 * x1 + 4 * t2 * x1 * x2 + 6 * t3 * x1 * x2**2])
    return float(t1**2 + t2**2 + t3**2), g


def ill_quadratic(n, cond=1e6):
    d = np.logspace(0, math.log10(cond), n)

    def fun(x):
        g = d * x
        return 0.5 * float(x @ g), g

    return fun


def logistic(n_samples=2000, n_features=100, lam=1e-3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n_samples, n_features))
    y = np.where(X @ rng.standard_normal(n_features) + rng.standard_normal(n_samples) > 0, 1, -1)

    def fun(w):
        z = y * (X @ w)
        s = -y / (1.0 + np.exp(z))
        return (float(np.mean(np.logaddexp(0.0, -z)) + 0.5 * lam * (w @ w)),
                X.T @ s / n_samples + lam * w)

    return fun


def problems(quick: bool) -> list[tuple[str, Callable, np.ndarray]]:
    sizes = [2, 100, 10_000] if quick else [2, 100, 10_000, 1_000_000]
    out = [(f"ext. Rosenbrock n={n:g}", ext_rosenbrock, np.tile([-1.2, 1.0], n // 2))
           for n in sizes]
    out += [
        ("Powell singular n=100", powell_singular, np.tile([3.0, -1.0, 0.0, 1.0], 25)),
        ("Beale", beale, np.array([1.0, 1.0])),
        ("ill-cond. quadratic n=1000 (1e6)", ill_quadratic(1000), np.ones(1000)),
        ("L2 logistic regression 2000x100", logistic(), np.zeros(100)),
    ]
    return out


# ----------------------------------------------------------------------------- 1. evaluations


def recorded(fun):
    fs: list[float] = []

    def wrapped(x):
        f, g = fun(x)
        fs.append(f)
        return f, g

    return wrapped, fs


def first_within(fs: list[float], target: float) -> float:
    tol = 1e-8 * max(1.0, abs(target))
    for i, f in enumerate(fs):
        if f <= target + tol:
            return i + 1
    return math.nan


def table_evaluations(quick: bool) -> str:
    rows = ["| problem | scipy f | scipy evals | gradstep f | gradstep evals to scipy f | ratio |",
            "|---|---|---|---|---|---|"]
    for name, fun, x0 in problems(quick):
        sf, sfs = recorded(fun)
        ref = so.minimize(sf, x0, jac=True, method="L-BFGS-B")
        gf, gfs = recorded(fun)
        res = minimize(gf, x0)
        target = ref.fun
        n_s = first_within(sfs, target)
        n_g = first_within(gfs, target)
        ratio = n_g / n_s
        rows.append(f"| {name} | {ref.fun:.3e} | {n_s} | {res.fun:.3e} | "
                    f"{n_g if not math.isnan(n_g) else 'not reached'} | {ratio:.2f} |")
    return "\n".join(rows)


# ----------------------------------------------------------------------------- 1c. stopping rule


def table_ill_family(quick: bool) -> str:
    """Ill-conditioned quadratics, where both solvers stop on the relative decrease of f
    (ftol) after thousands of iterations at an iteration that rounding decides: the
    evaluations gradstep needs to reach scipy's final f when it is not stopped by its own
    ftol test (gtol = ftol = 0, up to twice scipy's evaluations), and where its own
    stopping test, the same as scipy's, stopped it."""
    variants = [(500, 1e4)] if quick else [(n, c) for n in (500, 1000, 2000) for c in (1e5, 1e6)]
    rows = ["| n | condition | x0 | scipy evals | gradstep evals to scipy f | ratio | "
            "gradstep's own stop: evals, f / scipy f |", "|---|---|---|---|---|---|---|"]
    ratios = []
    for n, cond in variants:
        fun = ill_quadratic(n, cond)
        for kind in ("ones", "uniform(-1, 2)"):
            x0 = np.ones(n) if kind == "ones" else np.random.default_rng(n).uniform(-1, 2, n)
            sf, sfs = recorded(fun)
            ref = so.minimize(sf, x0, jac=True, method="L-BFGS-B")
            n_s = first_within(sfs, ref.fun)
            gf, gfs = recorded(fun)
            minimize(gf, x0, gtol=0.0, ftol=0.0, max_fun=2 * n_s + 100)
            n_g = first_within(gfs, ref.fun)
            own = minimize(fun, x0)
            ratios.append(n_g / n_s)
            rows.append(f"| {n} | {cond:g} | {kind} | {n_s} | "
                        f"{n_g if not math.isnan(n_g) else 'not reached'} | {n_g / n_s:.3f} | "
                        f"{own.nfev}, {own.fun / ref.fun:.2f} |")
    r = np.array(ratios)
    rows.append(f"\nratio: geometric mean {math.exp(np.mean(np.log(r))):.3f}, "
                f"range {r.min():.3f} - {r.max():.3f} over {r.size} runs")
    return "\n".join(rows)


# ----------------------------------------------------------------------------- 1b. bounded


def dense_quadratic(n=200, cond=1e4, seed=0):
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    A = (q * np.logspace(0, math.log10(cond), n)) @ q.T
    b = A @ rng.standard_normal(n)

    def fun(x):
        Ax = A @ x
        return 0.5 * float(x @ Ax) - float(b @ x), Ax - b

    return fun


def bounded_problems(quick: bool) -> list[tuple[str, Callable, np.ndarray, list]]:
    """Bounded problems with many active bounds at the solution."""
    out = []
    for n in (20, 1000):
        x0 = np.tile([-1.2, 1.0], n // 2)
        lo = np.where(np.arange(n) % 2 == 0, -2.0, -np.inf)
        hi = np.where(np.arange(n) % 3 == 0, 0.5, 0.8)
        out.append((f"bounded ext. Rosenbrock n={n}", ext_rosenbrock, x0,
                    list(zip(lo, hi))))
    for n in (20, 1000):
        hi = np.where(np.arange(n) % 3 == 0, 0.5, 0.8)
        out.append((f"boxed ext. Rosenbrock n={n} in [-2, 0.5|0.8]", ext_rosenbrock,
                    np.tile([-1.2, 1.0], n // 2), list(zip(np.full(n, -2.0), hi))))
    out.append(("bounded quadratic n=200 (1e4) in [-0.5, 0.5]", dense_quadratic(),
                np.zeros(200), [(-0.5, 0.5)] * 200))
    out.append(("bounded logistic regression 2000x100, w in [-0.05, 0.05]",
                logistic(), np.zeros(100), [(-0.05, 0.05)] * 100))
    return out


def bounded_evaluations(fun, x0, bounds) -> tuple[float, int, float, float]:
    """(scipy f, scipy evals to its f, gradstep f, gradstep evals to scipy's f)."""
    sf, sfs = recorded(fun)
    ref = so.minimize(sf, x0, jac=True, method="L-BFGS-B", bounds=bounds)
    gf, gfs = recorded(fun)
    res = minimize(gf, x0, bounds=bounds)
    return ref.fun, first_within(sfs, ref.fun), res.fun, first_within(gfs, ref.fun)


def table_bounded(quick: bool) -> str:
    rows = ["| problem | scipy f | scipy evals | gradstep f | gradstep evals to scipy f | ratio |",
            "|---|---|---|---|---|---|"]
    for name, fun, x0, bounds in bounded_problems(quick):
        f_s, n_s, f_g, n_g = bounded_evaluations(fun, x0, bounds)
        rows.append(f"| {name} | {f_s:.6e} | {n_s} | {f_g:.6e} | "
                    f"{n_g if not math.isnan(n_g) else 'not reached'} | {n_g / n_s:.2f} |")
    return "\n".join(rows)


# ----------------------------------------------------------------------------- 2. time/iteration


def timed_quadratic(n: int):
    d = np.linspace(1.0, 1e3, n)
    spent = [0.0]

    def fun(x):
        t0 = time.perf_counter()
        g = d * x
        f = 0.5 * float(x @ g)
        spent[0] += time.perf_counter() - t0
        return f, g

    return fun, spent


def solver_time(run: Callable, n: int, repeats: int) -> tuple[float, int]:
    best = math.inf
    nit = 0
    for _ in range(repeats):
        fun, spent = timed_quadratic(n)
        t0 = time.perf_counter()
        res = run(fun)
        total = time.perf_counter() - t0
        nit = int(res.nit)
        best = min(best, (total - spent[0]) / max(nit, 1))
    return best, nit


def table_time(quick: bool) -> str:
    sizes = [10, 100, 10_000] if quick else [10, 100, 10_000, 1_000_000]
    threads = gs.get_num_threads()
    rows = ["| n | iterations | scipy L-BFGS-B us/iter | gradstep us/iter "
            f"({threads} threads) | ratio | gradstep us/iter (1 thread) | ratio |",
            "|---|---|---|---|---|---|---|"]
    for n in sizes:
        iters = 30 if n >= 1_000_000 else 100
        repeats = 3 if n >= 1_000_000 else 15
        x0 = np.ones(n)

        def run_scipy(fun, x0=x0, iters=iters):
            return so.minimize(fun, x0, jac=True, method="L-BFGS-B",
                               options={"maxiter": iters, "ftol": 0.0, "gtol": 0.0})

        def run_gs(fun, x0=x0, iters=iters):
            return minimize(fun, x0, max_iter=iters, ftol=0.0, gtol=0.0)

        def run_gs1(fun, run_gs=run_gs):
            gs.set_num_threads(1)
            try:
                return run_gs(fun)
            finally:
                gs.set_num_threads(threads)

        run_gs(timed_quadratic(n)[0])  # warm up imports and caches
        # Interleaved, minimum of repeats: on a shared machine the load drifts.
        t_s = t_g = t_1 = math.inf
        it_s = it_g = 0
        for _ in range(repeats):
            t, it_s = solver_time(run_scipy, n, 1)
            t_s = min(t_s, t)
            t, it_g = solver_time(run_gs, n, 1)
            t_g = min(t_g, t)
            t, _ = solver_time(run_gs1, n, 1)
            t_1 = min(t_1, t)
        rows.append(f"| {n:g} | {it_g} (scipy {it_s}) | {t_s * 1e6:,.1f} | {t_g * 1e6:,.1f} | "
                    f"{t_g / t_s:.2f} | {t_1 * 1e6:,.1f} | {t_1 / t_s:.2f} |")
    return "\n".join(rows)


# ----------------------------------------------------------------------------- 3. bandwidth


def best_time(fn: Callable[[], None], repeats: int) -> float:
    best = math.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def table_bandwidth(quick: bool) -> str:
    sizes = [1_000_000] if quick else [1_000_000, 3_000_000, 10_000_000]
    m = 10
    rows = ["| n | dtype | threads | two-loop ms | two-loop GB/s | probe GB/s | share |",
            "|---|---|---|---|---|---|---|"]
    rng = np.random.default_rng(0)
    footprint = (256 << 20) if quick else (3 << 30)
    all_threads = gs.get_num_threads()
    # The same probe as bench/bench_optimizers.py, median of its repeats.
    triad = {threads: probe_dram(threads, footprint, "float64")["median"] * 1e9
             for threads in sorted({1, all_threads})}
    try:
        for n in sizes:
            for dtype in (np.float64, np.float32):
                item = np.dtype(dtype).itemsize
                b = rng.standard_normal(n).astype(dtype)
                h = _core.LBFGSHistory(n, m, dtype)
                for _ in range(m):
                    s = rng.standard_normal(n).astype(dtype)
                    h.push(s, (2.0 * s + 0.1 * b).astype(dtype))
                out = np.empty(n, dtype)
                for threads in sorted(triad):
                    gs.set_num_threads(threads)
                    h.two_loop(b, out, -1.0)
                    t = best_time(lambda h=h, b=b, out=out: h.two_loop(b, out, -1.0),
                                  3 if n > 3e6 else 8)
                    k = h.count
                    bw = (8 * k - 1) * n * item / t
                    rows.append(f"| {n:g} | {np.dtype(dtype).name} | {threads} | {t * 1e3:.2f} | "
                                f"{bw / 1e9:.1f} | {triad[threads] / 1e9:.1f} | "
                                f"{bw / triad[threads]:.0%} |")
                del h, out
    finally:
        gs.set_num_threads(all_threads)
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes only (smoke mode)")
    args = parser.parse_args(argv)
    if so is None:
        print("scipy is not installed: only the bandwidth table is measured")
    else:
        print("### Evaluations to reach scipy L-BFGS-B's final f\n")
        print(table_evaluations(args.quick), "\n", flush=True)
        print("### Ill-conditioned quadratics: evaluations to scipy's f past the stopping "
              "rule\n")
        print(table_ill_family(args.quick), "\n", flush=True)
        print("### Bounded problems: evaluations to reach scipy L-BFGS-B's final f\n")
        print(table_bounded(args.quick), "\n", flush=True)
        print("### Solver time per iteration, excluding f/g\n")
        print(table_time(args.quick), "\n", flush=True)
    print("### Two-loop recursion (history 10) vs memory bandwidth\n")
    print(table_bandwidth(args.quick))


if __name__ == "__main__":
    main()
