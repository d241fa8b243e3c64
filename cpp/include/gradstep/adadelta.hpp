// gradstep/adadelta.hpp: Adadelta (Zeiler, 2012, Algorithm 1), torch.optim's form:
//   g <- -g if maximize;  g <- g + wd * p
//   s <- rho * s + (1 - rho) * g^2
//   d <- sqrt(a + eps) / sqrt(s + eps) * g
//   a <- rho * a + (1 - rho) * d^2
//   p <- p - lr * d
#pragma once

#include "common.hpp"
#include "multi_tensor.hpp"

namespace gradstep {

struct AdadeltaConfig {
  double lr = 1.0;
  double rho = 0.9;
  double eps = 1e-6;
  double weight_decay = 0.0;
  bool maximize = false;

  void validate() const {
    require_finite_nonneg("lr", lr);
    require(rho >= 0.0 && rho <= 1.0, "rho", "in [0, 1]", rho);
    require_finite_nonneg("eps", eps);
    require_finite_nonneg("weight_decay", weight_decay);
  }
};

}  // namespace gradstep

GRADSTEP_KERNELS_BEGIN

template <class T>
struct AdadeltaCoeffs {
  GradPrep<T> prep;
  T rho, one_minus_rho, eps, neg_lr;

  static AdadeltaCoeffs make(const AdadeltaConfig& c, std::int64_t /*step*/) {
    return {GradPrep<T>::make(c.lr, c.weight_decay, c.maximize, false), T(c.rho),
            T(1.0 - c.rho), T(c.eps), T(-c.lr)};
  }
};

template <class T>
void adadelta_update(T* GRADSTEP_RESTRICT p, const T* GRADSTEP_RESTRICT g,
                     T* GRADSTEP_RESTRICT square_avg, T* GRADSTEP_RESTRICT acc_delta,
                     std::size_t n, const AdadeltaCoeffs<T>& k) noexcept {
  for (std::size_t i = 0; i < n; ++i) {
    const T gi = k.prep.sign * g[i] + k.prep.wd * p[i];
    const T si = square_avg[i] * k.rho + k.one_minus_rho * gi * gi;
    // One square root of the quotient instead of a quotient of square roots.
    const T delta = std::sqrt((acc_delta[i] + k.eps) / (si + k.eps)) * gi;
    square_avg[i] = si;
    acc_delta[i] = acc_delta[i] * k.rho + k.one_minus_rho * delta * delta;
    p[i] = p[i] + k.neg_lr * delta;
  }
}

template <class T>
void adadelta_step(T* p, const T* g, T* square_avg, T* acc_delta, std::size_t n,
                   std::int64_t step, const AdadeltaConfig& c) noexcept {
  adadelta_update(p, g, square_avg, acc_delta, n, AdadeltaCoeffs<T>::make(c, step));
}

// Multi-tensor Adadelta over a parameter group; state order: square_avg, acc_delta.
template <class T>
void adadelta_multi(const TensorBatch<T>& b, const AdadeltaConfig& c, Executor& executor) noexcept {
  run_multi_tensor<T, AdadeltaCoeffs<T>>(
      b, executor, [&](std::size_t) {},
      [&](std::int64_t step, double) { return AdadeltaCoeffs<T>::make(c, step); },
      [&](std::size_t i, std::size_t o, std::size_t n, const AdadeltaCoeffs<T>& k) {
        adadelta_update(b.params[i] + o, b.grads[i] + o, at(b.state(i, 0), o), at(b.state(i, 1), o), n, k);
      });
}

GRADSTEP_KERNELS_END
