"""gradstep.torch: torch.optim.Optimizer subclasses that run gradstep's kernels.

Trajectory parity with torch.optim on a small nn.Module (float64: rtol 1e-10, float32:
rtol 1e-5, whole tensors after every step), state dicts moving both ways, torch's
lr_schedulers, and an error table whose every case leaves params and state untouched.
"""

from __future__ import annotations

import copy
import re
import weakref
from collections.abc import Iterator
from typing import Any, Callable

import pytest

from conftest import OPTIMIZER_CASES, case_id

torch = pytest.importorskip("torch")
gt = pytest.importorskip("gradstep.torch")

pytestmark = pytest.mark.filterwarnings("error")

N_STEPS = 50
RTOL = {torch.float64: 1e-10, torch.float32: 1e-5}
NAMES = ["SGD", "Adagrad", "Adadelta", "RMSprop", "Rprop", "Adam", "AdamW", "Adamax",
         "NAdam", "RAdam"]
# Cases from the shared table that torch.optim can run too (l1 is gradstep-only).
CASES = [c for c in OPTIMIZER_CASES if "l1" not in c[1]]


@pytest.fixture(params=[torch.float64, torch.float32], ids=["float64", "float32"])
def dtype(request: pytest.FixtureRequest) -> Iterator[torch.dtype]:
    """Sets torch's default dtype: torch.optim keeps its step counters (and NAdam's
    mu_product) in it, so the float64 runs are float64 throughout."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(request.param)
    yield request.param
    torch.set_default_dtype(old)


def make_model(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))


def make_data(seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(32, 4, generator=g)
    y = torch.sin(x.sum(dim=1, keepdim=True)) + 0.1 * torch.randn(32, 1, generator=g)
    return x, y


def train_step(model: torch.nn.Module, opt: torch.optim.Optimizer,
               data: tuple[torch.Tensor, torch.Tensor]) -> float:
    """One step on the MSE loss (on its negative with ``maximize=True``, so that
    maximizing optimizers train the model too instead of blowing it up)."""
    x, y = data
    sign = -1.0 if opt.param_groups[0]["maximize"] else 1.0
    opt.zero_grad()
    loss = torch.nn.functional.mse_loss(model(x), y)
    (sign * loss).backward()
    opt.step()
    return float(loss.detach())


def assert_close(actual: torch.Tensor, expected: torch.Tensor, rtol: float, what: str) -> None:
    """Whole-tensor comparison; atol scales with the tensor so that entries that pass
    through zero do not need an absolute tolerance of their own."""
    assert actual.dtype == expected.dtype and actual.shape == expected.shape, what
    scale = float(expected.abs().max()) if expected.numel() else 0.0
    torch.testing.assert_close(actual, expected, rtol=rtol, atol=rtol * scale, msg=what)


def assert_same_params(a: torch.nn.Module, b: torch.nn.Module, rtol: float, what: str) -> None:
    for (name, p), q in zip(a.named_parameters(), b.parameters()):
        assert_close(p.detach(), q.detach(), rtol, f"{what}: {name}")


def distance(a: torch.nn.Module, b: torch.nn.Module) -> float:
    """The largest relative (to the tensor's scale) difference between two models."""
    return max(float((p.detach().double() - q.detach().double()).abs().max())
               / float(q.detach().abs().max()) for p, q in zip(a.parameters(), b.parameters()))


def state_distance(a: torch.optim.Optimizer, b: torch.optim.Optimizer) -> float:
    """The largest relative difference between two optimizers' state tensors."""
    sa, sb = a.state_dict()["state"], b.state_dict()["state"]
    return max((float((x.double() - sb[i][k].double()).abs().max())
                / max(float(sb[i][k].abs().max()), 1e-300)
                for i in sa for k, x in sa[i].items() if x.dim() > 0), default=0.0)


def assert_same_state(a: torch.optim.Optimizer, b: torch.optim.Optimizer, rtol: float) -> None:
    sa, sb = a.state_dict()["state"], b.state_dict()["state"]
    assert sa.keys() == sb.keys()
    for i in sa:
        assert sa[i].keys() == sb[i].keys(), f"state[{i}]"
        for key in sa[i]:
            x, y = sa[i][key], sb[i][key]
            assert isinstance(x, torch.Tensor) and isinstance(y, torch.Tensor)
            assert_close(x, y, rtol, f"state[{i}][{key!r}]")


def torch_pair(name: str, hyper: dict[str, Any], seed: int = 0) -> tuple[
        torch.nn.Module, torch.optim.Optimizer, torch.nn.Module, torch.optim.Optimizer]:
    ours_model = make_model(seed)
    ref_model = copy.deepcopy(ours_model)
    ours = getattr(gt, name)(ours_model.parameters(), **hyper)
    ref = getattr(torch.optim, name)(ref_model.parameters(), foreach=False, **hyper)
    return ours_model, ours, ref_model, ref


# -- parity -----------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=[case_id(c) for c in CASES])
def test_trajectory_parity(case: tuple[str, dict[str, Any]], dtype: torch.dtype) -> None:
    """50 steps of gradstep.torch.X and torch.optim.X from the same model and data:
    the same parameters after every step and the same state at the end.

    float32 rounding compounds through the training dynamics; where torch's own float32
    run strays from exact arithmetic (its float64 shadow run) by more than rtol — centered
    RMSprop with momentum, whose normalised gradients amplify small differences — the
    tolerance is four times that distance: gradstep must be about as close to torch as
    torch is to the exact trajectory (with the same rounding error as torch, the two are
    at most twice that apart; across seeds gradstep's float32 error is torch's)."""
    name, hyper = case
    model, opt, ref_model, ref = torch_pair(name, hyper)
    data = make_data()
    if dtype == torch.float32:
        exact_model = copy.deepcopy(ref_model).double()
        exact = getattr(torch.optim, name)(exact_model.parameters(), foreach=False, **hyper)
        exact_data = (data[0].double(), data[1].double())
    rtol = state_rtol = RTOL[dtype]
    for t in range(N_STEPS):
        loss = train_step(model, opt, data)
        ref_loss = train_step(ref_model, ref, data)
        if dtype == torch.float32:
            train_step(exact_model, exact, exact_data)
            rtol = max(RTOL[dtype], 4 * distance(ref_model, exact_model))
            state_rtol = max(RTOL[dtype], 4 * state_distance(ref, exact))
        assert loss == pytest.approx(ref_loss, rel=10 * rtol, abs=1e-12)
        assert_same_params(model, ref_model, rtol, f"step {t + 1}")
    assert_same_state(opt, ref, state_rtol)
    for p in model.parameters():
        assert p.dtype == dtype


def test_every_optimizer_is_covered() -> None:
    assert {name for name, _ in CASES} == set(NAMES)
    for name in NAMES:
        assert issubclass(getattr(gt, name), torch.optim.Optimizer)
    assert issubclass(gt.AdamW, gt.Adam)


@pytest.mark.parametrize("name", NAMES)
def test_defaults_and_groups_match_torch(name: str) -> None:
    model = make_model()
    ours = getattr(gt, name)(model.parameters())
    ref = getattr(torch.optim, name)(model.parameters())
    extras = {"l1", "decoupled_weight_decay"} if name == "SGD" else set()
    assert {k: v for k, v in ours.defaults.items() if k not in extras} == ref.defaults
    ours_groups = ours.state_dict()["param_groups"]
    ref_groups = ref.state_dict()["param_groups"]
    assert [{k: v for k, v in g.items() if k not in extras} for g in ours_groups] == ref_groups
    assert ours.state_dict()["state"].keys() == ref.state_dict()["state"].keys()


def test_param_groups_and_mixed_dtypes() -> None:
    """Two groups with their own hyperparameters, one of them float32 and float64 mixed
    (two kernel calls), a frozen parameter and a parameter without grad: same as torch."""
    torch.manual_seed(3)
    shapes = [(5, 3), (3,), (4,), (2, 2)]

    def make() -> list[torch.nn.Parameter]:
        torch.manual_seed(3)
        ps = [torch.nn.Parameter(torch.randn(s, dtype=torch.float64)) for s in shapes]
        ps[1] = torch.nn.Parameter(ps[1].detach().float())
        return ps

    ps, qs = make(), make()

    def groups(p: list[torch.nn.Parameter]) -> list[dict[str, Any]]:
        return [{"params": p[:2], "lr": 0.05, "weight_decay": 0.1}, {"params": p[2:]}]

    ours = gt.Adam(groups(ps), lr=0.01, amsgrad=True)
    ref = torch.optim.Adam(groups(qs), lr=0.01, amsgrad=True, foreach=False)
    g = torch.Generator().manual_seed(4)
    for t in range(20):
        grads = [torch.randn(s, generator=g, dtype=torch.float64) for s in shapes]
        for params in (ps, qs):
            for k, (p, gr) in enumerate(zip(params, grads)):
                # p[3] never gets a gradient; p[2] only every other step.
                p.grad = None if k == 3 or (k == 2 and t % 2) else gr.to(p.dtype)
        ours.step()
        ref.step()
        for p, q in zip(ps, qs):
            assert_close(p.detach(), q.detach(), 1e-5 if p.dtype == torch.float32 else 1e-12,
                         f"step {t + 1}")
    assert ps[3] not in ours.state
    assert float(ours.state[ps[2]]["step"]) == 10.0
    assert_same_state(ours, ref, 1e-6)


def test_updates_in_place_without_copies() -> None:
    model = make_model()
    opt = gt.RMSprop(model.parameters(), lr=0.01, momentum=0.9, centered=True)
    data = make_data()
    train_step(model, opt, data)
    ptrs = {n: p.data_ptr() for n, p in model.named_parameters()}
    state_objs = {id(p): dict(opt.state[p]) for p in model.parameters()}
    views = {n: p.detach() for n, p in model.named_parameters()}  # share memory
    before = {n: v.clone() for n, v in views.items()}
    train_step(model, opt, data)
    for n, p in model.named_parameters():
        assert p.data_ptr() == ptrs[n]
        assert not torch.equal(views[n], before[n])  # the update landed in the same memory
        for key, t in opt.state[p].items():
            assert t is state_objs[id(p)][key]  # state tensors updated in place


def test_closure_and_zero_grad() -> None:
    model = make_model()
    opt = gt.SGD(model.parameters(), lr=0.1, momentum=0.9)
    x, y = make_data()
    calls = []

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(model(x), y)
        loss.backward()
        calls.append(float(loss.detach()))
        return loss

    with torch.no_grad():  # the closure still gets gradients, as in torch
        loss = opt.step(closure)
    assert isinstance(loss, torch.Tensor) and calls == [float(loss.detach())]
    assert opt.step(closure) < loss
    opt.zero_grad()
    assert all(p.grad is None for p in model.parameters())
    assert opt.step() is None  # no grads: nothing to do, nothing changes


def test_step_hooks_run() -> None:
    model = make_model()
    opt = gt.Adam(model.parameters())
    seen = []
    opt.register_step_pre_hook(lambda o, a, k: seen.append("pre"))
    opt.register_step_post_hook(lambda o, a, k: seen.append("post"))
    train_step(model, opt, make_data())
    assert seen == ["pre", "post"]


# -- step counters and state dicts ------------------------------------------------


@pytest.mark.parametrize("name", [n for n in NAMES if n != "SGD"])
def test_step_is_torch_float_tensor(name: str, dtype: torch.dtype) -> None:
    model, opt, ref_model, ref = torch_pair(name, {})
    data = make_data()
    for _ in range(3):
        train_step(model, opt, data)
        train_step(ref_model, ref, data)
    for p, q in zip(model.parameters(), ref_model.parameters()):
        s, r = opt.state[p]["step"], ref.state[q]["step"]
        assert isinstance(s, torch.Tensor) and s.dim() == 0
        assert s.dtype == r.dtype == dtype and float(s) == float(r) == 3.0
        if name == "NAdam":
            m, mr = opt.state[p]["mu_product"], ref.state[q]["mu_product"]
            assert m.dtype == mr.dtype and m.dim() == 0
            assert float(m) == pytest.approx(float(mr), rel=RTOL[dtype])


def test_editing_step_counter_takes_effect() -> None:
    """The step tensor is the only record of the count: rewinding it (as torch users
    do) changes the bias correction exactly as it does in torch.optim."""
    model, opt, ref_model, ref = torch_pair("Adam", {"lr": 0.01})
    data = make_data()
    for _ in range(5):
        train_step(model, opt, data)
        train_step(ref_model, ref, data)
    for o, m in ((opt, model), (ref, ref_model)):
        for i, p in enumerate(m.parameters()):
            if i % 2:
                o.state[p]["step"].fill_(1.0)  # in place
            else:
                o.state[p]["step"] = torch.tensor(100.0)  # replaced
    for _ in range(5):
        train_step(model, opt, data)
        train_step(ref_model, ref, data)
    assert_same_params(model, ref_model, 1e-5, "after rewinding")
    assert_same_state(opt, ref, 1e-5)


@pytest.mark.parametrize("case", CASES, ids=[case_id(c) for c in CASES])
@pytest.mark.parametrize("direction", ["torch_to_gradstep", "gradstep_to_torch"])
def test_state_dict_round_trip(case: tuple[str, dict[str, Any]], direction: str,
                               dtype: torch.dtype) -> None:
    """Train 20 steps with one, move model and optimizer state to the other, train 10
    more: the same as the first never stopping (params compared after every step, the
    state after the first)."""
    name, hyper = case
    model, opt, ref_model, ref = torch_pair(name, hyper)
    first, first_model = (ref, ref_model) if direction == "torch_to_gradstep" else (opt, model)
    data = make_data()
    for _ in range(20):
        train_step(first_model, first, data)
    saved = copy.deepcopy(first.state_dict())
    weights = copy.deepcopy(first_model.state_dict())
    # the other optimizer, on a fresh model that gets the saved weights
    second_model = make_model(seed=99)
    second_model.load_state_dict(weights)
    if direction == "torch_to_gradstep":
        second = getattr(gt, name)(second_model.parameters(), **hyper)
    else:
        second = getattr(torch.optim, name)(second_model.parameters(), foreach=False, **hyper)
    second.load_state_dict(saved)
    for t in range(10):
        train_step(first_model, first, data)
        train_step(second_model, second, data)
        assert_same_params(second_model, first_model, RTOL[dtype], f"{direction} {t + 1}")
        if t == 0:  # the loaded state was read as saved (later, rounding compounds)
            assert_same_state(second, first, RTOL[dtype])


def test_state_dict_save_load_file(tmp_path: Any) -> None:
    model = make_model()
    opt = gt.NAdam(model.parameters(), lr=0.01)
    data = make_data()
    for _ in range(5):
        train_step(model, opt, data)
    path = tmp_path / "ckpt.pt"
    torch.save({"model": model.state_dict(), "opt": opt.state_dict()}, path)
    for _ in range(5):
        train_step(model, opt, data)
    ckpt = torch.load(path)
    model2 = make_model(seed=5)
    model2.load_state_dict(ckpt["model"])
    opt2 = gt.NAdam(model2.parameters(), lr=0.01)
    opt2.load_state_dict(ckpt["opt"])
    for _ in range(5):
        train_step(model2, opt2, data)
    assert_same_params(model2, model, 0.0, "resumed")


def test_sgd_state_dict_from_old_gradstep_keys() -> None:
    """A torch SGD state dict has no l1 / decoupled_weight_decay: the defaults fill in."""
    _, opt, ref_model, ref = torch_pair("SGD", {"lr": 0.1, "momentum": 0.9})
    data = make_data()
    train_step(ref_model, ref, data)
    opt.load_state_dict(copy.deepcopy(ref.state_dict()))
    assert opt.param_groups[0]["l1"] == 0.0
    assert opt.param_groups[0]["decoupled_weight_decay"] is False


# -- lr schedulers ----------------------------------------------------------------


SCHEDULERS: list[tuple[str, dict[str, Any], Callable[[torch.optim.Optimizer], Any]]] = [
    ("SGD", {"lr": 0.1, "momentum": 0.9},
     lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=10, gamma=0.5)),
    ("AdamW", {"lr": 0.01},
     lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=7, gamma=0.3)),
    ("SGD", {"lr": 0.1, "momentum": 0.9},
     lambda o: torch.optim.lr_scheduler.OneCycleLR(o, max_lr=0.2, total_steps=N_STEPS)),
    ("Adam", {"lr": 0.01},
     lambda o: torch.optim.lr_scheduler.OneCycleLR(o, max_lr=0.05, total_steps=N_STEPS)),
    ("NAdam", {"lr": 0.01},
     lambda o: torch.optim.lr_scheduler.OneCycleLR(o, max_lr=0.05, total_steps=N_STEPS,
                                                   anneal_strategy="linear")),
]


@pytest.mark.parametrize("name,hyper,make_scheduler", SCHEDULERS,
                         ids=[f"{n}-{i}" for i, (n, _, _) in enumerate(SCHEDULERS)])
def test_lr_schedulers(name: str, hyper: dict[str, Any],
                       make_scheduler: Callable[[torch.optim.Optimizer], Any],
                       dtype: torch.dtype) -> None:
    model, opt, ref_model, ref = torch_pair(name, hyper)
    sched, ref_sched = make_scheduler(opt), make_scheduler(ref)
    data = make_data()
    lrs = []
    for t in range(N_STEPS):
        train_step(model, opt, data)
        train_step(ref_model, ref, data)
        sched.step()
        ref_sched.step()
        assert opt.param_groups[0]["lr"] == ref.param_groups[0]["lr"]
        lrs.append(opt.param_groups[0]["lr"])
        assert_same_params(model, ref_model, RTOL[dtype], f"step {t + 1}")
    assert len(set(lrs)) > 2  # the schedule really moved the learning rate


# -- errors -----------------------------------------------------------------------


def snapshot(model_params: list[torch.Tensor], opt: torch.optim.Optimizer) -> Any:
    return ([p.detach().clone() for p in model_params],
            {i: {k: (v.clone() if isinstance(v, torch.Tensor) else v) for k, v in s.items()}
             for i, s in copy.deepcopy(opt.state_dict())["state"].items()},
            len(opt.state))


def assert_unchanged(before: Any, after: Any) -> None:
    (p0, s0, n0), (p1, s1, n1) = before, after
    assert n0 == n1
    for a, b in zip(p0, p1):
        assert torch.equal(a, b)
    assert s0.keys() == s1.keys()
    for i in s0:
        assert s0[i].keys() == s1[i].keys()
        for k in s0[i]:
            assert torch.equal(torch.as_tensor(s0[i][k]), torch.as_tensor(s1[i][k]))


def _bad_second_grad(make_grad: Callable[[torch.Tensor], torch.Tensor]) -> Callable[..., None]:
    def setup(ps: list[torch.nn.Parameter], opt: torch.optim.Optimizer) -> None:
        ps[1].grad = make_grad(ps[1])
    return setup


def _set(key: str, value: Any) -> Callable[..., None]:
    def setup(ps: list[torch.nn.Parameter], opt: torch.optim.Optimizer) -> None:
        opt.param_groups[0][key] = value
    return setup


def _replace_data(ps: list[torch.nn.Parameter], opt: torch.optim.Optimizer) -> None:
    ps[1].data = torch.randn(4, 3).t()


def _bad_state_shape(ps: list[torch.nn.Parameter], opt: torch.optim.Optimizer) -> None:
    sd = copy.deepcopy(opt.state_dict())
    sd["state"][1]["exp_avg"] = torch.zeros(7)  # torch's load does not check shapes
    opt.load_state_dict(sd)


def _bad_step(ps: list[torch.nn.Parameter], opt: torch.optim.Optimizer) -> None:
    opt.state[ps[1]]["step"] = torch.tensor(2.5)


def _bad_step_in_place(ps: list[torch.nn.Parameter], opt: torch.optim.Optimizer) -> None:
    opt.state[ps[1]]["step"].fill_(2.5)  # the same tensor, edited


def _state_storage_swapped(ps: list[torch.nn.Parameter], opt: torch.optim.Optimizer) -> None:
    opt.state[ps[1]]["exp_avg"].data = torch.zeros(7)  # the same object, other memory


def _transposed_in_place(ps: list[torch.nn.Parameter], opt: torch.optim.Optimizer) -> None:
    # the same object, memory and shape, but no longer contiguous
    ps[1].data = ps[1].data.view(4, 3).t()


# (what, setup before the failing step, exception, message pattern); the last two
# need existing state, so they run only on a later step.
STEP_ERRORS: list[tuple[str, Callable[..., None], type[Exception], str]] = [
    ("sparse grad", _bad_second_grad(lambda p: torch.zeros_like(p).to_sparse()), TypeError,
     r"param_groups\[0\]\['params'\]\[1\]\.grad has layout torch\.sparse_coo.*sparse"),
    ("non-contiguous grad", _bad_second_grad(lambda p: torch.zeros(p.shape[::-1]).t()),
     ValueError, r"\['params'\]\[1\]\.grad is not contiguous"),
    ("non-contiguous param", _replace_data, ValueError,
     r"param_groups\[0\]\['params'\]\[1\] is not contiguous .*never works on a hidden copy"),
    ("negative lr", _set("lr", -0.1), ValueError, r"Invalid lr: -0\.1"),
    ("beta1 = 1", _set("betas", (1.0, 0.999)), ValueError, r"beta1.*1\.0"),
    ("lr not a number", _set("lr", "fast"), TypeError, r"Invalid lr: 'fast'"),
    ("differentiable", _set("differentiable", True), ValueError, r"differentiable"),
    ("state of the wrong shape", _bad_state_shape, ValueError,
     r"state 'exp_avg' of param_groups\[0\]\['params'\]\[1\] has shape \(7,\), expected \(3,"),
    ("fractional step", _bad_step, ValueError,
     r"state\['step'\] of param_groups\[0\]\['params'\]\[1\] must be a whole number"),
]
# Changes that keep the objects a previous step saw (so its cached views and step
# buffer must not be trusted): they need existing state, so later steps only.
CACHE_ERRORS: list[tuple[str, Callable[..., None], type[Exception], str]] = [
    ("fractional step in place", _bad_step_in_place, ValueError,
     r"state\['step'\] of param_groups\[0\]\['params'\]\[1\] must be a whole number"),
    ("state storage swapped", _state_storage_swapped, ValueError,
     r"state 'exp_avg' of param_groups\[0\]\['params'\]\[1\] has shape \(7,\)"),
    ("param transposed in place", _transposed_in_place, ValueError,
     r"param_groups\[0\]\['params'\]\[1\] is not contiguous \(shape \(3, 4\), strides "
     r"\(1, 3\)\)"),
]
LATER_ERRORS = STEP_ERRORS + CACHE_ERRORS


@pytest.mark.parametrize(
    "what,setup,exc,pattern,fresh",
    [(*e, fresh) for fresh in (True, False) for e in (STEP_ERRORS[:-2] if fresh else LATER_ERRORS)],
    ids=[f"{e[0]}-{'first_step' if fresh else 'later_step'}"
         for fresh in (True, False) for e in (STEP_ERRORS[:-2] if fresh else LATER_ERRORS)])
def test_step_errors_leave_everything_unchanged(what: str, setup: Callable[..., None],
                                                exc: type[Exception], pattern: str,
                                                fresh: bool) -> None:
    torch.manual_seed(0)
    ps = [torch.nn.Parameter(torch.randn(4)), torch.nn.Parameter(torch.randn(3, 4)),
          torch.nn.Parameter(torch.randn(2))]
    opt = gt.Adam(ps, lr=0.1)
    if not fresh:
        for p in ps:
            p.grad = torch.ones_like(p)
        opt.step()
        opt.step()  # the second step runs from what the first one cached
    for p in ps:
        p.grad = torch.randn_like(p)
    setup(ps, opt)
    before = snapshot(ps, opt)
    with pytest.raises(exc, match=pattern):
        opt.step()
    assert_unchanged(before, snapshot(ps, opt))
    if fresh:
        assert len(opt.state) == 0  # no state was left behind for params[0]


def _param(**kw: Any) -> torch.Tensor:
    return torch.nn.Parameter(torch.zeros(3, **kw), requires_grad=kw.get("dtype") in
                              (None, torch.float16, torch.complex64))


CONSTRUCTOR_ERRORS: list[tuple[str, Callable[[], Any], type[Exception], str]] = [
    ("meta device", lambda: gt.Adam([torch.nn.Parameter(torch.zeros(3, device="meta"))]),
     TypeError, r"param_groups\[0\]\['params'\]\[0\] is on device 'meta'; .*CPU tensors only"),
    ("float16", lambda: gt.SGD([torch.nn.Parameter(torch.zeros(3, dtype=torch.float16))]),
     TypeError, r"dtype torch\.float16; .*float32 and torch\.float64"),
    ("complex", lambda: gt.Adam([torch.nn.Parameter(torch.zeros(3, dtype=torch.complex64))]),
     TypeError, r"dtype torch\.complex64"),
    ("int64", lambda: gt.Adam([torch.zeros(3, dtype=torch.int64)]), TypeError,
     r"dtype torch\.int64"),
    ("non-contiguous", lambda: gt.Adam([torch.nn.Parameter(torch.zeros(4, 3).t())]),
     ValueError, r"is not contiguous \(shape \(3, 4\), strides \(1, 3\)\)"),
    ("overlapping", lambda: gt.Adam([torch.zeros(6)[:4], torch.zeros(6)]), None, ""),
    ("negative lr", lambda: gt.Adam([torch.nn.Parameter(torch.zeros(3))], lr=-1.0),
     ValueError, r"Invalid lr: -1\.0 \(expected a finite number >= 0\)"),
    ("bad etas", lambda: gt.Rprop([torch.nn.Parameter(torch.zeros(3))], etas=(1.5, 1.2)),
     ValueError, r"Invalid etas"),
    ("nesterov", lambda: gt.SGD([torch.nn.Parameter(torch.zeros(3))], nesterov=True),
     ValueError, r"nesterov"),
    ("bad group", lambda: gt.Adam([{"params": [torch.nn.Parameter(torch.zeros(3))]},
                                   {"params": [torch.nn.Parameter(torch.zeros(2))],
                                    "eps": -1.0}]),
     ValueError, r"param group 1: Invalid eps: -1\.0"),
    ("differentiable", lambda: gt.Adam([torch.nn.Parameter(torch.zeros(3))],
                                       differentiable=True),
     ValueError, r"Invalid differentiable: True"),
    ("lr tensor of 2", lambda: gt.Adam([torch.nn.Parameter(torch.zeros(3))],
                                       lr=torch.tensor([0.1, 0.2])),
     ValueError, r"Invalid lr: a tensor with 2 elements"),
]


@pytest.mark.parametrize("what,make,exc,pattern", CONSTRUCTOR_ERRORS,
                         ids=[e[0] for e in CONSTRUCTOR_ERRORS])
def test_constructor_errors(what: str, make: Callable[[], Any], exc: type[Exception] | None,
                            pattern: str) -> None:
    if exc is None:  # overlapping views of one buffer
        base = torch.zeros(6)
        with pytest.raises(ValueError, match=r"share memory"):
            gt.Adam([base[:4], base[2:]])
        gt.Adam([base[:3], base[3:]])  # disjoint views are fine
        return
    with pytest.raises(exc, match=pattern):
        make()


def test_add_param_group_is_atomic() -> None:
    opt = gt.Adam([torch.nn.Parameter(torch.zeros(3))])
    bad = torch.nn.Parameter(torch.zeros(3, dtype=torch.float16))
    with pytest.raises(TypeError, match=re.escape("param_groups[1]['params'][0]")):
        opt.add_param_group({"params": [bad], "lr": 0.1})
    assert len(opt.param_groups) == 1
    opt.add_param_group({"params": [torch.nn.Parameter(torch.zeros(2))], "lr": 0.1})
    assert opt.param_groups[1]["lr"] == 0.1 and opt.param_groups[1]["amsgrad"] is False


def test_params_without_grad_are_skipped_like_torch() -> None:
    model, opt, ref_model, ref = torch_pair("Adam", {"lr": 0.01})
    for m in (model, ref_model):
        m[0].weight.requires_grad_(False)  # frozen: never gets a grad
    data = make_data()
    frozen = model[0].weight.detach().clone()
    for _ in range(5):
        train_step(model, opt, data)
        train_step(ref_model, ref, data)
    assert torch.equal(model[0].weight, frozen)
    assert model[0].weight not in opt.state
    assert_same_params(model, ref_model, 1e-5, "frozen first layer")
    assert_same_state(opt, ref, 1e-5)


def test_tensor_lr_is_accepted() -> None:
    model, opt, ref_model, ref = torch_pair("SGD", {"lr": torch.tensor(0.05), "momentum": 0.5})
    data = make_data()
    for _ in range(5):
        train_step(model, opt, data)
        train_step(ref_model, ref, data)
    assert_same_params(model, ref_model, 1e-5, "tensor lr")


def test_copy_and_pickle_keep_working() -> None:
    import pickle

    model = make_model()
    opt = gt.NAdam(model.parameters(), lr=0.01)
    data = make_data()
    train_step(model, opt, data)
    for other in (copy.deepcopy(opt), pickle.loads(pickle.dumps(opt))):
        assert isinstance(other, gt.NAdam)
        assert other.state_dict()["param_groups"] == opt.state_dict()["param_groups"]
    model2 = copy.deepcopy(model)
    opt2 = gt.NAdam(model2.parameters(), lr=0.01)
    opt2.load_state_dict(copy.deepcopy(opt).state_dict())
    train_step(model, opt, data)
    train_step(model2, opt2, data)
    assert_same_params(model2, model, 0.0, "after deepcopy")


def test_replaced_param_data_is_updated() -> None:
    """Views of params are reused between steps only while the memory is the same:
    after ``p.data = ...`` the update goes to the new tensor, as in torch."""
    model, opt, ref_model, ref = torch_pair("Adam", {"lr": 0.01})
    data = make_data()
    train_step(model, opt, data)
    train_step(ref_model, ref, data)
    fresh = torch.randn(model[0].weight.shape)
    model[0].weight.data = fresh.clone()
    ref_model[0].weight.data = fresh.clone()
    for _ in range(3):
        train_step(model, opt, data)
        train_step(ref_model, ref, data)
    assert_same_params(model, ref_model, 1e-5, "after replacing .data")


def test_autograd_sees_the_in_place_update() -> None:
    """Like torch's in-place ops, a step bumps the params' version counters, so a graph
    that saved a parameter before the step refuses to backpropagate through it."""
    p = torch.nn.Parameter(torch.ones(3))
    opt = gt.SGD([p], lr=0.1)
    loss = (p * p).sum()
    p.grad = torch.ones(3)
    opt.step()
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        loss.backward()


# -- changes between steps ----------------------------------------------------------
# gradstep.torch keeps, per param group, the NumPy views and step counters of the
# last step and reuses them while every tensor is the object it saw, over the same
# memory. Each change below must still act exactly as it does in torch.optim.


def _each_param(edit: Callable[[torch.optim.Optimizer, torch.Tensor, int], None]
                ) -> Callable[[torch.nn.Module, torch.optim.Optimizer], None]:
    def mutate(model: torch.nn.Module, opt: torch.optim.Optimizer) -> None:
        for i, p in enumerate(model.parameters()):
            edit(opt, p, i)
    return mutate


def _swap_storage(opt: torch.optim.Optimizer, p: torch.Tensor, i: int) -> None:
    s = opt.state[p]["exp_avg_sq"]
    s.data = s.detach() * 2.0  # the same object over new memory


def _set_storage(opt: torch.optim.Optimizer, p: torch.Tensor, i: int) -> None:
    s = opt.state[p]["exp_avg"]
    s.set_(s.detach() * 0.5)


def _reload(model: torch.nn.Module, opt: torch.optim.Optimizer) -> None:
    opt.load_state_dict(copy.deepcopy(opt.state_dict()))


def _freeze_first(model: torch.nn.Module, opt: torch.optim.Optimizer) -> None:
    model[0].bias.requires_grad_(False)  # its grad is None from now on (or stays, zeroed)
    model[0].bias.grad = None


def _set_group(key: str, value: Any) -> Callable[[torch.nn.Module, torch.optim.Optimizer], None]:
    def mutate(model: torch.nn.Module, opt: torch.optim.Optimizer) -> None:
        opt.param_groups[0][key] = value
    return mutate


CHANGES: list[tuple[str, str, dict[str, Any],
                    Callable[[torch.nn.Module, torch.optim.Optimizer], None]]] = [
    ("state replaced", "Adam", {"lr": 0.01}, _each_param(
        lambda o, p, i: o.state[p].__setitem__("exp_avg", o.state[p]["exp_avg"] * 0.5))),
    ("state edited in place", "Adam", {"lr": 0.01}, _each_param(
        lambda o, p, i: o.state[p]["exp_avg"].mul_(0.5))),
    ("state storage swapped (.data)", "Adam", {"lr": 0.01}, _each_param(_swap_storage)),
    ("state storage swapped (set_)", "Adam", {"lr": 0.01}, _each_param(_set_storage)),
    ("state entry deleted", "Adam", {"lr": 0.01, "amsgrad": True}, _each_param(
        lambda o, p, i: o.state.pop(p) if i % 2 else None)),
    ("step replaced and edited", "AdamW", {"lr": 0.01}, _each_param(
        lambda o, p, i: o.state[p].__setitem__("step", torch.tensor(30.0)) if i % 2
        else o.state[p]["step"].fill_(2.0))),
    ("mu_product replaced and edited", "NAdam", {"lr": 0.01}, _each_param(
        lambda o, p, i: o.state[p].__setitem__("mu_product", torch.tensor(0.5)) if i % 2
        else o.state[p]["mu_product"].mul_(0.9))),
    ("momentum buffer deleted", "SGD", {"lr": 0.05, "momentum": 0.9}, _each_param(
        lambda o, p, i: o.state[p].pop("momentum_buffer") if i % 2 else None)),
    ("grad storage swapped (.data)", "Adam", {"lr": 0.01}, _each_param(
        lambda o, p, i: setattr(p.grad, "data", p.grad.detach() * 2.0))),
    ("param data replaced", "RMSprop", {"lr": 0.01, "centered": True}, _each_param(
        lambda o, p, i: setattr(p, "data", p.detach() * 0.9) if i % 2 else None)),
    ("grad disappears", "Adagrad", {"lr": 0.05}, _freeze_first),
    ("load_state_dict", "RAdam", {"lr": 0.01}, _reload),
    ("lr replaced", "Adamax", {"lr": 0.01}, _set_group("lr", 0.002)),
    ("betas replaced", "Adam", {"lr": 0.01}, _set_group("betas", (0.8, 0.99))),
    ("tensor lr filled in place", "Adam", {"lr": torch.tensor(0.01)},
     lambda m, o: o.param_groups[0]["lr"].fill_(0.002)),
    ("momentum switched on", "SGD", {"lr": 0.05}, _set_group("momentum", 0.9)),
]


@pytest.mark.parametrize("set_to_none", [True, False], ids=["new_grads", "kept_grads"])
@pytest.mark.parametrize("what,name,hyper,mutate", CHANGES, ids=[c[0] for c in CHANGES])
def test_changes_between_steps_act_as_in_torch(
        what: str, name: str, hyper: dict[str, Any],
        mutate: Callable[[torch.nn.Module, torch.optim.Optimizer], None],
        set_to_none: bool) -> None:
    """Five steps, the same change to both optimizers, five more: the same params after
    every step and the same state at the end. With ``zero_grad(set_to_none=False)`` the
    grads are the same tensors every step (accumulated in place)."""
    model, opt, ref_model, ref = torch_pair(name, hyper)
    x, y = make_data()
    for t in range(10):
        if t == 5:
            mutate(model, opt)
            mutate(ref_model, ref)
        for m, o in ((model, opt), (ref_model, ref)):
            o.zero_grad(set_to_none=set_to_none)
            torch.nn.functional.mse_loss(m(x), y).backward()
            o.step()
        assert_same_params(model, ref_model, 1e-5, f"{what}, step {t + 1}")
    assert_same_state(opt, ref, 1e-5)


def test_new_param_group_between_steps() -> None:
    model, opt, ref_model, ref = torch_pair("Adam", {"lr": 0.01})
    x, y = make_data()
    extra = [torch.nn.Parameter(torch.ones(3, dtype=torch.float64)) for _ in range(2)]
    for t in range(8):
        if t == 3:
            opt.add_param_group({"params": [extra[0]], "lr": 0.1})
            ref.add_param_group({"params": [extra[1]], "lr": 0.1})
        for m, o, e in ((model, opt, extra[0]), (ref_model, ref, extra[1])):
            o.zero_grad()
            torch.nn.functional.mse_loss(m(x), y).backward()
            e.grad = torch.full_like(e, 0.5 * (t + 1))
            o.step()
        assert_same_params(model, ref_model, 1e-5, f"step {t + 1}")
        assert_close(extra[0].detach(), extra[1].detach(), 1e-12, f"extra, step {t + 1}")
    assert float(opt.state[extra[0]]["step"]) == 5.0


def test_step_tensors_are_torchs_and_stay_the_same_objects() -> None:
    """Step counters are 0-d float tensors, one per param (editing one changes only its
    param), that keep their identity from step to step — Adagrad's from construction."""
    model = make_model()
    opt = gt.Adagrad(model.parameters(), lr=0.05)
    params = list(model.parameters())
    steps = [opt.state[p]["step"] for p in params]
    data = make_data()
    for _ in range(3):
        train_step(model, opt, data)
    for p, s in zip(params, steps):
        assert opt.state[p]["step"] is s
        assert s.dim() == 0 and s.dtype == torch.get_default_dtype() and float(s) == 3.0
    steps[1].fill_(10.0)
    train_step(model, opt, data)
    assert [float(s) for s in steps] == [4.0, 11.0, 4.0, 4.0]


def test_deepcopy_runs_independently() -> None:
    model = make_model()
    opt = gt.NAdam(model.parameters(), lr=0.01)
    data = make_data()
    for _ in range(3):
        train_step(model, opt, data)
    other = copy.deepcopy(opt)  # its own copies of the params and state
    other_params = [p for g in other.param_groups for p in g["params"]]
    for p in other_params:
        p.grad = torch.ones_like(p)
    for _ in range(4):
        other.step()
    for p, q in zip(model.parameters(), other_params):
        assert float(opt.state[p]["step"]) == 3.0 and float(other.state[q]["step"]) == 7.0
        assert float(opt.state[p]["mu_product"]) != float(other.state[q]["mu_product"])
    train_step(model, opt, data)
    assert all(float(opt.state[p]["step"]) == 4.0 for p in model.parameters())


def test_grads_are_not_kept_alive() -> None:
    """The step's cached views do not hold on to gradients that ``zero_grad()`` drops
    (that would keep a whole set of gradients in memory through the next backward);
    grads the user keeps (``set_to_none=False``) have their views reused."""
    model = make_model()
    opt = gt.Adam(model.parameters(), lr=0.01)
    data = make_data()
    for _ in range(3):
        train_step(model, opt, data)
    refs = [weakref.ref(p.grad) for p in model.parameters()]
    opt.zero_grad()
    assert all(r() is None for r in refs)
    x, y = data
    for _ in range(3):
        opt.zero_grad(set_to_none=False)
        torch.nn.functional.mse_loss(model(x), y).backward()
        opt.step()
    kept = [t for plan in opt._plans.values() for b in plan.batches for t in b.grad_objs]
    grads = [p.grad for p in model.parameters()]
    assert len(kept) == len(grads) and all(a is b for a, b in zip(kept, grads))
