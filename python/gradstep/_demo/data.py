"""A classification data set generated from a fixed seed, and feature standardisation.

The labels come from a random "teacher" network, so the classes are separated by
curved boundaries: a linear model can only do so well, a hidden layer does better.
The features are then stretched and shifted by very different amounts (from 0.03
to 30), the way raw measurements often are, which is what standardisation is for.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Dataset", "Standardizer", "make_dataset"]


@dataclass(frozen=True)
class Dataset:
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    n_classes: int

    @property
    def n_features(self) -> int:
        return int(self.x_train.shape[1])

    def describe(self) -> str:
        return (
            f"{len(self.x_train)} train / {len(self.x_test)} test samples, "
            f"{self.n_features} features, {self.n_classes} classes"
        )


def make_dataset(n_train: int = 6000, n_test: int = 2000, n_features: int = 8,
                 n_classes: int = 4, label_noise: float = 0.2, seed: int = 0,
                 dtype: type = np.float32) -> Dataset:
    """Gaussian inputs labelled by a random one-hidden-layer tanh teacher (with
    Gumbel noise on its logits, so the Bayes error is not zero), then given
    badly scaled, offset features. Deterministic for a given seed."""
    rng = np.random.default_rng(seed)
    n = n_train + n_test
    z = rng.standard_normal((n, n_features))
    w1 = rng.standard_normal((n_features, 32)) * (2.0 / np.sqrt(n_features))
    b1 = rng.standard_normal(32) * 0.5
    w2 = rng.standard_normal((32, n_classes)) * (3.0 / np.sqrt(32))
    logits = np.tanh(z @ w1 + b1) @ w2
    y = np.argmax(logits + label_noise * rng.gumbel(size=logits.shape), axis=1)
    scales = 10.0 ** rng.uniform(-1.5, 1.5, n_features)
    offsets = rng.normal(0.0, 3.0, n_features) * scales
    x = (z * scales + offsets).astype(dtype)
    return Dataset(x[:n_train], y[:n_train].astype(np.int64), x[n_train:],
                   y[n_train:].astype(np.int64), n_classes)


class Standardizer:
    """The first step of the pipeline: zero mean, unit variance per feature, with
    statistics fitted on the training set only (so the test set cannot leak in)."""

    def __init__(self) -> None:
        self.mean: np.ndarray | None = None
        self.scale: np.ndarray | None = None

    def fit(self, x: np.ndarray) -> Standardizer:
        self.mean = x.mean(axis=0, dtype=np.float64).astype(x.dtype)
        std = x.std(axis=0, dtype=np.float64)
        self.scale = np.where(std > 0, std, 1.0).astype(x.dtype)
        return self

    def transform(self, x: np.ndarray) -> np.ndarray:
        if self.mean is None or self.scale is None:
            raise RuntimeError("Standardizer.transform() called before fit()")
        return (x - self.mean) / self.scale

    def fit_transform(self, x: np.ndarray) -> np.ndarray:
        return self.fit(x).transform(x)


class Identity:
    """The pipeline step used for the "raw features" comparison run."""

    def fit(self, x: np.ndarray) -> Identity:
        return self

    def transform(self, x: np.ndarray) -> np.ndarray:
        return x

    def fit_transform(self, x: np.ndarray) -> np.ndarray:
        return x
