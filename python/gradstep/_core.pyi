"""
gradstep's C++ kernels (internal: use the gradstep package)
"""
from __future__ import annotations
import numpy
import typing
__all__: list[str] = ['AdadeltaConfig', 'AdagradConfig', 'AdamConfig', 'LBFGSHistory', 'NAdamConfig', 'PreparedStep', 'RAdamConfig', 'RMSpropConfig', 'RpropConfig', 'SGDConfig', 'add_scaled', 'add_scaled_clip', 'all_finite', 'available_cores', 'cauchy_point', 'compiler', 'get_num_threads', 'prepare_adadelta', 'prepare_adagrad', 'prepare_adam', 'prepare_adamax', 'prepare_nadam', 'prepare_radam', 'prepare_rmsprop', 'prepare_rprop', 'prepare_sgd', 'scale_', 'set_num_threads', 'set_simd_level', 'simd_level', 'simd_level_supported', 'simd_levels_built', 'sum_squares', 'take_gradient', 'version']
class PreparedStep:
    def run(self) -> None:
        ...
class SGDConfig:
    decoupled_weight_decay: bool
    maximize: bool
    nesterov: bool
    def __init__(self) -> None:
        ...
    def validate(self) -> None:
        ...
    @property
    def dampening(self) -> float:
        ...
    @dampening.setter
    def dampening(self, arg0: typing.SupportsFloat | typing.SupportsIndex) -> None:
        ...
    @property
    def l1(self) -> float:
        ...
    @l1.setter
    def l1(self, arg0: typing.SupportsFloat | typing.SupportsIndex) -> None:
        ...
    @property
    def lr(self) -> float:
        ...
    @lr.setter
    def lr(self, arg0: typing.SupportsFloat | typing.SupportsIndex) -> None:
        ...
    @property
    def momentum(self) -> float:
        ...
    @momentum.setter
    def momentum(self, arg0: typing.SupportsFloat | typing.SupportsIndex) -> None:
        ...
    @property
    def weight_decay(self) -> float:
        ...
    @weight_decay.setter
    def weight_decay(self, arg0: typing.SupportsFloat | typing.SupportsIndex) -> None:
        ...
class AdagradConfig:
    maximize: bool
    def __init__(self) -> None:
        ...
    def validate(self) -> None:
        ...
    @property
    def eps(self) -> float:
        ...
    @eps.setter
    def eps(self, arg0: typing.SupportsFloat | typing.SupportsIndex) -> None:
        ...
    @property
    def initial_accumulator_value(self) -> float:
        ...
    @initial_accumulator_value.setter
    def initial_accumulator_value(self, arg0: typing.SupportsFloat | typing.SupportsIndex) -> None:
        ...
    @property
    def lr(self) -> float:
        ...
    @lr.setter
    def lr(self, arg0: typing.SupportsFloat | typing.SupportsIndex) -> None:
        ...
    @property
    def lr_decay(self) -> float:
        ...
    @lr_decay.setter
    def lr_decay(self, arg0: typing.SupportsFloat | typing.SupportsIndex) -> None:
        ...
    @property
    def weight_decay(self) -> float:
        ...
    @weight_decay.setter
    def weight_decay(self, arg0: typing.SupportsFloat | typing.SupportsIndex) -> None:
        ...
class AdadeltaConfig:
    maximize: bool
    def __init__(self) -> None:
        ...
    def validate(self) -> None:
        ...
    @property
    def eps(self) -> float:
        ...
    @eps.setter
    def eps(self, arg0: typing.SupportsFloat | typing.SupportsIndex) -> None:
        ...
    @property
    def lr(self) -> float:
        ...
    @lr.setter
    def lr(self, arg0: typing.SupportsFloat | typing.SupportsIndex) -> None:
        ...
    @property
    def rho(self) -> float:
        ...
    @rho.setter
    def rho(self, arg0: typing.SupportsFloat | typing.SupportsIndex) -> None:
        ...
    @property
    def weight_decay(self) -> float:
        ...
    @weight_decay.setter
    def weight_decay(self, arg0: typing.SupportsFloat | typing.SupportsIndex) -> None:
        ...
class RMSpropConfig:
    centered: bool
    maximize: bool
    def __init__(self) -> None:
        ...
    def validate(self) -> None:
        ...
    @property
    def alpha(self) -> float:
        ...
    @alpha.setter
    def alpha(self, arg0: typing.SupportsFloat | typing.SupportsIndex) -> None:
        ...
    @property
    def eps(self) -> float:
        ...
    @eps.setter
    def eps(self, arg0: typing.SupportsFloat | typing.SupportsIndex) -> None:
        ...
    @property
    def lr(self) -> float:
        ...
    @lr.setter
    def lr(self, arg0: typing.SupportsFloat | typing.SupportsIndex) -> None:
        ...
    @property
    def momentum(self) -> float:
        ...
    @momentum.setter
    def momentum(self, arg0: typing.SupportsFloat | typing.SupportsIndex) -> None:
        ...
    @property
    def weight_decay(self) -> float:
        ...
    @weight_decay.setter
    def weight_decay(self, arg0: typing.SupportsFloat | typing.SupportsIndex) -> None:
        ...
class RpropConfig:
    maximize: bool
    def __init__(self) -> None:
        ...
    def validate(self) -> None:
        ...
    @property
    def etaminus(self) -> float:
        ...
    @etaminus.setter
    def etaminus(self, arg0: typing.SupportsFloat | typing.SupportsIndex) -> None:
        ...
    @property
    def etaplus(self) -> float:
        ...
    @etaplus.setter
    def etaplus(self, arg0: typing.SupportsFloat | typing.SupportsIndex) -> None:
        ...
    @property
    def lr(self) -> float:
        ...
    @lr.setter
    def lr(self, arg0: typing.SupportsFloat | typing.SupportsIndex) -> None:
        ...
    @property
    def step_size_max(self) -> float:
        ...
    @step_size_max.setter
    def step_size_max(self, arg0: typing.SupportsFloat | typing.SupportsIndex) -> None:
        ...
    @property
    def step_size_min(self) -> float:
        ...
    @step_size_min.setter
    def step_size_min(self, arg0: typing.SupportsFloat | typing.SupportsIndex) -> None:
        ...
class AdamConfig:
    amsgrad: bool
    decoupled_weight_decay: bool
    maximize: bool
    def __init__(self) -> None:
        ...
    def validate(self) -> None:
        ...
    @property
    def beta1(self) -> float:
        ...
    @beta1.setter
    def beta1(self, arg0: typing.SupportsFloat | typing.SupportsIndex) -> None:
        ...
    @property
    def beta2(self) -> float:
        ...
    @beta2.setter
    def beta2(self, arg0: typing.SupportsFloat | typing.SupportsIndex) -> None:
        ...
    @property
    def eps(self) -> float:
        ...
    @eps.setter
    def eps(self, arg0: typing.SupportsFloat | typing.SupportsIndex) -> None:
        ...
    @property
    def lr(self) -> float:
        ...
    @lr.setter
    def lr(self, arg0: typing.SupportsFloat | typing.SupportsIndex) -> None:
        ...
    @property
    def weight_decay(self) -> float:
        ...
    @weight_decay.setter
    def weight_decay(self, arg0: typing.SupportsFloat | typing.SupportsIndex) -> None:
        ...
class NAdamConfig:
    decoupled_weight_decay: bool
    maximize: bool
    def __init__(self) -> None:
        ...
    def validate(self) -> None:
        ...
    @property
    def beta1(self) -> float:
        ...
    @beta1.setter
    def beta1(self, arg0: typing.SupportsFloat | typing.SupportsIndex) -> None:
        ...
    @property
    def beta2(self) -> float:
        ...
    @beta2.setter
    def beta2(self, arg0: typing.SupportsFloat | typing.SupportsIndex) -> None:
        ...
    @property
    def eps(self) -> float:
        ...
    @eps.setter
    def eps(self, arg0: typing.SupportsFloat | typing.SupportsIndex) -> None:
        ...
    @property
    def lr(self) -> float:
        ...
    @lr.setter
    def lr(self, arg0: typing.SupportsFloat | typing.SupportsIndex) -> None:
        ...
    @property
    def momentum_decay(self) -> float:
        ...
    @momentum_decay.setter
    def momentum_decay(self, arg0: typing.SupportsFloat | typing.SupportsIndex) -> None:
        ...
    @property
    def weight_decay(self) -> float:
        ...
    @weight_decay.setter
    def weight_decay(self, arg0: typing.SupportsFloat | typing.SupportsIndex) -> None:
        ...
class RAdamConfig:
    decoupled_weight_decay: bool
    maximize: bool
    def __init__(self) -> None:
        ...
    def validate(self) -> None:
        ...
    @property
    def beta1(self) -> float:
        ...
    @beta1.setter
    def beta1(self, arg0: typing.SupportsFloat | typing.SupportsIndex) -> None:
        ...
    @property
    def beta2(self) -> float:
        ...
    @beta2.setter
    def beta2(self, arg0: typing.SupportsFloat | typing.SupportsIndex) -> None:
        ...
    @property
    def eps(self) -> float:
        ...
    @eps.setter
    def eps(self, arg0: typing.SupportsFloat | typing.SupportsIndex) -> None:
        ...
    @property
    def lr(self) -> float:
        ...
    @lr.setter
    def lr(self, arg0: typing.SupportsFloat | typing.SupportsIndex) -> None:
        ...
    @property
    def weight_decay(self) -> float:
        ...
    @weight_decay.setter
    def weight_decay(self, arg0: typing.SupportsFloat | typing.SupportsIndex) -> None:
        ...
class LBFGSHistory:
    """
    The last `history` (s, y) pairs of L-BFGS and the two-loop recursion over them (cpp/include/gradstep/lbfgs.hpp).
    """
    def __init__(self, n: typing.SupportsInt | typing.SupportsIndex, history: typing.SupportsInt | typing.SupportsIndex = 10, dtype: typing.Any = 'float64', curvature_eps: typing.SupportsFloat | typing.SupportsIndex | None = None) -> None:
        ...
    def clear(self) -> None:
        ...
    def pair(self, j: typing.SupportsInt | typing.SupportsIndex) -> tuple:
        """
        Copies of the j-th stored pair (s, y), 0 the oldest.
        """
    def push(self, s: typing.Any, y: typing.Any) -> bool:
        """
        Stores (s, y) unless s'y <= curvature_eps * y'y or non-finite; returns whether it was stored.
        """
    def push_difference(self, x_new: typing.Any, x_old: typing.Any, g_new: typing.Any, g_old: typing.Any) -> bool:
        """
        push(x_new - x_old, g_new - g_old) in one pass.
        """
    def two_loop(self, g: typing.Any, out: typing.Any, scale: typing.SupportsFloat | typing.SupportsIndex = 1.0) -> float:
        """
        out = scale * H g by the two-loop recursion (2k passes over n, split across the thread pool in lockstep from 2^13 elements); returns g' out.
        """
    @property
    def capacity(self) -> int:
        ...
    @property
    def count(self) -> int:
        ...
    @property
    def curvature_eps(self) -> float:
        ...
    @property
    def dtype(self) -> numpy.dtype[typing.Any]:
        ...
    @property
    def gamma(self) -> float:
        ...
    @property
    def size(self) -> int:
        ...
def add_scaled(out: typing.Any, x: typing.Any, alpha: typing.SupportsFloat | typing.SupportsIndex, d: typing.Any) -> None:
    """
    out = x + alpha * d (same dtype and shape, no conversion).
    """
def add_scaled_clip(out: typing.Any, x: typing.Any, alpha: typing.SupportsFloat | typing.SupportsIndex, d: typing.Any, lo: typing.Any, hi: typing.Any) -> None:
    """
    out = clip(x + alpha * d, lo, hi) in one pass (same dtype and shape, no conversion).
    """
def all_finite(arrays: list) -> bool:
    """
    True when no element of the arrays (None skipped) is NaN or infinite.
    """
def available_cores() -> int:
    ...
def cauchy_point(x: typing.Any, g: typing.Any, lo: typing.Any, hi: typing.Any, W: typing.Any, M: typing.Any, theta: typing.SupportsFloat | typing.SupportsIndex) -> tuple:
    """
    The generalized Cauchy point of L-BFGS-B for B = theta I - W M W' (float64): returns (xcp, c = W'(xcp - x), t, breakpoints passed).
    """
def compiler() -> str:
    ...
def get_num_threads() -> int:
    ...
def prepare_adadelta(params: list, grads: list, states: list, steps: typing.Any, scalars: typing.Any, config: AdadeltaConfig) -> PreparedStep:
    ...
def prepare_adagrad(params: list, grads: list, states: list, steps: typing.Any, scalars: typing.Any, config: AdagradConfig) -> PreparedStep:
    ...
def prepare_adam(params: list, grads: list, states: list, steps: typing.Any, scalars: typing.Any, config: AdamConfig) -> PreparedStep:
    ...
def prepare_adamax(params: list, grads: list, states: list, steps: typing.Any, scalars: typing.Any, config: AdamConfig) -> PreparedStep:
    ...
def prepare_nadam(params: list, grads: list, states: list, steps: typing.Any, scalars: typing.Any, config: NAdamConfig) -> PreparedStep:
    ...
def prepare_radam(params: list, grads: list, states: list, steps: typing.Any, scalars: typing.Any, config: RAdamConfig) -> PreparedStep:
    ...
def prepare_rmsprop(params: list, grads: list, states: list, steps: typing.Any, scalars: typing.Any, config: RMSpropConfig) -> PreparedStep:
    ...
def prepare_rprop(params: list, grads: list, states: list, steps: typing.Any, scalars: typing.Any, config: RpropConfig) -> PreparedStep:
    ...
def prepare_sgd(params: list, grads: list, states: list, steps: typing.Any, scalars: typing.Any, config: SGDConfig) -> PreparedStep:
    ...
def scale_(arrays: list, factor: typing.SupportsFloat | typing.SupportsIndex) -> None:
    """
    Multiply every element of the arrays in place by factor (cast once to each dtype).
    """
def set_num_threads(num_threads: typing.SupportsInt | typing.SupportsIndex) -> None:
    ...
def set_simd_level(level: str) -> None:
    """
    Use the kernels of `level` ('' = the best supported).
    """
def simd_level() -> str:
    """
    The SIMD level in use.
    """
def simd_level_supported() -> str:
    """
    The best SIMD level this CPU supports among those built.
    """
def simd_levels_built() -> list[str]:
    """
    SIMD levels compiled into this module, lowest first.
    """
def sum_squares(arrays: list) -> float:
    """
    Sum of squares of every element of float32/float64 arrays (None skipped), accumulated in double; deterministic for any thread count.
    """
def take_gradient(out: typing.Any, g: typing.Any, d: typing.Any) -> tuple:
    """
    out = g; returns (g' d, max |g_i|) from the same pass (the norm is NaN if g has NaN or Inf). d may be g.
    """
def version() -> str:
    ...
