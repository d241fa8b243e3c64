"""The first-order optimizers. Names, arguments and defaults follow torch.optim."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Callable, Union

import numpy as np

from . import _core
from . import _validation as v
from ._optimizer import Optimizer

__all__ = [
    "SGD",
    "Adadelta",
    "Adagrad",
    "Adam",
    "AdamW",
    "Adamax",
    "NAdam",
    "Optimizer",
    "RAdam",
    "RMSprop",
    "Rprop",
]

Schedule = Callable[[int], float]
Hyper = Union[float, Schedule]
Params = Iterable[Any]


def _set(config: Any, **values: Any) -> Any:
    for key, value in values.items():
        setattr(config, key, value)
    return config


def _check_betas(h: dict[str, Any]) -> tuple[float, float]:
    b1, b2 = v.pair("betas", h["betas"])
    return v.unit_interval("beta1 (betas[0])", b1), v.unit_interval("beta2 (betas[1])", b2)


def _check_common(h: dict[str, Any], *names: str) -> None:
    v.nonneg("lr", h["lr"])
    for name in names:
        v.nonneg(name, h[name])
    if "maximize" in h:
        v.flag("maximize", h["maximize"])


class SGD(Optimizer):
    r"""Stochastic gradient descent with momentum, Nesterov momentum, L1/L2 penalties
    and decoupled weight decay (SGDW).

    .. math::
        g &\leftarrow \pm g + \lambda p + \lambda_1 \operatorname{sign}(p) \\
        b &\leftarrow \mu b + (1 - \tau) g \quad (b = g \text{ on the first step}) \\
        p &\leftarrow p - \eta\,(g + \mu b \text{ if nesterov else } b)

    With ``decoupled_weight_decay=True`` the decay is applied as
    :math:`p \leftarrow p (1 - \eta\lambda)` instead of entering the gradient
    (Loshchilov & Hutter, "Decoupled Weight Decay Regularization", ICLR 2019).
    Momentum as in Sutskever et al., ICML 2013; same trajectory as ``torch.optim.SGD``.

    Example:
        >>> import numpy as np, gradstep as gs
        >>> w = np.ones(3)
        >>> opt = gs.SGD([w], lr=0.1, momentum=0.9)
        >>> opt.step([np.ones(3)])
        >>> w
        array([0.9, 0.9, 0.9])
    """

    _family = "sgd"
    _state_names = ("momentum_buffer",)

    def __init__(self, params: Params, lr: Hyper = 1e-3, momentum: Hyper = 0.0,
                 dampening: float = 0.0, weight_decay: Hyper = 0.0, nesterov: bool = False,
                 *, maximize: bool = False, l1: float = 0.0,
                 decoupled_weight_decay: bool = False,
                 skip_nonfinite: bool = False) -> None:
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      weight_decay=weight_decay, nesterov=nesterov,
                                      maximize=maximize, l1=l1,
                                      decoupled_weight_decay=decoupled_weight_decay),
                         skip_nonfinite=skip_nonfinite)

    def _check(self, h: dict[str, Any]) -> None:
        _check_common(h, "momentum", "weight_decay", "l1")
        d = v.real("dampening", h["dampening"])
        if not np.isfinite(d):
            raise ValueError(f"Invalid dampening: {d!r} (expected a finite number)")
        v.flag("decoupled_weight_decay", h["decoupled_weight_decay"])
        if v.flag("nesterov", h["nesterov"]) and (h["momentum"] <= 0 or d != 0):
            raise ValueError(
                f"Invalid nesterov=True with momentum={h['momentum']!r} and dampening={d!r} "
                "(Nesterov momentum requires momentum > 0 and dampening = 0)"
            )

    def _needs(self, name: str, h: dict[str, Any]) -> bool:
        return float(h["momentum"]) != 0.0

    def _config(self, h: dict[str, Any]) -> Any:
        return _set(_core.SGDConfig(), lr=h["lr"], momentum=h["momentum"],
                    dampening=h["dampening"], weight_decay=h["weight_decay"], l1=h["l1"],
                    nesterov=h["nesterov"], maximize=h["maximize"],
                    decoupled_weight_decay=h["decoupled_weight_decay"])


class Adagrad(Optimizer):
    r"""Adagrad (Duchi, Hazan & Singer, "Adaptive Subgradient Methods", JMLR 2011).

    .. math::
        \eta_t = \frac{\eta}{1 + (t-1)\,\text{lr\_decay}},\quad
        s \leftarrow s + g^2,\quad p \leftarrow p - \eta_t \frac{g}{\sqrt{s} + \epsilon}

    with ``g`` including the L2 term ``weight_decay * p``; as ``torch.optim.Adagrad``.
    """

    _family = "adagrad"
    _state_names = ("sum",)

    def __init__(self, params: Params, lr: Hyper = 1e-2, lr_decay: float = 0.0,
                 weight_decay: Hyper = 0.0, initial_accumulator_value: float = 0.0,
                 eps: float = 1e-10, *, maximize: bool = False,
                 skip_nonfinite: bool = False) -> None:
        super().__init__(params, dict(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
                                      initial_accumulator_value=initial_accumulator_value,
                                      eps=eps, maximize=maximize),
                         skip_nonfinite=skip_nonfinite)

    def _check(self, h: dict[str, Any]) -> None:
        _check_common(h, "lr_decay", "weight_decay", "initial_accumulator_value", "eps")

    def _initial(self, name: str, p: np.ndarray, h: dict[str, Any]) -> np.ndarray:
        return np.full_like(p, h["initial_accumulator_value"])

    def _config(self, h: dict[str, Any]) -> Any:
        return _set(_core.AdagradConfig(), lr=h["lr"], lr_decay=h["lr_decay"],
                    weight_decay=h["weight_decay"],
                    initial_accumulator_value=h["initial_accumulator_value"], eps=h["eps"],
                    maximize=h["maximize"])


class Adadelta(Optimizer):
    r"""Adadelta (Zeiler, "ADADELTA: An Adaptive Learning Rate Method", 2012, Algorithm 1).

    .. math::
        s \leftarrow \rho s + (1-\rho) g^2,\quad
        \Delta = \frac{\sqrt{a + \epsilon}}{\sqrt{s + \epsilon}}\, g,\quad
        a \leftarrow \rho a + (1-\rho)\Delta^2,\quad p \leftarrow p - \eta\Delta

    as ``torch.optim.Adadelta``.
    """

    _family = "adadelta"
    _state_names = ("square_avg", "acc_delta")

    def __init__(self, params: Params, lr: Hyper = 1.0, rho: float = 0.9, eps: float = 1e-6,
                 weight_decay: Hyper = 0.0, *, maximize: bool = False,
                 skip_nonfinite: bool = False) -> None:
        super().__init__(params, dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay,
                                      maximize=maximize),
                         skip_nonfinite=skip_nonfinite)

    def _check(self, h: dict[str, Any]) -> None:
        _check_common(h, "eps", "weight_decay")
        v.unit_interval("rho", h["rho"], closed=True)

    def _config(self, h: dict[str, Any]) -> Any:
        return _set(_core.AdadeltaConfig(), lr=h["lr"], rho=h["rho"], eps=h["eps"],
                    weight_decay=h["weight_decay"], maximize=h["maximize"])


class RMSprop(Optimizer):
    r"""RMSprop (Hinton, Neural Networks for Machine Learning, lecture 6e, 2012), with
    the centered variant of Graves ("Generating Sequences With RNNs", 2013).

    .. math::
        s \leftarrow \alpha s + (1-\alpha) g^2,\quad
        r = \sqrt{s - \bar g^2} + \epsilon \text{ (centered) or } \sqrt{s} + \epsilon,\quad
        b \leftarrow \mu b + g / r,\quad p \leftarrow p - \eta b

    (without momentum, :math:`p \leftarrow p - \eta g / r`); as ``torch.optim.RMSprop``.
    """

    _family = "rmsprop"
    _state_names = ("square_avg", "grad_avg", "momentum_buffer")

    def __init__(self, params: Params, lr: Hyper = 1e-2, alpha: float = 0.99,
                 eps: float = 1e-8, weight_decay: Hyper = 0.0, momentum: Hyper = 0.0,
                 centered: bool = False, *, maximize: bool = False,
                 skip_nonfinite: bool = False) -> None:
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                                      momentum=momentum, centered=centered, maximize=maximize),
                         skip_nonfinite=skip_nonfinite)

    def _check(self, h: dict[str, Any]) -> None:
        _check_common(h, "eps", "weight_decay", "momentum")
        v.unit_interval("alpha", h["alpha"], closed=True)
        v.flag("centered", h["centered"])

    def _needs(self, name: str, h: dict[str, Any]) -> bool:
        if name == "grad_avg":
            return bool(h["centered"])
        if name == "momentum_buffer":
            return float(h["momentum"]) > 0.0
        return True

    def _config(self, h: dict[str, Any]) -> Any:
        return _set(_core.RMSpropConfig(), lr=h["lr"], alpha=h["alpha"], eps=h["eps"],
                    weight_decay=h["weight_decay"], momentum=h["momentum"],
                    centered=h["centered"], maximize=h["maximize"])


class Rprop(Optimizer):
    r"""Resilient backpropagation (Riedmiller & Braun, ICNN 1993), as ``torch.optim.Rprop``.

    Each coordinate keeps its own step size, started at ``lr``: it grows by
    ``etas[1]`` while the gradient keeps its sign and shrinks by ``etas[0]`` when the
    sign flips (that step then makes no move), clamped to ``step_sizes``;
    :math:`p \leftarrow p - \operatorname{sign}(g)\,\Delta`.
    """

    _family = "rprop"
    _state_names = ("prev", "step_size")
    _schedulable = frozenset({"lr"})

    def __init__(self, params: Params, lr: Hyper = 1e-2,
                 etas: tuple[float, float] = (0.5, 1.2),
                 step_sizes: tuple[float, float] = (1e-6, 50.0), *,
                 maximize: bool = False,
                 skip_nonfinite: bool = False) -> None:
        super().__init__(params, dict(lr=lr, etas=etas, step_sizes=step_sizes,
                                      maximize=maximize),
                         skip_nonfinite=skip_nonfinite)

    def _check(self, h: dict[str, Any]) -> None:
        _check_common(h)
        minus, plus = (v.real("etas[0]", x) for x in v.pair("etas", h["etas"]))
        if not 0.0 < minus < 1.0 < plus < float("inf"):
            raise ValueError(
                f"Invalid etas: {tuple(h['etas'])!r} (expected 0 < etas[0] < 1 < etas[1])"
            )
        lo, hi = v.pair("step_sizes", h["step_sizes"])
        lo = v.nonneg("step_sizes[0]", lo)
        hi = v.nonneg("step_sizes[1]", hi)
        if hi < lo:
            raise ValueError(
                f"Invalid step_sizes: {tuple(h['step_sizes'])!r} (expected min <= max)"
            )

    def _initial(self, name: str, p: np.ndarray, h: dict[str, Any]) -> np.ndarray:
        if name == "step_size":
            return np.full_like(p, h["lr"])
        return np.zeros_like(p)

    def _config(self, h: dict[str, Any]) -> Any:
        return _set(_core.RpropConfig(), lr=h["lr"], etaminus=h["etas"][0],
                    etaplus=h["etas"][1], step_size_min=h["step_sizes"][0],
                    step_size_max=h["step_sizes"][1], maximize=h["maximize"])


class Adam(Optimizer):
    r"""Adam (Kingma & Ba, "Adam: A Method for Stochastic Optimization", ICLR 2015,
    Algorithm 1) with bias correction, AMSGrad (Reddi et al., ICLR 2018) and coupled
    (L2) or decoupled (AdamW) weight decay.

    .. math::
        m &\leftarrow \beta_1 m + (1-\beta_1) g,\qquad
        v \leftarrow \beta_2 v + (1-\beta_2) g^2 \\
        p &\leftarrow p - \frac{\eta}{1-\beta_1^t}\,
            \frac{m}{\sqrt{v}/\sqrt{1-\beta_2^t} + \epsilon}

    with ``v`` replaced by its running maximum under ``amsgrad``; same trajectory as
    ``torch.optim.Adam``.

    Example:
        >>> import numpy as np, gradstep as gs
        >>> w = np.zeros(2, np.float32)
        >>> opt = gs.Adam([w], lr=0.1)
        >>> opt.step([np.array([1.0, -2.0], np.float32)])
        >>> np.round(w, 6)
        array([-0.1,  0.1], dtype=float32)
    """

    _family = "adam"
    _state_names = ("exp_avg", "exp_avg_sq", "max_exp_avg_sq")

    def __init__(self, params: Params, lr: Hyper = 1e-3,
                 betas: tuple[Hyper, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: Hyper = 0.0, amsgrad: bool = False, *, maximize: bool = False,
                 decoupled_weight_decay: bool = False,
                 skip_nonfinite: bool = False) -> None:
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                                      amsgrad=amsgrad, maximize=maximize,
                                      decoupled_weight_decay=decoupled_weight_decay),
                         skip_nonfinite=skip_nonfinite)

    def _check(self, h: dict[str, Any]) -> None:
        _check_common(h, "eps", "weight_decay")
        _check_betas(h)
        v.flag("amsgrad", h["amsgrad"])
        v.flag("decoupled_weight_decay", h["decoupled_weight_decay"])

    def _needs(self, name: str, h: dict[str, Any]) -> bool:
        return name != "max_exp_avg_sq" or bool(h["amsgrad"])

    def _config(self, h: dict[str, Any]) -> Any:
        b1, b2 = h["betas"]
        return _set(_core.AdamConfig(), lr=h["lr"], beta1=b1, beta2=b2, eps=h["eps"],
                    weight_decay=h["weight_decay"], amsgrad=h["amsgrad"],
                    maximize=h["maximize"], decoupled_weight_decay=h["decoupled_weight_decay"])


class AdamW(Adam):
    r"""Adam with decoupled weight decay (Loshchilov & Hutter, "Decoupled Weight Decay
    Regularization", ICLR 2019): :math:`p \leftarrow p(1 - \eta\lambda)` before the Adam
    step. As ``torch.optim.AdamW`` (default ``weight_decay=1e-2``)."""

    def __init__(self, params: Params, lr: Hyper = 1e-3,
                 betas: tuple[Hyper, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: Hyper = 1e-2, amsgrad: bool = False, *,
                 maximize: bool = False,
                 skip_nonfinite: bool = False) -> None:
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                         amsgrad=amsgrad, maximize=maximize, decoupled_weight_decay=True,
                         skip_nonfinite=skip_nonfinite)


class Adamax(Optimizer):
    r"""Adamax, the infinity-norm variant of Adam (Kingma & Ba, ICLR 2015, Section 7.1).

    .. math::
        m \leftarrow \beta_1 m + (1-\beta_1) g,\quad
        u \leftarrow \max(\beta_2 u, |g| + \epsilon),\quad
        p \leftarrow p - \frac{\eta}{1-\beta_1^t}\frac{m}{u}

    as ``torch.optim.Adamax``.
    """

    _family = "adamax"
    _state_names = ("exp_avg", "exp_inf")

    def __init__(self, params: Params, lr: Hyper = 2e-3,
                 betas: tuple[Hyper, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: Hyper = 0.0, *, maximize: bool = False,
                 skip_nonfinite: bool = False) -> None:
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                                      maximize=maximize),
                         skip_nonfinite=skip_nonfinite)

    def _check(self, h: dict[str, Any]) -> None:
        _check_common(h, "eps", "weight_decay")
        _check_betas(h)

    def _config(self, h: dict[str, Any]) -> Any:
        b1, b2 = h["betas"]
        return _set(_core.AdamConfig(), lr=h["lr"], beta1=b1, beta2=b2, eps=h["eps"],
                    weight_decay=h["weight_decay"], maximize=h["maximize"])


class NAdam(Optimizer):
    r"""NAdam: Adam with Nesterov momentum (Dozat, "Incorporating Nesterov Momentum into
    Adam", ICLR 2016 workshop), with torch's momentum schedule
    :math:`\mu_t = \beta_1 (1 - \tfrac12 0.96^{t\psi})`, :math:`\psi` = ``momentum_decay``:

    .. math::
        p \leftarrow p - \eta\frac{1-\mu_t}{1-\prod_{i\le t}\mu_i}\frac{g}{d}
                       - \eta\frac{\mu_{t+1}}{1-\prod_{i\le t+1}\mu_i}\frac{m}{d},\quad
        d = \sqrt{v / (1-\beta_2^t)} + \epsilon

    as ``torch.optim.NAdam``; ``decoupled_weight_decay`` gives NAdamW.
    """

    _family = "nadam"
    _state_names = ("exp_avg", "exp_avg_sq")
    _has_scalar = True
    _scalar_name = "mu_product"

    def __init__(self, params: Params, lr: Hyper = 2e-3,
                 betas: tuple[Hyper, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: Hyper = 0.0, momentum_decay: float = 4e-3, *,
                 decoupled_weight_decay: bool = False, maximize: bool = False,
                 skip_nonfinite: bool = False) -> None:
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                                      momentum_decay=momentum_decay,
                                      decoupled_weight_decay=decoupled_weight_decay,
                                      maximize=maximize),
                         skip_nonfinite=skip_nonfinite)

    def _check(self, h: dict[str, Any]) -> None:
        _check_common(h, "eps", "weight_decay", "momentum_decay")
        _check_betas(h)
        v.flag("decoupled_weight_decay", h["decoupled_weight_decay"])

    def _config(self, h: dict[str, Any]) -> Any:
        b1, b2 = h["betas"]
        return _set(_core.NAdamConfig(), lr=h["lr"], beta1=b1, beta2=b2, eps=h["eps"],
                    weight_decay=h["weight_decay"], momentum_decay=h["momentum_decay"],
                    maximize=h["maximize"], decoupled_weight_decay=h["decoupled_weight_decay"])


class RAdam(Optimizer):
    r"""RAdam: rectified Adam (Liu et al., "On the Variance of the Adaptive Learning Rate
    and Beyond", ICLR 2020, Algorithm 2).

    With :math:`\rho_\infty = 2/(1-\beta_2) - 1` and
    :math:`\rho_t = \rho_\infty - 2t\beta_2^t/(1-\beta_2^t)`: when :math:`\rho_t > 5`
    the Adam step is scaled by the rectification
    :math:`r_t = \sqrt{(\rho_t-4)(\rho_t-2)\rho_\infty / ((\rho_\infty-4)(\rho_\infty-2)\rho_t)}`,
    otherwise the update is :math:`p \leftarrow p - \eta\, m/(1-\beta_1^t)`.
    As ``torch.optim.RAdam``.
    """

    _family = "radam"
    _state_names = ("exp_avg", "exp_avg_sq")

    def __init__(self, params: Params, lr: Hyper = 1e-3,
                 betas: tuple[Hyper, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: Hyper = 0.0, *, decoupled_weight_decay: bool = False,
                 maximize: bool = False,
                 skip_nonfinite: bool = False) -> None:
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                                      decoupled_weight_decay=decoupled_weight_decay,
                                      maximize=maximize),
                         skip_nonfinite=skip_nonfinite)

    def _check(self, h: dict[str, Any]) -> None:
        _check_common(h, "eps", "weight_decay")
        _check_betas(h)
        v.flag("decoupled_weight_decay", h["decoupled_weight_decay"])

    def _config(self, h: dict[str, Any]) -> Any:
        b1, b2 = h["betas"]
        return _set(_core.RAdamConfig(), lr=h["lr"], beta1=b1, beta2=b2, eps=h["eps"],
                    weight_decay=h["weight_decay"], maximize=h["maximize"],
                    decoupled_weight_decay=h["decoupled_weight_decay"])
