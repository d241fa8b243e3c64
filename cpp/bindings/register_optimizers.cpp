// Bindings of the first-order optimizers. For each family:
//   <Family>Config                  the hyperparameters (validate() raises ValueError)
//   prepare_<family>(params, grads, states, steps, scalars, config) -> PreparedStep
// prepare_* checks every argument and holds the buffers; PreparedStep.run()
// releases the GIL and runs the multi-tensor kernel. The split lets Python
// check every parameter group before it updates any of them.
#include <pybind11/functional.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "checks.hpp"
#include "kernel_table.hpp"
#include "runtime.hpp"

namespace gradstep_bindings {

namespace {

class PreparedStep {
 public:
  explicit PreparedStep(std::function<void()> run) : run_(std::move(run)) {}
  void run() {
    if (!run_) throw std::runtime_error("this PreparedStep has already run");
    auto run = std::move(run_);  // destroyed after `release`, so with the GIL held
    run_ = nullptr;
    py::gil_scoped_release release;
    run();
  }

 private:
  std::function<void()> run_;
};

template <class T>
struct Buffers {
  std::vector<py::object> keep;  // tuples holding a reference to every array used
  std::vector<T*> params;
  std::vector<const T*> grads;
  std::vector<T*> states;
  std::vector<std::size_t> sizes;
  gradstep::TensorBatch<T> batch;
};

struct SGDFamily {
  using Config = gradstep::SGDConfig;
  static constexpr std::array<const char*, 1> states{"momentum_buffer"};
  static constexpr bool has_scalars = false;
  static bool needs(std::size_t, const Config& c) { return c.momentum != 0.0; }
  template <class T>
  static MultiFn<Config, T> kernel(const KernelSet<T>& k) { return k.sgd; }
};
struct AdagradFamily {
  using Config = gradstep::AdagradConfig;
  static constexpr std::array<const char*, 1> states{"sum"};
  static constexpr bool has_scalars = false;
  static bool needs(std::size_t, const Config&) { return true; }
  template <class T>
  static MultiFn<Config, T> kernel(const KernelSet<T>& k) { return k.adagrad; }
};
struct AdadeltaFamily {
  using Config = gradstep::AdadeltaConfig;
  static constexpr std::array<const char*, 2> states{"square_avg", "acc_delta"};
  static constexpr bool has_scalars = false;
  static bool needs(std::size_t, const Config&) { return true; }
  template <class T>
  static MultiFn<Config, T> kernel(const KernelSet<T>& k) { return k.adadelta; }
};
struct RMSpropFamily {
  using Config = gradstep::RMSpropConfig;
  static constexpr std::array<const char*, 3> states{"square_avg", "grad_avg", "momentum_buffer"};
  static constexpr bool has_scalars = false;
  static bool needs(std::size_t k, const Config& c) {
    return k == 0 || (k == 1 && c.centered) || (k == 2 && c.momentum > 0.0);
  }
  template <class T>
  static MultiFn<Config, T> kernel(const KernelSet<T>& k) { return k.rmsprop; }
};
struct RpropFamily {
  using Config = gradstep::RpropConfig;
  static constexpr std::array<const char*, 2> states{"prev", "step_size"};
  static constexpr bool has_scalars = false;
  static bool needs(std::size_t, const Config&) { return true; }
  template <class T>
  static MultiFn<Config, T> kernel(const KernelSet<T>& k) { return k.rprop; }
};
struct AdamFamily {
  using Config = gradstep::AdamConfig;
  static constexpr std::array<const char*, 3> states{"exp_avg", "exp_avg_sq", "max_exp_avg_sq"};
  static constexpr bool has_scalars = false;
  static bool needs(std::size_t k, const Config& c) { return k < 2 || c.amsgrad; }
  template <class T>
  static MultiFn<Config, T> kernel(const KernelSet<T>& k) { return k.adam; }
};
struct AdamaxFamily {
  using Config = gradstep::AdamaxConfig;
  static constexpr std::array<const char*, 2> states{"exp_avg", "exp_inf"};
  static constexpr bool has_scalars = false;
  static bool needs(std::size_t, const Config&) { return true; }
  template <class T>
  static MultiFn<Config, T> kernel(const KernelSet<T>& k) { return k.adamax; }
};
struct NAdamFamily {
  using Config = gradstep::NAdamConfig;
  static constexpr std::array<const char*, 2> states{"exp_avg", "exp_avg_sq"};
  static constexpr bool has_scalars = true;  // mu_product
  static bool needs(std::size_t, const Config&) { return true; }
  template <class T>
  static MultiFn<Config, T> kernel(const KernelSet<T>& k) { return k.nadam; }
};
struct RAdamFamily {
  using Config = gradstep::RAdamConfig;
  static constexpr std::array<const char*, 2> states{"exp_avg", "exp_avg_sq"};
  static constexpr bool has_scalars = false;
  static bool needs(std::size_t, const Config&) { return true; }
  template <class T>
  static MultiFn<Config, T> kernel(const KernelSet<T>& k) { return k.radam; }
};

template <class Family, class T>
PreparedStep prepare_typed(const py::list& params, const py::list& grads, const py::list& states,
                           py::handle steps, py::handle scalars, const typename Family::Config& c) {
  constexpr std::size_t n_states = Family::states.size();
  const std::size_t count = params.size();
  if (grads.size() != count) {
    throw py::value_error("got " + std::to_string(grads.size()) + " grads for " +
                          std::to_string(count) + " params; pass one gradient (or None) per "
                          "parameter, in order");
  }
  if (states.size() != n_states) {
    throw py::value_error("states must hold " + std::to_string(n_states) + " lists, got " +
                          std::to_string(states.size()));
  }
  c.validate();
  auto buf = std::make_shared<Buffers<T>>();
  buf->params.resize(count);
  buf->grads.resize(count);
  buf->sizes.resize(count);
  buf->states.assign(count * n_states, nullptr);

  // Tuples pin every array for the life of the step, whatever happens to the lists.
  py::tuple param_items(params);
  py::tuple grad_items(grads);
  buf->keep.push_back(param_items);
  buf->keep.push_back(grad_items);
  std::array<py::tuple, n_states> state_items;
  std::array<bool, n_states> used{};
  for (std::size_t k = 0; k < n_states; ++k) {
    py::handle s = states[k];
    used[k] = Family::needs(k, c);
    if (!used[k]) continue;
    if (!py::isinstance<py::list>(s)) {
      throw py::type_error(std::string("state '") + Family::states[k] + "' must be a list, got " +
                           type_name(s));
    }
    state_items[k] = py::tuple(py::reinterpret_borrow<py::object>(s));
    if (state_items[k].size() != count) {
      throw py::value_error(std::string("state '") + Family::states[k] + "' holds " +
                            std::to_string(state_items[k].size()) + " arrays for " +
                            std::to_string(count) + " params");
    }
    buf->keep.push_back(state_items[k]);
  }

  // The common case costs a few pointer reads per array; names and messages are
  // only built on the slow path, which throws.
  auto pname = [](std::size_t i) { return "params[" + std::to_string(i) + "]"; };
  for (std::size_t i = 0; i < count; ++i) {
    PyObject* p = PyTuple_GET_ITEM(param_items.ptr(), static_cast<py::ssize_t>(i));
    if (!array_ok<T>(p, true)) checked_array<T>(p, pname(i), true);
    const std::size_t n = array_size(p);
    buf->params[i] = reinterpret_cast<T*>(array_data(p));
    buf->sizes[i] = n;
    PyObject* g = PyTuple_GET_ITEM(grad_items.ptr(), static_cast<py::ssize_t>(i));
    if (g == Py_None) {
      buf->grads[i] = nullptr;
    } else {
      if (!array_ok<T>(g, false, p)) {
        const py::array like = py::reinterpret_borrow<py::array>(p);
        checked_array<T>(g, "grads[" + std::to_string(i) + "]", false, &like, pname(i));
      }
      if (overlaps_raw(g, array_size(g), p, n, sizeof(T))) {
        throw py::value_error("grads[" + std::to_string(i) + "] shares memory with " + pname(i) +
                              "; pass the gradient in its own array");
      }
      buf->grads[i] = reinterpret_cast<const T*>(array_data(g));
    }
    for (std::size_t k = 0; k < n_states; ++k) {
      if (!used[k]) continue;
      PyObject* s = PyTuple_GET_ITEM(state_items[k].ptr(), static_cast<py::ssize_t>(i));
      if (!array_ok<T>(s, true, p)) {
        const py::array like = py::reinterpret_borrow<py::array>(p);
        checked_array<T>(s, std::string("state '") + Family::states[k] + "' of " + pname(i), true,
                         &like, pname(i));
      }
      if (overlaps_raw(s, n, p, n, sizeof(T))) {
        throw py::value_error(std::string("state '") + Family::states[k] + "' of " + pname(i) +
                              " shares memory with the parameter");
      }
      buf->states[i * n_states + k] = reinterpret_cast<T*>(array_data(s));
    }
  }

  if (!is_array_of<std::int64_t>(steps)) {
    throw py::type_error("steps must be a numpy.ndarray of int64, got " + type_name(steps));
  }
  auto steps_a = py::reinterpret_borrow<py::array>(steps);
  if (!(steps_a.flags() & py::array::c_style) || !steps_a.writeable() ||
      static_cast<std::size_t>(steps_a.size()) != count) {
    throw py::value_error("steps must be a writeable C-contiguous int64 array of length " +
                          std::to_string(count));
  }
  double* scalar_ptr = nullptr;
  if (Family::has_scalars) {
    if (!is_array_of<double>(scalars)) {
      throw py::type_error("scalars must be a numpy.ndarray of float64, got " +
                           type_name(scalars));
    }
    auto sc = py::reinterpret_borrow<py::array>(scalars);
    if (!(sc.flags() & py::array::c_style) || !sc.writeable() ||
        static_cast<std::size_t>(sc.size()) != count) {
      throw py::value_error("scalars must be a writeable C-contiguous float64 array of length " +
                            std::to_string(count));
    }
    scalar_ptr = static_cast<double*>(sc.mutable_data());
    buf->keep.push_back(sc);
  }
  auto* step_ptr = static_cast<std::int64_t*>(steps_a.mutable_data());
  buf->keep.push_back(steps_a);

  buf->batch.count = count;
  buf->batch.params = buf->params.data();
  buf->batch.grads = buf->grads.data();
  buf->batch.states = buf->states.data();
  buf->batch.n_states = n_states;
  buf->batch.sizes = buf->sizes.data();
  buf->batch.steps = step_ptr;
  buf->batch.scalars = scalar_ptr;

  const auto kernel = Family::template kernel<T>(kernels_of<T>(active_kernels()));
  auto exec = executor();
  // The arrays in buf are released when the PreparedStep is, with the GIL held.
  return PreparedStep([buf, kernel, c, exec] { kernel(buf->batch, c, *exec); });
}

template <class Family>
PreparedStep prepare(const py::list& params, const py::list& grads, const py::list& states,
                     py::handle steps, py::handle scalars, const typename Family::Config& c) {
  if (params.empty()) {
    return PreparedStep([] {});
  }
  py::handle first = params[0];
  if (is_array_of<float>(first)) {
    return prepare_typed<Family, float>(params, grads, states, steps, scalars, c);
  }
  if (is_array_of<double>(first)) {
    return prepare_typed<Family, double>(params, grads, states, steps, scalars, c);
  }
  if (py::isinstance<py::array>(first)) {
    throw py::type_error("params[0] has dtype " +
                         dtype_name(py::reinterpret_borrow<py::array>(first)) +
                         "; gradstep updates float32 and float64 arrays");
  }
  throw py::type_error("params[0] must be a numpy.ndarray of float32 or float64, got " +
                       type_name(first));
}

template <class Family>
void def_prepare(py::module_& m, const char* name) {
  m.def(name, &prepare<Family>, py::arg("params"), py::arg("grads"), py::arg("states"),
        py::arg("steps"), py::arg("scalars"), py::arg("config"));
}

template <class Config>
py::class_<Config> def_config(py::module_& m, const char* name) {
  py::class_<Config> cls(m, name);
  cls.def(py::init<>()).def("validate", &Config::validate);
  return cls;
}

}  // namespace

void register_optimizers(py::module_& m) {
  py::class_<PreparedStep>(m, "PreparedStep").def("run", &PreparedStep::run);

  using namespace gradstep;
  def_config<SGDConfig>(m, "SGDConfig")
      .def_readwrite("lr", &SGDConfig::lr)
      .def_readwrite("momentum", &SGDConfig::momentum)
      .def_readwrite("dampening", &SGDConfig::dampening)
      .def_readwrite("weight_decay", &SGDConfig::weight_decay)
      .def_readwrite("l1", &SGDConfig::l1)
      .def_readwrite("nesterov", &SGDConfig::nesterov)
      .def_readwrite("maximize", &SGDConfig::maximize)
      .def_readwrite("decoupled_weight_decay", &SGDConfig::decoupled_weight_decay);
  def_config<AdagradConfig>(m, "AdagradConfig")
      .def_readwrite("lr", &AdagradConfig::lr)
      .def_readwrite("lr_decay", &AdagradConfig::lr_decay)
      .def_readwrite("weight_decay", &AdagradConfig::weight_decay)
      .def_readwrite("initial_accumulator_value", &AdagradConfig::initial_accumulator_value)
      .def_readwrite("eps", &AdagradConfig::eps)
      .def_readwrite("maximize", &AdagradConfig::maximize);
  def_config<AdadeltaConfig>(m, "AdadeltaConfig")
      .def_readwrite("lr", &AdadeltaConfig::lr)
      .def_readwrite("rho", &AdadeltaConfig::rho)
      .def_readwrite("eps", &AdadeltaConfig::eps)
      .def_readwrite("weight_decay", &AdadeltaConfig::weight_decay)
      .def_readwrite("maximize", &AdadeltaConfig::maximize);
  def_config<RMSpropConfig>(m, "RMSpropConfig")
      .def_readwrite("lr", &RMSpropConfig::lr)
      .def_readwrite("alpha", &RMSpropConfig::alpha)
      .def_readwrite("eps", &RMSpropConfig::eps)
      .def_readwrite("weight_decay", &RMSpropConfig::weight_decay)
      .def_readwrite("momentum", &RMSpropConfig::momentum)
      .def_readwrite("centered", &RMSpropConfig::centered)
      .def_readwrite("maximize", &RMSpropConfig::maximize);
  def_config<RpropConfig>(m, "RpropConfig")
      .def_readwrite("lr", &RpropConfig::lr)
      .def_readwrite("etaminus", &RpropConfig::etaminus)
      .def_readwrite("etaplus", &RpropConfig::etaplus)
      .def_readwrite("step_size_min", &RpropConfig::step_size_min)
      .def_readwrite("step_size_max", &RpropConfig::step_size_max)
      .def_readwrite("maximize", &RpropConfig::maximize);
  def_config<AdamConfig>(m, "AdamConfig")
      .def_readwrite("lr", &AdamConfig::lr)
      .def_readwrite("beta1", &AdamConfig::beta1)
      .def_readwrite("beta2", &AdamConfig::beta2)
      .def_readwrite("eps", &AdamConfig::eps)
      .def_readwrite("weight_decay", &AdamConfig::weight_decay)
      .def_readwrite("amsgrad", &AdamConfig::amsgrad)
      .def_readwrite("maximize", &AdamConfig::maximize)
      .def_readwrite("decoupled_weight_decay", &AdamConfig::decoupled_weight_decay);
  def_config<NAdamConfig>(m, "NAdamConfig")
      .def_readwrite("lr", &NAdamConfig::lr)
      .def_readwrite("beta1", &NAdamConfig::beta1)
      .def_readwrite("beta2", &NAdamConfig::beta2)
      .def_readwrite("eps", &NAdamConfig::eps)
      .def_readwrite("weight_decay", &NAdamConfig::weight_decay)
      .def_readwrite("momentum_decay", &NAdamConfig::momentum_decay)
      .def_readwrite("maximize", &NAdamConfig::maximize)
      .def_readwrite("decoupled_weight_decay", &NAdamConfig::decoupled_weight_decay);
  def_config<RAdamConfig>(m, "RAdamConfig")
      .def_readwrite("lr", &RAdamConfig::lr)
      .def_readwrite("beta1", &RAdamConfig::beta1)
      .def_readwrite("beta2", &RAdamConfig::beta2)
      .def_readwrite("eps", &RAdamConfig::eps)
      .def_readwrite("weight_decay", &RAdamConfig::weight_decay)
      .def_readwrite("maximize", &RAdamConfig::maximize)
      .def_readwrite("decoupled_weight_decay", &RAdamConfig::decoupled_weight_decay);

  def_prepare<SGDFamily>(m, "prepare_sgd");
  def_prepare<AdagradFamily>(m, "prepare_adagrad");
  def_prepare<AdadeltaFamily>(m, "prepare_adadelta");
  def_prepare<RMSpropFamily>(m, "prepare_rmsprop");
  def_prepare<RpropFamily>(m, "prepare_rprop");
  def_prepare<AdamFamily>(m, "prepare_adam");
  def_prepare<AdamaxFamily>(m, "prepare_adamax");
  def_prepare<NAdamFamily>(m, "prepare_nadam");
  def_prepare<RAdamFamily>(m, "prepare_radam");
}

}  // namespace gradstep_bindings
