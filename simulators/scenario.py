"""The demo's scenario: faults on a schedule, made real in the simulators (docs/demo.md).

A scenario file (YAML, ``configs/demo-scenario.yaml`` is the shipped one) lists faults, each
with ``at`` (after the agents start) and ``for``; ``cycle`` repeats the whole schedule, and
``fast`` is what ``wardwatch-sim demo --fast`` divides every time by. Each fault is made
where a real one would show, so that the agents see it as they would see the real thing:

* ``uplink_outage``: the ward's link to the broker (a TCP relay per ward, in the demo) is
  cut; the agent keeps polling into its outbox and sends the backlog when it returns;
* ``switch_dead``: the access switch's recording answers nothing (snmpsim drops the
  responses), nor do the cameras and stand-alone APs behind it;
* ``poe_overrun``: the access switch draws its whole PoE budget and sheds its last ``ports``
  camera ports (link down, PoE fault); their cameras go dark;
* ``clock_drift``: a camera's clock runs ``skew`` seconds off;
* ``ap_flap``: a stand-alone AP dies and comes back, every half ``period``;
* ``camera_frozen``: a camera's snapshot stops changing;
* ``broker_restart``: Mosquitto is stopped, and started again after ``for``.

snmpsim re-reads a recording whose mtime changed (snmpsim 1.2.2
``record/search/database.py``), so a device dies by writing ``snmprec.silent`` of its
recording over it and comes back by writing the original back; counters never stopped.
Cameras get their faults through the camera simulator's control endpoint.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError

from wardwatch.config import ConfigError, Duration, Strict, _first_error, parse_yaml
from wardwatch.simulators.fleet import Fleet, WardSite, ward_layout
from wardwatch.simulators.lab import Service
from wardwatch.simulators.snmprec import poe_overrun, silent

SHIPPED = Path(__file__).resolve().parent.parent / "configs" / "demo-scenario.yaml"
FAULTS = ("uplink_outage", "switch_dead", "poe_overrun", "clock_drift", "ap_flap", "camera_frozen",
          "broker_restart")


class _Fault(Strict):
    at: Duration = Field(ge=0, le=30 * 86400, description="when it starts, after the agents have started")
    for_: Duration = Field(alias="for", gt=0, le=86400, description="how long it lasts")


class UplinkOutage(_Fault):
    fault: Literal["uplink_outage"]
    ward: str


class SwitchDead(_Fault):
    fault: Literal["switch_dead"]
    ward: str
    device: str = Field(description="an access switch, sw-a1 ..")


class PoeOverrun(_Fault):
    fault: Literal["poe_overrun"]
    ward: str
    device: str = Field(description="an access switch, sw-a1 ..")
    ports: int = Field(3, ge=1, le=20, description="camera ports shed, the last ones of the switch")


class ClockDrift(_Fault):
    fault: Literal["clock_drift"]
    ward: str
    device: str = Field(description="a camera, cam-01 ..")
    skew: float = Field(40.0, ge=-86400, le=86400, description="seconds the camera's clock is off (+ ahead)")


class ApFlap(_Fault):
    fault: Literal["ap_flap"]
    ward: str
    device: str = Field(description="a stand-alone AP (UniFi or MikroTik)")
    period: Duration = Field(60.0, ge=2, le=3600, description="one death and one return")


class CameraFrozen(_Fault):
    fault: Literal["camera_frozen"]
    ward: str
    device: str = Field(description="a camera, cam-01 ..")


class BrokerRestart(_Fault):
    fault: Literal["broker_restart"]
    for_: Duration = Field(20.0, alias="for", gt=0, le=3600, description="how long the broker is down")


AnyFault = Annotated[UplinkOutage | SwitchDead | PoeOverrun | ClockDrift | ApFlap | CameraFrozen | BrokerRestart,
                     Field(discriminator="fault")]


class Scenario(Strict):
    cycle: Duration = Field(0.0, ge=0, le=30 * 86400, description="repeat the schedule this often; 0: once")
    fast: float = Field(6.0, ge=1, le=1000, description="--fast divides every time by this")
    faults: list[AnyFault] = Field(default_factory=list, max_length=1000)

    def scaled(self, divisor: float) -> Scenario:
        """The same schedule with every time divided by ``divisor`` (``--fast``)."""
        faults: list[Any] = []
        for f in self.faults:
            upd: dict[str, Any] = {"at": f.at / divisor, "for_": f.for_ / divisor}
            if isinstance(f, ApFlap):
                upd["period"] = max(2.0, f.period / divisor)
            faults.append(f.model_copy(update=upd))
        return self.model_copy(update={"cycle": self.cycle / divisor, "faults": faults})


def load_scenario(path: Path) -> Scenario:
    """Read and check a scenario file: ConfigError with one line naming the key."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        scenario = Scenario.model_validate(parse_yaml(text, str(path)))
    except ValidationError as exc:
        raise ConfigError(f"{path}: {_first_error(exc)}") from None
    problems = check(scenario)
    if problems:
        raise ConfigError(f"{path}: {problems[0]}")
    return scenario


def check(scenario: Scenario, *, seed: int = 0) -> list[str]:
    """Every fault's ward and device exist in the demo fleet, of the kind the fault needs."""
    problems = []
    if scenario.cycle and any(f.at + f.for_ > scenario.cycle for f in scenario.faults):
        problems.append("cycle: shorter than a fault's at + for")
    for i, f in enumerate(scenario.faults):
        where = f"faults[{i}]"
        ward = getattr(f, "ward", None)
        if ward is None:
            continue
        try:
            lay = ward_layout(ward, seed=seed)
        except KeyError:
            problems.append(f"{where}.ward: '{ward}' is not a ward of the demo fleet")
            continue
        device = getattr(f, "device", None)
        if device is None:
            continue
        access = {s.name for s in lay.access}
        cameras = {c.id for c in lay.cameras}
        standalone = {a.id for a in lay.aps if not a.spec.controller}
        wanted = {SwitchDead: (access, "an access switch"), PoeOverrun: (access, "an access switch"),
                  ClockDrift: (cameras, "a camera"), CameraFrozen: (cameras, "a camera"),
                  ApFlap: (standalone, "a stand-alone AP")}[type(f)]
        if device not in wanted[0]:
            problems.append(f"{where}.device: '{device}' is not {wanted[1]} of {ward} "
                            f"(one of {', '.join(sorted(wanted[0]))})")
    return problems


def quiet_devices(scenario: Scenario, *, seed: int = 0) -> set[tuple[str, str]]:
    """(ward, device) the scenario kills: their agents must not ping them (a simulated device
    on loopback always answers a ping, which would keep it up)."""
    out: set[tuple[str, str]] = set()
    for f in scenario.faults:
        if isinstance(f, ApFlap):
            out.add((f.ward, f.device))
        elif isinstance(f, SwitchDead | PoeOverrun):
            lay = ward_layout(f.ward, seed=seed)
            out.add((f.ward, f.device))
            out.update((f.ward, c.id) for c in lay.cameras if c.feed_switch == f.device)
            out.update((f.ward, a.id) for a in lay.aps if a.feed_switch == f.device)
    return out


def touched_devices(scenario: Scenario, *, seed: int = 0) -> set[tuple[str, str]]:
    """(ward, device) whose state some fault changes: ``--fast`` polls them more often."""
    out = quiet_devices(scenario, seed=seed)
    out.update((f.ward, f.device) for f in scenario.faults if isinstance(f, ClockDrift | CameraFrozen))
    return out


def describe(f: _Fault) -> str:
    name = getattr(f, "fault", "?")
    where = " ".join(str(x) for x in (getattr(f, "ward", None), getattr(f, "device", None)) if x)
    return f"{name} {where}".strip()


# --------------------------------------------------------------------------- the ward uplinks


class UplinkRelay:
    """One TCP relay per ward between its agent and the broker, on 127.0.0.1, in a thread of
    its own: what the ward's uplink carries. ``cut`` drops the ward's connections and refuses
    new ones (closed at once) until ``restore``."""

    def __init__(self, broker_host: str, broker_port: int, wards: list[str]) -> None:
        self.broker = (broker_host, broker_port)
        self.wards = wards
        self.ports: dict[str, int] = {}
        self._cut: set[str] = set()
        self._conns: dict[str, set[asyncio.StreamWriter]] = {w: set() for w in wards}
        self._loop = asyncio.new_event_loop()
        self._servers: list[asyncio.Server] = []
        self._thread = threading.Thread(target=self._loop.run_forever, name="uplinks", daemon=True)

    def start(self) -> None:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._listen(), self._loop).result(timeout=10)

    async def _listen(self) -> None:
        for ward in self.wards:
            server = await asyncio.start_server(functools.partial(self._serve, ward), "127.0.0.1", 0)
            self._servers.append(server)
            self.ports[ward] = server.sockets[0].getsockname()[1]

    async def _serve(self, ward: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if ward in self._cut:
            writer.close()
            return
        try:
            up_r, up_w = await asyncio.wait_for(asyncio.open_connection(*self.broker), timeout=5)
        except (OSError, TimeoutError):
            writer.close()
            return
        self._conns[ward].update((writer, up_w))

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError, ConnectionError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            for w in (writer, up_w):
                w.close()

        await asyncio.gather(pipe(reader, up_w), pipe(up_r, writer))
        self._conns[ward].difference_update((writer, up_w))

    def _call(self, fn: Callable[[], None]) -> None:
        self._loop.call_soon_threadsafe(fn)

    def cut(self, ward: str) -> None:
        def go() -> None:
            self._cut.add(ward)
            for w in list(self._conns[ward]):
                w.transport.abort()
        self._call(go)

    def restore(self, ward: str) -> None:
        self._call(lambda: self._cut.discard(ward))

    def stop(self) -> None:
        async def close() -> None:
            for server in self._servers:
                server.close()
            for conns in self._conns.values():
                for w in list(conns):
                    w.transport.abort()
        if self._thread.is_alive():
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(close(), self._loop).result(timeout=5)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)


# --------------------------------------------------------------------------- making faults real


class Recordings:
    """Swaps a device's snmpsim recording, each write with a newer mtime than the last (snmpsim
    compares whole seconds), keeping the original to restore."""

    def __init__(self) -> None:
        self._originals: dict[Path, str] = {}
        self._mtime = int(time.time())

    def write(self, path: Path, text: str) -> None:
        self._originals.setdefault(path, path.read_text())
        tmp = path.with_suffix(".tmp")
        tmp.write_text(text)
        self._mtime = max(self._mtime + 1, int(time.time()) + 1)
        os.utime(tmp, (self._mtime, self._mtime))
        os.replace(tmp, path)

    def original(self, path: Path) -> str:
        return self._originals.get(path) or path.read_text()

    def restore(self, path: Path) -> None:
        if path in self._originals:
            self.write(path, self._originals[path])


@dataclass
class Runner:
    """Plays a scenario from ``t0`` (time.monotonic) in a thread. ``stop`` ends the playing
    (and any flapping) but undoes nothing: the demo is stopping every process anyway."""

    scenario: Scenario
    fleet: Fleet
    camera_control: str
    relay: UplinkRelay | None
    broker: Service | None
    say: Callable[[str], None] = print
    t0: float = 0.0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _files: Recordings = field(default_factory=Recordings)
    _active: dict[int, Callable[[], None]] = field(default_factory=dict)
    _flaps: list[threading.Event] = field(default_factory=list)
    _broker_down: bool = False
    started: int = 0  # faults begun
    ended: int = 0  # faults ended

    def start(self) -> None:
        self.t0 = self.t0 or time.monotonic()
        self._thread = threading.Thread(target=self._run, name="scenario", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        for done in self._flaps:
            done.set()
        if self._thread:
            self._thread.join(30)

    def broker_down(self) -> bool:
        """The broker is stopped by the scenario (not dead)."""
        return self._broker_down

    def schedule(self) -> list[tuple[float, int, bool]]:
        """(seconds after t0, fault index, True for its start) in order, one cycle."""
        out = []
        for i, f in enumerate(self.scenario.faults):
            out += [(f.at, i, True), (f.at + f.for_, i, False)]
        return sorted(out, key=lambda e: (e[0], not e[2]))

    def _run(self) -> None:
        cycle = 0
        while not self._stop.is_set():
            base = self.t0 + cycle * self.scenario.cycle
            for at, i, begin in self.schedule():
                if self._stop.wait(max(0.0, base + at - time.monotonic())):
                    return
                try:
                    (self._begin if begin else self._end)(i)
                except Exception as exc:  # a fault that cannot be made must not end the demo
                    self.say(f"scenario: {describe(self.scenario.faults[i])}: {exc}")
            if not self.scenario.cycle:
                return
            cycle += 1

    def _stamp(self) -> str:
        return f"[{time.monotonic() - self.t0:5.0f}s]"

    def _begin(self, i: int) -> None:
        f = self.scenario.faults[i]
        undo = self._make(f)
        self._active[i] = undo
        self.started += 1
        self.say(f"{self._stamp()} scenario: {describe(f)} begins, for {f.for_:g} s")

    def _end(self, i: int) -> None:
        undo = self._active.pop(i, None)
        if undo is None:
            return
        undo()
        self.ended += 1
        self.say(f"{self._stamp()} scenario: {describe(self.scenario.faults[i])} ends")

    # each returns what undoes it
    def _make(self, f: _Fault) -> Callable[[], None]:
        if isinstance(f, UplinkOutage):
            relay = self.relay
            if relay is None:
                raise RuntimeError("no uplink relay")
            relay.cut(f.ward)
            return lambda: relay.restore(f.ward)
        if isinstance(f, BrokerRestart):
            broker = self.broker
            if broker is None:
                raise RuntimeError("no broker")
            self._broker_down = True
            broker.stop()

            def restart() -> None:
                broker.start()
                self._broker_down = False
            return restart
        site = self.fleet.ward(str(getattr(f, "ward", "")))
        if isinstance(f, SwitchDead):
            paths = [site.recording(f.device)] + [site.recording(a.id) for a in site.aps if a.feed_switch == f.device]
            cams = [c for c in site.cameras if c.feed_switch == f.device]
            for path in paths:
                self._files.write(path, silent(self._files.original(path)))
            self._cameras(cams, {"offline": True})

            def revive() -> None:
                for path in paths:
                    self._files.restore(path)
                self._cameras(cams, {"offline": False})
            return revive
        if isinstance(f, PoeOverrun):
            spec = site.switch_spec(f.device)
            cams = [c for c in site.cameras if c.feed_switch == f.device][-f.ports:]
            path = site.recording(f.device)
            self._files.write(path, poe_overrun(spec, self._files.original(path), [c.feed_port for c in cams]))
            self._cameras(cams, {"offline": True})

            def repower() -> None:
                self._files.restore(path)
                self._cameras(cams, {"offline": False})
            return repower
        if isinstance(f, ClockDrift):
            cam = [self._camera(site, f.device)]
            self._cameras(cam, {"clock_skew": f.skew})
            return lambda: self._cameras(cam, {"clock_skew": 0})
        if isinstance(f, CameraFrozen):
            cam = [self._camera(site, f.device)]
            self._cameras(cam, {"frozen": True})
            return lambda: self._cameras(cam, {"frozen": False})
        if isinstance(f, ApFlap):
            return self._flap(site, f)
        raise RuntimeError(f"unknown fault {f!r}")

    def _flap(self, site: WardSite, f: ApFlap) -> Callable[[], None]:
        path = site.recording(f.device)
        done = threading.Event()
        self._flaps.append(done)

        def toggle() -> None:
            dead = True
            while not done.wait(f.period / 2):
                dead = not dead
                self._files.write(path, silent(self._files.original(path)) if dead else self._files.original(path))

        self._files.write(path, silent(self._files.original(path)))  # down at once, then every half period
        thread = threading.Thread(target=toggle, name=f"flap {f.ward} {f.device}", daemon=True)
        thread.start()

        def settle() -> None:
            done.set()
            thread.join(10)
            self._files.restore(path)
        return settle

    def _camera(self, site: WardSite, device: str) -> Any:
        return next(c for c in site.cameras if c.id == device)

    def _cameras(self, cams: list[Any], knobs: dict[str, object]) -> None:
        """Each camera's knobs through the simulator's control endpoint, each tried 3 times
        (10 s each: a loaded camera simulator answers slowly); one that cannot be reached is
        said and skipped, so that a fault is never half made and never left unended."""
        for cam in cams:
            if not cam.sim_id:
                continue
            req = urllib.request.Request(f"{self.camera_control}/cameras/{cam.sim_id}/faults",
                                         data=json.dumps(knobs).encode(), method="POST",
                                         headers={"Content-Type": "application/json"})
            for attempt in range(3):
                try:
                    with urllib.request.urlopen(req, timeout=10) as resp:
                        resp.read()
                    break
                except OSError as exc:
                    if attempt == 2 or self._stop.is_set():
                        self.say(f"{self._stamp()} scenario: camera {cam.id} ({cam.sim_id}): {knobs}: {exc}")
                        break
