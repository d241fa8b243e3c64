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
Here the step tensors of the params one kernel call updates are the 0-d elements of one
1-d float tensor (still one independent 0-d tensor per param, in the state, as torch
keeps them), so that all counts are read into the kernel's int64 array, and the advanced
counts written back, in one NumPy operation. A step tensor that is not such an element
(loaded by ``load_state_dict``, replaced by the user) has its value copied into a new
1-d tensor (of the dtype the step tensors it replaces share, else torch's default) and
one of its elements put in its place in the state. NAdam's
``mu_product`` is kept the same way. ``SGD`` has no step in torch's state: the kernel
only needs to know whether the momentum buffer exists yet, which is exactly torch's
rule (first step: buffer = grad).

What is reused between steps: per param group, the NumPy views of the params, grads
and state tensors, the step tensors and the checked hyperparameters, as long as every
tensor is the object the last step saw over the same memory (``data_ptr``, and for a
param, still contiguous), every state dict and state entry is the same object, the
same params have a gradient and no hyperparameter was replaced. Anything else
(``load_state_dict``, a replaced state tensor or dict, ``p.data = ...``, a new group,
a grad that appears or disappears) rebuilds that group's views with the full checks;
in-place edits (``state['step'].fill_(0)``, a 0-d tensor ``lr`` filled by a scheduler)
are seen through the shared memory or checked every step. Gradients that are new
tensors every step (``zero_grad()`` sets them to None) cost a ``.numpy()`` view each
step; ``zero_grad(set_to_none=False)`` keeps them, and their views.

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

import operator
import re
import weakref
from collections.abc import Iterable, Sequence
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


def _usable(t: torch.Tensor) -> bool:
    """The fast path of :func:`_check_tensor` (which is called for the message)."""
    return bool(t.is_cpu and t.layout == torch.strided and t.dtype in _DTYPES
                and t.is_contiguous())


def _scalar(value: Any, what: str) -> float:
    """torch's 0-d step / mu_product state (or a number, in old state dicts) as a float."""
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.item()
    return _v.real(what, value)


def _count(value: Any, what: str) -> int:
    """A step counter from torch's state: a whole number >= 0."""
    try:
        x = _scalar(value, what)
    except TypeError:
        x = float("nan")
    if not (x >= 0 and x.is_integer()):
        raise ValueError(f"{what} must be a whole number >= 0, got {value!r}")
    return int(x)


_IMMUTABLE = frozenset({float, int, bool, str, type(None), np.float64, np.float32, np.int64})


def _cacheable(values: list[Any]) -> bool:
    """Whether hyperparameter values can only change by being replaced (not a 0-d
    tensor, which lr_schedulers fill in place, nor a list)."""
    for x in values:
        t = type(x)
        if t not in _IMMUTABLE and not (t is tuple and all(type(y) in _IMMUTABLE for y in x)):
            return False
    return True


def _counter_buffer(objs: list[Any], values: Sequence[float]) -> tuple[torch.Tensor, bool]:
    """The 1-d tensor whose elements back a batch's 0-d counters (``step`` or
    ``mu_product``), and whether it is adopted (``objs`` are already exactly its
    elements, in order) rather than new (``values`` copied into it; the caller then
    puts its elements into the state in place of ``objs``)."""
    first = objs[0]
    base = first._base if isinstance(first, torch.Tensor) else None
    if (base is not None and base.dim() == 1 and base.numel() == len(objs)
            and base.dtype in _DTYPES and base.is_cpu and base.layout == torch.strided
            and base.is_contiguous() and not base.requires_grad):
        start = base.storage_offset()
        if all(isinstance(t, torch.Tensor) and t._base is base and t.dim() == 0
               and t.storage_offset() == start + j for j, t in enumerate(objs)):
            return base, True
    dtypes = {t.dtype if isinstance(t, torch.Tensor) else None for t in objs}
    dtype = dtypes.pop() if len(dtypes) == 1 else None
    if dtype not in _DTYPES:
        dtype = _scalar_dtype()
    return torch.tensor(values, dtype=dtype), False


_TENSOR_NUMPY = torch.Tensor.numpy
_DATA_PTR = torch.Tensor.data_ptr
_IS_CONTIGUOUS = torch.Tensor.is_contiguous
_TWO_53 = float(2**53)


_HOOKS: dict[type[_gs.Optimizer], _gs.Optimizer] = {}


class _Batch:
    """The params of one group and dtype that have a gradient: the arguments of their
    kernel call, kept from step to step and reused while every tensor in them is the
    object seen before, over the same memory (see :meth:`Optimizer._fast`)."""

    __slots__ = ("counter_checks", "grad_objs", "grad_ptrs", "grad_refs", "grad_views",
                 "keep_grads", "p_ptrs", "p_views", "positions", "scalar_buf", "scalar_np",
                 "scalar_objs", "scalars", "st_dicts", "state_checks", "state_objs",
                 "state_ptrs", "states", "step_buf", "step_bytes", "step_np", "step_objs",
                 "steps", "tensors", "whole")

    def __init__(self, n_states: int) -> None:
        self.positions: list[int] = []  # indices into group['params']
        self.whole = False  # the batch is the whole group, in order
        self.tensors: list[torch.Tensor] = []
        self.p_views: list[np.ndarray] = []
        self.p_ptrs: list[int] = []
        self.grad_objs: list[torch.Tensor] = []
        self.grad_views: list[np.ndarray] = []
        self.grad_ptrs: list[int] = []
        # Grads (and their views, which hold them) are kept past the step only when
        # they were this step's grads already last step (zero_grad(set_to_none=False)):
        # otherwise keeping them would hold a whole set of gradients in memory that
        # torch frees at zero_grad(). Weak references tell which case it is.
        self.keep_grads = False
        self.grad_refs: list[weakref.ref[torch.Tensor]] | None = None
        # self.state.get(p) as last seen (None: no entry, and none is made)
        self.st_dicts: list[dict[str, Any] | None] = []
        # per state name: the tensors, their views and data_ptrs; None when not needed
        self.state_objs: list[list[torch.Tensor] | None] = [None] * n_states
        self.states: list[list[np.ndarray] | None] = [None] * n_states
        self.state_ptrs: list[list[int]] = [[] for _ in range(n_states)]
        # step counts for the kernel (int64); for torch's state['step'], the 1-d float
        # tensor whose 0-d elements are the step tensors in the state, and its view
        self.steps = np.zeros(0, dtype=np.int64)
        self.step_buf: torch.Tensor | None = None
        self.step_np: np.ndarray | None = None
        self.step_objs: list[torch.Tensor] | None = None
        self.step_bytes = b""  # step_np's bytes when last written: unchanged since?
        # NAdam's mu_product, kept the same way (the kernel works on a float64 array)
        self.scalars: np.ndarray | None = None
        self.scalar_buf: torch.Tensor | None = None
        self.scalar_np: np.ndarray | None = None
        self.scalar_objs: list[torch.Tensor] | None = None
        # what _fast compares: (getter, tensors, data_ptrs) per state buffer used and
        # (getter, 0-d tensors) per counter
        self.state_checks: list[tuple[Callable[[Any], Any], list[torch.Tensor],
                                      list[int]]] = []
        self.counter_checks: list[tuple[Callable[[Any], Any], list[torch.Tensor]]] = []

    def names(self, g: int) -> list[str]:
        return [f"param_groups[{g}]['params'][{i}]" for i in self.positions]

    def cached_views(self) -> dict[int, tuple[torch.Tensor, int, np.ndarray]]:
        """id -> (tensor, data_ptr, view) of every tensor this batch has a view of."""
        out = {}
        groups = [(self.tensors, self.p_ptrs, self.p_views),
                  (self.grad_objs, self.grad_ptrs, self.grad_views)]
        for k, objs in enumerate(self.state_objs):
            views = self.states[k]
            if objs is not None and views is not None:
                groups.append((objs, self.state_ptrs[k], views))
        for objs, ptrs, views in groups:
            for t, ptr, arr in zip(objs, ptrs, views):
                out[id(t)] = (t, ptr, arr)
        return out


class _Plan:
    """One param group's batches and resolved hyperparameters, as of the last step."""

    __slots__ = ("batches", "config", "group", "h", "mask", "needed", "nones", "params",
                 "raw")

    def __init__(self, group: dict[str, Any], params: list[torch.Tensor], mask: list[bool],
                 batches: list[_Batch]) -> None:
        self.group = group
        self.params = list(params)
        self.mask = mask  # which params had a gradient
        self.nones: list[None] = [None] * len(params)
        self.batches = batches
        # the group's raw hyperparameter values (None: not cacheable) and what they gave
        self.raw: list[Any] | None = None
        self.h: dict[str, Any] = {}
        self.config: Any = None
        self.needed: tuple[bool, ...] = ()


class Optimizer(torch.optim.Optimizer):
    """Base class: a ``torch.optim.Optimizer`` whose ``step`` runs a gradstep kernel.

    A subclass names its gradstep counterpart in ``_spec``; the kernel family, state
    names, hyperparameter checks, the kernel configuration and the initial state all
    come from there (gradstep's ``_check``/``_config``/``_needs``/``_initial`` are
    functions of the resolved hyperparameters only, so they are called on a bare
    instance of the gradstep class).

    Per param group the last step's kernel arguments are kept (a :class:`_Plan`) and
    reused after a few identity checks per tensor (:meth:`_fast`); any change rebuilds
    them with the full checks (:meth:`_build`). The plans are not part of the pickled
    state and are dropped by ``load_state_dict``.
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
        # New state and group dicts: the plans of the old ones would never match again.
        self.__dict__.pop("_plans", None)
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
        prepare = getattr(_core, "prepare_" + spec._family)
        old: dict[int, _Plan] = self.__dict__.get("_plans") or {}
        plans: dict[int, _Plan] = {}
        calls: list[Any] = []
        # What the step adds to the state, applied once every group is checked and
        # prepared (so that on error nothing has changed).
        pending: list[tuple[dict[str, Any], str, Any]] = []
        new_entries: list[tuple[torch.Tensor, dict[str, Any]]] = []
        for g, group in enumerate(self.param_groups):
            plan = old.get(id(group))
            if plan is not None and plan.group is not group:
                plan = None
            # Hyperparameters are checked again only when one was replaced (lr_schedulers
            # assign new numbers); a group holding a value that can change in place (a
            # 0-d tensor, which schedulers fill, or a list) is checked every step.
            raw = [group.get(k, d) for k, d in self.defaults.items()]
            if (plan is not None and plan.raw is not None and len(raw) == len(plan.raw)
                    and all(map(operator.is_, raw, plan.raw))):
                h, config, needed = plan.h, plan.config, plan.needed
            else:
                h = self._hyper(group, g)
                config = spec._config(h)
                needed = tuple(spec._needs(name, h) for name in spec._state_names)
                if plan is not None:
                    plan.raw = None
            params = group["params"]
            grads = [p.grad for p in params]
            group_calls = None
            if plan is not None and plan.needed == needed:
                group_calls = self._fast(plan, params, grads, config, prepare)
            if plan is None or group_calls is None:
                plan = self._build(g, group, params, grads, h, needed, plan, pending,
                                   new_entries)
                group_calls = [_prepare(g, b, config, prepare) for b in plan.batches]
            if plan.raw is None:
                plan.raw = raw if _cacheable(raw) else None
                plan.h, plan.config, plan.needed = h, config, needed
            plans[id(group)] = plan
            calls.extend(group_calls)
        # Checked: from here on nothing can fail.
        for st, key, value in pending:
            st[key] = value
        for p, st in new_entries:
            self.state[p] = st
        for call in calls:
            call.run()
        updated: list[torch.Tensor] = []
        for plan in plans.values():
            for b in plan.batches:
                updated += b.tensors
                if b.keep_grads:
                    b.grad_refs = None
                else:
                    b.grad_refs = list(map(weakref.ref, b.grad_objs))
                    b.grad_objs, b.grad_views = [], []
                if b.step_np is not None:
                    b.step_np[...] = b.steps
                    # as stored (a float32 count above 2**24 rounds, as torch's does)
                    b.steps[...] = b.step_np
                    b.step_bytes = b.step_np.tobytes()
                if b.scalar_np is not None and b.scalars is not None and (
                        b.scalars is not b.scalar_np):
                    b.scalar_np[...] = b.scalars
        # The kernels wrote through raw pointers: tell autograd the params changed, as
        # an in-place torch op would (a graph that saved them then refuses to run).
        torch.autograd.graph.increment_version(updated)
        # Not part of the pickled state: torch's __getstate__ keeps only defaults,
        # state and param_groups.
        self.__dict__["_plans"] = plans

    def _fast(self, plan: _Plan, params: list[torch.Tensor], grads: list[Any], config: Any,
              prepare: Callable[..., Any]) -> list[Any] | None:
        """The group's kernel calls when every tensor in its plan is still the object
        the plan saw, over the same memory, and every step count is valid; None when
        anything changed (the caller then rebuilds the plan, with named errors).

        Per tensor this costs a few attribute reads and identity tests, done a list at
        a time; step counts are read and validated in one NumPy operation per batch."""
        is_ = operator.is_
        if (len(params) != len(plan.params) or not all(map(is_, params, plan.params))
                or list(map(operator.is_not, grads, plan.nones)) != plan.mask):
            return None
        state_get = self.state.get
        calls = []
        try:
            for b in plan.batches:
                ts = b.tensors
                # p.data = ... keeps the object: compare the memory too
                if list(map(_DATA_PTR, ts)) != b.p_ptrs or not all(map(_IS_CONTIGUOUS, ts)):
                    return None
                sts: list[Any] = list(map(state_get, ts))
                if not all(map(is_, sts, b.st_dicts)):
                    return None
                for get, objs, ptrs in b.state_checks:
                    now = list(map(get, sts))
                    if not all(map(is_, now, objs)) or list(map(_DATA_PTR, now)) != ptrs:
                        return None
                for get, objs in b.counter_checks:
                    if not all(map(is_, map(get, sts), objs)):
                        return None
                gs = grads if b.whole else [grads[j] for j in b.positions]
                if not (b.grad_objs and all(map(is_, gs, b.grad_objs))
                        and list(map(_DATA_PTR, gs)) == b.grad_ptrs):
                    refs = b.grad_refs
                    b.keep_grads = refs is not None and all(
                        r() is t for r, t in zip(refs, gs))
                    try:
                        views = list(map(_TENSOR_NUMPY, gs))
                    except RuntimeError:  # a grad that requires grad (create_graph=True)
                        views = [t.detach().numpy() for t in gs]
                    b.grad_objs, b.grad_views = gs, views
                    b.grad_ptrs = list(map(_DATA_PTR, gs))
                if b.step_np is not None and b.step_np.tobytes() != b.step_bytes:
                    # edited in place since the last step (tensor.fill_(...)): check
                    m = b.step_np
                    if not (m.min() >= 0 and m.max() < _TWO_53):
                        return None
                    np.copyto(b.steps, m, casting="unsafe")
                    if not np.array_equal(b.steps, m):
                        return None
                if b.scalar_np is not None and b.scalars is not None and (
                        b.scalars is not b.scalar_np):
                    np.copyto(b.scalars, b.scalar_np)
                calls.append(prepare(b.p_views, b.grad_views, b.states, b.steps, b.scalars,
                                     config))
        except (KeyError, TypeError, ValueError, RuntimeError):
            return None
        return calls

    def _build(self, g: int, group: dict[str, Any], params: list[torch.Tensor],
               grads: list[Any], h: dict[str, Any], needed: tuple[bool, ...],
               old: _Plan | None, pending: list[tuple[dict[str, Any], str, Any]],
               new_entries: list[tuple[torch.Tensor, dict[str, Any]]]) -> _Plan:
        """Check every param of group `g` that has a gradient, with its gradient and
        state (named errors), and make the group's plan. State the step creates, and
        step tensors put in place of ones that are not elements of the plan's
        buffers, go to `pending`/`new_entries`: nothing is changed here."""
        spec = self._hooks
        names = spec._state_names
        key = spec._scalar_name
        reuse: dict[int, tuple[torch.Tensor, int, np.ndarray]] = {}
        if old is not None:
            for ob in old.batches:
                reuse.update(ob.cached_views())

        def view(t: torch.Tensor) -> np.ndarray:
            # creating a view costs more than the rest of the per-tensor work
            c = reuse.get(id(t))
            if c is not None and c[0] is t and c[1] == t.data_ptr() and c[2].shape == t.shape:
                return c[2]
            return t.detach().numpy()

        # A parameter gets a state entry only once it has something to keep (not SGD
        # without momentum), as in torch.
        keeps = self._step_in_state or spec._has_scalar or any(needed)
        by_dtype: dict[torch.dtype, _Batch] = {}
        # per batch: the state dicts, the old step / scalar objects and their values
        extra: dict[int, tuple[list[dict[str, Any]], list[Any], list[int], list[Any],
                               list[float]]] = {}
        for i, (p, grad) in enumerate(zip(params, grads)):
            if grad is None:
                continue
            pname = f"param_groups[{g}]['params'][{i}]"
            if not (_usable(p) and _usable(grad)):
                _check_tensor(p, pname, param=True)
                _check_tensor(grad, pname + ".grad", param=False)
            p_np = view(p)
            b = by_dtype.get(p.dtype)
            if b is None:
                b = by_dtype[p.dtype] = _Batch(len(names))
                for k in range(len(names)):
                    if needed[k]:
                        b.state_objs[k], b.states[k] = [], []
                extra[id(b)] = ([], [], [], [], [])
            sts, step_objs, counts, scalar_objs, scalar_vals = extra[id(b)]
            st = self.state.get(p)
            if st is not None:
                b.st_dicts.append(st)
            else:
                st = {}
                b.st_dicts.append(st if keeps else None)
                if keeps:
                    new_entries.append((p, st))
            sts.append(st)
            if not self._step_in_state:
                # torch's SGD: the first step is the one that finds no buffer.
                counts.append(0 if st.get("momentum_buffer") is None else 1)
            for k, name in enumerate(names):
                if not needed[k]:
                    continue
                t = st.get(name)
                if t is None:
                    t = torch.from_numpy(spec._initial(name, p_np, h))
                    pending.append((st, name, t))
                elif not (isinstance(t, torch.Tensor) and _usable(t)):
                    _check_tensor(t, f"state '{name}' of {pname}", param=False)
                b.state_objs[k].append(t)  # type: ignore[union-attr]
                b.states[k].append(view(t))  # type: ignore[union-attr]
            if self._step_in_state:
                t = st.get("step")
                counts.append(0 if "step" not in st
                              else _count(t, f"state['step'] of {pname}"))
                step_objs.append(t)
            if spec._has_scalar:
                t = st.get(key)
                scalar_vals.append(1.0 if key not in st
                                   else _scalar(t, f"state['{key}'] of {pname}"))
                scalar_objs.append(t)
            b.positions.append(i)
            b.tensors.append(p)
            b.p_views.append(p_np)
            b.grad_objs.append(grad)
            b.grad_views.append(view(grad))
        batches = list(by_dtype.values())
        for b in batches:
            sts, step_objs, counts, scalar_objs, scalar_vals = extra[id(b)]
            b.whole = len(batches) == 1 and len(b.positions) == len(params)
            b.p_ptrs = list(map(_DATA_PTR, b.tensors))
            b.grad_ptrs = list(map(_DATA_PTR, b.grad_objs))
            for k, objs in enumerate(b.state_objs):
                if objs is not None:
                    b.state_ptrs[k] = list(map(_DATA_PTR, objs))
            b.steps = np.array(counts, dtype=np.int64)
            if self._step_in_state:
                buf, adopted = _counter_buffer(step_objs, counts)
                b.step_buf, b.step_np = buf, buf.detach().numpy()
                b.step_objs = step_objs if adopted else list(buf.unbind())
                if not adopted:
                    pending.extend((st, "step", t) for st, t in zip(sts, b.step_objs))
            if spec._has_scalar:
                buf, adopted = _counter_buffer(scalar_objs, scalar_vals)
                b.scalar_buf, b.scalar_np = buf, buf.detach().numpy()
                b.scalar_objs = scalar_objs if adopted else list(buf.unbind())
                if not adopted:
                    pending.extend((st, key, t) for st, t in zip(sts, b.scalar_objs))
                b.scalars = (b.scalar_np if b.scalar_np.dtype == np.float64
                             else np.array(scalar_vals, dtype=np.float64))
            b.state_checks = [(operator.itemgetter(names[k]), objs, b.state_ptrs[k])
                              for k, objs in enumerate(b.state_objs) if objs is not None]
            b.counter_checks = [(operator.itemgetter(name), objs) for name, objs in
                                (("step", b.step_objs), (key, b.scalar_objs))
                                if objs is not None]
        mask = list(map(operator.is_not, grads, [None] * len(grads)))
        return _Plan(group, params, mask, batches)


def _prepare(g: int, b: _Batch, config: Any, prepare: Callable[..., Any]) -> Any:
    """The kernel call for a batch just built; its errors name the params."""
    try:
        return prepare(b.p_views, b.grad_views, b.states, b.steps, b.scalars, config)
    except (TypeError, ValueError) as exc:
        raise type(exc)(_locate(str(exc), b.names(g))) from None


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
            by_dtype: dict[torch.dtype, list[torch.Tensor]] = {}
            for p in group["params"]:
                by_dtype.setdefault(p.dtype, []).append(p)
            for ps in by_dtype.values():
                # the elements of one tensor, as the first step would lay them out
                steps = torch.zeros(len(ps), dtype=_scalar_dtype()).unbind()
                for p, step in zip(ps, steps):
                    state = self.state[p]
                    state["step"] = step
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
