"""The package as users find it: typed, with a stub that matches the module, and
the public names DESIGN.md fixes."""

from __future__ import annotations

import ast
import os

import gradstep as gs
from gradstep import _core

PKG = os.path.dirname(gs.__file__)


def test_ships_py_typed_and_core_stub():
    assert os.path.exists(os.path.join(PKG, "py.typed"))
    assert os.path.exists(os.path.join(PKG, "_core.pyi"))


def test_core_stub_lists_exactly_the_module():
    with open(os.path.join(PKG, "_core.pyi"), encoding="utf-8") as f:
        tree = ast.parse(f.read())
    stub_all = None
    for node in tree.body:
        if isinstance(node, ast.AnnAssign) and getattr(node.target, "id", "") == "__all__":
            stub_all = ast.literal_eval(node.value)
    public = sorted(n for n in dir(_core) if not n.startswith("_"))
    assert stub_all is not None
    assert sorted(stub_all) == public, "regenerate with: pybind11-stubgen gradstep._core"


def test_public_names():
    for name in ["SGD", "Adagrad", "Adadelta", "RMSprop", "Rprop", "Adam", "AdamW", "Adamax",
                 "NAdam", "RAdam", "schedules", "minimize", "LBFGS", "EMA", "SnapshotEnsemble",
                 "clip_grad_norm", "save", "load", "set_num_threads", "get_num_threads",
                 "build_info"]:
        assert hasattr(gs, name), name
    assert set(gs.__all__) <= set(dir(gs))
