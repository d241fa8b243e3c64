"""``python -m gradstep demo``: every optimizer and schedule at work, in tables and PNGs."""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path
from typing import Any, TextIO

import gradstep as gs

from . import surfaces as surf
from . import training as tr
from .data import make_dataset
from .report import Progress, table

__all__ = ["run_demo"]

PLOT_HINT = 'plots need matplotlib: pip install "gradstep[plot]"'


def _say(out: TextIO, text: str = "") -> None:
    out.write(text + "\n")
    out.flush()


def _heading(out: TextIO, text: str) -> None:
    _say(out)
    _say(out, text)
    _say(out, "=" * len(text))


def _pct(x: float) -> str:
    return "-" if math.isnan(x) else f"{100 * x:.1f}%"


def _loss(x: float) -> str:
    return "inf" if math.isinf(x) else f"{x:.4f}"


def _surfaces(out: TextIO, quick: bool, plots: bool, out_dir: Path,
              written: list[Path]) -> None:
    _heading(out, "1. Paths on 2-D surfaces")
    _say(out, "Every optimizer starts from the same point; lr hand-picked per optimizer and "
              "surface on a coarse grid.\n'reached' = within the tolerance from that step to the "
              "end; otherwise how far it "
              "ended from the goal.\nAdamW keeps its default weight_decay=0.01, which moves "
              "its fixed point off the minimum.")
    budgets = {s.key: (min(s.steps, 400) if quick else s.steps) for s in surf.SURFACES}
    n = len(surf.SURFACES) * len(surf.OPTIMIZERS)
    all_results = []
    with Progress(n, "surfaces") as bar:
        for s in surf.SURFACES:
            results = []
            for label, make in surf.OPTIMIZERS:
                bar.update(0, f"{s.title}: {label}")
                results.append(surf.run_path(s, label, make, steps=budgets[s.key]))
                bar.update(1, f"{s.title}: {label}")
            all_results.append((s, results))
    for s, results in all_results:
        tol = ", ".join(f"{g.name} within {g.tol:g}" for g in s.goals if g.tol > 0)
        goal = "escape downhill (f < -1)" if s.unbounded else tol
        _say(out)
        _say(out, f"{s.title}  {_plain(s.formula)}   start {s.start}, {budgets[s.key]} steps,"
                  f" goal: {goal}")
        rows = [[r.label, f"{r.lr:g}", r.outcome.describe()] for r in results]
        _say(out, table(["optimizer", "lr", "result"], rows, align="lrl"))
        if plots:
            from .plotting import plot_surface

            path = out_dir / f"paths_{s.key}.png"
            plot_surface(s, results, path, budgets[s.key])
            written.append(path)


def _plain(formula: str) -> str:
    return (formula.replace("$", "").replace(r"\,", " ").replace("^2", "²")
            .replace("^3", "³").replace(r"-", "-"))


def _run_table(results: list[tr.RunResult], out: TextIO, first: str = "optimizer") -> None:
    rows = []
    for r in results:
        note = "; ".join(x for x in (r.warning, r.run.note) if x)
        if r.diverged_at >= 0:
            note = f"DIVERGED at step {r.diverged_at}" + (f"; {note}" if note else "")
        if r.n_snapshots:
            note = (f"ensemble of {r.n_snapshots} snapshots: {_pct(r.ensemble_acc)} test acc"
                    + (f"; {note}" if note else ""))
        rows.append([r.run.name, r.run.lr_text, _loss(r.final_loss), _pct(r.test_acc),
                     f"{r.seconds:.2f}s", note])
    _say(out, table([first, "lr", "train loss", "test acc", "time", "note"], rows,
                    align="llrrrl"))


def _training(out: TextIO, quick: bool, plots: bool, out_dir: Path,
              written: list[Path]) -> list[tuple[str, Any]]:
    _heading(out, "2. Training a classifier (mini-batches of 64)")
    data = make_dataset(n_train=1500, n_test=500) if quick else make_dataset(n_train=4000)
    epochs = 3 if quick else 15
    batch = 64
    steps_per_epoch = math.ceil(len(data.x_train) / batch)
    _say(out, f"Data: {data.describe()}, generated with seed 0 (labels from a random tanh "
              "network,\nfeatures scaled by 0.03..30); pipeline: standardise -> model. "
              f"{epochs} epochs = {epochs * steps_per_epoch} steps per run, the same initial "
              "weights\nand batch order for every run; train loss on the full training set "
              "at the end; time = the training steps only.")
    groups = [("softmax regression", tr.optimizer_runs("softmax")),
              ("one-hidden-layer MLP (64 tanh units)", tr.optimizer_runs("mlp"))]
    sched = tr.schedule_runs(steps_per_epoch, epochs)
    n = sum(len(runs) for _, runs in groups) + len(sched)
    results: dict[str, list[tr.RunResult]] = {}
    with Progress(n, "training") as bar:
        for title, runs in [*groups, ("schedules", sched)]:
            results[title] = []
            for run in runs:
                bar.update(0, f"{run.model}: {run.name}")
                results[title].append(tr.train(run, data, epochs, batch))
                bar.update(1, f"{run.model}: {run.name}")
    for title, _ in groups:
        _say(out)
        _say(out, f"{title}, each optimizer at a constant lr (best of a coarse grid)")
        _run_table(results[title], out)
    if sched:
        _say(out)
        _say(out, "MLP, SGD with Nesterov momentum 0.9 under each learning-rate schedule")
        _run_table(results["schedules"], out, first="schedule")
    else:
        _say(out)
        _say(out, "(schedules skipped: gradstep.schedules is not available in this build)")
    if plots:
        from .plotting import plot_losses, plot_schedule_runs

        path = out_dir / "loss_optimizers.png"
        plot_losses([(f"{t}: loss per optimizer", results[t]) for t, _ in groups],
                    steps_per_epoch, path)
        written.append(path)
        if sched:
            path = out_dir / "loss_schedules.png"
            plot_schedule_runs(results["schedules"], steps_per_epoch, path)
            written.append(path)
    fresh = tr.schedule_runs(steps_per_epoch, epochs)  # unused copies: plotting is pure
    return [(r.name, r.lr) for r in fresh if not r.loss_driven] + [
        (f"{r.run.name} (as it ran)", _Recorded(r.lrs))
        for r in results.get("schedules", [])
        if r.run.loss_driven
    ]


class _Recorded:
    """A loss-driven schedule replayed from the learning rates its run used."""

    def __init__(self, lrs: Any) -> None:
        self.lrs = lrs

    def __call__(self, step: int) -> float:
        return float(self.lrs[min(step, len(self.lrs) - 1)])


def run_demo(out_dir: Path, quick: bool = False, plots: bool = True,
             out: TextIO | None = None) -> int:
    out = out or sys.stdout
    t0 = time.perf_counter()
    info = gs.build_info()
    if plots:
        from .plotting import have_matplotlib

        if not have_matplotlib():
            plots = False
            _say(out, f"[{PLOT_HINT}; printing tables only]")
    written: list[Path] = []
    if plots:
        out_dir.mkdir(parents=True, exist_ok=True)
    _say(out, f"gradstep {gs.__version__} demo{' (quick: shortened budgets)' if quick else ''}"
              f" - SIMD {info.get('simd_level', '?')}, {gs.get_num_threads()} threads")
    _surfaces(out, quick, plots, out_dir, written)
    schedules = _training(out, quick, plots, out_dir, written)
    if schedules:
        _heading(out, "3. Learning-rate schedules")
        total = len(schedules[0][1].lrs) if isinstance(schedules[0][1], _Recorded) else None
        n_steps = total or _steps_of(quick)
        rows = []
        for name, s in schedules:
            values = [s(k) for k in range(n_steps)]
            rows.append([name, f"{values[0]:.3g}", f"{max(values):.3g}", f"{values[-1]:.3g}"])
        _say(out, f"the schedules above over the same {n_steps} steps")
        _say(out, table(["schedule", "first lr", "max lr", "last lr"], rows))
        if plots:
            from .plotting import plot_schedules

            path = out_dir / "schedules.png"
            plot_schedules(schedules, n_steps, path)
            written.append(path)
    _heading(out, "Summary")
    if written:
        _say(out, f"{len(written)} figures written to {out_dir}:")
        for p in written:
            _say(out, f"  {p}")
    else:
        _say(out, f"no figures written ({'--no-plots' if not plots else 'none'}); "
                  f"{PLOT_HINT}" if not plots else "no figures written")
    _say(out, f"done in {time.perf_counter() - t0:.1f}s")
    return 0


def _steps_of(quick: bool) -> int:
    data_n = 1500 if quick else 4000
    return math.ceil(data_n / 64) * (3 if quick else 15)
