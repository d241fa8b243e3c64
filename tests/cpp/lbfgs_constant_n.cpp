// The L-BFGS header used as an embedding code would: a history and the element
// loops (lbfgs_kernels) over a size known at compile time, built with -Wall
// -Wextra -Werror. With n a constant, GCC analyses the loops' trip counts and
// warns where a loop is written in a form it cannot prove safe; this program
// must compile cleanly and give the recursion's and the loops' results.
//
//   lbfgs_constant_n   prints "ok" or what went wrong
#include <gradstep/lbfgs.hpp>

#include <cmath>
#include <cstdio>
#include <vector>

constexpr std::size_t n = 1 << 20;

// The loops on their own, as a caller that dispatches would call them.
bool loops_alone() {
  std::vector<double> q(n, 1.0), v(n, 0.5), a(n, 0.25), out(n);
  const double ad = gradstep::lbfgs_kernels<double>().axpy_dot(q.data(), v.data(), a.data(), -1.0,
                                                                0.5, n);
  const double sd = gradstep::lbfgs_kernels<double>().scale_dot(out.data(), v.data(), a.data(),
                                                                 3.0, n);
  std::vector<float> qf(n, 1.f), vf(n, 0.5f), af(n, 0.25f);
  const double af_dot = gradstep::lbfgs_kernels<float>().axpy_dot(qf.data(), vf.data(),
                                                                   af.data(), -1.0, 0.5, n);
  // q = 0.5 (1 - 0.5) = 0.25 everywhere; out = 1.5: both exact, so are the sums.
  for (std::size_t i = 0; i < n; ++i) {
    if (q[i] != 0.25 || out[i] != 1.5 || qf[i] != 0.25f) return false;
  }
  return ad == 0.0625 * n && sd == 0.375 * n && af_dot == 0.0625 * n;
}

int main() {
  if (!loops_alone()) {
    std::printf("the element loops give wrong results\n");
    return 1;
  }
  gradstep::LBFGSConfig config;
  config.history = 3;
  gradstep::LBFGSHistory<double> h(n, config);
  std::vector<double> s(n), y(n), g(n), d(n);
  // One pair with y = 2 s: H = s s' / (s' y) + ... reduces to H g = g / 2 for this pair.
  for (std::size_t i = 0; i < n; ++i) {
    s[i] = std::sin(0.001 * double(i));
    y[i] = 2.0 * s[i];
    g[i] = std::cos(0.002 * double(i));
  }
  if (!h.push(s.data(), y.data())) {
    std::printf("pair rejected\n");
    return 1;
  }
  const double gd = h.two_loop(g.data(), d.data(), -1.0);
  double worst = 0.0, gg = 0.0;
  for (std::size_t i = 0; i < n; ++i) {
    worst = std::fmax(worst, std::fabs(d[i] + 0.5 * g[i]));
    gg += g[i] * g[i];
  }
  if (worst > 1e-12 || std::fabs(gd + 0.5 * gg) > 1e-9 * gg) {
    std::printf("H g differs: max error %g, g'd %.17g vs %.17g\n", worst, gd, -0.5 * gg);
    return 1;
  }
  std::printf("ok\n");
  return 0;
}
