"""docs/deploy.md, followed on loopback: every ``sh`` block of the page runs, in order, on the
machine its marker names (``<!-- deploy-test: dc -->`` or ``box``), each machine a temp root
that stands for its /etc, /opt, /var and /srv. Real Mosquitto (from broker-config, started
from the unit it writes), InfluxDB 1.6 (auth on), the collector and an agent polling snmpsim,
both installed with pip --no-index from a wheelhouse of the wheel built from this tree, with no
network (unshare --net), and the alert engine alone. It checks that `check` passes, readings
and the agent's self-metrics land in InfluxDB, the outbox survives the upgrade, the engine
alone sees the box go and come back (agent_offline fired and resolved), the backups are
written and every unit stops with exit 0 on SIGTERM within its TimeoutStopSec. The test never
creates a user and never writes /etc, /opt or /var (a block that would is refused before it runs).

What the test does instead of what it cannot:
- ``apt-get install``: checks that the packages' programs are here; ``useradd``: nothing
  (``install -o/-g`` lose their owner), so every process runs as the test's user;
- ``systemctl enable --now|start|stop|status UNIT``: the unit file the page copied into
  /etc/systemd/system is read and its ExecStart started as systemd would (tests/deploy_rig.py:
  a clean environment, $STATE_DIRECTORY, $CREDENTIALS_DIRECTORY with the LoadCredential files,
  $NOTIFY_SOCKET and READY=1 for Type=notify); ``stop`` is SIGTERM, and must end in exit 0
  within TimeoutStopSec; Debian's mosquitto and influxdb units: the lab's influxd stands for
  influxdb.service (the same [http] settings), Debian's mosquitto is not running here;
- ``scp A B HOST:DIR``: a copy from this machine's root into the other's;
- ``journalctl -u UNIT``: that process's output, which must not be empty;
- the wheelhouse of step 1 (it needs PyPI): tests/packaging.py's, with deploy/ in it as
  scripts/wheelhouse.sh puts it;
- the edits the page asks of the technician (broker name, devices): made to the installed
  config, to point it at this test's ports and snmpsim;
- ports: 8883, 8086, 8088 and 8080 become free ports, and mqtt.hoian.example 127.0.0.1.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests import deploy_rig, packaging
from tests.pipeline import switch_sim
from tests.util import wait_for
from wardwatch.simulators.lab import InfluxService, Service, free_port, start_influxdb

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "deploy.md"
# <!-- deploy-test: MACHINE[; before: HOOK][; then: HOOK] -->: a hook the test runs before
# (what the page says happens beforehand, e.g. a new wheelhouse) or after the block.
MARKER = re.compile(r"<!-- deploy-test: (?P<on>dc|box)(?:; before: (?P<before>[\w-]+))?"
                    r"(?:; then: (?P<then>[\w-]+))? -->\n```sh\n(?P<body>.*?)```", re.S)  # fmt: skip
MACHINE_PATHS = re.compile(r"(?<![\w./])/(etc|opt|var|srv)(?=/)")
LEFT_OVER = re.compile(r"(?<![\w./])/(etc|opt|var|srv|root|home)(/|\b)")
HEREDOC = re.compile(r"<<-?\s*'?(\w+)'?")
# What apt-get install would give, as programs on this machine.
PACKAGES = {"python3-venv": "python3", "mosquitto": "mosquitto", "influxdb": "influxd", "influxdb-client": "influx",
            "sqlite3": "sqlite3", "curl": "curl"}  # fmt: skip
NEXT = "99.0.0"  # the version of the release the page's upgrade installs
BASE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def blocks() -> list[tuple[str, str | None, str | None, str]]:
    text = DOC.read_text()
    found = [(m["on"], m["before"], m["then"], m["body"]) for m in MARKER.finditer(text)]
    assert len(found) == text.count("```sh\n"), "every ```sh block of docs/deploy.md needs a deploy-test marker"
    return found


@dataclass
class Site:
    """The two machines and the services the test stands up for the page."""

    base: Path
    influx: InfluxService
    sim: Service
    ports: dict[str, int]
    units: dict[tuple[str, str], deploy_rig.Unit] = field(default_factory=dict)
    log: list[str] = field(default_factory=list)
    outbox_inode: int = 0
    next_wheel: Path | None = None  # the next release, for step 5

    def root(self, machine: str) -> Path:
        return self.base / machine

    def mapped(self, machine: str) -> Callable[[str], str]:
        root = self.root(machine)

        def to_root(text: str) -> str:
            text = text.replace("0.0.0.0:8883", f"127.0.0.1:{self.ports['mqtt']}")
            text = text.replace("mqtt.hoian.example", "127.0.0.1")
            for port, name in (("8883", "mqtt"), ("8086", "influx"), ("8088", "rpc"), ("8080", "http"),
                               ("8081", "engine_http")):
                text = re.sub(rf"\b{port}\b", str(self.ports[name]), text)
            return MACHINE_PATHS.sub(lambda m: f"{root}/{m[1]}", text)

        return to_root

    def influx_admin(self, q: str) -> list[dict[str, Any]]:
        password = (self.root("dc") / "etc/wardwatch/credentials/influx-admin-password").read_text().strip()
        basic = base64.b64encode(f"admin:{password}".encode()).decode()
        data = urllib.parse.urlencode({"q": q, "db": "wardwatch", "epoch": "ms"}).encode()
        req = urllib.request.Request(f"{self.influx.url}/query", data=data,
                                     headers={"Authorization": f"Basic {basic}"})  # fmt: skip
        with urllib.request.urlopen(req, timeout=10) as resp:
            result = json.load(resp)["results"][0]
        rows: list[dict[str, Any]] = []
        for series in result.get("series", []):
            rows += [dict(zip(series["columns"], v, strict=True)) for v in series["values"]]
        return rows


@pytest.fixture
def site() -> Iterator[Site]:
    # Under /tmp and 0755, not pytest's 0700 tmp_path: Mosquitto drops to its own user (the
    # conf's `user mosquitto`) and must reach the files broker-config gave it.
    base = Path(tempfile.mkdtemp(prefix="wardwatch-deploy-", dir="/tmp"))
    base.chmod(0o755)
    started: list[Service] = []
    try:
        wheel, _ = packaging.build(base / "build")
        next_wheel, _ = packaging.build(base / "build-next", as_version=NEXT)
        for machine in ("dc", "box"):
            (base / machine).mkdir(mode=0o755)
            (base / machine / "etc" / "systemd" / "system").mkdir(parents=True)  # what a Debian machine has
            house = packaging.house(base / machine / "srv" / "wardwatch-wheelhouse", wheel)
            shutil.copytree(ROOT / "deploy", house / "deploy")  # as scripts/wheelhouse.sh does
        influx = start_influxdb(base / "influx", auth=True)
        started.append(influx)
        sim = switch_sim(base / "sim", "sw-deploy")
        started.append(sim)
        ports = {"influx": influx.port, "rpc": influx.rpc_port}
        for name in ("mqtt", "http", "engine_http"):  # handed out before anything binds them: all distinct
            ports[name] = free_port(avoid=set(ports.values()))
        s = Site(base=base, influx=influx, sim=sim, ports=ports, next_wheel=next_wheel)
        try:
            yield s
        finally:
            for unit in reversed(list(s.units.values())):
                if unit.service is not None and unit.service.running():
                    unit.stop()
    finally:
        for service in reversed(started):
            service.stop()
        shutil.rmtree(base, ignore_errors=True)


def test_docs_deploy_md_followed_on_loopback(site: Site) -> None:
    t0 = time.monotonic()
    for on, before, then, body in blocks():
        if before is not None:
            HOOKS[before](site)
        for kind, text in segments(body):
            if kind == "sh":
                run_sh(site, on, text)
            else:
                run_command(site, on, shlex.split(site.mapped(on)(text)))
        if then is not None:
            HOOKS[then](site)
    # Every unit the page started is still up, and stops cleanly (SIGTERM, exit 0).
    for (machine, name), unit in site.units.items():
        assert unit.service is not None and unit.service.running(), f"{machine} {name} died:\n{unit.log()}"
    for key in list(site.units)[::-1]:
        unit = site.units.pop(key)
        assert unit.stop() == 0, f"{key}: not a clean stop\n{unit.log()}"
    assert time.monotonic() - t0 < 120


def segments(body: str) -> list[tuple[str, str]]:
    """The block as runs of shell lines ("sh") and single lines the test acts out ("cmd"):
    systemctl, journalctl, apt-get, useradd and scp, which must not run here."""
    out: list[tuple[str, str]] = []
    shell: list[str] = []
    lines = body.replace("\\\n", " ").splitlines()
    heredoc: str | None = None
    for line in lines:
        if heredoc is not None:
            shell.append(line)
            heredoc = None if line.strip() == heredoc else heredoc
            continue
        if line.split(" ", 1)[0] in ("systemctl", "journalctl", "apt-get", "useradd", "scp"):
            if shell:
                out.append(("sh", "\n".join(shell)))
                shell = []
            out.append(("cmd", line))
            continue
        shell.append(line)
        if found := HEREDOC.search(line):
            heredoc = found[1]
    if shell:
        out.append(("sh", "\n".join(shell)))
    return out


PRELUDE = r"""set -euo pipefail
[ -f "$DEPLOY_ENV" ] && . "$DEPLOY_ENV"
trap 'export -p > "$DEPLOY_ENV"' EXIT
# No user wardwatch here (the test creates none): install keeps the test's owner.
install() { local a=(); while [ $# -gt 0 ]; do case "$1" in -o|-g) shift 2 ;; *) a+=("$1"); shift ;; esac; done
            command install "${a[@]}"; }
python3() { "$DEPLOY_PYTHON" "$@"; }   # the Python the house's wheels are for
"""


def run_sh(site: Site, machine: str, text: str) -> None:
    script = site.mapped(machine)(text)
    # pip's installs with no network at all: a wheel missing from the house fails, never fetched.
    script = re.sub(r"(?m)^(\S+/bin/pip) install", r"unshare --net -- \1 install", script)
    left = [m.group(0) for m in LEFT_OVER.finditer(script)]
    assert not left, f"the test would touch this machine's {left}: {text}"
    root = site.root(machine)
    (root / "root").mkdir(exist_ok=True)
    env = {"PATH": BASE_PATH, "HOME": str(root / "root"), "LANG": "C.UTF-8", "PIP_CONFIG_FILE": os.devnull,
           "PIP_DISABLE_PIP_VERSION_CHECK": "1", "DEPLOY_ENV": str(root / ".deploy-env"),
           "DEPLOY_PYTHON": getattr(sys, "_base_executable", sys.executable)}  # fmt: skip
    done = subprocess.run(["bash", "-c", PRELUDE + script], cwd=root / "root", env=env, capture_output=True,
                          text=True, timeout=300, check=False)  # fmt: skip
    site.log.append(f"[{machine}] {text}\n{done.stdout}{done.stderr}")
    assert done.returncode == 0, f"[{machine}] exit {done.returncode}:\n{text}\n--- stdout\n{done.stdout[-3000:]}" \
                                 f"\n--- stderr\n{done.stderr[-3000:]}"  # fmt: skip


def run_command(site: Site, machine: str, argv: list[str]) -> None:
    cmd, args = argv[0], argv[1:]
    if cmd == "apt-get":
        assert args[:2] == ["install", "-y"], argv
        missing = [p for p in args[2:] if shutil.which(PACKAGES[p]) is None]
        assert not missing, f"not installed here: {missing} (scripts/install-deps.sh)"
    elif cmd == "useradd":
        assert "--system" in args and args[-1] == "wardwatch", argv
    elif cmd == "scp":
        *sources, target = args
        host, _, path = target.partition(":")
        assert host == "cam-pho-box" and machine == "dc", argv
        dest = Path(path.replace(str(site.root("dc")), str(site.root("box")), 1))
        for src in sources:
            shutil.copy(src, dest / Path(src).name)
    elif cmd == "journalctl":
        name = args[args.index("-u") + 1]
        unit = site.units[(machine, name)]
        assert unit.service is not None and unit.service.log_path.read_text().count("\n") > 1, unit.log()
    else:
        systemctl(site, machine, args)


def systemctl(site: Site, machine: str, args: list[str]) -> None:
    verb, *rest = args
    names = [n.removesuffix(".service") for n in rest if not n.startswith("--")]
    if verb == "daemon-reload":
        return
    for name in names:
        if name == "mosquitto":  # Debian's own broker: not running here, nothing to disable
            assert verb == "disable", args
            continue
        if name == "influxdb":  # the lab's influxd, with the [http] settings the page gives
            assert verb == "restart" and site.influx.running(), args
            continue
        key = (machine, name)
        if verb in ("enable", "start", "restart") and (verb != "enable" or "--now" in rest):
            if verb == "restart" or key in site.units:
                old = site.units.pop(key, None)
                if old is not None and old.service is not None and old.service.running():
                    assert old.stop() == 0, old.log()
            unit_file = site.root(machine) / "etc" / "systemd" / "system" / f"{name}.service"
            assert unit_file.is_file(), f"systemctl {verb} {name}: {unit_file} was never copied"
            unit = deploy_rig.Unit(unit_file, mapped=site.mapped(machine), log_dir=site.base / "run" / machine)
            unit.start(timeout=15)
            site.units[key] = unit
            time.sleep(0.5)
            assert unit.service is not None and unit.service.running(), f"{name} exited at once:\n{unit.log()}"
        elif verb == "stop":
            unit = site.units[key]
            assert unit.stop() == 0, f"{name}: SIGTERM did not end in exit 0\n{unit.log()}"
        elif verb == "status":
            unit = site.units[key]
            assert unit.service is not None and unit.service.running(), unit.log()
        else:
            raise AssertionError(f"systemctl {' '.join(args)}: the test does not know it")


# ------------------------------------------------------------------ the technician's edits, and checks


def _edit(site: Site, machine: str, name: str, change: Callable[[dict[str, Any]], None]) -> None:
    path = site.root(machine) / "etc" / "wardwatch" / name
    doc = yaml.safe_load(site.mapped(machine)(path.read_text()))
    change(doc)
    path.write_text(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True))


def edit_collector(site: Site) -> None:
    def change(doc: dict[str, Any]) -> None:
        assert doc["mqtt"]["host"] == "127.0.0.1" and doc["http"]["port"] == site.ports["http"]
        doc["reconcile_interval"] = "5s"

    _edit(site, "dc", "collector.yaml", change)


def split_engine(site: Site) -> None:
    def no_alerts(doc: dict[str, Any]) -> None:
        del doc["alerts"]

    def engine(doc: dict[str, Any]) -> None:
        assert doc["http"]["port"] == site.ports["engine_http"] and "share_group" not in doc["mqtt"]

    _edit(site, "dc", "collector.yaml", no_alerts)
    _edit(site, "dc", "alert-engine.yaml", engine)


def edit_agent(site: Site) -> None:
    def change(doc: dict[str, Any]) -> None:
        assert doc["agent"] == {"id": "cam-pho-1", "ward": "cam-pho"} and doc["mqtt"]["username"] == "cam-pho-1"
        doc["self_interval"] = "5s"
        doc["devices"] = [{"id": "sw-core", "kind": "switch", "host": "127.0.0.1", "port": site.sim.port,
                           "auth": "v2c-ward", "interval": "2s", "timeout": "1s", "retries": 0}]  # fmt: skip

    _edit(site, "box", "agent.yaml", change)


def readings(site: Site) -> None:
    rows = wait_for(lambda: site.influx_admin("SELECT up FROM device_status WHERE ward = 'cam-pho' "
                                              "AND device = 'sw-core'"),
                    timeout=30, what=lambda: "the agent's readings in InfluxDB\n" + _logs(site))  # fmt: skip
    assert rows[-1]["up"] == 1
    outbox = site.root("box") / "var/lib/wardwatch/outbox.db"
    assert outbox.is_file(), "the outbox is not in the unit's StateDirectory"
    site.outbox_inode = outbox.stat().st_ino


def new_wheelhouse(site: Site) -> None:
    """Step 5's "build a new wheelhouse and copy it": the next release's wheel in the box's."""
    assert site.next_wheel is not None
    shutil.copy(site.next_wheel, site.root("box") / "srv/wardwatch-wheelhouse")


def readings_after_upgrade(site: Site) -> None:
    since = int(time.time() * 1000)
    version = subprocess.run([str(site.root("box") / "opt/wardwatch/bin/wardwatch-agent"), "--version"],
                             capture_output=True, text=True, timeout=30).stdout.split()
    assert version == ["wardwatch-agent", NEXT], f"the upgrade did not install the new wheel: {version}"
    outbox = site.root("box") / "var/lib/wardwatch/outbox.db"
    assert outbox.stat().st_ino == site.outbox_inode, "the upgrade replaced the outbox"
    wait_for(lambda: site.influx_admin(f"SELECT up FROM device_status WHERE device = 'sw-core' AND time > {since}ms"),
             timeout=30, what=lambda: "readings after the upgrade\n" + _logs(site))  # fmt: skip
    # What to watch (docs/deploy.md, 4): the agent's self-metrics, every self_interval (5 s here).
    rows = wait_for(lambda: site.influx_admin("SELECT outbox_depth, dropped FROM agent WHERE ward = 'cam-pho' "
                                              "AND device = 'cam-pho-1'"),
                    timeout=20, what=lambda: "the agent's self-metrics\n" + _logs(site))  # fmt: skip
    assert rows[-1]["dropped"] == 0
    # The alert engine alone (wardwatch-collector-alerts.service) saw the box go for its
    # upgrade and come back: agent_offline fired, then resolved.
    states = wait_for(
        lambda: {r["state"] for r in site.influx_admin("SELECT state FROM alert WHERE alertname = 'agent_offline' "
                                                          "AND device = 'cam-pho-1'")} >= {"firing", "resolved"},
        timeout=20, what=lambda: "agent_offline firing and resolved, from the engine alone\n" + _logs(site))
    assert states


def backups(site: Site) -> None:
    out = site.root("dc") / "var/backups/wardwatch"
    assert (out / "alerts.db").stat().st_size > 0
    influx = [p for p in out.iterdir() if p.name.startswith("influx-")]
    assert len(influx) == 1 and any(p.suffix == ".manifest" for p in influx[0].iterdir()), list(out.iterdir())


def _logs(site: Site) -> str:
    return "\n".join(f"--- {k}\n{u.log()}" for k, u in site.units.items()) + "\n".join(site.log[-3:])


HOOKS: dict[str, Callable[[Site], None]] = {"edit-collector": edit_collector, "split-engine": split_engine,
                                            "edit-agent": edit_agent,
                                            "readings": readings, "new-wheelhouse": new_wheelhouse,
                                            "readings-after-upgrade": readings_after_upgrade,
                                            "backups": backups}  # fmt: skip
