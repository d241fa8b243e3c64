// Bindings of the L-BFGS two-loop recursion (cpp/include/gradstep/lbfgs.hpp).
#include <pybind11/pybind11.h>

namespace py = pybind11;

namespace gradstep_bindings {

void register_lbfgs(py::module_& m) { (void)m; }

}  // namespace gradstep_bindings
