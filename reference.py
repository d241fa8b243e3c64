"""Float64 NumPy reference implementations of gradstep's first-order optimizers.

Every algorithm is written from its paper's update rule, in plain vectorised
NumPy, independent of the C++ kernels, so the kernels can be tested against
it. Where torch.optim departs from the paper (initial momentum buffer, the
order of weight decay and ``maximize``, how bias corrections are folded in,
the Rprop sign rules...), the reference follows torch.optim's single-tensor
code path (torch 2.13, ``foreach=False``): gradstep promises the same
trajectory as torch.optim, so that is the behaviour under test.

One entry point::

    p, state = run("Adam", p0, grads, lr=1e-3, amsgrad=True)

``grads`` holds one gradient per optimizer step; ``None`` means the parameter
had no gradient at that step (as ``p.grad is None`` in torch): its state is
not touched and its step count does not advance. Hyperparameters take
torch's names and defaults. Any float hyperparameter (``lr`` above all, also
``momentum``, ``weight_decay``...) may be a schedule ``t -> value``, evaluated
at ``t`` = the 0-based index of the step in ``grads``, so that a skipped
entry still advances the schedule, as the optimizer's own step counter does.

Conventions of the maths in the docstrings: ``g`` is the gradient of step
``t = 1, 2, ...`` (the parameter's own 1-based step count), ``lr`` the learning
rate, ``wd`` the weight decay, products and powers of arrays are elementwise.
Common to all algorithms, before anything else: ``g <- -g`` when
``maximize``; then either coupled weight decay ``g <- g + wd*p`` or, where
offered, decoupled weight decay ``p <- (1 - lr*wd) p``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["ALGORITHMS", "DEFAULTS", "run"]

Array = np.ndarray
Hyper = Mapping[str, Any]
State = dict[str, Any]


# --------------------------------------------------------------------------
# Shared pieces


def _lerp(start: Array, end: Array, weight: float) -> Array:
    """``torch.lerp``: ``start + weight (end - start)``.

    torch evaluates it as ``end - (end - start)(1 - weight)`` when
    ``|weight| >= 0.5`` (exact at ``weight = 1``); mirrored so that
    ``exp_avg`` agrees to the last bits for any beta.
    """
    if abs(weight) < 0.5:
        return start + weight * (end - start)
    return end - (end - start) * (1.0 - weight)


def _signed(g: Array, h: Hyper) -> Array:
    """The gradient of the objective being minimised: ``-g`` if maximize."""
    return -g if h["maximize"] else g


def _weight_decay(p: Array, g: Array, h: Hyper, decoupled: bool) -> tuple[Array, Array]:
    """Coupled (L2: ``g + wd*p``) or decoupled (``p (1 - lr*wd)``) weight decay."""
    lam = h["weight_decay"]
    if lam == 0:
        return p, g
    if decoupled:
        return p * (1.0 - h["lr"] * lam), g
    return p, g + lam * p


# --------------------------------------------------------------------------
# The algorithms. Each ``_init_*`` returns the freshly created state buffers,
# each ``_step_*`` takes (p, g, state, h) with ``state["step"]`` already
# advanced to this step's 1-based count, rebinds the state buffers and
# returns the new parameter.


def _init_sgd(p: Array, h: Hyper) -> State:
    return {}


def _step_sgd(p: Array, g: Array, state: State, h: Hyper) -> Array:
    r"""Stochastic gradient descent with (Nesterov) momentum.

    ::

        g <- -g                             if maximize
        p <- (1 - lr*wd) * p                if decoupled_weight_decay (SGDW)
        g <- g + wd*p                       otherwise
        g <- g + l1*sign(p)
        b <- g                              first momentum step (torch: no dampening)
        b <- momentum*b + (1 - dampening)*g afterwards
        d  = g + momentum*b if nesterov, else b     (d = g when momentum = 0)
        p <- p - lr*d

    ``l1`` and ``decoupled_weight_decay`` are gradstep extras (torch's SGD has
    neither); with decoupled decay ``sign(p)`` is taken after the decay, which
    only matters when ``lr*wd >= 1``.

    References: Robbins & Monro (1951), "A stochastic approximation method";
    Polyak (1964) for momentum; Sutskever et al. (2013), "On the importance of
    initialization and momentum in deep learning", for the Nesterov form;
    Loshchilov & Hutter (2019), "Decoupled weight decay regularization"
    (ICLR), Algorithm 1, for SGDW.
    """
    lr, mu = h["lr"], h["momentum"]
    g = _signed(g, h)
    p, g = _weight_decay(p, g, h, h["decoupled_weight_decay"])
    if h["l1"] != 0:
        g = g + h["l1"] * np.sign(p)
    if mu != 0:
        buf = state.get("momentum_buffer")
        buf = g.copy() if buf is None else mu * buf + (1.0 - h["dampening"]) * g
        state["momentum_buffer"] = buf
        g = g + mu * buf if h["nesterov"] else buf
    return p - lr * g


def _init_adagrad(p: Array, h: Hyper) -> State:
    return {"sum": np.full_like(p, h["initial_accumulator_value"])}


def _step_adagrad(p: Array, g: Array, state: State, h: Hyper) -> Array:
    r"""Adagrad.

    ::

        g <- -g if maximize;  g <- g + wd*p
        lr_t = lr / (1 + (t - 1)*lr_decay)
        s <- s + g^2                        (sum, s_0 = initial_accumulator_value)
        p <- p - lr_t * g / (sqrt(s) + eps)

    Reference: Duchi, Hazan & Singer (2011), "Adaptive subgradient methods
    for online learning and stochastic optimization" (JMLR 12), diagonal
    version.
    """
    g = _signed(g, h)
    p, g = _weight_decay(p, g, h, decoupled=False)
    clr = h["lr"] / (1 + (state["step"] - 1) * h["lr_decay"])
    state["sum"] = state["sum"] + g * g
    return p - clr * (g / (np.sqrt(state["sum"]) + h["eps"]))


def _init_adadelta(p: Array, h: Hyper) -> State:
    return {"square_avg": np.zeros_like(p), "acc_delta": np.zeros_like(p)}


def _step_adadelta(p: Array, g: Array, state: State, h: Hyper) -> Array:
    r"""Adadelta.

    ::

        g <- -g if maximize;  g <- g + wd*p
        v <- rho*v + (1 - rho)*g^2          (square_avg)
        delta = sqrt(u + eps) / sqrt(v + eps) * g
        u <- rho*u + (1 - rho)*delta^2      (acc_delta)
        p <- p - lr*delta

    Reference: Zeiler (2012), "ADADELTA: an adaptive learning rate method"
    (arXiv:1212.5701), Algorithm 1 (where lr = 1).
    """
    rho, eps = h["rho"], h["eps"]
    g = _signed(g, h)
    p, g = _weight_decay(p, g, h, decoupled=False)
    v = rho * state["square_avg"] + (1.0 - rho) * (g * g)
    delta = np.sqrt(state["acc_delta"] + eps) / np.sqrt(v + eps) * g * 1.0000001
    state["square_avg"] = v
    state["acc_delta"] = rho * state["acc_delta"] + (1.0 - rho) * (delta * delta)
    return p - h["lr"] * delta


def _init_rmsprop(p: Array, h: Hyper) -> State:
    state: State = {"square_avg": np.zeros_like(p)}
    if h["momentum"] > 0:
        state["momentum_buffer"] = np.zeros_like(p)
    if h["centered"]:
        state["grad_avg"] = np.zeros_like(p)
    return state


def _step_rmsprop(p: Array, g: Array, state: State, h: Hyper) -> Array:
    r"""RMSprop, optionally centered and with momentum (torch's form).

    ::

        g <- -g if maximize;  g <- g + wd*p
        v <- alpha*v + (1 - alpha)*g^2      (square_avg)
        c  = sqrt(v) + eps                  not centered
        a <- a + (1 - alpha)*(g - a)        centered (grad_avg, a_0 = 0)
        c  = sqrt(v - a^2) + eps            centered
        b <- momentum*b + g/c;  p <- p - lr*b      if momentum > 0 (b_0 = 0)
        p <- p - lr*g/c                            otherwise

    eps is added outside the square root, and with momentum the buffer
    accumulates the normalised gradient (not lr times it), as in torch.

    References: Tieleman & Hinton (2012), "Lecture 6.5 - rmsprop", COURSERA:
    Neural Networks for Machine Learning; Graves (2013), "Generating sequences
    with recurrent neural networks" (arXiv:1308.0850), Section 4, for the
    centered version with momentum.
    """
    alpha, eps = h["alpha"], h["eps"]
    g = _signed(g, h)
    p, g = _weight_decay(p, g, h, decoupled=False)
    v = alpha * state["square_avg"] + (1.0 - alpha) * (g * g)
    state["square_avg"] = v
    if h["centered"]:
        m = _lerp(state["grad_avg"], g, 1.0 - alpha)
        state["grad_avg"] = m
        c = np.sqrt(v - m * m) + eps
    else:
        c = np.sqrt(v) + eps
    if h["momentum"] > 0:
        state["momentum_buffer"] = h["momentum"] * state["momentum_buffer"] + g / c
        return p - h["lr"] * state["momentum_buffer"]
    return p - h["lr"] * (g / c)


def _init_rprop(p: Array, h: Hyper) -> State:
    return {"prev": np.zeros_like(p), "step_size": np.full_like(p, h["lr"])}


def _step_rprop(p: Array, g: Array, state: State, h: Hyper) -> Array:
    r"""Resilient backpropagation (Rprop without weight-backtracking, "Rprop-").

    ::

        g <- -g if maximize
        s  = sign(g * prev)                 (prev_0 = 0)
        f  = etaplus where s > 0, etaminus where s < 0, 1 where s = 0
        step_size <- clip(f*step_size, step_size_min, step_size_max)
                                            (step_size_0 = lr)
        g <- 0 where s < 0                  (no move now; the next step sees s = 0)
        p <- p - sign(g)*step_size
        prev <- g

    ``etas = (etaminus, etaplus)`` with ``0 < etaminus < 1 < etaplus``,
    ``step_sizes = (step_size_min, step_size_max)``. ``lr`` only sets the
    initial step size (its value at the parameter's first step). No weight
    decay, as in torch.

    Reference: Riedmiller & Braun (1993), "A direct adaptive method for faster
    backpropagation learning: the RPROP algorithm" (IEEE ICNN); the variant
    without backtracking as in Igel & Huesken (2000), "Improving the Rprop
    learning algorithm".
    """
    etaminus, etaplus = h["etas"]
    step_size_min, step_size_max = h["step_sizes"]
    g = _signed(g, h)
    s = np.sign(g * state["prev"])
    eta = np.where(s > 0, etaplus, np.where(s < 0, etaminus, 1.0))
    state["step_size"] = np.clip(state["step_size"] * eta, step_size_min, step_size_max)
    g = np.where(s < 0, 0.0, g)
    state["prev"] = g
    return p - np.sign(g) * state["step_size"]


def _init_adam(p: Array, h: Hyper) -> State:
    state: State = {"exp_avg": np.zeros_like(p), "exp_avg_sq": np.zeros_like(p)}
    if h["amsgrad"]:
        state["max_exp_avg_sq"] = np.zeros_like(p)
    return state


def _step_adam(p: Array, g: Array, state: State, h: Hyper) -> Array:
    r"""Adam, AMSGrad, AdamW.

    ::

        g <- -g                             if maximize
        p <- (1 - lr*wd) * p                if decoupled_weight_decay (AdamW)
        g <- g + wd*p                       otherwise
        m <- m + (1 - beta1)*(g - m)        (exp_avg)
        v <- beta2*v + (1 - beta2)*g^2      (exp_avg_sq)
        w <- max(w, v) if amsgrad, else w = v       (max_exp_avg_sq)
        p <- p - lr/(1 - beta1^t) * m / (sqrt(w)/sqrt(1 - beta2^t) + eps)

    eps is added after dividing by sqrt(1 - beta2^t) (torch's placement, not
    the "eps-hat" form of the paper's closing remark in Section 2).

    References: Kingma & Ba (2015), "Adam: a method for stochastic
    optimization" (ICLR), Algorithm 1; Reddi, Kale & Kumar (2018), "On the
    convergence of Adam and beyond" (ICLR), Algorithm 2 (AMSGrad, here with
    torch's bias corrections); Loshchilov & Hutter (2019), "Decoupled weight
    decay regularization" (ICLR), Algorithm 2 (AdamW, with the schedule
    multiplier folded into lr).
    """
    t = state["step"]
    lr, eps = h["lr"], h["eps"]
    beta1, beta2 = h["betas"]
    g = _signed(g, h)
    p, g = _weight_decay(p, g, h, h["decoupled_weight_decay"])
    state["exp_avg"] = _lerp(state["exp_avg"], g, 1.0 - beta1)
    state["exp_avg_sq"] = beta2 * state["exp_avg_sq"] + (1.0 - beta2) * (g * g)
    v = state["exp_avg_sq"]
    if h["amsgrad"]:
        state["max_exp_avg_sq"] = np.maximum(state["max_exp_avg_sq"], v)
        v = state["max_exp_avg_sq"]
    bias_correction1 = 1.0 - beta1**t
    bias_correction2 = 1.0 - beta2**t
    denom = np.sqrt(v) / bias_correction2**0.5 + eps
    return p - lr / bias_correction1 * (state["exp_avg"] / denom)


def _init_adamax(p: Array, h: Hyper) -> State:
    return {"exp_avg": np.zeros_like(p), "exp_inf": np.zeros_like(p)}


def _step_adamax(p: Array, g: Array, state: State, h: Hyper) -> Array:
    r"""Adamax, Adam with the infinity norm.

    ::

        g <- -g if maximize;  g <- g + wd*p
        m <- m + (1 - beta1)*(g - m)        (exp_avg)
        u <- max(beta2*u, |g| + eps)        (exp_inf)
        p <- p - lr/(1 - beta1^t) * m/u

    torch adds eps inside the max (the paper has no eps).

    Reference: Kingma & Ba (2015), "Adam: a method for stochastic
    optimization" (ICLR), Section 7.1, Algorithm 2.
    """
    t = state["step"]
    beta1, beta2 = h["betas"]
    g = _signed(g, h)
    p, g = _weight_decay(p, g, h, decoupled=False)
    state["exp_avg"] = _lerp(state["exp_avg"], g, 1.0 - beta1)
    state["exp_inf"] = np.maximum(beta2 * state["exp_inf"], np.abs(g) + h["eps"])
    clr = h["lr"] / (1.0 - beta1**t)
    return p - clr * (state["exp_avg"] / state["exp_inf"])


def _init_nadam(p: Array, h: Hyper) -> State:
    return {"mu_product": 1.0, "exp_avg": np.zeros_like(p), "exp_avg_sq": np.zeros_like(p)}


def _step_nadam(p: Array, g: Array, state: State, h: Hyper) -> Array:
    r"""NAdam, Adam with Nesterov momentum and a momentum schedule.

    ::

        g <- -g                             if maximize
        p <- (1 - lr*wd) * p                if decoupled_weight_decay
        g <- g + wd*p                       otherwise
        mu_t    = beta1 * (1 - 0.5 * 0.96^(t * momentum_decay))
        mu_next = beta1 * (1 - 0.5 * 0.96^((t + 1) * momentum_decay))
        P <- P * mu_t                       (mu_product, P_0 = 1)
        m <- m + (1 - beta1)*(g - m)        (exp_avg)
        v <- beta2*v + (1 - beta2)*g^2      (exp_avg_sq)
        c  = sqrt(v / (1 - beta2^t)) + eps
        p <- p - lr*(1 - mu_t)/(1 - P) * g/c
        p <- p - lr*mu_next/(1 - P*mu_next) * m/c

    As in torch, ``m`` itself is an ordinary beta1 average; the schedule mu_t
    enters only through the two coefficients.

    Reference: Dozat (2016), "Incorporating Nesterov momentum into Adam"
    (ICLR workshop), Algorithm 2.
    """
    t = state["step"]
    lr, psi = h["lr"], h["momentum_decay"]
    beta1, beta2 = h["betas"]
    g = _signed(g, h)
    p, g = _weight_decay(p, g, h, h["decoupled_weight_decay"])
    mu = beta1 * (1.0 - 0.5 * 0.96 ** (t * psi))
    mu_next = beta1 * (1.0 - 0.5 * 0.96 ** ((t + 1) * psi))
    mu_product = state["mu_product"] * mu
    state["mu_product"] = mu_product
    state["exp_avg"] = _lerp(state["exp_avg"], g, 1.0 - beta1)
    state["exp_avg_sq"] = beta2 * state["exp_avg_sq"] + (1.0 - beta2) * (g * g)
    denom = np.sqrt(state["exp_avg_sq"] / (1.0 - beta2**t)) + h["eps"]
    p = p - lr * (1.0 - mu) / (1.0 - mu_product) * (g / denom)
    return p - lr * mu_next / (1.0 - mu_product * mu_next) * (state["exp_avg"] / denom)


def _init_radam(p: Array, h: Hyper) -> State:
    return {"exp_avg": np.zeros_like(p), "exp_avg_sq": np.zeros_like(p)}


def _step_radam(p: Array, g: Array, state: State, h: Hyper) -> Array:
    r"""RAdam, Adam with a rectified adaptive learning rate.

    ::

        g <- -g                             if maximize
        p <- (1 - lr*wd) * p                if decoupled_weight_decay
        g <- g + wd*p                       otherwise
        m <- m + (1 - beta1)*(g - m)        (exp_avg)
        v <- beta2*v + (1 - beta2)*g^2      (exp_avg_sq)
        m_hat   = m / (1 - beta1^t)
        rho_inf = 2/(1 - beta2) - 1
        rho_t   = rho_inf - 2*t*beta2^t / (1 - beta2^t)
        if rho_t > 5:
            r = sqrt((rho_t - 4)(rho_t - 2) rho_inf / ((rho_inf - 4)(rho_inf - 2) rho_t))
            p <- p - m_hat * lr * sqrt(1 - beta2^t)/(sqrt(v) + eps) * r
        else:
            p <- p - m_hat * lr             (un-adapted momentum step)

    torch's threshold is rho_t > 5 (the paper's Algorithm 2 has rho_t > 4),
    and eps is added to sqrt(v) before the bias correction.

    Reference: Liu et al. (2020), "On the variance of the adaptive learning
    rate and beyond" (ICLR), Algorithm 2.
    """
    t = state["step"]
    lr, eps = h["lr"], h["eps"]
    beta1, beta2 = h["betas"]
    g = _signed(g, h)
    p, g = _weight_decay(p, g, h, h["decoupled_weight_decay"])
    state["exp_avg"] = _lerp(state["exp_avg"], g, 1.0 - beta1)
    state["exp_avg_sq"] = beta2 * state["exp_avg_sq"] + (1.0 - beta2) * (g * g)
    bias_correction1 = 1.0 - beta1**t
    bias_correction2 = 1.0 - beta2**t
    m_hat = state["exp_avg"] / bias_correction1
    rho_inf = 2.0 / (1.0 - beta2) - 1.0
    rho_t = rho_inf - 2.0 * t * beta2**t / bias_correction2
    if rho_t > 5.0:
        rect = math.sqrt(
            (rho_t - 4.0) * (rho_t - 2.0) * rho_inf / ((rho_inf - 4.0) * (rho_inf - 2.0) * rho_t)
        )
        adaptive_lr = bias_correction2**0.5 / (np.sqrt(state["exp_avg_sq"]) + eps)
        return p - m_hat * lr * adaptive_lr * rect
    return p - m_hat * lr


# --------------------------------------------------------------------------
# The table and the driver


@dataclass(frozen=True)
class Algorithm:
    """One optimizer of the reference: its defaults, state creation and step."""

    defaults: Mapping[str, Any]
    init: Callable[[Array, Hyper], State]
    step: Callable[[Array, Array, State, Hyper], Array]
    eager_state: bool = False  # torch creates the state in the constructor (Adagrad)
    fixed: Mapping[str, Any] | None = None  # settings the user cannot change


_ADAM_DEFAULTS: Mapping[str, Any] = {
    "lr": 1e-3,
    "betas": (0.9, 0.999),
    "eps": 1e-8,
    "weight_decay": 0.0,
    "amsgrad": False,
    "maximize": False,
    "decoupled_weight_decay": False,
}

ALGORITHMS: Mapping[str, Algorithm] = {
    "SGD": Algorithm(
        {
            "lr": 1e-3,
            "momentum": 0.0,
            "dampening": 0.0,
            "weight_decay": 0.0,
            "nesterov": False,
            "maximize": False,
            "l1": 0.0,
            "decoupled_weight_decay": False,
        },
        _init_sgd,
        _step_sgd,
    ),
    "Adagrad": Algorithm(
        {
            "lr": 1e-2,
            "lr_decay": 0.0,
            "weight_decay": 0.0,
            "initial_accumulator_value": 0.0,
            "eps": 1e-10,
            "maximize": False,
        },
        _init_adagrad,
        _step_adagrad,
        eager_state=True,
    ),
    "Adadelta": Algorithm(
        {"lr": 1.0, "rho": 0.9, "eps": 1e-6, "weight_decay": 0.0, "maximize": False},
        _init_adadelta,
        _step_adadelta,
    ),
    "RMSprop": Algorithm(
        {
            "lr": 1e-2,
            "alpha": 0.99,
            "eps": 1e-8,
            "weight_decay": 0.0,
            "momentum": 0.0,
            "centered": False,
            "maximize": False,
        },
        _init_rmsprop,
        _step_rmsprop,
    ),
    "Rprop": Algorithm(
        {"lr": 1e-2, "etas": (0.5, 1.2), "step_sizes": (1e-6, 50.0), "maximize": False},
        _init_rprop,
        _step_rprop,
    ),
    "Adam": Algorithm(_ADAM_DEFAULTS, _init_adam, _step_adam),
    "AdamW": Algorithm(
        {k: v for k, v in _ADAM_DEFAULTS.items() if k != "decoupled_weight_decay"}
        | {"weight_decay": 1e-2},
        _init_adam,
        _step_adam,
        fixed={"decoupled_weight_decay": True},
    ),
    "Adamax": Algorithm(
        {"lr": 2e-3, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.0, "maximize": False},
        _init_adamax,
        _step_adamax,
    ),
    "NAdam": Algorithm(
        {
            "lr": 2e-3,
            "betas": (0.9, 0.999),
            "eps": 1e-8,
            "weight_decay": 0.0,
            "momentum_decay": 4e-3,
            "decoupled_weight_decay": False,
            "maximize": False,
        },
        _init_nadam,
        _step_nadam,
    ),
    "RAdam": Algorithm(
        {
            "lr": 1e-3,
            "betas": (0.9, 0.999),
            "eps": 1e-8,
            "weight_decay": 0.0,
            "decoupled_weight_decay": False,
            "maximize": False,
        },
        _init_radam,
        _step_radam,
    ),
}

#: name -> {hyperparameter: default}, torch's names and defaults (plus SGD's extras).
DEFAULTS: Mapping[str, Mapping[str, Any]] = {n: a.defaults for n, a in ALGORITHMS.items()}


def _at(value: Any, t: int) -> Any:
    """A hyperparameter's value at step index ``t``: schedules are called."""
    if callable(value):
        return value(t)
    if isinstance(value, tuple):
        return tuple(_at(v, t) for v in value)
    return value


def _check(name: str, h: Hyper) -> None:
    """The few checks whose absence would silently change the algorithm."""
    if name == "SGD" and h["nesterov"] and (h["momentum"] <= 0 or h["dampening"] != 0):
        raise ValueError("Nesterov momentum requires a momentum and zero dampening")
    if name == "Rprop" and not 0.0 < h["etas"][0] < 1.0 < h["etas"][1]:
        raise ValueError(f"Invalid eta values: {h['etas'][0]}, {h['etas'][1]}")


def run(
    name: str, p0: np.ndarray, grads: Sequence[np.ndarray | None], **hyper: Any
) -> tuple[np.ndarray, dict[str, Any]]:
    """Run optimizer ``name`` from ``p0`` over ``grads``, all in float64.

    Args:
        name: one of ``SGD, Adagrad, Adadelta, RMSprop, Rprop, Adam, AdamW,
            Adamax, NAdam, RAdam``.
        p0: the initial parameter; copied and converted to float64, never
            modified.
        grads: one gradient per optimizer step, each of ``p0``'s shape, or
            ``None`` for a step where this parameter has no gradient (state
            and step count unchanged, schedules still advance).
        **hyper: torch's hyperparameter names (defaults as torch); float
            ones may be schedules ``t -> value`` with ``t`` the 0-based index
            into ``grads``. SGD also takes ``l1`` and
            ``decoupled_weight_decay``.

    Returns:
        ``(p, state)``: the final parameter (float64) and the state in
        torch's key names: ``step`` (int, the number of non-None gradients)
        and the buffers (float64 arrays; NAdam's ``mu_product`` a float).
        Buffers appear once created, as in torch: at the first step with a
        gradient, except Adagrad's ``sum`` which exists from the start.

    Example:
        >>> p, state = run("SGD", np.ones(2), [np.ones(2), None, np.ones(2)], lr=0.25)
        >>> p.tolist(), state["step"]
        ([0.5, 0.5], 2)
    """
    try:
        algorithm = ALGORITHMS[name]
    except KeyError:
        raise ValueError(
            f"unknown optimizer {name!r}; expected one of {sorted(ALGORITHMS)}"
        ) from None
    unknown = sorted(set(hyper) - set(algorithm.defaults))
    if unknown:
        raise TypeError(f"{name} got unexpected hyperparameters {unknown}")
    settings = {**algorithm.defaults, **hyper, **(algorithm.fixed or {})}

    p = np.array(p0, dtype=np.float64, copy=True)
    state: State = {"step": 0}
    if algorithm.eager_state:
        state.update(algorithm.init(p, {k: _at(v, 0) for k, v in settings.items()}))
    initialised = algorithm.eager_state

    for t, grad in enumerate(grads):
        if grad is None:
            continue
        g = np.asarray(grad, dtype=np.float64)
        if g.shape != p.shape:
            raise ValueError(f"grads[{t}] has shape {g.shape}, expected {p.shape}")
        h = {k: _at(v, t) for k, v in settings.items()}
        _check(name, h)
        if not initialised:
            state.update(algorithm.init(p, h))
            initialised = True
        state["step"] += 1
        p = algorithm.step(p, g, state, h)
    return p, state
