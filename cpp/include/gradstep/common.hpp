// gradstep/common.hpp: what every kernel header shares.
//
// The kernels are plain C++17 templates over float/double that walk raw
// pointers. They never allocate, never throw once their configuration has
// been validated, and keep no global state, so a C++ program can call them
// directly and the Python bindings can run them with the GIL released.
//
// Runtime SIMD dispatch compiles the same kernel source several times with
// different target flags. Each copy must have distinct symbols, otherwise
// the linker may hand the AVX-512 copy of an inline template to a caller
// compiled for an older CPU. The kernels therefore live in an inline
// namespace named by GRADSTEP_ARCH (default `baseline`): C++ users write
// gradstep::adam_step and never see it; a dispatch translation unit defines
// GRADSTEP_ARCH=x86_64_v3 (say) before including the headers.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

#ifndef GRADSTEP_ARCH
#define GRADSTEP_ARCH baseline
#endif

#define GRADSTEP_KERNELS_BEGIN \
  namespace gradstep {         \
  inline namespace GRADSTEP_ARCH {
#define GRADSTEP_KERNELS_END \
  }                          \
  }

#if defined(_MSC_VER)
#define GRADSTEP_RESTRICT __restrict
#else
#define GRADSTEP_RESTRICT __restrict__
#endif

namespace gradstep {

// Throws std::invalid_argument("<name> must be <what>, got <value>").
inline void require(bool ok, const char* name, const char* what, double value) {
  if (!ok) {
    std::string msg = std::string(name) + " must be " + what + ", got " + std::to_string(value);
    throw std::invalid_argument(msg);
  }
}

inline void require_finite_nonneg(const char* name, double value) {
  require(std::isfinite(value) && value >= 0.0, name, "finite and >= 0", value);
}

inline void require_unit_interval(const char* name, double value) {
  require(value >= 0.0 && value < 1.0, name, "in [0, 1)", value);
}

inline void require_step(std::int64_t step) {
  require(step >= 1, "step", ">= 1 (steps are counted from 1)", static_cast<double>(step));
}

}  // namespace gradstep

GRADSTEP_KERNELS_BEGIN

// The gradient transform most optimizers share, as torch.optim applies it:
// g' = sign * g + wd * p (sign = -1 to maximize, wd the coupled L2 penalty) and
// p' = decay * p (decay = 1 - lr * wd for decoupled weight decay). Multiplying by
// exactly 1 and adding exactly 0 * p leave values unchanged, so one branch-free
// loop serves every combination.
template <class T>
struct GradPrep {
  T sign, wd, decay;
  static GradPrep make(double lr, double weight_decay, bool maximize, bool decoupled) {
    return {T(maximize ? -1.0 : 1.0), T(decoupled ? 0.0 : weight_decay),
            T(decoupled ? 1.0 - lr * weight_decay : 1.0)};
  }
};


// torch.lerp(start, end, w) as torch evaluates it, so moving averages (Adam's
// m <- lerp(m, g, 1 - beta1)) follow torch.optim to the last bit for any weight:
// start + w (end - start) for |w| < 0.5, else end - (end - start) (1 - w). The
// second form is exact at w = 1: with beta1 = 0, m must become g, and m + (g - m)
// can lose a small g entirely to cancellation against a large m (float32,
// m = 1000, g = 1e-5 gives 0). As in torch, 1 - w is formed in T.
template <class T>
struct Lerp {
  T weight, rest;
  bool from_end;
  static Lerp make(double w) {
    const T wt = T(w);
    return {wt, T(1) - wt, !(std::fabs(w) < 0.5)};
  }
  T operator()(T start, T end) const noexcept {
    return from_end ? end - (end - start) * rest : start + weight * (end - start);
  }
};

GRADSTEP_KERNELS_END
