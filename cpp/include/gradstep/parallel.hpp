// gradstep/parallel.hpp: how multi-tensor steps are split across threads.
//
// An Executor runs n independent tasks and returns when all are done. The
// kernels only see this interface; SerialExecutor runs everything on the
// calling thread and ThreadPool keeps persistent workers. Element-wise updates
// give the same bits however the work is split (every element sees the same
// operations in the same order), so results never depend on the thread count.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace gradstep {

class Executor {
 public:
  using TaskFn = void (*)(void* context, std::size_t task);
  virtual ~Executor() = default;
  // How many tasks can usefully run at once (1 = serial).
  virtual std::size_t concurrency() const noexcept = 0;
  // Calls fn(context, t) for t in [0, n_tasks), possibly concurrently; returns when all are done.
  virtual void parallel_for(std::size_t n_tasks, TaskFn fn, void* context) noexcept = 0;
};

class SerialExecutor final : public Executor {
 public:
  std::size_t concurrency() const noexcept override { return 1; }
  void parallel_for(std::size_t n_tasks, TaskFn fn, void* context) noexcept override {
    for (std::size_t t = 0; t < n_tasks; ++t) fn(context, t);
  }
};

// A fixed set of worker threads that sleep between jobs. The calling thread
// takes part in every job, so ThreadPool(1) starts no thread at all.
// One job runs at a time (a mutex serialises concurrent callers).
class ThreadPool final : public Executor {
 public:
  explicit ThreadPool(std::size_t threads) : threads_(threads == 0 ? 1 : threads) {
    workers_.reserve(threads_ - 1);
    for (std::size_t w = 0; w + 1 < threads_; ++w) workers_.emplace_back([this] { work(); });
  }
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;
  ~ThreadPool() override {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
    }
    wake_.notify_all();
    for (auto& w : workers_) w.join();
  }

  std::size_t concurrency() const noexcept override { return threads_; }

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
      pending_ = workers_.size();
      ++generation_;
    }
    wake_.notify_all();
    drain();
    std::unique_lock<std::mutex> lock(mutex_);
    done_.wait(lock, [this] { return pending_ == 0; });
  }

 private:
  void drain() noexcept {
    for (;;) {
      const std::size_t t = next_.fetch_add(1, std::memory_order_relaxed);
      if (t >= n_tasks_) return;
      fn_(context_, t);
    }
  }

  void work() {
    std::size_t seen = 0;
    for (;;) {
      {
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait(lock, [&] { return stop_ || generation_ != seen; });
        if (stop_) return;
        seen = generation_;
      }
      drain();
      {
        std::lock_guard<std::mutex> lock(mutex_);
        --pending_;
      }
      done_.notify_one();
    }
  }

  std::size_t threads_;
  std::vector<std::thread> workers_;
  std::mutex job_mutex_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::condition_variable done_;
  bool stop_ = false;
  std::size_t generation_ = 0;
  std::size_t pending_ = 0;
  TaskFn fn_ = nullptr;
  void* context_ = nullptr;
  std::size_t n_tasks_ = 0;
  std::atomic<std::size_t> next_{0};
};

}  // namespace gradstep
