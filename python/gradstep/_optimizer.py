"""The optimizer base class: parameter groups, state, checks and the multi-tensor step."""

from __future__ import annotations

import copy
import operator
import re
from collections.abc import Iterable, Sequence
from typing import Any, ClassVar

import numpy as np

from . import _core
from . import _validation as v

__all__ = ["Optimizer"]


class _Record:
    """The state of one parameter. While the parameter is part of a built plan its
    step counter lives in that plan's int64 array (the kernels advance it)."""

    __slots__ = ("arrays", "loc", "scalar", "step")

    def __init__(self) -> None:
        self.arrays: dict[str, np.ndarray] = {}
        self.step = 0
        self.scalar = 1.0
        self.loc: tuple[_Batch, int] | None = None

    def current_step(self) -> int:
        if self.loc is not None:
            return int(self.loc[0].steps[self.loc[1]])
        return self.step

    def current_scalar(self) -> float:
        if self.loc is not None and self.loc[0].scalars is not None:
            return float(self.loc[0].scalars[self.loc[1]])
        return self.scalar

    def detach(self) -> None:
        self.step = self.current_step()
        self.scalar = self.current_scalar()
        self.loc = None


class _Batch:
    """The parameters of one group that share a dtype: one C++ call per step."""

    __slots__ = ("params", "positions", "records", "scalars", "states", "steps")

    def __init__(self, positions: list[int], params: list[np.ndarray], records: list[_Record],
                 n_states: int, with_scalars: bool) -> None:
        self.positions = positions
        self.params = params
        self.records = records
        self.states: list[list[np.ndarray] | None] = [None] * n_states
        self.steps = np.array([r.current_step() for r in records], dtype=np.int64)
        self.scalars = (
            np.array([r.current_scalar() for r in records], dtype=np.float64)
            if with_scalars
            else None
        )
        for j, r in enumerate(records):
            r.loc = (self, j)


class _Plan:
    __slots__ = ("batches", "homogeneous", "params", "source")

    def __init__(self, source: list[Any], batches: list[_Batch]) -> None:
        self.source = source
        self.params = list(source)
        self.batches = batches
        self.homogeneous = len(batches) <= 1

    def matches(self, params: list[Any]) -> bool:
        return (
            params is self.source
            and len(params) == len(self.params)
            and all(map(operator.is_, params, self.params))
        )


_MISSING = object()

_INDEX = re.compile(r"\b(params|grads)\[(\d+)\]")


class Optimizer:
    """Base class of gradstep's first-order optimizers.

    Holds ``param_groups`` (a list of dicts, editable between steps), the per-parameter
    state and the step counter, and runs one C++ call per parameter group and dtype in
    :meth:`step`. Subclasses declare their kernel family, state buffers, checks and the
    mapping of hyperparameters to the kernel's configuration.

    ``state`` and ``state_dict()`` index parameters by their position across all groups
    (0, 1, ... in group order), as ``torch.optim`` does in its state dicts.
    """

    _family: ClassVar[str]
    _state_names: ClassVar[tuple[str, ...]]
    _has_scalar: ClassVar[bool] = False  # NAdam's mu_product
    _scalar_name: ClassVar[str] = ""
    # Hyperparameters that may be given as a schedule (callable step -> value).
    _schedulable: ClassVar[frozenset[str]] = frozenset({"lr", "momentum", "weight_decay", "betas"})

    def __init__(self, params: Iterable[Any], defaults: dict[str, Any], *,
                 skip_nonfinite: bool = False) -> None:
        self.defaults = dict(defaults)
        #: When True, a step whose gradients hold any NaN or Inf is skipped whole:
        #: parameters, state, the step count and schedules stay as they were.
        self.skip_nonfinite = v.flag("skip_nonfinite", skip_nonfinite)
        #: How many steps the non-finite guard has skipped.
        self.skipped_steps = 0
        self.param_groups: list[dict[str, Any]] = []
        self._records: dict[int, _Record] = {}
        self._plans: list[_Plan | None] = []
        # Per group: the last resolved hyperparameters and the kernel config built
        # from them, so an unchanged group costs one dict comparison per step.
        self._configs: list[tuple[dict[str, Any], Any] | None] = []
        self._step_count = 0
        if isinstance(params, np.ndarray):
            raise TypeError(
                "params must be a list of arrays or of param-group dicts, got a single "
                "numpy.ndarray; wrap it in a list: [array]"
            )
        if isinstance(params, dict):
            raise TypeError("params must be a list of param-group dicts, got a single dict")
        groups = list(params)
        if not groups:
            raise ValueError("params is empty: the optimizer got no parameters to update")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    # -- subclass interface -------------------------------------------------------

    def _check(self, h: dict[str, Any]) -> None:
        """Raise TypeError/ValueError for out-of-range resolved hyperparameters."""
        raise NotImplementedError

    def _config(self, h: dict[str, Any]) -> Any:
        """The _core config object for resolved hyperparameters `h`."""
        raise NotImplementedError

    def _needs(self, name: str, h: dict[str, Any]) -> bool:
        """Whether state buffer `name` is used with hyperparameters `h`."""
        return True

    def _initial(self, name: str, p: np.ndarray, h: dict[str, Any]) -> np.ndarray:
        """A new state buffer for parameter `p`."""
        return np.zeros_like(p)

    # -- parameter groups ---------------------------------------------------------

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group of parameters with its own hyperparameters (missing ones take
        the optimizer's defaults). Raises before changing anything on bad input."""
        if not isinstance(param_group, dict):
            raise TypeError(f"a param group must be a dict, got {type(param_group).__name__}")
        if "params" not in param_group:
            raise ValueError("a param group needs a 'params' entry (a list of arrays)")
        params = param_group["params"]
        if isinstance(params, np.ndarray):
            params = [params]
        elif isinstance(params, (set, frozenset)):
            raise TypeError("a param group's 'params' must be an ordered list, got a set")
        else:
            params = list(params)
        g = len(self.param_groups)
        if not params:
            raise ValueError(f"param group {g} has no parameters")
        unknown = set(param_group) - set(self.defaults) - {"params"}
        if unknown:
            raise ValueError(
                f"param group {g} has unknown hyperparameters {sorted(unknown)}; "
                f"{type(self).__name__} takes {sorted(self.defaults)}"
            )
        group = {**copy.copy(self.defaults), **param_group, "params": params}
        self._check_params([*(grp["params"] for grp in self.param_groups), params])
        self._checked(group, self._step_count, g)
        self.param_groups.append(group)
        self._plans.append(None)
        self._configs.append(None)

    @staticmethod
    def _check_params(groups: list[list[Any]]) -> None:
        """Every parameter of `groups` (lists of params, in group order) is a usable
        array, and no two share memory."""
        named = [(f"param_groups[{g}]['params'][{i}]", p)
                 for g, params in enumerate(groups) for i, p in enumerate(params)]
        for name, p in named:
            v.check_param(name, p)
        v.check_distinct(named)

    def _checked(self, group: dict[str, Any], step: int, g: int) -> dict[str, Any]:
        """The group's hyperparameters resolved at `step` and checked."""
        h = {}
        for key, value in group.items():
            if key == "params":
                continue
            if v.is_scheduled(value):
                if key not in self._schedulable:
                    raise TypeError(
                        f"param group {g}: {key} cannot be a schedule (only "
                        f"{sorted(self._schedulable & set(self.defaults))} can)"
                    )
                try:
                    value = v.resolve(value, step)
                except Exception as exc:
                    raise ValueError(
                        f"param group {g}: the schedule for {key} failed at step {step}: {exc}"
                    ) from exc
            h[key] = value
        try:
            self._check(h)
        except (TypeError, ValueError) as exc:
            prefix = f"param group {g}: " if len(self.param_groups) > 1 or g > 0 else ""
            raise type(exc)(prefix + str(exc)) from None
        return h

    def _group_config(self, g: int, group: dict[str, Any], step: int) -> tuple[dict[str, Any], Any]:
        """The group's resolved hyperparameters and kernel config at `step`; checked
        and rebuilt only when a value changed since the last step."""
        cached = self._configs[g]
        if cached is not None:
            # The common case: every value is the one checked last step (usually the
            # same object). A schedule never matches (its resolved value is cached).
            ch = cached[0]
            if len(group) == len(ch) + 1:
                for key, value in group.items():
                    if key == "params":
                        continue
                    c = ch.get(key, _MISSING)
                    if value is not c and (v.is_scheduled(value) or value != c):
                        break
                else:
                    return cached
        h = self._checked(group, step, g)
        # Lists are copied: a list edited in place must not edit the cached copy too,
        # or the next step would compare it with itself and keep a stale config.
        h = {k: (list(x) if isinstance(x, list) else x) for k, x in h.items()}
        entry = (h, self._config(h))
        self._configs[g] = entry
        return entry

    def _record(self, p: np.ndarray) -> _Record:
        r = self._records.get(id(p))
        if r is None:
            r = self._records[id(p)] = _Record()
        return r

    def _plan(self, g: int) -> _Plan:
        group = self.param_groups[g]
        plan = self._plans[g]
        if plan is not None and plan.matches(group["params"]):
            return plan
        params = group["params"]
        if not isinstance(params, list):
            raise TypeError(
                f"param_groups[{g}]['params'] must be a list, got {type(params).__name__}"
            )
        self._check_params([grp["params"] for grp in self.param_groups])
        if plan is not None:
            for b in plan.batches:
                for r in b.records:
                    r.detach()
        by_dtype: dict[np.dtype[Any], list[int]] = {}
        for i, p in enumerate(params):
            by_dtype.setdefault(p.dtype, []).append(i)
        batches = []
        for positions in by_dtype.values():
            ps = [params[i] for i in positions]
            records = [self._record(p) for p in ps]
            for r in records:
                r.detach()
            batch = _Batch(positions, ps, records, len(self._state_names), self._has_scalar)
            for k, name in enumerate(self._state_names):
                if all(name in r.arrays for r in records):
                    batch.states[k] = [r.arrays[name] for r in records]
            batches.append(batch)
        plan = _Plan(params, batches)
        self._plans[g] = plan
        self._forget_unused()
        return plan

    def _forget_unused(self) -> None:
        live = {id(p) for grp in self.param_groups for p in grp["params"]}
        for key in [k for k in self._records if k not in live]:
            del self._records[key]

    # -- the step -----------------------------------------------------------------

    def step(self, grads: Sequence[np.ndarray | None]) -> None:
        """Update every parameter in place from its gradient.

        ``grads`` matches the parameters one to one, in group order, with the same
        shapes and dtypes; an entry may be None to leave that parameter (and its state)
        alone. Every argument is checked before any array is written: on error nothing
        has changed. With ``skip_nonfinite=True`` a step whose gradients hold NaN or Inf
        changes nothing either and is counted in ``skipped_steps``.
        """
        if type(grads) is not list and (  # the common case skips the slower ABC check
            isinstance(grads, (np.ndarray, str, bytes)) or not isinstance(grads, Sequence)
        ):
            raise TypeError(
                "grads must be a list of arrays (one per parameter, None to skip), got "
                f"{type(grads).__name__}"
            )
        n_params = sum(len(grp["params"]) for grp in self.param_groups)
        if len(grads) != n_params:
            raise ValueError(
                f"step() got {len(grads)} grads for {n_params} params; pass one gradient "
                "(or None) per parameter, in order"
            )
        t = self._step_count
        prepared = []
        created: list[tuple[_Batch, int]] = []
        offset = 0
        try:
            for g, group in enumerate(self.param_groups):
                h, config = self._group_config(g, group, t)
                plan = self._plan(g)
                n = len(plan.params)
                group_grads = grads[offset : offset + n]
                for batch in plan.batches:
                    states = self._states_for(batch, h, created)
                    batch_grads = (
                        list(group_grads)
                        if plan.homogeneous
                        else [group_grads[j] for j in batch.positions]
                    )
                    try:
                        prepared.append(
                            getattr(_core, "prepare_" + self._family)(
                                batch.params, batch_grads, states, batch.steps, batch.scalars,
                                config,
                            )
                        )
                    except (TypeError, ValueError) as exc:
                        raise type(exc)(self._locate(str(exc), offset, batch)) from None
                offset += n
            if self.skip_nonfinite and not _core.all_finite(list(grads)):
                self.skipped_steps += 1
                self._undo(created)
                return
        except BaseException:
            self._undo(created)
            raise
        for call in prepared:
            call.run()
        self._step_count += 1

    def _undo(self, created: list[tuple[_Batch, int]]) -> None:
        """Forget the state buffers a step created before it was abandoned."""
        for batch, k in created:
            name = self._state_names[k]
            batch.states[k] = None
            for r in batch.records:
                r.arrays.pop(name, None)

    def _states_for(self, batch: _Batch, h: dict[str, Any],
                    created: list[tuple[_Batch, int]]) -> list[list[np.ndarray] | None]:
        out: list[list[np.ndarray] | None] = []
        for name, lst in zip(self._state_names, batch.states):  # the steady state
            if not self._needs(name, h):
                out.append(None)
            elif lst is not None:
                out.append(lst)
            else:
                break
        else:
            return out
        out = []
        for k, name in enumerate(self._state_names):
            if not self._needs(name, h):
                out.append(None)
                continue
            lst = batch.states[k]
            if lst is None:
                lst = []
                for p, r in zip(batch.params, batch.records):
                    arr = r.arrays.get(name)
                    if arr is None:
                        arr = self._initial(name, p, h)
                        r.arrays[name] = arr
                    lst.append(arr)
                batch.states[k] = lst
                created.append((batch, k))
            out.append(lst)
        return out

    @staticmethod
    def _locate(message: str, offset: int, batch: _Batch) -> str:
        """Rewrite a kernel message's batch-relative indices as positions in grads."""

        def sub(m: re.Match[str]) -> str:
            j = int(m.group(2))
            pos = offset + batch.positions[j] if j < len(batch.positions) else j
            return f"{m.group(1)}[{pos}]"

        return _INDEX.sub(sub, message)

    # -- state --------------------------------------------------------------------

    def _all_params(self) -> list[np.ndarray]:
        return [p for grp in self.param_groups for p in grp["params"]]

    @property
    def state(self) -> dict[int, dict[str, Any]]:
        """Per-parameter state, keyed by the parameter's position across all groups.
        Arrays are the live buffers; ``step`` is the number of updates so far."""
        out: dict[int, dict[str, Any]] = {}
        for i, p in enumerate(self._all_params()):
            r = self._records.get(id(p))
            if r is None or (not r.arrays and r.current_step() == 0):
                continue
            entry: dict[str, Any] = {"step": r.current_step()}
            entry.update(r.arrays)
            if self._has_scalar:
                entry[self._scalar_name] = r.current_scalar()
            out[i] = entry
        return out

    @property
    def step_count(self) -> int:
        """Optimizer steps taken: the value schedules are evaluated at for the next step."""
        return self._step_count

    def state_dict(self) -> dict[str, Any]:
        """A snapshot in torch.optim's shape: ``{"state": {i: {...}}, "param_groups": [...]}``
        with arrays copied, plus ``"step_count"`` (the optimizer's own step counter)."""
        state = {
            i: {k: (np.array(x, copy=True) if isinstance(x, np.ndarray) else x)
                for k, x in entry.items()}
            for i, entry in self.state.items()
        }
        groups = []
        index = 0
        for grp in self.param_groups:
            # Schedules are kept as the same objects (a loss-driven one carries state
            # that must stay linked to the live optimizer); values are copied.
            packed = {k: (x if v.is_scheduled(x) else copy.copy(x))
                      for k, x in grp.items() if k != "params"}
            packed["params"] = list(range(index, index + len(grp["params"])))
            index += len(grp["params"])
            groups.append(packed)
        return {"state": state, "param_groups": groups, "step_count": self._step_count}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict` (or a torch.optim state dict of the same
        optimizer). Everything is checked before anything changes."""
        if not isinstance(state_dict, dict):
            raise TypeError(f"state_dict must be a dict, got {type(state_dict).__name__}")
        for key in ("state", "param_groups"):
            if key not in state_dict:
                raise ValueError(f"state_dict has no '{key}' entry")
        saved_groups = state_dict["param_groups"]
        saved_state = state_dict["state"]
        if not isinstance(saved_groups, list) or not isinstance(saved_state, dict):
            raise TypeError("state_dict['param_groups'] must be a list and ['state'] a dict")
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(
                f"state_dict has {len(saved_groups)} param groups, the optimizer has "
                f"{len(self.param_groups)}"
            )
        new_hyper = []
        for g, (saved, grp) in enumerate(zip(saved_groups, self.param_groups)):
            if not isinstance(saved, dict) or "params" not in saved:
                raise ValueError(f"state_dict param group {g} is not a dict with 'params'")
            if len(saved["params"]) != len(grp["params"]):
                raise ValueError(
                    f"state_dict param group {g} has {len(saved['params'])} params, the "
                    f"optimizer's has {len(grp['params'])}"
                )
            hyper = {k: x for k, x in saved.items() if k in self.defaults}
            candidate = {**grp, **hyper}
            self._checked(candidate, int(state_dict.get("step_count", 0) or 0), g)
            new_hyper.append(hyper)
        params = self._all_params()
        allowed = set(self._state_names) | {"step"} | ({self._scalar_name} - {""})
        new_records: dict[int, _Record] = {}
        for key, entry in saved_state.items():
            try:
                i = int(key)
            except (TypeError, ValueError):
                raise ValueError(f"state_dict state key {key!r} is not a parameter index") from None
            if not 0 <= i < len(params):
                raise ValueError(
                    f"state_dict state index {i} is out of range (0..{len(params) - 1})"
                )
            if not isinstance(entry, dict):
                raise TypeError(f"state_dict state[{i}] must be a dict")
            extra = set(entry) - allowed
            if extra:
                raise ValueError(
                    f"state_dict state[{i}] has entries {sorted(extra)} that "
                    f"{type(self).__name__} does not keep (it keeps {sorted(allowed)})"
                )
            p = params[i]
            r = _Record()
            for name, value in entry.items():
                if name == "step":
                    step = float(np.asarray(value))
                    if not (step >= 0 and step == int(step)):
                        raise ValueError(
                            f"state_dict state[{i}]['step'] must be an integer >= 0, "
                            f"got {value!r}"
                        )
                    r.step = int(step)
                elif name == self._scalar_name:
                    r.scalar = float(np.asarray(value))
                else:
                    arr = np.asarray(value)
                    if arr.shape != p.shape:
                        raise ValueError(
                            f"state_dict state[{i}]['{name}'] has shape {arr.shape}, the "
                            f"parameter has {p.shape}"
                        )
                    if arr.dtype.kind not in "fiu":
                        raise TypeError(f"state_dict state[{i}]['{name}'] has dtype {arr.dtype}")
                    r.arrays[name] = np.array(arr, dtype=p.dtype, order="C", copy=True)
            if "step" not in entry and r.arrays:
                # torch's SGD keeps no step count; a momentum buffer means at least one
                # step was taken (step 0 would restart the buffer from the gradient).
                r.step = 1
            new_records[id(p)] = r
        # Checked: apply.
        for grp, hyper in zip(self.param_groups, new_hyper):
            grp.update(hyper)
        for plan in self._plans:
            if plan is not None:
                for b in plan.batches:
                    for rec in b.records:
                        rec.loc = None
        self._plans = [None] * len(self.param_groups)
        self._configs = [None] * len(self.param_groups)
        self._records = new_records
        count = state_dict.get("step_count")
        if count is None:
            count = max((r.step for r in new_records.values()), default=0)
        self._step_count = int(count)

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for g, grp in enumerate(self.param_groups):
            lines.append(f"Parameter Group {g}")
            for key in sorted(k for k in grp if k != "params"):
                lines.append(f"    {key}: {grp[key]!r}")
        lines.append(")")
        return "\n".join(lines)
