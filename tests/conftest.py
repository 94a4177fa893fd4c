"""Real services for the tests: one Mosquitto and one InfluxDB per session, each test with
its own database and its own topics (agent ids). Tests that stop or kill a service start
their own instead. A service that cannot start fails the run loudly; nothing is skipped,
and a run in which any test skipped fails (see pytest_sessionfinish).

Under pytest-xdist (``make test`` runs ``-n 4 --dist loadgroup``) a session is one worker:
each worker starts its own services, on ports from its own block (simulators/lab.py
free_port), with its own tmp dirs. The tests of a module with module-scoped fixtures (a
simulator fleet, an snmpsim) go to one worker together, so the fixture starts once; every
other test is scheduled on its own, and the slowest go first (SLOW_FIRST).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import pytest

from wardwatch.simulators.lab import InfluxService, Service, start_influxdb, start_mosquitto

# The longest tests (and modules of tests that run together), longest first, from
# `make test PYTEST_ARGS=--durations=30`: under xdist they start first, so that none is
# left alone at the end of the run. A name no longer here costs only some balance.
SLOW_FIRST: Final = (
    "tests/test_reliability.py::test_a_5_minute_agent_outage_is_unknown_not_down",  # 350 s
    "tests/test_demo.py",  # 130-160 s (one --fast demo, 4 tests), CPU-bound: not beside the fuzzer
    "tests/test_ap_pipeline.py",  # a module: 170 s, most of it fixtures
    "tests/test_delivery_outage.py",  # 100 s
    "tests/test_delivery_share.py",  # 100 s
    "tests/test_reliability.py::",  # 45-90 s each
    "tests/test_fuzz.py",  # 95-160 s, CPU-bound
    "tests/test_deploy_doc.py",  # 50-85 s: the deploy doc's every block on two roots
    "tests/test_upgrade.py",  # 45-60 s: two wheels built, two venvs installed offline, the agent run twice
    "tests/test_wheel.py",  # a module: 35-60 s, most of it the build and two offline installs
    "tests/test_deploy_units.py",  # a module: 45-55 s, most of it an offline install into a tree
    "tests/test_web_browser.py",  # 60 s: 13 wards' agents and Chromium
    "tests/test_alerts_e2e.py",  # a class of five (2 min) and three rigs of their own (40-55 s each)
    "tests/test_snmp_faults.py",  # 25-50 s each
    "tests/test_agent_process.py",
    "tests/test_camera_pipeline.py",
    "tests/test_e2e.py",
)
_WIDE_SCOPES: Final = ("module", "class", "package")


def _shares_a_module_fixture(item: pytest.Item) -> bool:
    info = getattr(item, "_fixtureinfo", None)
    if info is None:
        return False
    return any(d.scope in _WIDE_SCOPES for defs in info.name2fixturedefs.values() for d in defs)


def _rank(nodeid: str) -> int:
    return next((i for i, prefix in enumerate(SLOW_FIRST) if nodeid.startswith(prefix)), len(SLOW_FIRST))


def _short_ones_second(items: list[pytest.Item], group: dict[int, str], rank: dict[str, int]) -> list[pytest.Item]:
    """xdist hands each worker its first unit (a test, or a group) and at once a second one,
    which waits behind the first: behind the longest tests, the second ones must be short.
    So after the first unit per worker come as many units of unranked single tests."""
    units: list[list[pytest.Item]] = []
    for item in items:
        key = group.get(id(item))
        if units and key is not None and group.get(id(units[-1][0])) == key:
            units[-1].append(item)
        else:
            units.append([item])
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    head, tail = units[:workers], units[workers:]
    short = [u for u in tail if id(u[0]) not in group and rank[u[0].nodeid] == len(SLOW_FIRST)][:workers]
    rest = [u for u in tail if not any(u is s for s in short)]
    return [item for unit in (*head, *short, *rest) for item in unit]


# A wrapper: the marks go on before xdist's own hook turns them into groups (by tagging
# each test's id with "@group"), and afterwards we check that it did.
@pytest.hookimpl(wrapper=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> Iterator[None]:
    if not (os.environ.get("PYTEST_XDIST_WORKER") and config.getvalue("loadgroup")):
        return (yield)
    group: dict[int, str] = {}
    for item in items:
        if _shares_a_module_fixture(item):
            group[id(item)] = item.nodeid.split("::")[0]
            item.add_marker(pytest.mark.xdist_group(group[id(item)]))
    result = yield
    # After pytest's own reordering: a group keeps its tests together, at the rank of its
    # slowest test; the rest keep their order. The workers send this order to the scheduler.
    rank: dict[str, int] = {}
    for item in items:
        key = group.get(id(item), item.nodeid)
        rank[key] = min(rank.get(key, len(SLOW_FIRST)), _rank(item.nodeid))
    order = {id(item): i for i, item in enumerate(items)}
    items.sort(key=lambda it: (rank[group.get(id(it), it.nodeid)], group.get(id(it), ""), order[id(it)]))
    items[:] = _short_ones_second(items, group, rank)
    if group and not any("@" in item.nodeid for item in items):
        warnings.warn(
            pytest.PytestWarning(
                "xdist --dist loadgroup ignored the xdist_group marks (pytest and pytest-xdist versions "
                "that do not fit: see pyproject.toml); module fixtures start once per test, not per module"
            ),
            stacklevel=1,
        )
    return result


_skipped: list[str] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped and not hasattr(report, "wasxfail"):
        _skipped.append(report.nodeid)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """A skipped test is a test that did not run: the run fails (a missing binary belongs
    in scripts/install-deps.sh, not in a skip)."""
    if _skipped and exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _skipped:
        terminalreporter.write_line(
            f"wardwatch: {len(_skipped)} test(s) skipped, so this run fails: {', '.join(_skipped[:10])}", red=True
        )


@pytest.fixture(scope="session")
def services_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("services")


@pytest.fixture(scope="session")
def mosquitto(services_dir: Path) -> Iterator[Service]:
    with start_mosquitto(services_dir) as svc:
        yield svc


@pytest.fixture(scope="session")
def influx(services_dir: Path) -> Iterator[InfluxService]:
    with start_influxdb(services_dir) as svc:
        yield svc


@pytest.fixture
def database(influx: InfluxService) -> str:
    """A fresh database for one test."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    influx.create_database(name)
    return name


@pytest.fixture
def unique() -> str:
    """A short unique suffix for agent ids and topics."""
    return uuid.uuid4().hex[:8]


@pytest.fixture
def black_hole() -> Iterator[int]:
    """A UDP port on 127.0.0.1 that takes SNMP requests and never answers."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    try:
        yield sock.getsockname()[1]
    finally:
        sock.close()


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=30)


@pytest.fixture
def netns() -> Iterator[str]:
    """A network namespace of our own, with loopback up and multicast on: the only place
    tests send WS-Discovery multicast. Deleted afterwards."""
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.fail("needs root and iproute2 to create a network namespace")
    name = f"ww-{uuid.uuid4().hex[:8]}"
    ip("netns", "add", name)
    try:
        ip("netns", "exec", name, "ip", "link", "set", "lo", "up")
        ip("netns", "exec", name, "ip", "link", "set", "lo", "multicast", "on")
        ip("netns", "exec", name, "ip", "route", "add", "224.0.0.0/4", "dev", "lo")
        yield name
    finally:
        subprocess.run(["ip", "netns", "delete", name], capture_output=True, timeout=30)
