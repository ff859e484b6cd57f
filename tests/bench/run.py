"""Run the benchmarks: ``python -m tests.bench.run`` (``--size tiny`` for a smoke check).

Prints a table (each scenario, its baseline measured in the same run, the ratio, the target)
and writes every figure with the machine's description to a JSON file (``--json``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path

from tests.bench import area_bench, national, replication_bench, scenarios
from tests.bench.harness import Stage, machine
from tests.bench.scenarios import FULL, TINY, Figure, Size

#: Seconds between two cancellations of a run stopped by a SIGTERM (``run``).
STOP_AGAIN = 0.5

SCENARIOS: dict[str, Callable[[Stage, Size], Awaitable[list[Figure]]]] = {
    "fanout": scenarios.fanout,
    "urgent": scenarios.urgent_latency,
    "limits": scenarios.provider_limits,
    "webhooks": scenarios.webhook_intake,
    "memory": scenarios.memory,
    "national": national.national,
    "area": area_bench.area_planning,
    "replication": replication_bench.replication_wait,
}


def table(figures: list[Figure]) -> str:
    rows = [("scenario", "measure", "value", "baseline", "baseline value", "ratio", "target", "met")]
    for f in figures:
        rows.append(
            (
                f.scenario,
                f.measure,
                f"{f.value:,.3g} {f.unit}" if f.value < 100 else f"{f.value:,.0f} {f.unit}",
                f.baseline,
                f"{f.baseline_value:,.3g}" if f.baseline_value < 100 else f"{f.baseline_value:,.0f}",
                f"{f.ratio:,.2f}",
                f.target,
                "yes" if f.met else "NO",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [" | ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(lines)


async def run(
    size: Size, names: list[str], latency: float, folder: Path, *, profile: bool, report: Callable[[list[Figure]], None]
) -> list[Figure]:
    """Run the scenarios in turn; ``report`` gets the figures so far after each (a later failure keeps them).

    A SIGTERM cancels the run as a Ctrl-C does: the service's processes, the vendors' and Redis are stopped on
    the way out, not left running beside the next measurement. The cancellation is asked again every
    ``STOP_AGAIN`` seconds until the run ends: one that lands while a client connects can be lost in the
    connection's own tasks, and the run would go on to its end.
    """
    running = asyncio.current_task()
    assert running is not None
    loop = asyncio.get_running_loop()

    def stop() -> None:
        if not running.done():
            running.cancel()
            loop.call_later(STOP_AGAIN, stop)

    loop.add_signal_handler(signal.SIGTERM, stop)
    figures: list[Figure] = []
    async with Stage(folder, latency=latency, profile=profile) as stage:
        for name in names:
            print(f"-- {name}", file=sys.stderr, flush=True)
            found = await SCENARIOS[name](stage, size)
            for f in found:
                verdict = "met" if f.met else "NOT met"
                line = f"   {f.measure}: {f.value:,.3f} {f.unit} vs {f.baseline_value:,.3f}"
                line += f" (ratio {f.ratio:.2f}, {f.target}: {verdict})"
                print(line, file=sys.stderr, flush=True)
            figures += found
            report(figures)
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="plp-dispatch benchmarks")
    parser.add_argument("--size", choices=["full", "tiny"], default="full")
    parser.add_argument("--only", action="append", choices=list(SCENARIOS), help="run only these scenarios")
    parser.add_argument("--latency", type=float, default=0.1, help="simulated provider latency, seconds (0.1)")
    parser.add_argument("--json", type=Path, default=Path("bench-results.json"), help="where to write the figures")
    parser.add_argument("--members", type=int, help="override the fan-out size")
    parser.add_argument("--area-members", type=int, help="override the area-planning zone's members (20 PLPs)")
    parser.add_argument("--keep", type=Path, help="keep the processes' logs (and profiles) in this folder")
    parser.add_argument("--profile", action="store_true", help="record every service process with py-spy")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is not met")
    args = parser.parse_args(argv)
    size = FULL if args.size == "full" else TINY
    if args.members:
        from dataclasses import replace

        size = replace(size, members=args.members)
    if args.area_members:
        from dataclasses import replace

        size = replace(size, area_members=args.area_members, area_plps=min(20, args.area_members))
    if args.profile and not args.keep:
        parser.error("--profile writes its profiles next to the logs: give --keep FOLDER too")
    names = args.only or list(SCENARIOS)
    described = machine()

    def report(figures: list[Figure]) -> None:
        result = {"machine": described, "size": args.size, "latency": args.latency}
        result["figures"] = [f.as_dict() for f in figures]
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")

    try:
        if args.keep:
            args.keep.mkdir(parents=True, exist_ok=True)
            figures = asyncio.run(run(size, names, args.latency, args.keep, profile=args.profile, report=report))
        else:
            with tempfile.TemporaryDirectory(prefix="plp-bench-") as folder:
                figures = asyncio.run(run(size, names, args.latency, Path(folder), profile=args.profile, report=report))
    except asyncio.CancelledError:  # a SIGTERM (see ``run``)
        print(f"stopped; the figures of the scenarios that ended are in {args.json}", file=sys.stderr)
        return 128 + signal.SIGTERM
    print(table(figures))
    country = national.table(figures)
    if country:
        print(f"\nnational scale, a column per number of worker processes:\n{country}")
    if args.profile:
        from tests.bench.profile import summary

        for path in sorted(args.keep.glob("profile-*.txt")):
            print("\n" + summary(path, top=25))
    print(f"\nfigures written to {args.json}")
    missed = [f"{f.scenario}: {f.measure}" for f in figures if not f.met]
    if missed:
        print(f"{len(missed)} target(s) not met:", *missed, sep="\n  ")
    return 1 if missed and args.strict else 0


if __name__ == "__main__":
    sys.exit(main())
