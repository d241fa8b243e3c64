"""gradstep.distributed: data parallelism and ZeRO-1 against a single-process run.

Each run launches real processes on loopback (127.0.0.1): torch.distributed (gloo) as one
process per rank with torchrun's environment, MPI with ``mpiexec``. The workers live in
tests/dist_workers/; the model, data and settings in tests/dist_workers/problem.py.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import gradstep as gs
from gradstep import distributed as dist

HERE = Path(__file__).resolve().parent
WORKER = HERE / "dist_workers" / "worker.py"
sys.path.insert(0, str(HERE / "dist_workers"))
import problem as P  # noqa: E402

LAUNCH_TIMEOUT = 90  # seconds for one multi-process run, then every process is killed


def _mpiexec() -> str | None:
    local = Path(sys.executable).parent / "mpiexec"
    return str(local) if local.exists() else shutil.which("mpiexec")


HAVE = {
    "torch": importlib.util.find_spec("torch") is not None,
    "mpi": importlib.util.find_spec("mpi4py") is not None and _mpiexec() is not None,
}
BACKENDS = [
    pytest.param(b, marks=pytest.mark.skipif(not HAVE[b], reason=f"{b} backend not installed"))
    for b in ("torch", "mpi")
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def launch(backend: str, n: int, scenario: str, outdir: Path, arg: str = "",
           mpi_flags: tuple[str, ...] = ()) -> list[subprocess.CompletedProcess[str]]:
    """Run the worker on ``n`` processes; kill everything after LAUNCH_TIMEOUT."""
    cmd = [sys.executable, str(WORKER), scenario, backend, str(outdir), str(n)]
    if arg:
        cmd.append(arg)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    deadline = time.monotonic() + LAUNCH_TIMEOUT
    if backend == "torch":
        env.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(_free_port()),
                   WORLD_SIZE=str(n), GLOO_SOCKET_IFNAME="lo")
        procs = [subprocess.Popen(cmd, env={**env, "RANK": str(r), "LOCAL_RANK": str(r)},
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for r in range(n)]
    else:
        mpiexec = _mpiexec()
        assert mpiexec is not None
        procs = [subprocess.Popen([mpiexec, "-hosts", "127.0.0.1", *mpi_flags, "-n", str(n),
                                   *cmd], env=env, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)]
    results = []
    try:
        for p in procs:
            out, err = p.communicate(timeout=max(1.0, deadline - time.monotonic()))
            results.append(subprocess.CompletedProcess(p.args, p.returncode, out, err))
    except subprocess.TimeoutExpired:
        for p in procs:
            p.kill()
        for p in procs:
            p.communicate()
        pytest.fail(f"{backend} run of {scenario!r} on {n} processes hung for more than "
                    f"{LAUNCH_TIMEOUT} s")
    return results


def _check_ok(results: list[subprocess.CompletedProcess[str]]) -> None:
    for r in results:
        assert r.returncode == 0, f"exit code {r.returncode}\n{r.stdout}\n{r.stderr}"


_RUNS: dict[tuple[str, int], Path] = {}


@pytest.fixture(scope="module")
def equivalence_run(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The equivalence scenario, run once per (backend, world size) for this module."""

    def get(backend: str, n: int) -> Path:
        if (backend, n) not in _RUNS:
            out = tmp_path_factory.mktemp(f"{backend}{n}")
            _check_ok(launch(backend, n, "equivalence", out))
            _RUNS[backend, n] = out
        return _RUNS[backend, n]

    return get


def reference(name: str, world: int, *, clip: bool = True) -> tuple[list[np.ndarray], int, int]:
    """The single-process run over the same global batch: the mean of the ranks' local
    gradients (summed in rank order), clipping and the non-finite guard as documented."""
    params = P.initial_params()
    opt = P.make_optimizer(name, params)
    skipped = clipped = 0
    for t in range(P.STEPS):
        local = [P.local_grads(params, t, r, world) for r in range(world)]
        if not clip:
            for g in (g for per_rank in local for g in per_rank):
                np.nan_to_num(g, copy=False)
        grads = []
        for per_param in zip(*local):
            acc = per_param[0].copy()
            for g in per_param[1:]:
                acc += g
            grads.append(acc / acc.dtype.type(world) if world > 1 else acc)
        if clip:
            sumsq = sum(float(np.sum(np.square(g, dtype=np.float64))) for g in grads)
            if not np.isfinite(sumsq):
                skipped += 1
                continue
            coef = P.MAX_NORM / (np.sqrt(sumsq) + 1e-6)
            if coef < 1:
                clipped += 1
                grads = [g * g.dtype.type(coef) for g in grads]
        opt.step(grads)
    return params, skipped, clipped


def _results(outdir: Path, n: int) -> list[Any]:
    return [np.load(outdir / f"equivalence-rank{r}.npz") for r in range(n)]


# -- equivalence with a single process --------------------------------------------------


@pytest.mark.parametrize("world", [2, 3])
@pytest.mark.parametrize("backend", BACKENDS)
def test_same_parameters_as_one_process(backend: str, world: int, equivalence_run: Any) -> None:
    ranks = _results(equivalence_run(backend, world), world)
    for name in P.OPTIMIZERS if world == 2 else P.CORE:
        ref, skipped, clipped = reference(name, world)
        assert skipped == 1 and 0 < clipped < P.STEPS - 1  # the guard and clipping engaged
        for mode in ("dp", "zero"):
            for r, res in enumerate(ranks):
                assert int(res[f"{mode}/{name}/skipped"]) == 1
                for i, want in enumerate(ref):
                    got = res[f"{mode}/{name}/{i}"]
                    assert got.dtype == want.dtype and got.shape == want.shape
                    # Every process holds the same bits.
                    np.testing.assert_array_equal(got, ranks[0][f"{mode}/{name}/{i}"])
                    np.testing.assert_allclose(
                        got, want, rtol=0, atol=1e-6,
                        err_msg=f"{backend} {mode} {name} rank {r} param {i}")


@pytest.mark.parametrize("backend", BACKENDS)
def test_bit_identical_when_the_sum_order_cannot_matter(backend: str,
                                                        equivalence_run: Any) -> None:
    # Two processes: a + b == b + a and /2 is exact, and the kernels are element-wise,
    # so without clipping (whose float64 norm is summed in another order) the bits agree.
    ranks = _results(equivalence_run(backend, 2), 2)
    ref, _, _ = reference("Adam", 2, clip=False)
    for mode in ("dp", "zero"):
        for res in ranks:
            for i, want in enumerate(ref):
                np.testing.assert_array_equal(res[f"{mode}/noclip/{i}"], want)


@pytest.mark.parametrize("world", [2, 3])
@pytest.mark.parametrize("backend", BACKENDS)
def test_sharded_state_is_one_nth(backend: str, world: int, equivalence_run: Any) -> None:
    ranks = _results(equivalence_run(backend, world), world)
    params = P.initial_params()
    per_dtype: dict[Any, int] = {}
    for p in params:
        per_dtype[p.dtype] = per_dtype.get(p.dtype, 0) + p.size
    for name in P.OPTIMIZERS if world == 2 else P.CORE:
        ref_params = P.initial_params()
        whole = P.state_nbytes(_stepped(name, ref_params))
        per_element = whole // sum(p.nbytes for p in params)  # state arrays per element
        shard = [int(res[f"zero/{name}/state_nbytes"]) for res in ranks]
        padded = sum(-(-size // world) * dt.itemsize for dt, size in per_dtype.items())
        assert shard == [per_element * padded] * world, name  # equal shards of the padded
        assert abs(sum(shard) - whole) <= per_element * 8 * world  # ... whole (+ padding)
        assert max(shard) <= whole / world + per_element * 8 * len(per_dtype)
        for res in ranks:
            assert int(res[f"dp/{name}/state_nbytes"]) == whole  # replicated


def _stepped(name: str, params: list[np.ndarray]) -> gs.Optimizer:
    opt = P.make_optimizer(name, params)
    opt.step([np.zeros_like(p) for p in params])
    return opt


# -- checkpoints ------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_checkpoint_resumes_exactly(backend: str, equivalence_run: Any) -> None:
    out = equivalence_run(backend, 2)
    for res in _results(out, 2):
        assert bool(res["dp/resume_equal"]) and bool(res["zero/resume_equal"])
    files = sorted(os.listdir(out / "ckpt-zero"))
    assert files == ["manifest.json", "shard-00000-of-00002.npz", "shard-00001-of-00002.npz"]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("world", [1, 3])
def test_checkpoint_from_another_world_size_loads(backend: str, world: int,
                                                  equivalence_run: Any, tmp_path: Path) -> None:
    """The 2-process ZeRO-1 checkpoint, loaded by 1 and 3 real processes: each holds its
    1/N of the state at the saved step and goes on stepping (the exact state is checked
    in-process by test_zero1_checkpoint_loads_on_another_world_size)."""
    ckpt = equivalence_run(backend, 2) / "ckpt-zero"
    _check_ok(launch(backend, world, "reshard", tmp_path, str(ckpt)))
    ranks = [np.load(tmp_path / f"reshard-rank{r}.npz") for r in range(world)]
    params = P.initial_params()
    whole = P.state_nbytes(_stepped("Adam", params))
    saved = json.loads((ckpt / "manifest.json").read_text())["step_count"]
    for res in ranks:
        assert int(res["step_count"]) == saved and int(res["after"]) == saved + 2
    shards = [int(res["state_nbytes"]) for res in ranks]
    assert sum(shards) >= whole and max(shards) <= whole / world + 8 * 16 * world


class _Replica(dist.Backend):
    """Process ``rank`` of ``world``, run one after another in this process, in a group
    where one process holds the gradients and the others zeros: the reduce-scatter
    (with average=False) returns this block of them, exactly, whatever the world size;
    nothing else is exchanged (no clipping: the statistics all-reduce carries zeros).
    Each replica's shard of the state is then exactly that of a real run."""

    name = "replica"

    def __init__(self, rank: int, world: int) -> None:
        self.rank, self.world_size = rank, world

    def all_reduce(self, buf: np.ndarray) -> None:
        buf *= self.world_size

    def reduce_scatter(self, send: np.ndarray, recv: np.ndarray) -> None:
        n = recv.size
        recv[...] = send[self.rank * n : (self.rank + 1) * n]

    def all_gather(self, buf: np.ndarray) -> None:
        pass

    def broadcast(self, buf: np.ndarray, root: int = 0) -> None:
        pass


def _reshard_params() -> list[dict[str, Any]]:
    rng = np.random.default_rng(3)
    return [{"params": [rng.standard_normal((5, 3)), rng.standard_normal(7).astype(np.float32)]},
            {"params": [rng.standard_normal(11)], "lr": 0.03}]


@pytest.mark.parametrize("cls", [gs.Adam, gs.NAdam, gs.Rprop], ids=lambda c: c.__name__)
@pytest.mark.parametrize("written,read", [(2, 1), (2, 3), (3, 2), (1, 4)])
def test_zero1_checkpoint_loads_on_another_world_size(tmp_path: Path, cls: type, written: int,
                                                      read: int) -> None:
    """A checkpoint written by `written` processes, loaded by `read`: each new shard holds
    exactly the state a run with `read` processes would hold (element-wise state, cut
    differently; scalars such as NAdam's mu product carried over), and stepping on gives
    the parameters of an uninterrupted run."""
    grads = [[np.random.default_rng(100 + t).standard_normal(p.shape).astype(p.dtype)
              for grp in _reshard_params() for p in grp["params"]] for t in range(6)]

    def replicas(world: int, groups: list[dict[str, Any]]) -> list[dist.ShardedOptimizer]:
        return [dist.ShardedOptimizer(cls, [{**g, "params": [p.copy() for p in g["params"]]}
                                            for g in groups], _Replica(r, world), lr=0.01,
                                     average=False)
                for r in range(world)]

    def step(opts: list[dist.ShardedOptimizer], t: int) -> None:
        for o in opts:
            o.step(grads[t])

    groups = _reshard_params()
    ckpt = tmp_path / "ckpt"
    writers = replicas(written, groups)
    for t in range(3):
        step(writers, t)
    for o in reversed(writers):  # rank 0 last, as its manifest closes the save
        dist.save(o, ckpt)
    # The uninterrupted run with `read` processes, and the run resumed from the checkpoint.
    straight = replicas(read, groups)
    for t in range(3):
        step(straight, t)
    at3 = [{**g, "params": [p.copy() for p in g["params"]]}
           for g in _reshard_params()]
    one = replicas(1, groups)
    for t in range(3):
        step(one, t)
    for g, grp in zip(at3, one[0].param_groups):
        g["params"] = [p.copy() for p in grp["params"]]
    resumed = replicas(read, at3)
    for o in resumed:
        dist.load(o, ckpt)
    for r, (a, b) in enumerate(zip(straight, resumed)):
        assert b.step_count == a.step_count == 3
        sa, sb = a.optimizer.state_dict()["state"], b.optimizer.state_dict()["state"]
        assert sa.keys() == sb.keys()
        ranges = b._inner_ranges(r, read)
        for i in sa:
            assert sa[i].keys() == sb[i].keys()
            _, k, lo, _ = ranges[i]
            real = max(0, b._layouts[k].size - lo)  # past it: padding (never read)
            for name in sa[i]:
                x, y = np.asarray(sb[i][name]), np.asarray(sa[i][name])
                if x.ndim:
                    np.testing.assert_array_equal(x[:real], y[:real], err_msg=f"{i}/{name}")
                else:
                    assert x == y, f"{i}/{name}"
    for t in range(3, 6):
        step(straight, t)
        step(resumed, t)
    for r, (a, b) in enumerate(zip(straight, resumed)):
        for lay_a, lay_b in zip(a._layouts, b._layouts):  # each replica's own block
            np.testing.assert_array_equal(lay_b.params_flat[lay_b.lo : lay_b.hi],
                                          lay_a.params_flat[lay_a.lo : lay_a.hi], err_msg=str(r))


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_gradient_missing_on_some_processes_counts_as_zeros(backend: str,
                                                              tmp_path: Path) -> None:
    _check_ok(launch(backend, 2, "missing", tmp_path))
    for r in range(2):
        res = np.load(tmp_path / f"missing-rank{r}.npz")
        for mode in ("dp", "zero"):
            assert bool(res[f"{mode}/equal"]) and bool(res[f"{mode}/moved"]), (r, mode)


def test_a_gradient_missing_everywhere():
    """None on every process: DataParallel skips the parameter as the optimizer does alone
    (same bits as gs.Adam stepping with None); ShardedOptimizer refuses, on every process,
    before anything changes."""
    rng = np.random.default_rng(5)
    params = [rng.standard_normal(4), rng.standard_normal((2, 3)), rng.standard_normal(5)]
    grads = [[rng.standard_normal(p.shape) for p in params] for _ in range(3)]
    alone = [p.copy() for p in params]
    ref = gs.Adam(alone, lr=0.1)
    ps = [p.copy() for p in params]
    dp = dist.DataParallel(gs.Adam(ps, lr=0.1), _Replica(0, 2))
    for g in grads:
        ref.step([g[0], None, g[2]])
        dp.step([g[0], None, g[2]])
    for a, b in zip(alone, ps):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(ps[1], params[1])
    got, want = dp.optimizer.state_dict()["state"], ref.state_dict()["state"]
    assert got.keys() == want.keys()
    for i in want:
        assert got[i].keys() == want[i].keys()
        for k in want[i]:
            np.testing.assert_array_equal(got[i][k], want[i][k])

    ps = [p.copy() for p in params]
    zero = [dist.ShardedOptimizer(gs.Adam, ps, _Replica(r, 2), lr=0.1) for r in range(2)]
    for o in zero:
        with pytest.raises(ValueError, match=r"grads\[1\] is None on every process"):
            o.step([grads[0][0], None, grads[0][2]])
        assert o.step_count == 0 and o.state_nbytes() == 0
    for a, b in zip(params, ps):
        np.testing.assert_array_equal(a, b)


# -- failures ---------------------------------------------------------------------------


@pytest.mark.skipif(not HAVE["torch"], reason="torch backend not installed")
def test_torch_peer_death_fails_the_others_quickly(tmp_path: Path) -> None:
    start = time.monotonic()
    results = launch("torch", 3, "die", tmp_path)
    assert time.monotonic() - start < 60
    assert results[1].returncode == 17
    for r in (0, 2):
        assert results[r].returncode == 3, results[r].stderr
        assert "DistributedError" in results[r].stderr
        assert "another process probably died" in results[r].stderr
    assert not list(tmp_path.glob("die-rank*.npz"))


@pytest.mark.skipif(not HAVE["mpi"], reason="mpi backend not installed")
def test_mpi_peer_death_ends_the_job(tmp_path: Path) -> None:
    # mpiexec ends the other processes as soon as one exits without MPI_Finalize.
    start = time.monotonic()
    (result,) = launch("mpi", 3, "die", tmp_path)
    assert time.monotonic() - start < 60
    assert result.returncode != 0
    # MPICH reports "BAD TERMINATION" on most runs, but may also end the job
    # silently with a non-zero code; ending (not hanging) is what matters.
    assert not list(tmp_path.glob("die-rank*.npz"))


@pytest.mark.skipif(not HAVE["mpi"], reason="mpi backend not installed")
def test_mpi_timeout_turns_a_hang_into_an_error(tmp_path: Path) -> None:
    # Without the launcher's clean-up the survivors would wait forever; with
    # MPIBackend(timeout=...) they raise DistributedError after the timeout.
    start = time.monotonic()
    (result,) = launch("mpi", 3, "die", tmp_path, arg="3",
                       mpi_flags=("-disable-auto-cleanup",))
    assert time.monotonic() - start < 60
    assert result.returncode != 0
    assert result.stderr.count("DistributedError") >= 2, result.stderr
    assert "no progress for 3 s" in result.stderr


# -- in-process: errors that need no second process --------------------------------------


def test_missing_torch_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)
    monkeypatch.setitem(sys.modules, "torch.distributed", None)
    with pytest.raises(ImportError, match=r"pip install 'gradstep\[dist-torch\]'"):
        dist.TorchBackend()


def test_missing_mpi4py_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "mpi4py", None)
    monkeypatch.setitem(sys.modules, "mpi4py.MPI", None)
    with pytest.raises(ImportError, match=r"pip install 'gradstep\[dist-mpi\]'"):
        dist.MPIBackend()


@pytest.mark.parametrize(
    ("kwargs", "exc", "pattern"),
    [
        (dict(backend="nccl"), ValueError, "Invalid backend: 'nccl'"),
        (dict(max_norm=-1.0), ValueError, "Invalid max_norm: -1.0"),
        (dict(max_norm=True), TypeError, "Invalid max_norm"),
        (dict(skip_nonfinite=1), TypeError, "Invalid skip_nonfinite"),
    ],
)
def test_bad_options_raise_before_any_communication(kwargs: dict[str, Any], exc: type,
                                                    pattern: str) -> None:
    w = np.zeros(3)
    with pytest.raises(exc, match=pattern):
        dist.DataParallel(gs.SGD([w]), **{"backend": "torch", **kwargs})
    with pytest.raises(exc, match=pattern):
        dist.ShardedOptimizer(gs.SGD, [w], **{"backend": "torch", **kwargs})


def test_sharded_rejects_a_non_optimizer_class() -> None:
    with pytest.raises(TypeError, match="optimizer_class must be a gradstep optimizer class"):
        dist.ShardedOptimizer(gs.SGD([np.zeros(2)]), [np.zeros(2)])  # type: ignore[arg-type]


def test_torch_without_a_launcher_says_how_to_launch(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("torch.distributed")
    import torch.distributed as tdist

    if tdist.is_initialized():
        pytest.skip("a process group is already initialized in this process")
    for key in ("MASTER_ADDR", "MASTER_PORT", "RANK", "WORLD_SIZE"):
        monkeypatch.delenv(key, raising=False)
    with pytest.raises(RuntimeError, match="launch with 'torchrun"):
        dist.TorchBackend()
