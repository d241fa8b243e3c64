"""``python -m gradstep demo|bench``: the showcase and the speed table."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m gradstep",
        description="gradstep: gradient-descent optimizers with C++ kernels.",
    )
    sub = parser.add_subparsers(dest="command", metavar="{demo,bench}")
    demo = sub.add_parser(
        "demo",
        help="every optimizer and schedule on 2-D surfaces and a small training task",
        description="Run every optimizer on classic 2-D surfaces and train small NumPy "
        "models with every optimizer and several schedules; print tables and write PNGs.",
    )
    demo.add_argument("--out", type=Path, default=Path("gradstep-demo"), metavar="DIR",
                      help="directory for the PNG files (default: ./gradstep-demo)")
    demo.add_argument("--quick", action="store_true",
                      help="short budgets and a small data set: a few seconds")
    demo.add_argument("--no-plots", action="store_true", help="print the tables only")
    sub.add_parser("bench", help="the optimizers' speed on this machine (options: bench -h)",
                   add_help=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list and args_list[0] == "bench":
        return _bench(args_list[1:])
    parser = _parser()
    args = parser.parse_args(args_list)
    if args.command == "demo":
        from ._demo.runner import run_demo

        return run_demo(args.out, quick=args.quick, plots=not args.no_plots)
    parser.print_help()
    return 2


def _bench(argv: list[str]) -> int:
    try:
        from . import _bench as bench
    except ImportError as exc:
        print(f"python -m gradstep bench: the benchmark module is not available ({exc})",
              file=sys.stderr)
        return 1
    entry = getattr(bench, "main", None)
    if entry is None:
        print("python -m gradstep bench: gradstep._bench has no main() in this build",
              file=sys.stderr)
        return 1
    result = entry(argv)
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
