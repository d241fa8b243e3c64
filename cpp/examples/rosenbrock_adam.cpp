// A plain C++ program that uses gradstep's headers without Python: Adam on the
// extended Rosenbrock function, one multi-tensor step per iteration over two
// "tensors" (the even and odd coordinates), on a two-thread pool.
//
//   g++ -std=c++17 -O3 -fno-math-errno -I cpp/include cpp/examples/rosenbrock_adam.cpp -pthread
//
// Prints the final objective and the first coordinates.
#include <gradstep/gradstep.hpp>

#include <cstdio>
#include <cstdlib>
#include <vector>

namespace {

// f(x) = sum_i 100 (x_{2i+1} - x_{2i}^2)^2 + (1 - x_{2i})^2, split into evens a and odds b.
double rosenbrock(const std::vector<double>& a, const std::vector<double>& b,
                  std::vector<double>& ga, std::vector<double>& gb) {
  double f = 0.0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const double r = b[i] - a[i] * a[i];
    const double s = 1.0 - a[i];
    f += 100.0 * r * r + s * s;
    ga[i] = -400.0 * a[i] * r - 2.0 * s;
    gb[i] = 200.0 * r;
  }
  return f;
}

}  // namespace

int main(int argc, char** argv) {
  const std::size_t n = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 1000;
  const long iterations = argc > 2 ? std::strtol(argv[2], nullptr, 10) : 2000;
  std::vector<double> a(n, -1.2), b(n, 1.0), ga(n), gb(n);
  std::vector<double> m_a(n), v_a(n), m_b(n), v_b(n);

  gradstep::AdamConfig config;
  config.lr = 0.02;
  config.validate();  // throws std::invalid_argument naming a bad hyperparameter

  // The multi-tensor form: both tensors in one call, split across the pool.
  double* params[] = {a.data(), b.data()};
  const double* grads[] = {ga.data(), gb.data()};
  double* states[] = {m_a.data(), v_a.data(), nullptr, m_b.data(), v_b.data(), nullptr};
  std::size_t sizes[] = {n, n};
  std::int64_t steps[] = {0, 0};
  gradstep::TensorBatch<double> batch;
  batch.count = 2;
  batch.params = params;
  batch.grads = grads;
  batch.states = states;
  batch.n_states = 3;  // exp_avg, exp_avg_sq, max_exp_avg_sq (unused without amsgrad)
  batch.sizes = sizes;
  batch.steps = steps;
  gradstep::ThreadPool pool(2);

  double f = 0.0;
  for (long t = 0; t < iterations; ++t) {
    f = rosenbrock(a, b, ga, gb);
    gradstep::adam_multi(batch, config, pool);
  }
  f = rosenbrock(a, b, ga, gb);
  std::printf("steps %lld f %.17g x0 %.17g x1 %.17g\n", static_cast<long long>(steps[0]), f, a[0],
              b[0]);
  return 0;
}
