// The kernels of one SIMD level, as function pointers.
//
// kernels.cpp is compiled once per level (baseline, x86-64-v3, x86-64-v4) with
// GRADSTEP_ARCH naming the level, so each copy has its own symbols; dispatch.cpp
// picks one table at import time from the CPU's features.
#pragma once

#include <gradstep/gradstep.hpp>

namespace gradstep_bindings {

template <class Config, class T>
using MultiFn = void (*)(const gradstep::TensorBatch<T>&, const Config&,
                         gradstep::Executor&) noexcept;

template <class T>
struct KernelSet {
  MultiFn<gradstep::SGDConfig, T> sgd;
  MultiFn<gradstep::AdagradConfig, T> adagrad;
  MultiFn<gradstep::AdadeltaConfig, T> adadelta;
  MultiFn<gradstep::RMSpropConfig, T> rmsprop;
  MultiFn<gradstep::RpropConfig, T> rprop;
  MultiFn<gradstep::AdamConfig, T> adam;
  MultiFn<gradstep::AdamaxConfig, T> adamax;
  MultiFn<gradstep::NAdamConfig, T> nadam;
  MultiFn<gradstep::RAdamConfig, T> radam;
  double (*sum_squares)(const T*, std::size_t) noexcept;
  bool (*all_finite)(const T*, std::size_t) noexcept;
  void (*scale)(T*, std::size_t, T) noexcept;
  gradstep::LBFGSKernels<T> lbfgs;
};

struct KernelTable {
  const char* level;
  KernelSet<float> f32;
  KernelSet<double> f64;
};

template <class T>
const KernelSet<T>& kernels_of(const KernelTable& table);
template <>
inline const KernelSet<float>& kernels_of<float>(const KernelTable& table) {
  return table.f32;
}
template <>
inline const KernelSet<double>& kernels_of<double>(const KernelTable& table) {
  return table.f64;
}

// One per compiled level; only those built on this platform are defined.
KernelTable kernel_table_baseline();
KernelTable kernel_table_x86_64_v3();
KernelTable kernel_table_x86_64_v4();

// The table in use (chosen once, at import).
const KernelTable& active_kernels();

}  // namespace gradstep_bindings
