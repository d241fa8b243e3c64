"""Pictures of schedules (matplotlib, the optional ``plot`` extra)."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Callable

import numpy as np
import numpy.typing as npt

from .schedules import Schedule

__all__ = ["plot_schedules"]

_INSTALL = (
    "plot_schedules needs matplotlib, which gradstep does not install by default; "
    "install the plot extra: pip install 'gradstep[plot]' (or pip install matplotlib)"
)


def _curve(schedule: Callable[[int], float],
           steps: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
    if isinstance(schedule, Schedule):
        return np.asarray(schedule(steps), dtype=np.float64)
    # Any other callable step -> value, one step at a time.
    return np.fromiter((float(schedule(int(t))) for t in steps), dtype=np.float64,
                       count=steps.size)


def plot_schedules(schedules: Mapping[str, Callable[[int], float]], n_steps: int,
                   path: str | os.PathLike[str], *, layout: str = "auto",
                   log_scale: bool = False, mark_cycle_ends: bool = True,
                   title: str | None = None, dpi: int = 120) -> Path:
    """Draw every schedule's curve over steps ``0 .. n_steps - 1`` into one PNG file.

    Args:
        schedules: ``{label: schedule}``; gradstep schedules are evaluated in one
            vectorised call each, any other callable ``step -> value`` step by step.
        n_steps: how many steps to draw (>= 1).
        path: the PNG file to write (its directory must exist).
        layout: ``"overlay"`` (all curves on one axes, with a legend), ``"grid"`` (one
            small panel per schedule) or ``"auto"`` (overlay up to 4 schedules).
        log_scale: a logarithmic value axis (zero values are left out of the curve).
        mark_cycle_ends: mark the steps of ``schedule.cycle_ends(n_steps)`` (where a
            ``SnapshotEnsemble`` would keep a copy) on schedules that have cycles.
        title: a title for the figure.
        dpi: resolution of the PNG.

    Returns:
        The path written, as a :class:`pathlib.Path`.

    Raises:
        ImportError: matplotlib is not installed (install ``gradstep[plot]``).

    Example:
        >>> import tempfile, os
        >>> from gradstep import schedules as s
        >>> from gradstep._plot import plot_schedules
        >>> out = os.path.join(tempfile.mkdtemp(), "schedules.png")
        >>> plot_schedules({"cosine": s.cosine_decay(0.1, 100),
        ...                 "1cycle": s.one_cycle(0.1, 100)}, 100, out).name
        'schedules.png'
    """
    if not isinstance(schedules, Mapping):
        raise TypeError(
            f"Invalid schedules: {type(schedules).__name__} (expected a dict "
            "{label: schedule})"
        )
    if not schedules:
        raise ValueError("Invalid schedules: an empty dict (expected at least one schedule)")
    for label, sched in schedules.items():
        if not isinstance(label, str):
            raise TypeError(f"Invalid schedules: the label {label!r} is not a string")
        if not callable(sched):
            raise TypeError(
                f"Invalid schedules[{label!r}]: {sched!r} (expected a callable schedule)"
            )
    if isinstance(n_steps, bool) or not isinstance(n_steps, (int, np.integer)) or n_steps < 1:
        raise ValueError(f"Invalid n_steps: {n_steps!r} (expected an integer >= 1)")
    if layout not in ("auto", "overlay", "grid"):
        raise ValueError(f"Invalid layout: {layout!r} (expected one of 'auto', 'overlay', 'grid')")
    target = Path(os.fspath(path))
    if not target.parent.is_dir():
        raise FileNotFoundError(
            f"Invalid path: {str(target)!r} (the directory {str(target.parent)!r} does not exist)"
        )

    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise ImportError(_INSTALL) from exc

    steps = np.arange(int(n_steps), dtype=np.int64)
    curves = {label: _curve(sched, steps) for label, sched in schedules.items()}
    if layout == "auto":
        layout = "overlay" if len(curves) <= 4 else "grid"

    def ends_of(sched: Any) -> list[int]:
        if not mark_cycle_ends or not callable(getattr(sched, "cycle_ends", None)):
            return []
        try:
            return list(sched.cycle_ends(int(n_steps)))
        except TypeError:  # a join / warmup with no cyclic schedule inside
            return []

    def draw(ax: Any, label: str, y: npt.NDArray[np.float64], color: Any = None) -> None:
        yy = np.where(y > 0, y, np.nan) if log_scale else y
        line = ax.plot(steps, yy, label=label, color=color, linewidth=1.4)[0]
        ends = ends_of(schedules[label])
        if ends:
            e = np.asarray(ends)
            ax.plot(e, yy[e], linestyle="none", marker="o", markersize=3.5,
                    color=line.get_color())
        if log_scale:
            ax.set_yscale("log")
        elif not layout == "overlay":
            finite = y[np.isfinite(y)]
            if finite.size and finite.min() == finite.max():
                # A flat curve: show it against zero rather than a +-4% band around it.
                top = float(finite.max())
                ax.set_ylim(min(0.0, top) * 1.1, max(0.0, top) * 1.1 or 1.0)
        ax.grid(True, alpha=0.3)

    if layout == "overlay":
        fig = Figure(figsize=(8.0, 4.5), layout="constrained")
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        for label, y in curves.items():
            draw(ax, label, y)
        ax.set_xlabel("step")
        ax.set_ylabel("value")
        ax.legend(fontsize="small")
    else:
        n = len(curves)
        cols = min(4, n)
        rows = math.ceil(n / cols)
        # A fixed grid: the constrained layout engine costs seconds with many panels.
        height = 2.4 * rows + (0.9 if title else 0.6)
        fig = Figure(figsize=(3.2 * cols, height))
        FigureCanvasAgg(fig)
        axes = fig.subplots(rows, cols, squeeze=False,
                            gridspec_kw={"hspace": 0.55, "wspace": 0.35, "left": 0.07,
                                         "right": 0.98, "bottom": 0.6 / height,
                                         "top": 1.0 - (0.85 if title else 0.35) / height})
        for k, (label, y) in enumerate(curves.items()):
            ax = axes[k // cols][k % cols]
            draw(ax, label, y, color=f"C{k % 10}")
            ax.set_title(label, fontsize="small")
            ax.tick_params(labelsize="x-small")
        for k in range(n, rows * cols):
            axes[k // cols][k % cols].set_visible(False)
        fig.supxlabel("step", fontsize="small", y=0.005)
        fig.supylabel("value", fontsize="small", x=0.005)
    if title:
        fig.suptitle(title)
    fig.savefig(target, format="png", dpi=dpi)
    return target
