// gradstep/parallel.hpp: how multi-tensor steps are split across threads.
//
// An Executor runs n independent tasks and returns when all are done. The
// kernels only see this interface; SerialExecutor runs everything on the
// calling thread and ThreadPool keeps persistent workers. Element-wise updates
// give the same bits however the work is split (every element sees the same
// operations in the same order), so results never depend on the thread count.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#if defined(_M_X64) || defined(_M_IX86)
#include <immintrin.h>
#endif

namespace gradstep {

class Executor {
 public:
  using TaskFn = void (*)(void* context, std::size_t task);
  virtual ~Executor() = default;
  // How many tasks can usefully run at once (1 = serial).
  virtual std::size_t concurrency() const noexcept = 0;
  // Calls fn(context, t) for t in [0, n_tasks), possibly concurrently; returns when all are done.
  virtual void parallel_for(std::size_t n_tasks, TaskFn fn, void* context) noexcept = 0;
  // True when no worker would have to be woken from sleep to help: callers split
  // small jobs only then (waking a thread can cost more than a small job).
  virtual bool awake() const noexcept { return true; }
  // A stable index of the calling thread within the executor (0 for the thread
  // that calls parallel_for): lockstep() keeps each member on the same thread
  // from one call to the next, so its part of the data stays in that core's cache.
  virtual std::size_t thread_index() const noexcept { return 0; }
};

// A job over fewer elements than this (elements read or written, summed over its
// passes) runs on the calling thread alone when the workers are asleep: measured
// on a 2-vCPU VM, waking one cost a 5e4-element Adam step more than the second
// thread saved (the caller waits for a worker that joined late and runs slowly),
// while from 5e5 elements it paid 1.5x. (Waking them during such a step, for the
// next one, cost ~20 us of futex wake per step and paid only when steps follow
// each other within the workers' spin.)
constexpr std::size_t kMinElementsToWake = 1 << 18;

// Whether a job over `elements` may be split across the executor's threads: when no
// worker has to be woken for it, or when the job is big enough to pay for the wake.
inline bool worth_splitting(const Executor& executor, std::size_t elements) noexcept {
  return elements >= kMinElementsToWake || executor.awake();
}

class SerialExecutor final : public Executor {
 public:
  std::size_t concurrency() const noexcept override { return 1; }
  void parallel_for(std::size_t n_tasks, TaskFn fn, void* context) noexcept override {
    for (std::size_t t = 0; t < n_tasks; ++t) fn(context, t);
  }
};

// Runs body(b, lo, hi) for the blocks [b * block, min(n, (b + 1) * block)) of n
// elements, one task per block. The blocks depend on n and block only, never on
// the thread count, so sums kept per block and added in block order give the
// same bits however many threads ran them.
inline std::size_t blocks_of(std::size_t n, std::size_t block) noexcept {
  return (n + block - 1) / block;
}

template <class Body>
void for_each_block(Executor& executor, std::size_t n, std::size_t block, Body& body) noexcept {
  struct Context {
    Body* body;
    std::size_t n, block;
  } ctx{&body, n, block};
  executor.parallel_for(
      blocks_of(n, block),
      [](void* c, std::size_t b) {
        auto* x = static_cast<Context*>(c);
        const std::size_t lo = b * x->block;
        (*x->body)(b, lo, lo + x->block < x->n ? lo + x->block : x->n);
      },
      &ctx);
}

// Pauses the calling core briefly inside a spin-wait loop.
inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(_M_X64) || defined(_M_IX86)
  _mm_pause();
#elif defined(__aarch64__)
  __asm__ __volatile__("yield");
#endif
}

namespace detail {
// The index ThreadPool gives the worker running on this thread (0 elsewhere).
inline std::size_t& pool_thread_index() noexcept {
  static thread_local std::size_t index = 0;
  return index;
}
}  // namespace detail

// Runs step(member, pass) for every member in [0, members) and pass in [0, passes),
// all of pass p before any of pass p + 1, so a step may read what every member
// wrote in earlier passes (partial sums, say). Each member's steps run on one
// thread, preferably the thread with the member's index, so a member that works
// on one part of the data keeps that part in its core's cache across passes and
// across calls; a pool dispatch per pass would cost as much as a short pass.
//
// No thread waits for one that has not started: a member still unclaimed when
// another thread needs its first pass is claimed and run by that thread, so a
// worker that is asleep, busy or absent (a serial executor) only means fewer
// threads. Between passes, threads spin. With more than kMaxLockstepMembers
// members, everything runs on the calling thread.
constexpr std::size_t kMaxLockstepMembers = 64;

template <class Step>
void lockstep(Executor& executor, std::size_t members, std::size_t passes, Step& step) noexcept {
  if (members <= 1 || members > kMaxLockstepMembers || executor.concurrency() <= 1) {
    for (std::size_t p = 0; p < passes; ++p) {
      for (std::size_t m = 0; m < members; ++m) step(m, p);
    }
    return;
  }
  struct alignas(64) Member {
    std::atomic<bool> claimed{false};
    std::atomic<std::size_t> done{0};  // passes finished
  };
  struct Team {
    Step* step;
    std::size_t members, passes;
    Executor* executor;
    Member member[kMaxLockstepMembers];
  } team{&step, members, passes, &executor, {}};
  auto run = [](void* context, std::size_t) {
    auto* t = static_cast<Team*>(context);
    const std::size_t count = t->members;
    auto claim = [t](std::size_t m) {
      return !t->member[m].claimed.load(std::memory_order_relaxed) &&
             !t->member[m].claimed.exchange(true, std::memory_order_acq_rel);
    };
    auto advance = [t](std::size_t m, std::size_t p) {
      (*t->step)(m, p);
      t->member[m].done.store(p + 1, std::memory_order_release);
    };
    // My own member first; else any other still unclaimed; else nothing left to do.
    std::uint64_t own = 0;
    const std::size_t mine = t->executor->thread_index() % count;
    for (std::size_t i = 0; i < count && own == 0; ++i) {
      const std::size_t m = (mine + i) % count;
      if (claim(m)) own = std::uint64_t{1} << m;
    }
    if (own == 0) return;
    for (std::size_t p = 0; p < t->passes; ++p) {
      for (std::size_t m = 0; m < count; ++m) {
        if (own >> m & 1) advance(m, p);
      }
      for (std::size_t m = 0; m < count; ++m) {
        if (own >> m & 1) continue;
        while (t->member[m].done.load(std::memory_order_acquire) <= p) {
          if (p == 0 && claim(m)) {  // its thread never came: run it here
            own |= std::uint64_t{1} << m;
            advance(m, 0);
            break;
          }
          cpu_relax();
        }
      }
    }
  };
  executor.parallel_for(team.members, run, &team);
}

// A fixed set of worker threads. The calling thread takes part in every job,
// so ThreadPool(1) starts no thread at all. One job runs at a time (a mutex
// serialises concurrent callers).
//
// Waking a sleeping thread costs tens of microseconds on a virtual machine,
// as much as a whole step over 10^5 elements, so workers spin for a short
// while (kSpin) after each job before they sleep on a condition variable, and
// the caller spins the same way while it waits for them. The caller takes tasks
// too and waits only for workers that joined the job before it ran out of
// tasks: a worker still asleep then never delays it.
class ThreadPool final : public Executor {
 public:
  static constexpr std::chrono::microseconds kSpin{200};

  explicit ThreadPool(std::size_t threads) : threads_(threads == 0 ? 1 : threads) {
    workers_.reserve(threads_ - 1);
    for (std::size_t w = 0; w + 1 < threads_; ++w) {
      workers_.emplace_back([this, w] {
        detail::pool_thread_index() = w + 1;
        work();
      });
    }
  }
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;
  ~ThreadPool() override {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_.store(true, std::memory_order_release);
    }
    wake_.notify_all();
    for (auto& w : workers_) w.join();
  }

  std::size_t concurrency() const noexcept override { return threads_; }
  bool awake() const noexcept override { return sleeping_.load(std::memory_order_relaxed) == 0; }
  std::size_t thread_index() const noexcept override { return detail::pool_thread_index(); }

  void parallel_for(std::size_t n_tasks, TaskFn fn, void* context) noexcept override {
    if (n_tasks == 0) return;
    if (n_tasks == 1 || workers_.empty()) {
      for (std::size_t t = 0; t < n_tasks; ++t) fn(context, t);
      return;
    }
    std::lock_guard<std::mutex> job_lock(job_mutex_);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      fn_ = fn;
      context_ = context;
      n_tasks_ = n_tasks;
      next_.store(0, std::memory_order_relaxed);
      open_ = true;
      // Workers read fn_, context_ and n_tasks_ only after joining under mutex_.
      generation_.fetch_add(1, std::memory_order_release);
    }
    wake_.notify_all();
    drain();
    {
      // Close the job: a worker that has not joined by now finds every task taken
      // and never will, so the caller does not wait for a thread the OS has not
      // woken yet (on a busy or virtual machine that can take a millisecond).
      std::lock_guard<std::mutex> lock(mutex_);
      open_ = false;
    }
    if (!spin_until([this] { return active_.load(std::memory_order_acquire) == 0; })) {
      std::unique_lock<std::mutex> lock(mutex_);
      done_.wait(lock, [this] { return active_.load(std::memory_order_acquire) == 0; });
    }
  }

 private:
  template <class Ready>
  static bool spin_until(Ready ready) noexcept {
    const auto deadline = std::chrono::steady_clock::now() + kSpin;
    for (unsigned i = 1;; ++i) {
      if (ready()) return true;
      cpu_relax();
      if (i % 64 == 0 && std::chrono::steady_clock::now() > deadline) return ready();
    }
  }

  void drain() noexcept {
    for (;;) {
      const std::size_t t = next_.fetch_add(1, std::memory_order_relaxed);
      if (t >= n_tasks_) return;
      fn_(context_, t);
    }
  }

  void work() {
    std::size_t seen = 0;
    auto has_news = [&] {
      return stop_.load(std::memory_order_acquire) ||
             generation_.load(std::memory_order_acquire) != seen;
    };
    for (;;) {
      if (!spin_until(has_news)) {
        std::unique_lock<std::mutex> lock(mutex_);
        sleeping_.fetch_add(1, std::memory_order_relaxed);
        wake_.wait(lock, has_news);
        sleeping_.fetch_sub(1, std::memory_order_relaxed);
      }
      if (stop_.load(std::memory_order_acquire)) return;
      {
        std::lock_guard<std::mutex> lock(mutex_);
        seen = generation_.load(std::memory_order_relaxed);
        if (!open_) continue;  // the caller has finished this job without us
        active_.fetch_add(1, std::memory_order_relaxed);
      }
      drain();
      if (active_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
        // Taking the mutex orders this notify after the caller's predicate check.
        std::lock_guard<std::mutex> lock(mutex_);
        done_.notify_one();
      }
    }
  }

  std::size_t threads_;
  std::vector<std::thread> workers_;
  std::mutex job_mutex_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::condition_variable done_;
  std::atomic<bool> stop_{false};
  std::atomic<std::size_t> generation_{0};
  std::atomic<std::size_t> active_{0};    // workers that joined the current job
  std::atomic<std::size_t> sleeping_{0};  // workers asleep on wake_ (a hint: no ordering)
  bool open_ = false;                    // the job still admits workers (guarded by mutex_)
  TaskFn fn_ = nullptr;
  void* context_ = nullptr;
  std::size_t n_tasks_ = 0;
  std::atomic<std::size_t> next_{0};
};

}  // namespace gradstep
