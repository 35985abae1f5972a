"""Turn pytest-benchmark JSON into a markdown table of throughput and ratios to fastinit.

    python benchmarks/report.py bench.json [more.json ...]
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict

LIBRARIES = ["fastinit", "torch", "numpy", "jax", "constant fill"]


def rows(paths):
    """``groups[(fill, dtype, elements)][library] = G/s`` and the scaling runs
    ``(kind, fill, dtype, elements, threads, ns per element)``, from pytest-benchmark JSON files."""
    groups, scaling = defaultdict(dict), []
    machine = None
    for path in paths:
        with open(path) as f:
            data = json.load(f)
        machine = machine or data.get("machine_info", {})
        for bench in data["benchmarks"]:
            info = bench.get("extra_info", {})
            if "library" not in info:
                continue
            seconds = bench["stats"]["median"]
            if "scaling" in info:
                scaling.append((info["scaling"], info["fill"], info["dtype"], info["elements"],
                                info["threads"], seconds / info["elements"] * 1e9))
                continue
            key = (info["fill"], info["dtype"], info["elements"])
            groups[key][info["library"]] = info["elements"] / seconds / 1e9
    return groups, sorted(scaling), machine


def table(groups) -> str:
    head = "| fill | dtype | elements | " + " | ".join(f"{lib} G/s" for lib in LIBRARIES) + \
           " | fastinit / torch | fastinit / NumPy | fastinit / JAX | fastinit / constant |"
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for (fill, dtype, n), speeds in sorted(groups.items()):
        ours = speeds.get("fastinit")
        cells = [f"{speeds[lib]:.3f}" if lib in speeds else "–" for lib in LIBRARIES]
        ratios = [f"{ours / speeds[lib]:.2f}x" if ours and lib in speeds else "–"
                  for lib in ("torch", "numpy", "jax", "constant fill")]
        lines.append(f"| {fill} | {dtype} | 2^{n.bit_length() - 1} | " + " | ".join(cells + ratios) + " |")
    return "\n".join(lines)


def scaling_table(scaling) -> str:
    """ns per element per run, and each run's speed relative to the first of its series."""
    lines = ["| scaling | fill | dtype | elements | threads | ns / element | speed vs first |",
             "|---|---|---|---|---|---|---|"]
    first = {}
    for kind, fill, dtype, n, threads, ns in scaling:
        base = first.setdefault((kind, fill, dtype), ns)
        lines.append(f"| {kind} | {fill} | {dtype} | 2^{n.bit_length() - 1} | {threads} | {ns:.3f} | "
                     f"{base / ns:.2f}x |")
    return "\n".join(lines)


def main(argv=None) -> int:
    paths = (argv if argv is not None else sys.argv[1:])
    if not paths:
        print(__doc__, file=sys.stderr)
        return 2
    groups, scaling, machine = rows(paths)
    cpu = machine.get("cpu", {})
    print(f"Machine: {cpu.get('brand_raw', machine.get('processor', '?'))}, {cpu.get('count', '?')} logical cores, "
          f"Python {machine.get('python_version', '?')}\n")
    if groups:
        print(table(groups))
    if scaling:
        print("\n" + scaling_table(scaling))
    return 0


if __name__ == "__main__":
    sys.exit(main())
