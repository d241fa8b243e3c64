"""The demo's figures (matplotlib, imported only when plots are asked for)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .surfaces import PathResult, Surface
from .training import RunResult

__all__ = ["have_matplotlib", "plot_losses", "plot_schedule_runs", "plot_schedules",
           "plot_surface"]

# Eleven colours that stay apart from each other and from grey contour lines.
PALETTE = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
    "#e377c2", "#17becf", "#bcbd22", "#000000", "#7a7a7a",
)


def have_matplotlib() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _short(result: PathResult) -> str:
    o = result.outcome
    if o.status == "reached":
        where = "" if o.goal == "minimum" else f"{o.goal}, "
        return f"{where}{o.step} steps"
    if o.status == "escaped":
        return f"escaped, {o.step} steps"
    if o.status == "diverged":
        return f"DIVERGED at step {o.step}"
    what = "not escaped" if o.goal == "escaped" else f"not reached, {o.dist:.2g} away"
    if o.status == "stalled":
        return f"{what} (stalled)"
    if o.status == "oscillating":
        return f"{what} (oscillating)"
    return what


def _inside(surface: Surface, xy: np.ndarray) -> np.ndarray:
    return ((xy[:, 0] >= surface.xlim[0]) & (xy[:, 0] <= surface.xlim[1])
            & (xy[:, 1] >= surface.ylim[0]) & (xy[:, 1] <= surface.ylim[1]))


def _background(ax: Any, surface: Surface, xx: np.ndarray, yy: np.ndarray,
                zz: np.ndarray) -> None:
    from matplotlib.colors import LogNorm

    if surface.log_contours:
        shift = zz - zz.min() + 1e-3
        levels = np.logspace(math.log10(shift.min()), math.log10(shift.max()), 25)
        ax.contourf(xx, yy, shift, levels=levels, norm=LogNorm(), cmap="Blues", alpha=0.75)
        ax.contour(xx, yy, shift, levels=levels, norm=LogNorm(), colors="white",
                   linewidths=0.4, alpha=0.8)
    elif surface.unbounded:
        lim = float(np.abs(zz).max())
        levels = np.linspace(-lim, lim, 25)
        ax.contourf(xx, yy, zz, levels=levels, cmap="PuOr_r", alpha=0.55)
        ax.contour(xx, yy, zz, levels=levels, colors="white", linewidths=0.4)
        ax.contour(xx, yy, zz, levels=[0.0], colors="0.35", linewidths=0.8, linestyles="--")
    else:
        levels = np.linspace(float(zz.min()), float(zz.max()), 25)
        ax.contourf(xx, yy, zz, levels=levels, cmap="Blues", alpha=0.75)
        ax.contour(xx, yy, zz, levels=levels, colors="white", linewidths=0.4, alpha=0.8)


def _targets(ax: Any, surface: Surface, labels: bool) -> None:
    if surface.unbounded:
        for name, xy0 in surface.marks:
            ax.plot(*xy0, "P", color="gold", mec="black", ms=11, zorder=6)
            if labels:
                ax.annotate(name, xy0, xytext=(8, -14), textcoords="offset points",
                            fontsize=8)
    else:
        for goal in surface.goals:
            ax.plot(*goal.xy, "*", color="gold", mec="black", ms=15, zorder=6)
            if labels:
                ax.annotate(goal.name, goal.xy, xytext=(8, -14), textcoords="offset points",
                            fontsize=8)


def plot_surface(surface: Surface, results: Sequence[PathResult], path: Path,
                 steps: int) -> None:
    """One panel per optimizer: its path over the surface's contours (log-spaced where
    the values span decades), from the common start, with the outcome in the title;
    every other optimizer's path is drawn faintly behind for comparison."""
    plt = _plt()
    from matplotlib.lines import Line2D

    x = np.linspace(*surface.xlim, 400)
    y = np.linspace(*surface.ylim, 400)
    xx, yy = np.meshgrid(x, y)
    zz = surface.f(xx, yy)
    ncol = 4
    nrow = math.ceil((len(results) + 1) / ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(4.1 * ncol, 3.7 * nrow), sharex=True,
                             sharey=True, layout="constrained", squeeze=False)
    flat = list(axes.flat)
    for i, r in enumerate(results):
        ax = flat[i]
        _background(ax, surface, xx, yy, zz)
        for other in results:
            if other is not r:
                ax.plot(other.xy[:, 0], other.xy[:, 1], "-", color="0.3", lw=0.6, alpha=0.25)
        o = r.outcome
        bad = o.status == "diverged"
        good = o.status in ("reached", "escaped")
        color = "#c0392b" if bad else "#d35400"
        title_color = "#c0392b" if bad else ("#1e6b30" if good else "#7a5500")
        xy = r.xy
        ax.plot(xy[:, 0], xy[:, 1], "-", color=color, lw=1.6, zorder=3)
        ax.plot(xy[:, 0], xy[:, 1], ".", color=color, ms=2.5, zorder=3)
        ins = np.nonzero(_inside(surface, xy))[0]
        if bad:
            last = xy[ins[-1]] if ins.size else xy[0]
            ax.plot(*last, "X", color="#c0392b", ms=11, mec="white", mew=1.0, zorder=5)
        elif ins.size and ins[-1] == len(xy) - 1:
            ax.plot(*xy[-1], "o", color=color, ms=7, mec="white", mew=1.0, zorder=5)
        ax.plot(*surface.start, "o", color="white", mec="black", ms=8, mew=1.3, zorder=6)
        _targets(ax, surface, labels=i == 0)
        ax.set_title(f"{r.label} (lr {r.lr:g})\n{_short(r)}", fontsize=10, color=title_color)
        ax.set_xlim(*surface.xlim)
        ax.set_ylim(*surface.ylim)
    for ax in axes[-1]:
        ax.set_xlabel("x")
    for ax in axes[:, 0]:
        ax.set_ylabel("y")
    key = flat[len(results)]
    key.set_axis_off()
    handles = [
        Line2D([], [], marker="o", ls="", color="white", mec="black", ms=8, label="start"),
        Line2D([], [], marker="P" if surface.unbounded else "*", ls="", color="gold",
               mec="black", ms=12,
               label="saddle point" if surface.unbounded else "minimum"),
        Line2D([], [], color="#d35400", lw=1.6, marker=".", ms=4, label="path (one dot per step)"),
        Line2D([], [], marker="o", ls="", color="#d35400", mec="white", ms=7,
               label="where it ended"),
        Line2D([], [], marker="X", ls="", color="#c0392b", mec="white", ms=10,
               label="diverged: last point in view"),
        Line2D([], [], color="0.3", lw=0.8, alpha=0.5, label="the other optimizers"),
    ]
    key.legend(handles=handles, loc="center", fontsize=10, frameon=False)
    for ax in flat[len(results) + 1:]:
        ax.set_axis_off()
    contours = "log-spaced contours of f - min f" if surface.log_contours else "contours of f"
    fig.suptitle(f"{surface.title}:  {surface.formula}    ({contours}; every optimizer from "
                 f"({surface.start[0]:g}, {surface.start[1]:g}), at most {steps} steps)",
                 fontsize=13)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _color(name: str, i: int) -> str:
    """The same colour for an optimizer in every panel (by its label)."""
    from .surfaces import OPTIMIZERS

    labels = [label for label, _ in OPTIMIZERS]
    base = name.split(",")[0]
    return PALETTE[labels.index(base) % len(PALETTE)] if base in labels else PALETTE[
        i % len(PALETTE)]


def _loss_panel(ax: Any, results: Sequence[RunResult], steps_per_epoch: int, title: str,
                by_name: bool = True) -> None:
    start = max(float(r.train_loss[0]) for r in results)
    finite = [float(np.min(r.train_loss)) for r in results if np.isfinite(r.train_loss).any()]
    top = 1.6 * start
    for i, r in enumerate(results):
        color = _color(r.run.name, i) if by_name else PALETTE[i % len(PALETTE)]
        style = "--" if "," in r.run.name else "-"
        epochs = r.eval_steps / steps_per_epoch
        label = r.run.name
        worst = float(np.nanmax(np.where(np.isfinite(r.train_loss), r.train_loss, np.inf)))
        if r.diverged_at >= 0:
            label += " (DIVERGED)"
        elif worst > top:
            label += f" (off the scale, up to {worst:.2g})"
        ax.plot(epochs, np.minimum(r.train_loss, top * 10), style, color=color, lw=1.6,
                label=label)
        if r.diverged_at >= 0:
            ax.plot(epochs[-1], min(r.train_loss[-1], top), "X", color=color, ms=9)
    ax.set_yscale("log")
    ax.set_ylim(0.9 * min(finite, default=0.1), top)
    ax.set_xlabel("epoch")
    ax.set_ylabel("training loss (cross-entropy, full training set)")
    ax.set_title(title, fontsize=12)
    ax.grid(True, which="both", alpha=0.25)
    ax.legend(fontsize=8.5, ncol=2, frameon=False)


def plot_losses(panels: Sequence[tuple[str, Sequence[RunResult]]], steps_per_epoch: int,
                path: Path) -> None:
    plt = _plt()
    fig, axes = plt.subplots(1, len(panels), figsize=(7.0 * len(panels), 5.5),
                             layout="constrained", squeeze=False)
    for ax, (title, results) in zip(axes[0], panels):
        _loss_panel(ax, results, steps_per_epoch, title)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_schedule_runs(results: Sequence[RunResult], steps_per_epoch: int, path: Path) -> None:
    """Training loss under each schedule, next to the learning rate each run used."""
    plt = _plt()
    fig, (left, right) = plt.subplots(1, 2, figsize=(14.0, 5.5), layout="constrained")
    _loss_panel(left, results, steps_per_epoch, "MLP, SGD + Nesterov momentum 0.9: loss",
                by_name=False)
    for i, r in enumerate(results):
        color = PALETTE[i % len(PALETTE)]
        ax_steps = np.arange(len(r.lrs)) / steps_per_epoch
        right.plot(ax_steps, r.lrs, "-", color=color, lw=1.4, label=r.run.name)
    right.set_xlabel("epoch")
    right.set_ylabel("learning rate used")
    right.set_title("the learning rate each run used (bold driver: as it adapted)",
                    fontsize=12)
    right.grid(True, alpha=0.25)
    right.legend(fontsize=8.5, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_schedules(schedules: Sequence[tuple[str, Any]], n_steps: int, path: Path) -> str:
    """The schedules' curves over the same steps, drawn by gradstep.plot_schedules."""
    from gradstep._plot import plot_schedules as library_plot

    library_plot(dict(schedules), n_steps, path,
                 title=f"the demo's learning-rate schedules over {n_steps} steps")
    return "gradstep._plot.plot_schedules"
