"""The quick benchmark runs and prints a well-formed table. It never asserts a time."""

from __future__ import annotations

import re

import pytest

from gradstep import _bench


def _table(text: str) -> list[list[str]]:
    rows = [line for line in text.splitlines() if line.startswith("|")]
    return [[c.strip() for c in row.strip("|").split("|")] for row in rows]


def test_smoke_bench_prints_a_well_formed_table(capsys: pytest.CaptureFixture[str]) -> None:
    status = _bench.main(["--smoke", "--peers", "numpy", "--optimizers", "Adam,RMSprop"])
    assert status == 0
    out = capsys.readouterr().out
    table = _table(out)
    header, rule, body = table[0], table[1], table[2:]
    assert header[:5] == ["optimizer", "dtype", "tensors", "thr", "gradstep ns/el"]
    assert "vs NumPy" in header
    assert all(re.fullmatch(r"-{3,}", c) for c in rule)
    assert all(len(row) == len(header) for row in body)
    # One row per case of the smoke configuration: 2 optimizers x 1 dtype x 2 layouts.
    assert sorted((r[0], r[2]) for r in body) == sorted(
        (opt, lay) for opt in ("Adam", "RMSprop") for lay in ("1e3", "20x50"))
    for row in body:
        assert float(row[4]) > 0  # a number, not a claim about its size
        assert re.fullmatch(r"\d+(\.\d+)?x \(\d+(\.\d+)?\)", row[header.index("vs NumPy")])
    assert "WARNING" not in out  # every implementation computed the same steps


def test_smoke_bench_with_torch_peers(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("torch")
    assert _bench.main(["--smoke", "--optimizers", "Adam", "--sizes", "1e3"]) == 0
    table = _table(capsys.readouterr().out)
    header, body = table[0], table[2:]
    assert len(body) == 1
    for peer in ("torch for-loop", "torch foreach", "torch fused"):
        cell = body[0][header.index(f"vs {peer}")]
        assert re.fullmatch(r"\d+(\.\d+)?x \(\d+(\.\d+)?\)", cell)


def test_unknown_optimizer_is_rejected() -> None:
    with pytest.raises(SystemExit, match="unknown optimizer 'Adamm'"):
        _bench.main(["--smoke", "--optimizers", "Adamm"])


def test_check_agreement_finds_no_difference_on_small_data() -> None:
    assert _bench.check_agreement(["SGD-momentum", "Rprop"], ["float64"], ["numpy"]) == []
