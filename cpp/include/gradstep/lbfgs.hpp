// gradstep/lbfgs.hpp: the L-BFGS two-loop recursion over a ring buffer of (s, y) pairs.
//
// L-BFGS (Nocedal 1980; Liu & Nocedal 1989; Nocedal & Wright, "Numerical
// Optimization", 2nd ed., Algorithm 7.4) stands for the inverse Hessian by the
// last m pairs s_k = x_{k+1} - x_k, y_k = g_{k+1} - g_k:
//
//   H_{k+1} = V_k' H_k V_k + rho_k s_k s_k',  V_k = I - rho_k y_k s_k',  rho_k = 1 / (y_k' s_k)
//
// started from H^0 = gamma I with gamma = s'y / y'y of the newest pair (Nocedal &
// Wright eq. 7.20). H g is formed without H by the two-loop recursion:
//
//   q <- g
//   for i = newest .. oldest:  alpha_i <- rho_i s_i' q;  q <- q - alpha_i y_i
//   r <- gamma q
//   for i = oldest .. newest:  beta <- rho_i y_i' r;     r <- r + (alpha_i - beta) s_i
//   H g = r
//
// Each dot product is fused into the pass that produces its vector, so the
// recursion makes 2k passes over n (k pairs stored), each streaming one
// or two history vectors plus the work vector, instead of 4k; the last pass also
// yields g' (H g), the directional derivative a line search needs. Dot products
// are accumulated in double whatever T is.
//
// The two-loop's passes run in lockstep on a thread pool (parallel.hpp), each
// thread over its own share of a fixed split of n into chunks, with a spin
// barrier between passes: a thread reads its part of the history from its own
// core's cache, call after call, and the pool is entered once per call rather
// than once per pass (at n = 1e4 a dispatch costs about as much as a pass). The
// chunks' partial dot products are added in chunk order by every thread, so the
// result depends on n only, never on the thread count. Storing a pair is one
// more pass over the same chunks, by the same threads.
//
// (Two passes in all would do: the compact representation of Byrd, Nocedal &
// Schnabel 1994, or the same recursion run on coefficients over the Gram matrix of
// the stored vectors, Chen, Wang & Zhou 2014, read the history twice instead of
// four times. Measured on a 2-vCPU Xeon VM, both lost: the history is then read
// in short runs from 2k streams at once, which fetched at half the rate of the
// two long streams here, and the Gram column of each new pair costs 2k more dot
// products; at n = 1e6 in a minimize loop that took 52 ms against 35 ms here.)
//
// A pair is stored only if its curvature is safely positive, s'y > eps * y'y
// (as L-BFGS-B does, Byrd, Lu, Nocedal & Zhu 1995): that keeps every H positive
// definite, so -H g is a descent direction. Non-finite pairs are never stored.
//
// LBFGSHistory owns the storage (allocated once, in the constructor): m + 1
// slots of n values for s and m + 1 for y, each block contiguous. The extra slot
// receives the incoming pair while its curvature is computed in the same pass,
// so a rejected pair costs no second pass and never overwrites the oldest one.
// After construction nothing allocates and nothing throws.
#pragma once

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <memory>
#include <vector>

#include "common.hpp"
#include "parallel.hpp"

namespace gradstep {

struct LBFGSConfig {
  std::size_t history = 10;  // m, the number of (s, y) pairs kept
  // Pairs with s'y <= curvature_eps * y'y are skipped. Machine epsilon of the
  // working precision is the natural choice (L-BFGS-B uses epsilon of double).
  double curvature_eps = 2.220446049250313e-16;

  void validate() const {
    require(history >= 1, "history", ">= 1", static_cast<double>(history));
    require_finite_nonneg("curvature_eps", curvature_eps);
  }
};

struct GradientSummary {
  double dot;       // g' d
  double inf_norm;  // max |g_i|, NaN if any g_i is NaN or Inf
};

// The element loops of L-BFGS as function pointers, so that a caller holding
// several SIMD builds of this header (the Python module) can hand a history the
// loops of the level it chose. lbfgs_kernels<T>() gives this build's.
template <class T>
struct LBFGSKernels {
  double (*scale_dot)(T*, const T*, const T*, double, std::size_t) noexcept;
  double (*axpy_dot)(T*, const T*, const T*, double, double, std::size_t) noexcept;
  void (*difference_dots)(T*, T*, const T*, const T*, const T*, const T*, std::size_t, double&,
                          double&) noexcept;
  void (*copy_dots)(T*, T*, const T*, const T*, std::size_t, double&, double&) noexcept;
  GradientSummary (*take_gradient)(T*, const T*, const T*, std::size_t) noexcept;
  void (*add_scaled)(T*, const T*, double, const T*, std::size_t) noexcept;
  void (*add_scaled_clip)(T*, const T*, double, const T*, const T*, const T*,
                          std::size_t) noexcept;
};

}  // namespace gradstep

GRADSTEP_KERNELS_BEGIN

namespace detail {

// Sixteen independent double accumulators: a reduction the compiler may
// vectorise without reassociating (no -ffast-math needed), and a fixed
// summation order, so results do not depend on the SIMD level. Sixteen rather
// than eight so that AVX-512 has two independent chains of adds, not one whose
// latency bounds the loop.
constexpr std::size_t kLanes = 16;

inline double sum_lanes(const double* acc) noexcept {
  static_assert(kLanes == 16, "the pairwise sum below is written for sixteen lanes");
  double h[kLanes / 2];
  for (std::size_t l = 0; l < kLanes / 2; ++l) h[l] = acc[l] + acc[l + kLanes / 2];
  return ((h[0] + h[1]) + (h[2] + h[3])) + ((h[4] + h[5]) + (h[6] + h[7]));
}

// The element loops below run whole groups of kLanes, then the tail, with the
// split point computed once (body): a loop written as `i + kLanes <= n` then
// `i < n` makes GCC warn of undefined behaviour (-Waggressive-loop-optimizations)
// when n is a compile-time constant in a caller.

// out = scale * g; returns a' out.
template <class T>
double scale_dot(T* GRADSTEP_RESTRICT out, const T* GRADSTEP_RESTRICT g,
                 const T* GRADSTEP_RESTRICT a, double scale, std::size_t n) noexcept {
  const T c = T(scale);
  double acc[kLanes] = {};
  const std::size_t body = n / kLanes * kLanes;
  for (std::size_t i = 0; i < body; i += kLanes) {
    for (std::size_t l = 0; l < kLanes; ++l) {
      const T v = c * g[i + l];
      out[i + l] = v;
      acc[l] += double(a[i + l]) * double(v);
    }
  }
  double tail = 0.0;
  for (std::size_t i = body; i < n; ++i) {
    const T v = c * g[i];
    out[i] = v;
    tail += double(a[i]) * double(v);
  }
  return sum_lanes(acc) + tail;
}

// q = mul * (q + coef * v); returns a' q.
template <class T>
double axpy_dot(T* GRADSTEP_RESTRICT q, const T* GRADSTEP_RESTRICT v,
                const T* GRADSTEP_RESTRICT a, double coef, double mul, std::size_t n) noexcept {
  const T c = T(coef);
  const T s = T(mul);
  double acc[kLanes] = {};
  const std::size_t body = n / kLanes * kLanes;
  for (std::size_t i = 0; i < body; i += kLanes) {
    for (std::size_t l = 0; l < kLanes; ++l) {
      const T w = s * (q[i + l] + c * v[i + l]);
      q[i + l] = w;
      acc[l] += double(a[i + l]) * double(w);
    }
  }
  double tail = 0.0;
  for (std::size_t i = body; i < n; ++i) {
    const T w = s * (q[i] + c * v[i]);
    q[i] = w;
    tail += double(a[i]) * double(w);
  }
  return sum_lanes(acc) + tail;
}

// Fused passes that produce vectors and several sums work through short runs
// that stay in L1: one loop writes the run, then one loop per sum reads it back.
// GCC keeps a single accumulator array in registers but not two or three in
// one loop (measured: 2.6-3.1 ns/element instead of ~0.3). Each lane still adds
// the same elements in the same order, so the sums are those of one fused loop.
constexpr std::size_t kRun = 256;  // a multiple of kLanes

// acc[l] += a[i + l] * b[i + l] over whole groups of kLanes; n % kLanes == 0.
template <class T>
void lanes_dot(double* GRADSTEP_RESTRICT acc, const T* GRADSTEP_RESTRICT a,
               const T* GRADSTEP_RESTRICT b, std::size_t n) noexcept {
  for (std::size_t i = 0; i < n; i += kLanes) {
    for (std::size_t l = 0; l < kLanes; ++l) acc[l] += double(a[i + l]) * double(b[i + l]);
  }
}

// The (s'y, y'y) of vectors written by make(lo, hi), which fills s and y on [lo, hi).
template <class T, class Make>
void write_then_dots(const T* s, const T* y, std::size_t n, Make make, double& sy,
                     double& yy) noexcept {
  double acc_sy[kLanes] = {};
  double acc_yy[kLanes] = {};
  const std::size_t body = n / kLanes * kLanes;
  for (std::size_t b = 0; b < body; b += kRun) {
    const std::size_t len = std::min(kRun, body - b);
    make(b, b + len);
    lanes_dot(acc_sy, s + b, y + b, len);
    lanes_dot(acc_yy, y + b, y + b, len);
  }
  make(body, n);
  double tail_sy = 0.0, tail_yy = 0.0;
  for (std::size_t i = body; i < n; ++i) {
    tail_sy += double(s[i]) * double(y[i]);
    tail_yy += double(y[i]) * double(y[i]);
  }
  sy = sum_lanes(acc_sy) + tail_sy;
  yy = sum_lanes(acc_yy) + tail_yy;
}

// s = x1 - x0 and y = g1 - g0 written into the history slot; returns (s'y, y'y).
template <class T>
void difference_dots(T* GRADSTEP_RESTRICT s, T* GRADSTEP_RESTRICT y, const T* GRADSTEP_RESTRICT x1,
                     const T* GRADSTEP_RESTRICT x0, const T* GRADSTEP_RESTRICT g1,
                     const T* GRADSTEP_RESTRICT g0, std::size_t n, double& sy,
                     double& yy) noexcept {
  write_then_dots<T>(s, y, n, [=](std::size_t lo, std::size_t hi) {
    // Captured pointers lose restrict; restate it so the loop vectorises.
    T* GRADSTEP_RESTRICT so = s;
    T* GRADSTEP_RESTRICT yo = y;
    const T* GRADSTEP_RESTRICT a = x1;
    const T* GRADSTEP_RESTRICT b = x0;
    const T* GRADSTEP_RESTRICT c = g1;
    const T* GRADSTEP_RESTRICT d = g0;
    for (std::size_t i = lo; i < hi; ++i) {
      so[i] = a[i] - b[i];
      yo[i] = c[i] - d[i];
    }
  }, sy, yy);
}

template <class T>
void copy_dots(T* GRADSTEP_RESTRICT s, T* GRADSTEP_RESTRICT y, const T* GRADSTEP_RESTRICT s_in,
               const T* GRADSTEP_RESTRICT y_in, std::size_t n, double& sy, double& yy) noexcept {
  write_then_dots<T>(s, y, n, [=](std::size_t lo, std::size_t hi) {
    T* GRADSTEP_RESTRICT so = s;
    T* GRADSTEP_RESTRICT yo = y;
    const T* GRADSTEP_RESTRICT a = s_in;
    const T* GRADSTEP_RESTRICT b = y_in;
    for (std::size_t i = lo; i < hi; ++i) {
      so[i] = a[i];
      yo[i] = b[i];
    }
  }, sy, yy);
}

}  // namespace detail

// out = x + alpha * d: the trial point of a line search, in one pass.
template <class T>
void add_scaled(T* GRADSTEP_RESTRICT out, const T* GRADSTEP_RESTRICT x, double alpha,
                const T* GRADSTEP_RESTRICT d, std::size_t n) noexcept {
  const T a = T(alpha);
  for (std::size_t i = 0; i < n; ++i) out[i] = x[i] + a * d[i];
}

// out = clamp(x + alpha * d, lo, hi): a trial point projected on the box [lo, hi].
template <class T>
void add_scaled_clip(T* GRADSTEP_RESTRICT out, const T* GRADSTEP_RESTRICT x, double alpha,
                     const T* GRADSTEP_RESTRICT d, const T* GRADSTEP_RESTRICT lo,
                     const T* GRADSTEP_RESTRICT hi, std::size_t n) noexcept {
  const T a = T(alpha);
  for (std::size_t i = 0; i < n; ++i) {
    const T v = x[i] + a * d[i];
    const T w = v < lo[i] ? lo[i] : v;
    out[i] = w > hi[i] ? hi[i] : w;
  }
}

// out = g, in the same pass as g' d and ||g||_inf: what a line search needs of a
// new gradient. d may be g itself (then dot = g' g); out must not overlap g or d.
template <class T>
GradientSummary take_gradient(T* GRADSTEP_RESTRICT out, const T* g, const T* d,
                              std::size_t n) noexcept {
  using detail::kLanes;
  double acc[kLanes] = {};
  double finite[kLanes] = {};  // stays 0 unless some g_i is NaN or Inf
  T mx[kLanes] = {};
  const std::size_t body = n / kLanes * kLanes;
  // In runs that stay in L1, one loop per result (see detail::kRun).
  for (std::size_t b = 0; b < body; b += detail::kRun) {
    const std::size_t len = std::min(detail::kRun, body - b);
    const T* GRADSTEP_RESTRICT gr = g + b;
    T* GRADSTEP_RESTRICT o = out + b;
    for (std::size_t i = 0; i < len; ++i) o[i] = gr[i];
    detail::lanes_dot(acc, gr, d + b, len);
    for (std::size_t i = 0; i < len; i += kLanes) {
      for (std::size_t l = 0; l < kLanes; ++l) finite[l] += double(gr[i + l]) - double(gr[i + l]);
    }
    for (std::size_t i = 0; i < len; i += kLanes) {
      for (std::size_t l = 0; l < kLanes; ++l) {
        const T v = std::fabs(gr[i + l]);
        mx[l] = v > mx[l] ? v : mx[l];
      }
    }
  }
  double tail = 0.0, tail_finite = 0.0;
  T tail_mx = T(0);
  for (std::size_t i = body; i < n; ++i) {
    const T v = g[i];
    out[i] = v;
    tail += double(v) * double(d[i]);
    tail_finite += double(v) - double(v);
    const T a = std::fabs(v);
    tail_mx = a > tail_mx ? a : tail_mx;
  }
  double norm = double(tail_mx);
  for (std::size_t l = 0; l < kLanes; ++l) norm = std::max(norm, double(mx[l]));
  if (!std::isfinite(detail::sum_lanes(finite) + tail_finite)) norm = NAN;
  return {detail::sum_lanes(acc) + tail, norm};
}

// This build's loops, for LBFGSHistory and for callers that dispatch.
template <class T>
LBFGSKernels<T> lbfgs_kernels() noexcept {
  return {&detail::scale_dot<T>, &detail::axpy_dot<T>, &detail::difference_dots<T>,
          &detail::copy_dots<T>, &take_gradient<T>,    &add_scaled<T>,
          &add_scaled_clip<T>};
}

// The generalized Cauchy point of L-BFGS-B (Byrd, Lu, Nocedal & Zhu 1995,
// Algorithm CP): the first local minimizer of the quadratic model
//
//   m(z) = g'(z - x) + 1/2 (z - x)' B (z - x),   B = theta I - W M W'
//
// along the projected steepest-descent path z(t) = P(x - t g, lo, hi), where P
// clips to the box. The path bends where a variable reaches its bound; those
// breakpoints are visited in increasing t (ties by index) through a binary
// heap, so a search that stops early costs O(n) plus O(log n) per breakpoint
// passed, and each breakpoint costs O(m2^2) for the model's derivatives. All in
// double (the compact matrices are float64 whatever the problem's dtype).
struct CauchyProblem {
  std::size_t n = 0;        // variables
  std::size_t m2 = 0;       // columns of W (2k for k stored pairs)
  const double* x = nullptr;
  const double* g = nullptr;
  const double* lo = nullptr;  // -inf where unbounded
  const double* hi = nullptr;  // +inf where unbounded
  const double* W = nullptr;   // n x m2, row-major
  const double* M = nullptr;   // m2 x m2, row-major
  double theta = 1.0;
};

struct CauchyWorkspace {  // sized by the caller: t and d of n, heap of n, p and mw of m2
  double* t = nullptr;       // breakpoint of each variable (inf: never reaches a bound)
  double* d = nullptr;       // the path's direction; 0 once a variable is at its bound
  std::size_t* heap = nullptr;
  double* p = nullptr;       // W' d
  double* mw = nullptr;      // M w_b
};

struct CauchyResult {
  double t = 0.0;              // the Cauchy point's position on the path
  std::size_t breakpoints = 0;  // variables that reached a bound before it
};

// Writes the Cauchy point to xcp (n) and c = W'(xcp - x) (m2), which the
// subspace minimization needs.
inline CauchyResult cauchy_point(const CauchyProblem& pr, CauchyWorkspace& ws, double* xcp,
                                 double* c) noexcept {
  const std::size_t n = pr.n, m2 = pr.m2;
  double* tb = ws.t;
  double* d = ws.d;
  double* p = ws.p;
  std::size_t heap_size = 0;
  std::size_t moving = 0;  // variables with d_i != 0
  double dd = 0.0;
  for (std::size_t i = 0; i < n; ++i) {
    const double gi = pr.g[i];
    double t = INFINITY;
    if (gi < 0.0) {
      t = (pr.x[i] - pr.hi[i]) / gi;
    } else if (gi > 0.0) {
      t = (pr.x[i] - pr.lo[i]) / gi;
    }
    tb[i] = t;
    d[i] = t > 0.0 ? -gi : 0.0;
    dd += d[i] * d[i];
    moving += d[i] != 0.0;
    xcp[i] = pr.x[i];
    if (t > 0.0 && std::isfinite(t)) ws.heap[heap_size++] = i;
  }
  for (std::size_t j = 0; j < m2; ++j) {
    p[j] = 0.0;
    c[j] = 0.0;
  }
  for (std::size_t i = 0; i < n; ++i) {
    if (d[i] == 0.0) continue;
    const double* w = pr.W + i * m2;
    for (std::size_t j = 0; j < m2; ++j) p[j] += w[j] * d[i];
  }
  auto m_times = [&](const double* v) {  // ws.mw = M v
    for (std::size_t a = 0; a < m2; ++a) {
      double r = 0.0;
      for (std::size_t k = 0; k < m2; ++k) r += pr.M[a * m2 + k] * v[k];
      ws.mw[a] = r;
    }
  };
  const double theta = pr.theta;
  double fp = -dd;
  m_times(p);
  double p_mp = 0.0;
  for (std::size_t a = 0; a < m2; ++a) p_mp += p[a] * ws.mw[a];
  double fpp = -theta * fp - p_mp;
  // Min-heap on (t_i, i): the same order as a stable sort by t.
  auto later = [tb](std::size_t a, std::size_t b) {
    return tb[a] > tb[b] || (tb[a] == tb[b] && a > b);
  };
  std::make_heap(ws.heap, ws.heap + heap_size, later);
  double t_old = 0.0;
  double dt_min = fpp > 0.0 ? -fp / fpp : 0.0;
  std::size_t passed = 0;
  while (heap_size > 0) {
    if (fp >= 0.0) {
      dt_min = 0.0;
      break;
    }
    const std::size_t b = ws.heap[0];
    const double dt = tb[b] - t_old;
    if (dt_min < dt) break;
    std::pop_heap(ws.heap, ws.heap + heap_size, later);
    --heap_size;
    ++passed;
    // Variable b reaches its bound.
    const double gb = pr.g[b];
    const double xb = d[b] > 0.0 ? pr.hi[b] : pr.lo[b];
    const double zb = xb - pr.x[b];
    xcp[b] = xb;
    const double* wb = pr.W + b * m2;
    double mw_c = 0.0, mw_p = 0.0, w_mw = 0.0;
    for (std::size_t j = 0; j < m2; ++j) c[j] += dt * p[j];
    m_times(wb);
    for (std::size_t j = 0; j < m2; ++j) {
      mw_c += ws.mw[j] * c[j];
      mw_p += ws.mw[j] * p[j];
      w_mw += wb[j] * ws.mw[j];
    }
    fp += dt * fpp + gb * gb + theta * gb * zb - gb * mw_c;
    fpp += -theta * gb * gb - 2.0 * gb * mw_p - gb * gb * w_mw;
    for (std::size_t j = 0; j < m2; ++j) p[j] += gb * wb[j];
    d[b] = 0.0;
    --moving;
    t_old = tb[b];
    dt_min = fpp > 0.0 ? -fp / fpp : 0.0;
  }
  // Once every variable is at a bound the path stops; f' and f'' are then rounding
  // residues and must not move t.
  dt_min = moving == 0 ? 0.0 : std::max(dt_min, 0.0);
  t_old += dt_min;
  for (std::size_t i = 0; i < n; ++i) {
    if (d[i] != 0.0) xcp[i] = pr.x[i] + t_old * d[i];
    const double v = xcp[i] < pr.lo[i] ? pr.lo[i] : xcp[i];
    xcp[i] = v > pr.hi[i] ? pr.hi[i] : v;
  }
  for (std::size_t j = 0; j < m2; ++j) c[j] += dt_min * p[j];
  return {t_old, passed};
}

// The passes over n split it into a power of two of chunks (at most
// kMaxLockstepMembers) of at least kLBFGSChunk elements, fixed by n alone.
constexpr std::size_t kLBFGSChunk = 4096;

template <class T>
class LBFGSHistory {
 public:
  // Validates `config` (std::invalid_argument naming the parameter) and allocates
  // all storage; the only member functions that can throw are the constructors.
  // The pair storage is left uninitialised (only stored pairs are ever read), so
  // a large history costs no up-front pass over its memory.
  LBFGSHistory(std::size_t n, const LBFGSConfig& config,
               const LBFGSKernels<T>& kernels = lbfgs_kernels<T>())
      : n_(n),
        config_(checked(config)),
        kernels_(kernels),
        s_(new T[(config.history + 1) * n]),
        y_(new T[(config.history + 1) * n]) {
    const std::size_t slots = config_.history + 1;
    rho_.assign(slots, 0.0);
    while (chunks_ * 2 <= kMaxLockstepMembers && chunks_ * 2 * kLBFGSChunk <= n) chunks_ *= 2;
    // A multiple of 16 elements, so chunks start on 64-byte boundaries of an aligned array.
    chunk_len_ = ((n + chunks_ - 1) / chunks_ + 15) / 16 * 16;
    // [sum][chunk]: the two-loop's 2k + 1 pass sums, or a pair's two (s'y, y'y).
    partials_.assign((2 * config_.history + 1) * chunks_, 0.0);
  }

  std::size_t size() const noexcept { return n_; }
  std::size_t capacity() const noexcept { return config_.history; }
  std::size_t count() const noexcept { return count_; }
  const LBFGSConfig& config() const noexcept { return config_; }
  // The initial scaling H^0 = gamma I: s'y / y'y of the newest pair, 1 when empty.
  double gamma() const noexcept { return gamma_; }

  void clear() noexcept {
    head_ = 0;
    count_ = 0;
    gamma_ = 1.0;
  }

  // Stores (s, y) unless its curvature is too small; returns whether it was stored.
  bool push(const T* s, const T* y, Executor& executor = serial()) noexcept {
    T* s_dst = s_slot(next_slot());
    T* y_dst = y_slot(next_slot());
    const auto sums = for_chunks<2>(executor, [&](std::size_t lo, std::size_t hi, double* r) {
      kernels_.copy_dots(s_dst + lo, y_dst + lo, s + lo, y + lo, hi - lo, r[0], r[1]);
    });
    return commit(sums[0], sums[1]);
  }

  // push(x_new - x_old, g_new - g_old), without forming the differences elsewhere.
  bool push_difference(const T* x_new, const T* x_old, const T* g_new, const T* g_old,
                       Executor& executor = serial()) noexcept {
    T* s_dst = s_slot(next_slot());
    T* y_dst = y_slot(next_slot());
    const auto sums = for_chunks<2>(executor, [&](std::size_t lo, std::size_t hi, double* r) {
      kernels_.difference_dots(s_dst + lo, y_dst + lo, x_new + lo, x_old + lo, g_new + lo,
                              g_old + lo, hi - lo, r[0], r[1]);
    });
    return commit(sums[0], sums[1]);
  }

  // out = scale * H g (scale = -1 gives the search direction); returns g' out,
  // accumulated in the last pass. out and g must not overlap.
  //
  // The 2k + 1 passes run in lockstep (parallel.hpp) over the fixed chunks of n
  // (member_chunks): each thread keeps its chunks, and so their part of the history,
  // in its own core's cache from pass to pass and call to call, with one spin
  // barrier per pass. Pass p writes one partial sum per chunk; every member adds
  // them in chunk order, so all threads use the same coefficients and the result
  // depends on n only.
  double two_loop(const T* g, T* out, double scale = 1.0, Executor& executor = serial()) noexcept {
    const std::size_t k = count_;
    const std::size_t chunks = chunks_;
    double* partial = partials_.data();  // [pass][chunk]
    const std::size_t members = members_for(executor, n_ * (2 * k + 1), last_two_loop_);
    auto step = [&](std::size_t member, std::size_t p) {
      // This pass's vectors and coefficients, from the sums of earlier passes.
      const T* v = g;     // the vector added to (or, in pass 0, scaled into) out
      const T* a = g;     // the vector out is dotted with
      double coef = scale, mul = 1.0;
      if (p == 0) {
        if (k == 0) {
          coef = scale * gamma_;
        } else {
          a = s_at(k - 1);
        }
      } else if (p <= k) {
        // First loop, newest to oldest: alpha_j = rho_j s_j' q; q -= alpha_j y_j.
        const std::size_t j = k - p;
        v = y_at(j);
        coef = -rho_at(j) * chunk_total(p - 1);
        // The last update also applies H^0 = gamma I and yields y_0' r.
        a = j > 0 ? s_at(j - 1) : y_at(0);
        mul = j > 0 ? 1.0 : gamma_;
      } else {
        // Second loop, oldest to newest: beta = rho_j y_j' r; r += (alpha_j - beta) s_j.
        const std::size_t j = p - k - 1;
        const double alpha = rho_at(j) * chunk_total(k - j - 1);
        const double beta = rho_at(j) * chunk_total(p - 1);
        v = s_at(j);
        coef = alpha - beta;
        a = j + 1 < k ? y_at(j + 1) : g;
      }
      member_chunks(member, members, [&](std::size_t c, std::size_t lo, std::size_t hi) {
        partial[p * chunks + c] =
            p == 0 ? kernels_.scale_dot(out + lo, v + lo, a + lo, coef, hi - lo)
                   : kernels_.axpy_dot(out + lo, v + lo, a + lo, coef, mul, hi - lo);
      });
    };
    lockstep(executor, members, 2 * k + 1, step);
    return chunk_total(2 * k);
  }

  // The stored pairs, j = 0 the oldest; for tests and inspection.
  const T* s_at(std::size_t j) const noexcept { return s_slot(slot_of(j)); }
  const T* y_at(std::size_t j) const noexcept { return y_slot(slot_of(j)); }
  double rho_at(std::size_t j) const noexcept { return rho_[slot_of(j)]; }

 private:
  static const LBFGSConfig& checked(const LBFGSConfig& c) {
    c.validate();
    return c;
  }
  static Executor& serial() noexcept {
    static SerialExecutor executor;
    return executor;
  }

  // Runs body(lo, hi, partials) over the chunks of n (one pass, the members of a
  // lockstep team taking the chunks as in the two-loop) and returns the R partial
  // sums added in chunk order.
  template <std::size_t R, class Body>
  std::array<double, R> for_chunks(Executor& executor, Body body) noexcept {
    static_assert(R <= 3, "partials_ holds at least three sums per chunk");
    const std::size_t members = members_for(executor, n_, last_push_);
    auto step = [&](std::size_t member, std::size_t) {
      member_chunks(member, members, [&](std::size_t c, std::size_t lo, std::size_t hi) {
        double r[R] = {};
        body(lo, hi, r);
        for (std::size_t i = 0; i < R; ++i) partials_[i * chunks_ + c] = r[i];
      });
    };
    lockstep(executor, members, 1, step);
    std::array<double, R> total{};
    for (std::size_t i = 0; i < R; ++i) total[i] = chunk_total(i);
    return total;
  }

  // Sum i of partials_, its chunks added in chunk order (so the same bits for any split
  // of the chunks between threads).
  double chunk_total(std::size_t i) const noexcept {
    const double* r = partials_.data() + i * chunks_;
    double total = r[0];
    for (std::size_t c = 1; c < chunks_; ++c) total += r[c];
    return total;
  }

  // How many threads share a job over `elements` (summed over its passes): all that
  // can, unless the workers are asleep and the job is too small to pay for waking
  // one (worth_splitting). Then one, except when the same kind of call came less
  // than a worker's spin ago: in such a loop the workers woken now are still
  // spinning at the next call, so only this one pays.
  std::size_t members_for(Executor& executor, std::size_t elements,
                          std::chrono::steady_clock::time_point& last) const noexcept {
    const std::size_t threads = std::min(executor.concurrency(), chunks_);
    if (threads <= 1) return 1;
    const auto now = std::chrono::steady_clock::now();
    const bool loop = now - last < ThreadPool::kSpin;
    last = now;
    return loop || worth_splitting(executor, elements) ? threads : 1;
  }

  // Calls fn(c, lo, hi) for the chunks c of one member of a team of `members`,
  // [lo, hi) the elements of chunk c (the last chunk may be short or empty).
  template <class Fn>
  void member_chunks(std::size_t member, std::size_t members, Fn fn) const noexcept {
    for (std::size_t c = member * chunks_ / members; c < (member + 1) * chunks_ / members; ++c) {
      const std::size_t lo = std::min(n_, c * chunk_len_);
      fn(c, lo, std::min(n_, lo + chunk_len_));
    }
  }
  std::size_t slots() const noexcept { return config_.history + 1; }
  std::size_t slot_of(std::size_t j) const noexcept { return (head_ + j) % slots(); }
  std::size_t next_slot() const noexcept { return slot_of(count_); }
  T* s_slot(std::size_t slot) noexcept { return s_.get() + slot * n_; }
  T* y_slot(std::size_t slot) noexcept { return y_.get() + slot * n_; }
  const T* s_slot(std::size_t slot) const noexcept { return s_.get() + slot * n_; }
  const T* y_slot(std::size_t slot) const noexcept { return y_.get() + slot * n_; }

  bool commit(double sy, double yy) noexcept {
    // Negated comparison so that NaN is rejected too.
    if (!(std::isfinite(sy) && std::isfinite(yy) && yy > 0.0 && sy > config_.curvature_eps * yy)) {
      return false;
    }
    rho_[next_slot()] = 1.0 / sy;
    gamma_ = sy / yy;
    if (count_ == config_.history) {
      head_ = (head_ + 1) % slots();
    } else {
      ++count_;
    }
    return true;
  }

  std::size_t n_;
  LBFGSConfig config_;
  LBFGSKernels<T> kernels_;
  std::unique_ptr<T[]> s_;
  std::unique_ptr<T[]> y_;
  std::vector<double> rho_;
  std::size_t chunks_ = 1;        // the split of n: a power of two
  std::size_t chunk_len_ = 0;
  std::vector<double> partials_;  // per-chunk partial sums, [sum][chunk]
  std::chrono::steady_clock::time_point last_two_loop_{}, last_push_{};  // see members_for
  std::size_t head_ = 0;       // slot of the oldest pair
  std::size_t count_ = 0;
  double gamma_ = 1.0;
};

GRADSTEP_KERNELS_END
