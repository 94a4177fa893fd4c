"""What the collector benches share: a VictoriaMetrics sink, synthetic agent batches, a
collector process with its /healthz counters, CPU from /proc, and py-spy's summary.

Not a bench itself: ``bench/collector_ingest.py`` and ``bench/collector_fleet.py`` import it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import yaml

from wardwatch import wire
from wardwatch.simulators.lab import free_port, script

BIN = Path(__file__).resolve().parent.parent / ".venv" / "bin"
READINGS_PER_BATCH = 26


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100  # clock ticks of 1/100 s


# --------------------------------------------------------------------------- batches


def make_batches(points: int, *, t0_ms: int, agents: int = 13) -> list[wire.Batch]:
    """Polls of 24-port switches (1 device_status + 25 if_traffic readings each), from
    ``agents`` agents in turn (13 wards), seq counting up per agent; every reading its own
    series and time."""
    batches = []
    for b in range(points // READINGS_PER_BATCH):
        a = b % agents
        ward = f"ward-{a % 13}"
        time_ms = t0_ms + b * 10
        dev = f"sw-{b % 50}"
        readings = [wire.Reading(device=dev, kind="switch", measurement="device_status", time_ms=time_ms,
                                 fields={"up": 1, "uptime_s": 12345.6, "poll_ms": 40.1, "reason": "ok"})]
        readings += [
            wire.Reading(device=dev, kind="switch", measurement="if_traffic", time_ms=time_ms,
                         fields={"in_bps": 1e6 + i + b, "out_bps": 2e5 + i, "in_err_ps": 0.0, "out_err_ps": 0.0,
                                 "oper_up": 1, "speed_mbps": 1000.0, "util_pct": 0.1 + i / 100},
                         tags={"if_name": f"Gi1/0/{i + 1}"})
            for i in range(READINGS_PER_BATCH - 1)
        ]
        batches.append(wire.Batch(schema=1, agent=f"bench-{a}", ward=ward, seq=b // agents, readings=readings,
                                  pending_from=b // agents))
    return batches


# --------------------------------------------------------------------------- the collector


class CollectorProc:
    """One ``wardwatch-collector run`` with its own config, read through /healthz."""

    def __init__(self, run_dir: Path, label: str, *, broker_port: int, influx_url: str, database: str,
                 share_group: str | None = None, extra: dict[str, Any] | None = None,
                 top: dict[str, Any] | None = None) -> None:
        self.label = label
        self.http_port = free_port()
        mqtt: dict[str, Any] = {"host": "127.0.0.1", "port": broker_port, "client_id": label}
        if share_group:
            mqtt["share_group"] = share_group
        doc: dict[str, Any] = {
            "mqtt": mqtt,
            "influx": {"api": "v1", "url": influx_url, "database": database},
            "http": {"host": "127.0.0.1", "port": self.http_port},
            "dead_letter": {"path": str(run_dir / f"dead-{label}.jsonl")},
            "spool": {"path": str(run_dir / f"spool-{label}.sqlite")},
        }
        for key, value in (extra or {}).items():  # keys of its sections
            doc.setdefault(key, {}).update(value)
        doc.update(top or {})
        cfg = run_dir / f"{label}.yaml"
        cfg.write_text(yaml.safe_dump(doc))
        self.svc = script("wardwatch-collector", ["run", "-c", str(cfg), "--log-level", "WARNING"],
                          run_dir=run_dir, label=label)

    @property
    def pid(self) -> int:
        return self.svc.pid

    def health(self) -> dict[str, Any] | None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}/healthz", timeout=5) as resp:
                doc: dict[str, Any] = json.load(resp)
                return doc
        except urllib.error.HTTPError as exc:  # 503 while degraded still carries the document
            doc = json.loads(exc.read())
            return doc
        except OSError:
            return None

    def start(self, *, until_subscribed: bool = True, timeout: float = 30.0) -> None:
        """Start; return once /healthz answers (and, by default, it is subscribed)."""
        self.svc.start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.svc.running():
                raise SystemExit(f"collector exited: see {self.svc.log_path}")
            h = self.health()
            if h is not None and (not until_subscribed or h["mqtt_subscribed"]):
                return
            time.sleep(0.02)
        raise SystemExit(f"collector not ready after {timeout:g} s: see {self.svc.log_path}")

    def written(self) -> int:
        h = self.health()
        return int(h["counters"]["points_written"]) if h else 0

    def stop(self) -> None:
        self.svc.stop()


def wait_written(collectors: list[CollectorProc], expected: int, *, deadline_s: float) -> float:
    """Seconds until the collectors' points_written (their own lines not counted) add up to
    ``expected``; polled every 50 ms."""
    started = time.monotonic()
    while True:
        total = sum(c.written() for c in collectors)
        if total >= expected:
            return time.monotonic() - started
        if time.monotonic() - started > deadline_s:
            raise SystemExit(f"bench: only {total} of {expected} points written after {deadline_s:g} s")
        time.sleep(0.05)


def forget_session(broker_port: int, client_id: str) -> None:
    """End a collector's session at the broker (connect clean, expiry 0, disconnect), so that
    later runs' messages are not queued for it."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    c = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    c.connect("127.0.0.1", broker_port, clean_start=True)
    c.loop_start()
    deadline = time.monotonic() + 10
    while not c.is_connected() and time.monotonic() < deadline:
        time.sleep(0.02)
    c.disconnect()
    c.loop_stop()


# --------------------------------------------------------------------------- py-spy


def py_spy() -> str | None:
    spy = BIN / "py-spy"
    return str(spy) if spy.exists() else shutil.which("py-spy")


def start_profile(pid: int, out: Path, *, rate: int = 200) -> subprocess.Popen[bytes] | None:
    spy = py_spy()
    if spy is None:
        print("py-spy not found: pip install py-spy (the bench extra)")
        return None
    return subprocess.Popen([spy, "record", "--rate", str(rate), "--pid", str(pid), "--format", "raw",
                             "--output", str(out), "--nonblocking"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stop_profile(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is None:
        return
    proc.send_signal(2)  # py-spy writes its output on SIGINT
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()


def summarize(path: Path, top: int = 25) -> str:
    """py-spy's collapsed stacks -> the functions with the most samples, self and inclusive."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        frames = [f.split(" (", 1)[0] + " " + f.rsplit("/", 1)[-1].rstrip(")") for f in stack.split(";") if f]
        n = int(count)
        total += n
        if frames:
            own[frames[-1]] += n
        for f in set(frames):
            inclusive[f] += n
    out = [f"py-spy: {total} samples of the collector's busy threads"]
    for title, table in (("self", own), ("inclusive", inclusive)):
        out.append(f"  top by {title}:")
        out += [f"    {100 * n / max(total, 1):5.1f}%  {frame}" for frame, n in table.most_common(top)]
    return "\n".join(out)
