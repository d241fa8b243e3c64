"""Shared fixtures and the optimizer cases every test file draws from."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

# (class name, hyperparameters): each case is checked against the float64 NumPy
# reference (tests/reference.py) and, when torch is installed, against torch.optim.
OPTIMIZER_CASES: list[tuple[str, dict[str, Any]]] = [
    ("SGD", {"lr": 0.1}),
    ("SGD", {"lr": 0.05, "momentum": 0.9}),
    ("SGD", {"lr": 0.05, "momentum": 0.9, "dampening": 0.3, "weight_decay": 0.01}),
    ("SGD", {"lr": 0.05, "momentum": 0.8, "nesterov": True, "weight_decay": 0.02}),
    ("SGD", {"lr": 0.05, "momentum": 0.5, "maximize": True}),
    ("Adagrad", {"lr": 0.1}),
    ("Adagrad", {"lr": 0.1, "lr_decay": 0.01, "weight_decay": 0.1,
                 "initial_accumulator_value": 0.5, "maximize": True}),
    ("Adadelta", {}),
    ("Adadelta", {"lr": 0.5, "rho": 0.8, "weight_decay": 0.05}),
    ("RMSprop", {}),
    ("RMSprop", {"lr": 0.01, "centered": True, "momentum": 0.9, "weight_decay": 0.01}),
    ("RMSprop", {"lr": 0.01, "centered": True, "alpha": 0.9}),
    ("RMSprop", {"lr": 0.01, "momentum": 0.5, "maximize": True}),
    ("Rprop", {}),
    ("Rprop", {"lr": 0.05, "etas": (0.3, 1.5), "step_sizes": (1e-3, 0.2), "maximize": True}),
    ("Adam", {"lr": 0.01}),
    ("Adam", {"lr": 0.01, "amsgrad": True, "weight_decay": 0.05}),
    ("Adam", {"lr": 0.01, "betas": (0.8, 0.99), "decoupled_weight_decay": True,
              "weight_decay": 0.1, "maximize": True}),
    ("AdamW", {"lr": 0.01}),
    ("AdamW", {"lr": 0.01, "amsgrad": True, "weight_decay": 0.3}),
    ("Adamax", {}),
    ("Adamax", {"lr": 0.01, "weight_decay": 0.1, "maximize": True}),
    ("NAdam", {}),
    ("NAdam", {"lr": 0.01, "weight_decay": 0.1, "momentum_decay": 0.01}),
    ("NAdam", {"lr": 0.01, "weight_decay": 0.1, "decoupled_weight_decay": True}),
    ("RAdam", {}),
    ("RAdam", {"lr": 0.01, "weight_decay": 0.1, "betas": (0.9, 0.9)}),
    ("RAdam", {"lr": 0.01, "weight_decay": 0.1, "decoupled_weight_decay": True}),
]

# Sizes that catch vector-body / scalar-tail bugs.
SHAPES = [(1,), (7,), (1023,), (3, 5), (64, 65)]
DTYPES = [np.float32, np.float64]


def case_id(case: tuple[str, dict[str, Any]]) -> str:
    name, hyper = case
    inner = ",".join(f"{k}={v}" for k, v in hyper.items())
    return f"{name}({inner})"


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20261121)


def gradient_sequence(rng: np.random.Generator, shape: tuple[int, ...], n: int,
                      dtype: Any) -> list[np.ndarray]:
    """Seeded gradients with a drift, so sign changes and steady stretches both occur."""
    drift = rng.standard_normal(shape)
    return [(0.5 * drift + rng.standard_normal(shape)).astype(dtype) for _ in range(n)]
