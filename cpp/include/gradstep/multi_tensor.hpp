// gradstep/multi_tensor.hpp: one call updates every tensor of a parameter group.
//
// A TensorBatch describes the group as raw pointers. run_multi_tensor splits
// the concatenated elements of the tensors being updated into contiguous
// ranges, one per task, so ten thousand tiny tensors cost one call and one
// huge tensor is shared by every thread. Per-step coefficients depend only on
// a tensor's step (and optional scalar state), so they are computed once per
// run of tensors with the same step, never per element.
#pragma once

#include <cstddef>
#include <cstdint>

#include "common.hpp"
#include "parallel.hpp"

namespace gradstep {

template <class T>
struct TensorBatch {
  std::size_t count = 0;
  T* const* params = nullptr;          // [count]
  const T* const* grads = nullptr;     // [count]; a null entry skips that tensor
  T* const* states = nullptr;          // [count * n_states], states[i * n_states + k]
  std::size_t n_states = 0;
  const std::size_t* sizes = nullptr;  // [count] elements per tensor
  std::int64_t* steps = nullptr;       // [count] steps taken; advanced for each updated tensor
  double* scalars = nullptr;           // [count] per-tensor scalar state, or null

  T* state(std::size_t i, std::size_t k) const noexcept { return states[i * n_states + k]; }
};

// Below this many elements per task, splitting costs more than it saves: a
// task must outlast handing it to a spinning worker (about a microsecond); an
// Adam step over 2^14 float32 elements in cache takes about 10 us.
constexpr std::size_t kMinElementsPerTask = 1 << 14;
// A step is cut into up to this many tasks per thread, so that a worker that
// wakes late (a sleeping thread can take hundreds of microseconds to run on a
// virtual machine) finds little left, and the caller, which takes tasks too,
// never waits long for it. More tasks would cost more: each one finds its first
// tensor by a scan over the group.
constexpr std::size_t kTasksPerThread = 4;
// Small steps run on the calling thread alone when the workers are asleep (no job
// for a while, e.g. a forward and backward pass since the last step): see
// worth_splitting in parallel.hpp.
// Task boundaries fall on multiples of this many elements (a cache line or more).
constexpr std::size_t kTaskAlignment = 64;

}  // namespace gradstep

GRADSTEP_KERNELS_BEGIN

// p + offset, keeping null (an unused state buffer) null.
template <class T>
inline T* at(T* p, std::size_t offset) noexcept {
  return p == nullptr ? nullptr : p + offset;
}

// prepare(i) runs serially once per updated tensor after its step has been
// advanced (for per-tensor scalar state); make(step, scalar) builds the
// coefficients; update(i, offset, length, coeffs) runs the element loop.
template <class T, class Coeffs, class Prepare, class Make, class Update>
void run_multi_tensor(const TensorBatch<T>& b, Executor& executor, Prepare prepare, Make make,
                      Update update) noexcept {
  std::size_t total = 0;
  for (std::size_t i = 0; i < b.count; ++i) {
    if (b.grads[i] == nullptr) continue;
    b.steps[i] += 1;
    prepare(i);
    total += b.sizes[i];
  }
  if (total == 0) return;
  std::size_t n_tasks = 1;
  const std::size_t threads = executor.concurrency();
  if (threads > 1 && total >= 2 * kMinElementsPerTask && worth_splitting(executor, total)) {
    n_tasks = total / kMinElementsPerTask;
    if (n_tasks > kTasksPerThread * threads) n_tasks = kTasksPerThread * threads;
  }

  struct Job {
    const TensorBatch<T>* batch;
    std::size_t total, n_tasks;
    Make* make;
    Update* update;
  } job{&b, total, n_tasks, &make, &update};

  auto task = [](void* context, std::size_t t) {
    const Job& j = *static_cast<const Job*>(context);
    const TensorBatch<T>& batch = *j.batch;
    auto boundary = [&](std::size_t k) {
      if (k >= j.n_tasks) return j.total;
      return (j.total / j.n_tasks * k) / kTaskAlignment * kTaskAlignment;
    };
    const std::size_t lo = boundary(t), hi = boundary(t + 1);
    if (lo >= hi) return;
    std::size_t pos = 0;
    bool have = false;
    std::int64_t last_step = 0;
    double last_scalar = 0.0;
    Coeffs k{};
    for (std::size_t i = 0; i < batch.count && pos < hi; ++i) {
      if (batch.grads[i] == nullptr) continue;
      const std::size_t n = batch.sizes[i];
      if (pos + n > lo && n > 0) {
        const std::size_t begin = (lo > pos ? lo : pos) - pos;
        const std::size_t end = (hi < pos + n ? hi : pos + n) - pos;
        const std::int64_t step = batch.steps[i];
        const double scalar = batch.scalars != nullptr ? batch.scalars[i] : 0.0;
        if (!have || step != last_step || scalar != last_scalar) {
          k = (*j.make)(step, scalar);
          have = true;
          last_step = step;
          last_scalar = scalar;
        }
        (*j.update)(i, begin, end - begin, k);
      }
      pos += n;
    }
  };
  executor.parallel_for(n_tasks, task, &job);
}

GRADSTEP_KERNELS_END
