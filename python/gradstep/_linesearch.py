"""Line searches for the quasi-Newton minimizers.

`strong_wolfe` is the More-Thuente line search (Jorge J. More and David J. Thuente,
"Line search algorithms with guaranteed sufficient decrease", ACM TOMS 20(3), 1994,
the MINPACK-2 routines dcsrch/dcstep). It finds a step t > 0 along a descent
direction d with

    phi(t) <= phi(0) + c1 t phi'(0)        (sufficient decrease)
    |phi'(t)| <= c2 |phi'(0)|              (curvature: the strong Wolfe condition)

where phi(t) = f(x + t d). Why More-Thuente rather than Hager-Zhang: L-BFGS
accepts the unit step almost always, so what matters is the cost of the rare
hard searches and their robustness. More-Thuente brackets with safeguarded
cubic/quadratic steps and has a finite-termination proof; it is the search of
L-BFGS-B, of LBFGS++ and of scipy, so the evaluation counts we report against
scipy compare like with like. Hager-Zhang's approximate Wolfe conditions pay off
near a minimizer in very tight tolerances (f differences below sqrt(eps)), which
the `ftol` stopping test already handles.

Additions to the published algorithm:

- A trial point where f or phi' is NaN or Inf is treated as "step too long": the
  step is pulled back halfway towards the best point found so far and the
  search never again extrapolates past it.
- At most `max_evals` evaluations. If the More-Thuente phase ends without a
  point that decreases f sufficiently (rounding errors, evaluation budget), a
  backtracking (Armijo) phase shrinks the step from the smallest failed step, with
  at most `backtrack_evals` further evaluations. Steps accepted outside the strong
  Wolfe test must decrease f strictly, so a step lost in rounding (x + t d == x)
  is never taken for progress.

`backtracking` is the Armijo search along a projected (possibly bent) path, used
for box bounds and OWL-QN where the curvature condition need not be satisfiable.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["LineSearchResult", "backtracking", "strong_wolfe"]

# phi(t) -> (phi(t), phi'(t)); either may be NaN/Inf.
Phi = Callable[[float], "tuple[float, float]"]


@dataclass
class LineSearchResult:
    """The outcome of a line search.

    `step` is the accepted step (0.0 if none), `f` and `dphi` its phi and phi'
    (`dphi` is NaN for `backtracking`), `nfev` the evaluations made, `ok` whether
    f decreased sufficiently, `last` whether `step` was the last point evaluated
    (if not, the caller's buffers hold another point), `message` what happened.
    """

    step: float
    f: float
    dphi: float
    nfev: int
    ok: bool
    last: bool
    message: str


def _finite(*values: float) -> bool:
    return all(math.isfinite(v) for v in values)


def _cubic_step(
    stx: float, fx: float, dx: float, sty: float, fy: float, dy: float,
    stp: float, fp: float, dp: float, brackt: bool, stpmin: float, stpmax: float,
) -> tuple[float, float, float, float, float, float, float, bool]:
    """dcstep: a safeguarded step and the updated interval of uncertainty."""
    sgnd = dp * math.copysign(1.0, dx)
    if fp > fx:
        # Case 1: higher function value; the minimum is bracketed.
        theta = 3.0 * (fx - fp) / (stp - stx) + dx + dp
        s = max(abs(theta), abs(dx), abs(dp))
        gamma = s * math.sqrt(max(0.0, (theta / s) ** 2 - (dx / s) * (dp / s)))
        if stp < stx:
            gamma = -gamma
        p = (gamma - dx) + theta
        q = ((gamma - dx) + gamma) + dp
        stpc = stx + (p / q) * (stp - stx)
        stpq = stx + ((dx / ((fx - fp) / (stp - stx) + dx)) / 2.0) * (stp - stx)
        stpf = stpc if abs(stpc - stx) < abs(stpq - stx) else stpc + (stpq - stpc) / 2.0
        brackt = True
    elif sgnd < 0.0:
        # Case 2: lower value, derivatives of opposite sign; bracketed.
        theta = 3.0 * (fx - fp) / (stp - stx) + dx + dp
        s = max(abs(theta), abs(dx), abs(dp))
        gamma = s * math.sqrt(max(0.0, (theta / s) ** 2 - (dx / s) * (dp / s)))
        if stp > stx:
            gamma = -gamma
        p = (gamma - dp) + theta
        q = ((gamma - dp) + gamma) + dx
        stpc = stp + (p / q) * (stx - stp)
        stpq = stp + (dp / (dp - dx)) * (stx - stp)
        stpf = stpc if abs(stpc - stp) > abs(stpq - stp) else stpq
        brackt = True
    elif abs(dp) < abs(dx):
        # Case 3: lower value, same sign, derivative decreasing in magnitude.
        theta = 3.0 * (fx - fp) / (stp - stx) + dx + dp
        s = max(abs(theta), abs(dx), abs(dp))
        gamma = s * math.sqrt(max(0.0, (theta / s) ** 2 - (dx / s) * (dp / s)))
        if stp > stx:
            gamma = -gamma
        p = (gamma - dp) + theta
        q = (gamma + (dx - dp)) + gamma
        r = p / q
        if r < 0.0 and gamma != 0.0:
            stpc = stp + r * (stx - stp)
        elif stp > stx:
            stpc = stpmax
        else:
            stpc = stpmin
        stpq = stp + (dp / (dp - dx)) * (stx - stp)
        if brackt:
            stpf = stpc if abs(stpc - stp) < abs(stpq - stp) else stpq
            if stp > stx:
                stpf = min(stp + 0.66 * (sty - stp), stpf)
            else:
                stpf = max(stp + 0.66 * (sty - stp), stpf)
        else:
            stpf = stpc if abs(stpc - stp) > abs(stpq - stp) else stpq
            stpf = max(stpmin, min(stpmax, stpf))
    else:
        # Case 4: lower value, same sign, derivative not decreasing.
        if brackt:
            theta = 3.0 * (fp - fy) / (sty - stp) + dy + dp
            s = max(abs(theta), abs(dy), abs(dp))
            gamma = s * math.sqrt(max(0.0, (theta / s) ** 2 - (dy / s) * (dp / s)))
            if stp > sty:
                gamma = -gamma
            p = (gamma - dp) + theta
            q = ((gamma - dp) + gamma) + dy
            stpf = stp + (p / q) * (sty - stp)
        elif stp > stx:
            stpf = stpmax
        else:
            stpf = stpmin
    if fp > fx:
        sty, fy, dy = stp, fp, dp
    else:
        if sgnd < 0.0:
            sty, fy, dy = stx, fx, dx
        stx, fx, dx = stp, fp, dp
    if not math.isfinite(stpf):
        # Degenerate interpolation (0/0 from equal values): bisect instead.
        stpf = 0.5 * (stx + sty) if brackt else min(stpmax, 2.0 * stp)
    return stx, fx, dx, sty, fy, dy, stpf, brackt


def strong_wolfe(
    phi: Phi,
    f0: float,
    dphi0: float,
    step: float = 1.0,
    *,
    c1: float = 1e-4,
    c2: float = 0.9,
    xtol: float = 1e-10,
    step_min: float = 0.0,
    step_max: float = 1e20,
    max_evals: int = 20,
    backtrack_evals: int = 10,
) -> LineSearchResult:
    """More-Thuente search for a step satisfying the strong Wolfe conditions.

    `phi(t)` returns (f(x + t d), g(x + t d)' d); `f0`, `dphi0` are their values at
    t = 0 (dphi0 < 0 required). Evaluations: at most max_evals + backtrack_evals.

    >>> r = strong_wolfe(lambda t: ((t - 3.0) ** 2, 2.0 * (t - 3.0)), 9.0, -6.0, c2=0.1)
    >>> r.ok, round(r.step, 6)
    (True, 3.0)
    """
    if not dphi0 < 0.0:
        return LineSearchResult(0.0, f0, dphi0, 0, False, False, "not a descent direction")
    xtrapl, xtrapu = 1.1, 4.0
    stp = min(max(step, step_min), step_max)
    gtest = c1 * dphi0
    width = step_max - step_min
    width1 = 2.0 * width
    brackt = False
    stage = 1
    stx, fx, gx = 0.0, f0, dphi0
    sty, fy, gy = 0.0, f0, dphi0
    stmin, stmax = 0.0, stp + xtrapu * stp
    nfev = 0
    smallest_bad = math.inf  # the smallest step found not to decrease f enough
    message = "evaluation limit reached in the More-Thuente phase"
    f, g = math.nan, math.nan
    last_t = math.nan
    while nfev < max_evals:
        f, g = phi(stp)
        last_t = stp
        nfev += 1
        if not _finite(f, g):
            # Too long: pull back towards the best point; never extrapolate past here.
            smallest_bad = min(smallest_bad, stp)
            step_max = stx + 0.75 * (stp - stx)
            stmax = min(stmax, stp) if brackt else stp
            stp = stx + 0.5 * (stp - stx)
            if stp - stx <= xtol * max(stp, 1e-300):
                message = "non-finite objective at every step tried"
                break
            continue
        ftest = f0 + stp * gtest
        if f <= ftest and abs(g) <= c2 * (-dphi0):
            return LineSearchResult(stp, f, g, nfev, True, True, "strong Wolfe conditions hold")
        if f > ftest:
            smallest_bad = min(smallest_bad, stp)
        if stage == 1 and f <= ftest and g >= 0.0:
            stage = 2
        warning = ""
        if brackt and (stp <= stmin or stp >= stmax):
            warning = "rounding errors prevent progress"
        elif brackt and stmax - stmin <= xtol * stmax:
            warning = "interval of uncertainty below xtol"
        elif stp == step_max and f <= ftest and g <= gtest:
            warning = "step is at step_max"
        elif stp == step_min and (f > ftest or g >= gtest):
            warning = "step is at step_min"
        if warning:
            if f <= ftest and f < f0:
                # Sufficient decrease without the curvature condition: still a step.
                return LineSearchResult(stp, f, g, nfev, True, True, warning)
            message = warning
            break
        if stage == 1 and fx >= f > ftest:
            # Modified function psi(t) = phi(t) - phi(0) - c1 t phi'(0) (More-Thuente sec. 3).
            fm, fxm, fym = f - stp * gtest, fx - stx * gtest, fy - sty * gtest
            gm, gxm, gym = g - gtest, gx - gtest, gy - gtest
            stx, fxm, gxm, sty, fym, gym, stp_new, brackt = _cubic_step(
                stx, fxm, gxm, sty, fym, gym, stp, fm, gm, brackt, stmin, stmax
            )
            fx, fy = fxm + stx * gtest, fym + sty * gtest
            gx, gy = gxm + gtest, gym + gtest
        else:
            stx, fx, gx, sty, fy, gy, stp_new, brackt = _cubic_step(
                stx, fx, gx, sty, fy, gy, stp, f, g, brackt, stmin, stmax
            )
        if brackt:
            if abs(sty - stx) >= 0.66 * width1:
                stp_new = stx + 0.5 * (sty - stx)
            width1 = width
            width = abs(sty - stx)
            stmin, stmax = min(stx, sty), max(stx, sty)
        else:
            stmin = stp_new + xtrapl * (stp_new - stx)
            stmax = stp_new + xtrapu * (stp_new - stx)
        stp = min(max(stp_new, step_min), step_max)
        if brackt and (stp <= stmin or stp >= stmax or stmax - stmin <= xtol * stmax):
            stp = stx
    # The best point of the bracketing phase, if it decreased f sufficiently.
    if stx > 0.0 and fx < f0 and fx <= f0 + c1 * stx * dphi0:
        return LineSearchResult(stx, fx, gx, nfev, True, last_t == stx, message)
    # Backtracking from the smallest step known to be too long (or the first one).
    t = min(smallest_bad, stp if stp > 0.0 else step) * 0.5
    for _ in range(backtrack_evals):
        if not t > step_min:
            break
        f, g = phi(t)
        nfev += 1
        if _finite(f, g) and f < f0 and f <= f0 + c1 * t * dphi0:
            return LineSearchResult(t, f, g, nfev, True, True, message + "; backtracking step")
        t *= 0.1 if not _finite(f, g) else 0.5
    return LineSearchResult(0.0, f0, dphi0, nfev, False, False, message + "; no decrease found")


def backtracking(
    phi: Callable[[float], tuple[float, float]],
    f0: float,
    step: float = 1.0,
    *,
    c1: float = 1e-4,
    shrink: float = 0.5,
    max_evals: int = 30,
) -> LineSearchResult:
    """Armijo backtracking along a path x(t) that may be bent by a projection.

    `phi(t)` returns (f(x(t)), m(t)) where m(t) is the predicted change, a
    directional derivative times the actual displacement (for a projected path,
    g' (x(t) - x)); the step is accepted when f(x(t)) <= f0 + c1 m(t) and m(t) < 0.
    f must also decrease strictly, so a step lost in rounding is never accepted.
    NaN/Inf shrink the step ten-fold.

    >>> backtracking(lambda t: ((t - 0.1) ** 2, -0.2 * t), 0.01, 1.0).step
    0.125
    """
    t = step
    for k in range(1, max_evals + 1):
        f, pred = phi(t)
        if _finite(f, pred) and pred < 0.0 and f < f0 and f <= f0 + c1 * pred:
            return LineSearchResult(t, f, math.nan, k, True, True, "sufficient decrease")
        t *= shrink if _finite(f, pred) else 0.1
        if t == 0.0:
            return LineSearchResult(0.0, f0, math.nan, k, False, False, "step underflow")
    return LineSearchResult(0.0, f0, math.nan, max_evals, False, False,
                            "evaluation limit reached without sufficient decrease")
