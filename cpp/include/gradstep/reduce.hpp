// gradstep/reduce.hpp: the reductions around a step: squared L2 norm (for
// global-norm gradient clipping), the finite check (for the non-finite guard)
// and in-place scaling.
//
// sum_squares accumulates in double over kLanes independent partial sums
// combined in a fixed order, so it vectorises without -ffast-math and gives
// the same bits for a given length wherever it runs. Callers that split work
// across threads split at fixed block boundaries (kReduceBlock) and add the
// block sums in order, so the total does not depend on the thread count.
#pragma once

#include "common.hpp"

namespace gradstep {
constexpr std::size_t kReduceBlock = 1 << 16;
}  // namespace gradstep

GRADSTEP_KERNELS_BEGIN

template <class T>
double sum_squares(const T* GRADSTEP_RESTRICT x, std::size_t n) noexcept {
  constexpr std::size_t kLanes = 16;
  double acc[kLanes] = {};
  std::size_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    for (std::size_t j = 0; j < kLanes; ++j) {
      const double v = static_cast<double>(x[i + j]);
      acc[j] += v * v;
    }
  }
  for (std::size_t j = 0; i < n; ++i, ++j) {
    const double v = static_cast<double>(x[i]);
    acc[j] += v * v;
  }
  // Pairwise, in a fixed order.
  for (std::size_t width = kLanes / 2; width > 0; width /= 2) {
    for (std::size_t j = 0; j < width; ++j) acc[j] += acc[j + width];
  }
  return acc[0];
}

// True when every element is finite. x * 0 is 0 for finite x and NaN for
// Inf or NaN, so one branch-free pass decides.
template <class T>
bool all_finite(const T* GRADSTEP_RESTRICT x, std::size_t n) noexcept {
  constexpr std::size_t kLanes = 16;
  T acc[kLanes] = {};
  std::size_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    for (std::size_t j = 0; j < kLanes; ++j) acc[j] += x[i + j] * T(0);
  }
  T tail = T(0);
  for (; i < n; ++i) tail += x[i] * T(0);
  for (std::size_t j = 0; j < kLanes; ++j) tail += acc[j];
  return tail == T(0);
}

template <class T>
void scale(T* GRADSTEP_RESTRICT x, std::size_t n, T factor) noexcept {
  for (std::size_t i = 0; i < n; ++i) x[i] *= factor;
}

GRADSTEP_KERNELS_END
