"""An upgrade in a ward office (issue 16, docs/deploy.md): an agent whose broker was away has
readings waiting in its outbox; it is stopped, the newer wheel is installed over it from a
wheelhouse with no network, and it is started again on the same outbox. Every reading it
held reaches InfluxDB, once in InfluxDB's eyes: the same series with the same times, none
at a shifted time, none dead-lettered (docs/reliability.md: seq, the stored watermark).

The agent and the collector are the installed console scripts of fresh venvs
(tests/packaging.py), not the checkout's; the devices are snmpsim switches.
"""

from __future__ import annotations

import re
import shutil
import sqlite3
from collections import defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests import packaging
from tests.pipeline import Collector, outbox_seqs
from tests.util import wait_for, write_yaml
from wardwatch import wire
from wardwatch.agent.core.outbox import unpack
from wardwatch.simulators.lab import (
    InfluxService,
    Service,
    SnmpsimAgent,
    free_port,
    start_mosquitto,
    start_snmpsim,
)
from wardwatch.simulators.snmprec import SwitchSpec, render

pytestmark = pytest.mark.services

WARD = "cam-kim"
AGENT = "cam-kim-1"
SWITCHES = ("sw-core", "sw-hall")
# A series as InfluxDB keys it: the measurement and every tag (collector/lineproto.py
# reading_tags: the reading's own tags plus ward, device and kind).
Series = tuple[str, tuple[tuple[str, str], ...]]


def bump(version: str) -> str:
    """The next patch release: 0.1.0 -> 0.1.1."""
    found = re.fullmatch(r"(.*?)(\d+)", version)
    assert found, version
    return f"{found.group(1)}{int(found.group(2)) + 1}"


@pytest.fixture(scope="module")
def switches(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    run = tmp_path_factory.mktemp("upgrade-sim")
    agents = []
    for i, name in enumerate(SWITCHES):
        data = run / f"data-{name}"
        data.mkdir()
        (data / "public.snmprec").write_text(render(SwitchSpec(name=name, ports=8, seed=11 + i)))
        agents.append(SnmpsimAgent(data_dir=data, port=free_port("udp")))
    with start_snmpsim(run, agents=agents) as svc:
        yield svc


def agent_config(path: Path, *, mqtt_port: int, outbox: Path, sim: Service) -> Path:
    ports = [a.port for a in getattr(sim, "agents")]  # noqa: B009 (SnmpsimService)
    return write_yaml(path, {
        "agent": {"id": AGENT, "ward": WARD},
        "mqtt": {"host": "127.0.0.1", "port": mqtt_port, "keepalive": "5s"},
        "outbox": {"path": str(outbox)},
        "self_interval": "5s",
        "auth": {"v2c": {"snmp": {"version": "2c", "community": "public"}}},
        "devices": [{"id": name, "kind": "switch", "host": "127.0.0.1", "port": port, "auth": "v2c",
                     "interval": "1s", "timeout": "0.5s", "retries": 0, "icmp": False}
                    for name, port in zip(SWITCHES, ports, strict=True)],
    })  # fmt: skip


def outbox_readings(path: Path) -> tuple[dict[int, list[wire.Reading]], int]:
    """({seq: readings} of every batch waiting in the outbox, the seq its next batch gets),
    read as the agent wrote them (wardwatch.agent.core.outbox, wardwatch.wire)."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
    try:
        batches = {}
        for seq, payload in db.execute("SELECT seq, payload FROM batches ORDER BY seq"):
            batch = wire.decode(unpack(bytes(payload)))
            assert (batch.seq, batch.agent, batch.ward) == (seq, AGENT, WARD)
            batches[int(seq)] = list(batch.readings)
        row = db.execute("SELECT value FROM meta WHERE key='next_seq'").fetchone()
        return batches, int(row[0]) if row else 0
    finally:
        db.close()


def series_of(r: wire.Reading) -> Series:
    tags = {**r.tags, "ward": WARD, "device": r.device, "kind": r.kind}
    return r.measurement, tuple(sorted(tags.items()))


def stored_points(influx: InfluxService, database: str, measurements: set[str], until_ms: int
                  ) -> dict[Series, dict[int, dict[str, Any]]]:  # fmt: skip
    """{series: {time_ms: fields}} of every point InfluxDB holds of the agent's ward up to
    ``until_ms``."""
    found: dict[Series, dict[int, dict[str, Any]]] = defaultdict(dict)
    for m in sorted(measurements):
        result = influx.query(f"SELECT * FROM \"{m}\" WHERE ward = '{WARD}' AND time <= {until_ms}ms GROUP BY *",
                              db=database, epoch="ms")
        for s in result["results"][0].get("series", []):
            key: Series = (m, tuple(sorted(s.get("tags", {}).items())))
            for values in s["values"]:
                row = dict(zip(s["columns"], values, strict=True))
                t = int(row.pop("time"))
                assert t not in found[key], f"{key} holds {t} twice"
                found[key][t] = {k: v for k, v in row.items() if v is not None}
    return found


def same_value(stored: Any, sent: Any) -> bool:
    if isinstance(sent, str):
        return bool(stored == sent)
    return isinstance(stored, int | float) and float(stored) == float(sent)


def test_an_upgrade_over_a_full_outbox_delivers_every_reading_once(
    tmp_path: Path, switches: Service, influx: InfluxService, database: str
) -> None:
    old, new = packaging.version(), bump(packaging.version())
    # Both releases' wheels and the two venvs at once; the newer wheel joins the wheelhouse
    # while the older one runs, as it would reach a ward office.
    with ThreadPoolExecutor(max_workers=3) as pool:
        built_old = pool.submit(packaging.build, tmp_path / "old")
        built_new = pool.submit(packaging.build, tmp_path / "new", as_version=new)
        agent_bin = packaging.venv(tmp_path / "agent-venv", pip=False)
        collector_bin = packaging.venv(tmp_path / "collector-venv", pip=False)
        house = packaging.house(tmp_path / "house", built_old.result()[0])
        collector_installed = pool.submit(packaging.offline_install, collector_bin, house, "wardwatch[collector]")
        packaging.offline_install(agent_bin, house, "wardwatch[agent]")
        version = packaging.run([str(agent_bin / "wardwatch-agent"), "--version"], timeout=30).strip()
        assert version == f"wardwatch-agent {old}"

        # 1. The running release polls two switches every second; its broker is away, so
        # every batch stays in the outbox.
        broker_port = free_port()
        outbox = tmp_path / "state" / "outbox.db"
        cfg = agent_config(tmp_path / "agent.yaml", mqtt_port=broker_port, outbox=outbox, sim=switches)
        agent = Service(name="agent", argv=[str(agent_bin / "wardwatch-agent"), "run", "-c", str(cfg)],
                        host="127.0.0.1", port=0, run_dir=tmp_path / "agent", log_path=tmp_path / "agent.log")
        agent.start()
        try:
            wait_for(lambda: outbox.exists() and outbox_seqs(outbox)[1] >= 2 * 5, timeout=30, interval=0.2,
                     what=lambda: f"5 polls of each switch in the outbox\n{agent.log_tail()}")
        finally:
            code = agent.stop_with_code()  # SIGTERM to its PID
        assert code == 0, agent.log_tail()
        shutil.copy(built_new.result()[0], house)
        collector_installed.result()

    before, next_seq = outbox_readings(outbox)
    assert sorted(before) == list(range(next_seq)), "the outbox holds every batch it made, none sent"
    readings = [r for rs in before.values() for r in rs]
    assert {r.device for r in readings if r.measurement == "device_status"} == set(SWITCHES)
    assert {r.measurement for r in readings} >= {"device_status", "if_traffic"}
    # The upgraded agent's own readings come later than any of these.
    until_ms = max(r.time_ms for r in readings)
    sent: dict[Series, dict[int, dict[str, Any]]] = defaultdict(dict)
    for r in readings:
        sent[series_of(r)].setdefault(r.time_ms, {}).update(r.fields)

    # 2. The newer wheel over it, from the wheelhouse, with no network.
    packaging.offline_install(agent_bin, house, "wardwatch[agent]", upgrade=True)
    version = packaging.run([str(agent_bin / "wardwatch-agent"), "--version"], timeout=30).strip()
    assert version == f"wardwatch-agent {new}"
    assert outbox_readings(outbox)[1] == next_seq  # the upgrade left the outbox alone

    def ledger_seqs() -> set[int]:
        rows = influx.points(f"SELECT seq FROM wardwatch_batch WHERE agent = '{AGENT}'", db=database)
        return {int(r["seq"]) for r in rows}

    # 3. The broker, InfluxDB and a collector (installed from the same house) are there now;
    # the upgraded agent starts on the same config and outbox.
    with start_mosquitto(tmp_path / "services", port=broker_port):
        collector = Collector(tmp_path / "collector", mqtt_port=broker_port, influx_url=influx.url,
                              database=database)
        collector.service.argv[0] = str(collector_bin / "wardwatch-collector")
        try:
            collector.start()
            agent.start()
            # The old release's batches stored and deleted from the outbox, and the new
            # release's first batch stored with the next seq.
            wait_for(lambda: not (outbox_seqs(outbox)[0] & set(before)) and next_seq in ledger_seqs(),
                     timeout=40, interval=0.3,
                     what=lambda: f"the old batches stored and deleted, seq {next_seq} stored\n{agent.log_tail()}\n"
                                  f"{collector.service.log_tail()}")
        finally:
            agent.stop(timeout=15)  # SIGTERM, SIGKILL after 15 s
            code = collector.terminate()
    assert agent.proc is not None and agent.proc.returncode == 0, agent.log_tail()
    assert code == 0, collector.service.log_tail()

    # 4. InfluxDB holds each of those readings once: the same series, the same times, the
    # same values; nothing else of the ward up to the stop, and nothing dead-lettered.
    stored = stored_points(influx, database, {m for m, _ in sent}, until_ms)
    assert sorted(stored) == sorted(sent), "series"
    for series, times in sent.items():
        assert sorted(stored[series]) == sorted(times), f"{series}: times"
        for t, fields in times.items():
            got = stored[series][t]
            assert all(same_value(got.get(k), v) for k, v in fields.items()), (series, t, fields, got)
    assert sum(len(t) for t in stored.values()) == len({(series_of(r), r.time_ms) for r in readings})
    assert collector.dead_letters() == []
    # seq goes on across the upgrade with no gap (the collector's ledger, docs/reliability.md).
    assert set(range(next_seq + 1)) <= ledger_seqs()
