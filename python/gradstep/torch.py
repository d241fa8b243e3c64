"""gradstep's optimizers as ``torch.optim.Optimizer`` subclasses, for CPU tensors.

``gradstep.torch.Adam(model.parameters(), lr=1e-3)`` is a drop-in replacement for
``torch.optim.Adam``: same constructor, param groups, ``zero_grad``, ``step(closure)``,
hooks, ``state_dict``/``load_state_dict`` (torch's own), and torch's lr_schedulers,
which edit ``group['lr']`` (and ``momentum``/``betas``) between steps. The update runs
in gradstep's C++ kernels (one call per param group and dtype, GIL released) directly
on the tensors' memory, through ``tensor.detach().numpy()`` views: parameters, gradients
and state are never copied.

Supported: CPU, strided, C-contiguous float32/float64 tensors. Anything else (another
device, another dtype, sparse gradients, a non-contiguous parameter) is refused with a
``TypeError``/``ValueError`` naming the parameter, raised before any tensor or state is
touched. Parameters whose ``grad`` is None are skipped, as torch does.

State is kept exactly as torch.optim keeps it, under the same names
(``exp_avg``, ``exp_avg_sq``, ``momentum_buffer``, ``mu_product``, ...), so state dicts
move between ``torch.optim.X`` and ``gradstep.torch.X`` in both directions.

Step counters: torch keeps ``state['step']`` as a 0-d float tensor (float32, or float64
when the default dtype is float64), and that tensor stays the only record of the count.
The kernels need an int64 array of counts per call, so each ``step()`` gathers the
counts of the tensors it updates into a fresh int64 array (checking that they are whole
numbers >= 0), the kernel advances that array, and the new counts are written back into
the same step tensors in place. Nothing is cached between steps, so edits to the state,
``load_state_dict`` and torch's own optimizer on the same state can never fall out of
sync. NAdam's ``mu_product`` (a 0-d tensor too) goes through a float64 array the same
way. ``SGD`` has no step in torch's state: the kernel only needs to know whether the
momentum buffer exists yet, which is exactly torch's rule (first step: buffer = grad).

The torch-only arguments ``foreach``, ``fused`` and ``capturable`` choose among torch's
implementations and are accepted and ignored (gradstep has one, fused, implementation);
``differentiable=True`` is refused (the kernels work outside autograd). Hyperparameters
are plain numbers (or 0-d tensors); use torch's lr_schedulers rather than gradstep's
schedule callables.

Example:
    >>> import torch, gradstep.torch
    >>> model = torch.nn.Linear(3, 1)
    >>> opt = gradstep.torch.AdamW(model.parameters(), lr=1e-2)
    >>> loss = model(torch.ones(4, 3)).pow(2).mean()
    >>> loss.backward()
    >>> opt.step()
    >>> opt.state[model.weight]["step"]
    tensor(1.)
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any, Callable, ClassVar, Union

import numpy as np
import torch

import gradstep._optimizers as _gs
from gradstep import _core
from gradstep import _validation as _v

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

Params = Iterable[Any]
Number = Union[float, torch.Tensor]

_DTYPES = (torch.float32, torch.float64)
_INDEX = re.compile(r"\b(params|grads)\[(\d+)\]")


def _scalar_dtype() -> torch.dtype:
    """The dtype torch.optim gives its 0-d step (and mu_product) tensors."""
    return torch.float64 if torch.get_default_dtype() == torch.float64 else torch.float32


def _plain(value: Any, key: str, where: str) -> Any:
    """A hyperparameter with 0-d tensors (torch allows ``lr=torch.tensor(0.01)``) as floats."""
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise ValueError(
                f"{where}Invalid {key}: a tensor with {value.numel()} elements "
                "(expected a number or a one-element tensor)"
            )
        return float(value.item())
    if isinstance(value, tuple):
        return tuple(_plain(x, key, where) for x in value)
    return value


def _check_tensor(t: Any, what: str, *, param: bool) -> torch.Tensor:
    """`t` must be a dense CPU float32/float64 tensor (and C-contiguous, for a param)."""
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{what} must be a torch.Tensor, got {type(t).__name__}")
    if t.layout != torch.strided:
        raise TypeError(
            f"{what} has layout {t.layout}; gradstep.torch updates dense (strided) tensors "
            + ("only" if param else "only: sparse gradients are not supported (use a dense "
               "gradient, or torch.optim.SparseAdam)")
        )
    if t.device.type != "cpu":
        raise TypeError(
            f"{what} is on device '{t.device}'; gradstep.torch runs its C++ kernels on CPU "
            "tensors only (use torch.optim on other devices, or move the model to the CPU)"
        )
    if t.dtype not in _DTYPES:
        raise TypeError(
            f"{what} has dtype {t.dtype}; gradstep.torch updates torch.float32 and "
            "torch.float64 tensors in place and never converts them"
        )
    if not t.is_contiguous():
        hint = (
            "gradstep updates parameters in place and never works on a hidden copy; make "
            "the parameter itself contiguous (e.g. p.data = p.data.contiguous()) before "
            "building the optimizer"
            if param
            else "gradstep never copies; pass a contiguous gradient "
            "(e.g. p.grad = p.grad.contiguous())"
        )
        raise ValueError(
            f"{what} is not contiguous (shape {tuple(t.shape)}, strides {t.stride()}); {hint}"
        )
    return t


# (tensor, its data_ptr when viewed, the NumPy view)
_Cached = tuple[torch.Tensor, int, np.ndarray]


def _usable(t: torch.Tensor) -> bool:
    """The fast path of :func:`_check_tensor` (which is called for the message)."""
    return bool(t.is_cpu and t.layout == torch.strided and t.dtype in _DTYPES
                and t.is_contiguous())


def _scalar(value: Any, what: str, view: Callable[[torch.Tensor], np.ndarray]) -> float:
    """torch's 0-d step / mu_product state (or a number, in old state dicts) as a float."""
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        if value.is_cpu and value.layout == torch.strided and value.dtype in _DTYPES:
            return float(view(value).item())
        value = value.item()
    return _v.real(what, value)


def _count(value: Any, what: str, view: Callable[[torch.Tensor], np.ndarray]) -> int:
    """A step counter from torch's state: a whole number >= 0."""
    try:
        x = _scalar(value, what, view)
    except TypeError:
        x = float("nan")
    if not (x >= 0 and x.is_integer()):
        raise ValueError(f"{what} must be a whole number >= 0, got {value!r}")
    return int(x)


def _store(state: dict[str, Any], key: str, value: float, views: dict[int, _Cached]) -> None:
    """Write a counter/scalar back into torch's 0-d state tensor, in place."""
    t = state[key]
    cached = views.get(id(t))
    if cached is not None and cached[0] is t:
        cached[2][...] = value
    elif isinstance(t, torch.Tensor):
        t.fill_(value)
    else:
        state[key] = torch.tensor(float(value), dtype=_scalar_dtype())


_HOOKS: dict[type[_gs.Optimizer], _gs.Optimizer] = {}


class _Batch:
    """The params of one group and dtype that have a gradient this step."""

    __slots__ = ("grads", "names", "params", "scalars", "states", "steps", "tensors",
                 "torch_states")

    def __init__(self, n_states: int) -> None:
        self.names: list[str] = []
        self.tensors: list[torch.Tensor] = []
        self.params: list[np.ndarray] = []
        self.grads: list[np.ndarray] = []
        self.states: list[list[np.ndarray]] = [[] for _ in range(n_states)]
        self.steps: list[int] = []
        self.scalars: list[float] = []
        self.torch_states: list[dict[str, Any]] = []


class Optimizer(torch.optim.Optimizer):
    """Base class: a ``torch.optim.Optimizer`` whose ``step`` runs a gradstep kernel.

    A subclass names its gradstep counterpart in ``_spec``; the kernel family, state
    names, hyperparameter checks, the kernel configuration and the initial state all
    come from there (gradstep's ``_check``/``_config``/``_needs``/``_initial`` are
    functions of the resolved hyperparameters only, so they are called on a bare
    instance of the gradstep class).
    """

    _spec: ClassVar[type[_gs.Optimizer]]
    # Whether torch keeps state['step'] for this optimizer (not for SGD).
    _step_in_state: ClassVar[bool] = True

    @property
    def _hooks(self) -> _gs.Optimizer:
        # Not kept on the instance: torch's __getstate__ (pickle, deepcopy) keeps only
        # defaults, state and param_groups.
        return _HOOKS.get(self._spec) or _HOOKS.setdefault(self._spec, object.__new__(self._spec))

    # -- groups -------------------------------------------------------------------

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """torch's ``add_param_group``, then gradstep's checks of the new group's tensors
        and hyperparameters (on failure the group is not added)."""
        super().add_param_group(param_group)
        g = len(self.param_groups) - 1
        group = self.param_groups[g]
        try:
            for i, p in enumerate(group["params"]):
                _check_tensor(p, f"param_groups[{g}]['params'][{i}]", param=True)
            self._hyper(group, g)
            _v.check_distinct([
                (f"param_groups[{gi}]['params'][{i}]", p.detach().numpy())
                for gi, grp in enumerate(self.param_groups)
                for i, p in enumerate(grp["params"])
            ])
        except BaseException:
            self.param_groups.pop()
            raise

    def __setstate__(self, state: dict[str, Any]) -> None:
        # load_state_dict goes through here: fill keys an older or torch.optim state
        # dict lacks (e.g. SGD's l1) with this optimizer's defaults, as torch does.
        super().__setstate__(state)
        for group in self.param_groups:
            for key, value in self.defaults.items():
                group.setdefault(key, value)

    def _hyper(self, group: dict[str, Any], g: int) -> dict[str, Any]:
        """The group's hyperparameters as plain values, checked by gradstep."""
        where = f"param group {g}: " if len(self.param_groups) > 1 else ""
        h = {k: _plain(group.get(k, d), k, where) for k, d in self.defaults.items()}
        if h.get("differentiable"):
            raise ValueError(
                f"{where}Invalid differentiable: True (gradstep's kernels update tensors in "
                "place outside autograd; use torch.optim for differentiable optimizers)"
            )
        try:
            self._hooks._check(h)
        except (TypeError, ValueError) as exc:
            raise type(exc)(where + str(exc)) from None
        return h

    # -- the step -----------------------------------------------------------------

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """One update of every parameter that has a gradient; returns ``closure()``'s
        value (evaluated first, with grad enabled) when a closure is given.

        Everything is checked, and all new state prepared, before the first tensor is
        written: on error nothing has changed."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        with torch.no_grad():
            self._step()
        return loss

    def _step(self) -> None:
        spec = self._hooks
        names = spec._state_names
        prepare = getattr(_core, "prepare_" + spec._family)
        # NumPy views of the last step's params and state tensors, reused while the
        # tensor is the same object over the same memory (creating a view costs more
        # than the rest of the per-tensor work); rebuilt every step, so it never
        # outlives the tensors in use. Not part of the optimizer's pickled state.
        old: dict[int, _Cached] = self.__dict__.get("_views", {})
        views: dict[int, _Cached] = {}

        def view(t: torch.Tensor) -> np.ndarray:
            c = old.get(id(t))
            ptr = t.data_ptr()
            if c is not None and c[0] is t and c[1] == ptr and c[2].shape == t.shape:
                arr = c[2]
            else:
                arr = t.detach().numpy()
            views[id(t)] = (t, ptr, arr)
            return arr

        prepared = []
        created: list[tuple[dict[str, Any], str]] = []
        new_entries: list[tuple[torch.Tensor, dict[str, Any]]] = []
        try:
            for g, group in enumerate(self.param_groups):
                h = self._hyper(group, g)
                config = spec._config(h)
                needed = [spec._needs(name, h) for name in names]
                by_dtype: dict[torch.dtype, _Batch] = {}
                for i, p in enumerate(group["params"]):
                    grad = p.grad
                    if grad is None:
                        continue
                    pname = f"param_groups[{g}]['params'][{i}]"
                    if not (_usable(p) and _usable(grad)):
                        _check_tensor(p, pname, param=True)
                        _check_tensor(grad, pname + ".grad", param=False)
                    p_np = view(p)
                    batch = by_dtype.get(p.dtype)
                    if batch is None:
                        batch = by_dtype[p.dtype] = _Batch(len(names))
                    st = self.state.get(p)
                    if st is None:
                        st = {}
                        new_entries.append((p, st))
                    if not self._step_in_state:
                        # torch's SGD: the first step is the one that finds no buffer.
                        batch.steps.append(0 if st.get("momentum_buffer") is None else 1)
                    for k, name in enumerate(names):
                        if not needed[k]:
                            continue
                        t = st.get(name)
                        if t is None:
                            t = torch.from_numpy(spec._initial(name, p_np, h))
                            st[name] = t
                            created.append((st, name))
                        elif not (isinstance(t, torch.Tensor) and _usable(t)):
                            _check_tensor(t, f"state '{name}' of {pname}", param=False)
                        batch.states[k].append(view(t))
                    if self._step_in_state:
                        if "step" not in st:
                            st["step"] = torch.tensor(0.0, dtype=_scalar_dtype())
                            created.append((st, "step"))
                        batch.steps.append(_count(st["step"], f"state['step'] of {pname}", view))
                    if spec._has_scalar:
                        key = spec._scalar_name
                        if key not in st:
                            st[key] = torch.tensor(1.0, dtype=_scalar_dtype())
                            created.append((st, key))
                        batch.scalars.append(
                            _scalar(st[key], f"state['{key}'] of {pname}", view))
                    batch.names.append(pname)
                    batch.tensors.append(p)
                    batch.params.append(p_np)
                    batch.grads.append(grad.detach().numpy())
                    batch.torch_states.append(st)
                for batch in by_dtype.values():
                    steps = np.array(batch.steps, dtype=np.int64)
                    scalars = (
                        np.array(batch.scalars, dtype=np.float64) if spec._has_scalar else None
                    )
                    states = [
                        batch.states[k] if needed[k] else None for k in range(len(names))
                    ]
                    try:
                        call = prepare(batch.params, batch.grads, states, steps, scalars, config)
                    except (TypeError, ValueError) as exc:
                        raise type(exc)(_locate(str(exc), batch.names)) from None
                    prepared.append((call, batch, steps, scalars))
        except BaseException:
            for st, name in reversed(created):
                st.pop(name, None)
            raise
        # Checked: from here on nothing can fail. A parameter gets a state entry only
        # once it has something to keep (not SGD without momentum), as in torch.
        for p, st in new_entries:
            if st:
                self.state[p] = st
        for call, _, _, _ in prepared:
            call.run()
        for _, batch, steps, scalars in prepared:
            # The kernel wrote through raw pointers: tell autograd the params changed, as
            # an in-place torch op would (a graph that saved them then refuses to run).
            torch.autograd.graph.increment_version(batch.tensors)
            if self._step_in_state:
                for st, n in zip(batch.torch_states, steps.tolist()):
                    _store(st, "step", n, views)
            if scalars is not None:
                key = spec._scalar_name
                for st, x in zip(batch.torch_states, scalars.tolist()):
                    _store(st, key, x, views)
        self.__dict__["_views"] = views


def _locate(message: str, names: list[str]) -> str:
    """Rewrite the kernel binding's batch-relative ``params[j]``/``grads[j]`` as names."""

    def sub(m: re.Match[str]) -> str:
        j = int(m.group(2))
        if j >= len(names):
            return m.group(0)
        return names[j] + (".grad" if m.group(1) == "grads" else "")

    return _INDEX.sub(sub, message)


class SGD(Optimizer):
    __doc__ = (
        "``torch.optim.SGD`` running gradstep's kernel (see :class:`gradstep.SGD`).\n\n"
        "Extras as in gradstep: ``l1`` (L1 penalty added to the gradient) and "
        "``decoupled_weight_decay`` (SGDW).\n"
    )
    _spec = _gs.SGD
    _step_in_state = False

    def __init__(self, params: Params, lr: Number = 1e-3, momentum: float = 0,
                 dampening: float = 0, weight_decay: Number = 0, nesterov: bool = False, *,
                 maximize: bool = False, foreach: bool | None = None,
                 differentiable: bool = False, fused: bool | None = None,
                 l1: float = 0.0, decoupled_weight_decay: bool = False) -> None:
        super().__init__(params, dict(
            lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
            nesterov=nesterov, maximize=maximize, foreach=foreach,
            differentiable=differentiable, fused=fused, l1=l1,
            decoupled_weight_decay=decoupled_weight_decay))


class Adagrad(Optimizer):
    """``torch.optim.Adagrad`` running gradstep's kernel (see :class:`gradstep.Adagrad`).
    As torch does, the state (``step``, ``sum``) is created for every parameter at
    construction."""

    _spec = _gs.Adagrad

    def __init__(self, params: Params, lr: Number = 1e-2, lr_decay: float = 0,
                 weight_decay: float = 0, initial_accumulator_value: float = 0,
                 eps: float = 1e-10, foreach: bool | None = None, *,
                 maximize: bool = False, differentiable: bool = False,
                 fused: bool | None = None) -> None:
        super().__init__(params, dict(
            lr=lr, lr_decay=lr_decay, eps=eps, weight_decay=weight_decay,
            initial_accumulator_value=initial_accumulator_value, foreach=foreach,
            maximize=maximize, differentiable=differentiable, fused=fused))
        for g, group in enumerate(self.param_groups):
            h = self._hyper(group, g)
            for p in group["params"]:
                state = self.state[p]
                state["step"] = torch.tensor(0.0, dtype=_scalar_dtype())
                state["sum"] = torch.from_numpy(
                    self._hooks._initial("sum", p.detach().numpy(), h))


class Adadelta(Optimizer):
    """``torch.optim.Adadelta`` running gradstep's kernel (see :class:`gradstep.Adadelta`)."""

    _spec = _gs.Adadelta

    def __init__(self, params: Params, lr: Number = 1.0, rho: float = 0.9,
                 eps: float = 1e-6, weight_decay: float = 0,
                 foreach: bool | None = None, *, capturable: bool = False,
                 maximize: bool = False, differentiable: bool = False) -> None:
        super().__init__(params, dict(
            lr=lr, rho=rho, eps=eps, weight_decay=weight_decay, maximize=maximize,
            capturable=capturable, foreach=foreach, differentiable=differentiable))


class RMSprop(Optimizer):
    """``torch.optim.RMSprop`` running gradstep's kernel (see :class:`gradstep.RMSprop`)."""

    _spec = _gs.RMSprop

    def __init__(self, params: Params, lr: Number = 1e-2, alpha: float = 0.99,
                 eps: float = 1e-8, weight_decay: float = 0, momentum: float = 0,
                 centered: bool = False, capturable: bool = False,
                 foreach: bool | None = None, maximize: bool = False,
                 differentiable: bool = False) -> None:
        super().__init__(params, dict(
            lr=lr, momentum=momentum, alpha=alpha, eps=eps, centered=centered,
            weight_decay=weight_decay, capturable=capturable, foreach=foreach,
            maximize=maximize, differentiable=differentiable))


class Rprop(Optimizer):
    """``torch.optim.Rprop`` running gradstep's kernel (see :class:`gradstep.Rprop`)."""

    _spec = _gs.Rprop

    def __init__(self, params: Params, lr: Number = 1e-2,
                 etas: tuple[float, float] = (0.5, 1.2),
                 step_sizes: tuple[float, float] = (1e-6, 50), *,
                 capturable: bool = False, foreach: bool | None = None,
                 maximize: bool = False, differentiable: bool = False) -> None:
        super().__init__(params, dict(
            lr=lr, etas=etas, step_sizes=step_sizes, foreach=foreach, maximize=maximize,
            differentiable=differentiable, capturable=capturable))


class Adam(Optimizer):
    """``torch.optim.Adam`` running gradstep's kernel (see :class:`gradstep.Adam`)."""

    _spec = _gs.Adam

    def __init__(self, params: Params, lr: Number = 1e-3,
                 betas: tuple[Number, Number] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0, amsgrad: bool = False, *,
                 foreach: bool | None = None, maximize: bool = False,
                 capturable: bool = False, differentiable: bool = False,
                 fused: bool | None = None, decoupled_weight_decay: bool = False) -> None:
        super().__init__(params, dict(
            lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
            maximize=maximize, foreach=foreach, capturable=capturable,
            differentiable=differentiable, fused=fused,
            decoupled_weight_decay=decoupled_weight_decay))


class AdamW(Adam):
    """``torch.optim.AdamW`` running gradstep's kernel (see :class:`gradstep.AdamW`)."""

    def __init__(self, params: Params, lr: Number = 1e-3,
                 betas: tuple[Number, Number] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2, amsgrad: bool = False, *,
                 maximize: bool = False, foreach: bool | None = None,
                 capturable: bool = False, differentiable: bool = False,
                 fused: bool | None = None) -> None:
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                         amsgrad=amsgrad, foreach=foreach, maximize=maximize,
                         capturable=capturable, differentiable=differentiable, fused=fused,
                         decoupled_weight_decay=True)


class Adamax(Optimizer):
    """``torch.optim.Adamax`` running gradstep's kernel (see :class:`gradstep.Adamax`)."""

    _spec = _gs.Adamax

    def __init__(self, params: Params, lr: Number = 2e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0, foreach: bool | None = None, *,
                 maximize: bool = False, differentiable: bool = False,
                 capturable: bool = False) -> None:
        super().__init__(params, dict(
            lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, foreach=foreach,
            maximize=maximize, differentiable=differentiable, capturable=capturable))


class NAdam(Optimizer):
    """``torch.optim.NAdam`` running gradstep's kernel (see :class:`gradstep.NAdam`)."""

    _spec = _gs.NAdam

    def __init__(self, params: Params, lr: Number = 2e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0, momentum_decay: float = 4e-3,
                 decoupled_weight_decay: bool = False, *, foreach: bool | None = None,
                 maximize: bool = False, capturable: bool = False,
                 differentiable: bool = False) -> None:
        super().__init__(params, dict(
            lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
            momentum_decay=momentum_decay, decoupled_weight_decay=decoupled_weight_decay,
            maximize=maximize, foreach=foreach, capturable=capturable,
            differentiable=differentiable))


class RAdam(Optimizer):
    """``torch.optim.RAdam`` running gradstep's kernel (see :class:`gradstep.RAdam`)."""

    _spec = _gs.RAdam

    def __init__(self, params: Params, lr: Number = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0, decoupled_weight_decay: bool = False, *,
                 foreach: bool | None = None, maximize: bool = False,
                 capturable: bool = False, differentiable: bool = False) -> None:
        super().__init__(params, dict(
            lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, maximize=maximize,
            foreach=foreach, capturable=capturable,
            decoupled_weight_decay=decoupled_weight_decay, differentiable=differentiable))
