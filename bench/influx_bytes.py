"""InfluxDB 1.6's bytes on disk per value, for one ward's real readings over hours of 30 s
polls, after its full compaction: the storage figure of docs/scaling.md.

    .venv/bin/python bench/influx_bytes.py [--ward minh-an] [--hours 12]

Polls the ward's simulated devices twice (bench/fleet_shape.py: snmpsim and the camera
simulator, the agent's own pollers) and keeps the second poll's readings. Then writes them
``--hours`` long at 30 s steps into its own InfluxDB 1.6 (full compaction once a shard is
cold for 5 s), as the collector writes them (collector/lineproto.py): tags and strings as
polled, every float moved by a random walk of 3% a step (rates, power, round trips), the
integers kept (with ``--ints`` moved too, but 0 and 1). Prints the data directory's size
over the values written, once compaction has left one TSM file per shard. Bounded: 300 s
of waiting.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
from pathlib import Path

import msgspec

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fleet_shape import ward_readings

from wardwatch import wire
from wardwatch.collector import lineproto
from wardwatch.collector.influx import InfluxV1Writer
from wardwatch.simulators.lab import InfluxService, start_influxdb

STEP_MS = 30_000


def start_influx(run: Path) -> InfluxService:
    # Cold shards snapshotted and fully compacted within seconds, so the bytes on disk are final.
    return start_influxdb(run, data={"cache-snapshot-write-cold-duration": '"2s"',
                                     "compact-full-write-cold-duration": '"5s"'})


def evolve(value: wire.FieldValue, rng: random.Random, *, ints: bool) -> wire.FieldValue:
    if isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        if not ints or value in (0, 1):
            return value
        return max(0, int(value * (1 + rng.gauss(0, 0.03))))
    return round(value * (1 + rng.gauss(0, 0.03)), 2)


def du(path: Path, pattern: str = "*") -> int:
    """Bytes on disk (allocated blocks: the series files are preallocated sparse files)."""
    return sum(p.stat().st_blocks * 512 for p in path.rglob(pattern) if p.is_file())


async def write_hours(influx: InfluxService, ward: str, readings: list[wire.Reading], hours: float, *,
                      ints: bool) -> int:
    rng = random.Random(7)
    start = (int(time.time() * 1000) - int(hours * 3_600_000)) // STEP_MS * STEP_MS
    current = [dict(r.fields) for r in readings]
    values, pending = 0, []
    async with InfluxV1Writer(url=influx.url, database="bytes", timeout=60) as writer:
        await writer.ensure_database()
        for step in range(int(hours * 3600 * 1000 / STEP_MS)):
            t = start + step * STEP_MS
            batch = []
            for r, fields in zip(readings, current, strict=True):
                for k, v in fields.items():
                    fields[k] = evolve(v, rng, ints=ints)
                batch.append(msgspec.structs.replace(r, time_ms=t, fields=dict(fields)))
                values += len(fields)
            pending += lineproto.batch_lines(wire.Batch(schema=1, agent="a", ward=ward, seq=step, readings=batch))
            if len(pending) >= 5000:
                await writer.write(pending)
                pending = []
        await writer.write(pending)
    return values


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ward", default="minh-an")
    ap.add_argument("--hours", type=float, default=12)
    ap.add_argument("--ints", action="store_true", help="move the integers too (clients, bytes), not only floats")
    args = ap.parse_args()
    readings = ward_readings(args.ward)
    with tempfile.TemporaryDirectory() as tmp:
        influx = start_influx(Path(tmp))
        try:
            t0 = time.monotonic()
            values = asyncio.run(write_hours(influx, args.ward, readings, args.hours, ints=args.ints))
            print(f"{len(readings)} readings a poll, {values:,} values in {time.monotonic() - t0:.0f} s")
            data, wal = influx.run_dir / "data" / "bytes", influx.run_dir / "wal"
            waited, deadline = time.monotonic(), time.monotonic() + 300
            shards: list[Path] = []
            while time.monotonic() < deadline:  # one TSM file per shard: fully compacted
                shards = [p for p in data.glob("*/*") if p.is_dir() and p.parent.name != "_series"]  # RP/shard
                if shards and all(len(list(s.glob("*.tsm"))) == 1 for s in shards) and du(wal) < 2**16:
                    break
                time.sleep(2)
            print(f"compaction: {time.monotonic() - waited:.0f} s, "
                  f"{sum(len(list(s.glob('*.tsm'))) for s in shards)} TSM files in {len(shards)} shards")
            tsm, size = du(data, "*.tsm"), du(data)
            print(f"TSM {tsm:,} bytes: {tsm / values:.2f} bytes per value; the whole data directory "
                  f"(with the series file and index) {size:,}: {size / values:.2f}; wal {du(wal):,}")
        finally:
            influx.stop()


if __name__ == "__main__":
    main()
