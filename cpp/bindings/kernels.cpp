// Compiled once per SIMD level; see kernel_table.hpp. No Python here.
#include "kernel_table.hpp"

#define GRADSTEP_STR2(x) #x
#define GRADSTEP_STR(x) GRADSTEP_STR2(x)
#define GRADSTEP_CAT2(a, b) a##b
#define GRADSTEP_CAT(a, b) GRADSTEP_CAT2(a, b)

namespace gradstep_bindings {

namespace {
template <class T>
KernelSet<T> kernel_set() {
  namespace k = gradstep::GRADSTEP_ARCH;
  return {&k::sgd_multi<T>,   &k::adagrad_multi<T>, &k::adadelta_multi<T>,
          &k::rmsprop_multi<T>, &k::rprop_multi<T>,   &k::adam_multi<T>,
          &k::adamax_multi<T>,  &k::nadam_multi<T>,   &k::radam_multi<T>,
          &k::sum_squares<T>,   &k::all_finite<T>,    &k::scale<T>,
          k::lbfgs_kernels<T>()};
}
}  // namespace

KernelTable GRADSTEP_CAT(kernel_table_, GRADSTEP_ARCH)() {
  return {GRADSTEP_STR(GRADSTEP_ARCH), kernel_set<float>(), kernel_set<double>()};
}

}  // namespace gradstep_bindings
