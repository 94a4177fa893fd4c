"""CPU of the collector's process per point written, v1 writer (aiohttp ``/write``) against the
v2 writer (influxdb-client ``/api/v2/write``), both to one VictoriaMetrics on this machine (a
sink that is not the bottleneck, docs/benchmarks.md), in the same run.

    .venv/bin/python bench/influx_writers.py [--batches 200] [--points 5000] [--runs 3]

Prints, per writer, the median over the runs of the client's CPU µs per point and points/s.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from wardwatch.collector.influx import InfluxV1Writer
from wardwatch.collector.influx_v2 import InfluxV2Writer
from wardwatch.simulators.lab import start_victoria


def batches(n: int, points: int, start_ms: int) -> list[list[bytes]]:
    out = []
    for b in range(n):
        t = start_ms + b * 10
        out.append([
            f"if_traffic,ward=w{i % 13},device=sw{i % 97},if_name=ge{i % 48} in_bps={i * 1.5},out_bps={i}i {t}".encode()
            for i in range(points)
        ])
    return out


async def one(writer: InfluxV1Writer, data: list[list[bytes]]) -> tuple[float, float]:
    async with writer:
        await writer.write(data[0][:1])  # connect before timing
        cpu, wall = time.process_time(), time.perf_counter()
        for lines in data:
            await writer.write(lines)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    n = sum(len(x) for x in data)
    return cpu / n * 1e6, n / wall


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batches", type=int, default=200)
    ap.add_argument("--points", type=int, default=5000)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        vm = start_victoria(Path(tmp))
        try:
            data = batches(args.batches, args.points, int(time.time() * 1000) - 3_600_000)
            results: dict[str, list[tuple[float, float]]] = {"v1": [], "v2": []}
            for _ in range(args.runs):  # interleaved, so that drift hits both alike
                results["v1"].append(asyncio.run(one(InfluxV1Writer(url=vm.url, database="b"), data)))
                results["v2"].append(asyncio.run(one(
                    InfluxV2Writer(url=vm.url, token="t", org="o", bucket="b", database="b"), data)))
        finally:
            vm.stop()
    for name, runs in results.items():
        us = statistics.median(r[0] for r in runs)
        rate = statistics.median(r[1] for r in runs)
        print(f"{name}: {us:.2f} µs CPU per point, {rate:,.0f} points/s (median of {len(runs)})")


if __name__ == "__main__":
    main()
