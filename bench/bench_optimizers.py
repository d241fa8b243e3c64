"""The full benchmark: gradstep vs careful NumPy vs torch.optim, side by side.

    python bench/bench_optimizers.py                 # full run (~15 min on 2 cores), prints tables
    python bench/bench_optimizers.py --write         # ... and writes bench/RESULTS.md + PNGs
    python bench/bench_optimizers.py --quick         # the `python -m gradstep bench --quick` set
    python bench/bench_optimizers.py --from-json r.json --write   # re-render saved results

The method (paired interleaved runs, the `a += b` bandwidth probe, what the NumPy peer
does) is described in gradstep/_bench.py, which this script drives. Memory: cases run one
implementation pair at a time (gradstep + one peer) and free everything between cases;
the largest case (float64 Adam, 1e8) holds about 9 GB.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

from gradstep import _bench as B

HERE = Path(__file__).resolve().parent

SINGLE = ["1e4", "1e5", "1e6", "1e7", "1e8"]
SMALL = ["1000x1000", "10000x100"]

FULL: dict[str, Any] = dict(
    optimizers=B.CORE + B.UNFUSABLE,
    dtypes=["float32", "float64"],
    layouts=["1e4", "1e5", "1e6", "1e7", *SMALL],
    # To fit ~15 minutes on 2 cores: 1e8 (3.2 GB of float64 state per implementation)
    # for Adam only, and the unfusable optimizers at four layouts.
    layouts_for={"Adam": SINGLE + SMALL,
                 **{opt: ["1e4", "1e6", "1e7", "10000x100"] for opt in B.UNFUSABLE}},
    rounds=5, big_rounds=3, block_seconds=0.004, dram_footprint=3 << 30, peer_budget=1.5,
)


def _rows(data: dict[str, Any], keep: Any) -> dict[str, Any]:
    return {**data, "results": [r for r in data["results"] if keep(r["case"])]}


def _find(data: dict[str, Any], opt: str, dtype: str, layout: str,
          threads: int) -> dict[str, Any] | None:
    for r in data["results"]:
        c = r["case"]
        if (c["optimizer"], c["dtype"], c["layout"], c["threads"]) == (opt, dtype, layout,
                                                                      threads):
            return r
    return None


def goals(data: dict[str, Any]) -> str:
    """The key numbers (Adam fp32 against every peer, the unfusable optimizers, thread
    scaling, every case slower than a peer), computed from the results."""
    out = []
    thr = sorted({r["case"]["threads"] for r in data["results"]})
    one, many = thr[0], thr[-1]

    def ns(r: dict[str, Any] | None, impl: str = "gradstep") -> str:
        return B._fmt_ns(r["ns"][impl]) if r and impl in r["ns"] else "—"

    def sp(r: dict[str, Any] | None, peer: str) -> str:
        return f"{r['speedup'][peer]:.2f}x" if r and peer in r["speedup"] else "—"

    out.append("| Adam fp32, 1 thread | gradstep ns/el | torch fused ns/el | vs fused | "
               "vs foreach | vs for-loop | vs NumPy | % probe (same footprint) |")
    out.append("|---|---|---|---|---|---|---|---|")
    for lay in SINGLE + SMALL:
        r = _find(data, "Adam", "float32", lay, one)
        if r:
            share = r["probe_share"]
            out.append(f"| {lay} | {ns(r)} | {ns(r, 'fused')} | {sp(r, 'fused')} | "
                       f"{sp(r, 'foreach')} | {sp(r, 'loop')} | {sp(r, 'numpy')} | "
                       f"{'—' if math.isnan(share) else f'{100 * share:.0f}%'} |")
    # Unfusable optimizers vs torch's best variant.
    worst: list[tuple[float, str]] = []
    for r in data["results"]:
        c = r["case"]
        if c["optimizer"] in B.UNFUSABLE:
            torch_sp = [r["speedup"][p] for p in ("loop", "foreach") if p in r["speedup"]]
            if torch_sp:
                worst.append((min(torch_sp), f"{c['optimizer']} {c['dtype']} {c['layout']} "
                                             f"thr={c['threads']}"))
    if worst:
        worst.sort()
        out.append("")
        out.append(f"Unfusable optimizers vs torch's best variant: lowest speed-up "
                   f"{worst[0][0]:.2f}x ({worst[0][1]}), median "
                   f"{worst[len(worst) // 2][0]:.2f}x over {len(worst)} cases.")
    # Thread scaling.
    if many > one:
        out.append("")
        out.append(f"Thread scaling (gradstep, {many} threads vs 1, throughput ratio):")
        out.append("")
        out.append("| optimizer | dtype | " + " | ".join(SINGLE + SMALL) + " |")
        out.append("|---|---|" + "---|" * len(SINGLE + SMALL))
        for opt in ("Adam", "SGD-momentum", "RMSprop"):
            for dtype in ("float32", "float64"):
                cells = []
                for lay in SINGLE + SMALL:
                    a, b = (_find(data, opt, dtype, lay, one), _find(data, opt, dtype, lay, many))
                    cells.append(f"{a['ns']['gradstep'] / b['ns']['gradstep']:.2f}"
                                 if a and b else "—")
                if any(c != "—" for c in cells):
                    out.append(f"| {opt} | {dtype} | " + " | ".join(cells) + " |")
    # Slower than any peer?
    slow = []
    for r in data["results"]:
        for peer, s in r["speedup"].items():
            if s < 1.0:
                c = r["case"]
                slow.append(f"{c['optimizer']} {c['dtype']} {c['layout']} thr={c['threads']} "
                            f"vs {B.PEER_LABELS[peer]}: {s:.2f}x")
    out.append("")
    if slow:
        out.append(f"Cases where gradstep is slower than a peer ({len(slow)}):")
        out.append("")
        out.extend(f"- {s}" for s in slow)
    else:
        out.append("gradstep is faster than every peer in every case.")
    return "\n".join(out)


def tables(data: dict[str, Any]) -> str:
    parts = []
    for title, keep in [
        ("Single tensors: Adam, AdamW, SGD-momentum, RMSprop, Adagrad",
         lambda c: c["optimizer"] in B.CORE and "x" not in c["layout"]),
        ("Many small tensors: Adam, AdamW, SGD-momentum, RMSprop, Adagrad",
         lambda c: c["optimizer"] in B.CORE and "x" in c["layout"]),
        ("Optimizers torch cannot fuse: Adadelta, Adamax, NAdam, RAdam, Rprop",
         lambda c: c["optimizer"] not in B.CORE),
    ]:
        sub = _rows(data, keep)
        if sub["results"]:
            parts.append(f"### {title}\n\n{B.markdown(sub)}")
    return "\n\n".join(parts)


def plot(data: dict[str, Any], path: Path, optimizers: list[str], dtype: str) -> bool:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    thr = sorted({r["case"]["threads"] for r in data["results"]})
    opts = [o for o in optimizers
            if any(r["case"]["optimizer"] == o and r["case"]["dtype"] == dtype
                   for r in data["results"])]
    if not opts:
        return False
    dram = {d["threads"]: d["median"] for d in data["dram"]}
    fig, axes = plt.subplots(len(thr), len(opts), figsize=(3.4 * len(opts), 3.2 * len(thr)),
                             sharex=True, sharey=True, squeeze=False)
    styles = {"gradstep": ("C3", "o", 2.4), "numpy": ("C0", "s", 1.2), "loop": ("C2", "v", 1.2),
              "foreach": ("C1", "^", 1.2), "fused": ("C4", "D", 1.2)}
    for i, th in enumerate(thr):
        for j, opt in enumerate(opts):
            ax = axes[i][j]
            rows = [r for r in data["results"]
                    if r["case"]["optimizer"] == opt and r["case"]["dtype"] == dtype
                    and r["case"]["threads"] == th and "x" not in r["case"]["layout"]]
            rows.sort(key=lambda r: float(r["case"]["layout"]))
            xs = [float(r["case"]["layout"]) for r in rows]
            for impl, (color, marker, lw) in styles.items():
                pts = [(x, r["bytes_per_element"] / r["ns"][impl])
                       for x, r in zip(xs, rows) if impl in r["ns"]]
                if pts:
                    ax.plot(*zip(*pts), color=color, marker=marker, lw=lw, ms=4,
                            label=B.PEER_LABELS[impl])
            pts = [(x, r["probe_gbps"]) for x, r in zip(xs, rows)
                   if not math.isnan(r["probe_gbps"])]
            if pts:
                ax.plot(*zip(*pts), color="0.45", ls=":", lw=1.2,
                        label="a+=b probe, same footprint")
            if th in dram:
                ax.axhline(dram[th], color="0.3", ls="--", lw=1,
                           label="a+=b probe, DRAM")
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.grid(True, which="major", alpha=0.3)
            ax.set_title(f"{opt} {dtype}, {th} thread{'s' if th > 1 else ''}", fontsize=9)
            if i == len(thr) - 1:
                ax.set_xlabel("elements (one tensor)")
            if j == 0:
                ax.set_ylabel("GB/s moved (higher is faster)")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=8,
               frameon=False)
    fig.suptitle("Optimizer step throughput: compulsory bytes per element / time "
                 "(Adam fp32: 28 B)", fontsize=10)
    fig.tight_layout(rect=(0, 0.06, 1, 0.96))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def results_md(data: dict[str, Any], pngs: list[str], command: str) -> str:
    m = data["machine"]
    dram = "; ".join(f"{d['threads']} thread(s): {d['median']:.1f} GB/s median, "
                     f"{d['best']:.1f} best" for d in data["dram"])
    fp = data["dram"][0]["footprint"] / 2**30 if data["dram"] else 0
    lines = [
        "# gradstep benchmark results",
        "",
        f"Machine: {B.describe_machine(m)}.",
        "",
        f"Command: `{command}` ({data['seconds'] / 60:.1f} min). Regenerate with the same "
        "command; `python -m gradstep bench --quick` runs a one-minute subset.",
        "",
        f"Bandwidth probe (`a += b`, in-place NumPy, {fp:.0f} GiB footprint, far beyond the "
        f"last-level cache): {dram}. It counts read a, read b, write a; the written lines "
        "are already in cache, so there is no uncounted read-for-ownership and no "
        "temporary. The same probe is run paired with every case on arrays of that "
        "case's footprint (\"% probe\"), so in-cache sizes are set against in-cache "
        "bandwidth and drifts of a shared machine cancel.",
        "",
        B.legend(data),
        "",
        "Caveat: this is a 2-vCPU virtual machine shared with other jobs; the load average "
        "above is what else was running. Ratios come from paired, interleaved runs and "
        "survive that noise far better than absolute ns/element.",
        "",
    ]
    if data["problems"]:
        lines += ["Disagreements in the pre-run check (same steps computed?):", ""]
        lines += [f"- {p}" for p in data["problems"]] + [""]
    else:
        lines += ["Pre-run check: every implementation computes the same 8 steps as "
                  "gradstep (float64 to 1e-8 of the step size, float32 to 1e-3).", ""]
    lines += ["## Summary", "", goals(data), "", "## Plots", ""]
    lines += [f"![{p}]({p})" for p in pngs] + ["", "## All results", "", tables(data), ""]
    return "\n".join(lines)


def _command(argv: list[str]) -> str:
    """The command line that reproduces this run (without where the JSON went)."""
    shown, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a == "--json":
            skip = True
        elif not a.startswith("--json="):
            shown.append(a)
    return " ".join(["python bench/bench_optimizers.py", *shown])


def main(argv: list[str] | None = None) -> int:
    ap = B.parser(prog="python bench/bench_optimizers.py")
    ap.description = "The full gradstep benchmark (see the module docstring)."
    ap.add_argument("--write", action="store_true",
                    help="write bench/RESULTS.md and bench/throughput_*.png")
    ap.add_argument("--from-json", metavar="PATH",
                    help="render saved results (from --json) instead of running")
    args = ap.parse_args(argv)
    if args.from_json:
        with open(args.from_json) as f:
            data = json.load(f)
    else:
        if args.quick or args.smoke:
            cfg = B.config_from(args)
        else:
            base = dict(FULL)
            for key in ("optimizers", "dtypes", "layouts", "threads", "rounds"):
                if getattr(args, key) is not None:
                    base[key] = getattr(args, key)
            if args.layouts is not None:
                base["layouts_for"] = {}
            base.setdefault("threads", B.config_from(args).threads)
            base["peers"] = args.peers or list(B.PEERS)
            base["check"] = not args.no_check
            cfg = B.Config(**base)

        def log(s: str) -> None:
            print(s, file=sys.stderr, flush=True)

        data = B.run(cfg, log)
        data["command"] = _command(argv if argv is not None else sys.argv[1:])
        if args.json:
            with open(args.json, "w") as f:
                json.dump(data, f, indent=1)
    print(f"Machine: {B.describe_machine(data['machine'])}\n")
    print(tables(data))
    print()
    print(B.legend(data))
    print()
    print(goals(data))
    if args.write:
        pngs = []
        for name, opts, dtype in [("throughput_float32.png", B.CORE, "float32"),
                                  ("throughput_float64.png", B.CORE, "float64"),
                                  ("throughput_unfusable_float32.png", B.UNFUSABLE, "float32")]:
            if plot(data, HERE / name, opts, dtype):
                pngs.append(name)
        command = data.get("command", "python bench/bench_optimizers.py --write")
        (HERE / "RESULTS.md").write_text(results_md(data, pngs, command))
        print(f"\nwrote {HERE / 'RESULTS.md'} and {', '.join(pngs)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
