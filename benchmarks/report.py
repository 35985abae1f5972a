"""Turn pytest-benchmark JSON into a markdown table of throughput and ratios to fastinit.

    python benchmarks/report.py bench.json [more.json ...]
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict

LIBRARIES = ["fastinit", "torch", "numpy", "jax", "constant fill"]


def rows(paths):
    groups = defaultdict(dict)
    machine = None
    for path in paths:
        with open(path) as f:
            data = json.load(f)
        machine = machine or data.get("machine_info", {})
        for bench in data["benchmarks"]:
            info = bench.get("extra_info", {})
            if "library" not in info:
                continue
            key = (info["fill"], info["dtype"], info["elements"])
            groups[key][info["library"]] = info["elements"] / bench["stats"]["median"] / 1e9
    return groups, machine


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


def main(argv=None) -> int:
    paths = (argv if argv is not None else sys.argv[1:])
    if not paths:
        print(__doc__, file=sys.stderr)
        return 2
    groups, machine = rows(paths)
    cpu = machine.get("cpu", {})
    print(f"Machine: {cpu.get('brand_raw', machine.get('processor', '?'))}, {cpu.get('count', '?')} logical cores, "
          f"Python {machine.get('python_version', '?')}\n")
    print(table(groups))
    return 0


if __name__ == "__main__":
    sys.exit(main())
