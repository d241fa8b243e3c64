// gradstep/rmsprop.hpp: RMSprop (Hinton, Coursera lecture 6e, 2012), centered
// variant (Graves, 2013, eq. 38-40), with torch.optim's conventions:
//   g <- -g if maximize;  g <- g + wd * p
//   s <- alpha * s + (1 - alpha) * g^2
//   centered: a <- a + (1 - alpha) * (g - a);  r = sqrt(s - a^2) + eps;  else r = sqrt(s) + eps
//   momentum > 0: b <- momentum * b + g / r;  p <- p - lr * b
//   else:         p <- p - lr * g / r
#pragma once

#include "common.hpp"
#include "multi_tensor.hpp"

namespace gradstep {

struct RMSpropConfig {
  double lr = 1e-2;
  double alpha = 0.99;
  double eps = 1e-8;
  double weight_decay = 0.0;
  double momentum = 0.0;
  bool centered = false;
  bool maximize = false;

  void validate() const {
    require_finite_nonneg("lr", lr);
    require(alpha >= 0.0 && alpha <= 1.0, "alpha", "in [0, 1]", alpha);
    require_finite_nonneg("eps", eps);
    require_finite_nonneg("weight_decay", weight_decay);
    require_finite_nonneg("momentum", momentum);
  }
};

}  // namespace gradstep

GRADSTEP_KERNELS_BEGIN

template <class T>
struct RMSpropCoeffs {
  GradPrep<T> prep;
  T alpha, one_minus_alpha, eps, momentum, neg_lr;
  Lerp<T> avg_lerp;  // grad_avg <- lerp(grad_avg, g, 1 - alpha), as torch
  bool centered, use_momentum;

  static RMSpropCoeffs make(const RMSpropConfig& c, std::int64_t /*step*/) {
    return {GradPrep<T>::make(c.lr, c.weight_decay, c.maximize, false),
            T(c.alpha),
            T(1.0 - c.alpha),
            T(c.eps),
            T(c.momentum),
            T(-c.lr),
            Lerp<T>::make(1.0 - c.alpha),
            c.centered,
            c.momentum > 0.0};
  }
};

namespace detail {
template <class T, bool CENTERED, bool MOMENTUM>
void rmsprop_loop(T* GRADSTEP_RESTRICT p, const T* GRADSTEP_RESTRICT g,
                  T* GRADSTEP_RESTRICT square_avg, T* GRADSTEP_RESTRICT grad_avg,
                  T* GRADSTEP_RESTRICT buf, std::size_t n, const RMSpropCoeffs<T>& k) noexcept {
  for (std::size_t i = 0; i < n; ++i) {
    const T gi = k.prep.sign * g[i] + k.prep.wd * p[i];
    const T si = square_avg[i] * k.alpha + k.one_minus_alpha * gi * gi;
    square_avg[i] = si;
    T avg;
    if constexpr (CENTERED) {
      const T ai = k.avg_lerp(grad_avg[i], gi);
      grad_avg[i] = ai;
      avg = std::sqrt(si - ai * ai) + k.eps;
    } else {
      avg = std::sqrt(si) + k.eps;
    }
    if constexpr (MOMENTUM) {
      const T b = buf[i] * k.momentum + gi / avg;
      buf[i] = b;
      p[i] = p[i] + k.neg_lr * b;
    } else {
      p[i] = p[i] + k.neg_lr * gi / avg;
    }
  }
}
}  // namespace detail

// grad_avg may be null unless centered; buf may be null unless momentum > 0.
template <class T>
void rmsprop_update(T* p, const T* g, T* square_avg, T* grad_avg, T* buf, std::size_t n,
                    const RMSpropCoeffs<T>& k) noexcept {
  if (k.centered) {
    if (k.use_momentum) {
      detail::rmsprop_loop<T, true, true>(p, g, square_avg, grad_avg, buf, n, k);
    } else {
      detail::rmsprop_loop<T, true, false>(p, g, square_avg, grad_avg, buf, n, k);
    }
  } else if (k.use_momentum) {
    detail::rmsprop_loop<T, false, true>(p, g, square_avg, grad_avg, buf, n, k);
  } else {
    detail::rmsprop_loop<T, false, false>(p, g, square_avg, grad_avg, buf, n, k);
  }
}

template <class T>
void rmsprop_step(T* p, const T* g, T* square_avg, T* grad_avg, T* buf, std::size_t n,
                  std::int64_t step, const RMSpropConfig& c) noexcept {
  rmsprop_update(p, g, square_avg, grad_avg, buf, n, RMSpropCoeffs<T>::make(c, step));
}

// Multi-tensor RMSprop over a parameter group; state order: square_avg, grad_avg (null unless centered), momentum_buffer (null without momentum).
template <class T>
void rmsprop_multi(const TensorBatch<T>& b, const RMSpropConfig& c, Executor& executor) noexcept {
  run_multi_tensor<T, RMSpropCoeffs<T>>(
      b, executor, [&](std::size_t) {},
      [&](std::int64_t step, double) { return RMSpropCoeffs<T>::make(c, step); },
      [&](std::size_t i, std::size_t o, std::size_t n, const RMSpropCoeffs<T>& k) {
        rmsprop_update(b.params[i] + o, b.grads[i] + o, at(b.state(i, 0), o), at(b.state(i, 1), o), at(b.state(i, 2), o), n, k);
      });
}

GRADSTEP_KERNELS_END
