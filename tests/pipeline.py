"""Building blocks for tests that run the real pipeline: collector processes with their
/healthz, agent processes polling snmpsim switches, and what to read back."""

from __future__ import annotations

import json
import sqlite3
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

from tests.util import wait_for, write_yaml
from wardwatch.simulators.lab import InfluxService, Service, SnmpsimAgent, free_port, script, start_snmpsim
from wardwatch.simulators.snmprec import SwitchSpec, render


class Collector:
    """A wardwatch-collector process with its config, log and /healthz."""

    def __init__(self, tmp_path: Path, *, mqtt_port: int, influx_url: str, database: str, **over: Any) -> None:
        self.http_port = free_port()
        self.token = "test-token-" + uuid.uuid4().hex
        self.dead_letter = tmp_path / "dead-letter.jsonl"
        doc: dict[str, Any] = {
            "mqtt": {"host": "127.0.0.1", "port": mqtt_port},
            "influx": {"api": "v1", "url": influx_url, "database": database, "flush_interval": "0.1s", "timeout": "2s"},
            "http": {"host": "127.0.0.1", "port": self.http_port, "token": self.token},
            "dead_letter": {"path": str(self.dead_letter)},
        }
        for section, values in over.items():
            if isinstance(values, dict):
                doc.setdefault(section, {}).update(values)
            else:
                doc[section] = values
        self.config = write_yaml(tmp_path / "collector.yaml", doc)
        self.service = script(
            "wardwatch-collector",
            ["run", "-c", str(self.config), "--log-level", "debug"],
            run_dir=tmp_path / "collector",
        )

    def start(self, *, influx_up: bool = True) -> None:
        self.service.start()

        def ready() -> bool:
            h = self.try_health()
            if h is None:
                assert self.service.running(), self.service.log_tail()
                return False
            return h["mqtt_subscribed"] and (h["influx_ok"] or not influx_up)

        try:
            wait_for(ready, timeout=15, interval=0.05, what="collector ready")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{self.service.log_tail()}") from None

    def try_health(self, token: str | None = None) -> dict[str, Any] | None:
        req = urllib.request.Request(
            f"http://127.0.0.1:{self.http_port}/healthz",
            headers={"Authorization": f"Bearer {token or self.token}"},
        )
        try:
            with urllib.request.urlopen(req, timeout=2) as resp:
                doc: dict[str, Any] = json.load(resp)
                return doc
        except urllib.error.HTTPError:
            raise
        except OSError:
            return None

    def health(self) -> dict[str, Any]:
        doc = self.try_health()
        assert doc is not None, self.service.log_tail()
        return doc

    def counter(self, name: str) -> int:
        value: int = self.health()["counters"][name]
        return value

    def wait_counter(self, name: str, at_least: int, timeout: float = 10.0) -> None:
        try:
            wait_for(lambda: self.counter(name) >= at_least, timeout=timeout, interval=0.05, what=f"{name}>={at_least}")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{self.try_health()}\n{self.service.log_tail()}") from None

    def terminate(self) -> int:
        """SIGTERM, and the exit status."""
        proc = self.service.proc
        assert proc is not None
        self.service.stop(timeout=15)
        return proc.wait()

    def dead_letters(self) -> list[dict[str, Any]]:
        if not self.dead_letter.exists():
            return []
        text = self.dead_letter.read_text()
        # The collector may be writing the last line as we read: only whole lines count. And
        # only "\n" ends one: splitlines() also splits at U+2028, \x1c and the like, which a
        # fuzzed payload's JSON string may hold as they are.
        return [json.loads(line) for line in text[: text.rfind("\n")].split("\n") if line]


def switch_sim(run_dir: Path, name: str, ports: int = 24) -> Service:
    """A snmpsim process serving one simulated switch (community ``public``)."""
    data = run_dir / f"data-{name}"
    data.mkdir(parents=True)
    (data / "public.snmprec").write_text(render(SwitchSpec(name=name, ports=ports, seed=7)))
    return start_snmpsim(run_dir / f"sim-{name}", agents=[SnmpsimAgent(data_dir=data, port=free_port("udp"))])


def agent_process(
    run_dir: Path, *, agent_id: str, ward: str, mqtt_port: int, switch: Service | None, interval: float = 5.0
) -> Service:
    """A wardwatch-agent process polling ``switch`` (if any) every ``interval`` seconds."""
    devices = []
    if switch is not None:
        devices.append({
            "id": "sw-1", "kind": "switch", "host": "127.0.0.1", "port": switch.port, "auth": "v2c",
            "interval": f"{interval}s", "timeout": "1s", "retries": 0, "icmp": False,
        })  # fmt: skip
    cfg = write_yaml(run_dir / f"{agent_id}.yaml", {
        "agent": {"id": agent_id, "ward": ward},
        "mqtt": {"host": "127.0.0.1", "port": mqtt_port, "keepalive": "5s"},
        "outbox": {"path": str(run_dir / f"{agent_id}-outbox.db")},
        "self_interval": "5s",
        "auth": {"v2c": {"snmp": {"version": "2c", "community": "public"}}},
        "devices": devices,
    })  # fmt: skip
    return script("wardwatch-agent", ["run", "-c", str(cfg)], run_dir=run_dir / agent_id)


def outbox_state(path: Path) -> tuple[int, int]:
    """(batches waiting in an agent's outbox, the seq its next batch gets), read beside the agent."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
    try:
        (depth,) = db.execute("SELECT count(*) FROM batches").fetchone()
        row = db.execute("SELECT value FROM meta WHERE key='next_seq'").fetchone()
        return int(depth), int(row[0]) if row else 0
    finally:
        db.close()


def outbox_seqs(path: Path) -> tuple[set[int], int]:
    """(the seqs waiting in an agent's outbox, the seq its next batch gets)."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
    try:
        left = {int(r[0]) for r in db.execute("SELECT seq FROM batches")}
        row = db.execute("SELECT value FROM meta WHERE key='next_seq'").fetchone()
        return left, int(row[0]) if row else 0
    finally:
        db.close()


def ledger_seqs(influx: InfluxService, database: str, agent: str) -> set[int]:
    """Every seq in the collector's ledger for ``agent``."""
    rows = influx.points(f"SELECT seq FROM wardwatch_batch WHERE agent = '{agent}'", db=database)
    return {int(r["seq"]) for r in rows}


def ledger_count(influx: InfluxService, database: str, agent: str) -> tuple[int, int, int]:
    """(distinct seqs in the collector's ledger for ``agent``, lowest, highest)."""
    rows = influx.points(
        f"SELECT count(seq), min(seq), max(seq) FROM wardwatch_batch WHERE agent = '{agent}'", db=database
    )
    if not rows:
        return 0, -1, -1
    return int(rows[0]["count"]), int(rows[0]["min"]), int(rows[0]["max"])


def status_times(influx: InfluxService, database: str, ward: str) -> list[int]:
    """Times (ms) of the device_status readings of ward's switch sw-1."""
    rows = influx.points(
        f"SELECT up FROM device_status WHERE ward = '{ward}' AND device = 'sw-1'", db=database, epoch="ms"
    )
    return [int(r["time"]) for r in rows]
