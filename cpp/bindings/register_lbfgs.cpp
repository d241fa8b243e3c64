// Bindings of the L-BFGS two-loop recursion (cpp/include/gradstep/lbfgs.hpp).
//
//   LBFGSHistory(n, history=10, dtype="float64", curvature_eps=None)
//     .push(s, y) -> bool             stores the pair unless its curvature is too small
//     .push_difference(x_new, x_old, g_new, g_old) -> bool
//     .two_loop(g, out, scale=1.0) -> g'out   out = scale * H g
//   cauchy_point(x, g, lo, hi, W, M, theta) -> (xcp, c, t, breakpoints)   L-BFGS-B's GCP
//     .clear(); .size, .capacity, .count, .gamma, .dtype, .pair(j) -> (s, y) copies
//   add_scaled(out, x, alpha, d)      out = x + alpha * d
//   add_scaled_clip(out, x, alpha, d, lo, hi)   out = clip(x + alpha * d, lo, hi)
//   take_gradient(out, g, d) -> (g'd, ||g||_inf)  out = g, with the dot and the norm
//
// Every array is taken as it is (exact dtype, C-contiguous, the history's size);
// all checks run before any buffer is written, then the GIL is released for
// vectors long enough to be worth it.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <gradstep/lbfgs.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "checks.hpp"
#include "kernel_table.hpp"
#include "runtime.hpp"

namespace py = pybind11;

namespace gradstep_bindings {

namespace {

// Below this length the loop is shorter than dropping and retaking the GIL.
constexpr std::size_t kReleaseGilFrom = 4096;

class OptionalRelease {
 public:
  explicit OptionalRelease(bool release) {
    if (release) release_.emplace();
  }

 private:
  std::optional<py::gil_scoped_release> release_;
};

// Runs fn(block, lo, hi) over the fixed blocks (kReduceBlock elements) of an
// element-wise pass: on the thread pool when there are several, inline otherwise.
template <class Fn>
void for_element_ranges(std::size_t n, Fn fn) {
  if (gradstep::blocks_of(n, gradstep::kReduceBlock) <= 1) {
    fn(0, 0, n);
    return;
  }
  gradstep::for_each_block(*executor(), n, gradstep::kReduceBlock, fn);
}

template <class T>
py::array sized_array(py::handle obj, const char* what, bool writable, std::size_t n) {
  py::array a = checked_array<T>(obj, what, writable);
  if (static_cast<std::size_t>(a.size()) != n) {
    throw py::value_error(std::string(what) + " has " + std::to_string(a.size()) +
                          " elements (shape " + shape_str(a) + "), expected " + std::to_string(n) +
                          " (the size of this LBFGSHistory)");
  }
  return a;
}


class PyLBFGSHistory {
 public:
  PyLBFGSHistory(py::ssize_t n, py::ssize_t history, const py::object& dtype,
                 std::optional<double> curvature_eps) {
    if (n < 0) throw py::value_error("n must be >= 0, got " + std::to_string(n));
    if (history < 1) throw py::value_error("history must be >= 1, got " + std::to_string(history));
    py::dtype dt = py::dtype::from_args(dtype);
    if (dt.equal(py::dtype::of<float>())) {
      single_ = true;
    } else if (dt.equal(py::dtype::of<double>())) {
      single_ = false;
    } else {
      throw py::type_error("dtype must be float32 or float64, got " +
                           py::str(dt).cast<std::string>());
    }
    gradstep::LBFGSConfig config;
    config.history = static_cast<std::size_t>(history);
    config.curvature_eps = curvature_eps.value_or(single_ ? double(std::numeric_limits<float>::epsilon())
                                                          : std::numeric_limits<double>::epsilon());
    try {
      config.validate();
    } catch (const std::invalid_argument& e) {
      throw py::value_error(e.what());
    }
    const auto size = static_cast<std::size_t>(n);
    // Bytes: 2 (m + 1) n sizeof(T). Fail with a clear message rather than std::bad_alloc.
    try {
      // The loops of the SIMD level in use (kept for the history's lifetime).
      if (single_) {
        f32_ = std::make_unique<gradstep::LBFGSHistory<float>>(
            size, config, kernels_of<float>(active_kernels()).lbfgs);
      } else {
        f64_ = std::make_unique<gradstep::LBFGSHistory<double>>(
            size, config, kernels_of<double>(active_kernels()).lbfgs);
      }
    } catch (const std::bad_alloc&) {
      throw py::value_error("cannot allocate an LBFGSHistory of " + std::to_string(n) +
                            " elements and history " + std::to_string(history));
    }
  }

  std::size_t size() const { return single_ ? f32_->size() : f64_->size(); }
  std::size_t capacity() const { return single_ ? f32_->capacity() : f64_->capacity(); }
  std::size_t count() const { return single_ ? f32_->count() : f64_->count(); }
  double gamma() const { return single_ ? f32_->gamma() : f64_->gamma(); }
  double curvature_eps() const {
    return single_ ? f32_->config().curvature_eps : f64_->config().curvature_eps;
  }
  py::dtype dtype() const { return single_ ? py::dtype::of<float>() : py::dtype::of<double>(); }

  void clear() {
    std::lock_guard<std::mutex> lock(mutex_);
    if (single_) f32_->clear(); else f64_->clear();
  }

  bool push(py::handle s, py::handle y) {
    return single_ ? push_t<float>(*f32_, s, y) : push_t<double>(*f64_, s, y);
  }
  bool push_difference(py::handle x_new, py::handle x_old, py::handle g_new, py::handle g_old) {
    return single_ ? push_difference_t<float>(*f32_, x_new, x_old, g_new, g_old)
                   : push_difference_t<double>(*f64_, x_new, x_old, g_new, g_old);
  }
  double two_loop(py::handle g, py::handle out, double scale) {
    return single_ ? two_loop_t<float>(*f32_, g, out, scale)
                   : two_loop_t<double>(*f64_, g, out, scale);
  }
  py::tuple pair(py::ssize_t j) const {
    const auto k = static_cast<py::ssize_t>(count());
    if (j < -k || j >= k) {
      throw py::index_error("pair index " + std::to_string(j) + " out of range for " +
                            std::to_string(k) + " stored pairs");
    }
    const auto idx = static_cast<std::size_t>(j < 0 ? j + k : j);
    return single_ ? pair_t<float>(*f32_, idx) : pair_t<double>(*f64_, idx);
  }

 private:
  template <class T>
  bool push_t(gradstep::LBFGSHistory<T>& h, py::handle s_obj, py::handle y_obj) {
    py::array s = sized_array<T>(s_obj, "s", false, h.size());
    py::array y = sized_array<T>(y_obj, "y", false, h.size());
    const T* sp = static_cast<const T*>(s.data());
    const T* yp = static_cast<const T*>(y.data());
    const auto pool = executor();
    OptionalRelease release(h.size() >= kReleaseGilFrom);
    std::lock_guard<std::mutex> lock(mutex_);
    return h.push(sp, yp, *pool);
  }

  template <class T>
  bool push_difference_t(gradstep::LBFGSHistory<T>& h, py::handle x1_obj, py::handle x0_obj,
                         py::handle g1_obj, py::handle g0_obj) {
    py::array x1 = sized_array<T>(x1_obj, "x_new", false, h.size());
    py::array x0 = sized_array<T>(x0_obj, "x_old", false, h.size());
    py::array g1 = sized_array<T>(g1_obj, "g_new", false, h.size());
    py::array g0 = sized_array<T>(g0_obj, "g_old", false, h.size());
    const T* x1p = static_cast<const T*>(x1.data());
    const T* x0p = static_cast<const T*>(x0.data());
    const T* g1p = static_cast<const T*>(g1.data());
    const T* g0p = static_cast<const T*>(g0.data());
    const auto pool = executor();
    OptionalRelease release(h.size() >= kReleaseGilFrom);
    std::lock_guard<std::mutex> lock(mutex_);
    return h.push_difference(x1p, x0p, g1p, g0p, *pool);
  }

  template <class T>
  double two_loop_t(gradstep::LBFGSHistory<T>& h, py::handle g_obj, py::handle out_obj,
                    double scale) {
    py::array g = sized_array<T>(g_obj, "g", false, h.size());
    py::array out = sized_array<T>(out_obj, "out", true, h.size());
    if (!std::isfinite(scale)) {
      throw py::value_error("scale must be finite, got " + std::to_string(scale));
    }
    if (overlaps(g, out)) {
      throw py::value_error("out shares memory with g; pass a separate output array");
    }
    const T* gp = static_cast<const T*>(g.data());
    T* op = static_cast<T*>(out.mutable_data());
    const auto pool = executor();
    OptionalRelease release(h.size() * (h.count() + 1) >= kReleaseGilFrom);
    std::lock_guard<std::mutex> lock(mutex_);
    return h.two_loop(gp, op, scale, *pool);
  }

  template <class T>
  py::tuple pair_t(const gradstep::LBFGSHistory<T>& h, std::size_t j) const {
    const auto n = static_cast<py::ssize_t>(h.size());
    py::array_t<T, py::array::c_style> s(n), y(n);  // new outputs
    std::copy(h.s_at(j), h.s_at(j) + h.size(), s.mutable_data());
    std::copy(h.y_at(j), h.y_at(j) + h.size(), y.mutable_data());
    return py::make_tuple(s, y);
  }

  bool single_ = false;
  std::unique_ptr<gradstep::LBFGSHistory<float>> f32_;
  std::unique_ptr<gradstep::LBFGSHistory<double>> f64_;
  // Calls release the GIL, so two Python threads could otherwise share one history.
  std::mutex mutex_;
};

template <class T>
void add_scaled_t(py::array out, py::handle x_obj, double alpha, py::handle d_obj) {
  py::array x = checked_array<T>(x_obj, "x", false, &out, "out");
  py::array d = checked_array<T>(d_obj, "d", false, &out, "out");
  if (overlaps(out, d) && out.data() != d.data()) {
    throw py::value_error("out partially overlaps d; pass a separate output array");
  }
  if (overlaps(out, x) && out.data() != x.data()) {
    throw py::value_error("out partially overlaps x; pass a separate output array");
  }
  if (out.data() == d.data() || out.data() == x.data()) {
    // In place: restrict does not hold, so take the element-wise safe path.
    T* op = static_cast<T*>(out.mutable_data());
    const T* xp = static_cast<const T*>(x.data());
    const T* dp = static_cast<const T*>(d.data());
    const T a = T(alpha);
    for (py::ssize_t i = 0; i < out.size(); ++i) op[i] = xp[i] + a * dp[i];
    return;
  }
  const T* xp = static_cast<const T*>(x.data());
  const T* dp = static_cast<const T*>(d.data());
  T* op = static_cast<T*>(out.mutable_data());
  const auto n = static_cast<std::size_t>(out.size());
  const auto add = kernels_of<T>(active_kernels()).lbfgs.add_scaled;
  OptionalRelease release(n >= kReleaseGilFrom);
  for_element_ranges(n, [&](std::size_t, std::size_t lo, std::size_t hi) {
    add(op + lo, xp + lo, alpha, dp + lo, hi - lo);
  });
}

void add_scaled(py::handle out_obj, py::handle x, double alpha, py::handle d) {
  if (!std::isfinite(alpha)) {
    throw py::value_error("alpha must be finite, got " + std::to_string(alpha));
  }
  if (is_array_of<float>(out_obj)) {
    py::array out = checked_array<float>(out_obj, "out", true);
    add_scaled_t<float>(out, x, alpha, d);
  } else {
    py::array out = checked_array<double>(out_obj, "out", true);
    add_scaled_t<double>(out, x, alpha, d);
  }
}


template <class T>
void add_scaled_clip_t(py::array out, py::handle x_obj, double alpha, py::handle d_obj,
                       py::handle lo_obj, py::handle hi_obj) {
  py::array x = checked_array<T>(x_obj, "x", false, &out, "out");
  py::array d = checked_array<T>(d_obj, "d", false, &out, "out");
  py::array lo = checked_array<T>(lo_obj, "lo", false, &out, "out");
  py::array hi = checked_array<T>(hi_obj, "hi", false, &out, "out");
  for (const auto* a : {&x, &d, &lo, &hi}) {
    if (overlaps(out, *a)) throw py::value_error("out shares memory with an input array");
  }
  const auto n = static_cast<std::size_t>(out.size());
  T* op = static_cast<T*>(out.mutable_data());
  const T* xp = static_cast<const T*>(x.data());
  const T* dp = static_cast<const T*>(d.data());
  const T* lop = static_cast<const T*>(lo.data());
  const T* hip = static_cast<const T*>(hi.data());
  const auto add_clip = kernels_of<T>(active_kernels()).lbfgs.add_scaled_clip;
  OptionalRelease release(n >= kReleaseGilFrom);
  for_element_ranges(n, [&](std::size_t, std::size_t a, std::size_t b) {
    add_clip(op + a, xp + a, alpha, dp + a, lop + a, hip + a, b - a);
  });
}

void add_scaled_clip(py::handle out_obj, py::handle x, double alpha, py::handle d, py::handle lo,
                     py::handle hi) {
  if (!std::isfinite(alpha)) {
    throw py::value_error("alpha must be finite, got " + std::to_string(alpha));
  }
  if (is_array_of<float>(out_obj)) {
    add_scaled_clip_t<float>(checked_array<float>(out_obj, "out", true), x, alpha, d, lo, hi);
  } else {
    add_scaled_clip_t<double>(checked_array<double>(out_obj, "out", true), x, alpha, d, lo, hi);
  }
}

template <class T>
py::tuple take_gradient_t(py::array out, py::handle g_obj, py::handle d_obj) {
  py::array g = checked_array<T>(g_obj, "g", false, &out, "out");
  py::array d = checked_array<T>(d_obj, "d", false, &out, "out");
  if (overlaps(out, g) || overlaps(out, d)) {
    throw py::value_error("out shares memory with g or d; pass a separate output array");
  }
  const auto n = static_cast<std::size_t>(out.size());
  T* op = static_cast<T*>(out.mutable_data());
  const T* gp = static_cast<const T*>(g.data());
  const T* dp = static_cast<const T*>(d.data());
  // One summary per task, combined in task order: the same bits for any thread count.
  const auto take = kernels_of<T>(active_kernels()).lbfgs.take_gradient;
  std::vector<gradstep::GradientSummary> parts(
      std::max<std::size_t>(1, gradstep::blocks_of(n, gradstep::kReduceBlock)));
  {
    OptionalRelease release(n >= kReleaseGilFrom);
    for_element_ranges(n, [&](std::size_t b, std::size_t lo, std::size_t hi) {
      parts[b] = take(op + lo, gp + lo, dp + lo, hi - lo);
    });
  }
  gradstep::GradientSummary r = parts[0];
  for (std::size_t t = 1; t < parts.size(); ++t) {
    r.dot += parts[t].dot;
    // max() would drop a NaN norm; NaN marks a non-finite gradient and must survive.
    r.inf_norm = (std::isnan(r.inf_norm) || std::isnan(parts[t].inf_norm))
                     ? NAN : std::max(r.inf_norm, parts[t].inf_norm);
  }
  return py::make_tuple(r.dot, r.inf_norm);
}

py::tuple take_gradient(py::handle out_obj, py::handle g, py::handle d) {
  if (is_array_of<float>(out_obj)) {
    return take_gradient_t<float>(checked_array<float>(out_obj, "out", true), g, d);
  }
  return take_gradient_t<double>(checked_array<double>(out_obj, "out", true), g, d);
}

py::tuple cauchy_point(py::handle x_obj, py::handle g_obj, py::handle lo_obj, py::handle hi_obj,
                       py::handle w_obj, py::handle m_obj, double theta) {
  py::array x = checked_array<double>(x_obj, "x", false);
  if (x.ndim() != 1) throw py::value_error("x must be 1-D, got shape " + shape_str(x));
  py::array g = checked_array<double>(g_obj, "g", false, &x, "x");
  py::array lo = checked_array<double>(lo_obj, "lo", false, &x, "x");
  py::array hi = checked_array<double>(hi_obj, "hi", false, &x, "x");
  py::array w = checked_array<double>(w_obj, "W", false);
  py::array mm = checked_array<double>(m_obj, "M", false);
  const auto n = static_cast<std::size_t>(x.size());
  if (w.ndim() != 2 || static_cast<std::size_t>(w.shape(0)) != n) {
    throw py::value_error("W must have shape (n, m2) with n = " + std::to_string(n) + ", got " +
                          shape_str(w));
  }
  const auto m2 = static_cast<std::size_t>(w.shape(1));
  if (mm.ndim() != 2 || static_cast<std::size_t>(mm.shape(0)) != m2 ||
      static_cast<std::size_t>(mm.shape(1)) != m2) {
    throw py::value_error("M must have shape (" + std::to_string(m2) + ", " + std::to_string(m2) +
                          "), got " + shape_str(mm));
  }
  if (!(std::isfinite(theta) && theta > 0.0)) {
    throw py::value_error("theta must be finite and > 0, got " + std::to_string(theta));
  }
  py::array_t<double, py::array::c_style> xcp(static_cast<py::ssize_t>(n));
  py::array_t<double, py::array::c_style> c(static_cast<py::ssize_t>(m2));
  std::vector<double> t(n), d(n), p(m2), mw(m2);
  std::vector<std::size_t> heap(n);
  gradstep::CauchyProblem pr;
  pr.n = n;
  pr.m2 = m2;
  pr.x = static_cast<const double*>(x.data());
  pr.g = static_cast<const double*>(g.data());
  pr.lo = static_cast<const double*>(lo.data());
  pr.hi = static_cast<const double*>(hi.data());
  pr.W = static_cast<const double*>(w.data());
  pr.M = static_cast<const double*>(mm.data());
  pr.theta = theta;
  gradstep::CauchyWorkspace ws{t.data(), d.data(), heap.data(), p.data(), mw.data()};
  gradstep::CauchyResult r;
  {
    OptionalRelease release(n >= kReleaseGilFrom);
    r = gradstep::cauchy_point(pr, ws, xcp.mutable_data(), c.mutable_data());
  }
  return py::make_tuple(xcp, c, r.t, r.breakpoints);
}

}  // namespace

void register_lbfgs(py::module_& m) {
  py::class_<PyLBFGSHistory>(m, "LBFGSHistory",
                             "The last `history` (s, y) pairs of L-BFGS and the two-loop "
                             "recursion over them (cpp/include/gradstep/lbfgs.hpp).")
      .def(py::init<py::ssize_t, py::ssize_t, const py::object&, std::optional<double>>(),
           py::arg("n"), py::arg("history") = 10, py::arg("dtype") = "float64",
           py::arg("curvature_eps") = py::none())
      .def_property_readonly("size", &PyLBFGSHistory::size)
      .def_property_readonly("capacity", &PyLBFGSHistory::capacity)
      .def_property_readonly("count", &PyLBFGSHistory::count)
      .def_property_readonly("gamma", &PyLBFGSHistory::gamma)
      .def_property_readonly("curvature_eps", &PyLBFGSHistory::curvature_eps)
      .def_property_readonly("dtype", &PyLBFGSHistory::dtype)
      .def("clear", &PyLBFGSHistory::clear)
      .def("push", &PyLBFGSHistory::push, py::arg("s"), py::arg("y"),
           "Stores (s, y) unless s'y <= curvature_eps * y'y or non-finite; returns whether "
           "it was stored.")
      .def("push_difference", &PyLBFGSHistory::push_difference, py::arg("x_new"),
           py::arg("x_old"), py::arg("g_new"), py::arg("g_old"),
           "push(x_new - x_old, g_new - g_old) in one pass.")
      .def("two_loop", &PyLBFGSHistory::two_loop, py::arg("g"), py::arg("out"),
           py::arg("scale") = 1.0,
           "out = scale * H g by the two-loop recursion (2k passes over n, split across "
           "the thread pool in lockstep from 2^13 elements); returns g' out.")
      .def("pair", &PyLBFGSHistory::pair, py::arg("j"),
           "Copies of the j-th stored pair (s, y), 0 the oldest.");
  m.def("add_scaled", &add_scaled, py::arg("out"), py::arg("x"), py::arg("alpha"), py::arg("d"),
        "out = x + alpha * d (same dtype and shape, no conversion).");
  m.def("add_scaled_clip", &add_scaled_clip, py::arg("out"), py::arg("x"), py::arg("alpha"),
        py::arg("d"), py::arg("lo"), py::arg("hi"),
        "out = clip(x + alpha * d, lo, hi) in one pass (same dtype and shape, no conversion).");
  m.def("cauchy_point", &cauchy_point, py::arg("x"), py::arg("g"), py::arg("lo"), py::arg("hi"),
        py::arg("W"), py::arg("M"), py::arg("theta"),
        "The generalized Cauchy point of L-BFGS-B for B = theta I - W M W' (float64): "
        "returns (xcp, c = W'(xcp - x), t, breakpoints passed).");
  m.def("take_gradient", &take_gradient, py::arg("out"), py::arg("g"), py::arg("d"),
        "out = g; returns (g' d, max |g_i|) from the same pass (the norm is NaN if g has "
        "NaN or Inf). d may be g.");
}

}  // namespace gradstep_bindings
