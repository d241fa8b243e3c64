// Process-wide runtime of the Python module: the SIMD level in use and the
// thread pool. The kernels themselves keep no global state; this is the one
// place that does, on behalf of the Python API.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include <gradstep/parallel.hpp>

#include "kernel_table.hpp"

namespace gradstep_bindings {

// Levels compiled into this module, lowest first.
std::vector<std::string> levels_built();
// The best level this CPU (and OS) can run among those built.
std::string best_supported_level();
// Selects the kernels for `level` ("" = best supported). Throws std::invalid_argument
// for a level that is unknown, not built or not supported by this CPU.
void select_level(const std::string& level);

// The executor for multi-tensor steps: a persistent pool of get_num_threads() threads.
// Callers hold the pointer while a step runs, so set_num_threads can never pull
// the pool from under a running step.
std::shared_ptr<gradstep::Executor> executor();
std::size_t get_num_threads();
void set_num_threads(std::size_t threads);
// Threads the process may run on (its CPU affinity), at least 1.
std::size_t available_cores();

}  // namespace gradstep_bindings
