"""Two small classifiers in NumPy with hand-written backpropagation.

Each model owns its parameters as a list of C-contiguous arrays, the form
gradstep's optimizers update in place, and ``loss_and_grads`` returns the mean
cross-entropy over a batch with one gradient per parameter, in the same order.
"""

from __future__ import annotations

import numpy as np

__all__ = ["MLP", "Model", "SoftmaxRegression", "cross_entropy", "softmax"]


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def cross_entropy(logits: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean cross-entropy and its gradient with respect to the logits."""
    n = logits.shape[0]
    z = logits - logits.max(axis=1, keepdims=True)
    log_norm = np.log(np.exp(z).sum(axis=1, keepdims=True))
    log_p = z - log_norm
    loss = -float(log_p[np.arange(n), y].mean(dtype=np.float64))
    d = np.exp(log_p)
    d[np.arange(n), y] -= 1.0
    return loss, d / n


class Model:
    """The interface the runner uses."""

    name = "model"
    params: list[np.ndarray]

    def logits(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def loss_and_grads(self, x: np.ndarray, y: np.ndarray) -> tuple[float, list[np.ndarray]]:
        raise NotImplementedError

    def loss(self, x: np.ndarray, y: np.ndarray) -> float:
        return cross_entropy(self.logits(x), y)[0]

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        return softmax(self.logits(x))


class SoftmaxRegression(Model):
    """Multinomial logistic regression: p(y | x) = softmax(x W + b)."""

    name = "softmax regression"

    def __init__(self, n_in: int, n_out: int, rng: np.random.Generator,
                 dtype: type = np.float32) -> None:
        self.w = np.zeros((n_in, n_out), dtype)
        self.b = np.zeros(n_out, dtype)
        self.params = [self.w, self.b]

    def logits(self, x: np.ndarray) -> np.ndarray:
        return x @ self.w + self.b

    def loss_and_grads(self, x: np.ndarray, y: np.ndarray) -> tuple[float, list[np.ndarray]]:
        loss, d = cross_entropy(self.logits(x), y)
        return loss, [x.T @ d, d.sum(axis=0)]


class MLP(Model):
    """One hidden tanh layer: p(y | x) = softmax(tanh(x W1 + b1) W2 + b2), with
    Glorot-uniform initial weights."""

    name = "MLP"

    def __init__(self, n_in: int, n_hidden: int, n_out: int, rng: np.random.Generator,
                 dtype: type = np.float32) -> None:
        a1 = np.sqrt(6.0 / (n_in + n_hidden))
        a2 = np.sqrt(6.0 / (n_hidden + n_out))
        self.w1 = rng.uniform(-a1, a1, (n_in, n_hidden)).astype(dtype)
        self.b1 = np.zeros(n_hidden, dtype)
        self.w2 = rng.uniform(-a2, a2, (n_hidden, n_out)).astype(dtype)
        self.b2 = np.zeros(n_out, dtype)
        self.params = [self.w1, self.b1, self.w2, self.b2]

    def logits(self, x: np.ndarray) -> np.ndarray:
        return np.tanh(x @ self.w1 + self.b1) @ self.w2 + self.b2

    def loss_and_grads(self, x: np.ndarray, y: np.ndarray) -> tuple[float, list[np.ndarray]]:
        h = np.tanh(x @ self.w1 + self.b1)
        loss, d2 = cross_entropy(h @ self.w2 + self.b2, y)
        d1 = (d2 @ self.w2.T) * (1.0 - h * h)
        return loss, [x.T @ d1, d1.sum(axis=0), h.T @ d2, d2.sum(axis=0)]
