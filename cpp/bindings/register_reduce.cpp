// Bindings of the reductions: sum of squares (global gradient norm), the finite
// check, and in-place scaling, each over a list of arrays in one call.
//
// Work is cut into blocks of gradstep::kReduceBlock elements at fixed offsets
// within each array; blocks run on the thread pool and their partial results
// are combined in block order, so results do not depend on the thread count.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "checks.hpp"
#include "kernel_table.hpp"
#include "runtime.hpp"

namespace gradstep_bindings {

namespace {

struct Block {
  const void* data;
  std::size_t length;
  bool is_double;
};

// Checked views of `arrays` (None entries skipped) cut into blocks.
std::vector<Block> blocks_of(const py::list& arrays, const char* what, bool writable,
                             std::vector<py::array>& keep) {
  std::vector<Block> blocks;
  for (std::size_t i = 0; i < arrays.size(); ++i) {
    py::handle obj = arrays[i];
    if (obj.is_none()) continue;
    const std::string name = std::string(what) + "[" + std::to_string(i) + "]";
    const bool is_double = is_array_of<double>(obj);
    py::array a = is_double ? checked_array<double>(obj, name, writable)
                            : checked_array<float>(obj, name, writable);
    const auto n = static_cast<std::size_t>(a.size());
    const std::size_t itemsize = is_double ? sizeof(double) : sizeof(float);
    const char* base = static_cast<const char*>(a.data());
    for (std::size_t off = 0; off < n; off += gradstep::kReduceBlock) {
      const std::size_t len = std::min(gradstep::kReduceBlock, n - off);
      blocks.push_back({base + off * itemsize, len, is_double});
    }
    keep.push_back(std::move(a));
  }
  return blocks;
}

// Runs fn(block_index) over all blocks on the pool (GIL released).
template <class Fn>
void for_blocks(std::size_t n_blocks, Fn fn) {
  if (n_blocks == 0) return;
  auto exec = executor();
  struct Ctx {
    Fn* fn;
    std::size_t n_blocks, n_tasks;
  } ctx{&fn, n_blocks, std::min(n_blocks, exec->concurrency())};
  py::gil_scoped_release release;
  exec->parallel_for(
      ctx.n_tasks,
      [](void* c, std::size_t t) {
        auto& x = *static_cast<Ctx*>(c);
        for (std::size_t b = t; b < x.n_blocks; b += x.n_tasks) (*x.fn)(b);
      },
      &ctx);
}

double sum_squares(const py::list& arrays) {
  std::vector<py::array> keep;
  const auto blocks = blocks_of(arrays, "arrays", false, keep);
  std::vector<double> partial(blocks.size());
  const KernelTable& k = active_kernels();
  for_blocks(blocks.size(), [&](std::size_t b) {
    const Block& blk = blocks[b];
    partial[b] = blk.is_double ? k.f64.sum_squares(static_cast<const double*>(blk.data), blk.length)
                               : k.f32.sum_squares(static_cast<const float*>(blk.data), blk.length);
  });
  double total = 0.0;
  for (double x : partial) total += x;
  return total;
}

bool all_finite(const py::list& arrays) {
  std::vector<py::array> keep;
  const auto blocks = blocks_of(arrays, "arrays", false, keep);
  std::vector<unsigned char> ok(blocks.size(), 1);
  const KernelTable& k = active_kernels();
  for_blocks(blocks.size(), [&](std::size_t b) {
    const Block& blk = blocks[b];
    ok[b] = blk.is_double ? k.f64.all_finite(static_cast<const double*>(blk.data), blk.length)
                          : k.f32.all_finite(static_cast<const float*>(blk.data), blk.length);
  });
  for (unsigned char x : ok) {
    if (!x) return false;
  }
  return true;
}

void scale(const py::list& arrays, double factor) {
  std::vector<py::array> keep;
  const auto blocks = blocks_of(arrays, "arrays", true, keep);
  const KernelTable& k = active_kernels();
  for_blocks(blocks.size(), [&](std::size_t b) {
    const Block& blk = blocks[b];
    if (blk.is_double) {
      k.f64.scale(static_cast<double*>(const_cast<void*>(blk.data)), blk.length, factor);
    } else {
      k.f32.scale(static_cast<float*>(const_cast<void*>(blk.data)), blk.length,
                  static_cast<float>(factor));
    }
  });
}

}  // namespace

void register_reduce(py::module_& m) {
  m.def("sum_squares", &sum_squares, py::arg("arrays"),
        "Sum of squares of every element of float32/float64 arrays (None skipped), "
        "accumulated in double; deterministic for any thread count.");
  m.def("all_finite", &all_finite, py::arg("arrays"),
        "True when no element of the arrays (None skipped) is NaN or infinite.");
  m.def("scale_", &scale, py::arg("arrays"), py::arg("factor"),
        "Multiply every element of the arrays in place by factor (cast once to each dtype).");
}

}  // namespace gradstep_bindings
