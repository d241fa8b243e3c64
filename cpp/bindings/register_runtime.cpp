// Runtime controls: SIMD level, threads, build information.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdlib>
#include <string>

#include "runtime.hpp"

namespace py = pybind11;

#define GRADSTEP_STR2(x) #x
#define GRADSTEP_STR(x) GRADSTEP_STR2(x)

namespace gradstep_bindings {

namespace {
std::string compiler() {
#if defined(__clang__)
  return std::string("clang ") + __clang_version__;
#elif defined(__GNUC__)
  return std::string("gcc ") + __VERSION__;
#elif defined(_MSC_VER)
  return "msvc " GRADSTEP_STR(_MSC_FULL_VER);
#else
  return "unknown";
#endif
}
}  // namespace

void register_runtime(py::module_& m) {
  // GRADSTEP_SIMD=<level> forces a level (e.g. baseline) for testing; an
  // unsupported or unknown value is an import error rather than a silent fallback.
  if (const char* forced = std::getenv("GRADSTEP_SIMD"); forced != nullptr && *forced != '\0') {
    select_level(forced);
  } else {
    select_level("");
  }
  m.def("simd_levels_built", &levels_built, "SIMD levels compiled into this module, lowest first.");
  m.def("simd_level_supported", &best_supported_level,
        "The best SIMD level this CPU supports among those built.");
  m.def("simd_level", [] { return std::string(active_kernels().level); },
        "The SIMD level in use.");
  m.def("set_simd_level", &select_level, py::arg("level"),
        "Use the kernels of `level` ('' = the best supported).");
  m.def("get_num_threads", &get_num_threads);
  m.def("set_num_threads", [](long long n) {
    if (n < 1) throw py::value_error("num_threads must be >= 1, got " + std::to_string(n));
    set_num_threads(static_cast<std::size_t>(n));
  }, py::arg("num_threads"));
  m.def("available_cores", &available_cores);
  m.def("compiler", &compiler);
#if defined(GRADSTEP_VERSION)
  m.def("version", [] { return std::string(GRADSTEP_VERSION); });
#else
  m.def("version", [] { return std::string("unknown"); });
#endif
}

}  // namespace gradstep_bindings
