"""Quasi-Newton minimizers: `minimize` (L-BFGS, OWL-QN, projected L-BFGS, BFGS, Newton) and
the step-wise `LBFGS` optimizer.

L-BFGS (Liu & Nocedal 1989; Nocedal & Wright, "Numerical Optimization", Algorithm 7.5)
moves along d = -H g, where H is the limited-memory inverse-Hessian approximation
built from the last m pairs s = x_{k+1} - x_k, y = g_{k+1} - g_k (the two-loop
recursion runs in C++, cpp/include/gradstep/lbfgs.hpp), with a More-Thuente
strong-Wolfe line search (gradstep._linesearch).

With `l1 > 0` the objective is f(x) + l1 ||x||_1 and the iteration is OWL-QN (Andrew &
Gao, "Scalable training of L1-regularized log-linear models", ICML 2007): the
pseudo-gradient replaces g, the direction is constrained to the orthant it
predicts, and the projected Armijo search keeps every iterate in that orthant.

With `bounds` the iteration is L-BFGS-B (Byrd, Lu, Nocedal & Zhu 1995): the generalized
Cauchy point along the projected steepest-descent path P(x - t g) under the compact
representation B = theta I - W M W' of the same (s, y) pairs, then a subspace Newton
step on the variables free at the Cauchy point (the direct primal method), projected
into the box (L-BFGS-B 3.0, Morales & Nocedal 2011) or shortened if the projection
is not a descent direction; the More-Thuente search then runs along d = x_bar - x with
the largest feasible step as its upper bound (1 on the first iteration), as L-BFGS-B
does, so the evaluation counts follow scipy's. Convergence is measured by the
projected gradient ||P(x - g) - x||_inf. (With ``line_search_fn=None`` in `LBFGS`, the
older projected L-BFGS direction is used: free variables only, projected path.)
"""

from __future__ import annotations

import inspect
import math
import numbers
import sys
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from . import _core
from ._linesearch import LineSearchResult, backtracking, strong_wolfe

__all__ = ["LBFGS", "OptimizeResult", "minimize"]

Array = np.ndarray

# Status codes, as scipy.optimize uses them.
CONVERGED = 0
LIMIT = 1
LINE_SEARCH_FAILED = 2
NOT_FINITE = 3
CALLBACK_STOP = 99


class OptimizeResult(dict):  # type: ignore[type-arg]
    """The result of `minimize`: a dict whose keys are also attributes (as scipy's).

    Keys: x, fun, jac, nit, nfev, njev, success, status, message (and nhev for Newton).
    status: 0 converged (gradient norm <= gtol or relative decrease <= ftol),
    1 iteration or evaluation limit, 2 the line search found no decrease,
    3 non-finite objective or gradient at x0, 99 stopped by the callback.
    """

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError as e:
            raise AttributeError(name) from e

    __setattr__ = dict.__setitem__
    __delattr__ = dict.__delitem__

    def __repr__(self) -> str:
        if not self:
            return f"{type(self).__name__}()"
        width = max(map(len, self.keys())) + 1
        lines = []
        for k, v in self.items():
            text = np.array2string(v, threshold=8) if isinstance(v, np.ndarray) else repr(v)
            lines.append(f"{k.rjust(width)}: {text}")
        return "\n".join(lines)

    def __dir__(self) -> list[str]:
        return list(self.keys())


# --------------------------------------------------------------------------- checks


def _int_arg(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"Invalid {name}: {value!r} (expected an integer >= {minimum})")
    if value < minimum:
        raise ValueError(f"Invalid {name}: {value!r} (expected an integer >= {minimum})")
    return int(value)


def _nonneg_arg(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"Invalid {name}: {value!r} (expected a real number >= 0)")
    v = float(value)
    if not (math.isfinite(v) and v >= 0.0):
        raise ValueError(f"Invalid {name}: {value!r} (expected a finite number >= 0)")
    return v


def _work_dtype(x0: Array) -> np.dtype[Any]:
    if x0.dtype == np.float32 or x0.dtype == np.float64:
        return x0.dtype
    if x0.dtype.kind in "biuf":
        return np.dtype(np.float64)
    raise TypeError(f"Invalid x0: dtype {x0.dtype} (expected real numbers; float32 stays float32)")


def _as_x0(x0: Any) -> Array:
    try:
        a = np.asarray(x0)
    except Exception as e:  # ragged lists and the like
        raise TypeError(f"Invalid x0: {x0!r} (expected an array of real numbers)") from e
    dtype = _work_dtype(a)
    if a.ndim == 0:
        a = a.reshape(1)
    if a.size == 0:
        raise ValueError(f"Invalid x0: empty array of shape {a.shape} (expected at least 1 value)")
    x = np.array(a, dtype=dtype, order="C", copy=True)
    if not np.all(np.isfinite(x)):
        raise ValueError("Invalid x0: contains NaN or Inf (expected finite values)")
    return x


def _as_bounds(bounds: Any, x: Array) -> tuple[Array, Array] | None:
    """(lo, hi) arrays shaped like x, from [(lo, hi), ...] with None for no bound,
    or an object with .lb and .ub (scipy.optimize.Bounds)."""
    if bounds is None:
        return None
    n = x.size
    if hasattr(bounds, "lb") and hasattr(bounds, "ub"):
        lo = np.broadcast_to(np.asarray(bounds.lb, dtype=np.float64), (n,))
        hi = np.broadcast_to(np.asarray(bounds.ub, dtype=np.float64), (n,))
    else:
        try:
            pairs = list(bounds)
        except TypeError as e:
            raise TypeError(f"Invalid bounds: {bounds!r} (expected a sequence of (lo, hi) "
                            "pairs)") from e
        if len(pairs) != n:
            raise ValueError(f"Invalid bounds: {len(pairs)} pairs for {n} variables "
                             "(expected one (lo, hi) pair per element of x0)")
        lo = np.empty(n)
        hi = np.empty(n)
        for i, p in enumerate(pairs):
            if not isinstance(p, (tuple, list, np.ndarray)) or len(p) != 2:
                raise TypeError(f"Invalid bounds[{i}]: {p!r} (expected a (lo, hi) pair)")
            lo[i] = -np.inf if p[0] is None else float(p[0])
            hi[i] = np.inf if p[1] is None else float(p[1])
    if np.any(np.isnan(lo)) or np.any(np.isnan(hi)):
        raise ValueError("Invalid bounds: NaN bound (use None or +-inf for no bound)")
    bad = np.flatnonzero(lo > hi)
    if bad.size:
        i = int(bad[0])
        raise ValueError(f"Invalid bounds[{i}]: lower bound {lo[i]} > upper bound {hi[i]}")
    if np.all(np.isneginf(lo)) and np.all(np.isposinf(hi)):
        return None
    return (lo.astype(x.dtype).reshape(x.shape), hi.astype(x.dtype).reshape(x.shape))


class _Objective:
    """Calls the user's function with counting and checking; copies g into our buffer."""

    def __init__(self, fun: Callable[..., Any], jac: Any, args: tuple[Any, ...],
                 shape: tuple[int, ...], size: int) -> None:
        if not callable(fun):
            raise TypeError(f"Invalid fun: {fun!r} (expected a callable)")
        if jac is True:
            self.jac: Callable[..., Any] | None = None
        elif callable(jac):
            self.jac = jac
        else:
            raise ValueError(f"Invalid jac: {jac!r} (expected True, when fun returns (f, g), "
                             "or a callable returning the gradient)")
        self.fun = fun
        self.args = args
        self.shape = shape
        self.size = size
        self.nfev = 0
        self.njev = 0

    def __call__(self, x: Array, g_out: Array) -> float:
        """f(x) as a float (NaN/Inf allowed) with the gradient written into g_out."""
        return self.evaluate(x, g_out, None)[0]

    def evaluate(self, x: Array, g_out: Array, d: Array | None) -> tuple[float, float, float]:
        """(f(x), g' d, ||g||_inf) with the gradient copied into g_out, in one pass over g
        (d=None: g' g). The norm is NaN if g holds NaN or Inf."""
        if self.jac is None:
            out = self.fun(x, *self.args)
            if not isinstance(out, (tuple, list)) or len(out) != 2:
                raise TypeError("fun must return (f, g) when jac=True, got "
                                f"{type(out).__name__}; pass jac=<callable> if fun returns f only")
            f, g = out
        else:
            f = self.fun(x, *self.args)
            g = self.jac(x, *self.args)
        self.nfev += 1
        self.njev += 1
        if type(f) is not float:
            fa = np.asarray(f)
            if fa.size != 1 or fa.dtype.kind not in "biuf":
                raise ValueError(f"fun must return a real scalar f, got {type(f).__name__} "
                                 f"of shape {fa.shape}")
            f = float(fa.reshape(()))
        g = np.asarray(g)
        if g.shape != self.shape:
            if g.size != self.size:
                what = "fun(x)[1]" if self.jac is None else "jac(x)"
                raise ValueError(f"{what} has shape {g.shape}, expected {self.shape} "
                                 "(the shape of x0)")
            g = g.reshape(self.shape)
        if g.dtype is g_out.dtype and g.flags.c_contiguous:
            # The copy, g' d and the norm in one pass.
            gd, norm = _core.take_gradient(g_out, g, g if d is None else d)
            return f, gd, norm
        if g.dtype.kind not in "biuf":
            raise TypeError(f"the gradient has dtype {g.dtype}, expected real numbers")
        np.copyto(g_out, g, casting="unsafe")
        return f, _dot(g_out, g_out if d is None else d), _inf_norm(g_out)


def _dot(a: Array, b: Array) -> float:
    """a'b accumulated in double (float32 BLAS would accumulate in float32 and
    overflow where the double sum is finite)."""
    a, b = a.reshape(-1), b.reshape(-1)
    if a.dtype != np.float64:
        a = a.astype(np.float64)
    if b.dtype != np.float64:
        b = b.astype(np.float64)
    return float(np.dot(a, b))


def _inf_norm(a: Array) -> float:
    return float(np.max(np.abs(a))) if a.size else 0.0


# --------------------------------------------------------------------------- engines


class _Engine:
    """State of one run: the current point, f, g and the line search around a direction.

    `target` (step-wise use) is the user's array that every trial point is written
    into before the objective is called; without it each trial point is a fresh
    array that is never written again once the objective has seen it.
    """

    _orthant: Array  # the OWL-QN orthant, set by engines that support l1

    def __init__(self, objective: _Objective, x0: Array, *, bounds: tuple[Array, Array] | None,
                 l1: float, max_ls: int, target: Array | None = None) -> None:
        self.obj = objective
        self.x = x0
        self.dtype = x0.dtype
        self.bounds = bounds
        self.l1 = l1
        self.max_ls = max_ls
        self.target = target
        self.g = np.zeros_like(x0)
        self.g_new = np.zeros_like(x0)
        # Zeroed: the first evaluation reads d before any direction is set, and
        # uninitialised memory may hold signalling NaNs.
        self.d = np.zeros_like(x0)
        self.f = math.nan   # objective including the l1 term
        self.f_prev = math.nan
        self.step = 0.0
        self.fixed_step: float | None = None  # no line search: torch's line_search_fn=None
        self._xt: Array | None = None
        self._ft = math.nan
        self._dt = math.nan     # g' d at the last trial point
        self._gnorm_t = math.nan  # ||g||_inf at the last trial point
        self.gnorm = math.nan     # ||g||_inf at x
        self._spare: list[Array] = []  # trial arrays the objective has seen and let go
        self._scratch: Array | None = None
        if bounds is not None:
            np.clip(self.x, bounds[0], bounds[1], out=self.x)

    # -- evaluation
    def _trial_buffer(self) -> Array:
        """A buffer for the next trial point: the user's target, or an array nobody
        outside the engine can see (a previous trial point that no one kept: its
        reference count shows only our own references), or a new one. So the x
        the objective receives is always an array it may keep: gradstep never writes
        into an array that anyone else still references."""
        if self.target is not None:
            return self.target
        spare = self._spare
        while spare:
            a = spare.pop()
            # References: the local name and getrefcount's argument.
            if sys.getrefcount(a) == 2:
                return a
        return np.empty_like(self.x)

    def _release(self, a: Array | None) -> None:
        if (a is not None and self.target is None and a is not self.x and a is not self._xt
                and len(self._spare) < 2):
            self._spare.append(a)

    def _evaluate(self, xt: Array) -> float:
        if self.target is not None and xt is not self.target:
            np.copyto(self.target, xt)
            xt = self.target
        f, self._dt, self._gnorm_t = self.obj.evaluate(xt, self.g_new, self.d)
        if self.l1:
            f += self.l1 * float(np.abs(xt).sum(dtype=np.float64))
        previous, self._xt = self._xt, xt
        if previous is not xt:
            self._release(previous)
        self._ft = f
        return f

    def start(self) -> bool:
        xt = self._trial_buffer()
        if xt is not self.x:
            np.copyto(xt, self.x)
        if self.target is None:
            self._xt = None
        f = self._evaluate(xt)
        self._accept(xt, f, push=False)
        return math.isfinite(f) and math.isfinite(self.gnorm)

    def _accept(self, xt: Array, f: float, push: bool) -> None:
        if push:
            self._push(xt)
        if self.target is not None:
            if self.x is self.target or self.x is xt:
                self.x = np.array(xt)
            else:
                np.copyto(self.x, xt)
        else:
            previous, self.x = self.x, xt
            self._release(previous)
        self.g, self.g_new = self.g_new, self.g
        self.f_prev, self.f = self.f, f
        self.gnorm = self._gnorm_t

    def _push(self, xt: Array) -> None:
        pass

    # -- optimality
    def optimality_vector(self) -> Array:
        """The gradient that must vanish: g, the projected gradient, or the pseudo-gradient."""
        if self.l1:
            return _pseudo_gradient(self.x, self.g, self.l1)
        if self.bounds is not None:
            lo, hi = self.bounds
            return np.clip(self.x - self.g, lo, hi) - self.x
        return self.g

    def optimality(self) -> float:
        if self.l1 or self.bounds is not None:
            return _inf_norm(self.optimality_vector())
        return self.gnorm

    # -- one iteration
    def direction(self, reset: bool) -> tuple[float, Array]:
        raise NotImplementedError

    def first_step(self) -> float:
        return 1.0

    def iterate(self) -> LineSearchResult:
        gd, gw = self.direction(reset=False)
        if not gd < 0.0:
            gd, gw = self.direction(reset=True)
            if not gd < 0.0:
                return LineSearchResult(0.0, self.f, gd, 0, False, False,
                                        "no descent direction (gradient is zero?)")
        t0 = self.first_step()
        result = self._search(gd, gw, t0)
        if not result.ok and self._can_reset():
            # As L-BFGS-B: drop the memory and retry along the (scaled) gradient.
            gd, gw = self.direction(reset=True)
            if gd < 0.0:
                retry = self._search(gd, gw, self.first_step())
                retry.nfev += result.nfev
                result = retry
        if not result.ok:
            return result
        if not result.last:
            self._evaluate_at(result.step)
        xt = self._xt
        assert xt is not None
        self.step = result.step
        self._accept(xt, self._ft, push=True)
        return result

    def _can_reset(self) -> bool:
        return False

    def _trial_point(self, t: float) -> Array:
        xt = self._trial_buffer()
        if self.bounds is not None and not self.l1:
            _core.add_scaled_clip(xt, self.x, t, self.d, self.bounds[0], self.bounds[1])
            return xt
        _core.add_scaled(xt, self.x, t, self.d)
        if self.l1:
            # OWL-QN: stay in the orthant of x (of -pseudo-gradient where x = 0).
            np.copyto(xt, 0.0, where=(xt * self._orthant) <= 0.0)
        return xt

    def _evaluate_at(self, t: float) -> float:
        return self._evaluate(self._trial_point(t))

    def _search(self, gd: float, gw: Array, t0: float) -> LineSearchResult:
        if self.fixed_step is not None:
            f = self._evaluate_at(t0)
            ok = math.isfinite(f) and math.isfinite(self._dt)
            return LineSearchResult(t0, f, math.nan, 1, ok, True,
                                    "fixed step" if ok else "non-finite objective")
        projected = bool(self.l1)
        step_max = 1e20
        if self.bounds is not None and not self.l1:
            step_max = self._max_feasible_step()
            if self._first_bounded():
                step_max = min(step_max, 1.0)  # L-BFGS-B's first line search: stpmx = 1
            if step_max < t0:
                projected = True
        if projected:
            if self._scratch is None:
                self._scratch = np.empty_like(self.x)
            scratch = self._scratch

            def phi_projected(t: float) -> tuple[float, float]:
                f = self._evaluate_at(t)
                assert self._xt is not None
                np.subtract(self._xt, self.x, out=scratch)
                return f, _dot(gw, scratch)

            return backtracking(phi_projected, self.f, t0, max_evals=self.max_ls + 10)

        def phi(t: float) -> tuple[float, float]:
            f = self._evaluate_at(t)
            return f, self._dt

        return strong_wolfe(phi, self.f, gd, t0, step_max=step_max, max_evals=self.max_ls)

    def _first_bounded(self) -> bool:
        """True for the first L-BFGS-B iteration (no step accepted yet)."""
        return False

    def _max_feasible_step(self) -> float:
        assert self.bounds is not None
        lo, hi = self.bounds
        d = self.d
        with np.errstate(divide="ignore", invalid="ignore"):
            t_hi = np.where(d > 0, (hi - self.x) / d, np.inf)
            t_lo = np.where(d < 0, (lo - self.x) / d, np.inf)
        return float(min(np.min(t_hi), np.min(t_lo)))

    def _active(self) -> Array | None:
        if self.bounds is None:
            return None
        lo, hi = self.bounds
        return ((self.x <= lo) & (self.g > 0)) | ((self.x >= hi) & (self.g < 0))


def _pseudo_gradient(x: Array, g: Array, l1: float) -> Array:
    """OWL-QN's pseudo-gradient of f + l1 ||x||_1 (Andrew & Gao 2007, eq. 4)."""
    right = g + l1   # derivative for x_i -> 0+
    left = g - l1    # derivative for x_i -> 0-
    at_zero = np.where(right < 0, right, np.where(left > 0, left, 0.0))
    return np.where(x > 0, right, np.where(x < 0, left, at_zero)).astype(x.dtype, copy=False)


class _LBFGSEngine(_Engine):
    def __init__(self, objective: _Objective, x0: Array, *, history: int, curvature_eps: Any,
                 **kw: Any) -> None:
        super().__init__(objective, x0, **kw)
        self.hist = _core.LBFGSHistory(x0.size, history, x0.dtype, curvature_eps)
        self.stored = True
        self._orthant: Array = x0  # replaced by the orthant signs when l1 > 0
        self._gw: Array | None = None
        self.accepted = 0  # steps accepted so far
        self._boxed = bool(self.bounds is not None and np.all(np.isfinite(self.bounds[0]))
                           and np.all(np.isfinite(self.bounds[1])))

    def _push(self, xt: Array) -> None:
        self.stored = self.hist.push_difference(xt, self.x, self.g_new, self.g)
        self.accepted += 1

    def _first_bounded(self) -> bool:
        return self.bounds is not None and self.fixed_step is None and self.accepted == 0

    def _can_reset(self) -> bool:
        return self.hist.count > 0

    def first_step(self) -> float:
        if self.fixed_step is not None:
            return self.fixed_step
        if self.bounds is not None and (self.accepted > 0 or self._boxed):
            # L-BFGS-B: the unit step to x_bar, except on the first iteration of a
            # problem that is not bounded on every side.
            return 1.0
        if self.hist.count == 0:
            # Unit step on -g has no natural scale; L-BFGS-B's choice.
            dn = math.sqrt(_dot(self.d, self.d))
            return min(1.0, 1.0 / dn) if dn > 0 else 1.0
        return 1.0

    def direction(self, reset: bool) -> tuple[float, Array]:
        if reset:
            self.hist.clear()
        if self.l1:
            gw = _pseudo_gradient(self.x, self.g, self.l1)
            self.hist.two_loop(gw, self.d, -1.0)
            # Keep only components that agree with the steepest-descent orthant.
            np.copyto(self.d, 0.0, where=(self.d * gw) >= 0.0)
            self._orthant = np.where(self.x != 0, np.sign(self.x), -np.sign(gw)).astype(
                self.dtype, copy=False)
            return _dot(gw, self.d), gw
        if self.bounds is not None and self.fixed_step is None:
            return self._lbfgsb_direction()
        active = self._active()
        if active is not None:
            if self._gw is None:
                self._gw = np.empty_like(self.x)
            gw = self._gw
            np.copyto(gw, self.g)
            gw[active] = 0.0
            self.hist.two_loop(gw, self.d, -1.0)
            self.d[active] = 0.0
            return _dot(self.g, self.d), self.g
        # g'd comes out of the two-loop's last pass (accumulated in double).
        return self.hist.two_loop(self.g, self.d, -1.0), self.g


    # -- L-BFGS-B (Byrd, Lu, Nocedal & Zhu 1995)
    def _compact(self) -> tuple[float, Array, Array]:
        """theta, W = [Y, theta S] (n x 2k) and M (2k x 2k) of the compact representation
        B = theta I - W M W' (Byrd, Nocedal & Schnabel 1994; Byrd et al. 1995, eq. 3.3)."""
        k, n = self.hist.count, self.x.size
        if k == 0:
            return 1.0, np.zeros((n, 0)), np.zeros((0, 0))
        S = np.empty((n, k))
        Y = np.empty((n, k))
        for j in range(k):
            s, y = self.hist.pair(j)
            S[:, j] = s
            Y[:, j] = y
        theta = 1.0 / float(self.hist.gamma)
        SY = S.T @ Y
        SS = S.T @ S
        Dm = np.diag(np.diag(SY))
        Lm = np.tril(SY, -1)
        K = np.block([[-Dm, Lm.T], [Lm, theta * SS]])
        return theta, np.hstack([Y, theta * S]), np.linalg.inv(K)

    def _lbfgsb_direction(self) -> tuple[float, Array]:
        """d = x_bar - x: the generalized Cauchy point along the projected steepest-descent
        path (Algorithm CP), then the direct primal subspace minimization over the
        variables free at the Cauchy point (section 5.1), projected into the box (as
        L-BFGS-B 3.0, Morales & Nocedal 2011) or, if that is not a descent direction,
        shortened to stay inside it."""
        assert self.bounds is not None
        lo = self.bounds[0].reshape(-1).astype(np.float64)
        hi = self.bounds[1].reshape(-1).astype(np.float64)
        x = self.x.reshape(-1).astype(np.float64)
        g = self.g.reshape(-1).astype(np.float64)
        theta, W, M = self._compact()
        # The generalized Cauchy point (Algorithm CP, in C++: a heap over the breakpoints).
        xcp, c, _, _ = _core.cauchy_point(x, g, lo, hi, W, M, theta)
        # Subspace minimization over the free variables at the Cauchy point.
        free = np.flatnonzero((xcp > lo) & (xcp < hi))
        xbar = xcp
        if free.size:
            r = g[free] + theta * (xcp[free] - x[free]) - W[free] @ (M @ c)
            Wf = W[free]
            du = -r / theta
            if W.shape[1]:
                MWr = M @ (Wf.T @ r)
                N = np.eye(W.shape[1]) - (M @ (Wf.T @ Wf)) / theta
                try:
                    du -= (Wf @ np.linalg.solve(N, MWr)) / (theta * theta)
                except np.linalg.LinAlgError:
                    pass
            xbar = xcp.copy()
            xbar[free] += du
            proj = np.clip(xbar, lo, hi)
            if float(g @ (proj - x)) < 0.0:
                xbar = proj
            else:
                # The largest step alpha <= 1 along du that stays in the box.
                with np.errstate(divide="ignore", invalid="ignore"):
                    a_hi = np.where(du > 0, (hi[free] - xcp[free]) / du, np.inf)
                    a_lo = np.where(du < 0, (lo[free] - xcp[free]) / du, np.inf)
                alpha = min(1.0, float(np.min(a_hi)), float(np.min(a_lo)))
                xbar = xcp.copy()
                xbar[free] += alpha * du
                np.clip(xbar, lo, hi, out=xbar)
        self.d.reshape(-1)[...] = xbar - x
        return _dot(self.g, self.d), self.g


class _BFGSEngine(_Engine):
    """Dense inverse-Hessian BFGS (Nocedal & Wright, Algorithm 6.1)."""

    def __init__(self, objective: _Objective, x0: Array, **kw: Any) -> None:
        super().__init__(objective, x0, **kw)
        n = x0.size
        self.H = np.eye(n, dtype=x0.dtype)
        self.updates = 0
        self.eps = float(np.finfo(x0.dtype).eps)

    def _push(self, xt: Array) -> None:
        s = (xt - self.x).reshape(-1).astype(np.float64)
        y = (self.g_new - self.g).reshape(-1).astype(np.float64)
        sy, yy = float(s @ y), float(y @ y)
        if not (math.isfinite(sy) and math.isfinite(yy) and sy > self.eps * yy):
            return
        H = self.H.astype(np.float64)
        if self.updates == 0:
            H *= sy / yy  # Nocedal & Wright eq. 6.20
        rho = 1.0 / sy
        Hy = H @ y
        yHy = float(y @ Hy)
        H += (rho * rho * yHy + rho) * np.outer(s, s) - rho * (np.outer(Hy, s) + np.outer(s, Hy))
        self.H = H.astype(self.dtype, copy=False)
        self.updates += 1

    def _can_reset(self) -> bool:
        return self.updates > 0

    def first_step(self) -> float:
        if self.updates == 0:
            dn = math.sqrt(_dot(self.d, self.d))
            return min(1.0, 1.0 / dn) if dn > 0 else 1.0
        return 1.0

    def direction(self, reset: bool) -> tuple[float, Array]:
        if reset:
            self.H = np.eye(self.x.size, dtype=self.dtype)
            self.updates = 0
        np.matmul(self.H, -self.g.reshape(-1), out=self.d.reshape(-1))
        return _dot(self.g, self.d), self.g


class _NewtonEngine(_Engine):
    """Newton's method: Cholesky solve with a dense Hessian, else truncated CG on
    Hessian-vector products (Newton-CG, Nocedal & Wright, Algorithm 7.1)."""

    def __init__(self, objective: _Objective, x0: Array, *, hess: Callable[..., Any] | None,
                 hessp: Callable[..., Any] | None, args: tuple[Any, ...], **kw: Any) -> None:
        super().__init__(objective, x0, **kw)
        self.hess = hess
        self.hessp = hessp
        self.args = args
        self.nhev = 0
        self.cg_max_iter = max(20, min(20 * x0.size, 2000))

    def _hessp(self, v: Array) -> Array:
        self.nhev += 1
        assert self.hessp is not None
        hv = np.asarray(self.hessp(self.x, v.reshape(self.x.shape), *self.args))
        if hv.size != v.size:
            raise ValueError(f"hessp(x, p) has shape {hv.shape}, expected {self.x.shape} "
                             "(the shape of x0)")
        return hv.reshape(-1).astype(np.float64, copy=False)

    def direction(self, reset: bool) -> tuple[float, Array]:
        g = self.g.reshape(-1).astype(np.float64)
        n = g.size
        if reset:
            p = -g
        elif self.hess is not None:
            self.nhev += 1
            H = np.asarray(self.hess(self.x, *self.args), dtype=np.float64)
            if H.shape != (n, n):
                raise ValueError(f"hess(x) has shape {H.shape}, expected {(n, n)}")
            try:
                L = np.linalg.cholesky(H)
                p = -np.linalg.solve(L.T, np.linalg.solve(L, g))
            except np.linalg.LinAlgError:
                p = self._cg(lambda v: H @ v, g)
        else:
            p = self._cg(self._hessp, g)
        self.d[...] = p.reshape(self.x.shape)
        return _dot(self.g, self.d), self.g

    def _cg(self, hp: Callable[[Array], Array], g: Array) -> Array:
        gnorm = float(np.linalg.norm(g))
        tol = min(0.5, math.sqrt(gnorm)) * gnorm
        z = np.zeros_like(g)
        r = g.copy()
        p = -r
        rr = float(r @ r)
        for i in range(self.cg_max_iter):
            hp_p = hp(p)
            curv = float(p @ hp_p)
            if curv <= 0.0:
                # Negative curvature: the Newton model is unbounded along p.
                return -g if i == 0 else z
            alpha = rr / curv
            z += alpha * p
            r += alpha * hp_p
            rr_new = float(r @ r)
            if math.sqrt(rr_new) <= tol:
                break
            p = -r + (rr_new / rr) * p
            rr = rr_new
        return z

    def _can_reset(self) -> bool:
        return True


# --------------------------------------------------------------------------- minimize


def _callback_style(callback: Callable[..., Any]) -> bool:
    """True if the callback takes `intermediate_result` (scipy's new style)."""
    try:
        return "intermediate_result" in inspect.signature(callback).parameters
    except (TypeError, ValueError):
        return False


def minimize(
    fun: Callable[..., Any],
    x0: Any,
    args: tuple[Any, ...] = (),
    method: str = "lbfgs",
    jac: bool | Callable[..., Any] = True,
    hess: Callable[..., Any] | None = None,
    hessp: Callable[..., Any] | None = None,
    bounds: Sequence[tuple[float | None, float | None]] | Any | None = None,
    l1: float = 0.0,
    gtol: float = 1e-5,
    ftol: float = 2.2e-9,
    max_iter: int = 15000,
    max_fun: int = 15000,
    history: int = 10,
    max_ls: int = 20,
    callback: Callable[..., Any] | None = None,
    verbose: bool = False,
) -> OptimizeResult:
    r"""Minimize f(x) (+ l1 ||x||_1) with L-BFGS, BFGS or Newton's method.

    In the shape of ``scipy.optimize.minimize``: ``fun(x, *args)`` returns ``(f, g)``
    (``jac=True``), or ``f`` alone with ``jac(x, *args)`` returning g.

    Methods:

    - ``"lbfgs"`` (default): L-BFGS with ``history`` pairs (Liu & Nocedal 1989), the
      two-loop recursion in C++, More-Thuente strong-Wolfe line search. With
      ``l1 > 0``: OWL-QN (Andrew & Gao 2007) for f(x) + l1 ||x||_1. With ``bounds``:
      L-BFGS-B (generalized Cauchy point and subspace minimization, Byrd et al. 1995).
      With both: L-BFGS-B on the split x = u - v, u, v >= 0, of f(u - v) + l1 sum(u + v)
      (twice the variables; the objective still sees x).
    - ``"bfgs"``: dense inverse-Hessian BFGS, H <- (I - rho s y') H (I - rho y s') + rho s s'
      (Nocedal & Wright, Algorithm 6.1). O(n^2) memory: small problems only.
    - ``"newton"``: Newton's method with ``hess(x, *args)`` (dense, Cholesky; CG if not
      positive definite) or ``hessp(x, p, *args)`` (truncated conjugate gradients).

    The working precision is that of x0: float32 stays float32 end to end (the
    objective sees float32 arrays, history and directions are float32); any other
    real dtype is converted to float64.

    Stopping (after each iteration): ``||g||_inf <= gtol`` (projected gradient with
    bounds, pseudo-gradient with l1), ``(f_k - f_{k+1}) / max(|f_k|, |f_{k+1}|, 1) <= ftol``,
    ``max_iter`` iterations, ``max_fun`` evaluations, a failed line search, or the
    callback. ``callback(intermediate_result)`` (an OptimizeResult with x and fun) or
    ``callback(xk)`` is called after each iteration; returning True (or raising
    StopIteration) stops the run with status 99. ``verbose=True`` prints one line
    per iteration.

    The ``x`` arrays handed to ``fun`` are fresh arrays that gradstep never writes
    again, so they may be kept. The gradient returned is copied.

    Returns an `OptimizeResult` with x, fun, jac, nit, nfev, njev, success, status,
    message (and nhev for Newton). ``fun`` includes the l1 term; ``jac`` is the
    gradient of the smooth part.

    >>> import numpy as np, gradstep._minimize as gm
    >>> res = gm.minimize(lambda x: (float(x @ x), 2 * x), np.array([1.0, -2.0]))
    >>> res.success, np.allclose(res.x, 0.0)
    (True, True)
    """
    if not isinstance(method, str) or method.lower() not in ("lbfgs", "bfgs", "newton"):
        raise ValueError(f"Invalid method: {method!r} (expected 'lbfgs', 'bfgs' or 'newton')")
    method = method.lower()
    x = _as_x0(x0)
    if not isinstance(args, tuple):
        args = (args,)
    gtol = _nonneg_arg("gtol", gtol)
    ftol = _nonneg_arg("ftol", ftol)
    l1 = _nonneg_arg("l1", l1)
    max_iter = _int_arg("max_iter", max_iter, 0)
    max_fun = _int_arg("max_fun", max_fun, 1)
    history = _int_arg("history", history, 1)
    max_ls = _int_arg("max_ls", max_ls, 1)
    if callback is not None and not callable(callback):
        raise TypeError(f"Invalid callback: {callback!r} (expected a callable or None)")
    if method != "newton" and (hess is not None or hessp is not None):
        raise ValueError(f"hess/hessp are only used by method='newton', not {method!r}")
    if method == "newton":
        if hess is None and hessp is None:
            raise ValueError("method='newton' needs hess (a callable returning the Hessian) "
                             "or hessp (Hessian-vector products)")
        for name, h in (("hess", hess), ("hessp", hessp)):
            if h is not None and not callable(h):
                raise TypeError(f"Invalid {name}: {h!r} (expected a callable)")
    box = _as_bounds(bounds, x)
    if method != "lbfgs" and (box is not None or l1):
        raise ValueError(f"bounds and l1 are supported by method='lbfgs' only, not {method!r}")

    objective = _Objective(fun, jac, args, x.shape, x.size)
    if box is not None and l1:
        return _minimize_l1_box(objective, x, box, l1, history=history, max_ls=max_ls, gtol=gtol,
                                ftol=ftol, max_iter=max_iter, max_fun=max_fun, callback=callback,
                                verbose=verbose)
    common = {"bounds": box, "l1": l1, "max_ls": max_ls}
    engine: _Engine
    if method == "lbfgs":
        engine = _LBFGSEngine(objective, x, history=history, curvature_eps=None, **common)
    elif method == "bfgs":
        engine = _BFGSEngine(objective, x, **common)
    else:
        engine = _NewtonEngine(objective, x, hess=hess, hessp=hessp, args=args, **common)
    return _run(engine, gtol=gtol, ftol=ftol, max_iter=max_iter, max_fun=max_fun,
                callback=callback, verbose=verbose)


def _minimize_l1_box(objective: _Objective, x: Array, box: tuple[Array, Array], l1: float, *,
                     history: int, max_ls: int, callback: Callable[..., Any] | None,
                     **stops: Any) -> OptimizeResult:
    """f(x) + l1 ||x||_1 on a box, as the smooth bound-constrained problem in 2n variables
    x = u - v, u, v >= 0, of f(u - v) + l1 sum(u + v) (the l1 term is |x| wherever u or v is
    0, which holds at a minimizer since l1 > 0), solved by the L-BFGS-B iteration. The box
    lo <= x <= hi becomes u in [max(lo, 0), max(hi, 0)], v in [max(-hi, 0), max(-lo, 0)].
    A variable at 0 sits on the bounds of both u and v, so zeros are exact."""
    n, shape, dtype = x.size, x.shape, x.dtype
    lo, hi = box[0].reshape(-1), box[1].reshape(-1)
    zero = np.zeros((), dtype)
    z_lo = np.concatenate([np.maximum(lo, zero), np.maximum(-hi, zero)])
    z_hi = np.concatenate([np.maximum(hi, zero), np.maximum(-lo, zero)])
    flat = x.reshape(-1)
    z0 = np.concatenate([np.maximum(flat, zero), np.maximum(-flat, zero)])
    g = np.empty_like(x)

    def unsplit(z: Array) -> Array:
        return (z[:n] - z[n:]).reshape(shape)

    def true_fun(split_f: float, z: Array, xk: Array) -> float:
        """f(x) + l1 ||x||_1 from f(u - v) + l1 sum(u + v) (larger where u and v overlap)."""
        return (split_f - l1 * float(z.sum(dtype=np.float64))
                + l1 * float(np.abs(xk).sum(dtype=np.float64)))

    def split_fun(z: Array) -> tuple[float, Array]:
        f = objective(unsplit(z), g)  # a fresh x for the user's function, checked as usual
        gf = g.reshape(-1)
        return f + l1 * float(z.sum(dtype=np.float64)), np.concatenate([gf + l1, l1 - gf])

    split_callback = None
    if callback is not None:
        new_style = _callback_style(callback)

        def split_callback(intermediate_result: OptimizeResult) -> Any:
            z = intermediate_result.x
            xk = unsplit(z)
            if not new_style:
                return callback(xk)
            return callback(intermediate_result=OptimizeResult(
                x=xk, fun=true_fun(intermediate_result.fun, z, xk), nit=intermediate_result.nit))

    inner = _Objective(split_fun, True, (), z0.shape, z0.size)
    engine = _LBFGSEngine(inner, z0, history=history, curvature_eps=None, bounds=(z_lo, z_hi),
                          l1=0.0, max_ls=max_ls)
    res = _run(engine, callback=split_callback, **stops)
    z = res.x
    xk = unsplit(z)
    res["fun"] = true_fun(res.fun, z, xk)
    res["x"] = xk
    res["jac"] = (res.jac[:n] - l1).reshape(shape)  # the gradient of the smooth part
    res["nfev"], res["njev"] = objective.nfev, objective.njev
    return res


def _run(engine: _Engine, *, gtol: float, ftol: float, max_iter: int, max_fun: int,
         callback: Callable[..., Any] | None, verbose: bool) -> OptimizeResult:
    obj = engine.obj
    new_style = callback is not None and _callback_style(callback)
    nit = 0
    if not engine.start():
        status, message = NOT_FINITE, "the objective or its gradient is not finite at x0"
    else:
        status, message = -1, ""
        if verbose:
            print(f"{'iter':>6} {'f':>16} {'|g|inf':>10} {'step':>9} {'nfev':>6}", file=sys.stdout)
            print(f"{0:6d} {engine.f:16.9e} {engine.optimality():10.3e} {'':>9} {obj.nfev:6d}")
        if engine.optimality() <= gtol:
            status, message = CONVERGED, "gradient norm <= gtol at x0"
    while status < 0:
        if nit >= max_iter:
            status, message = LIMIT, "maximum number of iterations reached (max_iter)"
            break
        if obj.nfev >= max_fun:
            status, message = LIMIT, "maximum number of evaluations reached (max_fun)"
            break
        ls = engine.iterate()
        if not ls.ok:
            status, message = LINE_SEARCH_FAILED, f"line search found no decrease: {ls.message}"
            break
        nit += 1
        gnorm = engine.optimality()
        if verbose:
            print(f"{nit:6d} {engine.f:16.9e} {gnorm:10.3e} {engine.step:9.2e} {obj.nfev:6d}")
        if callback is not None:
            try:
                if new_style:
                    stop = callback(intermediate_result=OptimizeResult(x=engine.x.copy(),
                                                                       fun=engine.f, nit=nit))
                else:
                    stop = callback(engine.x.copy())
            except StopIteration:
                stop = True
            if stop is True:
                status, message = CALLBACK_STOP, "stopped by the callback"
                break
        if gnorm <= gtol:
            status, message = CONVERGED, "gradient norm <= gtol"
        elif (engine.f_prev - engine.f) <= ftol * max(abs(engine.f_prev), abs(engine.f), 1.0):
            status, message = CONVERGED, "relative reduction of f <= ftol"
    result = OptimizeResult(
        x=engine.x, fun=engine.f, jac=engine.g.copy(), nit=nit, nfev=obj.nfev, njev=obj.njev,
        success=status == CONVERGED, status=status, message=message,
    )
    if isinstance(engine, _NewtonEngine):
        result["nhev"] = engine.nhev
    return result


# --------------------------------------------------------------------------- step-wise


class LBFGS:
    r"""L-BFGS as a step-wise optimizer driven by a closure (the ask/tell shape).

    ``opt = LBFGS(x, ...)`` keeps a reference to ``x`` (a writeable, C-contiguous
    float32/float64 array) and updates it in place. ``opt.step(closure)`` runs up to
    ``max_iter`` L-BFGS iterations; ``closure()`` must return ``(f, g)`` at the
    current contents of ``x``. The names and meanings follow ``torch.optim.LBFGS``
    (lr, max_iter, max_eval, tolerance_grad, tolerance_change, history_size,
    line_search_fn); the differences: the default ``line_search_fn`` is
    ``"strong_wolfe"`` (More-Thuente) and ``history_size`` defaults to 10.
    ``line_search_fn=None`` takes fixed steps of ``lr`` (the first scaled by
    min(1, 1/||g||_1)) as torch does. ``l1`` and ``bounds`` work as in `minimize`.

    The iteration is the one of ``minimize(method="lbfgs")``; see its docstring.
    ``state_dict()`` / ``load_state_dict()`` save and restore the state as plain arrays
    and numbers (``np.savez``-able); a restored optimizer continues bit-identically.

    >>> import numpy as np, gradstep._minimize as gm
    >>> x = np.array([3.0, -1.0])
    >>> opt = gm.LBFGS(x)
    >>> f0 = opt.step(lambda: (float(x @ x), 2 * x))
    >>> np.allclose(x, 0.0)
    True
    """

    def __init__(
        self,
        x: Any,
        lr: float = 1.0,
        max_iter: int = 20,
        max_eval: int | None = None,
        tolerance_grad: float = 1e-7,
        tolerance_change: float = 1e-9,
        history_size: int = 10,
        line_search_fn: str | None = "strong_wolfe",
        l1: float = 0.0,
        bounds: Any = None,
    ) -> None:
        if isinstance(x, (list, tuple)) and len(x) == 1:
            x = x[0]
        if not isinstance(x, np.ndarray):
            raise TypeError(f"Invalid x: {type(x).__name__} (expected a numpy.ndarray of "
                            "float32 or float64, updated in place)")
        if x.dtype not in (np.float32, np.float64):
            raise TypeError(f"Invalid x: dtype {x.dtype} (expected float32 or float64; "
                            "gradstep never converts arrays it updates)")
        if not x.flags.c_contiguous:
            raise ValueError("Invalid x: not C-contiguous (it is updated in place)")
        if not x.flags.writeable:
            raise ValueError("Invalid x: read-only (it is updated in place)")
        if x.size == 0:
            raise ValueError("Invalid x: empty array")
        lr_value = _nonneg_arg("lr", lr)
        if lr_value == 0.0:
            raise ValueError("Invalid lr: 0.0 (expected a finite number > 0)")
        self.lr = lr_value
        self.max_iter = _int_arg("max_iter", max_iter, 1)
        self.max_eval = (self.max_iter * 5 // 4 if max_eval is None
                         else _int_arg("max_eval", max_eval, 1))
        self.tolerance_grad = _nonneg_arg("tolerance_grad", tolerance_grad)
        self.tolerance_change = _nonneg_arg("tolerance_change", tolerance_change)
        self.history_size = _int_arg("history_size", history_size, 1)
        if line_search_fn not in (None, "strong_wolfe"):
            raise ValueError(f"Invalid line_search_fn: {line_search_fn!r} "
                             "(expected 'strong_wolfe' or None)")
        self.line_search_fn = line_search_fn
        self.l1 = _nonneg_arg("l1", l1)
        box = _as_bounds(bounds, x)
        if box is not None and self.l1:
            raise ValueError("bounds and l1 > 0 cannot be combined in the step-wise LBFGS; "
                             "gradstep.minimize takes both")
        if box is not None:
            np.clip(x, box[0], box[1], out=x)
        self.x = x
        self._closure: Callable[[], Any] | None = None
        objective = _Objective(self._call_closure, True, (), x.shape, x.size)
        self._engine = _LBFGSEngine(objective, np.array(x), history=self.history_size,
                                    curvature_eps=None, bounds=box, l1=self.l1, max_ls=20,
                                    target=x)
        self._started = False
        self.nit = 0

    def _call_closure(self, x: Array) -> Any:
        assert self._closure is not None
        return self._closure()

    @property
    def nfev(self) -> int:
        """Closure calls so far."""
        return self._engine.obj.nfev

    @property
    def state(self) -> dict[str, Any]:
        e = self._engine
        return {"func_evals": e.obj.nfev, "n_iter": self.nit, "f": e.f, "d": e.d.copy(),
                "t": e.step, "history_count": e.hist.count}

    # -- state

    _STATE_VERSION = 1

    def state_dict(self) -> dict[str, Any]:
        """The optimizer's state as plain arrays and numbers (no pickle needed).

        Keys: ``history_s`` and ``history_y`` (k x n arrays of the stored pairs, oldest
        first, in x's dtype), ``gamma``, ``nit``, ``func_evals``, ``grad_evals``,
        ``f``, ``f_prev``, ``g`` and ``d`` (the gradient and direction at the current
        point, shaped like x), ``gnorm``, ``t`` (the last step), ``history_size``,
        ``started``, ``version``. ``np.savez(path, **opt.state_dict())`` and
        ``opt.load_state_dict(np.load(path))`` round-trip it. The parameters
        themselves (x) are not included: they are the caller's array, as in torch.
        """
        e = self._engine
        k, n = e.hist.count, self.x.size
        s = np.empty((k, n), dtype=self.x.dtype)
        y = np.empty((k, n), dtype=self.x.dtype)
        for j in range(k):
            s[j], y[j] = e.hist.pair(j)
        return {
            "version": self._STATE_VERSION,
            "history_size": self.history_size,
            "history_s": s,
            "history_y": y,
            "gamma": float(e.hist.gamma),
            "nit": self.nit,
            "func_evals": e.obj.nfev,
            "grad_evals": e.obj.njev,
            "started": bool(self._started),
            "f": float(e.f),
            "f_prev": float(e.f_prev),
            "gnorm": float(e.gnorm),
            "t": float(e.step),
            "stored": bool(e.stored),
            "g": e.g.copy(),
            "d": e.d.copy(),
        }

    def load_state_dict(self, state: Any) -> None:
        """Restores a `state_dict` (a dict, or the mapping ``np.load`` returns for an
        ``.npz`` file) into this optimizer; x must have the shape and dtype of the
        optimizer that saved it. Every entry is checked before anything is changed:
        on error the optimizer is left as it was."""
        try:
            keys = set(state.keys())
        except AttributeError as e:
            raise TypeError(f"Invalid state: {type(state).__name__} (expected the mapping "
                            "returned by LBFGS.state_dict())") from e
        required = ("version", "history_s", "history_y", "gamma", "nit", "func_evals",
                    "grad_evals", "f", "f_prev", "gnorm", "t", "g", "d")
        missing = [k for k in required if k not in keys]
        if missing:
            raise KeyError(f"Invalid state: missing {', '.join(missing)} (expected the "
                           "mapping returned by LBFGS.state_dict())")

        def number(name: str, kind: str) -> Any:
            a = np.asarray(state[name])
            if a.shape != () or a.dtype.kind not in kind:
                raise TypeError(f"Invalid state[{name!r}]: {state[name]!r} (expected a "
                                f"{'integer' if kind == 'iu' else 'number'})")
            return a.item()

        def array(name: str, shape: tuple[int, ...]) -> Array:
            a = state[name]
            if not isinstance(a, np.ndarray):
                raise TypeError(f"Invalid state[{name!r}]: {type(a).__name__} "
                                "(expected a numpy.ndarray)")
            if a.dtype != self.x.dtype:
                raise TypeError(f"Invalid state[{name!r}]: dtype {a.dtype}, expected "
                                f"{self.x.dtype} (the dtype of x)")
            if a.shape != shape:
                raise ValueError(f"Invalid state[{name!r}]: shape {a.shape}, expected {shape} "
                                 f"(x has shape {self.x.shape})")
            return a

        version = number("version", "iu")
        if version != self._STATE_VERSION:
            raise ValueError(f"Invalid state['version']: {version} (this gradstep reads "
                             f"version {self._STATE_VERSION})")
        n = self.x.size
        s_all = state["history_s"]
        k = s_all.shape[0] if isinstance(s_all, np.ndarray) and s_all.ndim == 2 else -1
        if k < 0:
            array("history_s", (0, n))  # raises with the expected shape
        if k > self.history_size:
            raise ValueError(f"Invalid state['history_s']: {k} pairs, more than this "
                             f"optimizer's history_size={self.history_size}")
        s_all = array("history_s", (k, n))
        y_all = array("history_y", (k, n))
        g = array("g", self.x.shape)
        d = array("d", self.x.shape)
        ints = {name: number(name, "iu") for name in ("nit", "func_evals", "grad_evals")}
        for name, v in ints.items():
            if v < 0:
                raise ValueError(f"Invalid state[{name!r}]: {v} (expected an integer >= 0)")
        floats = {name: float(number(name, "iuf"))
                  for name in ("gamma", "f", "f_prev", "gnorm", "t")}
        started = bool(number("started", "biu")) if "started" in keys else True
        stored = bool(number("stored", "biu")) if "stored" in keys else True
        engine = self._engine
        hist = _core.LBFGSHistory(n, self.history_size, self.x.dtype, engine.hist.curvature_eps)
        for j in range(k):
            if not hist.push(np.ascontiguousarray(s_all[j]), np.ascontiguousarray(y_all[j])):
                raise ValueError(f"Invalid state['history_s'], state['history_y']: pair {j} "
                                 "fails the curvature test (not a saved L-BFGS history)")
        if k and hist.gamma != floats["gamma"]:
            raise ValueError(f"Invalid state['gamma']: {floats['gamma']!r} does not match the "
                             f"stored pairs ({hist.gamma!r})")
        # Everything checked: commit.
        engine.hist = hist
        np.copyto(engine.g, g)
        np.copyto(engine.d, d)
        engine.f, engine.f_prev = floats["f"], floats["f_prev"]
        engine.gnorm, engine.step = floats["gnorm"], floats["t"]
        engine.stored = stored
        engine.obj.nfev, engine.obj.njev = ints["func_evals"], ints["grad_evals"]
        engine.accepted = ints["nit"]
        self.nit = ints["nit"]
        self._started = started

    def step(self, closure: Callable[[], Any]) -> float:
        """Runs up to max_iter iterations; returns f at the starting point (as torch)."""
        if not callable(closure):
            raise TypeError(f"Invalid closure: {closure!r} (expected a callable returning (f, g))")
        e = self._engine
        self._closure = closure
        try:
            # The user may have changed x since the last step: start from x as it is.
            np.copyto(e.x, self.x)
            if not e.start():
                raise FloatingPointError("the closure returned a non-finite f or gradient at x")
            f_start = e.f
            e.fixed_step = None
            evals0 = e.obj.nfev
            for k in range(self.max_iter):
                if e.optimality() <= self.tolerance_grad:
                    break
                if self.line_search_fn is None:
                    scale = (min(1.0, 1.0 / float(np.abs(e.optimality_vector()).sum()))
                             if self.nit == 0 and k == 0 else 1.0)
                    e.fixed_step = self.lr * scale
                ls = e.iterate()
                if not ls.ok:
                    break
                self.nit += 1
                if e.obj.nfev - evals0 >= self.max_eval:
                    break
                if abs(e.f - e.f_prev) < self.tolerance_change:
                    break
                if e.step * _inf_norm(e.d) <= self.tolerance_change:
                    break
            # Leave x at the accepted point (the last trial may have been elsewhere).
            if e.x is not self.x:
                np.copyto(self.x, e.x)
            return f_start
        finally:
            self._closure = None
