"""Mini-batch training of the demo's models with gradstep's optimizers and schedules."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Callable, Union

import numpy as np

import gradstep as gs

from .data import Dataset, Identity, Standardizer
from .models import MLP, Model, SoftmaxRegression

__all__ = ["Run", "RunResult", "Snapshots", "optimizer_runs", "schedule_runs", "train"]

Hyper = Union[float, Callable[[int], float]]
MakeOpt = Callable[[list[np.ndarray], Hyper], Any]


@dataclass
class Run:
    """One training run: a model, an optimizer, a learning rate or schedule."""

    name: str
    model: str  # "softmax" or "mlp"
    make_opt: MakeOpt
    lr: Hyper
    lr_text: str
    standardize: bool = True
    snapshot: bool = False  # keep the parameters at each cycle end (SGDR)
    loss_driven: bool = False  # schedule.update(train loss) once per epoch
    note: str = ""


@dataclass
class RunResult:
    run: Run
    eval_steps: np.ndarray  # steps at which the full training loss was measured
    train_loss: np.ndarray
    lrs: np.ndarray  # the learning rate used by each step
    final_loss: float
    test_acc: float
    seconds: float  # the training steps only, evaluation excluded
    diverged_at: int = -1
    warning: str = ""
    ensemble_acc: float = math.nan
    n_snapshots: int = 0


class Snapshots:
    """A copy of the parameters at the end of each learning-rate cycle and the ensemble
    prediction (the mean of the snapshots' class probabilities): Huang et al.,
    "Snapshot Ensembles: Train 1, get M for free", ICLR 2017.

    A thin wrapper: ``gradstep._averaging.SnapshotEnsemble`` does the work when the
    package has it, a few lines here otherwise."""

    def __init__(self, schedule: Any, model: Model, total: int) -> None:
        self.model = model
        self.ends = _cycle_ends(schedule, total)
        self.saved: list[list[np.ndarray]] = []
        try:
            from gradstep._averaging import SnapshotEnsemble
        except ImportError:
            self.library: Any = None
        else:
            self.library = SnapshotEnsemble(schedule, model.params)

    def observe(self, t: int) -> None:
        """After the optimizer step with index ``t`` (the one that used ``schedule(t)``)."""
        if self.library is not None:
            self.library.observe(t)
        elif t + 1 in self.ends:
            self.saved.append([p.copy() for p in self.model.params])

    def __len__(self) -> int:
        return len(self.library) if self.library is not None else len(self.saved)

    def _proba(self, params: list[np.ndarray], x: np.ndarray) -> np.ndarray:
        live = [p.copy() for p in self.model.params]
        try:
            for p, s in zip(self.model.params, params):
                p[...] = s
            return self.model.predict_proba(x)
        finally:
            for p, s in zip(self.model.params, live):
                p[...] = s

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        if self.library is not None:
            return np.asarray(self.library.predict(self._proba, x))
        return np.mean([self._proba(ps, x) for ps in self.saved], axis=0)


def _make_model(kind: str, data: Dataset, seed: int, dtype: type = np.float32) -> Model:
    rng = np.random.default_rng(seed)
    if kind == "softmax":
        return SoftmaxRegression(data.n_features, data.n_classes, rng, dtype)
    return MLP(data.n_features, 64, data.n_classes, rng, dtype)


def _cycle_ends(schedule: Any, total: int) -> set[int]:
    ends = getattr(schedule, "cycle_ends", None)
    if ends is None:
        return set()
    return {int(e) for e in ends(total)}


def train(run: Run, data: Dataset, epochs: int, batch_size: int = 64, seed: int = 0,
          evals_per_epoch: int = 2) -> RunResult:
    """Train ``run`` on ``data``: the same initial weights and batch order for every
    run (fixed seeds), the full training loss measured a few times per epoch."""
    scaler = Standardizer() if run.standardize else Identity()
    x_train = scaler.fit_transform(data.x_train)  # the pipeline: scale, then model
    x_test = scaler.transform(data.x_test)
    y_train = data.y_train
    model = _make_model(run.model, data, seed)
    opt = run.make_opt(model.params, run.lr)
    n = len(x_train)
    steps_per_epoch = math.ceil(n / batch_size)
    total = steps_per_epoch * epochs
    eval_every = max(1, steps_per_epoch // evals_per_epoch)
    snaps = Snapshots(run.lr, model, total) if run.snapshot else None

    eval_steps = [0]
    losses = [model.loss(x_train, y_train)]
    lrs = np.full(total, np.nan)
    rng = np.random.default_rng(seed + 1)
    seconds = 0.0
    step = 0
    diverged_at = -1
    for _ in range(epochs):
        perm = rng.permutation(n)
        t0 = time.perf_counter()
        for i in range(0, n, batch_size):
            idx = perm[i : i + batch_size]
            loss, grads = model.loss_and_grads(x_train[idx], y_train[idx])
            if not math.isfinite(loss) or not all(np.isfinite(g).all() for g in grads):
                diverged_at = step
                break
            lrs[step] = run.lr(step) if callable(run.lr) else run.lr
            opt.step(grads)
            if snaps is not None:
                snaps.observe(step)
            step += 1
            if step % eval_every == 0:
                seconds += time.perf_counter() - t0
                eval_steps.append(step)
                losses.append(model.loss(x_train, y_train))
                t0 = time.perf_counter()
        seconds += time.perf_counter() - t0
        if diverged_at >= 0:
            break
        if eval_steps[-1] != step:
            eval_steps.append(step)
            losses.append(model.loss(x_train, y_train))
        if not math.isfinite(losses[-1]):
            diverged_at = step
            break
        if run.loss_driven:
            run.lr.update(losses[-1])  # type: ignore[union-attr]

    final = losses[-1] if diverged_at < 0 else math.inf
    warning = "loss ended above its start" if diverged_at < 0 and final > losses[0] else ""
    with np.errstate(all="ignore"):
        pred = model.predict_proba(x_test).argmax(axis=1)
    acc = float((pred == data.y_test).mean()) if diverged_at < 0 else math.nan
    result = RunResult(run, np.array(eval_steps), np.array(losses), lrs, final, acc, seconds,
                       diverged_at, warning=warning)
    if snaps is not None and len(snaps) and diverged_at < 0:
        prob = snaps.predict_proba(x_test)
        result.ensemble_acc = float((prob.argmax(axis=1) == data.y_test).mean())
        result.n_snapshots = len(snaps)
    return result


# -- the runs -------------------------------------------------------------------------

# A learning rate for each optimizer on this (standardised) problem, the best of a
# coarse grid (1 and 3 times powers of ten) and not tuned further.
_OPTIMIZERS: tuple[tuple[str, MakeOpt, float], ...] = (
    ("SGD", lambda p, lr: gs.SGD(p, lr=lr), 0.3),
    ("SGD+Nesterov", lambda p, lr: gs.SGD(p, lr=lr, momentum=0.9, nesterov=True), 0.03),
    ("Adagrad", lambda p, lr: gs.Adagrad(p, lr=lr), 0.1),
    ("Adadelta", lambda p, lr: gs.Adadelta(p, lr=lr), 1.0),
    ("RMSprop", lambda p, lr: gs.RMSprop(p, lr=lr), 3e-3),
    ("Rprop", lambda p, lr: gs.Rprop(p, lr=lr), 1e-2),
    ("Adam", lambda p, lr: gs.Adam(p, lr=lr), 1e-2),
    ("AdamW", lambda p, lr: gs.AdamW(p, lr=lr), 1e-2),
    ("Adamax", lambda p, lr: gs.Adamax(p, lr=lr), 1e-2),
    ("NAdam", lambda p, lr: gs.NAdam(p, lr=lr), 1e-2),
    ("RAdam", lambda p, lr: gs.RAdam(p, lr=lr), 1e-2),
)


_NOTES = {"Rprop": "full-batch method: batch noise flips its signs"}


def optimizer_runs(model: str) -> list[Run]:
    runs = [Run(name, model, make, lr, f"{lr:g}", note=_NOTES.get(name, ""))
            for name, make, lr in _OPTIMIZERS]
    if model == "softmax":
        make, lr = _OPTIMIZERS[0][1], _OPTIMIZERS[0][2]
        runs.insert(1, Run("SGD, raw features", model, make, lr, f"{lr:g}", standardize=False,
                           note="no standardisation step"))
    return runs


def schedule_runs(steps_per_epoch: int, epochs: int) -> list[Run]:
    """SGD with Nesterov momentum on the MLP under each schedule (needs
    ``gradstep.schedules``; returns [] without it)."""
    try:
        from gradstep import schedules as S
    except ImportError:
        return []
    total = steps_per_epoch * epochs

    def nesterov(p: list[np.ndarray], lr: Hyper) -> Any:
        return gs.SGD(p, lr=lr, momentum=0.9, nesterov=True)

    peak = 0.05
    third = max(1, epochs // 3) * steps_per_epoch
    warm = max(1, total // 20)
    cycle = max(1, epochs // 3) * steps_per_epoch  # three whole cycles when epochs % 3 == 0
    runs = [
        Run("constant", "mlp", nesterov, S.constant(peak), f"{peak:g}"),
        Run("step decay", "mlp", nesterov, S.step_decay(peak, third, gamma=0.2),
            f"{peak:g}, x0.2 every {third}"),
        Run("cosine", "mlp", nesterov, S.cosine_decay(peak, total), f"{peak:g} -> 0"),
        Run("warmup + cosine", "mlp", nesterov,
            S.linear_warmup(S.cosine_decay(peak, total - warm), warm),
            f"0 -> {peak:g} in {warm}, cos"),
        Run("cyclic", "mlp", nesterov,
            S.cyclic(peak / 10, 2 * peak, step_size_up=cycle // 2, mode="triangular2"),
            f"{peak / 10:g}..{2 * peak:g} tri2"),
        Run("SGDR + snapshots", "mlp", nesterov,
            S.cosine_warm_restarts(2 * peak, cycle), f"{2 * peak:g}, T0={cycle}",
            snapshot=True),
        Run("bold driver", "mlp", nesterov, S.BoldDriver(peak), f"{peak:g}, x1.05 / x0.5",
            loss_driven=True, note="updated on each epoch's training loss"),
    ]
    return runs
