// gradstep/adagrad.hpp: Adagrad (Duchi, Hazan & Singer, 2011), torch.optim's form:
//   g <- -g if maximize;  g <- g + wd * p
//   lr_t = lr / (1 + (t - 1) * lr_decay)
//   s <- s + g^2
//   p <- p - lr_t * g / (sqrt(s) + eps)
#pragma once

#include "common.hpp"
#include "multi_tensor.hpp"

namespace gradstep {

struct AdagradConfig {
  double lr = 1e-2;
  double lr_decay = 0.0;
  double weight_decay = 0.0;
  double initial_accumulator_value = 0.0;
  double eps = 1e-10;
  bool maximize = false;

  void validate() const {
    require_finite_nonneg("lr", lr);
    require_finite_nonneg("lr_decay", lr_decay);
    require_finite_nonneg("weight_decay", weight_decay);
    require_finite_nonneg("initial_accumulator_value", initial_accumulator_value);
    require_finite_nonneg("eps", eps);
  }
};

}  // namespace gradstep

GRADSTEP_KERNELS_BEGIN

template <class T>
struct AdagradCoeffs {
  GradPrep<T> prep;
  T neg_clr, eps;

  static AdagradCoeffs make(const AdagradConfig& c, std::int64_t step) {
    const double clr = c.lr / (1.0 + static_cast<double>(step - 1) * c.lr_decay);
    return {GradPrep<T>::make(c.lr, c.weight_decay, c.maximize, false), T(-clr), T(c.eps)};
  }
};

template <class T>
void adagrad_update(T* GRADSTEP_RESTRICT p, const T* GRADSTEP_RESTRICT g,
                    T* GRADSTEP_RESTRICT sum, std::size_t n, const AdagradCoeffs<T>& k) noexcept {
  for (std::size_t i = 0; i < n; ++i) {
    const T gi = k.prep.sign * g[i] + k.prep.wd * p[i];
    const T si = sum[i] + gi * gi;
    sum[i] = si;
    p[i] = p[i] + k.neg_clr * gi / (std::sqrt(si) + k.eps);
  }
}

template <class T>
void adagrad_step(T* p, const T* g, T* sum, std::size_t n, std::int64_t step,
                  const AdagradConfig& c) noexcept {
  adagrad_update(p, g, sum, n, AdagradCoeffs<T>::make(c, step));
}

// Multi-tensor Adagrad over a parameter group; state order: sum.
template <class T>
void adagrad_multi(const TensorBatch<T>& b, const AdagradConfig& c, Executor& executor) noexcept {
  run_multi_tensor<T, AdagradCoeffs<T>>(
      b, executor, [&](std::size_t) {},
      [&](std::int64_t step, double) { return AdagradCoeffs<T>::make(c, step); },
      [&](std::size_t i, std::size_t o, std::size_t n, const AdagradCoeffs<T>& k) {
        adagrad_update(b.params[i] + o, b.grads[i] + o, at(b.state(i, 0), o), n, k);
      });
}

GRADSTEP_KERNELS_END
