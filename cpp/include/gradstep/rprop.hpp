// gradstep/rprop.hpp: resilient backpropagation (Riedmiller & Braun, 1993; the
// iRprop- variant of Igel & Huesken, 2000, as torch.optim.Rprop implements it):
//   g <- -g if maximize;  s = sign(g * g_prev)
//   eta = etaplus if s > 0, etaminus if s < 0, 1 otherwise
//   step_size <- clamp(step_size * eta, step_size_min, step_size_max)
//   g <- 0 where s < 0 (no move after a sign change)
//   p <- p - sign(g) * step_size;  g_prev <- g
// step_size starts at lr (set when the state is created).
#pragma once

#include "common.hpp"
#include "multi_tensor.hpp"

namespace gradstep {

struct RpropConfig {
  double lr = 1e-2;
  double etaminus = 0.5;
  double etaplus = 1.2;
  double step_size_min = 1e-6;
  double step_size_max = 50.0;
  bool maximize = false;

  void validate() const {
    require_finite_nonneg("lr", lr);
    require(etaminus > 0.0 && etaminus < 1.0, "etaminus (etas[0])", "in (0, 1)", etaminus);
    require(std::isfinite(etaplus) && etaplus > 1.0, "etaplus (etas[1])", "finite and > 1",
            etaplus);
    require_finite_nonneg("step_size_min (step_sizes[0])", step_size_min);
    require(std::isfinite(step_size_max) && step_size_max >= step_size_min,
            "step_size_max (step_sizes[1])", "finite and >= step_size_min", step_size_max);
  }
};

}  // namespace gradstep

GRADSTEP_KERNELS_BEGIN

template <class T>
struct RpropCoeffs {
  T sign, etaminus, etaplus, step_size_min, step_size_max;

  static RpropCoeffs make(const RpropConfig& c, std::int64_t /*step*/) {
    return {T(c.maximize ? -1.0 : 1.0), T(c.etaminus), T(c.etaplus), T(c.step_size_min),
            T(c.step_size_max)};
  }
};

template <class T>
void rprop_update(T* GRADSTEP_RESTRICT p, const T* GRADSTEP_RESTRICT g, T* GRADSTEP_RESTRICT prev,
                  T* GRADSTEP_RESTRICT step_size, std::size_t n,
                  const RpropCoeffs<T>& k) noexcept {
  // Written as independent selects, which the compiler turns into blends.
  for (std::size_t i = 0; i < n; ++i) {
    const T gi = k.sign * g[i];
    const T s = gi * prev[i];
    T eta = s > T(0) ? k.etaplus : T(1);
    eta = s < T(0) ? k.etaminus : eta;
    T ss = step_size[i] * eta;
    ss = ss < k.step_size_min ? k.step_size_min : ss;
    ss = ss > k.step_size_max ? k.step_size_max : ss;
    const T kept = s < T(0) ? T(0) : gi;
    T sign_g = kept > T(0) ? T(1) : T(0);
    sign_g = kept < T(0) ? T(-1) : sign_g;
    step_size[i] = ss;
    prev[i] = kept;
    p[i] = p[i] - sign_g * ss;
  }
}

template <class T>
void rprop_step(T* p, const T* g, T* prev, T* step_size, std::size_t n, std::int64_t step,
                const RpropConfig& c) noexcept {
  rprop_update(p, g, prev, step_size, n, RpropCoeffs<T>::make(c, step));
}

// Multi-tensor Rprop over a parameter group; state order: prev, step_size.
template <class T>
void rprop_multi(const TensorBatch<T>& b, const RpropConfig& c, Executor& executor) noexcept {
  run_multi_tensor<T, RpropCoeffs<T>>(
      b, executor, [&](std::size_t) {},
      [&](std::int64_t step, double) { return RpropCoeffs<T>::make(c, step); },
      [&](std::size_t i, std::size_t o, std::size_t n, const RpropCoeffs<T>& k) {
        rprop_update(b.params[i] + o, b.grads[i] + o, at(b.state(i, 0), o), at(b.state(i, 1), o), n, k);
      });
}

GRADSTEP_KERNELS_END
