// gradstep/adam.hpp: Adam and its relatives (AdamW, AMSGrad, Adamax, NAdam, RAdam).
//
// Adam (Kingma & Ba, 2015, Algorithm 1), with torch.optim's conventions:
//   g  <- -g if maximize;  g <- g + wd * p        (coupled L2, "Adam")
//   p  <- p * (1 - lr * wd)                        (decoupled, "AdamW", Loshchilov & Hutter 2019)
//   m  <- m + (1 - beta1) * (g - m)
//   v  <- beta2 * v + (1 - beta2) * g^2
//   vmax <- max(vmax, v)                           (AMSGrad, Reddi et al. 2018)
//   p  <- p - lr / (1 - beta1^t) * m / (sqrt(v or vmax) / sqrt(1 - beta2^t) + eps)
// Adamax (same paper, Section 7.1): u <- max(beta2 * u, |g| + eps);
//   p <- p - lr / (1 - beta1^t) * m / u
// NAdam (Dozat, 2016) with torch's momentum schedule
//   mu_t = beta1 * (1 - 0.5 * 0.96^(t * momentum_decay)), prod_t = mu_1 ... mu_t:
//   p <- p - lr (1 - mu_t) / (1 - prod_t) * g / d - lr mu_{t+1} / (1 - prod_t mu_{t+1}) * m / d,
//   d = sqrt(v / (1 - beta2^t)) + eps
// RAdam (Liu et al., 2020, Algorithm 2): rho_inf = 2 / (1 - beta2) - 1,
//   rho_t = rho_inf - 2 t beta2^t / (1 - beta2^t); if rho_t > 5 the adaptive step is
//   rectified by r_t = sqrt((rho_t-4)(rho_t-2) rho_inf / ((rho_inf-4)(rho_inf-2) rho_t)),
//   otherwise the step is plain momentum SGD on the bias-corrected m.
//
// Every per-step coefficient is computed once in double and cast once to T.
// Divisions and square roots bound these loops in cache, so the code does one
// of each per element where the formula allows (multiplying by a reciprocal
// coefficient instead of dividing by it); results differ from torch.optim's
// operation order only by rounding.
#pragma once

#include "common.hpp"
#include "multi_tensor.hpp"
#include "multi_tensor.hpp"
#include "multi_tensor.hpp"
#include "multi_tensor.hpp"

namespace gradstep {

// The checks every Adam-family configuration shares.
template <class Config>
void validate_adam_family(const Config& c) {
  require_finite_nonneg("lr", c.lr);
  require_unit_interval("beta1", c.beta1);
  require_unit_interval("beta2", c.beta2);
  require_finite_nonneg("eps", c.eps);
  require_finite_nonneg("weight_decay", c.weight_decay);
}

struct AdamConfig {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.0;
  bool amsgrad = false;
  bool maximize = false;
  bool decoupled_weight_decay = false;

  void validate() const {
    validate_adam_family(*this);
  }
};

// Adamax shares AdamConfig (amsgrad and decoupled_weight_decay unused).
using AdamaxConfig = AdamConfig;

struct NAdamConfig {
  double lr = 2e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.0;
  double momentum_decay = 4e-3;
  bool maximize = false;
  bool decoupled_weight_decay = false;

  void validate() const {
    validate_adam_family(*this);
    require_finite_nonneg("momentum_decay", momentum_decay);
  }
};

struct RAdamConfig {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.0;
  bool maximize = false;
  bool decoupled_weight_decay = false;

  void validate() const {
    validate_adam_family(*this);
  }
};

}  // namespace gradstep

// Everything below runs inside the kernels, so it lives in the per-architecture
// namespace (see common.hpp); only the configurations above are shared.
GRADSTEP_KERNELS_BEGIN

template <class T>
struct AdamCoeffs {
  GradPrep<T> prep;
  Lerp<T> m_lerp;  // m <- lerp(m, g, 1 - beta1)
  T beta2, one_minus_beta2, inv_bias_correction2_sqrt, neg_step_size, eps;
  bool amsgrad;

  static AdamCoeffs make(const AdamConfig& c, std::int64_t step) {
    const double t = static_cast<double>(step);
    const double bc1 = 1.0 - std::pow(c.beta1, t);
    const double bc2 = 1.0 - std::pow(c.beta2, t);
    return {GradPrep<T>::make(c.lr, c.weight_decay, c.maximize, c.decoupled_weight_decay),
            Lerp<T>::make(1.0 - c.beta1), T(c.beta2), T(1.0 - c.beta2), T(1.0 / std::sqrt(bc2)),
            T(-c.lr / bc1), T(c.eps), c.amsgrad};
  }
};

template <class T>
struct AdamaxCoeffs {
  GradPrep<T> prep;
  Lerp<T> m_lerp;
  T beta2, eps, neg_clr;

  static AdamaxCoeffs make(const AdamaxConfig& c, std::int64_t step) {
    const double bc1 = 1.0 - std::pow(c.beta1, static_cast<double>(step));
    return {GradPrep<T>::make(c.lr, c.weight_decay, c.maximize, false),
            Lerp<T>::make(1.0 - c.beta1), T(c.beta2), T(c.eps), T(-c.lr / bc1)};
  }
};

// NAdam keeps prod_t (mu_product) per tensor; nadam_mu(c, t) gives mu_t so the
// caller can advance it once per step before computing the coefficients.
inline double nadam_mu(const NAdamConfig& c, std::int64_t step) {
  return c.beta1 * (1.0 - 0.5 * std::pow(0.96, static_cast<double>(step) * c.momentum_decay));
}

template <class T>
struct NAdamCoeffs {
  GradPrep<T> prep;
  Lerp<T> m_lerp;
  T beta2, one_minus_beta2, inv_bias_correction2, eps, neg_grad_coef, neg_avg_coef;

  // mu_product is prod_t, i.e. already multiplied by mu_t.
  static NAdamCoeffs make(const NAdamConfig& c, std::int64_t step, double mu_product) {
    const double mu = nadam_mu(c, step);
    const double mu_next = nadam_mu(c, step + 1);
    const double bc2 = 1.0 - std::pow(c.beta2, static_cast<double>(step));
    return {GradPrep<T>::make(c.lr, c.weight_decay, c.maximize, c.decoupled_weight_decay),
            Lerp<T>::make(1.0 - c.beta1),
            T(c.beta2),
            T(1.0 - c.beta2),
            T(1.0 / bc2),
            T(c.eps),
            T(-c.lr * (1.0 - mu) / (1.0 - mu_product)),
            T(-c.lr * mu_next / (1.0 - mu_product * mu_next))};
  }
};

template <class T>
struct RAdamCoeffs {
  GradPrep<T> prep;
  Lerp<T> m_lerp;
  T beta2, one_minus_beta2, lr_over_bias_correction1, bias_correction2_sqrt, rect, eps;
  bool rectified;

  static RAdamCoeffs make(const RAdamConfig& c, std::int64_t step) {
    const double t = static_cast<double>(step);
    const double beta2_t = std::pow(c.beta2, t);
    const double bc1 = 1.0 - std::pow(c.beta1, t);
    const double bc2 = 1.0 - beta2_t;
    const double rho_inf = 2.0 / (1.0 - c.beta2) - 1.0;
    const double rho_t = rho_inf - 2.0 * t * beta2_t / bc2;
    const bool rectified = rho_t > 5.0;
    const double rect = rectified ? std::sqrt((rho_t - 4.0) * (rho_t - 2.0) * rho_inf /
                                              ((rho_inf - 4.0) * (rho_inf - 2.0) * rho_t))
                                  : 0.0;
    return {GradPrep<T>::make(c.lr, c.weight_decay, c.maximize, c.decoupled_weight_decay),
            Lerp<T>::make(1.0 - c.beta1),
            T(c.beta2),
            T(1.0 - c.beta2),
            T(c.lr / bc1),
            T(std::sqrt(bc2)),
            T(rect),
            T(c.eps),
            rectified};
  }
};

namespace detail {
template <class T, bool AMSGRAD>
void adam_loop(T* GRADSTEP_RESTRICT p, const T* GRADSTEP_RESTRICT g, T* GRADSTEP_RESTRICT m,
               T* GRADSTEP_RESTRICT v, T* GRADSTEP_RESTRICT vmax, std::size_t n,
               const AdamCoeffs<T>& k) noexcept {
  for (std::size_t i = 0; i < n; ++i) {
    const T gi = k.prep.sign * g[i] + k.prep.wd * p[i];
    const T pi = p[i] * k.prep.decay;
    const T mi = k.m_lerp(m[i], gi);
    T vi = v[i] * k.beta2 + k.one_minus_beta2 * gi * gi;
    m[i] = mi;
    v[i] = vi;
    if constexpr (AMSGRAD) {
      vi = vmax[i] > vi ? vmax[i] : vi;
      vmax[i] = vi;
    }
    const T denom = std::sqrt(vi) * k.inv_bias_correction2_sqrt + k.eps;
    p[i] = pi + k.neg_step_size * mi / denom;
  }
}
}  // namespace detail

// One Adam step over n elements. vmax may be null unless coefficients have amsgrad set.
template <class T>
void adam_update(T* p, const T* g, T* m, T* v, T* vmax, std::size_t n,
                 const AdamCoeffs<T>& k) noexcept {
  if (k.amsgrad) {
    detail::adam_loop<T, true>(p, g, m, v, vmax, n, k);
  } else {
    detail::adam_loop<T, false>(p, g, m, v, vmax, n, k);
  }
}

// Adam step number `step` (1-based) on one contiguous tensor. Call c.validate() first.
template <class T>
void adam_step(T* p, const T* g, T* m, T* v, T* vmax, std::size_t n, std::int64_t step,
               const AdamConfig& c) noexcept {
  adam_update(p, g, m, v, vmax, n, AdamCoeffs<T>::make(c, step));
}

template <class T>
void adamax_update(T* GRADSTEP_RESTRICT p, const T* GRADSTEP_RESTRICT g, T* GRADSTEP_RESTRICT m,
                   T* GRADSTEP_RESTRICT u, std::size_t n, const AdamaxCoeffs<T>& k) noexcept {
  for (std::size_t i = 0; i < n; ++i) {
    const T gi = k.prep.sign * g[i] + k.prep.wd * p[i];
    const T mi = k.m_lerp(m[i], gi);
    const T decayed = u[i] * k.beta2;
    const T mag = std::abs(gi) + k.eps;
    const T ui = decayed > mag ? decayed : mag;
    m[i] = mi;
    u[i] = ui;
    p[i] = p[i] + k.neg_clr * mi / ui;
  }
}

template <class T>
void adamax_step(T* p, const T* g, T* m, T* u, std::size_t n, std::int64_t step,
                 const AdamaxConfig& c) noexcept {
  adamax_update(p, g, m, u, n, AdamaxCoeffs<T>::make(c, step));
}

template <class T>
void nadam_update(T* GRADSTEP_RESTRICT p, const T* GRADSTEP_RESTRICT g, T* GRADSTEP_RESTRICT m,
                  T* GRADSTEP_RESTRICT v, std::size_t n, const NAdamCoeffs<T>& k) noexcept {
  for (std::size_t i = 0; i < n; ++i) {
    const T gi = k.prep.sign * g[i] + k.prep.wd * p[i];
    const T pi = p[i] * k.prep.decay;
    const T mi = k.m_lerp(m[i], gi);
    const T vi = v[i] * k.beta2 + k.one_minus_beta2 * gi * gi;
    m[i] = mi;
    v[i] = vi;
    const T inv_denom = T(1) / (std::sqrt(vi * k.inv_bias_correction2) + k.eps);
    const T q = pi + k.neg_grad_coef * gi * inv_denom;
    p[i] = q + k.neg_avg_coef * mi * inv_denom;
  }
}

// NAdam step `step`; *mu_product holds prod_{t-1} on entry and prod_t on return.
template <class T>
void nadam_step(T* p, const T* g, T* m, T* v, double* mu_product, std::size_t n,
                std::int64_t step, const NAdamConfig& c) noexcept {
  *mu_product *= nadam_mu(c, step);
  nadam_update(p, g, m, v, n, NAdamCoeffs<T>::make(c, step, *mu_product));
}

namespace detail {
template <class T, bool RECTIFIED>
void radam_loop(T* GRADSTEP_RESTRICT p, const T* GRADSTEP_RESTRICT g, T* GRADSTEP_RESTRICT m,
                T* GRADSTEP_RESTRICT v, std::size_t n, const RAdamCoeffs<T>& k) noexcept {
  for (std::size_t i = 0; i < n; ++i) {
    const T gi = k.prep.sign * g[i] + k.prep.wd * p[i];
    const T pi = p[i] * k.prep.decay;
    const T mi = k.m_lerp(m[i], gi);
    const T vi = v[i] * k.beta2 + k.one_minus_beta2 * gi * gi;
    m[i] = mi;
    v[i] = vi;
    const T corrected = mi * k.lr_over_bias_correction1;
    if constexpr (RECTIFIED) {
      const T adaptive = k.bias_correction2_sqrt / (std::sqrt(vi) + k.eps);
      p[i] = pi - corrected * adaptive * k.rect;
    } else {
      p[i] = pi - corrected;
    }
  }
}
}  // namespace detail

template <class T>
void radam_update(T* p, const T* g, T* m, T* v, std::size_t n, const RAdamCoeffs<T>& k) noexcept {
  if (k.rectified) {
    detail::radam_loop<T, true>(p, g, m, v, n, k);
  } else {
    detail::radam_loop<T, false>(p, g, m, v, n, k);
  }
}

template <class T>
void radam_step(T* p, const T* g, T* m, T* v, std::size_t n, std::int64_t step,
                const RAdamConfig& c) noexcept {
  radam_update(p, g, m, v, n, RAdamCoeffs<T>::make(c, step));
}

// Multi-tensor Adam over a parameter group; state order: exp_avg, exp_avg_sq, max_exp_avg_sq (null without amsgrad).
template <class T>
void adam_multi(const TensorBatch<T>& b, const AdamConfig& c, Executor& executor) noexcept {
  run_multi_tensor<T, AdamCoeffs<T>>(
      b, executor, [&](std::size_t) {},
      [&](std::int64_t step, double) { return AdamCoeffs<T>::make(c, step); },
      [&](std::size_t i, std::size_t o, std::size_t n, const AdamCoeffs<T>& k) {
        adam_update(b.params[i] + o, b.grads[i] + o, at(b.state(i, 0), o), at(b.state(i, 1), o), at(b.state(i, 2), o), n, k);
      });
}

// Multi-tensor Adamax over a parameter group; state order: exp_avg, exp_inf.
template <class T>
void adamax_multi(const TensorBatch<T>& b, const AdamaxConfig& c, Executor& executor) noexcept {
  run_multi_tensor<T, AdamaxCoeffs<T>>(
      b, executor, [&](std::size_t) {},
      [&](std::int64_t step, double) { return AdamaxCoeffs<T>::make(c, step); },
      [&](std::size_t i, std::size_t o, std::size_t n, const AdamaxCoeffs<T>& k) {
        adamax_update(b.params[i] + o, b.grads[i] + o, at(b.state(i, 0), o), at(b.state(i, 1), o), n, k);
      });
}

// Multi-tensor NAdam over a parameter group; state order: exp_avg, exp_avg_sq; scalars hold mu_product.
template <class T>
void nadam_multi(const TensorBatch<T>& b, const NAdamConfig& c, Executor& executor) noexcept {
  run_multi_tensor<T, NAdamCoeffs<T>>(
      b, executor, [&](std::size_t i) { b.scalars[i] *= nadam_mu(c, b.steps[i]); },
      [&](std::int64_t step, double mu_product) { return NAdamCoeffs<T>::make(c, step, mu_product); },
      [&](std::size_t i, std::size_t o, std::size_t n, const NAdamCoeffs<T>& k) {
        nadam_update(b.params[i] + o, b.grads[i] + o, at(b.state(i, 0), o), at(b.state(i, 1), o), n, k);
      });
}

// Multi-tensor RAdam over a parameter group; state order: exp_avg, exp_avg_sq.
template <class T>
void radam_multi(const TensorBatch<T>& b, const RAdamConfig& c, Executor& executor) noexcept {
  run_multi_tensor<T, RAdamCoeffs<T>>(
      b, executor, [&](std::size_t) {},
      [&](std::int64_t step, double) { return RAdamCoeffs<T>::make(c, step); },
      [&](std::size_t i, std::size_t o, std::size_t n, const RAdamCoeffs<T>& k) {
        radam_update(b.params[i] + o, b.grads[i] + o, at(b.state(i, 0), o), at(b.state(i, 1), o), n, k);
      });
}

GRADSTEP_KERNELS_END
