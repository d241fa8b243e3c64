"""gradstep: gradient-descent optimizers with C++ kernels that update NumPy arrays in place."""
from . import schedules
from ._averaging import EMA, SnapshotEnsemble, ewa
from ._checkpoint import load, save
from ._clip import clip_grad_norm, grad_norm
from ._core import get_num_threads, set_num_threads
from ._minimize import LBFGS, OptimizeResult, minimize
from ._optimizers import (
    SGD,
    Adadelta,
    Adagrad,
    Adam,
    Adamax,
    AdamW,
    NAdam,
    Optimizer,
    RAdam,
    RMSprop,
    Rprop,
)
from ._plot import plot_schedules
from ._runtime import build_info, get_include

__version__ = "0.1.0"

__all__ = [
    "EMA",
    "LBFGS",
    "SGD",
    "Adadelta",
    "Adagrad",
    "Adam",
    "AdamW",
    "Adamax",
    "NAdam",
    "OptimizeResult",
    "Optimizer",
    "RAdam",
    "RMSprop",
    "Rprop",
    "SnapshotEnsemble",
    "__version__",
    "build_info",
    "clip_grad_norm",
    "ewa",
    "get_include",
    "get_num_threads",
    "grad_norm",
    "load",
    "minimize",
    "plot_schedules",
    "save",
    "schedules",
    "set_num_threads",
]
