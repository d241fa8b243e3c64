"""Draws the figures the README shows: python docs/figures.py (needs the plot extra)."""

from __future__ import annotations

import os

import gradstep as gs
from gradstep import schedules as S

HERE = os.path.dirname(os.path.abspath(__file__))
N = 300

curves = {
    "step_decay(0.1, 100, 0.5)": S.step_decay(0.1, 100, gamma=0.5),
    "exponential_decay(0.1, 0.99)": S.exponential_decay(0.1, 0.99),
    "inverse_sqrt_decay(0.1)": S.inverse_sqrt_decay(0.1),
    "polynomial_decay(0.1, 300, 2)": S.polynomial_decay(0.1, N, power=2.0),
    "linear_warmup(cosine_decay(0.1, 270), 30)": S.linear_warmup(S.cosine_decay(0.1, N - 30), 30),
    "cyclic(0.01, 0.1, 50, triangular2)": S.cyclic(0.01, 0.1, 50, mode="triangular2"),
    "cosine_warm_restarts(0.1, 40, T_mult=1.5)": S.cosine_warm_restarts(0.1, 40, T_mult=1.5),
    "one_cycle(0.1, 300)": S.one_cycle(0.1, N),
}

if __name__ == "__main__":
    path = gs.plot_schedules(curves, N, os.path.join(HERE, "schedules.png"),
                             title="gradstep.schedules over 300 steps (dots: cycle ends)")
    print(path)
