#include "runtime.hpp"

#include <memory>
#include <mutex>
#include <stdexcept>
#include <thread>

#if defined(__linux__)
#include <sched.h>
#endif
#if !defined(_WIN32)
#include <unistd.h>
#endif

namespace gradstep_bindings {

namespace {

struct Level {
  const char* name;
  KernelTable (*table)();
  bool (*supported)();
};

bool always() { return true; }

#if defined(GRADSTEP_HAVE_X86_64_V3)
bool cpu_has_v3() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
         __builtin_cpu_supports("bmi") && __builtin_cpu_supports("bmi2") &&
         __builtin_cpu_supports("f16c") && __builtin_cpu_supports("movbe");
}
#endif
#if defined(GRADSTEP_HAVE_X86_64_V4)
bool cpu_has_v4() {
  return cpu_has_v3() && __builtin_cpu_supports("avx512f") &&
         __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512cd") &&
         __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
}
#endif

const std::vector<Level>& levels() {
  static const std::vector<Level> all = {
      {"baseline", &kernel_table_baseline, &always},
#if defined(GRADSTEP_HAVE_X86_64_V3)
      {"x86_64_v3", &kernel_table_x86_64_v3, &cpu_has_v3},
#endif
#if defined(GRADSTEP_HAVE_X86_64_V4)
      {"x86_64_v4", &kernel_table_x86_64_v4, &cpu_has_v4},
#endif
  };
  return all;
}

KernelTable& active_table() {
  static KernelTable table = [] {
    for (auto it = levels().rbegin(); it != levels().rend(); ++it) {
      if (it->supported()) return it->table();
    }
    return kernel_table_baseline();
  }();
  return table;
}

std::mutex pool_mutex;
std::shared_ptr<gradstep::ThreadPool> pool;
std::size_t wanted_threads = 0;  // 0 = not chosen yet: use available_cores()
#if !defined(_WIN32)
pid_t pool_pid = 0;
#endif

}  // namespace

std::vector<std::string> levels_built() {
  std::vector<std::string> names;
  for (const auto& l : levels()) names.emplace_back(l.name);
  return names;
}

std::string best_supported_level() {
  for (auto it = levels().rbegin(); it != levels().rend(); ++it) {
    if (it->supported()) return it->name;
  }
  return "baseline";
}

void select_level(const std::string& level) {
  const std::string want = level.empty() ? best_supported_level() : level;
  for (const auto& l : levels()) {
    if (want == l.name) {
      if (!l.supported()) {
        throw std::invalid_argument("SIMD level '" + want + "' is not supported by this CPU");
      }
      active_table() = l.table();
      return;
    }
  }
  std::string built;
  for (const auto& name : levels_built()) built += (built.empty() ? "" : ", ") + name;
  throw std::invalid_argument("unknown SIMD level '" + want + "' (built: " + built + ")");
}

const KernelTable& active_kernels() { return active_table(); }

std::size_t available_cores() {
#if defined(__linux__)
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    const int count = CPU_COUNT(&set);
    if (count > 0) return static_cast<std::size_t>(count);
  }
#endif
  const unsigned hw = std::thread::hardware_concurrency();
  return hw == 0 ? 1 : hw;
}

std::size_t get_num_threads() {
  std::lock_guard<std::mutex> lock(pool_mutex);
  return wanted_threads == 0 ? available_cores() : wanted_threads;
}

void set_num_threads(std::size_t threads) {
  if (threads == 0) throw std::invalid_argument("num_threads must be >= 1, got 0");
  std::lock_guard<std::mutex> lock(pool_mutex);
  wanted_threads = threads;
  if (pool && pool->concurrency() != threads) pool.reset();
}

std::shared_ptr<gradstep::Executor> executor() {
  std::lock_guard<std::mutex> lock(pool_mutex);
  const std::size_t threads = wanted_threads == 0 ? available_cores() : wanted_threads;
#if !defined(_WIN32)
  // A forked child inherits the pool object but not its threads: start afresh.
  if (pool && pool_pid != getpid()) {
    // Its threads do not exist here, so it must never be joined: leak it on purpose.
    new std::shared_ptr<gradstep::ThreadPool>(std::move(pool));
  }
  pool_pid = getpid();
#endif
  if (!pool || pool->concurrency() != threads) pool = std::make_shared<gradstep::ThreadPool>(threads);
  return pool;
}

}  // namespace gradstep_bindings
