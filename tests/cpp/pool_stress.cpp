// Stress test of gradstep::ThreadPool: every task of every job runs exactly once,
// none runs after parallel_for has returned, and jobs from several calling
// threads do not mix. Jobs alternate with pauses long enough for the workers to
// fall asleep, so both the spinning and the sleeping paths are taken, and some
// tasks are slow, so workers join late or not at all. Every other job is a
// lockstep() team: each (member, pass) runs exactly once, on one thread per
// member, and no member starts pass p before every member has finished p - 1.
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

struct Team {
  std::vector<std::atomic<std::size_t>> done;  // passes finished, per member
  std::vector<std::atomic<std::thread::id>> thread;
  std::size_t passes;
  bool slow;
  Team(std::size_t members, std::size_t p, bool s) : done(members), thread(members), passes(p),
                                                     slow(s) {}
  void operator()(std::size_t m, std::size_t p) {
    if (done[m].load() != p) failures.fetch_add(1);  // out of order or twice
    for (auto& d : done) {
      const std::size_t v = d.load();
      if (v < p || v > p + 1) failures.fetch_add(1);  // the lockstep is broken
    }
    const auto me = std::this_thread::get_id();
    if (p == 0) thread[m].store(me);
    if (thread[m].load() != me) failures.fetch_add(1);  // a member moved threads
    if (slow && (m + p) % 3 == 0) std::this_thread::yield();
    done[m].store(p + 1);
  }
};

void lockstep_job(gradstep::Executor& executor, std::mt19937& rng) {
  const std::size_t members = rng() % 8 == 0 ? 1 + rng() % gradstep::kMaxLockstepMembers
                                             : 1 + rng() % 4;
  Team team(members, rng() % 12, rng() % 3 == 0);
  gradstep::lockstep(executor, members, team.passes, team);
  for (auto& d : team.done) {
    if (d.load() != team.passes) failures.fetch_add(1);
  }
}

void caller(gradstep::ThreadPool& pool, int jobs, unsigned seed) {
  std::mt19937 rng(seed);
  gradstep::SerialExecutor serial;
  for (int j = 0; j < jobs; ++j) {
    if (j % 2 == 1) {
      lockstep_job(j % 10 == 1 ? static_cast<gradstep::Executor&>(serial) : pool, rng);
      continue;
    }
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
