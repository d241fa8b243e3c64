// Argument checks shared by the bindings. Every check runs before any buffer
// is written; a failure raises TypeError or ValueError naming the argument.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstddef>
#include <string>

namespace gradstep_bindings {

namespace py = pybind11;

inline std::string type_name(py::handle obj) {
  return py::str(py::type::handle_of(obj).attr("__name__")).cast<std::string>();
}

inline std::string dtype_name(const py::array& a) {
  return py::str(a.dtype()).cast<std::string>();
}

inline std::string shape_str(const py::array& a) {
  std::string s = "(";
  for (py::ssize_t d = 0; d < a.ndim(); ++d) {
    s += std::to_string(a.shape(d));
    if (a.ndim() == 1 || d + 1 < a.ndim()) s += a.ndim() == 1 ? "," : ", ";
  }
  return s + ")";
}

// True when `obj` is an ndarray whose dtype is exactly T's (native byte order).
// A test only: nothing is converted, so no in-place update can land in a copy.
template <class T>
bool is_array_of(py::handle obj) {
  const auto& api = py::detail::npy_api::get();
  if (!api.PyArray_Check_(obj.ptr())) return false;
  PyObject* descr = py::detail::array_proxy(obj.ptr())->descr;
  return api.PyArray_EquivTypes_(descr, py::dtype::of<T>().ptr());
}

template <class T>
const char* dtype_label() {
  return sizeof(T) == 4 ? "float32" : "float64";
}

inline bool same_shape(const py::array& a, const py::array& b) {
  if (a.ndim() != b.ndim()) return false;
  for (py::ssize_t d = 0; d < a.ndim(); ++d) {
    if (a.shape(d) != b.shape(d)) return false;
  }
  return true;
}

// An ndarray of exactly dtype T, C-contiguous and (if `writable`) writeable,
// shaped like `like` when given. Never converts: a mismatch is an error.
template <class T>
py::array checked_array(py::handle obj, const std::string& what, bool writable,
                        const py::array* like = nullptr, const std::string& like_what = "") {
  if (!py::isinstance<py::array>(obj)) {
    throw py::type_error(what + " must be a numpy.ndarray of " + dtype_label<T>() + ", got " +
                         type_name(obj));
  }
  auto a = py::reinterpret_borrow<py::array>(obj);
  if (!is_array_of<T>(obj)) {
    throw py::type_error(what + " has dtype " + dtype_name(a) + ", expected " + dtype_label<T>() +
                         (like_what.empty() ? "" : " (the dtype of " + like_what + ")") +
                         "; gradstep never converts arrays");
  }
  if (!(a.flags() & py::array::c_style)) {
    throw py::value_error(what + " is not C-contiguous (shape " + shape_str(a) +
                          "); gradstep works in place and never copies, so pass a C-contiguous "
                          "array");
  }
  if (writable && !a.writeable()) {
    throw py::value_error(what + " is read-only; it must be a writeable array");
  }
  if (like != nullptr && !same_shape(a, *like)) {
    throw py::value_error(what + " has shape " + shape_str(a) + ", expected " + shape_str(*like) +
                          " (the shape of " + like_what + ")");
  }
  return a;
}

inline bool overlaps(const py::array& a, const py::array& b) {
  const auto* a0 = static_cast<const char*>(a.data());
  const auto* b0 = static_cast<const char*>(b.data());
  const auto an = static_cast<std::size_t>(a.nbytes());
  const auto bn = static_cast<std::size_t>(b.nbytes());
  return an != 0 && bn != 0 && a0 < b0 + bn && b0 < a0 + an;
}

}  // namespace gradstep_bindings

namespace gradstep_bindings {

// The fast acceptance test behind checked_array, with no allocation: true when
// `obj` is an ndarray of exactly dtype T in native byte order, C-contiguous,
// writeable if asked, and (if `like` is given) of the same shape. Callers fall
// back to checked_array, which throws the descriptive error, when it is false.
template <class T>
inline bool array_ok(PyObject* obj, bool writable, PyObject* like = nullptr) {
  namespace d = py::detail;
  const auto& api = d::npy_api::get();
  if (!api.PyArray_Check_(obj)) return false;
  const auto* a = d::array_proxy(obj);
  const auto* desc = d::array_descriptor_proxy(a->descr);
  constexpr int type = sizeof(T) == 4 ? d::npy_api::NPY_FLOAT_ : d::npy_api::NPY_DOUBLE_;
  if (desc->type_num != type || desc->byteorder == '>' || desc->byteorder == '<') {
    // '<' is native on little-endian machines; let the slow path decide exactly.
    if (desc->type_num != type) return false;
    if (!is_array_of<T>(obj)) return false;
  }
  int need = d::npy_api::NPY_ARRAY_C_CONTIGUOUS_;
  if (writable) need |= d::npy_api::NPY_ARRAY_WRITEABLE_;
  if ((a->flags & need) != need) return false;
  if (like != nullptr) {
    const auto* b = d::array_proxy(like);
    if (a->nd != b->nd) return false;
    for (int k = 0; k < a->nd; ++k) {
      if (a->dimensions[k] != b->dimensions[k]) return false;
    }
  }
  return true;
}

inline std::size_t array_size(PyObject* obj) {
  const auto* a = py::detail::array_proxy(obj);
  std::size_t n = 1;
  for (int k = 0; k < a->nd; ++k) n *= static_cast<std::size_t>(a->dimensions[k]);
  return n;
}

inline char* array_data(PyObject* obj) { return py::detail::array_proxy(obj)->data; }

inline bool overlaps_raw(PyObject* x, std::size_t nx, PyObject* y, std::size_t ny,
                         std::size_t itemsize) {
  const char* a0 = array_data(x);
  const char* b0 = array_data(y);
  return nx != 0 && ny != 0 && a0 < b0 + ny * itemsize && b0 < a0 + nx * itemsize;
}

}  // namespace gradstep_bindings
