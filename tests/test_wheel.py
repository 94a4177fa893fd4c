"""The packages a city IT team installs (issue 16): wardwatch's wheel and sdist, built by
``python -m build`` from a copy of this tree, installed with ``pip --no-index`` from a
wheelhouse into fresh venvs with no network at all (tests/packaging.py), and then run.

``[agent]`` must pull no collector stack and ``[collector]`` no SNMP or ONVIF stack; each
venv's console script then does its job against real peers: ``wardwatch-agent check``
against snmpsim and Mosquitto, ``wardwatch-collector run`` against Mosquitto and
InfluxDB, serving its dashboard from the wheel's package data.
"""

from __future__ import annotations

import json
import subprocess
import tarfile
import time
import urllib.error
import urllib.request
import uuid
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests import packaging
from tests.util import wait_for, write_yaml
from wardwatch.simulators.lab import InfluxService, Service, SnmpsimAgent, free_port, start_snmpsim
from wardwatch.simulators.snmprec import SwitchSpec, render

pytestmark = pytest.mark.services

# What only the collector needs (its web server, templates, InfluxDB client, mail, rrules,
# the report's browser), and what only the agent needs (SNMP, ONVIF, ICMP) or the simulators.
COLLECTOR_STACK = frozenset({"aiohttp", "jinja2", "markupsafe", "influxdb-client", "playwright", "aiosmtplib",
                             "python-dateutil", "aiocsv", "reactivex"})
AGENT_STACK = frozenset({"pysnmp", "pyasn1", "onvif-zeep-async", "zeep", "icmplib", "snmpsim", "pysmi", "lxml",
                         "httpx", "defusedxml"})
# The package dirs of the checkout and where they land in site-packages (pyproject.toml).
PACKAGE_DIRS = {"wardwatch": "wardwatch", "agent": "wardwatch/agent", "collector": "wardwatch/collector",
                "simulators": "wardwatch/simulators"}
# The secrets configs/collector-example.yaml reads from the environment (as tests/test_configs.py).
ENV = {"WARDWATCH_MQTT_PASSWORD": "pw-123456", "WARDWATCH_HTTP_TOKEN": "token-0123456789abcdef",
       "WARDWATCH_TG_TOKEN": "123:tg", "WARDWATCH_ZALO_TOKEN": "zalo-1", "WARDWATCH_SMTP_PASSWORD": "smtp-pw"}


OUTSIDE = Path("/")


@dataclass(frozen=True)
class Built:
    wheel: Path
    sdist: Path
    house: Path


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    out = tmp_path_factory.mktemp("wheel")
    wheel, sdist = packaging.build(out)
    return Built(wheel, sdist, packaging.house(out / "house", wheel))


@pytest.fixture(scope="module")
def agent_bin(built: Built, tmp_path_factory: pytest.TempPathFactory) -> Path:
    bin_dir = packaging.venv(tmp_path_factory.mktemp("agent-venv") / "venv", pip=False)
    packaging.offline_install(bin_dir, built.house, "wardwatch[agent]")
    return bin_dir


@pytest.fixture(scope="module")
def collector_bin(built: Built, tmp_path_factory: pytest.TempPathFactory) -> Path:
    bin_dir = packaging.venv(tmp_path_factory.mktemp("collector-venv") / "venv", pip=False)
    packaging.offline_install(bin_dir, built.house, "wardwatch[collector]")
    return bin_dir


@pytest.fixture(scope="module")
def switch(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    run = tmp_path_factory.mktemp("wheel-sim")
    (run / "data").mkdir()
    (run / "data" / "public.snmprec").write_text(render(SwitchSpec(name="sw-hall", ports=8, seed=3)))
    with start_snmpsim(run, agents=[SnmpsimAgent(data_dir=run / "data", port=free_port("udp"))]) as svc:
        yield svc


def tracked(under: str) -> list[str]:
    out = subprocess.run(["git", "-C", str(packaging.ROOT), "ls-files", "--", under], capture_output=True, text=True,
                         check=True, timeout=30).stdout
    return [p for p in out.splitlines() if (packaging.ROOT / p).is_file()]


def run(cmd: list[str | Path], *, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """In a directory of its own: from the checkout, ``python -c`` would import its wardwatch/."""
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=60, env=env, cwd=OUTSIDE)


def device_row(table: str, device: str) -> dict[str, str]:
    """The check table's row of ``device``, by the header's column names."""
    lines = table.splitlines()
    header = next(line.split() for line in lines if line.split()[:2] == ["DEVICE", "KIND"])
    row = next(line.split() for line in lines if line.split()[:1] == [device])
    return dict(zip(header, row, strict=False))


IMPORT_ALL = """
import importlib, json, pkgutil, sys, traceback
import wardwatch
pkg = importlib.import_module(sys.argv[1])
mods = [m.name for m in pkgutil.walk_packages(pkg.__path__, sys.argv[1] + ".")]
mods += [m.name for m in pkgutil.iter_modules(wardwatch.__path__, "wardwatch.") if not m.ispkg]
mods += sys.argv[2:]
failed = {}
for name in mods:
    try:
        importlib.import_module(name)
    except Exception as exc:
        failed[name] = traceback.format_exception_only(exc)[-1].strip()
loaded = sorted({n.split(".")[0] for n in sys.modules} | set(sys.modules))
print(json.dumps({"failed": failed, "count": len(mods), "loaded": loaded}))
"""


def import_all(bin_dir: Path, package: str, *lazy: str) -> tuple[dict[str, str], int, set[str]]:
    """Import every module of ``package`` (and wardwatch's shared modules, and ``lazy``: what
    its functions import only when called) in that venv: (module -> error of those that
    failed, how many, every module then loaded, with the top-level names of the libraries)."""
    proc = run([bin_dir / "python", "-c", IMPORT_ALL, package, *lazy])
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    return doc["failed"], doc["count"], set(doc["loaded"])


# ---------------------------------------------------------------------------- what the files hold


def test_the_wheel_holds_every_module_and_data_file_of_the_packages_and_nothing_else(built: Built) -> None:
    names = set(zipfile.ZipFile(built.wheel).namelist())
    # The tree's files: those git tracks, and modules on disk not committed yet.
    files = {p for top in PACKAGE_DIRS for p in tracked(top)}
    files |= {str(p.relative_to(packaging.ROOT)) for top in PACKAGE_DIRS for p in (packaging.ROOT / top).rglob("*.py")
              if "__pycache__" not in p.parts}
    expected = {f"{PACKAGE_DIRS[p.split('/', 1)[0]]}/{p.split('/', 1)[1]}" for p in files}
    # A module or data file the tree has and the wheel lacks: a package missing from
    # [tool.setuptools] packages, or a file type missing from package-data.
    assert sorted(expected - names) == []
    # The data the code opens at run time, by name: the profiles, the shipped rules, the pages.
    for must in ("wardwatch/agent/snmp/profiles/generic_switch.yaml", "wardwatch/collector/alerts/rules.yaml",
                 "wardwatch/collector/web/templates/overview.html", "wardwatch/collector/web/static/app.js",
                 "wardwatch/collector/web/static/vendor/uPlot.iife.min.js"):
        assert must in names
    code = {n for n in names if not n.startswith("wardwatch-")}
    assert sorted(code - expected) == []  # no tests, no stray build products
    meta = zipfile.ZipFile(built.wheel).read(f"wardwatch-{packaging.version()}.dist-info/entry_points.txt").decode()
    for script in ("wardwatch-agent = wardwatch.entry:agent", "wardwatch-collector = wardwatch.entry:collector"):
        assert script in meta


def test_the_other_sides_command_says_which_extra_it_needs(agent_bin: Path, collector_bin: Path) -> None:
    """Both installs get every console script; the one whose extra is missing says so in one line."""
    for bin_dir, prog, extra in ((agent_bin, "wardwatch-collector", "collector"),
                                 (collector_bin, "wardwatch-agent", "agent"),
                                 (agent_bin, "wardwatch-sim", "sim")):
        proc = subprocess.run([str(bin_dir / prog), "--version"], capture_output=True, text=True, timeout=60)
        assert proc.returncode == 1, proc.stderr
        assert proc.stderr.strip().splitlines() == [proc.stderr.strip()], proc.stderr  # one line, no traceback
        assert proc.stderr.startswith(f"{prog}: the ") and f"pip install 'wardwatch[{extra}]'" in proc.stderr


def test_the_sdist_carries_the_configs_docs_and_readme(built: Built) -> None:
    with tarfile.open(built.sdist) as tar:
        top = f"wardwatch-{packaging.version()}/"
        names = {m.name.removeprefix(top) for m in tar.getmembers() if m.isfile()}
    for under in ("configs", "docs", "deploy", "dashboards"):
        missing = sorted(set(tracked(under)) - names)
        assert missing == [], f"{under}/ files missing from the sdist: {missing}"
    assert {"README.md", "pyproject.toml", "configs/agent-example.yaml", "configs/collector-example.yaml",
            "docs/reliability.md", "scripts/wheelhouse.sh"} <= names
    assert not any(n.startswith((".venv/", ".git/", "dist/")) for n in names)


# ---------------------------------------------------------------------------- the agent's venv


def test_agent_extra_pulls_no_collector_stack(agent_bin: Path) -> None:
    have = packaging.distributions(agent_bin)
    assert {"wardwatch", "pysnmp", "paho-mqtt", "icmplib", "msgspec", "pydantic"} <= have
    assert sorted(have & COLLECTOR_STACK) == []


def test_every_agent_module_imports_without_the_collector_stack(agent_bin: Path) -> None:
    """The agent venv imports every module of wardwatch.agent and the shared core: none
    reaches for a collector-only library at import time."""
    failed, count, loaded = import_all(agent_bin, "wardwatch.agent", "pysnmp.hlapi.v3arch.asyncio")
    assert failed == {}
    assert count > 20 and "wardwatch.agent.core.app" in loaded
    assert sorted(loaded & {"aiohttp", "jinja2", "influxdb_client", "dateutil", "aiosmtplib", "playwright"}) == []


def test_installed_agent_says_its_version_and_checks_a_real_switch_and_broker(
    agent_bin: Path, switch: Service, mosquitto: Service, tmp_path: Path
) -> None:
    proc = run([agent_bin / "wardwatch-agent", "--version"])
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"wardwatch-agent {packaging.version()}"

    cfg = write_yaml(tmp_path / "agent.yaml", {
        "agent": {"id": f"wheel-{uuid.uuid4().hex[:6]}", "ward": "cam-pho"},
        "mqtt": {"host": "127.0.0.1", "port": mosquitto.port},
        "outbox": {"path": str(tmp_path / "state" / "outbox.db")},
        "auth": {"v2c": {"snmp": {"version": "2c", "community": "public"}}},
        "devices": [{"id": "sw-hall", "kind": "switch", "host": "127.0.0.1", "port": switch.port, "auth": "v2c",
                     "interval": "5s", "timeout": "1s", "retries": 0}],
    })  # fmt: skip
    (tmp_path / "state").mkdir()
    proc = run([agent_bin / "wardwatch-agent", "check", "-c", cfg])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    cells = device_row(proc.stdout, "sw-hall")
    # The profile found from the device's sysObjectID: the wheel's profiles/*.yaml were read.
    assert (cells["STATUS"], cells["PROFILE"], cells["IFS"]) == ("up", "generic_switch", "8"), proc.stdout
    assert "1 of 1 devices answered" in proc.stdout
    # The setup section (agent/core/preflight.py): the outbox's directory, ICMP and the broker
    # step by step up to the subscription to the agent's own stored topic, each ok.
    setup = [line.split() for line in proc.stdout.splitlines() if line.split()[:1] in (["ok"], ["warn"], ["FAIL"])]
    assert {words[1] for words in setup} >= {"config", "outbox", "icmp", "broker"}, proc.stdout
    assert ["broker", "acl"] in [words[1:3] for words in setup], proc.stdout
    assert {words[0] for words in setup} == {"ok"}, proc.stdout

    # A switch that does not answer: the installed check names it and exits 1.
    bad = yaml.safe_load(cfg.read_text())
    bad["devices"][0].update(port=free_port("udp"), icmp=False)
    proc = run([agent_bin / "wardwatch-agent", "check", "-c", write_yaml(tmp_path / "bad.yaml", bad)])
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert device_row(proc.stdout, "sw-hall")["STATUS"] == "timeout", proc.stdout
    assert "0 of 1 devices answered" in proc.stdout


# ---------------------------------------------------------------------------- the collector's venv


def test_collector_extra_pulls_no_snmp_or_onvif_stack(collector_bin: Path) -> None:
    have = packaging.distributions(collector_bin)
    assert {"wardwatch", "aiohttp", "jinja2", "influxdb-client", "paho-mqtt", "python-dateutil"} <= have
    assert sorted(have & AGENT_STACK) == []


def test_every_collector_module_imports_without_the_agent_stack(collector_bin: Path) -> None:
    # influx.api v2's client, imported when a v2 writer opens (collector/influx_v2.py)
    failed, count, loaded = import_all(collector_bin, "wardwatch.collector",
                                       "influxdb_client.client.influxdb_client_async",
                                       "influxdb_client.client.write_api_async", "influxdb_client.rest")
    assert failed == {}
    assert count > 30 and {"wardwatch.collector.app", "wardwatch.collector.web.pages"} <= loaded
    assert sorted(loaded & {"pysnmp", "pyasn1", "onvif", "zeep", "icmplib"}) == []


def _get(url: str, token: str | None = None) -> tuple[int, str]:
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, resp.read().decode("utf-8", errors="replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode("utf-8", errors="replace")
    except OSError:
        return 0, ""


def shipped_example(built: Built, tmp_path: Path) -> Path:
    """configs/collector-example.yaml as the sdist ships it."""
    with tarfile.open(built.sdist) as tar:
        member = tar.extractfile(f"wardwatch-{packaging.version()}/configs/collector-example.yaml")
        assert member is not None
        example = tmp_path / "collector-example.yaml"
        example.write_bytes(member.read())
    return example


def test_installed_collector_checks_the_shipped_example_config(collector_bin: Path, built: Built, tmp_path: Path
                                                               ) -> None:  # fmt: skip
    """``config`` loads it with the wheel's alert rules (alerts.rules unset: the shipped ones)."""
    proc = run([collector_bin / "wardwatch-collector", "config", "-c", shipped_example(built, tmp_path)],
               env={"PATH": "/usr/bin:/bin", **ENV})
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("command", ["run", "alerts"])
def test_installed_collector_serves_its_pages_and_stops_on_sigterm(
    command: str, collector_bin: Path, built: Built, mosquitto: Service, influx: InfluxService, database: str,
    tmp_path: Path
) -> None:  # fmt: skip
    """``run`` (wardwatch-collector.service) and ``alerts`` (wardwatch-collector-alerts.service)
    of the installed collector, on the shipped example moved to this machine's loopback
    services: each comes up, serves the dashboard from the wheel's templates and static
    files, and exits 0 soon after SIGTERM to its PID."""
    doc: dict[str, Any] = yaml.safe_load(shipped_example(built, tmp_path).read_text())
    doc["mqtt"] = {"host": "127.0.0.1", "port": mosquitto.port, "share_group": doc["mqtt"]["share_group"]}
    doc["influx"].update(url=influx.url, database=database)
    token = "token-" + uuid.uuid4().hex
    http_port = free_port()
    doc["http"] = {"host": "127.0.0.1", "port": http_port, "token": token}
    doc["dead_letter"]["path"] = str(tmp_path / "state" / "dead-letter.jsonl")
    doc["spool"]["path"] = str(tmp_path / "state" / "spool.db")
    doc["alerts"].update(state=str(tmp_path / "state" / "alerts.db"),
                         channels={"noc": {"type": "webhook", "url": f"http://127.0.0.1:{free_port()}/hook"},
                                   "bus": {"type": "mqtt"}},
                         routes=[{"match": {}, "channels": ["noc", "bus"]}])
    cfg = write_yaml(tmp_path / "collector.yaml", doc)
    (tmp_path / "state").mkdir()
    service = Service(name=f"installed collector {command}",
                      argv=[str(collector_bin / "wardwatch-collector"), command, "-c", str(cfg)],
                      host="127.0.0.1", port=http_port, run_dir=tmp_path / "run", log_path=tmp_path / "collector.log",
                      env={"PATH": "/usr/bin:/bin"})  # fmt: skip
    service.start()
    try:
        def healthy() -> bool:
            assert service.running(), service.log_tail()
            status, body = _get(f"http://127.0.0.1:{http_port}/healthz", token)
            health = json.loads(body) if status == 200 else {}
            if command == "alerts":
                return bool(health.get("status") == "ok")
            return bool(health.get("mqtt_subscribed") and health.get("influx_ok"))

        wait_for(healthy, timeout=30, interval=0.1, what=lambda: f"installed collector healthy\n{service.log_tail()}")
        status, page = _get(f"http://127.0.0.1:{http_port}/login")
        assert status == 200 and "<form" in page, page[:500]
        status, js = _get(f"http://127.0.0.1:{http_port}/static/vendor/uPlot.iife.min.js")
        assert status == 200 and "uPlot" in js
        status, page = _get(f"http://127.0.0.1:{http_port}/", token)
        assert status == 200 and "Cẩm Phô" in page, page[:500]  # the config's ward names, in the template
    finally:
        stopping = time.monotonic()
        code = service.stop_with_code()  # SIGTERM to its PID
    took = time.monotonic() - stopping
    assert code == 0, service.log_tail()
    assert took < 10, f"took {took:.1f} s to stop"
    assert "Traceback" not in service.log_path.read_text(), service.log_tail()
