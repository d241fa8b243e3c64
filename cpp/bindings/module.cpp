// gradstep._core: the pybind11 module. Each register_* function binds one area.
#include <pybind11/pybind11.h>

namespace py = pybind11;

namespace gradstep_bindings {
void register_runtime(py::module_& m);
void register_optimizers(py::module_& m);
void register_lbfgs(py::module_& m);
void register_reduce(py::module_& m);
}  // namespace gradstep_bindings

PYBIND11_MODULE(_core, m) {
  m.doc() = "gradstep's C++ kernels (internal: use the gradstep package)";
  gradstep_bindings::register_runtime(m);
  gradstep_bindings::register_optimizers(m);
  gradstep_bindings::register_lbfgs(m);
  gradstep_bindings::register_reduce(m);
}
