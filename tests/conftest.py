"""Real services for the tests: one Mosquitto and one InfluxDB per session, each test with
its own database and its own topics (agent ids). Tests that stop or kill a service start
their own instead. A service that cannot start fails the run loudly; nothing is skipped."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from wardwatch.simulators.lab import InfluxService, Service, start_influxdb, start_mosquitto


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
