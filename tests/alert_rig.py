"""The alert engine's acceptance rig (issue 10): real processes only.

One :class:`AlertRig` is a Mosquitto of its own (so no retained status or inventory of an
earlier rig leaks in), a fresh InfluxDB database on the session's InfluxDB, one camera
simulator process (``wardwatch-sim cameras``), per ward a :class:`Site`: one
``wardwatch-agent`` polling that ward's cameras and, where the site has one, its switch and
APs (snmpsim, one process per site, so a test can kill a switch with everything it serves),
one ``wardwatch-collector run`` with an ``alerts:`` section, and the local receivers of
tests/receivers.py for every channel (webhook, a webhook that answers 500, Telegram, Zalo,
SMTP).

Time is scaled down so that a scenario takes seconds: every device is polled every
:data:`INTERVAL` s, the rules' ``for`` is :data:`FOR` s and ``group_wait`` is
:data:`GROUP_WAIT` s (see :func:`write_rules`). The latency target of the issue's first
acceptance test is ``for + one poll interval + group_wait + 5 s`` (:data:`TARGET`).

Routes, by ward (the first that matches wins):

=============  ======================================  ==========================================
ward           channels                                 what it is for
=============  ======================================  ==========================================
cam-pho        hook, tg, zalo                           a camera offline; the chat channels
cam-an         failhook (HTTP 500), mail                a failing channel beside a working one
cua-dai        hook; escalate after ESCALATE_AFTER      escalation and acknowledgement
               to esc
cam-chau       hook, zalo                               a dead switch: its long notice on Zalo
every other    hook                                     the rest
=============  ======================================  ==========================================

and ``son-phong`` is under a maintenance window for as long as a rig lives.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Final
from zoneinfo import ZoneInfo

import yaml

from tests.pipeline import Collector
from tests.receivers import BotApiReceiver, Received, SmtpReceiver, WebhookReceiver
from tests.util import wait_for, write_yaml
from wardwatch.collector.alerts.rules import load_rules
from wardwatch.simulators.aps import ApSpec, render_ap
from wardwatch.simulators.lab import (
    InfluxService,
    Service,
    SnmpsimAgent,
    free_port,
    script,
    start_mosquitto,
    start_snmpsim,
)
from wardwatch.simulators.snmprec import SwitchSpec, render

INTERVAL: Final = 3.0  # every device's poll interval, seconds
TIMEOUT: Final = 2.0  # per request; a healthy camera on a loaded 2-core box needs more than 1.2 s
FOR: Final = 6.0  # the `for` of device_down, camera_not_ok and poe_lost
GROUP_WAIT: Final = 1.0
ESCALATE_AFTER: Final = 6.0
LIVE_LAG: Final = 10.0  # the least alerts.live_lag allows
TARGET: Final = FOR + INTERVAL + GROUP_WAIT + 5.0  # the issue's bound on a camera's firing notice
# Flapping, scaled: the issue toggles a device every 20 s for 5 min under `for: 1m` and a 1 h
# window; here a camera toggles every FLAP_EVERY s (shorter than FOR, so camera_not_ok never
# holds long enough to fire) and more than FLAP_CHANGES changes within FLAP_WINDOW is flapping.
FLAP_EVERY: Final = 4.0
FLAP_CHANGES: Final = 4
FLAP_WINDOW: Final = 120.0
FLAP_STABLE_FOR: Final = 30.0
FAIL_RETRIES: Final = 2  # failhook: attempts after the first
FAIL_BACKOFF: Final = 0.5
TZ: Final = "Asia/Ho_Chi_Minh"
WARD_NAMES: Final = {
    "cam-pho": "Cẩm Phô", "minh-an": "Minh An", "son-phong": "Sơn Phong", "tan-an": "Tân An",
    "thanh-ha": "Thanh Hà", "cam-chau": "Cẩm Châu", "cua-dai": "Cửa Đại", "cam-an": "Cẩm An",
    "cam-nam": "Cẩm Nam", "cam-ha": "Cẩm Hà", "cam-kim": "Cẩm Kim", "cam-thanh": "Cẩm Thanh",
    "tan-hiep": "Tân Hiệp",
}  # fmt: skip
MAINTENANCE_WARD: Final = "son-phong"
TELEGRAM_LIMIT: Final = 4096
ZALO_LIMIT: Final = 2000
# The rules the rig keeps from the shipped file; the others (saturation, clients, errors,
# backlog, clock) need minutes of data and would only add noise.
KEPT_RULES: Final = ("device_down", "camera_not_ok", "poe_lost", "agent_offline", "flapping")


def now_ms() -> int:
    return int(time.time() * 1000)


def write_rules(path: Path) -> Path:
    """The shipped rules.yaml, cut to :data:`KEPT_RULES`, with ``for`` :data:`FOR` (0 for
    agent_offline) and the flapping rule scaled (:data:`FLAP_CHANGES` changes within
    :data:`FLAP_WINDOW`, stable after :data:`FLAP_STABLE_FOR`). Checked by the rules loader."""
    shipped = Path(__file__).parent.parent / "collector" / "alerts" / "rules.yaml"
    doc = yaml.safe_load(shipped.read_text(encoding="utf-8"))
    rules = [r for r in doc["rules"] if r["name"] in KEPT_RULES]
    for rule in rules:
        if rule.get("type") == "flapping":
            rule.update(changes=FLAP_CHANGES, window=f"{FLAP_WINDOW:g}s", stable_for=f"{FLAP_STABLE_FOR:g}s")
        elif rule.get("type") == "agent_offline":
            rule["for"] = "0s"
        else:
            rule["for"] = f"{FOR:g}s"
    write_yaml(path, {"rules": rules})
    load_rules(path)
    return path


# Devices ------------------------------------------------------------------------------


class CameraSim:
    """``wardwatch-sim cameras``: N simulated ONVIF cameras and their control endpoint."""

    def __init__(self, run_dir: Path, count: int) -> None:
        self.listing_path = run_dir / "cameras.json"
        self.service = script("wardwatch-sim", ["cameras", "--count", str(count), "--brand", "mix",
                                                "--control-port", "0", "--output", str(self.listing_path)],
                              run_dir=run_dir / "camsim")  # fmt: skip
        self.cameras: list[dict[str, Any]] = []
        self.control_url = ""
        self._next = 0

    def start(self) -> None:
        self.service.start()
        doc: dict[str, Any] = wait_for(self._listing, timeout=30, interval=0.1,
                                       what=lambda: f"camera simulator listing\n{self.service.log_tail()}")
        self.cameras, self.control_url = doc["cameras"], doc["control_url"]

    def _listing(self) -> dict[str, Any] | None:
        try:
            doc: dict[str, Any] = json.loads(self.listing_path.read_text())
        except (OSError, ValueError):
            return None
        return doc

    def take(self) -> dict[str, Any]:
        """The next camera not yet given to a site."""
        cam = self.cameras[self._next]
        self._next += 1
        return cam

    def faults(self, sim_id: str, **knobs: Any) -> None:
        """Set fault knobs on one camera (``offline=True`` makes it refuse every connection)."""
        req = urllib.request.Request(f"{self.control_url}/cameras/{sim_id}/faults", data=json.dumps(knobs).encode(),
                                     method="POST", headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=5) as resp:
            assert resp.status == 200


@dataclass
class Site:
    """One ward office: its agent process, its cameras and, optionally, a switch feeding
    them (and APs) served by an snmpsim process of its own."""

    ward: str
    agent_id: str
    cameras: dict[str, dict[str, Any]]  # device id -> the simulator's listing entry
    aps: list[str]
    switch: str | None
    snmp: Service | None
    config: Path
    agent: Service
    sim: CameraSim
    doc: dict[str, Any] = field(repr=False, default_factory=dict)

    @property
    def devices(self) -> list[str]:
        return [*([self.switch] if self.switch else []), *self.cameras, *self.aps]

    @property
    def behind_switch(self) -> list[str]:
        """The devices fed by the site's switch."""
        return [*self.cameras, *self.aps] if self.switch else []

    def break_camera(self, device: str, **knobs: Any) -> int:
        """Take a camera offline (or set other knobs); the wall-clock ms it happened."""
        t = now_ms()
        self.sim.faults(self.cameras[device]["id"], **(knobs or {"offline": True}))
        return t

    def fix_camera(self, device: str) -> int:
        t = now_ms()
        self.sim.faults(self.cameras[device]["id"], offline=False)
        return t

    def point_agent_at(self, mqtt_port: int) -> None:
        """Rewrite the agent's config to use another broker port (a dead one: an uplink outage)."""
        self.doc["mqtt"]["port"] = mqtt_port
        write_yaml(self.config, self.doc)


SWITCH_SPEC_PORTS: Final = 48


def make_site(run_dir: Path, *, ward: str, sim: CameraSim, mqtt_port: int, cameras: int, switch: bool = False,
              aps: int = 0) -> Site:
    """A site of ``cameras`` cameras; with ``switch``, an snmpsim switch (and ``aps`` APs on
    the same snmpsim process, one community each) that feeds every camera and AP."""
    site_dir = run_dir / ward
    agent_id = f"agent-{ward}-{uuid.uuid4().hex[:6]}"
    cams = {f"cam-{i + 1:02d}": sim.take() for i in range(cameras)}
    first = next(iter(cams.values()))
    auth: dict[str, Any] = {"cam": {"onvif": {"username": first["username"], "password": first["password"]}}}
    devices: list[dict[str, Any]] = []
    snmp: Service | None = None
    switch_id = f"sw-{ward}" if switch else None
    ap_ids = [f"ap-{i + 1:02d}" for i in range(aps)]
    feeds: dict[str, dict[str, str]] = {}
    if switch_id is not None:
        spec = SwitchSpec(name=switch_id, ports=SWITCH_SPEC_PORTS, seed=7)
        up = [p for p in spec.port_specs() if p.oper_up]
        cam_ports = [p.name for p in up if p.role == "camera"]
        ap_ports = [p.name for p in up if p.role == "ap"]
        assert len(cam_ports) >= cameras and len(ap_ports) >= aps, (cam_ports, ap_ports)
        ports = [*cam_ports[:cameras], *ap_ports[:aps]]
        feeds = {d: {"switch": switch_id, "port": p} for d, p in zip([*cams, *ap_ids], ports, strict=True)}
        data = site_dir / "snmp-data"
        data.mkdir(parents=True)
        (data / "public.snmprec").write_text(render(spec))
        for i, ap in enumerate(ap_ids):
            (data / f"{ap}.snmprec").write_text(render_ap(ApSpec(vendor="mikrotik", name=ap, seed=20 + i)))
            auth[ap] = {"snmp": {"version": "2c", "community": ap}}
        auth["v2c"] = {"snmp": {"version": "2c", "community": "public"}}
        snmp = start_snmpsim(site_dir / "snmpsim", agents=[SnmpsimAgent(data_dir=data, port=free_port("udp"))])
        devices.append({"id": switch_id, "kind": "switch", "host": "127.0.0.1", "port": snmp.port, "auth": "v2c",
                        "interval": f"{INTERVAL:g}s", "timeout": "1s", "retries": 0, "icmp": False})
        for ap in ap_ids:
            devices.append({"id": ap, "kind": "ap", "host": "127.0.0.1", "port": snmp.port, "auth": ap,
                            "interval": f"{INTERVAL:g}s", "timeout": "1s", "retries": 0, "icmp": False,
                            "feed": feeds[ap]})
    for dev, cam in cams.items():
        entry: dict[str, Any] = {"id": dev, "kind": "camera", "host": cam["host"], "port": cam["onvif_port"],
                                 "auth": "cam", "interval": f"{INTERVAL:g}s", "timeout": f"{TIMEOUT:g}s",
                                 "retries": 0, "icmp": False, "camera": {"events": False}}
        if dev in feeds:
            entry["feed"] = feeds[dev]
        devices.append(entry)
    doc = {
        "agent": {"id": agent_id, "ward": ward},
        "mqtt": {"host": "127.0.0.1", "port": mqtt_port, "keepalive": "5s"},
        "outbox": {"path": str(site_dir / "outbox.db")},
        "self_interval": "5s",
        "auth": auth,
        "devices": devices,
    }
    config = write_yaml(site_dir / "agent.yaml", doc)
    agent = script("wardwatch-agent", ["run", "-c", str(config)], run_dir=site_dir / "agent")
    return Site(ward=ward, agent_id=agent_id, cameras=cams, aps=ap_ids, switch=switch_id, snmp=snmp, config=config,
                agent=agent, sim=sim, doc=doc)


# Receivers ------------------------------------------------------------------------------


@dataclass
class Alerted:
    """One alert inside one webhook notice, with the time (wall clock, ms) it arrived."""

    time_ms: int
    notice: dict[str, Any]
    alert: dict[str, Any]

    @property
    def labels(self) -> dict[str, str]:
        labels: dict[str, str] = self.alert.get("labels", {})
        return labels

    @property
    def status(self) -> str:
        return str(self.alert.get("status"))

    @property
    def fingerprint(self) -> str:
        return str(self.alert.get("fingerprint"))

    def extras(self) -> dict[str, Any]:
        """The wardwatch extras of this alert: the notice's ``wardwatch`` key, per alert
        (a list beside ``alerts``, or a map by fingerprint), or the alert's own."""
        ours = self.notice.get("wardwatch")
        own = self.alert.get("wardwatch")
        if isinstance(own, dict):
            return own
        if isinstance(ours, dict):
            per = ours.get("alerts")
            if isinstance(per, dict) and isinstance(per.get(self.fingerprint), dict):
                found: dict[str, Any] = per[self.fingerprint]
                return found
            if isinstance(per, list):
                for entry in per:
                    if isinstance(entry, dict) and entry.get("fingerprint") == self.fingerprint:
                        return entry
                index = self.notice["alerts"].index(self.alert)
                if index < len(per) and isinstance(per[index], dict):
                    picked: dict[str, Any] = per[index]
                    return picked
            if isinstance(ours.get(self.fingerprint), dict):
                keyed: dict[str, Any] = ours[self.fingerprint]
                return keyed
            return ours
        return {}


def alerts_in(received: list[Received], **labels: str) -> list[Alerted]:
    """Every alert inside the webhook notices ``received`` whose labels match ``labels``
    (``status`` is matched against the alert's status)."""
    status = labels.pop("status", None)
    out: list[Alerted] = []
    for r in received:
        body = r.json if isinstance(r.json, dict) else {}
        for alert in body.get("alerts", []):
            got = Alerted(int(r.time * 1000), body, alert)
            if status is not None and got.status != status:
                continue
            if all(got.labels.get(k) == v for k, v in labels.items()):
                out.append(got)
    return out


class Receivers:
    """The local servers of tests/receivers.py, one per channel of the rig: ``hook`` (200),
    ``failhook`` (always 500), ``esc`` (the escalation route), ``tg`` and ``zalo`` (bot APIs
    with their limits) and ``mail`` (SMTP with STARTTLS and AUTH)."""

    TG_TOKEN: Final = "123456:tg-test-token"
    ZALO_TOKEN: Final = "zalo-test-token"

    def __init__(self) -> None:
        self.hook = WebhookReceiver()
        self.failhook = WebhookReceiver()
        self.failhook.fail_always(500)
        self.esc = WebhookReceiver()
        self.tg = BotApiReceiver(self.TG_TOKEN, limit=TELEGRAM_LIMIT)
        self.zalo = BotApiReceiver(self.ZALO_TOKEN, limit=ZALO_LIMIT, flavor="zalo")
        self.mail = SmtpReceiver()

    @classmethod
    @contextmanager
    def started(cls) -> Iterator[Receivers]:
        r = cls()
        with r.hook, r.failhook, r.esc, r.tg, r.zalo, r.mail:
            yield r

    def channels(self) -> dict[str, Any]:
        return {
            "hook": {"type": "webhook", "url": f"{self.hook.url}/alerts"},
            "failhook": {"type": "webhook", "url": f"{self.failhook.url}/alerts", "timeout": "2s",
                         "retries": FAIL_RETRIES, "backoff": f"{FAIL_BACKOFF:g}s"},
            "esc": {"type": "webhook", "url": f"{self.esc.url}/escalated"},
            "tg": {"type": "telegram", "token": self.TG_TOKEN, "chat_id": "-1001234567890", "base_url": self.tg.url},
            "zalo": {"type": "zalo", "token": self.ZALO_TOKEN, "chat_id": "zalo-ky-thuat", "base_url": self.zalo.url},
            "mail": {"type": "email", "host": "127.0.0.1", "port": self.mail.port, "starttls": True,
                     "ca_file": str(self.mail.cert_file), "username": self.mail.username,
                     "password": self.mail.password, "from": "wardwatch@hoian.example",
                     "to": ["kythuat@hoian.example"]},
        }  # fmt: skip


# The rig --------------------------------------------------------------------------------


class AlertRig:
    """Everything of one acceptance scenario (or of a class of them) but InfluxDB."""

    def __init__(self, run_dir: Path, influx: InfluxService, *, cameras: int) -> None:
        self.run_dir = run_dir
        self.influx = influx
        self.database = f"t_{uuid.uuid4().hex[:12]}"
        self.cameras_total = cameras
        self.sites: dict[str, Site] = {}
        self._stack = ExitStack()
        self.receivers: Receivers
        self.collector: Collector | None = None

    # lifecycle

    def start_services(self) -> None:
        """The broker, the database, the camera simulator and the receivers (no collector yet)."""
        self.influx.create_database(self.database)
        self.broker = start_mosquitto(self.run_dir / "broker")
        self._stack.callback(self.broker.stop)
        self.sim = CameraSim(self.run_dir, self.cameras_total)
        self.sim.start()
        self._stack.callback(self.sim.service.stop)
        self.receivers = self._stack.enter_context(Receivers.started())

    def add_site(self, ward: str, *, cameras: int, switch: bool = False, aps: int = 0) -> Site:
        site = make_site(self.run_dir, ward=ward, sim=self.sim, mqtt_port=self.broker.port, cameras=cameras,
                         switch=switch, aps=aps)
        self.sites[ward] = site
        self._stack.callback(site.agent.stop)
        if site.snmp is not None:
            self._stack.callback(site.snmp.stop)
        return site

    def alerts_section(self) -> dict[str, Any]:
        r = self.receivers
        local = datetime.now(ZoneInfo(TZ)).replace(tzinfo=None, microsecond=0) - timedelta(minutes=5)
        return {
            "rules": str(write_rules(self.run_dir / "rules.yaml")),
            "state": str(self.run_dir / "alerts.db"),
            "wards": sorted(self.sites),
            "language": "vi",
            "live_lag": f"{LIVE_LAG:g}s",
            "channels": r.channels(),
            "routes": [
                {"match": {"ward": "cam-pho"}, "channels": ["hook", "tg", "zalo"], "group_wait": f"{GROUP_WAIT:g}s"},
                {"match": {"ward": "cam-an"}, "channels": ["failhook", "mail"], "group_wait": f"{GROUP_WAIT:g}s"},
                {"match": {"ward": "cua-dai"}, "channels": ["hook"], "group_wait": f"{GROUP_WAIT:g}s",
                 "escalate": {"after": f"{ESCALATE_AFTER:g}s", "channels": ["esc"]}},
                {"match": {"ward": "cam-chau"}, "channels": ["hook", "zalo"], "group_wait": f"{GROUP_WAIT:g}s"},
                {"match": {}, "channels": ["hook"], "group_wait": f"{GROUP_WAIT:g}s"},
            ],
            # Starts every minute and lasts two: on for as long as the rig lives. DTSTART is
            # a few minutes ago, so that finding the last start walks only a few minutes.
            "maintenance": [{"wards": [MAINTENANCE_WARD], "duration": "2m",
                             "rrule": f"DTSTART:{local:%Y%m%dT%H%M%S}\nRRULE:FREQ=MINUTELY"}],
        }  # fmt: skip

    def start_collector(self) -> Collector:
        c = Collector(self.run_dir, mqtt_port=self.broker.port, influx_url=self.influx.url, database=self.database,
                      wards=WARD_NAMES, timezone=TZ, stale_after="30s", alerts=self.alerts_section())
        self.collector = c
        self._stack.callback(c.service.stop)
        c.start()
        self.wait_alerts_api()
        return c

    def restart_collector(self) -> None:
        """SIGTERM the collector by its PID, and start it again on the same config and state."""
        assert self.collector is not None
        code = self.collector.terminate()
        assert code == 0, f"collector exited {code}\n{self.collector.service.log_tail()}"
        self.collector.start()
        self.wait_alerts_api()

    def start_sites(self) -> None:
        for site in self.sites.values():
            site.agent.start()
        self.wait_healthy(list(self.sites.values()))

    def wait_healthy(self, sites: list[Site], since_ms: int = 0, timeout: float = 45) -> None:
        """Every camera OK and every switch and AP up, in InfluxDB, after ``since_ms``."""

        def missing() -> set[tuple[str, str]]:
            for s in sites:
                assert s.agent.running(), f"agent of {s.ward} exited\n{s.agent.log_tail()}"
            want = {(s.ward, d) for s in sites for d in s.devices}
            cams = self.points(f"SELECT last(ok) AS ok FROM camera_health WHERE ok = 1 AND time > {since_ms}ms "
                               "GROUP BY ward, device")
            snmp = self.points(f"SELECT last(up) AS up FROM device_status WHERE up = 1 AND kind != 'camera' "
                               f"AND time > {since_ms}ms GROUP BY ward, device")
            return want - {(r["ward"], r["device"]) for r in [*cams, *snmp]}

        def logs() -> str:
            return f"healthy devices; missing {sorted(missing())}\n" + "\n".join(s.agent.log_tail(15) for s in sites)

        wait_for(lambda: not missing(), timeout=timeout, interval=0.5, what=logs)

    def stop(self) -> None:
        self._stack.close()

    # reading back

    def points(self, q: str) -> list[dict[str, Any]]:
        return self.influx.points(q, db=self.database, epoch="ms")

    def api(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """The collector's JSON API with its bearer token; the parsed answer."""
        assert self.collector is not None
        req = urllib.request.Request(
            f"http://127.0.0.1:{self.collector.http_port}{path}", method=method,
            data=json.dumps(body).encode() if body is not None else None,
            headers={"Authorization": f"Bearer {self.collector.token}", "Content-Type": "application/json",
                     "Accept": "application/json"},
        )  # fmt: skip
        with urllib.request.urlopen(req, timeout=5) as resp:
            text = resp.read()
        return json.loads(text) if text else None

    def wait_alerts_api(self) -> None:
        def answers() -> bool:
            try:
                self.api("GET", "/api/v1/alerts")
            except urllib.error.HTTPError as exc:
                return exc.code not in (404, 503)
            except OSError:
                return False
            return True

        assert self.collector is not None
        log = self.collector.service
        wait_for(answers, timeout=15, interval=0.2, what=lambda: f"GET /api/v1/alerts\n{log.log_tail()}")

    def active_alerts(self) -> list[dict[str, Any]]:
        return _alert_list(self.api("GET", "/api/v1/alerts"))

    def history(self) -> list[dict[str, Any]]:
        return _alert_list(self.api("GET", "/api/v1/alerts/history"))

    def ack(self, fingerprint: str) -> Any:
        return self.api("POST", f"/api/v1/alerts/{fingerprint}/ack", {"by": "kỹ thuật viên", "comment": "đang xử lý"})

    def alert_series(self, ward: str) -> list[dict[str, Any]]:
        """The ``alert`` series' rows for one ward (tags included)."""
        return self.points(f"SELECT * FROM alert WHERE ward = '{ward}'")

    def hook(self, **labels: str) -> list[Alerted]:
        """The alerts the webhook received (in the order the notices arrived), by label."""
        return alerts_in(self.receivers.hook.requests, **labels)

    def wait_hook(self, what: str, timeout: float, count: int = 1, **labels: str) -> list[Alerted]:
        """Wait until the webhook holds at least ``count`` alerts matching ``labels``."""
        def enough() -> list[Alerted]:
            found = self.hook(**labels)
            return found if len(found) >= count else []

        return wait_for(enough, timeout=timeout, interval=0.1, what=lambda: self.explain(what))

    def explain(self, what: str) -> str:
        """What a failed wait was for, with what the receivers hold and the logs."""
        lines = [what, "webhook got:"]
        lines += [f"  {a.time_ms} {a.status} {a.labels}" for a in alerts_in(self.receivers.hook.requests)]
        assert self.collector is not None
        lines.append(f"collector log:\n{self.collector.service.log_tail(40)}")
        return "\n".join(lines)


def _alert_list(doc: Any) -> list[dict[str, Any]]:
    """An API answer as a list of alerts: a bare list, or under ``alerts``/``history``/``items``."""
    if isinstance(doc, list):
        return doc
    if isinstance(doc, dict):
        for key in ("alerts", "history", "items", "data"):
            if isinstance(doc.get(key), list):
                found: list[dict[str, Any]] = doc[key]
                return found
    raise AssertionError(f"not a list of alerts: {doc!r}")


def labels_of(alert: dict[str, Any]) -> dict[str, str]:
    """An API alert's labels, whether nested under ``labels`` or flat."""
    labels = alert.get("labels")
    if isinstance(labels, dict):
        return labels
    return {k: str(v) for k, v in alert.items() if isinstance(v, str)}


@contextmanager
def alert_rig(run_dir: Path, influx: InfluxService, *, sites: dict[str, dict[str, Any]],
              before_start: Callable[[AlertRig], None] | None = None) -> Iterator[AlertRig]:
    """A started rig: ``sites`` maps a ward to :func:`make_site`'s keywords (cameras, switch,
    aps). The collector starts before the agents, so it sees every inventory and status."""
    total = sum(int(kw.get("cameras", 0)) for kw in sites.values())
    rig = AlertRig(run_dir, influx, cameras=total)
    try:
        rig.start_services()
        for ward, kw in sites.items():
            rig.add_site(ward, **kw)
        if before_start is not None:
            before_start(rig)
        rig.start_collector()
        rig.start_sites()
        yield rig
    finally:
        rig.stop()
