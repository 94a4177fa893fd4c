"""The agent's CPU and memory for N simulated cameras, against a bare ONVIF client's.

Starts Mosquitto and the camera simulator (``wardwatch-sim cameras``, its own process, so its
CPU is not counted), then two pollers side by side, each a process of its own, polling every
camera once per ``--interval`` from a random start offset:

- ours: ``wardwatch-agent run`` with one ``kind: camera`` device per camera, default options
  (GetSystemDateAndTime, GetDeviceInformation, GetProfiles, stream and snapshot URIs, RTSP
  OPTIONS+DESCRIBE, the snapshot GET, PullPoint events, ICMP where allowed, the outbox and
  MQTT). Polls are counted from the ``camera_health`` readings it publishes.
- baseline: a minimal client in this file (``--baseline-worker``): one aiohttp session, one
  SOAP 1.2 ``GetSystemDateAndTime`` POST per camera per interval, nothing else.

CPU (user+sys) is read from /proc/PID/stat at the end of a warm-up (the first round: imports,
WSDLs, sessions) and at the end of the run; the figures are for that window, idle time
included. RSS from /proc/PID/status (VmRSS at the end, VmHWM peak). The ratio is our CPU per
camera poll over the baseline's CPU per GetSystemDateAndTime.

    .venv/bin/python bench/camera_poll.py [--cameras 200] [--interval 60] [--duration 150] [--runs 1] [--no-icmp]

``--no-icmp`` leaves out the ping beside each poll (``icmp: false``), to show what it costs.

Bounded: ``--duration`` per run (at most 1 h), at most 1000 cameras, every wait has a deadline;
everything listens on 127.0.0.1; processes are stopped by PID.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import select
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import yaml

BIN = Path(sys.executable).parent
TICK = os.sysconf("SC_CLK_TCK")
USER, PASSWORD = "admin", "Cam12345"
GSDT = (
    b'<?xml version="1.0" encoding="UTF-8"?><s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope">'
    b'<s:Body><GetSystemDateAndTime xmlns="http://www.onvif.org/ver10/device/wsdl"/></s:Body></s:Envelope>'
)


# The baseline: a bare GetSystemDateAndTime loop ---------------------------------------


async def baseline(cams: list[dict[str, Any]], interval: float, max_offset: float) -> None:
    import aiohttp

    times: list[tuple[float, bool]] = []
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)

    async def one(session: aiohttp.ClientSession, url: str) -> None:
        loop = asyncio.get_running_loop()
        due = loop.time() + random.uniform(0, max_offset)
        while True:
            await asyncio.sleep(max(0.0, due - loop.time()))
            ok = False
            try:
                async with asyncio.timeout(5), session.post(
                        url, data=GSDT, headers={"Content-Type": "application/soap+xml; charset=utf-8"}) as resp:
                    body = await resp.read()
                    ok = resp.status == 200 and b"UTCDateTime" in body
            except (aiohttp.ClientError, OSError, TimeoutError):
                pass
            times.append((time.time(), ok))
            due += interval

    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64)) as session:
            async with asyncio.TaskGroup() as tg:
                for c in cams:
                    tg.create_task(one(session, c["device_service"]))
    except asyncio.CancelledError:  # SIGTERM: the end of this worker, not of a caller's wait
        print(json.dumps(times), flush=True)


# Measuring a process ----------------------------------------------------------------


def cpu_s(pid: int) -> float:
    """user + sys CPU seconds of a live process, from /proc/PID/stat."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2:].split()  # after "pid (comm) "
    return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime: fields 14 and 15


def rss_mb(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) in MB."""
    vals = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            vals[key] = int(rest.split()[0]) / 1024
    return vals["VmRSS"], vals["VmHWM"]


def stop(proc: subprocess.Popen[Any], timeout: float = 15) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)


def first_line(proc: subprocess.Popen[str], timeout: float) -> str:
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    if not ready:
        raise RuntimeError(f"pid {proc.pid}: nothing on stdout after {timeout:g}s")
    line = proc.stdout.readline()
    if not line:
        raise RuntimeError(f"pid {proc.pid} exited: rc {proc.wait(5)}")
    return line


class Readings:
    """camera_health readings from the agent's readings topic: (time, ok) per poll."""

    def __init__(self, port: int) -> None:
        import paho.mqtt.client as mqtt

        from wardwatch import wire

        self.polls: list[tuple[float, bool]] = []
        self.failed: list[tuple[float, str]] = []  # (time, "reason/error: detail") of polls not ok
        self.lock = threading.Lock()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"bench-{os.getpid()}")

        def on_message(_c: Any, _u: Any, msg: Any) -> None:
            batch = wire.decode_from(msg.topic, msg.payload)
            with self.lock:
                health = [r for r in batch.readings if r.measurement == "camera_health"]
                self.polls += [(r.time_ms / 1000, r.fields.get("ok") == 1) for r in health]
                self.failed += [(r.time_ms / 1000, f"{r.fields.get('reason')}/{r.fields.get('error', '-')}")
                                for r in health if r.fields.get("ok") != 1]

        self.client.on_message = on_message
        self.client.connect("127.0.0.1", port)
        self.client.subscribe("wardwatch/v1/+/+/readings", qos=1)
        self.client.loop_start()

    def failures(self, t0: float, t1: float) -> dict[str, int]:
        with self.lock:
            return dict(Counter(why for t, why in self.failed if t0 <= t < t1))

    def window(self, t0: float, t1: float) -> tuple[int, int]:
        with self.lock:
            inside = [ok for t, ok in self.polls if t0 <= t < t1]
        return len(inside), sum(inside)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


# One run --------------------------------------------------------------------------------


def run_once(n: int, interval: float, duration: float, warmup: float, work: Path, icmp: bool = True) -> dict[str, Any]:
    from wardwatch.simulators.lab import start_mosquitto

    mosq = start_mosquitto(work)
    sim = agent = base = None
    readings = None
    try:
        sim = subprocess.Popen([str(BIN / "wardwatch-sim"), "cameras", "--count", str(n), "--brand", "mix",
                                "--control-port", "0", "--user", USER, "--password", PASSWORD],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        cams = json.loads(first_line(sim, 120))["cameras"]
        (work / "cameras.json").write_text(json.dumps(cams))
        cfg = {
            "agent": {"id": "bench", "ward": "bench"},
            "mqtt": {"host": "127.0.0.1", "port": mosq.port},
            "outbox": {"path": str(work / "outbox.db")},
            "auth": {"cam": {"onvif": {"username": USER, "password": PASSWORD}}},
            "devices": [{"id": c["id"], "kind": "camera", "host": c["host"], "port": c["onvif_port"], "auth": "cam",
                         "interval": f"{interval:g}s", **({} if icmp else {"icmp": False})} for c in cams],
        }
        (work / "agent.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
        readings = Readings(mosq.port)
        with open(work / "agent.log", "w") as log:
            agent = subprocess.Popen([str(BIN / "wardwatch-agent"), "--log-level", "WARNING", "run", "-c",
                                      str(work / "agent.yaml")], stdout=log, stderr=log)
        base = subprocess.Popen([sys.executable, __file__, "--baseline-worker", str(work / "cameras.json"),
                                 "--interval", str(interval)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                text=True)
        start = time.time()
        time.sleep(warmup)
        t0 = time.time()
        cpu0 = {"agent": cpu_s(agent.pid), "base": cpu_s(base.pid)}
        time.sleep(max(0.0, start + duration - time.time()))
        t1 = time.time()
        cpu1 = {"agent": cpu_s(agent.pid), "base": cpu_s(base.pid)}
        rss, hwm = rss_mb(agent.pid)
        base_rss, _ = rss_mb(base.pid)
        if agent.poll() is not None or base.poll() is not None:
            raise RuntimeError(f"a poller died: agent rc {agent.poll()}, baseline rc {base.poll()}")
        base.terminate()
        out, _ = base.communicate(timeout=30)
        calls = [(t, ok) for t, ok in json.loads(out or "[]") if t0 <= t < t1]
        deadline, seen = time.time() + 10, -1  # readings of polls inside the window still on their way
        while time.time() < deadline and readings.window(t0, t1)[0] != seen:
            seen = readings.window(t0, t1)[0]
            time.sleep(1)
        polls, polls_ok = readings.window(t0, t1)
        if polls_ok < polls:
            print(f"failed polls (reason/error): {readings.failures(t0, t1)}", file=sys.stderr, flush=True)
        window = t1 - t0
        agent_cpu, base_cpu = cpu1["agent"] - cpu0["agent"], cpu1["base"] - cpu0["base"]
        ours = 1000 * agent_cpu / max(polls, 1)
        theirs = 1000 * base_cpu / max(len(calls), 1)
        return {"window_s": window, "polls": polls, "polls_ok": polls_ok, "agent_cpu_s": agent_cpu,
                "cpu_ms_per_poll": ours, "core_pct": 100 * agent_cpu / window, "rss_mb": rss, "rss_peak_mb": hwm,
                "base_calls": len(calls), "base_ok": sum(ok for _, ok in calls), "base_cpu_s": base_cpu,
                "base_cpu_ms_per_call": theirs, "base_rss_mb": base_rss, "ratio": ours / theirs if theirs else 0.0}
    finally:
        if readings is not None:
            readings.close()
        for p in (agent, base, sim):
            if p is not None:
                stop(p)
        mosq.stop()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cameras", type=int, default=200)
    ap.add_argument("--interval", type=float, default=60.0, help="poll interval, seconds (default 60)")
    ap.add_argument("--duration", type=float, default=150.0, help="seconds per run, warm-up included (default 150)")
    ap.add_argument("--warmup", type=float, default=None, help="seconds not measured (default interval / 2)")
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--no-icmp", action="store_true",
                    help="icmp: false on every camera (what the ping beside each poll costs; not today's poll)")
    ap.add_argument("--baseline-worker", metavar="CAMERAS_JSON", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.baseline_worker:
        cams = json.loads(Path(args.baseline_worker).read_text())
        asyncio.run(baseline(cams, args.interval, min(10.0, args.interval)))
        return 0
    warmup = args.interval / 2 if args.warmup is None else args.warmup
    if not (1 <= args.cameras <= 1000 and 5 <= args.interval <= 600 and warmup < args.duration <= 3600
            and 1 <= args.runs <= 10):
        ap.error("--cameras 1..1000, --interval 5..600, --warmup < --duration <= 3600, --runs 1..10")
    results = []
    for i in range(args.runs):
        with tempfile.TemporaryDirectory(prefix="ww-bench-cam-") as tmp:
            r = run_once(args.cameras, args.interval, args.duration, warmup, Path(tmp), icmp=not args.no_icmp)
        results.append(r)
        print(f"run {i + 1}: " + json.dumps({k: round(v, 3) for k, v in r.items()}), file=sys.stderr, flush=True)
    med = {k: statistics.median(r[k] for r in results) for k in results[0]}
    print(f"{args.cameras} cameras every {args.interval:g}s, window {med['window_s']:.0f}s after {warmup:g}s warm-up, "
          f"median of {len(results)} run(s)")
    print(f"  wardwatch-agent run : {med['polls']:.0f} polls ({med['polls_ok']:.0f} ok), "
          f"{med['cpu_ms_per_poll']:.1f} CPU-ms per poll, {med['core_pct']:.1f}% of one core, "
          f"RSS {med['rss_mb']:.0f} MB (peak {med['rss_peak_mb']:.0f} MB)")
    print(f"  baseline GSDT loop  : {med['base_calls']:.0f} calls ({med['base_ok']:.0f} ok), "
          f"{med['base_cpu_ms_per_call']:.2f} CPU-ms per call, RSS {med['base_rss_mb']:.0f} MB")
    print(f"  ratio (our CPU per poll / baseline CPU per call): {med['ratio']:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
