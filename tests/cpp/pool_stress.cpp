// Stress test of gradstep::ThreadPool: every task of every job runs exactly once,
// none runs after parallel_for has returned, and jobs from several calling
// threads do not mix. Jobs alternate with pauses long enough for the workers to
// fall asleep, so both the spinning and the sleeping paths are taken, and some
// tasks are slow, so workers join late or not at all.
//
//   pool_stress <pool threads> <jobs> <callers>   prints "ok" or what went wrong
#include <gradstep/parallel.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <thread>
#include <vector>

namespace {

std::atomic<long> failures{0};

struct Job {
  std::vector<std::atomic<int>> runs;
  std::atomic<bool> returned{false};
  unsigned slow_every;
  explicit Job(std::size_t n, unsigned slow) : runs(n), slow_every(slow) {}
};

void task(void* context, std::size_t t) {
  auto* job = static_cast<Job*>(context);
  if (job->slow_every != 0 && t % job->slow_every == 0) {
    const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(50);
    while (std::chrono::steady_clock::now() < until) {
    }
  }
  if (job->returned.load()) failures.fetch_add(1);  // ran after parallel_for returned
  job->runs[t].fetch_add(1);
}

void caller(gradstep::ThreadPool& pool, int jobs, unsigned seed) {
  std::mt19937 rng(seed);
  for (int j = 0; j < jobs; ++j) {
    const std::size_t n = 1 + rng() % 64;
    Job job(n, rng() % 4 == 0 ? 1 + rng() % 8 : 0);
    pool.parallel_for(n, task, &job);
    job.returned.store(true);
    for (std::size_t t = 0; t < n; ++t) {
      if (job.runs[t].load() != 1) failures.fetch_add(1);
    }
    const unsigned pause = rng() % 8;
    if (pause == 0) std::this_thread::sleep_for(std::chrono::microseconds(300 + rng() % 2000));
    if (pause == 1) std::this_thread::yield();
  }
}

}  // namespace

int main(int argc, char** argv) {
  const std::size_t threads = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 3;
  const int jobs = argc > 2 ? std::atoi(argv[2]) : 2000;
  const int callers = argc > 3 ? std::atoi(argv[3]) : 2;
  {
    gradstep::ThreadPool pool(threads);
    std::vector<std::thread> ts;
    for (int c = 0; c < callers; ++c) ts.emplace_back(caller, std::ref(pool), jobs, 17u + c);
    for (auto& t : ts) t.join();
  }  // the destructor stops and joins the workers
  if (failures.load() != 0) {
    std::printf("failures %ld\n", failures.load());
    return 1;
  }
  std::printf("ok\n");
  return 0;
}
