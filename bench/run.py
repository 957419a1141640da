"""Benchmark pygatt's GATTTool, BGAPI and D-Bus backends against their simulators (real ptys, a real bus).

    python -m bench            # the full run (about a minute)
    python -m bench --quick    # smaller counts, for a smoke test
    python -m bench --plot docs/performance-throughput.png   # also plot throughput vs size

Prints one table. Times are wall-clock on this machine; the simulator runs on the
same cores, so compare ratios within one run rather than numbers across machines.
Nothing here is asserted: the unit tests never time anything.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import bgapi, dbus, gatttool  # noqa: E402
from bench.common import this_machine  # noqa: E402

# -- the run ---------------------------------------------------------------------------


def plotting_available() -> bool:
    """Whether matplotlib, which ``--plot`` draws with, is installed (found, not imported: loading it
    before the flood would add its memory to the flood's RSS figures)."""
    return importlib.util.find_spec("matplotlib") is not None


def plot(points: List[Dict[str, Any]], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(7, 4))
    sizes = [p["size"] for p in points]
    axis.plot(sizes, [p["library_alone"] for p in points], marker="s", label="library alone (replayed output)")
    axis.plot(sizes, [p["limit"] for p in points], marker="^", label="transport limit (simulator, bare os.read loop)")
    if all("floor" in p for p in points):
        axis.plot(
            sizes, [p["floor"] for p in points], marker="v", label="floor (the bare loop on the library's threads)"
        )
    axis.plot(sizes, [p["per_second"] for p in points], marker="o", label="end to end, delivered to the callback")
    axis.set_xlabel("notification value size (bytes)")
    axis.set_ylabel("notifications / s")
    axis.set_title("pygatt GATTTool backend, simulated peripheral on a pty")
    axis.set_ylim(bottom=0)
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small counts (a smoke test)")
    parser.add_argument("--plot", metavar="PNG", help="also measure several sizes and plot throughput vs size")
    parser.add_argument("--json", metavar="FILE", help="write the results as JSON")
    parser.add_argument("--rounds", type=int, help="rounds per GATTTool measure (default 5; 1 with --quick)")
    parser.add_argument(
        "--backend",
        choices=("all", "gatttool", "bgapi", "dbus"),
        default="all",
        help="which backend to measure (default all)",
    )
    args = parser.parse_args(argv)
    if args.plot and not plotting_available():  # say so now, not after minutes of measuring
        parser.error("--plot needs matplotlib: pip install '.[bench]'")
    quick = args.quick
    flood = 10_000 if quick else 100_000
    results: Dict[str, Any] = this_machine()
    bgapi_steps: List[Tuple[str, Callable[[str], Any]]] = [
        ("bgapi_throughput", lambda d: bgapi.throughput(d, flood)),
        ("bgapi_simulator_per_second", lambda d: bgapi.simulator_rate(d, flood)),
        ("bgapi_read", lambda d: bgapi.read_latency(d, 200 if quick else 2000)),
        ("bgapi_idle_cpu_percent", lambda d: bgapi.idle_cpu(d, 2 if quick else 10)),
    ]
    with tempfile.TemporaryDirectory() as directory:
        if args.backend in ("all", "gatttool"):
            rounds = args.rounds or (1 if quick else 5)
            results["gatttool"] = gatttool.run(directory, quick, rounds)
            if args.plot:
                results["gatttool_sizes"] = gatttool.sizes(directory, quick)
                plot(results["gatttool_sizes"], args.plot)
        others = (bgapi_steps if args.backend in ("all", "bgapi") else []) + (
            dbus.steps(quick) if args.backend in ("all", "dbus") else []
        )
        for name, step in others:
            print(f"... {name}", file=sys.stderr, flush=True)
            results[name] = step(directory)
    results["load_average_after"] = os.getloadavg()
    report(results, flood)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


def report(r: Dict[str, Any], flood: int) -> None:
    print(f"machine: {r['machine']}, Python {r['python']}")
    print("load average (1/5/15 min) before: {:.2f} {:.2f} {:.2f}".format(*r["load_average"]))
    print("load average (1/5/15 min) after:  {:.2f} {:.2f} {:.2f}".format(*r["load_average_after"]))
    if "gatttool" in r:
        table = [gatttool.HEADER, *gatttool.rows(r["gatttool"])]
        for point in r.get("gatttool_sizes", []):
            floor = point.get("floor")
            table.append(
                (
                    f"   at {point['size']} B (library alone {point['library_alone']:,.0f}/s)",
                    f"{point['per_second']:,.0f}",
                    f"{point['limit']:,.0f}",
                    f"{point['per_second'] / point['limit']:.2f}",
                    "" if floor is None else f"{floor:,.0f}",
                    "" if floor is None else f"{floor / point['limit']:.2f}",
                    "",
                )
            )
        widths = [max(len(row[i]) for row in table) for i in range(len(gatttool.HEADER))]
        for row in table:
            cells = [f"{row[0]:<{widths[0]}}", *(f"{cell:>{width}}" for cell, width in zip(row[1:-1], widths[1:-1]))]
            print("  ".join(cells), " ", row[-1])
    rows = bgapi_rows(r, flood) if "bgapi_throughput" in r else []
    if "dbus_throughput" in r:
        rows += dbus.rows(r)
    if rows:
        width = max(len(name) for name, _, _ in rows)
        print(f"{'measure':<{width}}  {'result':>22}  target")
        for name, value, target in rows:
            print(f"{name:<{width}}  {value:>22}  {target}")


def bgapi_rows(r: Dict[str, Any], flood: int) -> List[Tuple[str, str, str]]:
    bt, brd = r["bgapi_throughput"], r["bgapi_read"]
    return [
        ("BGAPI (simulated BLED112 on a pty)", "", ""),
        (f"6. notifications/s ({flood:,} x 20 B)", f"{bt['per_second']:,.0f}", ">= 30,000"),
        ("   lost / corrupted", f"{bt['lost']} / {bt['corrupted']}", "0 / 0"),
        ("   library CPU s per 100k notifications", f"{bt['cpu_seconds'] * 100_000 / flood:.2f}", ""),
        ("   simulated dongle alone, raw pty (notif/s)", f"{r['bgapi_simulator_per_second']:,.0f}", ""),
        ("7. char_read median / p99 (ms)", f"{brd['median_ms']:.3f} / {brd['p99_ms']:.3f}", ""),
        ("   simulated dongle's own reply, median (ms)", f"{brd['simulator_median_ms']:.3f}", ""),
        ("   library overhead, median (ms)", f"{brd['overhead_median_ms']:.3f}", "<= 1"),
        ("8. idle CPU, connected (% of a core)", f"{r['bgapi_idle_cpu_percent']:.2f}", "~0"),
    ]


if __name__ == "__main__":
    sys.exit(main())
