"""gradstep.save / gradstep.load: .npz checkpoints without pickle, written atomically,
resuming bit-identically in a new process."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import gradstep as gs

# The training loop the resume test runs in separate processes: deterministic
# gradients derived from the step number, so any process can regenerate them.
SCRIPT = textwrap.dedent(
    """
    import sys
    import numpy as np
    import gradstep as gs

    def make(params):
        groups = [{{"params": params[:1], "lr": lambda t: 0.02 * 0.9 ** t}},
                  {{"params": params[1:]}}]
        return gs.{opt}(groups, lr=lambda t: 0.01 * 0.97 ** t{extra})

    def grads(t, params):
        rng = np.random.default_rng(1000 + t)
        return [rng.standard_normal(p.shape).astype(p.dtype) for p in params]

    mode, path, out = sys.argv[1:4]
    k, n = int(sys.argv[4]), int(sys.argv[5])
    rng = np.random.default_rng(7)
    params = [rng.standard_normal((33, 5)).astype(np.float32), rng.standard_normal(17)]
    opt = make(params)
    if mode == "resume":
        params = [np.load(out + ".p0.npy"), np.load(out + ".p1.npy")]
        opt = make(params)
        gs.load(opt, path)
        start = k
    else:
        start = 0
    stop = k if mode == "first" else n
    for t in range(start, stop):
        opt.step(grads(t, params))
    if mode == "first":
        gs.save(opt, path)
    np.save(out + ".p0.npy", params[0])
    np.save(out + ".p1.npy", params[1])
    """
)


@pytest.mark.parametrize("opt,extra", [("Adam", ", amsgrad=True"), ("NAdam", ""),
                                       ("SGD", ", momentum=0.9, nesterov=True"),
                                       ("Rprop", ""), ("RMSprop", ", centered=True, momentum=0.5")])
def test_resume_in_a_new_process_is_bit_identical(tmp_path, opt, extra):
    script = tmp_path / "train.py"
    script.write_text(SCRIPT.format(opt=opt, extra=extra))
    ckpt = str(tmp_path / "ckpt.npz")

    def call(mode, out, k=6, n=15):
        subprocess.run([sys.executable, str(script), mode, ckpt, out, str(k), str(n)],
                       check=True, timeout=120)

    call("full", str(tmp_path / "full"))
    call("first", str(tmp_path / "split"))
    call("resume", str(tmp_path / "split"))
    for i in (0, 1):
        full = np.load(tmp_path / f"full.p{i}.npy")
        split = np.load(tmp_path / f"split.p{i}.npy")
        assert full.dtype == split.dtype
        np.testing.assert_array_equal(full, split)


def trained(rng, steps=3):
    params = [rng.standard_normal((4, 3)), rng.standard_normal(2).astype(np.float32)]
    opt = gs.Adam(params, lr=0.01)
    for _ in range(steps):
        opt.step([rng.standard_normal(p.shape).astype(p.dtype) for p in params])
    return opt, params


def test_file_holds_no_pickle(tmp_path, rng):
    opt, _ = trained(rng)
    path = tmp_path / "c.npz"
    gs.save(opt, path)
    with np.load(path, allow_pickle=False) as data:
        for key in data.files:
            assert data[key].dtype != object


def test_truncated_file_is_a_clear_error_and_changes_nothing(tmp_path, rng):
    opt, _ = trained(rng)
    path = tmp_path / "c.npz"
    gs.save(opt, path)
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    fresh, _ = trained(np.random.default_rng(5))
    before = fresh.state_dict()
    with pytest.raises(ValueError, match=r"cannot load .*c\.npz"):
        gs.load(fresh, path)
    after = fresh.state_dict()
    assert after["step_count"] == before["step_count"]
    np.testing.assert_array_equal(after["state"][0]["exp_avg"], before["state"][0]["exp_avg"])


def test_foreign_npz_is_refused(tmp_path, rng):
    opt, _ = trained(rng)
    path = tmp_path / "other.npz"
    np.savez(path, weights=np.zeros(3))
    with pytest.raises(ValueError, match="no gradstep metadata"):
        gs.load(opt, path)
    path.write_text("not a zip file at all")
    with pytest.raises(ValueError, match="cannot load"):
        gs.load(opt, path)


def test_missing_file_is_file_not_found(tmp_path, rng):
    opt, _ = trained(rng)
    with pytest.raises(FileNotFoundError):
        gs.load(opt, tmp_path / "nope.npz")


def test_checkpoint_of_another_optimizer_is_refused(tmp_path, rng):
    opt, _ = trained(rng)
    path = tmp_path / "c.npz"
    gs.save(opt, path)
    other = gs.SGD([np.zeros((4, 3)), np.zeros(2, np.float32)], lr=0.1)
    with pytest.raises(ValueError, match="holds the state of Adam, not of SGD"):
        gs.load(other, path)


def test_checkpoint_for_other_shapes_is_refused(tmp_path, rng):
    opt, _ = trained(rng)
    path = tmp_path / "c.npz"
    gs.save(opt, path)
    other = gs.Adam([np.zeros((3, 4)), np.zeros(2, np.float32)], lr=0.01)
    with pytest.raises(ValueError, match=r"has shape \(4, 3\), the parameter has \(3, 4\)"):
        gs.load(other, path)


def test_crash_mid_save_leaves_previous_file_intact(tmp_path, rng, monkeypatch):
    opt, _ = trained(rng)
    path = tmp_path / "c.npz"
    gs.save(opt, path)
    good = path.read_bytes()
    opt.step([np.ones((4, 3)), np.ones(2, np.float32)])

    def crash(*args, **kwargs):
        raise KeyboardInterrupt("power cut")

    monkeypatch.setattr(np, "savez", crash)
    with pytest.raises(KeyboardInterrupt):
        gs.save(opt, path)
    assert path.read_bytes() == good
    assert [f for f in os.listdir(tmp_path) if f != "c.npz"] == []


def test_schedules_survive_as_the_live_optimizers(tmp_path, rng):
    p = rng.standard_normal(3)
    opt = gs.SGD([p], lr=lambda t: 0.1 / (t + 1))
    opt.step([np.ones(3)])
    path = tmp_path / "c.npz"
    gs.save(opt, path)
    q = p.copy()
    schedule = opt.param_groups[0]["lr"]
    fresh = gs.SGD([q], lr=schedule)
    gs.load(fresh, path)
    assert fresh.param_groups[0]["lr"] is schedule
    assert fresh.step_count == 1


def test_single_array_file_is_refused(tmp_path, rng):
    opt, _ = trained(rng)
    path = tmp_path / "a.npy"
    np.save(path, np.zeros(3))
    with pytest.raises(ValueError, match="single array"):
        gs.load(opt, path)
