// gradstep/sgd.hpp: stochastic gradient descent with momentum, Nesterov momentum,
// L1/L2 penalties and decoupled weight decay (SGDW).
//
// With torch.optim.SGD's conventions (Sutskever et al., 2013, for the momentum form):
//   g <- -g if maximize;  g <- g + wd * p + l1 * sign(p)   (coupled penalties)
//   p <- p * (1 - lr * wd)                                  (decoupled: SGDW, Loshchilov & Hutter 2019)
//   b <- g on the first step, else b <- momentum * b + (1 - dampening) * g
//   d <- g + momentum * b if nesterov, else b   (d = g without momentum)
//   p <- p - lr * d
#pragma once

#include "common.hpp"
#include "multi_tensor.hpp"

namespace gradstep {

struct SGDConfig {
  double lr = 1e-3;
  double momentum = 0.0;
  double dampening = 0.0;
  double weight_decay = 0.0;
  double l1 = 0.0;
  bool nesterov = false;
  bool maximize = false;
  bool decoupled_weight_decay = false;

  void validate() const {
    require_finite_nonneg("lr", lr);
    require(std::isfinite(momentum) && momentum >= 0.0, "momentum", "finite and >= 0", momentum);
    require(std::isfinite(dampening), "dampening", "finite", dampening);
    require_finite_nonneg("weight_decay", weight_decay);
    require_finite_nonneg("l1", l1);
    if (nesterov) {
      require(momentum > 0.0 && dampening == 0.0, "nesterov",
              "used with momentum > 0 and dampening = 0; momentum is", momentum);
    }
  }
};

}  // namespace gradstep

GRADSTEP_KERNELS_BEGIN

template <class T>
struct SGDCoeffs {
  GradPrep<T> prep;
  T l1, buffer_decay, grad_scale, nesterov_momentum, neg_lr;
  bool use_momentum, nesterov;

  // On the first step the buffer (zero-initialised) becomes the gradient
  // itself: 0 * b + 1 * g is exact.
  static SGDCoeffs make(const SGDConfig& c, std::int64_t step) {
    const bool first = step == 1;
    return {GradPrep<T>::make(c.lr, c.weight_decay, c.maximize, c.decoupled_weight_decay),
            T(c.l1),
            T(first ? 0.0 : c.momentum),
            T(first ? 1.0 : 1.0 - c.dampening),
            T(c.momentum),
            T(-c.lr),
            c.momentum != 0.0,
            c.nesterov};
  }
};

namespace detail {
template <class T, bool MOMENTUM, bool NESTEROV>
void sgd_loop(T* GRADSTEP_RESTRICT p, const T* GRADSTEP_RESTRICT g, T* GRADSTEP_RESTRICT buf,
              std::size_t n, const SGDCoeffs<T>& k) noexcept {
  for (std::size_t i = 0; i < n; ++i) {
    const T pi = p[i];
    T sign_p = pi > T(0) ? T(1) : T(0);
    sign_p = pi < T(0) ? T(-1) : sign_p;
    T d = k.prep.sign * g[i] + k.prep.wd * pi + k.l1 * sign_p;
    if constexpr (MOMENTUM) {
      const T b = buf[i] * k.buffer_decay + k.grad_scale * d;
      buf[i] = b;
      if constexpr (NESTEROV) {
        d = d + k.nesterov_momentum * b;
      } else {
        d = b;
      }
    }
    p[i] = pi * k.prep.decay + k.neg_lr * d;
  }
}
}  // namespace detail

// buf may be null when momentum == 0.
template <class T>
void sgd_update(T* p, const T* g, T* buf, std::size_t n, const SGDCoeffs<T>& k) noexcept {
  if (!k.use_momentum) {
    detail::sgd_loop<T, false, false>(p, g, buf, n, k);
  } else if (k.nesterov) {
    detail::sgd_loop<T, true, true>(p, g, buf, n, k);
  } else {
    detail::sgd_loop<T, true, false>(p, g, buf, n, k);
  }
}

template <class T>
void sgd_step(T* p, const T* g, T* buf, std::size_t n, std::int64_t step,
              const SGDConfig& c) noexcept {
  sgd_update(p, g, buf, n, SGDCoeffs<T>::make(c, step));
}

// Multi-tensor SGD over a parameter group; state order: momentum_buffer (null without momentum).
template <class T>
void sgd_multi(const TensorBatch<T>& b, const SGDConfig& c, Executor& executor) noexcept {
  run_multi_tensor<T, SGDCoeffs<T>>(
      b, executor, [&](std::size_t) {},
      [&](std::int64_t step, double) { return SGDCoeffs<T>::make(c, step); },
      [&](std::size_t i, std::size_t o, std::size_t n, const SGDCoeffs<T>& k) {
        sgd_update(b.params[i] + o, b.grads[i] + o, at(b.state(i, 0), o), n, k);
      });
}

GRADSTEP_KERNELS_END
